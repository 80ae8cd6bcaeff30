-- scripts/activations.lua — which activations let the gradient through a deep net,
-- and how many units stop passing it (saturated or dead)?
--
-- Seven activations, each with the initialization the seed pairs it with
-- (Xavier for sigmoid and tanh, He for the ReLU family and GELU):
--   1. at initialization, over depth 5…40: the backward signal ratio
--      ‖∂L/∂z_1‖ / ‖∂L/∂z_L‖ (1 = the gradient reaches the first layer intact);
--   2. trained for a while at depth 10: which units still pass gradient.
-- One measure fits every activation: the local slope f'(z) of each unit on each
-- example (taken by autograd).  An entry is *blocked* when |f'(z)| < 0.005 (a
-- saturated sigmoid or tanh, a negative ReLU input), and a unit is *dead* when it
-- is blocked on every held-out example: it then learns nothing at all.
--
--   build/gradlab scripts/activations.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("activations", arg)
local width, batch = 128, ex.quick and 64 or 128
local depths = ex.quick and { 5, 10, 20 } or { 5, 10, 20, 40 }
local deepest = depths[#depths]
local train_depth, steps = ex.quick and 6 or 10, ex.quick and 25 or 150

local acts = {
  { key = "sigmoid", name = "sigmoid", make = nn.Sigmoid, init = "xavier_normal" },
  { key = "tanh", name = "tanh", make = nn.Tanh, init = "xavier_normal" },
  { key = "relu", name = "ReLU", make = nn.ReLU, init = "he_normal" },
  { key = "leaky", name = "LeakyReLU(0.01)", make = function() return nn.LeakyReLU(0.01) end, init = "he_normal" },
  { key = "elu", name = "ELU", make = nn.ELU, init = "he_normal" },
  { key = "prelu", name = "PReLU", make = function() return nn.PReLU() end, init = "he_normal" },
  { key = "gelu", name = "GELU", make = nn.GELU, init = "he_normal" },
}

gl.manual_seed(3)
local n_train = batch * 8
local x_all, scores = gl.data.teacher(n_train + 512, width, 10, 3)
local y_all = scores:argmax(2)
local x_train, y_train = x_all:narrow(1, 1, n_train), y_all:narrow(1, 1, n_train)
local x_test, y_test = x_all:narrow(1, n_train + 1, 512), y_all:narrow(1, n_train + 1, 512)

local function build(depth, act)
  local layers = {}
  for _ = 1, depth do
    layers[#layers + 1] = nn.Linear(width, width, { init = act.init, bias_init = 0 })
    layers[#layers + 1] = act.make()
  end
  layers[#layers + 1] = nn.Linear(width, 10, { init = act.init, bias_init = 0 })
  return nn.Sequential(layers)
end

-- One forward/backward on (x, y), layer by layer: per hidden layer the backward
-- signal ‖∂L/∂z_l‖, the fraction of blocked entries and of dead units.
local function measure(model, x, y)
  local h, zs, acts_of = x, {}, {}
  for i = 1, model:size() - 1, 2 do
    local z = model:get(i)(h)
    z:retain_grad()
    zs[#zs + 1], acts_of[#acts_of + 1] = z, model:get(i + 1)
    h = model:get(i + 1)(z)
  end
  gl.loss.cross_entropy(model:get(model:size())(h), y):backward()
  local signal, blocked, dead = {}, {}, {}
  for l, z in ipairs(zs) do
    signal[l] = z.grad:norm():item()
    local probe = gl.param(z:detach())            -- f'(z) by autograd, for any activation
    acts_of[l](probe):sum():backward()
    local small = probe.grad:abs():lt(0.005)      -- 1 where the unit passes < 0.5% of the gradient
    blocked[l] = small:mean():item()
    dead[l] = small:min(1):sum():item() / z:size(2)   -- blocked on every example
  end
  model:zero_grad()
  return signal, blocked, dead
end

local function mean(list) local s = 0; for _, v in ipairs(list) do s = s + v end; return s / #list end

-- 1. At initialization, over depth ------------------------------------------------------
local done, total = 0, #acts * (#depths + steps)
for ai, act in ipairs(acts) do
  act.ratio = {}
  for _, depth in ipairs(depths) do
    gl.manual_seed(depth)
    local signal, blocked, dead = measure(build(depth, act), x_test, y_test)
    act.ratio[#act.ratio + 1] = signal[1] == 0 and 0 or signal[1] / signal[depth]
    if depth == deepest then act.signal, act.blocked_init, act.dead_init = signal, blocked, dead end
    done = done + 1
    gl.progress(done, total)
  end
  act.deep_ratio = act.ratio[#act.ratio]

  -- 2. Training at depth train_depth ------------------------------------------------------
  gl.manual_seed(50 + ai)
  local model = build(train_depth, act)
  local mon = gl.monitor(model)
  local opt = gl.optim.SGD(model, { lr = 0.05, momentum = 0.9 })
  local loader = gl.data.loader(x_train, y_train, { batch = batch })
  local _, b0, d0 = measure(model, x_test, y_test)
  act.curve_x, act.curve_blocked, act.curve_dead = { 0 }, { mean(b0) }, { mean(d0) }
  local step = 0
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
      if step % 10 == 0 or step == steps then
        local _, b, d = measure(model, x_test, y_test)
        local n = #act.curve_x + 1
        act.curve_x[n], act.curve_blocked[n], act.curve_dead[n] = step, mean(b), mean(d)
      end
      done = done + 1
      gl.progress(done, total, { loss = loss })
    end
  end
  act.blocked_end, act.dead_end = act.curve_blocked[#act.curve_blocked], act.curve_dead[#act.curve_dead]
  act.loss_x, act.loss = mon:series("loss")
  mon:to_csv(ex:path(act.key .. ".csv"))
end

local rows = {}
for _, a in ipairs(acts) do
  rows[#rows + 1] = { a.name, a.init == "he_normal" and "He" or "Xavier", a.ratio[1], a.deep_ratio,
                      mean(a.dead_init), a.curve_blocked[1], a.curve_dead[1], a.blocked_end, a.dead_end,
                      a.loss[#a.loss] }
end
ex:table({ "activation", "init", ("ratio L=%d"):format(depths[1]), ("ratio L=%d"):format(deepest),
           ("dead@init L=%d"):format(deepest), "blocked@init", "dead@init", "blocked@end", "dead@end", "loss end" },
         rows, ("signal ratio |dL/dz_1|/|dL/dz_L| at init; blocked entries (|f'| < 0.005) and dead units " ..
          "(averaged over layers) at init and after %d steps of a %d-layer net"):format(steps, train_depth))

-- The figures ----------------------------------------------------------------------
local function series(field, x_field)
  local list = {}
  for i, a in ipairs(acts) do
    local xs = a[x_field] or {}
    if not a[x_field] then for l = 1, #a[field] do xs[l] = l end end
    list[i] = { name = a.name, x = xs, y = a[field], color = gl.plot.palette(i), marker = x_field == nil,
                style = i > 5 and "dashed" or nil }
  end
  return list
end
for _, a in ipairs(acts) do a.depths = depths end
gl.plot.grid{ path = ex:path("activations_depth.png"), cols = 3, width = 2100, height = 750,
  title = ("Seven activations at initialization (width %d): how much gradient reaches the first layer?"):format(width),
  panels = {
    { kind = "lines", title = "signal ratio first/last layer vs depth (1 = intact)", xlabel = "depth (hidden layers)",
      ylabel = "|dL/dz_1| / |dL/dz_L|", logy = true, series = series("ratio", "depths") },
    { kind = "lines", title = ("backward signal across a %d-layer net"):format(deepest), xlabel = "layer (input -> output)",
      ylabel = "|dL/dz_l|", logy = true, series = series("signal"), legend = false },
    { kind = "lines", title = ("blocked entries |f'(z)| < 0.005 per layer, %d layers"):format(deepest),
      xlabel = "layer (input -> output)", ylabel = "fraction of entries", series = series("blocked_init"),
      legend = false },
  } }
gl.plot.grid{ path = ex:path("activations_training.png"), cols = 3, width = 2100, height = 750,
  title = ("Training a %d-layer net (SGD + momentum, lr 0.05): do units saturate or die?"):format(train_depth),
  panels = {
    { kind = "lines", title = "blocked entries |f'(z)| < 0.005 (held-out data)", xlabel = "step",
      ylabel = "fraction of entries", series = series("curve_blocked", "curve_x") },
    { kind = "lines", title = "dead units (blocked on every held-out example)", xlabel = "step",
      ylabel = "fraction of units", series = series("curve_dead", "curve_x"), legend = false },
    { kind = "lines", title = "training loss", xlabel = "step", ylabel = "cross-entropy",
      series = series("loss", "loss_x"), legend = false },
  } }

-- The conclusions ----------------------------------------------------------------
local by = {}
for _, a in ipairs(acts) do by[a.key] = a end
local function within(v) return v >= 0.2 and v <= 5 end
print()
ex:claim(("sigmoid vanishes: ratio %.1e at depth %d (< 1e-3), tanh %.2f, ReLU %.2f")
  :format(by.sigmoid.deep_ratio, deepest, by.tanh.deep_ratio, by.relu.deep_ratio), by.sigmoid.deep_ratio < 1e-3)
ex:claim(("... though at init only %.1f%% of sigmoid entries are saturated: its slope <= 1/4 does it, not saturation")
  :format(100 * mean(by.sigmoid.blocked_init)), mean(by.sigmoid.blocked_init) < 0.05)
ex:claim(("ReLU's slope 1 keeps the signal: ratio %.2f at depth %d, within [0.2, 5]"):format(by.relu.deep_ratio, deepest),
  within(by.relu.deep_ratio))
ex:claim(("LeakyReLU, ELU and PReLU keep it as well: ratios %.2f, %.2f, %.2f, within [0.2, 5]")
  :format(by.leaky.deep_ratio, by.elu.deep_ratio, by.prelu.deep_ratio),
  within(by.leaky.deep_ratio) and within(by.elu.deep_ratio) and within(by.prelu.deep_ratio))
ex:claim(("GELU under He init keeps it too: ratio %.2f, within [0.2, 5]"):format(by.gelu.deep_ratio), within(by.gelu.deep_ratio))
ex:claim(("LeakyReLU and ELU never die: dead units after training %.3f and %.3f (ReLU %.3f)")
  :format(by.leaky.dead_end, by.elu.dead_end, by.relu.dead_end), by.leaky.dead_end == 0 and by.elu.dead_end == 0)
ex:claim(("fewer ReLU units die (%.1f%%) than sigmoid/tanh entries saturate (%.1f%% / %.1f%%) after training")
  :format(100 * by.relu.dead_end, 100 * by.sigmoid.blocked_end, 100 * by.tanh.blocked_end),
  by.relu.dead_end < by.sigmoid.blocked_end and by.relu.dead_end < by.tanh.blocked_end)
ex:finish()
return acts, ex
