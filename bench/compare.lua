-- bench/compare.lua — gradlab side by side with PyTorch and the raw sgemm ceiling.
-- Runs each case of bench/cases.lua and bench/torch_cases.py in its own process
-- (so peak memory is per side), with the same thread count on both sides
-- (GRADLAB_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, torch.set_num_threads),
-- and prints one table.  Figures are medians over >= 30 steps after warm-up.
--
-- Each side of each case runs --rounds times (default 3, 1 with --quick),
-- alternating gradlab and PyTorch, and the median of the rounds is shown: on a
-- shared machine one run of either side can be 2x off.
--
--   build/gradlab bench/compare.lua [--quick] [--cases abcdefg] [--rounds N]
local gl = require "gradlab"

local quick, only, rounds = false, "abcdefg", nil
for i = 1, #arg do
  if arg[i] == "--quick" then quick = true end
  if arg[i] == "--cases" then only = arg[i + 1] or only end
  if arg[i] == "--rounds" then rounds = tonumber(arg[i + 1]) end
end
rounds = math.max(1, math.floor(rounds or (quick and 1 or 3)))
local threads = tonumber(os.getenv("GRADLAB_THREADS") or "2")
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "bench"
local root = here .. "/.."
local program = os.getenv("GRADLAB_PROGRAM") or (root .. "/build/gradlab")
local python = os.getenv("GRADLAB_PYTHON") or "/usr/bin/python3"
local ceiling_program = os.getenv("GRADLAB_SGEMM_CEILING") or (root .. "/build/bench/sgemm_ceiling")
local env = ("GRADLAB_THREADS=%d OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d "):format(threads, threads, threads)
local flag = quick and " --quick" or ""

local function run(command)
  local pipe = io.popen(env .. command .. " 2>&1")
  local output = pipe:read("a")
  pipe:close()
  local ms, flops, rss = output:match("ms=([%d%.]+) flops=(%d+) rss_kb=(%d+)")
  if not ms then return nil, output end
  return { ms = tonumber(ms), flops = tonumber(flops), rss = tonumber(rss), core = output:match("core=(%S+)"),
           base = tonumber(output:match("base_ms=([%d%.]+)")), paired = tonumber(output:match("paired_ms=([%d%.]+)")) }
end

-- The run with the median time of a list of runs (nil for none).
local function median_run(list)
  if #list == 0 then return nil end
  table.sort(list, function(x, y) return x.ms < y.ms end)
  return list[(#list + 1) // 2]
end

local has_torch = os.execute(python .. " -c 'import torch' 2>/dev/null") == true

-- The ceiling: raw cblas_sgemm on case (a)'s largest product, in this run:
-- measured once here and, with case (a), right before each of its rounds
-- (the median of those is used: the same conditions as the case).
local function measure_ceiling()
  local pipe = io.popen(env .. ceiling_program .. (quick and " 8 64 32 3" or " 128 1024 1024 30") .. " 2>&1")
  local output = pipe:read("a")
  pipe:close()
  return tonumber(output:match("gflops=([%d%.]+)"))
end
local ceiling = measure_ceiling()
local ceilings = {}
-- Which OpenBLAS kernels each side runs: gradlab replaces OpenBLAS's generic
-- fallback on CPUs it does not know (engine/blas.c); PyTorch keeps it.
local blas = gl.blas()
local torch_core = "-"

local names = {
  a = "(a) MLP 784-1024-1024-10 b128", b = "(b) 32 x Linear(64) tanh b32", c = "(c) (b) + monitor every step",
  d = "(d) LSTM 32->128 T100 b32", e = "(e) ResNet-style conv 32x32 b32", f = "(f) 6 pre-LN blocks d128 seq64 b16",
}
local targets = { a = 1.0, b = 0.3, d = 0.8, e = 1.0, f = 1.0 }

local rows, results = {}, {}
for _, case in ipairs{ "a", "b", "c", "d", "e", "f" } do
  if only:find(case, 1, true) then
    local gs, ts, gerr = {}, {}, nil
    for _ = 1, rounds do
      if case == "a" then ceilings[#ceilings + 1] = measure_ceiling() end
      local g, err = run(("%s %s/cases.lua %s%s"):format(program, here, case, flag))
      if g then gs[#gs + 1] = g else gerr = err end
      local t = has_torch and run(("%s %s/torch_cases.py %s%s"):format(python, here, case, flag)) or nil
      if t then ts[#ts + 1] = t end
    end
    local g, t = median_run(gs), median_run(ts)
    if #ceilings > 0 then
      table.sort(ceilings)
      ceiling = ceilings[(#ceilings + 1) // 2]
    end
    results[case] = { g = g, t = t }
    if t and t.core then torch_core = t.core end
    if not g then io.stderr:write(("case %s failed on the gradlab side:\n%s\n"):format(case, gerr)) end
    local row = { names[case], g and g.ms, t and t.ms }
    row[4] = g and t and g.ms / t.ms
    row[5] = g and g.flops > 0 and g.flops / (g.ms * 1e6) or nil
    row[6] = row[5] and ceiling and 100 * row[5] / ceiling or nil
    local target = targets[case]
    if case == "c" and g and g.base then
      -- In-process pairs (cases.lua c): the same net with and without a monitor.
      local overheads = {}
      for i, run_c in ipairs(gs) do overheads[i] = run_c.paired / run_c.base - 1 end
      table.sort(overheads)
      row[7] = ("overhead %.1f%% (<= 3%%: %s; in-process pairs %.3f vs %.3f ms)")
        :format(100 * overheads[(#overheads + 1) // 2], overheads[(#overheads + 1) // 2] <= 0.03 and "PASS" or "MISS",
                g.paired, g.base)
    elseif target and row[4] then
      row[7] = ("%s (<= %.1f)"):format(row[4] <= target and "PASS" or "MISS", target)
    end
    if case == "a" and row[6] then row[7] = (row[7] or "") .. (row[6] >= 85 and ", ceil PASS" or ", ceil MISS (>= 85%)") end
    rows[#rows + 1] = row
  end
end

local function f(v, format) return v and format:format(v) or "-" end
print(("gradlab vs PyTorch%s — threads %d, OPENBLAS_CORETYPE=%s, raw sgemm ceiling %s GFLOP/s%s")
  :format(has_torch and "" or " (PyTorch not installed)", threads, os.getenv("OPENBLAS_CORETYPE") or "unset",
          f(ceiling, "%.1f"), quick and " — QUICK sizes, targets not meaningful" or ""))
print(("OpenBLAS kernels: gradlab %s (chosen by %s), PyTorch %s; median of %d alternating round%s")
  :format(blas.core, blas.chosen_by, torch_core, rounds, rounds == 1 and "" or "s"))
print(("%-34s %12s %12s %8s %9s %8s  %s"):format("case", "gradlab ms", "PyTorch ms", "ratio", "GFLOP/s", "% ceil", "target"))
for _, r in ipairs(rows) do
  print(("%-34s %12s %12s %8s %9s %8s  %s"):format(r[1], f(r[2], "%.3f"), f(r[3], "%.3f"), f(r[4], "%.2f"),
    f(r[5], "%.1f"), f(r[6], "%.0f%%"), r[7] or ""))
end

-- (g) start-up and memory.
if only:find("g", 1, true) then
  local function wall(command, n)
    local times = {}
    for i = 1, n do
      local t0 = gl.clock()
      os.execute(command .. " > /dev/null 2>&1")
      times[i] = (gl.clock() - t0) * 1000
    end
    table.sort(times)
    return times[(n + 1) // 2]
  end
  local n = quick and 3 or 21
  local startup = wall(program .. " -e ''", n)
  local torch_startup = has_torch and wall(python .. " -c 'import torch'", quick and 1 or 5) or nil
  local ga, ta = results.a and results.a.g, results.a and results.a.t
  print(("(g) start-up: gradlab -e '' %.1f ms (target < 20 ms: %s)%s"):format(startup, startup < 20 and "PASS" or "MISS",
    torch_startup and (", python3 -c 'import torch' %.0f ms"):format(torch_startup) or ""))
  if ga and ta then
    print(("    peak RSS of case (a): gradlab %.1f MB, PyTorch %.1f MB, ratio %.2f (target <= 0.5: %s)")
      :format(ga.rss / 1024, ta.rss / 1024, ga.rss / ta.rss, ga.rss / ta.rss <= 0.5 and "PASS" or "MISS"))
  end
end
