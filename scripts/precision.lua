-- scripts/precision.lua — do reduced-precision formats make small gradients
-- vanish, and does loss scaling bring them back?
--
-- An 8-layer sigmoid MLP (Xavier init; its backward signal shrinks ~4x per layer,
-- so the first layers' gradients are tiny) trained with Adam on a 10-class teacher
-- task, with its activations and gradients rounded through
--   fp32 (the reference), fp16 (5 exponent bits: values below 6e-8 become 0),
--   bf16 (fp32's 8 exponent bits, 8 mantissa bits), and fp16 with a GradScaler
--   (the loss multiplied by a large scale before backward, the gradients divided
--   by it before the step; the scale halves after an inf/NaN and doubles after
--   every 50 clean steps).
-- We count the gradient entries that are exactly zero (fp32 has none here), per
-- layer and over training, and follow the loss and the scaler's scale.
--
--   build/gradlab scripts/precision.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("precision", arg)
local depth, width, batch = 8, 64, 128
local steps = ex.quick and 40 or 400

local configs = {
  { key = "fp32", name = "fp32", format = "fp32" },
  { key = "fp16", name = "fp16", format = "fp16" },
  { key = "bf16", name = "bf16", format = "bf16" },
  { key = "fp16_scaled", name = "fp16 + GradScaler", format = "fp16", scaled = true },
}

gl.manual_seed(3)
local x_all, scores = gl.data.teacher(2048, 32, 10, 2)
local y_all = scores:argmax(2)

local function build()
  local layers = {}
  for l = 1, depth do
    layers[#layers + 1] = nn.Linear(l == 1 and 32 or width, width, { init = "xavier_normal" })
    layers[#layers + 1] = nn.Sigmoid()
  end
  layers[#layers + 1] = nn.Linear(width, 10, { init = "xavier_normal" })
  return nn.Sequential(layers)
end

-- Fraction of exactly-zero entries in the weight gradients: per layer, and overall.
local function zero_fractions(model)
  local per_layer, zeros, count = {}, 0, 0
  for _, e in ipairs(model:named_parameters()) do
    if e[1]:match("weight$") then
      local s = e[2].grad:stats()
      per_layer[#per_layer + 1] = s.zeros / s.count
      zeros, count = zeros + s.zeros, count + s.count
    end
  end
  return per_layer, zeros / count
end

local rows, total, done = {}, #configs * steps, 0
for ci, c in ipairs(configs) do
  gl.manual_seed(1)   -- the same initial weights for every run
  local model = build():precision(c.format)
  local opt = gl.optim.Adam(model, { lr = 3e-3 })
  local scaler = c.scaled and gl.amp.GradScaler{ init_scale = 2 ^ 16, growth_interval = 50 } or nil
  local mon = gl.monitor(model, { every = 10 })
  local loader = gl.data.loader(x_all, y_all, { batch = batch })
  c.loss, c.zero, c.scale, c.layer_sum, c.skipped = {}, {}, {}, {}, 0
  local step = 0
  while step < steps do
    for xb, yb in loader:epoch() do
      step = step + 1
      if step > steps then break end
      local loss = gl.loss.cross_entropy(model(xb), yb)
      opt:zero_grad()
      if scaler then
        c.scale[step] = scaler:get_scale()
        scaler:scale(loss):backward()
        scaler:unscale(opt)            -- the gradients back to their true size (zeros stay zeros)
      else
        loss:backward()
      end
      mon:record(step, { loss = loss })
      local per_layer, overall = zero_fractions(model)
      for l, v in ipairs(per_layer) do c.layer_sum[l] = (c.layer_sum[l] or 0) + v / steps end
      if scaler then
        if not scaler:step(opt) then c.skipped = c.skipped + 1 end
        scaler:update()
      else
        opt:step()
      end
      c.loss[step], c.zero[step] = loss:item(), overall
      done = done + 1
      gl.progress(done, total, { loss = loss })
    end
  end
  local tail, zero_mean = 0, 0
  for s = steps - 19, steps do tail = tail + c.loss[s] / 20 end
  for s = 1, steps do zero_mean = zero_mean + c.zero[s] / steps end
  c.loss_end, c.zero_mean, c.zero_first = tail, zero_mean, c.layer_sum[1]
  c.color = ci
  mon:to_csv(ex:path(c.key .. ".csv"))
  rows[#rows + 1] = { c.name, c.zero[1], zero_mean, c.layer_sum[1], c.loss[1], tail,
                      scaler and ("%g -> %g, %d skipped"):format(2 ^ 16, scaler:get_scale(), c.skipped) or "" }
  configs[c.key] = c
end
ex:table({ "format", "zero grads step 1", "zero grads (mean)", "zero in layer 1", "loss 0", "loss end", "scale" }, rows,
         ("%d-layer sigmoid MLP, Adam, %d steps: fraction of weight-gradient entries that are exactly 0"):format(depth, steps))

-- The figures ----------------------------------------------------------------------
local function series(field)
  local list = {}
  for _, c in ipairs(configs) do
    list[#list + 1] = { name = c.name, y = c[field], color = gl.plot.palette(c.color), style = c.scaled and "dashed" or "solid" }
  end
  return list
end
local layer_series = {}
for _, c in ipairs(configs) do
  local xs = {}
  for l = 1, #c.layer_sum do xs[l] = l end
  layer_series[#layer_series + 1] = { name = c.name, x = xs, y = c.layer_sum, color = gl.plot.palette(c.color),
                                      style = c.scaled and "dashed" or "solid", marker = true }
end
local scaled = configs.fp16_scaled
local sx = {}
for s = 1, steps do sx[s] = s end
gl.plot.grid{ path = ex:path("precision.png"), cols = 2, width = 1800, height = 1300,
  title = ("fp32 vs fp16 vs bf16 on a sigmoid MLP of %d layers: gradient underflow and loss scaling"):format(depth),
  panels = {
    { kind = "lines", title = "training loss", xlabel = "step", ylabel = "cross-entropy", series = series("loss") },
    { kind = "lines", title = "weight-gradient entries that are exactly 0", xlabel = "step", ylabel = "fraction",
      series = series("zero"), legend = false },
    { kind = "lines", title = "exactly-0 gradient entries per layer (mean over training)",
      xlabel = "layer (input -> output)", ylabel = "fraction", series = layer_series, legend = false },
    { kind = "lines", title = ("GradScaler's scale (%d skipped steps)"):format(scaled.skipped), xlabel = "step",
      ylabel = "loss scale", logy = true,
      series = { { name = "fp16 + GradScaler", x = sx, y = scaled.scale, color = gl.plot.palette(scaled.color) } },
      legend = false },
  } }

-- The conclusions ----------------------------------------------------------------
local fp32, fp16, bf16 = configs.fp32, configs.fp16, configs.bf16
print()
ex:claim(("fp16 underflows: %.1f%% of the gradient entries are exactly 0 (%.1f%% in the first layer), fp32 %.1f%%")
  :format(100 * fp16.zero_mean, 100 * fp16.zero_first, 100 * fp32.zero_mean), fp16.zero_mean > 0.05 and fp32.zero_mean < 0.001)
ex:claim(("bf16 keeps fp32's range: %.2f%% zero entries"):format(100 * bf16.zero_mean), bf16.zero_mean < 0.001)
ex:claim(("loss scaling brings the small gradients back: %.2f%% zero entries with GradScaler vs %.1f%% without")
  :format(100 * scaled.zero_mean, 100 * fp16.zero_mean), scaled.zero_mean < fp16.zero_mean / 10)
ex:claim(("underflow costs training: loss %.3f in fp16 vs %.3f in fp32; with GradScaler %.3f, bf16 %.3f")
  :format(fp16.loss_end, fp32.loss_end, scaled.loss_end, bf16.loss_end),
  fp16.loss_end > fp32.loss_end + 0.05 and math.abs(scaled.loss_end - fp32.loss_end) < 0.05)
ex:finish()
return configs, ex
