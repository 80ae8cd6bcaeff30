-- bench_norm.lua — BatchNorm forward+backward on (256, 1024) against a Linear of the same size.
--
-- Issue 4 asks for the time of BatchNorm(1024) forward+backward on a (256, 1024) batch next to
-- a Linear(1024, 1024) forward+backward on the same input.  Both run through the modules, as a
-- user's training step would (module call, graph recording, backward with dx, dweight, dbias);
-- the backward seed is a fixed (256, 1024) tensor, so no loss op is timed.  Linear does
-- 3 × 2·256·1024·1024 ≈ 1.6 GFLOP in three sgemm calls; BatchNorm is a handful of passes over
-- 1 MiB tensors (memory bound: two reads of x for the statistics, one for y; one read of g and x
-- for the sums and one more for dx).  The BatchNorm kernels are single-threaded; Linear gets the
-- BLAS threads, and an info row repeats it on one thread for a like-for-like view.
--
-- Median over the repetitions after a warm-up, timed with gl.clock().
--
-- Run:  build/gradlab bench/bench_norm.lua [--quick]
--       lua5.4 bench/bench_norm.lua [--quick]        (with LUA_PATH/LUA_CPATH set to build/lua)
--       GRADLAB_THREADS=N chooses the thread count (default: the engine's, i.e. OpenBLAS's)

local quick = false
for _, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true
  else
    io.stderr:write("usage: bench_norm.lua [--quick]\n")
    os.exit(2)
  end
end

-- Find the module: as installed / via LUA_PATH, else in ../build/lua next to this script.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local common = dofile(script_dir .. "/common.lua")
local gl = common.load_gradlab("bench_norm", script_dir)
local threads = common.env_threads("bench_norm")
if threads then gl.set_num_threads(threads) end
threads = gl.get_num_threads()

local clock = gl.clock
local B, F = 256, 1024
local warmup, reps = quick and 3 or 10, quick and 30 or 200

local median = common.median

gl.manual_seed(1)
local x = gl.randn{ B, F }:requires_grad(true)
local seed = gl.randn{ B, F }

-- One training-style step of module m: forward, backward, gradients cleared.
local function step(m)
  local y = m(x)
  y:backward(seed)
  m:zero_grad()
  x.grad = nil
end

-- Median ms of `reps` steps, after `warmup`; the collector runs outside the timed region.
local function measure(m)
  for _ = 1, warmup do step(m) end
  local times = {}
  for r = 1, reps do
    collectgarbage("step", 0)
    local start = clock()
    step(m)
    times[r] = (clock() - start) * 1e3
  end
  return median(times)
end

-- Forward and backward apart, for the bandwidth figure of the BatchNorm kernels.
local function measure_parts(m)
  local forward, backward = {}, {}
  for r = 1, reps do
    collectgarbage("step", 0)
    local t0 = clock()
    local y = m(x)
    local t1 = clock()
    y:backward(seed)
    local t2 = clock()
    m:zero_grad()
    x.grad = nil
    forward[r], backward[r] = (t1 - t0) * 1e3, (t2 - t1) * 1e3
  end
  return median(forward), median(backward)
end

local bn, linear = gl.nn.BatchNorm(F), gl.nn.Linear(F, F)
local bn_ms = measure(bn)
local linear_ms = measure(linear)
local bn_forward, bn_backward = measure_parts(bn)
gl.set_num_threads(1)
local linear_1_ms = measure(linear)
gl.set_num_threads(threads)

local mib = B * F * 4 / 2^20
print(("BatchNorm vs Linear, forward+backward on (%d, %d)%s"):format(B, F, quick and " (--quick)" or ""))
print(("%-22s %s, gradlab %s"):format("interpreter", _VERSION, gl.version or "?"))
print(("%-22s %d (BatchNorm kernels are single-threaded)"):format("threads", threads))
print(("%-22s median of %d steps after %d warm-up, gl.clock()"):format("method", reps, warmup))
print()
local header = ("%-40s %9s %11s"):format("case", "ms", "vs Linear")
print(header)
print(("-"):rep(#header))
local function row(name, ms, note)
  print(("%-40s %9.3f %11s"):format(name, ms, note or ""))
end
row(("BatchNorm(%d) fwd+bwd"):format(F), bn_ms, ("%.3fx"):format(bn_ms / linear_ms))
row(("Linear(%d, %d) fwd+bwd, %d thread%s"):format(F, F, threads, threads == 1 and "" or "s"), linear_ms, "1x")
row(("Linear(%d, %d) fwd+bwd, 1 thread"):format(F, F), linear_1_ms, ("%.3fx"):format(linear_1_ms / linear_ms))
print()
-- Bytes the kernels must move at least: forward reads x 3× and writes y; backward reads g and
-- x 2× each and writes dx (the module's step also makes the output and gradient tensors).
row("  BatchNorm forward only", bn_forward, ("%.1f GB/s"):format(4 * mib * 2^20 / (bn_forward * 1e-3) / 1e9))
row("  BatchNorm backward only", bn_backward, ("%.1f GB/s"):format(5 * mib * 2^20 / (bn_backward * 1e-3) / 1e9))
print(("Linear 3 sgemm: %.1f GFLOP/s at %d thread%s"):format(3 * 2 * B * F * F / (linear_ms * 1e-3) / 1e9, threads,
                                                          threads == 1 and "" or "s"))
print(("BatchNorm takes %.1f%% of a same-size Linear's step (%.1f%% of its 1-thread step)")
      :format(100 * bn_ms / linear_ms, 100 * bn_ms / linear_1_ms))
