-- scripts/sequence_length.lua — does a recurrent net trained on short sequences work
-- on long ones, and does a curriculum of growing lengths help it learn long ones?
--
-- The adding problem (gl.data.adding_problem): the target, the sum of the two marked
-- values, means the same at every length, so one net can be measured at any T.
-- An LSTM (hidden 32) is trained with Adam for the same number of steps in three ways:
--   short       always T = 10
--   long        always T = 40 (the gradient must cross up to 40 steps from the start)
--   curriculum  T = 10, then 20, then 40, a third of the steps each
-- then measured (MSE on fresh sequences) at T = 10, 20, 40, 80 (and 160 in the full run).
-- Predicting the mean gives MSE 1/6 = 0.167: that line is "learnt nothing".
-- In the figure: left, the training loss; right, test MSE against the test length
-- (the dotted vertical line marks the longest training length, 40).
--
--   build/gradlab scripts/sequence_length.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("sequence_length", arg)
local H, batch = 32, 32
local steps = ex.quick and 300 or 900
local test_lengths = ex.quick and { 10, 20, 40, 80 } or { 10, 20, 40, 80, 160 }
local n_test = ex.quick and 128 or 512

local plans = {
  { key = "short", name = "short (T = 10)", length = function() return 10 end },
  { key = "long", name = "long (T = 40)", length = function() return 40 end },
  { key = "curriculum", name = "curriculum 10 -> 20 -> 40",
    length = function(s) return s <= steps / 3 and 10 or (s <= 2 * steps / 3 and 20 or 40) end },
}

-- Fixed test sets, one per length.
gl.manual_seed(99)
local tests = {}
for i, T in ipairs(test_lengths) do tests[i] = { gl.data.adding_problem(n_test, T) } end

local results, done = {}, 0
for pi, plan in ipairs(plans) do
  gl.manual_seed(5)
  local lstm, head = nn.LSTM(2, H), nn.Linear(H, 1)
  local params = {}
  for _, p in ipairs(lstm:parameters()) do params[#params + 1] = p end
  for _, p in ipairs(head:parameters()) do params[#params + 1] = p end
  local mon = gl.monitor(lstm, { every = 10, activations = false })
  local opt = gl.optim.Adam(params, { lr = 1e-2 })
  local losses, xs = {}, {}
  for s = 1, steps do
    local T = plan.length(s)
    local x, y = gl.data.adding_problem(batch, T)
    local loss = gl.loss.mse(head(lstm(x):select(1, T)), y)
    opt:zero_grad()
    loss:backward()
    gl.optim.clip_grad_norm(params, 1.0)
    mon:record(s, { loss = loss, length = T })
    opt:step()
    xs[s], losses[s] = s, loss:item()
    done = done + 1
    gl.progress(done, #plans * steps, { loss = loss })
  end
  mon:to_csv(ex:path(plan.key .. ".csv"))
  local test = {}
  gl.no_grad(function()
    for i, T in ipairs(test_lengths) do
      local x, y = tests[i][1], tests[i][2]
      test[i] = gl.loss.mse(head(lstm(x):select(1, T)), y):item()
    end
  end)
  results[pi] = { key = plan.key, name = plan.name, losses = losses, x = xs, test = test }
  results[plan.key] = results[pi]
end

-- The table ------------------------------------------------------------------------
local headers, rows = { "trained on" }, {}
for _, T in ipairs(test_lengths) do headers[#headers + 1] = "MSE T=" .. T end
for _, r in ipairs(results) do
  local row = { r.name }
  for i = 1, #test_lengths do row[#row + 1] = r.test[i] end
  rows[#rows + 1] = row
end
ex:table(headers, rows, ("LSTM (hidden %d), %d Adam steps; test MSE by length (predicting the mean: 0.167)")
  :format(H, steps))

-- The figures ----------------------------------------------------------------------
local function smooth(ys, k)
  local s, acc = {}, 0
  for i, v in ipairs(ys) do acc = acc + v - (ys[i - k] or 0); s[i] = acc / math.min(i, k) end
  return s
end
local train_series, test_series = {}, {}
for i, r in ipairs(results) do
  train_series[i] = { name = r.name, x = r.x, y = smooth(r.losses, 20), color = gl.plot.palette(i) }
  test_series[i] = { name = r.name, x = test_lengths, y = r.test, color = gl.plot.palette(i), marker = true }
end
local mean_line = { name = "predict the mean (1/6)", x = { test_lengths[1], test_lengths[#test_lengths] },
                    y = { 1 / 6, 1 / 6 }, color = gl.plot.palette(8), style = "dashed" }
test_series[#test_series + 1] = mean_line
test_series[#test_series + 1] = { name = "longest training length", x = { 40, 40 }, y = { 1e-3, 1 },
                                  color = gl.plot.palette(7), style = "dotted" }
train_series[#train_series + 1] = { name = mean_line.name, x = { 1, steps }, y = mean_line.y,
                                    color = mean_line.color, style = "dashed" }
gl.plot.grid{ path = ex:path("sequence_length.png"), cols = 2, width = 1800, height = 750,
  title = ("LSTM on the adding problem: train short, test long; a curriculum of lengths (%d steps)"):format(steps),
  panels = {
    { kind = "lines", title = "training loss (moving average of 20 steps)", xlabel = "step", ylabel = "MSE",
      logy = true, series = train_series },
    { kind = "lines", title = "test MSE against the test sequence length", xlabel = "test length T",
      ylabel = "MSE", logy = true, logx = true, series = test_series },
  } }

-- The conclusions ------------------------------------------------------------------
local S, L, C = results.short.test, results.long.test, results.curriculum.test
local i40, last = 3, #test_lengths
print()
ex:claim(("trained at T = 10: MSE %.2g at T = 10 but %.2g at T = %d: it does not carry over to longer sequences")
  :format(S[1], S[last], test_lengths[last]), S[last] > 2 * S[1])
ex:claim(("at T = 40 the curriculum reaches MSE %.2g vs %.2g trained at T = 40 from the start")
  :format(C[i40], L[i40]), C[i40] < L[i40])
ex:claim(("the curriculum learns T = 40 (MSE %.2g < 0.167 / 2)"):format(C[i40]), C[i40] < 1 / 12)
ex:finish()
return results, ex
