-- bench/cases.lua — the end-to-end cases of the performance suite, gradlab side.
-- Each step is forward + backward + optimizer step.  Prints one line:
--   ms=<median ms per step> flops=<flops per step> rss_kb=<peak resident KB> steps=<timed steps>
--
--   build/gradlab bench/cases.lua CASE [--quick]
--   CASE: a (MLP 784-1024-1024-10, b128)   b (32 x Linear(64) tanh, b32)   c (b + monitor)
--         d (LSTM 32->128, T 100, b32)     e (ResNet-style convnet, 32x32x3, b32)
--         f (6 pre-LN Transformer blocks, d 128, 4 heads, seq 64, b16)
local gl = require "gradlab"
local nn = gl.nn

local case = arg[1]
local quick = false
for i = 2, #arg do if arg[i] == "--quick" then quick = true end end
gl.set_num_threads(tonumber(os.getenv("GRADLAB_THREADS") or "2"))
gl.manual_seed(0)

local function q(full, small) return quick and small or full end

local function peak_rss_kb()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  for line in f:lines() do
    local v = line:match("^VmHWM:%s+(%d+)")
    if v then f:close(); return tonumber(v) end
  end
  f:close()
  return 0
end

local builders = {}

function builders.a()
  local din, hidden, batch = q(784, 32), q(1024, 64), q(128, 8)
  local model = nn.Sequential{nn.Linear(din, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 10)}
  local opt = gl.optim.SGD(model, {lr = 0.01})
  local x, y = gl.randn{batch, din}, gl.randint(1, 10, {batch})
  local flops = 3 * 2 * batch * (din * hidden + hidden * hidden + hidden * 10)
  return function()
    local loss = gl.loss.cross_entropy(model(x), y)
    opt:zero_grad(); loss:backward(); opt:step()
  end, flops
end

local function deep_tanh(with_monitor)
  local depth = q(32, 4)
  local layers = {}
  for _ = 1, depth do layers[#layers + 1] = nn.Linear(64, 64); layers[#layers + 1] = nn.Tanh() end
  local model = nn.Sequential(layers)
  local opt = gl.optim.SGD(model, {lr = 0.01})
  local mon = with_monitor and gl.monitor(model) or nil
  local x, y = gl.randn{32, 64}, gl.randn{32, 64}
  local step = 0
  return function()
    step = step + 1
    local loss = gl.loss.mse(model(x), y)
    opt:zero_grad(); loss:backward()
    if mon then mon:record(step, {loss = loss}) end
    opt:step()
  end, 3 * 2 * 32 * 64 * 64 * depth
end

function builders.b() return deep_tanh(false) end
function builders.c() return deep_tanh(true) end

function builders.d()
  local T, batch, input, hidden = q(100, 5), q(32, 4), 32, q(128, 16)
  local lstm = nn.LSTM(input, hidden)
  local head = nn.Linear(hidden, 1)
  local params = lstm:parameters()
  for _, p in ipairs(head:parameters()) do params[#params + 1] = p end
  local opt = gl.optim.SGD(params, {lr = 0.01})
  local x, y = gl.randn{T, batch, input}, gl.randn{batch, 1}
  local flops = 3 * 2 * T * batch * 4 * hidden * (input + hidden)
  return function()
    local out = lstm(x)
    local loss = gl.loss.mse(head(out:select(1, T)), y)
    opt:zero_grad(); loss:backward(); opt:step()
  end, flops
end

function builders.e()
  local batch, size = q(32, 2), q(32, 8)
  local function block(c)
    return nn.Residual(nn.Sequential{
      nn.Conv2d(c, c, 3, {padding = 1, bias = false}), nn.BatchNorm(c), nn.ReLU(),
      nn.Conv2d(c, c, 3, {padding = 1, bias = false}), nn.BatchNorm(c)})
  end
  local model = nn.Sequential{
    nn.Conv2d(3, 16, 3, {padding = 1, bias = false}), nn.BatchNorm(16), nn.ReLU(),
    block(16), nn.ReLU(), block(16), nn.ReLU(),
    nn.Conv2d(16, 32, 3, {stride = 2, padding = 1, bias = false}), nn.BatchNorm(32), nn.ReLU(),
    block(32), nn.ReLU(),
    nn.GlobalAvgPool2d(), nn.Linear(32, 10)}
  local opt = gl.optim.SGD(model, {lr = 0.01, momentum = 0.9})
  local x, y = gl.randn{batch, 3, size, size}, gl.randint(1, 10, {batch})
  local hw, half = size * size, (size // 2) * (size // 2)
  local macs = batch * (hw * 9 * (3 * 16 + 4 * 16 * 16) + half * 9 * (16 * 32 + 2 * 32 * 32))
  return function()
    local loss = gl.loss.cross_entropy(model(x), y)
    opt:zero_grad(); loss:backward(); opt:step()
  end, 3 * 2 * macs
end

function builders.f()
  local blocks, d, heads, seq, batch = q(6, 2), q(128, 32), 4, q(64, 8), q(16, 2)
  local list = {}
  for i = 1, blocks do list[i] = nn.TransformerBlock(d, heads, {norm_first = true}) end
  local model = nn.Sequential(list)
  local opt = gl.optim.SGD(model, {lr = 0.01})
  local x = gl.randn{batch, seq, d}
  local per_block = batch * seq * (4 * d * d + 2 * d * 4 * d) + batch * heads * 2 * seq * seq * (d // heads)
  return function()
    local loss = (model(x) ^ 2):mean()
    opt:zero_grad(); loss:backward(); opt:step()
  end, 3 * 2 * per_block * blocks
end

local build = builders[case]
if not build then
  io.stderr:write("cases.lua: unknown case '" .. tostring(case) .. "' (a, b, c, d, e, f)\n")
  os.exit(2)
end
local step, flops = build()
for _ = 1, q(5, 1) do step() end
local reps = q((case == "b" or case == "c") and 200 or 30, 2)
local function median(list)
  table.sort(list)
  return list[(#list + 1) // 2]
end
local times = {}
for r = 1, reps do
  local t0 = gl.clock()
  step()
  times[r] = (gl.clock() - t0) * 1000
end
local extra = ""
if case == "c" then
  -- The monitor's overhead, measured in this process: the same network without
  -- a monitor, in blocks of 10 steps alternating with blocks of the monitored
  -- one, so that load changes hit both (separate processes minutes apart
  -- differ by more than the overhead).
  local plain = deep_tanh(false)
  for _ = 1, q(5, 1) do plain() end
  local block, with, without = q(10, 1), {}, {}
  for r = 1, reps // block do
    for _, side in ipairs{ { step, with }, { plain, without } } do
      local t0 = gl.clock()
      for _ = 1, block do side[1]() end
      side[2][r] = (gl.clock() - t0) * 1000 / block
    end
  end
  extra = (" base_ms=%.4f paired_ms=%.4f"):format(median(without), median(with))
end
print(("ms=%.4f flops=%d rss_kb=%d steps=%d%s"):format(median(times), flops, peak_rss_kb(), reps, extra))
