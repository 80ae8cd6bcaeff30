-- scripts/regularization.lua — can weight penalties push a deep net that is close
-- to vanishing over the edge?
--
-- A 16-layer tanh MLP with Xavier init (its backward signal already shrinks a
-- little at every layer) trained with SGD + momentum on a 10-class teacher task,
-- with no penalty, L2 (weight_decay: w <- w - lr λ w every step) of three
-- strengths, or L1 (w <- w - lr λ sign(w)) of three strengths.  We follow:
--   * the backward signal ratio ‖∂L/∂z_1‖ / ‖∂L/∂z_16‖ and the first layer's
--     gradient over training (the monitor),
--   * the weights' size, the fraction of weights that are ~0 (|w| < 1e-3: a
--     subgradient L1 step leaves weights jittering around 0 rather than at 0),
--   * the training loss.
--
--   build/gradlab scripts/regularization.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("regularization", arg)
local depth, width, batch = 16, 64, 128
local steps = ex.quick and 60 or 240
local lr = 0.05
local tail_n = steps // 5   -- the final loss: the mean over the last 20% of the steps

local configs = {
  { name = "none", options = {} },
  { name = "L2 1e-3", options = { weight_decay = 1e-3 }, kind = "L2" },
  { name = "L2 1e-2", options = { weight_decay = 1e-2 }, kind = "L2" },
  { name = "L2 5e-2", options = { weight_decay = 5e-2 }, kind = "L2" },
  { name = "L1 1e-4", options = { l1 = 1e-4 }, kind = "L1" },
  { name = "L1 1e-3", options = { l1 = 1e-3 }, kind = "L1" },
  { name = "L1 1e-2", options = { l1 = 1e-2 }, kind = "L1" },
}

gl.manual_seed(31)
local x_all, scores = gl.data.teacher(2048, 32, 10, 3)
local y_all = scores:argmax(2)

local function build()
  local layers = {}
  for l = 1, depth do
    layers[#layers + 1] = nn.Linear(l == 1 and 32 or width, width, { init = "xavier_normal", bias_init = 0 })
    layers[#layers + 1] = nn.Tanh()
  end
  layers[#layers + 1] = nn.Linear(width, 10, { init = "xavier_normal", bias_init = 0 })
  return nn.Sequential(layers)
end

-- Backward signal at the first and last hidden pre-activations (the Linear
-- outputs), and the first layer's gradient, on a fixed batch (norms by t:norm(),
-- exact down to float32's smallest values).
local x_probe, y_probe = x_all:narrow(1, 1, 256), y_all:narrow(1, 1, 256)
local function probe(model)
  local x, y = x_probe, y_probe
  local h, first, last = x, nil, nil
  for i = 1, model:size() do
    h = model:get(i)(h)
    if i == 1 then first = h; h:retain_grad() end
    if i == 2 * depth - 1 then last = h; h:retain_grad() end
  end
  gl.loss.cross_entropy(h, y):backward()
  local ratio = first.grad:norm():item() / last.grad:norm():item()
  local grad = model:get(1).weight.grad:norm():item()
  model:zero_grad()
  return ratio, grad
end

local function weight_stats(model)
  local norm, small, count, per_layer = 0, 0, 0, {}
  for l = 1, depth do
    local w = model:get(2 * l - 1).weight
    local near = w:abs():lt(1e-3):sum():item()
    norm = norm + w:norm():item() / depth
    small, count = small + near, count + w:numel()
    per_layer[l] = near / w:numel()
  end
  return norm, small / count, per_layer
end

local rows, total, done = {}, #configs * steps, 0
for ci, c in ipairs(configs) do
  gl.manual_seed(1)   -- the same initial weights for every run
  local model = build()
  local options = { lr = lr, momentum = 0.9 }
  for k, v in pairs(c.options) do options[k] = v end
  local opt = gl.optim.SGD(model, options)
  local mon = gl.monitor(model, { every = 5 })
  local loader = gl.data.loader(x_all, y_all, { batch = batch })
  c.ratio_x, c.ratio, c.grad = {}, {}, {}
  local step, tail = 0, 0
  while step < steps do
    for xb, yb in loader:epoch() do
      step = step + 1
      if step > steps then break end
      local loss = gl.loss.cross_entropy(model(xb), yb)
      opt:zero_grad()
      loss:backward()
      mon:record(step, { loss = loss })
      opt:step()
      if step % 10 == 1 or step == steps then
        local n = #c.ratio_x + 1
        c.ratio_x[n], c.ratio[n], c.grad[n] = step, probe(model)
      end
      if step > steps - tail_n then tail = tail + loss:item() / tail_n end
      done = done + 1
      gl.progress(done, total, { loss = loss })
    end
  end
  c.loss_end, c.ratio_start, c.ratio_end, c.grad_end = tail, c.ratio[1], c.ratio[#c.ratio], c.grad[#c.grad]
  c.loss_x, c.loss = mon:series("loss")
  c.weight_norm, c.near_zero, c.near_zero_layers = weight_stats(model)
  c.color = ci
  mon:to_csv(ex:path(c.name:gsub(" ", "_") .. ".csv"))
  rows[#rows + 1] = { c.name, c.ratio_start, c.ratio_end, c.grad_end, c.weight_norm, c.near_zero, tail }
  configs[c.name] = c
end
ex:table({ "penalty", "signal ratio, start", "signal ratio, end", "|dL/dW_1| end", "mean |W_l|", "|w| < 1e-3",
           "loss, last 20%" }, rows,
         ("%d-layer tanh MLP, SGD lr %g + momentum 0.9, %d steps; signal ratio = |dL/dz_1| / |dL/dz_%d|")
           :format(depth, lr, steps, depth))

-- The figures ----------------------------------------------------------------------
local function series(fx, fy, which)
  local list = {}
  for _, c in ipairs(configs) do
    if not which or c.kind == which or not c.kind then
      list[#list + 1] = { name = c.name, x = c[fx], y = c[fy], color = gl.plot.palette(c.color),
                          style = c.kind == "L1" and "dashed" or "solid" }
    end
  end
  return list
end
local layer_x = {}
for l = 1, depth do layer_x[l] = l end
local zero_series = {}
for _, c in ipairs(configs) do
  if c.kind == "L1" then
    zero_series[#zero_series + 1] = { name = c.name, x = layer_x, y = c.near_zero_layers, color = gl.plot.palette(c.color),
                                      style = "dashed", marker = true }
  end
end
gl.plot.grid{ path = ex:path("regularization.png"), cols = 2, width = 1800, height = 1300,
  title = ("L2 and L1 penalties on a tanh MLP of %d layers near the vanishing regime"):format(depth),
  panels = {
    { kind = "lines", title = "backward signal ratio first/last layer (1 = intact), fixed batch", xlabel = "step",
      ylabel = "|dL/dz_1| / |dL/dz_16|", logy = true, series = series("ratio_x", "ratio") },
    { kind = "lines", title = "first layer's gradient |dL/dW_1|, fixed batch", xlabel = "step", ylabel = "|dL/dW_1|",
      logy = true, series = series("ratio_x", "grad"), legend = false },
    { kind = "lines", title = "training loss", xlabel = "step", ylabel = "cross-entropy",
      series = series("loss_x", "loss"), legend = false },
    { kind = "lines", title = "L1: weights with |w| < 1e-3 per layer, end of training",
      xlabel = "layer (input -> output)", ylabel = "fraction of weights", series = zero_series },
  } }

-- The conclusions ----------------------------------------------------------------
local none, l2_mid, l2_big, l1_big = configs["none"], configs["L2 1e-3"], configs["L2 5e-2"], configs["L1 1e-2"]
print()
ex:claim(("strong L2 shrinks the weights, mean |W_l| %.2f with weight_decay 5e-2 vs %.2f, and the first layer's " ..
          "gradient, %.3g vs %.3g"):format(l2_big.weight_norm, none.weight_norm, l2_big.grad_end, none.grad_end),
  l2_big.weight_norm < none.weight_norm and l2_big.grad_end < none.grad_end)
ex:claim(("... and pushes the net into vanishing: signal ratio %.2e vs %.2e without a penalty (< 1/10)")
  :format(l2_big.ratio_end, none.ratio_end), l2_big.ratio_end < none.ratio_end / 10)
ex:claim(("... and slows learning: loss %.3f vs %.3f"):format(l2_big.loss_end, none.loss_end), l2_big.loss_end > none.loss_end)
ex:claim(("moderate L2 keeps the weights in check without hurting the gradient flow: weight_decay 1e-3 gives " ..
          "mean |W_l| %.2f vs %.2f, signal ratio %.2f vs %.2f (within 2x), loss %.3f vs %.3f")
  :format(l2_mid.weight_norm, none.weight_norm, l2_mid.ratio_end, none.ratio_end, l2_mid.loss_end, none.loss_end),
  l2_mid.weight_norm < none.weight_norm and l2_mid.ratio_end >= none.ratio_end / 2 and l2_mid.ratio_end <= 2 * none.ratio_end)
ex:claim(("strong L1 zeroes connections: %.1f%% of the weights end below 1e-3 (none: %.1f%%), signal ratio %.2e, loss %.3f")
  :format(100 * l1_big.near_zero, 100 * none.near_zero, l1_big.ratio_end, l1_big.loss_end),
  l1_big.near_zero > 10 * math.max(none.near_zero, 1e-3))
ex:finish()
return configs, ex
