-- scripts/normalization.lua — does normalization keep a deep net's gradient in
-- range, and what happens to BatchNorm when batches are small or the data shifts?
--
-- A deep ReLU MLP with PyTorch's default initialization (weights U(±1/sqrt(fan_in)),
-- variance 1/(3 fan_in): without help the signal shrinks at every layer), each
-- block Linear -> [norm] -> ReLU, with no norm, BatchNorm, LayerNorm or GroupNorm
-- (8 groups), trained (Adam) on 6 Gaussian blobs in 16-d with batches of 2, 8 and
-- 128, for the same number of steps.  We read:
--   * the backward signal ratio ‖∂L/∂z_1‖ / ‖∂L/∂z_L‖ at initialization,
--   * the training loss (train mode) against the held-out loss in evaluate mode:
--     BatchNorm evaluates with running statistics gathered from its batches,
--     which for batches of 2 are poor estimates; LayerNorm/GroupNorm use none.
-- The BatchNorm net trained at batch 128 is then evaluated with the statistics
-- of small held-out batches.  And the seed's distribution shift: that net is
-- shown 3x + 2.  Batch statistics undo such a shift (the first BatchNorm sees an
-- affine function of x); the stored running statistics do not, until enough
-- shifted batches have refreshed them.
--
--   build/gradlab scripts/normalization.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("normalization", arg)
local width, depth = 64, ex.quick and 8 or 12
local steps = ex.quick and 40 or 300
local batches = { 2, 8, 128 }

local norms = {
  { name = "none", make = nil },
  { name = "BatchNorm", make = function() return nn.BatchNorm(width) end },
  { name = "LayerNorm", make = function() return nn.LayerNorm(width) end },
  { name = "GroupNorm", make = function() return nn.GroupNorm(8, width) end },
}

gl.manual_seed(11)
local dim, classes = 16, 6
local x_all, y_all = gl.data.blobs(2048, classes, dim, 1.5)
local x_train, y_train = x_all:narrow(1, 1, 1536), y_all:narrow(1, 1, 1536)
local x_test, y_test = x_all:narrow(1, 1537, 512), y_all:narrow(1, 1537, 512)

-- Blocks Linear -> [norm] -> ReLU, then the head.
local function build(norm)
  local layers = {}
  for l = 1, depth do
    layers[#layers + 1] = nn.Linear(l == 1 and dim or width, width)
    if norm.make then layers[#layers + 1] = norm.make() end
    layers[#layers + 1] = nn.ReLU()
  end
  layers[#layers + 1] = nn.Linear(width, classes)
  return nn.Sequential(layers)
end

-- Backward signal at every Linear's output, first hidden / last hidden.
local function signal_ratio(model, x, y)
  local h, zs = x, {}
  for i = 1, model:size() do
    h = model:get(i)(h)
    if getmetatable(model:get(i)) == nn.Linear and i < model:size() then h:retain_grad(); zs[#zs + 1] = h end
  end
  gl.loss.cross_entropy(h, y):backward()
  local ratio = zs[1].grad:norm():item() / zs[#zs].grad:norm():item()
  model:zero_grad()
  return ratio
end

local function eval_loss(model, x, y)
  model:evaluate()
  local loss = gl.no_grad(function() return gl.loss.cross_entropy(model(x), y):item() end)
  model:train()
  return loss
end

-- 1. Norm x batch size ---------------------------------------------------------------
local results, rows, loss_panels = {}, {}, {}
local total, done = #norms * #batches * steps, 0
for _, b in ipairs(batches) do loss_panels[b] = {} end
for ni, norm in ipairs(norms) do
  for _, b in ipairs(batches) do
    gl.manual_seed(ni)   -- the same initial weights for every batch size
    local model = build(norm)
    local mon = gl.monitor(model, { every = 5 })
    local ratio = signal_ratio(model, x_train:narrow(1, 1, b), y_train:narrow(1, 1, b))
    local opt = gl.optim.Adam(model, { lr = 1e-3 })
    local loader = gl.data.loader(x_train, y_train, { batch = b, drop_last = true })
    local step, tail, tail_n, ema, smooth = 0, 0, 0, nil, {}
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
        local v = loss:item()
        ema = ema and 0.9 * ema + 0.1 * v or v   -- smoothed for the figure: batches of 2 are noisy
        smooth[step] = ema
        if step > steps * 0.8 then tail, tail_n = tail + v, tail_n + 1 end
        done = done + 1
        gl.progress(done, total, { loss = loss })
      end
    end
    local r = { norm = norm.name, batch = b, ratio = ratio, train = tail / tail_n, eval = eval_loss(model, x_test, y_test),
                model = model }
    results[#results + 1], results[norm.name .. " " .. b] = r, r
    rows[#rows + 1] = { norm.name, b, ratio, r.train, r.eval, r.eval - r.train }
    table.insert(loss_panels[b], { name = norm.name, y = smooth, color = gl.plot.palette(ni) })
    mon:to_csv(ex:path(("%s_batch%d.csv"):format(norm.name, b)))
  end
end
ex:table({ ("%d-layer ReLU net"):format(depth), "batch", "signal ratio", "train loss", "eval loss", "gap" }, rows,
         ("signal ratio |dL/dz_1|/|dL/dz_L| at init; after %d steps: training loss (last 20%% of steps, train mode) " ..
          "and held-out loss in evaluate mode"):format(steps))

-- 2. The same trained BatchNorm net, normalizing with the statistics of held-out
-- batches of 2, 8 or 128 (train mode) instead of its running statistics.
local bn_net = results["BatchNorm 128"].model
local saved = {}
for _, e in ipairs(bn_net:named_buffers()) do saved[#saved + 1] = { e[2], e[2]:clone() } end
local function restore() for _, e in ipairs(saved) do e[1]:copy(e[2]) end end
local function batch_stat_loss(x, y, b)   -- mean held-out loss over batches of b, batch statistics
  local sum, n = 0, 0
  gl.no_grad(function()
    for start = 1, x:size(1) - b + 1, b do
      sum, n = sum + gl.loss.cross_entropy(bn_net(x:narrow(1, start, b)), y:narrow(1, start, b)):item(), n + 1
    end
  end)
  restore()   -- train-mode forwards moved the running statistics: put them back
  return sum / n
end
local stat_rows, by_batch = {}, {}
for _, b in ipairs(batches) do
  by_batch[b] = batch_stat_loss(x_test, y_test, b)
  stat_rows[#stat_rows + 1] = { ("batch statistics of %d examples"):format(b), by_batch[b] }
end
stat_rows[#stat_rows + 1] = { "running statistics (evaluate mode)", results["BatchNorm 128"].eval }
ex:table({ "BatchNorm net trained at batch 128, normalizing with", "held-out loss" }, stat_rows,
         "how reliable are batch statistics?")

-- 3. BatchNorm after a shift of the input distribution ----------------------------------
local function shifted(x) return x * 3 + 2 end
local clean = eval_loss(bn_net, x_test, y_test)
local batch_stats = batch_stat_loss(shifted(x_test), y_test, 128)
local adapt_x, adapt_y = { 0 }, { eval_loss(bn_net, shifted(x_test), y_test) }
-- Re-estimate: forward shifted training batches in train mode, without gradients:
-- each one moves the running statistics by momentum 0.1 towards the new data.
local refresh = gl.data.loader(shifted(x_train), nil, { batch = 128 })
local k = 0
for _ = 1, 2 do
  for xb in refresh:epoch() do
    k = k + 1
    gl.no_grad(function() bn_net(xb) end)
    adapt_x[#adapt_x + 1], adapt_y[#adapt_y + 1] = k, eval_loss(bn_net, shifted(x_test), y_test)
  end
end
ex:table({ "BatchNorm net (batch 128), held-out loss", "value" }, {
  { "original data, evaluate mode", clean },
  { "shifted 3x+2, evaluate mode (stale running stats)", adapt_y[1] },
  { "shifted 3x+2, batch statistics (train mode)", batch_stats },
  { ("shifted 3x+2, evaluate mode after %d refresh batches"):format(k), adapt_y[#adapt_y] },
}, "a shift of the input distribution")

-- The figures ----------------------------------------------------------------------
local panels = {}
for _, b in ipairs(batches) do
  panels[#panels + 1] = { kind = "lines", title = ("batch %d: training loss"):format(b), xlabel = "step",
    ylabel = "cross-entropy (moving average)", series = loss_panels[b], legend = b == batches[1] }
end
local gap_series = {}
for ni, norm in ipairs(norms) do
  local xs, train, eval = {}, {}, {}
  for _, b in ipairs(batches) do
    local r = results[norm.name .. " " .. b]
    xs[#xs + 1], train[#train + 1], eval[#eval + 1] = b, r.train, r.eval
  end
  gap_series[#gap_series + 1] = { name = norm.name .. " eval", x = xs, y = eval, color = gl.plot.palette(ni), marker = true }
  gap_series[#gap_series + 1] = { name = norm.name .. " train", x = xs, y = train, color = gl.plot.palette(ni),
                                  style = "dashed" }
end
panels[#panels + 1] = { kind = "lines", title = "held-out loss, evaluate mode (solid); training loss (dashed)",
  xlabel = "batch size", ylabel = "cross-entropy", logx = true, logy = true, series = gap_series }
gl.plot.grid{ path = ex:path("norm_batch.png"), cols = 2, width = 1800, height = 1200, panels = panels,
  title = ("ReLU MLP of %d layers (default init), %d steps of Adam: no norm / BatchNorm / LayerNorm / GroupNorm " ..
           "at batch 2, 8, 128"):format(depth, steps) }
local stat_x, stat_y = {}, {}
for _, b in ipairs(batches) do stat_x[#stat_x + 1], stat_y[#stat_y + 1] = b, by_batch[b] end
local running = results["BatchNorm 128"].eval
gl.plot.grid{ path = ex:path("bn_statistics.png"), cols = 2, width = 1800, height = 700,
  title = "A BatchNorm net trained at batch 128: normalizing with small batches, and after the input shifts to 3x + 2",
  panels = {
    { kind = "lines", title = "normalizing with batch statistics", xlabel = "examples per batch",
      ylabel = "held-out cross-entropy", logx = true, logy = true, series = {
        { name = "batch stats", x = stat_x, y = stat_y, color = gl.plot.palette(2), marker = true },
        { name = "running stats", x = { 2, 128 }, y = { running, running }, color = "#555555",
          style = "dotted" } } },
    { kind = "lines", title = "shifted input: refreshing the running stats",
      xlabel = "shifted batches forwarded in train mode (no training)", ylabel = "held-out cross-entropy", logy = true,
      series = {
        { name = "running stats", x = adapt_x, y = adapt_y, color = gl.plot.palette(2), marker = true },
        { name = "batch stats", x = { 0, k }, y = { batch_stats, batch_stats },
          color = gl.plot.palette(3), style = "dashed" },
        { name = "unshifted", x = { 0, k }, y = { clean, clean }, color = "#555555", style = "dotted" } } },
  } }

-- The conclusions ----------------------------------------------------------------
local function r(name, b) return results[name .. " " .. b] end
local function within(v) return v >= 0.2 and v <= 5 end
print()
ex:claim(("without normalization the default-init net's signal vanishes: ratio %.1e (< 1e-2)"):format(r("none", 128).ratio),
  r("none", 128).ratio < 1e-2)
ex:claim(("LayerNorm and GroupNorm keep it: ratios %.2f and %.2f, within [0.2, 5]")
  :format(r("LayerNorm", 128).ratio, r("GroupNorm", 128).ratio), within(r("LayerNorm", 128).ratio) and
  within(r("GroupNorm", 128).ratio))
ex:claim(("BatchNorm keeps it too: ratio %.2f at batch 128 (%.1f at batch 2), within [0.2, 5]")
  :format(r("BatchNorm", 128).ratio, r("BatchNorm", 2).ratio), within(r("BatchNorm", 128).ratio))
ex:claim(("BatchNorm suffers at batch 2: held-out loss %.3f vs LayerNorm %.3f and GroupNorm %.3f (at batch 128: %.3f, %.3f, %.3f)")
  :format(r("BatchNorm", 2).eval, r("LayerNorm", 2).eval, r("GroupNorm", 2).eval, r("BatchNorm", 128).eval,
          r("LayerNorm", 128).eval, r("GroupNorm", 128).eval),
  r("BatchNorm", 2).eval > r("LayerNorm", 2).eval and r("BatchNorm", 2).eval > r("GroupNorm", 2).eval)
ex:claim(("statistics of 2 examples are unreliable: the same trained net scores %.3f with them, %.3f with batches of 128")
  :format(by_batch[2], by_batch[128]), by_batch[2] > 2 * by_batch[128])
ex:claim(("after the shift, stale running statistics cost: loss %.3f in evaluate mode vs %.3f with batch statistics " ..
          "(%.3f before the shift)"):format(adapt_y[1], batch_stats, clean), adapt_y[1] > 2 * batch_stats)
ex:claim(("refreshing the running statistics on %d shifted batches brings it back to %.3f (within 20%% of %.3f)")
  :format(k, adapt_y[#adapt_y], batch_stats), adapt_y[#adapt_y] <= 1.2 * batch_stats)
ex:finish()
return { runs = results, batch_stats = by_batch,
         shift = { clean = clean, batch_stats = batch_stats, x = adapt_x, y = adapt_y } }, ex
