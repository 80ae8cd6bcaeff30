-- scripts/init.lua — does the weight initialization decide whether a deep net's
-- signal survives its depth?
--
-- Six initializations (N(0, 0.01²), N(0, 0.2²), Xavier, He, LeCun, orthogonal
-- with the activation's gain) for ReLU and tanh MLPs of depth 5…50.  At
-- initialization we measure the backward signal ‖∂L/∂z_l‖ at every layer's
-- pre-activation and the activations' std, and summarise each net by the
-- ratio first/last of the backward signal: 1 means the gradient reaches the
-- first layer intact, 1e-6 that it vanished, 1e6 that it exploded.
-- (For square layers Xavier and LeCun are the same variance, 1/width: only the
-- first layer, fed by the data, differs.  The ratio is read from the backward
-- signal, not the weight gradients, for the reason scripts/vanishing.lua shows.)
--
-- Then: zero vs a small positive bias (0.01) in a ReLU net, and the fraction of
-- dead units (a unit that outputs 0 for every example of a batch) at
-- initialization and after training.
--
--   build/gradlab scripts/init.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("init", arg)
local width = 128
local batch = ex.quick and 64 or 128
local depths = ex.quick and { 5, 10, 20 } or { 5, 10, 20, 30, 50 }
local deepest = depths[#depths]

local function normal(std) return function(t) gl.init.normal(t, 0, std) end end
local inits = {
  { name = "std 0.01", init = normal(0.01) },
  { name = "std 0.2", init = normal(0.2) },
  { name = "Xavier", init = "xavier_normal" },
  { name = "He", init = "he_normal" },
  { name = "LeCun", init = "lecun_normal", style = "dashed" },   -- dashed: it lies on Xavier's line
  { name = "orthogonal", per_act = function(act)
      return function(t) gl.init.orthogonal(t, gl.init.gain(act.key)) end end },
}
local acts = { { key = "relu", name = "ReLU", module = nn.ReLU }, { key = "tanh", name = "tanh", module = nn.Tanh } }

-- A classification task (labels: a random teacher's argmax): a training set,
-- a held-out set, and the fixed batch the sweep measures on.
gl.manual_seed(7)
local n_train = batch * 8
local x_all, scores = gl.data.teacher(n_train + 512, width, 10, 3)
local y_all = scores:argmax(2)
local x_train, y_train = x_all:narrow(1, 1, n_train), y_all:narrow(1, 1, n_train)
local x_test = x_all:narrow(1, n_train + 1, 512)
local x0, y0 = x_train:narrow(1, 1, batch), y_train:narrow(1, 1, batch)

-- depth hidden layers Linear -> activation, then a 10-way head.
local function build(depth, act, init, bias)
  local layers = {}
  for _ = 1, depth do
    layers[#layers + 1] = nn.Linear(width, width, { init = init, bias_init = bias or 0 })
    layers[#layers + 1] = act.module()
  end
  layers[#layers + 1] = nn.Linear(width, 10, { init = init, bias_init = 0 })
  return nn.Sequential(layers)
end

-- One forward/backward at initialization, layer by layer: per hidden layer the
-- backward signal at the pre-activation z_l = W_l h_(l-1) + b_l and the std of
-- the activation h_l.  (Norms through t:norm(), and std scaled by the largest
-- value, stay exact for the 1e-30 values of a vanished signal.)
local function std_of(t)
  local top = t:abs():max():item()
  return top > 0 and top * (t / top):stats().std or 0
end

local function measure(model, depth)
  local h, z, std = x0, {}, {}
  for i = 1, model:size() do
    h = model:get(i)(h)
    if i % 2 == 1 and i < model:size() then z[#z + 1] = h; h:retain_grad() end
    if i % 2 == 0 then std[#std + 1] = std_of(h) end
  end
  gl.loss.cross_entropy(h, y0):backward()
  local signal = {}
  for l = 1, depth do signal[l] = z[l].grad:norm():item() end
  -- the ratio is 0 when nothing reaches the first layer (even if the last gets 0 too)
  return signal, std, signal[1] == 0 and 0 or signal[1] / signal[depth]
end

-- 1. The depth sweep ------------------------------------------------------------
local results, rows = {}, {}
local total, done = #acts * #inits * #depths, 0
for _, act in ipairs(acts) do
  for _, init in ipairs(inits) do
    local r = { act = act.name, init = init.name, ratio = {} }
    for _, depth in ipairs(depths) do
      gl.manual_seed(depth)
      local signal, std, ratio = measure(build(depth, act, init.per_act and init.per_act(act) or init.init), depth)
      r.ratio[#r.ratio + 1] = ratio
      if depth == deepest then r.signal, r.std = signal, std end
      done = done + 1
      gl.progress(done, total)
    end
    r.deep_ratio, r.last_std = r.ratio[#r.ratio], r.std[deepest]
    results[act.name .. " " .. init.name] = r
    results[#results + 1] = r
    rows[#rows + 1] = { act.name, init.name, r.ratio[1], r.ratio[#r.ratio], r.std[1], r.last_std }
  end
end
ex:table({ "act", "init", ("signal ratio L=%d"):format(depths[1]), ("signal ratio L=%d"):format(deepest),
           "act std layer 1", ("act std layer %d"):format(deepest) }, rows,
         ("at initialization (width %d): backward signal |dL/dz_1| / |dL/dz_L|, and the activations' std")
           :format(width))

-- 2. Zero vs small positive bias, and dead ReLUs ------------------------------------
-- Fraction of units of each ReLU layer that output 0 for every example of x.
local function dead_fraction(model, x)
  local dead, units = 0, 0
  gl.no_grad(function()
    local h = x
    for i = 1, model:size() do
      h = model:get(i)(h)
      if getmetatable(model:get(i)) == nn.ReLU then
        dead = dead + h:max(1):eq(0):sum():item()
        units = units + h:size(2)
      end
    end
  end)
  return dead / units
end

local bias_depth, steps = ex.quick and 10 or 20, ex.quick and 20 or 100
local tiny = normal(0.01)
local bias_configs = {   -- same seed within a weight init: the nets differ only by their bias
  { name = "He, bias 0", init = "he_normal", bias = 0, seed = 1, color = 1, style = "solid" },
  { name = "He, bias 0.01", init = "he_normal", bias = 0.01, seed = 1, color = 1, style = "dashed" },
  { name = "He, bias 0.1", init = "he_normal", bias = 0.1, seed = 1, color = 1, style = "dotted" },
  { name = "std 0.01, bias 0", init = tiny, bias = 0, seed = 2, color = 2, style = "solid" },
  { name = "std 0.01, bias 0.01", init = tiny, bias = 0.01, seed = 2, color = 2, style = "dashed" },
}
local bias_rows, loss_series, dead_series = {}, {}, {}
for ci, c in ipairs(bias_configs) do
  gl.manual_seed(100 + c.seed)
  local model = build(bias_depth, acts[1], c.init, c.bias)
  local mon = gl.monitor(model)
  local opt = gl.optim.SGD(model, { lr = 0.05, momentum = 0.9 })
  local loader = gl.data.loader(x_train, y_train, { batch = batch })
  c.dead_init = dead_fraction(model, x_test)
  local xs, dead, step = { 0 }, { c.dead_init }, 0
  while step < steps do
    for xb, yb in loader:epoch() do
      step = step + 1
      if step > steps then break end
      local loss = gl.loss.cross_entropy(model(xb), yb)
      opt:zero_grad()
      loss:backward()
      gl.optim.clip_grad_norm(model, 5)
      mon:record(step, { loss = loss })
      opt:step()
      if step % 5 == 0 then xs[#xs + 1], dead[#dead + 1] = step, dead_fraction(model, x_test) end
      gl.progress((ci - 1) * steps + step, #bias_configs * steps, { loss = loss })
    end
  end
  c.dead_end = dead[#dead]
  local lx, ly = mon:series("loss")
  c.loss_end = ly[#ly]
  mon:to_csv(ex:path(("bias_%d.csv"):format(ci)))
  local color = gl.plot.palette(c.color)
  dead_series[ci] = { name = c.name, x = xs, y = dead, color = color, style = c.style }
  loss_series[ci] = { name = c.name, x = lx, y = ly, color = color, style = c.style }
  bias_rows[ci] = { c.name, c.dead_init, c.dead_end, ly[1], c.loss_end }
end
ex:table({ ("ReLU net, %d layers"):format(bias_depth), "dead at init", ("dead after %d steps"):format(steps),
           "loss 0", "loss end" }, bias_rows,
         "dead units (output 0 for all 512 held-out examples), zero vs small positive bias")

-- The figures --------------------------------------------------------------------
local function series_over(field, act, x_of)
  local list = {}
  for i, init in ipairs(inits) do
    local r = results[act.name .. " " .. init.name]
    local xs = {}
    for l = 1, #r[field] do xs[l] = x_of and x_of[l] or l end
    local zero = true
    for _, v in ipairs(r[field]) do zero = zero and v == 0 end
    list[i] = { name = init.name .. (zero and " (all exactly 0)" or ""), x = xs, y = r[field],
                color = gl.plot.palette(i), style = init.style, marker = true }
  end
  return list
end
local panels = {}
for _, act in ipairs(acts) do
  panels[#panels + 1] = { kind = "lines", title = ("%s, %d layers: backward signal |dL/dz_l|"):format(act.name, deepest),
    xlabel = "layer (input -> output)", ylabel = "|dL/dz_l|", logy = true, series = series_over("signal", act) }
  panels[#panels + 1] = { kind = "lines", title = ("%s, %d layers: activation std"):format(act.name, deepest),
    xlabel = "layer (input -> output)", ylabel = "std of the activations", logy = true,
    series = series_over("std", act), legend = false }
  panels[#panels + 1] = { kind = "lines", title = act.name .. ": signal ratio first/last vs depth (1 = intact)",
    xlabel = "depth (hidden layers)", ylabel = "|dL/dz_1| / |dL/dz_L|", logy = true,
    series = series_over("ratio", act, depths), legend = false }
end
gl.plot.grid{ path = ex:path("init_depth.png"), cols = 3, width = 2100, height = 1300, panels = panels,
  title = ("Six initializations at initialization, width %d: does the signal survive depth? (rows: ReLU, tanh)")
    :format(width) }
gl.plot.grid{ path = ex:path("dead_relu.png"), cols = 2, width = 1800, height = 700, panels = {
  { kind = "lines", title = "dead ReLU units (0 on all held-out examples)", xlabel = "training step",
    ylabel = "fraction of units", series = dead_series },
  { kind = "lines", title = "training loss", xlabel = "step", ylabel = "cross-entropy", series = loss_series,
    legend = false } },
  title = ("ReLU net of %d layers: bias 0 (solid), 0.01 (dashed), 0.1 (dotted); He vs N(0, 0.01^2) weights")
    :format(bias_depth) }

-- The conclusions --------------------------------------------------------------------
local function r(act, init) return results[act .. " " .. init] end
local function within(v, lo, hi) return v >= lo and v <= hi end
print()
ex:claim(("ReLU + He keeps the backward signal over %d layers: ratio first/last %.2f, within [0.2, 5]")
  :format(deepest, r("ReLU", "He").deep_ratio), within(r("ReLU", "He").deep_ratio, 0.2, 5))
ex:claim(("tanh + Xavier keeps it too: ratio %.2f, within [0.2, 5]"):format(r("tanh", "Xavier").deep_ratio),
  within(r("tanh", "Xavier").deep_ratio, 0.2, 5))
ex:claim(("too small weights vanish: std 0.01 gives ratio %.1e (ReLU) and %.1e (tanh), below 1e-3")
  :format(r("ReLU", "std 0.01").deep_ratio, r("tanh", "std 0.01").deep_ratio),
  r("ReLU", "std 0.01").deep_ratio < 1e-3 and r("tanh", "std 0.01").deep_ratio < 1e-3)
ex:claim(("too large weights explode with ReLU: std 0.2 gives ratio %.1e (> 1e3) and activation std %.1e at layer %d")
  :format(r("ReLU", "std 0.2").deep_ratio, r("ReLU", "std 0.2").last_std, deepest),
  r("ReLU", "std 0.2").deep_ratio > 1e3)
ex:claim(("Xavier under ReLU halves the signal's energy per layer: ratio %.1e at depth %d (< 0.1)")
  :format(r("ReLU", "Xavier").deep_ratio, deepest), r("ReLU", "Xavier").deep_ratio < 0.1)
ex:claim(("orthogonal with ReLU's gain sqrt 2 keeps the signal like He: ratio %.2f, within [0.2, 5]")
  :format(r("ReLU", "orthogonal").deep_ratio), within(r("ReLU", "orthogonal").deep_ratio, 0.2, 5))
ex:claim(("for tanh the gain 5/3 errs the other way: the signal grows, ratio %.2f (He) and %.2f (orthogonal) > 1")
  :format(r("tanh", "He").deep_ratio, r("tanh", "orthogonal").deep_ratio),
  r("tanh", "He").deep_ratio > 1 and r("tanh", "orthogonal").deep_ratio > 1)
local he0, he1, he2, tiny0, tiny1 = table.unpack(bias_configs)
ex:claim(("a small positive bias keeps more ReLUs alive under He: dead after training %.3f (bias 0.01), " ..
          "%.3f (bias 0.1) vs %.3f (bias 0)"):format(he1.dead_end, he2.dead_end, he0.dead_end),
  he1.dead_end < he0.dead_end and he2.dead_end < he0.dead_end)
ex:claim(("with tiny weights the bias decides: %.3f dead with bias 0.01 vs %.3f with bias 0")
  :format(tiny1.dead_end, tiny0.dead_end), tiny1.dead_end < tiny0.dead_end)
ex:finish()
return { sweep = results, bias = bias_configs }, ex
