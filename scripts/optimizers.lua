-- scripts/optimizers.lua — how do the optimizer and its learning rate drive a deep
-- net's gradients, and what does clipping the gradient norm change?
--
-- A 20-layer ReLU MLP (He init) on 10 Gaussian blobs in 32-d, trained with SGD,
-- SGD + momentum 0.9, Nesterov, Adam and RMSprop, each at its usual learning
-- rate ("low") and at 30x that ("high"), and at the high rate again with
-- clip_grad_norm(1).  For every run we follow the total gradient norm (before any
-- clipping) and the loss.  A run fails when its loss becomes NaN/Inf or ends
-- within 5% of a constant guess of the class frequencies (their entropy H): a
-- too-large step can also kill every ReLU instead of overflowing.
--
--   build/gradlab scripts/optimizers.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("optimizers", arg)
local width, depth = 64, 20
local batch, steps = 64, ex.quick and 60 or 200

local optimizers = {
  { name = "SGD", low = 0.01, make = function(p, lr) return gl.optim.SGD(p, { lr = lr }) end },
  { name = "momentum", low = 0.01, make = function(p, lr) return gl.optim.SGD(p, { lr = lr, momentum = 0.9 }) end },
  { name = "Nesterov", low = 0.01,
    make = function(p, lr) return gl.optim.SGD(p, { lr = lr, momentum = 0.9, nesterov = true }) end },
  { name = "Adam", low = 1e-3, make = function(p, lr) return gl.optim.Adam(p, { lr = lr }) end },
  { name = "RMSprop", low = 1e-3, make = function(p, lr) return gl.optim.RMSprop(p, { lr = lr }) end },
}
local settings = {
  { key = "low", name = "low lr", scale = 1, clip = nil },
  { key = "high", name = "high lr (30x)", scale = 30, clip = nil },
  { key = "clip", name = "high lr + clip_grad_norm(1)", scale = 30, clip = 1 },
}

gl.manual_seed(17)
local x_all, y_all = gl.data.blobs(1024, 10, 32, 1.0)
-- the loss of the best constant guess: the entropy of the label frequencies
local H = 0
for c = 1, 10 do
  local p = y_all:eq(c):mean():item()
  if p > 0 then H = H - p * math.log(p) end
end

local function build()
  local layers = { nn.Linear(32, width, { init = "he_normal", bias_init = 0 }), nn.ReLU() }
  for _ = 2, depth do
    layers[#layers + 1] = nn.Linear(width, width, { init = "he_normal", bias_init = 0 })
    layers[#layers + 1] = nn.ReLU()
  end
  layers[#layers + 1] = nn.Linear(width, 10, { init = "he_normal", bias_init = 0 })
  return nn.Sequential(layers)
end

local function finite(v) return v == v and v > -math.huge and v < math.huge end

local results, rows = {}, {}
local total, done = #optimizers * #settings * steps, 0
for _, setting in ipairs(settings) do
  for oi, o in ipairs(optimizers) do
    gl.manual_seed(1)   -- the same initial weights for every run
    local model = build()
    local lr = o.low * setting.scale
    local opt = o.make(model, lr)
    local mon = gl.monitor(model, { every = 5, activations = false })
    local loader = gl.data.loader(x_all, y_all, { batch = batch })
    local r = { optimizer = o.name, setting = setting.key, lr = lr, losses = {}, norms = {}, max_norm = 0 }
    local step = 0
    while step < steps and not r.nan_step do
      for xb, yb in loader:epoch() do
        step = step + 1
        if step > steps then break end
        local loss = gl.loss.cross_entropy(model(xb), yb)
        opt:zero_grad()
        loss:backward()
        -- the total norm before clipping (an infinite max_norm clips nothing)
        local norm = gl.optim.clip_grad_norm(model, setting.clip or math.huge)
        mon:record(step, { loss = loss })
        opt:step()
        r.losses[step], r.norms[step] = loss:item(), norm
        if finite(norm) then r.max_norm = math.max(r.max_norm, norm) end
        done = done + 1
        gl.progress(done, total, { loss = loss })
        if not finite(r.losses[step]) or not finite(norm) then r.nan_step = step; break end
      end
    end
    done = done + (steps - step)
    local tail, n = 0, 0
    for s = math.max(1, #r.losses - 19), #r.losses do tail, n = tail + r.losses[s], n + 1 end
    r.loss_end = r.nan_step and 0 / 0 or tail / n
    r.diverged = r.nan_step ~= nil or r.loss_end > 0.95 * H   -- NaN, or (almost) no better than a constant guess
    r.color = oi
    results[#results + 1], results[o.name .. " " .. setting.key] = r, r
    rows[#rows + 1] = { o.name, setting.name, lr, r.norms[1], r.max_norm, r.loss_end,
                        r.nan_step and ("NaN at step " .. r.nan_step) or (r.diverged and "stalled" or "trains") }
    mon:to_csv(ex:path(("%s_%s.csv"):format(o.name, setting.key)))
  end
end
ex:table({ "optimizer", "setting", "lr", "|g| step 1", "max |g|", "loss end", "outcome" }, rows,
         ("%d-layer ReLU MLP, %d steps: total gradient norm |g| (before clipping) and the loss of the last 20 steps " ..
          "(a constant guess scores H = %.3f)"):format(depth, steps, H))

-- The figures ----------------------------------------------------------------------
local panels = {}
for si, setting in ipairs(settings) do
  local loss_series, norm_series = {}, {}
  for _, r in ipairs(results) do
    if r.setting == setting.key then
      local name = ("%s (lr %g)"):format(r.optimizer, r.lr)
      loss_series[#loss_series + 1] = { name = name, y = r.losses, color = gl.plot.palette(r.color),
                                        style = r.color > 3 and "dashed" or "solid" }
      norm_series[#norm_series + 1] = { name = name, y = r.norms, color = gl.plot.palette(r.color),
                                        style = r.color > 3 and "dashed" or "solid" }
    end
  end
  if setting.clip then
    norm_series[#norm_series + 1] = { name = "clipping threshold", x = { 1, steps }, y = { setting.clip, setting.clip },
                                      color = "#000000", style = "dotted" }
  end
  panels[#panels + 1] = { kind = "lines", title = setting.name .. ": training loss", xlabel = "step",
    ylabel = "cross-entropy", logy = true, series = loss_series, legend = si == 1 }
  panels[#panels + 1] = { kind = "lines", title = setting.name .. ": total gradient norm before clipping", xlabel = "step",
    ylabel = "|g|", logy = true, series = norm_series, legend = si ~= 1 }
end
gl.plot.grid{ path = ex:path("optimizers.png"), cols = 2, width = 1800, height = 1800, panels = panels,
  title = ("Five optimizers on a %d-layer ReLU MLP: usual lr, 30x lr, and 30x lr with clip_grad_norm(1)")
    :format(depth) }

-- The conclusions ----------------------------------------------------------------
local function r(name, key) return results[name .. " " .. key] end
local function count(key, test)
  local n = 0
  for _, o in ipairs(optimizers) do if test(r(o.name, key)) then n = n + 1 end end
  return n
end
local failed = function(x) return x.diverged end
print()
ex:claim(("at the usual learning rates every optimizer trains: %d of %d fail"):format(count("low", failed), #optimizers),
  count("low", failed) == 0)
ex:claim(("a learning rate 30x too high makes training fail: %d of %d runs end at NaN or at the constant guess")
  :format(count("high", failed), #optimizers), count("high", failed) >= 3)
ex:claim(("momentum compounds it: max |g| %.3g (momentum), %.3g (Nesterov) vs %.3g (plain SGD) at lr %g")
  :format(r("momentum", "high").max_norm, r("Nesterov", "high").max_norm, r("SGD", "high").max_norm, r("SGD", "high").lr),
  r("momentum", "high").max_norm > r("SGD", "high").max_norm and r("Nesterov", "high").max_norm > r("SGD", "high").max_norm)
ex:claim(("Adam's adaptive steps keep its gradients from exploding at 30x lr: max |g| %.3g vs %.3g at its usual lr " ..
          "(within 10x)"):format(r("Adam", "high").max_norm, r("Adam", "low").max_norm),
  r("Adam", "high").max_norm <= 10 * r("Adam", "low").max_norm)
ex:claim(("clip_grad_norm(1) rescues runs at the high learning rate: %d of %d fail with it vs %d without")
  :format(count("clip", failed), #optimizers, count("high", failed)), count("clip", failed) < count("high", failed))
ex:claim(("... but not for Adam and RMSprop, which divide the gradient by its own running size: loss %.3f and %.3f " ..
          "with clipping vs %.3f and %.3f without"):format(r("Adam", "clip").loss_end, r("RMSprop", "clip").loss_end,
          r("Adam", "high").loss_end, r("RMSprop", "high").loss_end),
  r("Adam", "clip").diverged == r("Adam", "high").diverged and r("RMSprop", "clip").diverged == r("RMSprop", "high").diverged)
ex:finish()
return results, ex
