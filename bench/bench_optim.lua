-- bench/bench_optim.lua — one Adam step over 10^7 parameters against one memory pass.
-- Adam reads param, grad, exp_avg, exp_avg_sq and writes param, exp_avg, exp_avg_sq:
-- 7 x 4 bytes per parameter.  The floor is the time of a plain in-place pass that
-- moves the same bytes (t:add_(u) reads 2 and writes 1 stream; scaled to 7 streams).
--
--   build/gradlab bench/bench_optim.lua [--quick]
local gl = require "gradlab"

local quick = false
for _, a in ipairs(arg or {}) do if a == "--quick" then quick = true end end
gl.set_num_threads(tonumber(os.getenv("GRADLAB_THREADS") or "2"))

local n = quick and 10000 or 10000000
local reps = quick and 2 or 30

local function median_ms(fn)
  fn()
  local times = {}
  for r = 1, reps do
    local t0 = gl.clock()
    fn()
    times[r] = (gl.clock() - t0) * 1000
  end
  table.sort(times)
  return times[(#times + 1) // 2]
end

gl.manual_seed(0)
local p = gl.param(gl.randn{n})
p.grad = gl.randn{n}
local opt = gl.optim.Adam({p}, {lr = 1e-3})
local adam = median_ms(function() opt:step() end)

local a, b = gl.randn{n}, gl.randn{n}
local pass = median_ms(function() a:add_(b) end)   -- 3 streams
local floor = pass * 7 / 3
local bytes = 7 * 4 * n

print(("Adam step over %d parameters%s"):format(n, quick and " (QUICK)" or ""))
print(("  Adam:                 %8.3f ms  (%.1f GB/s)"):format(adam, bytes / (adam * 1e6)))
print(("  one memory pass (7 streams, from add_): %8.3f ms  (%.1f GB/s)"):format(floor, bytes / (floor * 1e6)))
print(("  ratio %.2fx   target <= 1.5x: %s"):format(adam / floor, adam / floor <= 1.5 and "PASS" or "MISS"))
