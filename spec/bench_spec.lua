-- spec/bench_spec.lua — every benchmark case runs once at a tiny size, so the benchmark
-- code cannot rot (timings are not judged here: speed is measured by `make bench`).
local program = os.getenv("GRADLAB_PROGRAM") or "build/gradlab"

local function run(command)
  local pipe = io.popen(command .. " 2>&1")
  local output = pipe:read("a")
  local ok = pipe:close()
  return ok, output
end

describe("the performance suite at tiny sizes", function()
  for _, case in ipairs{ "a", "b", "c", "d", "e", "f" } do
    it("case " .. case .. " runs and reports a time", function()
      local ok, output = run(("%s bench/cases.lua %s --quick"):format(program, case))
      assert.is_true(ok, output)
      assert.truthy(output:match("ms=[%d%.]+ flops=%d+ rss_kb=%d+"), output)
    end)
  end

  for _, script in ipairs{ "bench_train", "bench_optim", "bench_monitor" } do
    it(script .. ".lua runs in --quick mode", function()
      local ok, output = run(("%s bench/%s.lua --quick"):format(program, script))
      assert.is_true(ok, output)
    end)
  end

  it("the C benchmarks build and run quickly", function()
    local ok, output = run("make -s -C bench $PWD/build/bench/sgemm_ceiling $PWD/build/bench/bench_tensor "
      .. "$PWD/build/bench/blas_threads BUILD=$PWD/build")
    assert.is_true(ok, output)
    ok, output = run("build/bench/sgemm_ceiling 8 8 8 3")
    assert.is_true(ok, output)
    assert.truthy(output:match("gflops=[%d%.]+ core=%S+"), output)
    ok, output = run("build/bench/blas_threads --quick")
    assert.is_true(ok, output)
    assert.truthy(output:find("Linear(64) fwd b32", 1, true), output)
    ok, output = run("build/bench/bench_tensor --quick")
    assert.is_true(ok, output)
  end)
end)
