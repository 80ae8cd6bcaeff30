-- bench/bench_train.lua — training steps (forward + backward + plain SGD update):
--   (a) MLP 784-1024-1024-10, batch 128, ReLU, cross-entropy
--   (b) 32 Linear layers of width 64, tanh, batch 32, MSE
-- Reports the median ms per step over >= 30 timed steps after warm-up, and for
-- (a) GFLOP/s against a raw sgemm of the same total size measured in this run.
--
--   build/gradlab bench/bench_train.lua [--quick]
local gl = require "gradlab"
local nn = gl.nn

local quick = false
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end
local threads = tonumber(os.getenv("GRADLAB_THREADS") or "2")
gl.set_num_threads(threads)

local function median(values)
  table.sort(values)
  return values[(#values + 1) // 2]
end

local function time_steps(step, warmup, reps)
  for _ = 1, warmup do step() end
  local times = {}
  for r = 1, reps do
    local t0 = gl.clock()
    step()
    times[r] = (gl.clock() - t0) * 1000
  end
  return median(times)
end

local function trainer(model, x, y, loss_fn, lr)
  local params = model:parameters()
  return function()
    local loss = loss_fn(model(x), y)
    model:zero_grad()
    loss:backward()
    for _, p in ipairs(params) do p:add_(p.grad, -lr) end
  end
end

local warmup, reps = quick and 1 or 5, quick and 2 or 30
local rows = {}

-- (a) -------------------------------------------------------------------------
gl.manual_seed(0)
local din, hidden, batch = quick and 32 or 784, quick and 64 or 1024, quick and 8 or 128
local mlp = nn.Sequential{nn.Linear(din, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)}
local ms_a = time_steps(trainer(mlp, gl.randn{batch, din}, gl.randint(1, 10, {batch}), gl.loss.cross_entropy, 0.01), warmup, reps)
-- 3 matrix products per layer (forward, input grad, weight grad), 2 flops per MAC
local macs = batch * (din * hidden + hidden * hidden + hidden * 10)
local flops_a = 3 * 2 * macs
-- the BLAS ceiling: the same flops as one square-ish sgemm chain, through gradlab's matmul
local ceiling_a
do
  local a1, w1 = gl.randn{batch, din}, gl.randn{din, hidden}
  local a2, w2 = gl.randn{batch, hidden}, gl.randn{hidden, hidden}
  local function products()
    a1:matmul(w1); a2:matmul(w2)
  end
  local ms = time_steps(products, warmup, reps)
  ceiling_a = 2 * batch * (din * hidden + hidden * hidden) / (ms * 1e6)
end
rows[#rows + 1] = {"(a) MLP 784-1024-1024-10 b128", ms_a, flops_a / (ms_a * 1e6), ceiling_a}

-- (b) -------------------------------------------------------------------------
gl.manual_seed(0)
local layers = {}
for _ = 1, quick and 4 or 32 do layers[#layers + 1] = nn.Linear(64, 64); layers[#layers + 1] = nn.Tanh() end
local deep = nn.Sequential(layers)
local ms_b = time_steps(trainer(deep, gl.randn{32, 64}, gl.randn{32, 64}, gl.loss.mse, 0.01), warmup * 4, reps * 4)
local flops_b = 3 * 2 * 32 * 64 * 64 * #layers / 2
rows[#rows + 1] = {"(b) 32 x Linear(64) tanh b32", ms_b, flops_b / (ms_b * 1e6), nil}

print(("training-step benchmark  (threads %d, OPENBLAS_CORETYPE=%s%s)")
  :format(threads, os.getenv("OPENBLAS_CORETYPE") or "unset", quick and ", QUICK" or ""))
print(("%-32s %10s %10s %12s %8s"):format("case", "ms/step", "GFLOP/s", "sgemm GF/s", "% ceil"))
for _, r in ipairs(rows) do
  print(("%-32s %10.3f %10.2f %12s %8s"):format(r[1], r[2], r[3], r[4] and ("%.2f"):format(r[4]) or "-",
                                                r[4] and ("%.0f%%"):format(100 * r[3] / r[4]) or "-"))
end
if not quick then
  print(("targets: (a) >= 80%% of sgemm throughput: %s;  (b) < 0.5 ms/step: %s")
    :format(rows[1][3] >= 0.8 * rows[1][4] and "PASS" or "MISS", rows[2][2] < 0.5 and "PASS" or "MISS"))
end
