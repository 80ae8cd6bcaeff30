-- scripts/dropout_bn.lua — where should dropout go relative to BatchNorm?
--
-- Dropout scales the kept units by 1/(1-p) in training and does nothing in
-- evaluation: the mean is preserved but the variance is not.  A BatchNorm
-- placed after dropout therefore stores running variances measured with
-- dropout on, and at evaluation normalizes activations whose variance has
-- shifted ("variance shift").  Four MLPs (4 blocks of width 128, He init, Adam)
-- on 10 Gaussian blobs:
--   no dropout        Linear -> BN -> ReLU
--   before BN         Linear -> Dropout -> BN -> ReLU
--   after BN          Linear -> BN -> ReLU -> Dropout   (feeds the next block's BN)
--   after the last BN [Linear -> BN -> ReLU] x 4 -> Dropout -> head
-- For every BatchNorm we compare the variance of its input in evaluate mode
-- with its running variance (ratio 1: no shift), per dropout rate 0.1, 0.3, 0.5,
-- and the held-out loss before and after re-estimating the running statistics
-- with dropout switched off (the cure for the shift).
--
--   build/gradlab scripts/dropout_bn.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("dropout_bn", arg)
local blocks, width, batch = 4, 128, 128
local steps = ex.quick and 60 or 250
local rates = ex.quick and { 0.5 } or { 0.1, 0.3, 0.5 }

gl.manual_seed(29)
local x_all, y_all = gl.data.blobs(4096 + 1024, 10, 32, 0.8)
local x_train, y_train = x_all:narrow(1, 1, 4096), y_all:narrow(1, 1, 4096)
local x_test, y_test = x_all:narrow(1, 4097, 1024), y_all:narrow(1, 4097, 1024)

local placements = {
  { key = "none", name = "no dropout" },
  { key = "before", name = "dropout before BN" },
  { key = "after", name = "dropout after BN" },
  { key = "last", name = "dropout after the last BN" },
}

local function build(placement, p)
  local layers = {}
  for b = 1, blocks do
    layers[#layers + 1] = nn.Linear(b == 1 and 32 or width, width, { init = "he_normal" })
    if placement == "before" then layers[#layers + 1] = nn.Dropout(p) end
    layers[#layers + 1] = nn.BatchNorm(width)
    layers[#layers + 1] = nn.ReLU()
    if placement == "after" then layers[#layers + 1] = nn.Dropout(p) end
  end
  if placement == "last" then layers[#layers + 1] = nn.Dropout(p) end
  layers[#layers + 1] = nn.Linear(width, 10)
  return nn.Sequential(layers)
end

local function batchnorms(model)
  local list = {}
  for i = 1, model:size() do
    if getmetatable(model:get(i)) == nn.BatchNorm then list[#list + 1] = model:get(i) end
  end
  return list
end

-- In evaluate mode, per BatchNorm: mean over features of var(input) / running_var.
local function variance_shift(model)
  local shifts, hooks = {}, {}
  for l, bn in ipairs(batchnorms(model)) do
    hooks[l] = bn:register_forward_hook(function(m, _, input)
      local centered = input - input:mean(1, true)
      shifts[l] = ((centered * centered):mean(1) / m.running_var):mean():item()
    end)
  end
  model:evaluate()
  gl.no_grad(function() model(x_test) end)
  model:train()
  for _, h in ipairs(hooks) do h.remove() end
  return shifts
end

local function held_out(model)
  model:evaluate()
  local loss = gl.no_grad(function() return gl.loss.cross_entropy(model(x_test), y_test):item() end)
  model:train()
  return loss
end

-- The cure: forward training batches with BatchNorm in train mode (updating its
-- running statistics) and dropout off.
local function recalibrate(model)
  for _, bn in ipairs(batchnorms(model)) do bn:reset_running_stats(); bn.momentum = 0.05 end
  model:evaluate()
  for _, bn in ipairs(batchnorms(model)) do bn:train() end
  local loader = gl.data.loader(x_train, nil, { batch = 256 })
  for _ = 1, 4 do for xb in loader:epoch() do gl.no_grad(function() model(xb) end) end end
  model:train()
end

local runs, rows = {}, {}
local jobs = { { "none", 0 } }
for _, p in ipairs(rates) do for _, key in ipairs{ "before", "after", "last" } do jobs[#jobs + 1] = { key, p } end end
local total, done = #jobs * steps, 0
for _, job in ipairs(jobs) do
  local key, p = job[1], job[2]
  gl.manual_seed(1)   -- the same initial weights for every run
  local model = build(key, p)
  local opt = gl.optim.Adam(model, { lr = 1e-3 })
  local mon = gl.monitor(model, { every = 10 })
  local loader = gl.data.loader(x_train, y_train, { batch = batch })
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
      if step > steps - 20 then tail = tail + loss:item() / 20 end
      done = done + 1
      gl.progress(done, total, { loss = loss })
    end
  end
  local r = { key = key, p = p, shift = variance_shift(model), eval = held_out(model), train = tail }
  recalibrate(model)
  r.recalibrated, r.shift_after = held_out(model), variance_shift(model)
  local mean = 0
  for _, v in ipairs(r.shift) do mean = mean + v / #r.shift end
  r.mean_shift = mean
  runs[#runs + 1], runs[key .. " " .. p] = r, r
  if key == "none" then for _, q in ipairs(rates) do runs["none " .. q] = r end end
  local name = key == "none" and "no dropout" or ("%s, p = %g"):format(placements[key == "before" and 2 or
    key == "after" and 3 or 4].name, p)
  r.name = name
  rows[#rows + 1] = { name, r.shift[1], r.shift[#r.shift], r.train, r.eval, r.recalibrated }
  mon:to_csv(ex:path(("%s_p%g.csv"):format(key, p)))
end
ex:table({ "placement", "var ratio BN 1", ("var ratio BN %d"):format(blocks), "train loss", "eval loss",
           "eval, BN re-estimated" }, rows,
         "eval-mode variance of each BatchNorm's input / its running variance (1 = no shift); losses after " ..
           steps .. " steps")

-- The figures ----------------------------------------------------------------------
local p_max = rates[#rates]
local layer_x = {}
for l = 1, blocks do layer_x[l] = l end
local profile = {}
for i, pl in ipairs(placements) do
  local r = runs[pl.key .. " " .. (pl.key == "none" and 0 or p_max)]
  profile[#profile + 1] = { name = pl.name, x = layer_x, y = r.shift, color = gl.plot.palette(i), marker = true }
end
profile[#profile + 1] = { name = ("1 - p = %g"):format(1 - p_max), x = { 1, blocks }, y = { 1 - p_max, 1 - p_max },
                          color = "#555555", style = "dotted" }
local by_rate, loss_gap = {}, {}
for i, pl in ipairs(placements) do
  if pl.key ~= "none" then
    local shift, before, after = {}, {}, {}
    for j, p in ipairs(rates) do
      local r = runs[pl.key .. " " .. p]
      shift[j], before[j], after[j] = r.mean_shift, r.eval, r.recalibrated
    end
    by_rate[#by_rate + 1] = { name = pl.name, x = rates, y = shift, color = gl.plot.palette(i), marker = true }
    loss_gap[#loss_gap + 1] = { name = pl.name .. " (as trained)", x = rates, y = before, color = gl.plot.palette(i),
                                marker = true }
    loss_gap[#loss_gap + 1] = { name = pl.name .. " (BN re-estimated)", x = rates, y = after,
                                color = gl.plot.palette(i), style = "dashed" }
  end
end
gl.plot.grid{ path = ex:path("dropout_bn.png"), cols = 3, width = 2100, height = 750,
  title = "Dropout before vs after BatchNorm: the variance shift between training and evaluation",
  panels = {
    { kind = "lines", title = ("variance ratio per BatchNorm, p = %g"):format(p_max),
      xlabel = "BatchNorm layer (input -> output)", ylabel = "variance ratio (1 = no shift)", series = profile },
    { kind = "lines", title = "mean variance ratio vs dropout rate", xlabel = "dropout rate p",
      ylabel = "variance ratio (1 = no shift)", series = by_rate, legend = false },
    { kind = "lines", title = "held-out loss: as trained (solid), BN re-estimated (dashed)", xlabel = "dropout rate p",
      ylabel = "cross-entropy", series = loss_gap, legend = false },
  } }

-- The conclusions ----------------------------------------------------------------
local before, after, last, none = runs["before " .. p_max], runs["after " .. p_max], runs["last " .. p_max], runs["none 0"]
print()
ex:claim(("dropout before BN shifts the variance: at p = %g its BatchNorms see %.2f of their running variance in " ..
          "evaluation (no dropout: %.2f)"):format(p_max, before.mean_shift, none.mean_shift),
  before.mean_shift < 0.8 and math.abs(none.mean_shift - 1) < 0.1)
ex:claim(("dropout after BN still feeds the next block's BN: ratio %.2f at BN %d (%.2f at BN 1, which sees no dropout)")
  :format(after.shift[blocks], blocks, after.shift[1]), after.shift[blocks] < 0.8 and math.abs(after.shift[1] - 1) < 0.1)
ex:claim(("dropout after the last BN causes no shift: ratio %.2f"):format(last.mean_shift), math.abs(last.mean_shift - 1) < 0.1)
ex:claim(("the shift costs accuracy: held-out loss %.3f (dropout before BN) drops to %.3f once BN is re-estimated " ..
          "without dropout; after the last BN %.3f -> %.3f"):format(before.eval, before.recalibrated, last.eval,
          last.recalibrated), before.recalibrated < before.eval and math.abs(last.recalibrated - last.eval) < 0.02)
ex:finish()
return runs, ex
