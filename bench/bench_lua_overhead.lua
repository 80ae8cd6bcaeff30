-- bench_lua_overhead.lua — the cost of one call from Lua into the engine.
--
-- Times tiny ops, where the work is negligible and what remains is the
-- Lua→C call, argument checks, the result's userdata, the engine's tensor and
-- storage allocations, and their later collection by the GC:
--   a + b        on two 8-element tensors   (target: < 1 µs per op)
--   a:matmul(b)  on two 4×4 tensors
--   t:sum()      on an 8-element tensor
--   gl.zeros{8}
-- Each op runs `iterations` times in `batches` timed batches; the median batch
-- gives ns per op.  Times include the Lua loop itself (shown as "empty loop");
-- gl.clock() shows the floor of any Lua→C call that returns a value.
-- The garbage collector keeps its default settings, as a user's script gets
-- them; its mode is printed (stock lua5.4's interpreter switches to the
-- generational mode at startup; the library default is incremental).  An
-- info row repeats a + b under the other mode.
--
-- Run:  make -C bench run-lua           (stock lua5.4 with LUA_PATH/LUA_CPATH
--       lua5.4 bench/bench_lua_overhead.lua [--quick] [--strict]   set to build/lua)
--       build/gradlab bench/bench_lua_overhead.lua

local quick, strict = false, false
for _, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true
  elseif a == "--strict" then strict = true
  else
    io.stderr:write("usage: bench_lua_overhead.lua [--quick] [--strict]\n")
    os.exit(2)
  end
end

-- Find the module: as installed / via LUA_PATH, else in ../build/lua next to this script.
local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local common = dofile(script_dir .. "/common.lua")
local gl = common.load_gradlab("bench_lua_overhead", script_dir)

local clock = gl.clock

-- The collector's mode, read without changing it: switching returns the old mode.
local function gc_mode()
  local previous = collectgarbage("incremental")
  if previous == "generational" then collectgarbage("generational") end
  return previous
end

local threads = common.env_threads("bench_lua_overhead", 2)
gl.set_num_threads(threads)

local iterations = quick and 10000 or 1000000
local batches = quick and 2 or 10
local per_batch = iterations // batches

local median = common.median

-- Median ns per call of body(count), which runs the op `count` times.
local function measure(body)
  body(per_batch // 10 + 1)   -- warm-up
  local times = {}
  for b = 1, batches do
    local start = clock()
    body(per_batch)
    times[b] = (clock() - start) / per_batch * 1e9
  end
  return median(times)
end

local a8, b8 = gl.randn { 8 }, gl.randn { 8 }
local a44, b44 = gl.randn { 4, 4 }, gl.randn { 4, 4 }
local sink

local cases = {
  { name = "empty loop (baseline)", body = function(n)
      for _ = 1, n do sink = a8 end
    end },
  { name = "gl.clock()  (bare C call)", body = function(n)
      local f = clock
      for _ = 1, n do sink = f() end
    end },
  { name = "a + b  (8 elements)", target = 1000, body = function(n)
      local a, b = a8, b8
      for _ = 1, n do sink = a + b end
    end },
  { name = "a:matmul(b)  (4x4)", body = function(n)
      local a, b = a44, b44
      for _ = 1, n do sink = a:matmul(b) end
    end },
  { name = "t:sum()  (8 elements)", body = function(n)
      local t = a8
      for _ = 1, n do sink = t:sum() end
    end },
  { name = "gl.zeros{8}", body = function(n)
      local zeros = gl.zeros
      for _ = 1, n do sink = zeros { 8 } end
    end },
}

local mode = gc_mode()
local kb_before = collectgarbage("count")
for _, c in ipairs(cases) do c.ns = measure(c.body) end
local kb_after = collectgarbage("count")

-- Info: the same a + b under the other collector mode, then back to the default.
local other = mode == "generational" and "incremental" or "generational"
collectgarbage(other)
local other_ns = measure(cases[3].body)
collectgarbage(mode)

print(("gradlab Lua→C call overhead%s"):format(quick and " (--quick)" or ""))
print(("%-20s %s, gradlab %s"):format("interpreter", _VERSION, gl.version or "?"))
print(("%-20s %d (gl.get_num_threads() = %d)"):format("threads", threads, gl.get_num_threads()))
local coretype = os.getenv("OPENBLAS_CORETYPE")
print(("%-20s %s"):format("OPENBLAS_CORETYPE",
                          not coretype and "(unset)" or coretype == "" and "(empty)" or coretype))
print(("%-20s %s (default settings; heap %.0f KB before, %.0f KB after the runs)")
      :format("GC mode", mode, kb_before, kb_after))
print(("%-20s median of %d batches of %d calls (%d calls per op), gl.clock()")
      :format("method", batches, per_batch, per_batch * batches))
print()
local header = ("%-28s %10s %9s %-6s"):format("case", "ns/op", "target", "result")
print(header)
print(("-"):rep(#header))
local missed, passed = 0, 0
local function row(name, ns, target)
  local result, target_text = "-", "info"
  if target then
    target_text = ("<%d"):format(target)
    if not quick then
      if ns < target then result, passed = "PASS", passed + 1
      else result, missed = "MISS", missed + 1 end
    end
  end
  print(("%-28s %10.1f %9s %-6s"):format(name, ns, target_text, result))
end
for _, c in ipairs(cases) do row(c.name, c.ns, c.target) end
row("a + b, " .. other .. " GC", other_ns, nil)
print()
if quick then
  print("(--quick: too few iterations to judge; target not checked)")
else
  print(("%d PASS, %d MISS"):format(passed, missed))
end
if strict and missed > 0 then os.exit(1) end
