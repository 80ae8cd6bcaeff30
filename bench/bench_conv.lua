-- bench_conv.lua — Conv2d 3x3, 64 -> 64 channels, 32x32 images, batch 32: GFLOP/s against sgemm.
--
-- Issue 6 asks for the forward + backward throughput of this layer next to raw sgemm, with the
-- target conv >= 60 % of sgemm, and for PyTorch's time on the same layer when it is installed.
--
-- FLOPs: the layer is three matrix products of the same size, 2 Cout (Cin k k) (B OH OW) each
-- (≈ 2.42 GFLOP): forward y = W col, backward dW = dy col^T and dx (at stride 1 itself a
-- convolution of dy, the same product again).  The sgemm baseline computes exactly those
-- three products, each as ONE big sgemm over the whole batch (64 x 576 . 576 x 32768 and its
-- two transposes, through a:matmul(b) on preallocated inputs, which bench_tensor measures at
-- 0.95-1.05 of a raw cblas_sgemm call), so it is the ceiling a conv layer could reach if
-- building the columns (im2col) and adding the bias were free; on CPUs with AVX-512 gl.conv2d
-- reads x in place instead (engine/conv_direct.c, no columns, no BLAS packing) and may pass
-- it.  The conv rows run the gradlab
-- op as a user sees it: nn.Conv2d with autograd recording, output allocation and backward
-- into x, weight and bias.
--
-- Rounds alternate the contenders (conv step, then the sgemm triple, reversed every other
-- round); the figures are medians, and "% of sgemm" is the median of the per-round ratios,
-- which cancels slowdowns that hit a whole round on this shared machine.  That order is
-- also the harsh case for the conv: with 2 or more threads gl.conv2d splits the batch over
-- its own worker threads (BLAS single-threaded inside each), and right after a threaded
-- sgemm OpenBLAS's idle threads still spin (sched_yield) for ~0.1 s, competing for the
-- cores, as they would after a Linear layer in a real net.  An [info] row times each side
-- in a block of its own, after a pause that lets those threads park.  PyTorch runs last,
-- in a child process (bench/torch_conv.py) with the same thread count.
--
-- Run:  build/gradlab bench/bench_conv.lua [--quick]
--       lua5.4 bench/bench_conv.lua [--quick]   (LUA_PATH/LUA_CPATH pointing at build/lua)
--       GRADLAB_THREADS=N (default 2) sets the engine's and OpenBLAS's threads, and PyTorch's.
--       OPENBLAS_CORETYPE=SkylakeX selects OpenBLAS's AVX-512 kernels, which 0.3.21 does not
--       pick by itself on this CPU (it falls back to generic Prescott kernels): run both ways.
--       OPENBLAS_THREAD_TIMEOUT=4 makes idle OpenBLAS threads sleep at once instead of spinning,
--       which removes their competition with the conv's worker threads (see above).
--       GRADLAB_PYTHON=/usr/bin/python3 is the interpreter tried for PyTorch.

local quick = false
for _, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true
  else
    io.stderr:write("usage: bench_conv.lua [--quick]\n")
    os.exit(2)
  end
end

local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local common = dofile(script_dir .. "/common.lua")
local gl = common.load_gradlab("bench_conv", script_dir)
local threads = common.env_threads("bench_conv", 2)
gl.set_num_threads(threads)

local B, CIN, COUT, H, W, K, PAD = 32, 64, 64, 32, 32, 3, 1
local OH, OW = H + 2 * PAD - K + 1, W + 2 * PAD - K + 1
local warmup, rounds = quick and 2 or 5, quick and 5 or 25
local clock = gl.clock

local median = common.median

local load_average = common.load_average

gl.manual_seed(1)
local x = gl.randn{ B, CIN, H, W }:requires_grad(true)
local conv = gl.nn.Conv2d(CIN, COUT, K, { padding = PAD })
local seed = gl.randn{ B, COUT, OH, OW }

-- The three products of the layer as single sgemm calls over the batch.
local P, KK = B * OH * OW, CIN * K * K
local w_mat, col = gl.randn{ COUT, KK }, gl.randn{ KK, P }
local dy_mat = gl.randn{ COUT, P }

local function conv_forward() gl.no_grad(function() return conv(x) end) end
local function conv_step()
  local y = conv(x)
  y:backward(seed)
  conv:zero_grad()
  x.grad = nil
end
local function sgemm_forward() return w_mat:matmul(col) end
local function sgemm_triple()
  local _ = w_mat:matmul(col)                    -- y    (64 x 32768)
  _ = dy_mat:matmul(col:t())                     -- dW   (64 x 576), B transposed
  _ = w_mat:t():matmul(dy_mat)                   -- dcol (576 x 32768), A transposed
end

-- Median ms of a and b over alternating rounds, and the median of per-round a/b.
local function duel(a, b)
  for _ = 1, warmup do a(); b() end
  local ta, tb, ratio = {}, {}, {}
  for r = 1, rounds do
    local first, second = a, b
    if r % 2 == 0 then first, second = b, a end
    collectgarbage()   -- outside the timed region: freed outputs go back to the engine's cache
    local t0 = clock(); first(); local t1 = clock(); second(); local t2 = clock()
    local da, db = t1 - t0, t2 - t1
    if r % 2 == 0 then da, db = db, da end
    ta[r], tb[r], ratio[r] = da * 1e3, db * 1e3, db / da
  end
  return median(ta), median(tb), median(ratio)
end

-- Median ms of fn run `rounds` times in a row, after OpenBLAS's idle threads have parked.
local function alone(fn)
  os.execute("sleep 0.3")
  for _ = 1, warmup do fn() end
  local times = {}
  for r = 1, rounds do
    collectgarbage()   -- outside the timed region: freed outputs go back to the engine's cache
    local t0 = clock(); fn(); times[r] = (clock() - t0) * 1e3
  end
  return median(times)
end

local load_before = load_average()
local fwd_ms, fwd_sgemm_ms, fwd_ratio = duel(conv_forward, sgemm_forward)
local step_ms, step_sgemm_ms, step_ratio = duel(conv_step, sgemm_triple)
local step_alone_ms = alone(conv_step)
local triple_alone_ms = alone(sgemm_triple)

local flop = 2 * COUT * KK * P
local function gflops(n, ms) return n / (ms * 1e-3) / 1e9 end

print(("Conv2d(%d, %d, %dx%d, padding=%d) on (%d, %d, %d, %d)%s"):format(CIN, COUT, K, K, PAD, B, CIN, H, W,
                                                                         quick and " (--quick)" or ""))
print(("%-24s %s, gradlab %s"):format("interpreter", _VERSION, gl.version or "?"))
print(("%-24s %d (engine and OpenBLAS)"):format("threads", threads))
print(("%-24s %s"):format("OPENBLAS_CORETYPE", os.getenv("OPENBLAS_CORETYPE") or "(unset: OpenBLAS 0.3.21 picks generic Prescott kernels on this CPU)"))
print(("%-24s %s"):format("OPENBLAS_THREAD_TIMEOUT", os.getenv("OPENBLAS_THREAD_TIMEOUT")
  or "(unset: idle OpenBLAS threads spin ~2^28 cycles; 4 parks them at once)"))
print(("%-24s %s (before), %s (after the gradlab rounds)"):format("load average", load_before, load_average()))
print(("%-24s median of %d alternating rounds after %d warm-up, gl.clock()"):format("method", rounds, warmup))
print(("%-24s %.3f GFLOP per product, 3 products for forward + backward"):format("work", flop / 1e9))
print()
local header = ("%-44s %9s %9s %11s"):format("case", "ms", "GFLOP/s", "% of sgemm")
print(header)
print(("-"):rep(#header))
local function row(name, ms, n, note)
  print(("%-44s %9.2f %9.1f %11s"):format(name, ms, gflops(n, ms), note or ""))
end
row("gradlab conv2d forward (no_grad)", fwd_ms, flop, ("%.0f %%"):format(100 * fwd_ratio))
row("  sgemm 64x576 . 576x32768", fwd_sgemm_ms, flop)
row("gradlab conv2d forward + backward", step_ms, 3 * flop, ("%.0f %% %s"):format(100 * step_ratio,
                                                                                 step_ratio >= 0.6 and "PASS" or "MISS"))
row("  sgemm, the same 3 products", step_sgemm_ms, 3 * flop)
print("[info] each in a block of its own, OpenBLAS's idle threads parked first:")
row("gradlab conv2d forward + backward, alone", step_alone_ms, 3 * flop,
    ("%.0f %%"):format(100 * triple_alone_ms / step_alone_ms))
row("  sgemm, the same 3 products, alone", triple_alone_ms, 3 * flop)

-- PyTorch, when its Python module imports.
local python = os.getenv("GRADLAB_PYTHON") or "/usr/bin/python3"
local have_torch = os.execute(python .. " -c 'import torch' >/dev/null 2>&1") == true
if not have_torch then
  print()
  print("PyTorch: not installed for " .. python .. " (Debian package python3-torch), skipped")
  return
end
local command = ("OMP_NUM_THREADS=%d MKL_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d %s %s/torch_conv.py %d %d %d %d %d %d %d %d %d %d 2>&1")
  :format(threads, threads, threads, python, script_dir, threads, warmup, rounds, B, CIN, COUT, H, W, K, PAD)
local pipe = assert(io.popen(command))
local output = pipe:read("a")
pipe:close()
local torch = {}
for name, ms in output:gmatch("([%w+]+) ([%d.]+)\n") do torch[name] = tonumber(ms) end
local backend = output:match("backend ([^\n]*)")
if not (torch.forward and torch["fwd+bwd"]) then
  print()
  print("PyTorch: the run failed:\n" .. output)
  return
end
print()
print(("PyTorch (%s), load average %s after"):format(backend or "?", load_average()))
row("torch conv2d forward (no_grad)", torch.forward, flop, ("gradlab %.2fx its time"):format(fwd_ms / torch.forward))
row("torch conv2d forward + backward", torch["fwd+bwd"], 3 * flop,
    ("gradlab %.2fx its time"):format(step_ms / torch["fwd+bwd"]))
if torch.sgemm then row("torch.mm 64x576 . 576x32768", torch.sgemm, flop) end
