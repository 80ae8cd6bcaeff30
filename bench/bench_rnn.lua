-- bench_rnn.lua — LSTM(32, 128) on T = 100, batch 32: forward + backward time, against PyTorch.
--
-- Issue 6 asks for the forward + backward time of this layer and, when PyTorch is installed,
-- for PyTorch's time on the same layer in the same run, with the target gradlab <= 1.0x
-- PyTorch's time.  Both sides run the layer as a user's training step would: the module call
-- with autograd recording (x requires grad too), then backward of a fixed seed gradient on the
-- outputs (T, B, H) into x and every parameter, gradients cleared after.  The forward alone
-- (no_grad) and GRU and tanh-RNN layers of the same sizes are info rows.
--
-- Work: per step one (B, H) x (H, G*H) product forward and one backward, plus the input side
-- over all steps at once; for LSTM about 0.47 GFLOP forward and 1.05 GFLOP backward.
--
-- Method: the machine is shared, so the run alternates: a gradlab block (median of REPS steps
-- after a warm-up), then PyTorch blocks in child processes (bench/torch_rnn.py, same thread
-- count, same OPENBLAS_CORETYPE, OMP/OPENBLAS_NUM_THREADS set), CYCLES times.  Times are the
-- median over cycles of the block medians; the ratio is the median of the per-cycle ratios,
-- which cancels slowdowns that hit a whole block better than a ratio of medians.
--
-- With more than one thread PyTorch runs twice per cycle: with libgomp's default wait policy
-- (threads spin between parallel regions), as users get it, and with OMP_WAIT_POLICY=PASSIVE.
-- On a busy machine the spinning threads fight the other processes for the cores and PyTorch's
-- recurrent layers slow down by 10-30x; the passive run shows PyTorch at its best there.  The
-- ratio is taken against the faster of the two, so the target is judged conservatively.
--
-- Run:  build/gradlab bench/bench_rnn.lua [--quick]
--       lua5.4 bench/bench_rnn.lua [--quick]   (LUA_PATH/LUA_CPATH pointing at build/lua)
--       GRADLAB_THREADS=N (default 2) sets the engine's and OpenBLAS's threads, and PyTorch's.
--       OPENBLAS_CORETYPE=SkylakeX selects OpenBLAS's AVX-512 kernels, which 0.3.21 does not
--       pick by itself on this CPU (it falls back to generic Prescott kernels).  PyTorch's
--       Debian build uses the same OpenBLAS, so compare both settings.
--       GRADLAB_PYTHON=/usr/bin/python3 is the interpreter tried for PyTorch.

local quick = false
for _, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true
  else
    io.stderr:write("usage: bench_rnn.lua [--quick]\n")
    os.exit(2)
  end
end

local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local common = dofile(script_dir .. "/common.lua")
local gl = common.load_gradlab("bench_rnn", script_dir)
local threads = common.env_threads("bench_rnn", 2)
gl.set_num_threads(threads)

local T, B, IN, H = 100, 32, 32, 128
local warmup, reps, cycles = quick and 2 or 5, quick and 5 or 21, quick and 1 or 3
local kinds = { "lstm", "gru", "rnn" }
local modules = { lstm = "LSTM", gru = "GRU", rnn = "RNN" }
local clock = gl.clock

local median = common.median

local load_average = common.load_average

gl.manual_seed(1)
local x = gl.randn{ T, B, IN }:requires_grad(true)
local seed = gl.randn{ T, B, H }
local layers = {}
for _, kind in ipairs(kinds) do layers[kind] = gl.nn[modules[kind]](IN, H) end

local function timed(fn)
  for _ = 1, warmup do fn() end
  local times = {}
  for r = 1, reps do
    collectgarbage("step", 0)   -- the collector runs outside the timed region
    local start = clock()
    fn()
    times[r] = (clock() - start) * 1e3
  end
  return median(times)
end

local function gradlab_block()
  local out = {}
  for _, kind in ipairs(kinds) do
    local m = layers[kind]
    out[kind .. " forward"] = timed(function() gl.no_grad(function() return m(x) end) end)
    out[kind .. " fwd+bwd"] = timed(function()
      local y = m(x)
      y:backward(seed)
      m:zero_grad()
      x.grad = nil
    end)
  end
  return out
end

local python = os.getenv("GRADLAB_PYTHON") or "/usr/bin/python3"
local have_torch = os.execute(python .. " -c 'import torch' >/dev/null 2>&1") == true
local backend, torch_failure

local policies = threads > 1 and { "default", "PASSIVE" } or { "default" }

local function torch_block(policy)
  local command = ("%sOMP_NUM_THREADS=%d MKL_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d %s %s/torch_rnn.py %d %d %d %d %d %d %d %s 2>&1")
    :format(policy == "default" and "" or "OMP_WAIT_POLICY=" .. policy .. " ", threads, threads, threads, python,
            script_dir, threads, warmup, reps, T, B, IN, H, table.concat(kinds, " "))
  local pipe = assert(io.popen(command))
  local output = pipe:read("a")
  pipe:close()
  local out = {}
  for name, ms in output:gmatch("(%a+ [%w+]+) ([%d.]+)\n") do out[name] = tonumber(ms) end
  backend = output:match("backend ([^\n]*)") or backend
  if not out["lstm fwd+bwd"] then torch_failure = output return nil end
  return out
end

local load_before = load_average()
local ours, theirs, ratios = {}, {}, {}   -- theirs[policy][name], ratios[name] against the faster
for _, policy in ipairs(policies) do theirs[policy] = {} end
for c = 1, cycles do
  local g = gradlab_block()
  local t = {}
  for _, policy in ipairs(policies) do
    t[policy] = have_torch and not torch_failure and torch_block(policy) or nil
  end
  for name, ms in pairs(g) do
    ours[name] = ours[name] or {}
    ours[name][c] = ms
    local best
    for _, policy in ipairs(policies) do
      local value = t[policy] and t[policy][name]
      if value then
        theirs[policy][name] = theirs[policy][name] or {}
        table.insert(theirs[policy][name], value)
        best = best and math.min(best, value) or value
      end
    end
    if best then
      ratios[name] = ratios[name] or {}
      table.insert(ratios[name], ms / best)
    end
  end
end

print(("Recurrent layers (%d, %d) on T = %d, batch %d: forward + backward%s"):format(IN, H, T, B,
                                                                                  quick and " (--quick)" or ""))
print(("%-20s %s, gradlab %s"):format("interpreter", _VERSION, gl.version or "?"))
print(("%-20s %d (engine and OpenBLAS; PyTorch the same)"):format("threads", threads))
print(("%-20s %s"):format("OPENBLAS_CORETYPE",
                          os.getenv("OPENBLAS_CORETYPE") or "(unset: OpenBLAS 0.3.21 picks generic Prescott kernels on this CPU)"))
print(("%-20s %s (before), %s (after)"):format("load average", load_before, load_average()))
print(("%-20s %d cycles of [gradlab block, PyTorch block%s], each the median of %d steps after %d warm-up")
      :format("method", cycles, #policies > 1 and "s (default and PASSIVE OpenMP wait)" or "", reps, warmup))
if backend then print(("%-20s %s"):format("PyTorch", backend)) end
print()
local header = ("%-34s %11s %12s %12s %18s"):format("case", "gradlab ms", "PyTorch ms", "(passive)",
                                                     "gradlab/PyTorch")
print(header)
print(("-"):rep(#header))
local function torch_text(policy, name)
  local values = theirs[policy] and theirs[policy][name]
  return values and ("%.2f"):format(median(values)) or "-"
end
for _, kind in ipairs(kinds) do
  for _, part in ipairs { "fwd+bwd", "forward" } do
    local name = kind .. " " .. part
    local note = ""
    if ratios[name] then
      local r = median(ratios[name])
      note = ("%.2fx"):format(r)
      if name == "lstm fwd+bwd" then note = note .. (r <= 1.0 and " PASS" or " MISS") end
    end
    local label = ("%s(%d, %d) %s"):format(modules[kind], IN, H, part == "forward" and "forward (no_grad)" or part)
    print(("%-34s %11.2f %12s %12s %18s"):format(label, median(ours[name]), torch_text("default", name),
                                                 torch_text("PASSIVE", name), note))
  end
end
print()
if not have_torch then
  print("PyTorch: not installed for " .. python .. " (Debian package python3-torch), no ratio")
elseif torch_failure then
  print("PyTorch: the run failed:\n" .. torch_failure)
else
  print("target: LSTM forward + backward <= 1.0x PyTorch's time (the faster of its runs)")
end
