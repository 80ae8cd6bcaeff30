-- scripts/residual.lua — do skip connections carry the gradient through very deep
-- nets, and do they cure the "degradation" of deep plain nets?
--
-- Three ways to stack L blocks on 3-class spirals (a stem Linear(2, 64) -> ReLU,
-- the blocks, then a linear head), every weight He-initialized, no normalization:
--   plain     h <- ReLU(W h)
--   residual  h <- h + W' ReLU(h)          (W' scaled by 1/sqrt(L), so the sum of L
--                                           branches keeps the variance bounded)
--   dense     h <- cat(h, ReLU(W h))       (DenseNet: each block adds 8 features
--                                           and sees all earlier ones)
-- at depths 10, 50 and 100.  We read the gradient of the first layer (the stem)
-- and the backward signal reaching it, at initialization and over training, and
-- the training loss: a plain net that trains worse as it gets deeper, although
-- a deeper net could always copy a shallower one, is the "degradation" problem.
--
--   build/gradlab scripts/residual.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("residual", arg)
-- (--quick: narrower, depths 10 and 50, a larger learning rate to learn in fewer steps)
local width, growth, batch = ex.quick and 32 or 64, ex.quick and 4 or 8, ex.quick and 64 or 128
local depths = ex.quick and { 10, 50 } or { 10, 50, 100 }
local steps, lr = ex.quick and 150 or 200, ex.quick and 3e-3 or 1e-3

local function he_scaled(scale)
  return function(t) gl.init.he_normal(t); t:mul_(scale) end
end

local archs = {
  { key = "plain", name = "plain", block = function() return nn.Sequential{ nn.Linear(width, width, { init = "he_normal", bias_init = 0 }), nn.ReLU() } end },
  { key = "residual", name = "residual", block = function(_, depth)
      return nn.Residual(nn.Sequential{ nn.ReLU(), nn.Linear(width, width, { init = he_scaled(1 / math.sqrt(depth)), bias_init = 0 }) })
    end },
  { key = "dense", name = "dense", block = function(features)
      return nn.Dense(nn.Sequential{ nn.Linear(features, growth, { init = "he_normal", bias_init = 0 }), nn.ReLU() })
    end },
}

gl.manual_seed(5)
local x_train, y_train = gl.data.spirals(1024, 3)
local x0, y0 = x_train:narrow(1, 1, batch), y_train:narrow(1, 1, batch)

local function build(arch, depth)
  local stem = nn.Linear(2, width, { init = "he_normal", bias_init = 0 })
  local layers, features = { stem, nn.ReLU() }, width
  for _ = 1, depth do
    layers[#layers + 1] = arch.block(features, depth)
    if arch.key == "dense" then features = features + growth end
  end
  layers[#layers + 1] = nn.Linear(features, 3, { init = "xavier_normal", bias_init = 0 })
  return nn.Sequential(layers), stem
end

-- At initialization: the stem's weight gradient, and the backward signal at the
-- stem's output against the one at the head's input (1 = nothing lost).
local function at_init(model)
  local h = model:get(1)(x0)
  h:retain_grad()
  local top = h
  for i = 2, model:size() - 1 do top = model:get(i)(top) end
  top:retain_grad()
  gl.loss.cross_entropy(model:get(model:size())(top), y0):backward()
  local ratio = h.grad:norm():item() / top.grad:norm():item()
  local first = model:get(1).weight.grad:norm():item()
  model:zero_grad()
  return first, ratio
end

local results, rows = {}, {}
local total, done = #archs * #depths * steps, 0
for ai, arch in ipairs(archs) do
  for _, depth in ipairs(depths) do
    gl.manual_seed(depth)
    local model, stem = build(arch, depth)
    local grad0, ratio = at_init(model)
    local mon = gl.monitor(model, { every = 5, activations = false })
    local opt = gl.optim.Adam(model, { lr = lr })
    local loader = gl.data.loader(x_train, y_train, { batch = batch })
    local step, losses = 0, {}
    while step < steps do
      for xb, yb in loader:epoch() do
        step = step + 1
        if step > steps then break end
        local loss = gl.loss.cross_entropy(model(xb), yb)
        opt:zero_grad()
        loss:backward()
        mon:record(step, { loss = loss })
        opt:step()
        losses[step] = loss:item()
        done = done + 1
        gl.progress(done, total, { loss = loss })
      end
    end
    local tail = 0
    for s = steps - 19, steps do tail = tail + losses[s] / 20 end
    local gx, gy = mon:series("1.weight", "grad_norm")
    local r = { arch = arch.name, depth = depth, grad0 = grad0, ratio = ratio, loss_end = tail, losses = losses,
                grad_x = gx, grad_y = gy, color = ai, params = 0 }
    for _, p in ipairs(model:parameters()) do r.params = r.params + p:numel() end
    results[#results + 1], results[arch.key .. depth] = r, r
    rows[#rows + 1] = { arch.name, depth, r.params, grad0, ratio, losses[1], tail }
    mon:to_csv(ex:path(("%s_%d.csv"):format(arch.key, depth)))
  end
end
ex:table({ "blocks", "depth", "parameters", "|dL/dW_1| init", "signal stem/top", "loss 0",
           ("loss (last 20 of %d)"):format(steps) }, rows,
         ("first layer's weight gradient and backward signal at initialization; training loss (Adam, lr %g)"):format(lr))

-- The figures ----------------------------------------------------------------------
local styles = { "dotted", "dashed", "solid" }
local function series_of(field_x, field_y, smooth)
  local list = {}
  for _, r in ipairs(results) do
    local ys, xs = r[field_y], r[field_x]
    if smooth then   -- moving average over 10 steps
      local s, acc = {}, 0
      for i, v in ipairs(ys) do acc = acc + v - (ys[i - 10] or 0); s[i] = acc / math.min(i, 10) end
      ys = s
    end
    local di = 1
    for i, d in ipairs(depths) do if d == r.depth then di = i + (3 - #depths) end end
    list[#list + 1] = { name = ("%s, %d"):format(r.arch, r.depth), x = xs, y = ys, color = gl.plot.palette(r.color),
                        style = styles[di] }
  end
  return list
end
local depth_series = {}
for ai, arch in ipairs(archs) do
  local xs, grad, ratio, loss = {}, {}, {}, {}
  for _, d in ipairs(depths) do
    local r = results[arch.key .. d]
    xs[#xs + 1], grad[#grad + 1], ratio[#ratio + 1], loss[#loss + 1] = d, r.grad0, r.ratio, r.loss_end
  end
  depth_series[ai] = { name = arch.name, x = xs, loss = loss, ratio = ratio, color = gl.plot.palette(ai) }
end
local function by_depth(field)
  local list = {}
  for i, s in ipairs(depth_series) do list[i] = { name = s.name, x = s.x, y = s[field], color = s.color, marker = true } end
  return list
end
gl.plot.grid{ path = ex:path("residual.png"), cols = 2, width = 1800, height = 1300,
  title = ("Plain vs residual vs dense blocks on spirals (width %d, He init, no normalization, Adam lr %g)")
    :format(width, lr),
  panels = {
    { kind = "lines", title = "training loss (moving average of 10 steps)", xlabel = "step", ylabel = "cross-entropy",
      logy = true, series = series_of(nil, "losses", true) },
    { kind = "lines", title = "first layer's gradient |dL/dW_1| over training", xlabel = "step", ylabel = "|dL/dW_1|",
      logy = true, series = series_of("grad_x", "grad_y"), legend = false },
    { kind = "lines", title = "backward signal reaching the first layer at init (1 = intact)",
      xlabel = "depth (blocks)", ylabel = "|dL/dh_stem| / |dL/dh_top|", logy = true, series = by_depth("ratio") },
    { kind = "lines", title = ("final training loss (mean of the last 20 of %d steps)"):format(steps),
      xlabel = "depth (blocks)", ylabel = "cross-entropy", logy = true, series = by_depth("loss"), legend = false },
  } }

-- The conclusions ----------------------------------------------------------------
local function r(key, d) return results[key .. d] end
local shallow, deep = depths[1], depths[#depths]
print()
ex:claim(("plain nets degrade with depth: final loss %.3f at %d blocks, worse than %.3f at %d")
  :format(r("plain", deep).loss_end, deep, r("plain", shallow).loss_end, shallow),
  r("plain", deep).loss_end > r("plain", shallow).loss_end)
ex:claim(("residual nets do not: %.3f at %d blocks, no worse than %.3f at %d")
  :format(r("residual", deep).loss_end, deep, r("residual", shallow).loss_end, shallow),
  r("residual", deep).loss_end <= r("residual", shallow).loss_end)
ex:claim(("nor dense nets: %.3f at %d blocks, no worse than %.3f at %d")
  :format(r("dense", deep).loss_end, deep, r("dense", shallow).loss_end, shallow),
  r("dense", deep).loss_end <= r("dense", shallow).loss_end)
ex:claim(("at %d blocks the skips train better than the plain net: loss %.3f (residual), %.3f (dense) vs %.3f")
  :format(deep, r("residual", deep).loss_end, r("dense", deep).loss_end, r("plain", deep).loss_end),
  r("residual", deep).loss_end < r("plain", deep).loss_end and r("dense", deep).loss_end < r("plain", deep).loss_end)
ex:claim(("the skip path delivers the gradient: signal stem/top %.2f (residual), %.2f (dense), %.2f (plain) at %d blocks")
  :format(r("residual", deep).ratio, r("dense", deep).ratio, r("plain", deep).ratio, deep),
  r("residual", deep).ratio >= 0.5 and r("dense", deep).ratio >= 0.5)
ex:finish()
return results, ex
