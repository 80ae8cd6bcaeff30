-- scripts/large_batch.lua — can a 32x larger batch keep up if the learning rate
-- is scaled 32x, and why does that need a warm-up?
--
-- An 8-layer ReLU MLP (He init, plain SGD) on 10 Gaussian blobs, every
-- run seeing the same number of examples (epochs), compared per epoch:
--   batch 32    lr eta                       (the reference)
--   batch 1024  lr eta                       (32x fewer steps at the same lr)
--   batch 1024  lr 32 eta                    (linear scaling, from the first step)
--   batch 1024  lr 32 eta after a warm-up    (lr ramps up over the first epochs)
--   ... then cosine decay, or cosine with warm restarts.
-- We follow the loss, the total gradient norm and the learning rate; a run that
-- reaches NaN/Inf stops there.
--
--   build/gradlab scripts/large_batch.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn
local optim = gl.optim

local ex = gl.experiment("large_batch", arg)
local n, epochs = ex.quick and 4096 or 8192, 10
local eta, small, large = 0.02, 32, 1024
local k = large // small
local large_steps = epochs * n // large
local warm = math.max(2, large_steps // 5)   -- warm-up over the first 20% of the large-batch steps

gl.manual_seed(23)
local x_all, y_all = gl.data.blobs(n + 1024, 10, 32, 0.7)
local x_train, y_train = x_all:narrow(1, 1, n), y_all:narrow(1, 1, n)
local x_test, y_test = x_all:narrow(1, n + 1, 1024), y_all:narrow(1, n + 1, 1024)

local function build()
  local layers = { nn.Linear(32, 64, { init = "he_normal", bias_init = 0 }), nn.ReLU() }
  for _ = 2, 8 do
    layers[#layers + 1] = nn.Linear(64, 64, { init = "he_normal", bias_init = 0 })
    layers[#layers + 1] = nn.ReLU()
  end
  layers[#layers + 1] = nn.Linear(64, 10, { init = "he_normal", bias_init = 0 })
  return nn.Sequential(layers)
end

-- schedule(opt) returns a schedule to step once per step (or nil: constant lr).
local runs = {
  { key = "b32", name = ("batch %d, lr %g"):format(small, eta), batch = small, lr = eta },
  { key = "b1024", name = ("batch %d, lr %g"):format(large, eta), batch = large, lr = eta },
  { key = "scaled", name = ("batch %d, lr %g"):format(large, k * eta), batch = large, lr = k * eta },
  { key = "warmup", name = ("... + %d warm-up steps"):format(warm), batch = large, lr = k * eta,
    schedule = function(opt) return optim.warmup(opt, warm) end },
  { key = "cosine", name = "... + warm-up + cosine", batch = large, lr = k * eta,
    schedule = function(opt) return optim.warmup(opt, warm, optim.cosine(opt, large_steps - warm)) end },
  { key = "restarts", name = "... + warm-up + cosine restarts", batch = large, lr = k * eta,
    schedule = function(opt) return optim.warmup(opt, warm, optim.cosine_restarts(opt, (large_steps - warm) // 3)) end },
}

local function finite(v) return v == v and v > -math.huge and v < math.huge end
local function held_out(model)
  return gl.no_grad(function() return gl.loss.cross_entropy(model(x_test), y_test):item() end)
end

local total = 0
for _, run in ipairs(runs) do total = total + epochs * n // run.batch end
local done, rows = 0, {}
for ri, run in ipairs(runs) do
  gl.manual_seed(1)   -- the same initial weights for every run
  local model = build()
  local opt = optim.SGD(model, { lr = run.lr })
  local schedule = run.schedule and run.schedule(opt)
  local mon = gl.monitor(model, { every = math.max(1, 8 * small // run.batch), activations = false })
  local loader = gl.data.loader(x_train, y_train, { batch = run.batch, drop_last = true })
  run.epoch, run.loss, run.norm, run.lrs = {}, {}, {}, {}
  run.max_norm_early = 0
  local step, steps = 0, epochs * n // run.batch
  for _ = 1, epochs do
    for xb, yb in loader:epoch() do
      step = step + 1
      local lr = opt.lr
      local loss = gl.loss.cross_entropy(model(xb), yb)
      opt:zero_grad()
      loss:backward()
      local norm = optim.clip_grad_norm(model, math.huge)   -- measures the total norm, clips nothing
      mon:record(step, { loss = loss })
      opt:step()
      if schedule then schedule:step() end
      local e = step * run.batch / n
      run.epoch[step], run.loss[step], run.norm[step], run.lrs[step] = e, loss:item(), norm, lr
      if e <= 1 and finite(norm) then run.max_norm_early = math.max(run.max_norm_early, norm) end
      done = done + 1
      gl.progress(done, total, { loss = loss })
      if not finite(run.loss[step]) then run.nan_step = step; break end
    end
    if run.nan_step then break end
  end
  done = done + steps - step
  run.held_out = run.nan_step and 0 / 0 or held_out(model)
  run.color = ri
  mon:to_csv(ex:path(run.key .. ".csv"))
  rows[#rows + 1] = { run.name, steps, run.max_norm_early, run.nan_step and ("NaN at step " .. run.nan_step) or run.held_out }
  runs[run.key] = run
end
ex:table({ ("run (%d epochs of %d examples)"):format(epochs, n), "steps", "max |g| epoch 1", "held-out loss" }, rows,
         "SGD on an 8-layer ReLU MLP; |g| = total gradient norm")

-- The figures ----------------------------------------------------------------------
local function series(field, smooth, last_epoch)
  local list = {}
  for _, run in ipairs(runs) do
    local ys, xs = run[field], run.epoch
    if smooth and run.batch == small then   -- batch-32 values are noisy: a moving average over 32 steps
      local s, acc = {}, 0
      for i, v in ipairs(ys) do acc = acc + v - (ys[i - 32] or 0); s[i] = acc / math.min(i, 32) end
      ys = s
    end
    if last_epoch then   -- only the first epochs
      local cx, cy = {}, {}
      for i, e in ipairs(xs) do if e <= last_epoch then cx[#cx + 1], cy[#cy + 1] = e, ys[i] end end
      xs, ys = cx, cy
    end
    list[#list + 1] = { name = run.name, x = xs, y = ys, color = gl.plot.palette(run.color),
                        style = run.color >= 5 and "dashed" or "solid" }
  end
  return list
end
gl.plot.grid{ path = ex:path("large_batch.png"), cols = 2, width = 1800, height = 1300,
  title = ("Batch %d vs %d (same epochs), linear lr scaling x%d, warm-up, cosine and warm restarts")
    :format(small, large, k),
  panels = {
    { kind = "lines", title = "training loss (batch 32: moving average)", xlabel = "epoch", ylabel = "cross-entropy",
      logy = true, series = series("loss", true), legend = false },
    { kind = "lines", title = "the first two epochs", xlabel = "epoch", ylabel = "cross-entropy", logy = true,
      series = series("loss", true, 2) },
    { kind = "lines", title = "total gradient norm (batch 32: moving average)", xlabel = "epoch", ylabel = "|g|",
      logy = true, series = series("norm", true), legend = false },
    { kind = "lines", title = "learning rate", xlabel = "epoch", ylabel = "lr", logy = true, series = series("lrs"),
      legend = false },
  } }

-- The conclusions ----------------------------------------------------------------
local b32, b1024, scaled, warmup, cosine, restarts = runs.b32, runs.b1024, runs.scaled, runs.warmup, runs.cosine,
                                                    runs.restarts
-- a run that reached NaN scores worse than any finite loss
local function score(run) return run.nan_step and math.huge or run.held_out end
local function text(run) return run.nan_step and ("NaN at step " .. run.nan_step) or ("%.3f"):format(run.held_out) end
print()
ex:claim(("at the same lr, batch %d falls behind per epoch: held-out loss %s vs %s at batch %d")
  :format(large, text(b1024), text(b32), small), score(b1024) > score(b32))
ex:claim(("scaling the lr %dx from the first step hurts: held-out loss %s vs %s with a warm-up")
  :format(k, text(scaled), text(warmup)), score(scaled) > score(warmup))
ex:claim(("... through explosive early updates: max |g| in epoch 1 %.3g without warm-up vs %.3g with it%s")
  :format(scaled.max_norm_early, warmup.max_norm_early,
          scaled.nan_step and (", NaN at step " .. scaled.nan_step) or ""),
  scaled.max_norm_early > warmup.max_norm_early or (scaled.nan_step ~= nil and scaled.nan_step <= n // large))
ex:claim(("with a warm-up the scaled lr catches up: held-out loss %s vs %s at batch %d (within 1.5x)")
  :format(text(warmup), text(b32), small), score(warmup) <= 1.5 * score(b32))
ex:claim(("cosine decay after the warm-up ends lower than a constant lr: %s vs %s"):format(text(cosine), text(warmup)),
  score(cosine) < score(warmup))
ex:claim(("warm restarts end lower than a constant lr too: %s vs %s"):format(text(restarts), text(warmup)),
  score(restarts) < score(warmup))
ex:finish()
return runs, ex
