-- scripts/multitask.lua — when two tasks share a backbone and one loss is 100x
-- the other, whose gradient trains the shared layers?
--
-- A shared ReLU backbone (3 layers of 64) with two heads on the same inputs:
--   task A  regression of a teacher's first output, scaled to std 10 (MSE ~ 100)
--   task B  classification of the sign of its second output (cross-entropy ~ 0.7)
-- At every step each task's loss is back-propagated on its own to measure its
-- gradient norm on the shared layers, ‖∇_shared L_A‖ and ‖∇_shared L_B‖; then
-- the model steps on a weighted sum w_A L_A + w_B L_B (the weights scale the
-- heads' gradients too) with either
--   sum       w_A = w_B = 1
--   balanced  w_i = mean(g) / g_i, where g_i is a running average of task i's
--             shared-gradient norm: each task then pulls on the shared layers
--             with the same strength (a simple form of GradNorm).
--
--   build/gradlab scripts/multitask.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("multitask", arg)
local width, batch = 64, 128
local steps = ex.quick and 100 or 600
local lr = 2e-3

gl.manual_seed(37)
local n = 4096
local x_all, t = gl.data.teacher(n + 1024, 16, 2, 3)
local a = t:narrow(2, 1, 1)
local y_a = (a - a:mean()) / ((a - a:mean()):pow(2):mean():sqrt()) * 10   -- std 10
local y_b = t:narrow(2, 2, 1):gt(t:narrow(2, 2, 1):mean()):view({ n + 1024 }) + 1   -- labels 1, 2
local x_train, x_test = x_all:narrow(1, 1, n), x_all:narrow(1, n + 1, 1024)
local ya_train, ya_test = y_a:narrow(1, 1, n), y_a:narrow(1, n + 1, 1024)
local yb_train, yb_test = y_b:narrow(1, 1, n), y_b:narrow(1, n + 1, 1024)

local function build()
  local backbone = nn.Sequential{
    nn.Linear(16, width, { init = "he_normal" }), nn.ReLU(),
    nn.Linear(width, width, { init = "he_normal" }), nn.ReLU(),
    nn.Linear(width, width, { init = "he_normal" }), nn.ReLU(),
  }
  return backbone, nn.Linear(width, 1), nn.Linear(width, 2)
end

local function shared_norm(backbone)
  local sum = 0
  for _, p in ipairs(backbone:parameters()) do if p.grad then sum = sum + p.grad:norm():item() ^ 2 end end
  return math.sqrt(sum)
end

local function losses(backbone, head_a, head_b, x, ya, yb)
  local h = backbone(x)
  return gl.loss.mse(head_a(h), ya), gl.loss.cross_entropy(head_b(h), yb)
end

local runs, rows = {}, {}
for ri, scheme in ipairs{ "sum", "balanced" } do
  gl.manual_seed(1)   -- the same initial weights for both
  local backbone, head_a, head_b = build()
  local params = backbone:parameters()
  for _, p in ipairs(head_a:parameters()) do params[#params + 1] = p end
  for _, p in ipairs(head_b:parameters()) do params[#params + 1] = p end
  local opt = gl.optim.SGD(params, { lr = lr, momentum = 0.9 })
  local mon = gl.monitor(backbone, { every = 10 })
  local r = { scheme = scheme, color = ri, ga = {}, gb = {}, la = {}, lb = {}, wa = {}, wb = {} }
  local ema_a, ema_b
  for step = 1, steps do
    local idx = gl.randint(1, n, { batch })
    local xb, yab, ybb = x_train:index_select(1, idx), ya_train:index_select(1, idx), yb_train:index_select(1, idx)
    local la, lb = losses(backbone, head_a, head_b, xb, yab, ybb)
    -- each task's gradient on the shared layers, measured on its own
    opt:zero_grad()
    la:backward(nil, { retain_graph = true })
    local ga = shared_norm(backbone)
    opt:zero_grad()
    lb:backward(nil, { retain_graph = true })
    local gb = shared_norm(backbone)
    ema_a = ema_a and 0.9 * ema_a + 0.1 * ga or ga
    ema_b = ema_b and 0.9 * ema_b + 0.1 * gb or gb
    local wa, wb = 1, 1
    if scheme == "balanced" then
      local mean = (ema_a + ema_b) / 2
      wa, wb = mean / ema_a, mean / ema_b
    end
    opt:zero_grad()
    local total = la * wa + lb * wb
    total:backward()
    mon:record(step, { loss = la:item() + lb:item() })
    opt:step()
    r.ga[step], r.gb[step], r.la[step], r.lb[step], r.wa[step], r.wb[step] = ga, gb, la:item(), lb:item(), wa, wb
    gl.progress((ri - 1) * steps + step, 2 * steps, { loss = la })
  end
  gl.no_grad(function()
    local la, lb = losses(backbone, head_a, head_b, x_test, ya_test, yb_test)
    r.test_a, r.test_b = la:item(), lb:item()
    local logits = head_b(backbone(x_test))
    r.accuracy_b = logits:argmax(2):eq(yb_test):mean():item()
  end)
  mon:to_csv(ex:path(scheme .. ".csv"))
  r.train_a, r.train_b = 0, 0
  for s = steps - 49, steps do r.train_a, r.train_b = r.train_a + r.la[s] / 50, r.train_b + r.lb[s] / 50 end
  runs[#runs + 1], runs[scheme] = r, r
  rows[#rows + 1] = { scheme, r.la[1], r.lb[1], r.ga[1] / r.gb[1], r.train_a, r.train_b, r.test_a, r.accuracy_b }
end
ex:table({ "weights", "loss A 0", "loss B 0", "|g_A|/|g_B| step 1", "loss A end", "loss B end", "held-out loss A",
           "held-out accuracy B" }, rows,
         ("shared backbone, two heads, SGD lr %g + momentum, %d steps; |g_i| = task i's gradient norm on the shared layers")
           :format(lr, steps))

-- The figures ----------------------------------------------------------------------
local function smooth(ys)
  local s, acc = {}, 0
  for i, v in ipairs(ys) do acc = acc + v - (ys[i - 20] or 0); s[i] = acc / math.min(i, 20) end
  return s
end
local grad_series, loss_series = {}, {}
for _, r in ipairs(runs) do
  local style = r.scheme == "sum" and "solid" or "dashed"
  grad_series[#grad_series + 1] = { name = "task A, " .. r.scheme, y = smooth(r.ga), color = gl.plot.palette(1), style = style }
  grad_series[#grad_series + 1] = { name = "task B, " .. r.scheme, y = smooth(r.gb), color = gl.plot.palette(2), style = style }
  local wa, wb = {}, {}
  for s = 1, steps do wa[s], wb[s] = r.ga[s] * r.wa[s], r.gb[s] * r.wb[s] end
  r.pull_a, r.pull_b = smooth(wa), smooth(wb)
  loss_series[#loss_series + 1] = { name = "task A (MSE / 100), " .. r.scheme, y = smooth((function()
    local t = {}; for s = 1, steps do t[s] = r.la[s] / 100 end; return t end)()), color = gl.plot.palette(1), style = style }
  loss_series[#loss_series + 1] = { name = "task B (cross-entropy), " .. r.scheme, y = smooth(r.lb), color = gl.plot.palette(2),
                                    style = style }
end
local pull_series = {}
for _, r in ipairs(runs) do
  local style = r.scheme == "sum" and "solid" or "dashed"
  pull_series[#pull_series + 1] = { name = "task A, " .. r.scheme, y = r.pull_a, color = gl.plot.palette(1), style = style }
  pull_series[#pull_series + 1] = { name = "task B, " .. r.scheme, y = r.pull_b, color = gl.plot.palette(2), style = style }
end
gl.plot.grid{ path = ex:path("multitask.png"), cols = 3, width = 2100, height = 750,
  title = "Two tasks on a shared backbone, losses ~100x apart: plain sum (solid) vs balanced by gradient norm (dashed)",
  panels = {
    { kind = "lines", title = "each task's gradient norm on the shared layers", xlabel = "step",
      ylabel = "|grad_shared L_i| (moving average)", logy = true, series = grad_series },
    { kind = "lines", title = "... times its weight: its pull on the shared layers", xlabel = "step",
      ylabel = "w_i |grad_shared L_i|", logy = true, series = pull_series, legend = false },
    { kind = "lines", title = "training losses", xlabel = "step", ylabel = "loss (moving average)", logy = true,
      series = loss_series },
  } }

-- The conclusions ----------------------------------------------------------------
local sum, balanced = runs.sum, runs.balanced
local function mean_ratio(r)
  local acc = 0
  for s = 1, steps do acc = acc + math.log(r.ga[s] / r.gb[s]) end
  return math.exp(acc / steps)
end
print()
ex:claim(("the %.0fx larger loss dominates the shared layers: |g_A|/|g_B| = %.0f at step 1, %.0f on average (> 10)")
  :format(sum.la[1] / sum.lb[1], sum.ga[1] / sum.gb[1], mean_ratio(sum)), mean_ratio(sum) > 10)
ex:claim(("so task B learns less under the plain sum: training loss B %.3f vs %.3f balanced " ..
          "(held-out accuracy %.3f vs %.3f)"):format(sum.train_b, balanced.train_b, sum.accuracy_b, balanced.accuracy_b),
  sum.train_b > balanced.train_b)
ex:claim(("... at a moderate cost to task A: training loss A %.2f balanced vs %.2f under the sum (within 2x; %.1f at the start)")
  :format(balanced.train_a, sum.train_a, balanced.la[1]), balanced.train_a <= 2 * sum.train_a)
ex:finish()
return runs, ex
