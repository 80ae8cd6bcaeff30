-- bench/bench_monitor.lua — the gradient monitor's overhead with every = 1, on
--   (b) 32 Linear(64) + tanh, batch 32, MSE, SGD
--   (a) MLP 784-1024-1024-10, batch 128, ReLU, cross-entropy, SGD
-- and the time to render a 50-series x 5000-point log-scale line plot at 1600x900.
--
--   build/gradlab bench/bench_monitor.lua [--quick]
local gl = require "gradlab"
local nn = gl.nn

local quick = false
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end
gl.set_num_threads(tonumber(os.getenv("GRADLAB_THREADS") or "2"))

local function median(v) table.sort(v); return v[(#v + 1) // 2] end

-- Alternates plain and monitored steps so machine noise hits both alike.  The
-- monitor's taps (modules' _taps and optimizer listeners) come off for the
-- plain steps, so those cost exactly what an unmonitored model does.
local function compare(make_model, x, y, loss_fn, reps)
  local model = make_model()
  local opt = gl.optim.SGD(model, {lr = 1e-3})
  local watched = gl.monitor(model)
  local plain, monitored = {}, {}
  local step = 0
  local function run(with_monitor)
    step = step + 1
    local t0 = gl.clock()
    local loss = loss_fn(model(x), y)
    opt:zero_grad()
    loss:backward()
    if with_monitor then watched:record(step, {loss = loss}) end
    opt:step()
    return (gl.clock() - t0) * 1000
  end
  for _ = 1, 3 do run(true) end
  for r = 1, reps do
    watched:_detach()
    plain[r] = run(false)
    watched:_attach()
    monitored[r] = run(true)
  end
  watched:remove()
  return median(plain), median(monitored)
end

local rows = {}
do
  gl.manual_seed(0)
  local depth = quick and 4 or 32
  local function make()
    local layers = {}
    for _ = 1, depth do layers[#layers + 1] = nn.Linear(64, 64); layers[#layers + 1] = nn.Tanh() end
    return nn.Sequential(layers)
  end
  local plain, mon = compare(make, gl.randn{32, 64}, gl.randn{32, 64}, gl.loss.mse, quick and 3 or 100)
  rows[#rows + 1] = {"(b) 32 x Linear(64) tanh b32", plain, mon}
end
do
  gl.manual_seed(0)
  local din, hidden, batch = quick and 32 or 784, quick and 64 or 1024, quick and 8 or 128
  local function make()
    return nn.Sequential{nn.Linear(din, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)}
  end
  local plain, mon = compare(make, gl.randn{batch, din}, gl.randint(1, 10, {batch}), gl.loss.cross_entropy, quick and 3 or 30)
  rows[#rows + 1] = {"(a) MLP 784-1024-1024-10 b128", plain, mon}
end

print(("monitor overhead, every = 1 (threads %d)%s"):format(gl.get_num_threads(), quick and " QUICK" or ""))
print(("%-32s %12s %12s %10s %8s"):format("case", "plain ms", "monitored", "overhead", "<= 3%"))
for _, r in ipairs(rows) do
  local overhead = (r[3] - r[2]) / r[2] * 100
  print(("%-32s %12.3f %12.3f %9.1f%% %8s"):format(r[1], r[2], r[3], overhead, overhead <= 3 and "PASS" or "MISS"))
end

-- Rendering: 50 series x 5000 points, log y, 1600 x 900.
local n, series = quick and 200 or 5000, {}
gl.manual_seed(1)
for s = 1, 50 do
  local y = (gl.randn{n} * 0.3 + (s - 25) * 0.1):exp()
  series[s] = { name = "layer " .. s, y = y }
end
local path = os.tmpname() .. ".png"
local times = {}
for r = 1, quick and 1 or 7 do
  local t0 = gl.clock()
  gl.plot.lines{path = path, title = "render benchmark", logy = true, width = 1600, height = 900, series = series}
  times[r] = (gl.clock() - t0) * 1000
end
os.remove(path)
local ms = median(times)
print(("render 50 x %d points, log y, 1600x900: %.1f ms (target < 150 ms: %s)"):format(n, ms, ms < 150 and "PASS" or "MISS"))
