-- spec/robust_spec.lua — robustness beyond single bad calls (issue 9):
--   * Ctrl-C in the REPL during long ops returns to the prompt with the session intact;
--   * kill -9 during gl.save / gl.save_state in a loop never leaves a truncated file;
--   * same seed + same thread count => bitwise-identical training, across processes too;
--   * shapes beyond memory or int64 give clean errors; a REPL that makes and drops 10^5
--     tensors stays at constant memory;
--   * random calls of the whole API with hostile arguments never crash (spec/fuzz/api_fuzz.lua);
--   * every file of the fuzz corpus (spec/fuzz/corpus/) loads or is refused cleanly.
-- Child processes run $GRADLAB_PROGRAM (the Makefile exports it), else build/gradlab.
local gl = require "gradlab"
local nn, optim = gl.nn, gl.optim

local PROGRAM = os.getenv("GRADLAB_PROGRAM") or "build/gradlab"
if PROGRAM:sub(1, 1) ~= "/" then PROGRAM = (os.getenv("PWD") or ".") .. "/" .. PROGRAM end
local PYTHON = os.getenv("GRADLAB_PYTHON") or "/usr/bin/python3"
-- Under `make check` (ASan's allocator keeps freed memory in quarantine) RSS says nothing.
local SANITIZED = os.getenv("GRADLAB_SANITIZED") == "1"

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
-- The pseudo-terminal drivers import spec/pty_session.py.
local SPEC_DIR = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local PTY_PATH = "PYTHONPATH=" .. quote(SPEC_DIR) .. " "

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function run(command)
  local p = assert(io.popen(command .. " 2>&1", "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local function temp_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. quote(dir)))
  return dir
end

-- ------------------------------------------------------------------ interruptions
describe("Ctrl-C in the REPL", function()
  -- Drives the terminal REPL under a pseudo-terminal (as program_spec.lua does): each
  -- step waits for the output it expects; a missing one fails with the transcript.
  local DRIVER = [==[
import sys, time
from pty_session import start, send, expect, finish
start(sys.argv[1], {"GRADLAB_HISTORY": "/dev/null"}, expect_timeout=30.0)
def interrupt(statement, wait=0.6):
    send(statement + "\r")
    time.sleep(wait)
    send("\x03"); expect("interrupted!"); expect("gl> ")
expect("gl> ")
send("x = gl.randn{400, 400}; w = gl.param(gl.randn{400, 10}); s0 = x:sum():item(); n0 = gl.memory()\r")
expect("gl> ")
interrupt("for i = 1, 1e9 do y = x:matmul(x) end")
send("print('intact', x:sum():item() == s0, x:size(1), y == nil or y:size(2))\r")
expect("intact\ttrue\t400\t400"); expect("gl> ")
print("matmul loop ok")
interrupt("opt = gl.optim.SGD({w}, {lr = 1e-6}); while true do opt:zero_grad(); x:matmul(w):pow(2):mean():backward(); opt:step() end")
send("print('trained', w:size(1), w:size(2), w:norm():item() == w:norm():item())\r")
expect("trained\t400\t10\ttrue"); expect("gl> ")
print("training loop ok")
interrupt("gl.no_grad(function() while true do local z = x * 2 end end)")
send("print('grad mode', gl.is_grad_enabled())\r"); expect("grad mode\ttrue"); expect("gl> ")
print("no_grad ok")
send("Spin = gl.nn.class('Spin'); function Spin:init() end; function Spin:forward(v) while true do v = v * 1 end end\r")
expect("gl> ")
interrupt("gl.nn.Sequential{gl.nn.Linear(4, 4), Spin()}(gl.ones{2, 4})")
send("print('path', ('%q'):format(gl._module_path()))\r"); expect('path\t""'); expect("gl> ")
print("module path ok")
send("print('still', x:matmul(x):size(1), (x - x):abs():max():item())\r")
expect("still\t400\t0.0"); expect("gl> ")
print("session ok")
finish(10.0)
]==]

  it("stops matmul and training loops, no_grad bodies and module forwards; the tensors stay intact", function()
    local script = os.tmpname()
    write_file(script, DRIVER)
    local out = run(PTY_PATH .. "timeout 180 " .. PYTHON .. " " .. quote(script) .. " " .. quote(PROGRAM) .. " </dev/null")
    os.remove(script)
    for _, step in ipairs { "matmul loop ok", "training loop ok", "no_grad ok", "module path ok",
                            "session ok", "exit 0" } do
      assert.truthy(out:find(step, 1, true), out)
    end
  end)
end)

describe("kill -9 during saves", function()
  -- A child saves tensors full of its counter to one path as fast as it can; the parent
  -- kills it at a random moment.  Afterwards the path holds a whole file from some
  -- iteration, or nothing (killed before the first save finished): never a torn one.
  local CHILD = [[
local path, kind = arg[1], arg[2]
local i = 0
while true do
  i = i + 1
  local t = gl.full({64, 1024}, i)
  if kind == "npy" then
    gl.save(path, t)
  else
    gl.save_state(path, { w = t, b = gl.full({ 100 }, -i) })
  end
end
]]

  local function dead(pid)
    local stat = slurp("/proc/" .. pid .. "/stat")
    return stat == nil or stat:match("^%d+ %b() (%a)") == "Z"
  end

  local function kill_rounds(kind, rounds)
    local dir = temp_dir()
    local child = dir .. "/child.lua"
    write_file(child, CHILD)
    local path = dir .. (kind == "npy" and "/target.npy" or "/target.npz")
    local seen_file, seen_values = 0, {}
    math.randomseed(os.time())
    for round = 1, rounds do
      local p = assert(io.popen("sh -c " .. quote("exec " .. quote(PROGRAM) .. " " .. quote(child) .. " "
        .. quote(path) .. " " .. kind .. " >/dev/null 2>&1 & echo $!")))
      local pid = assert(tonumber(p:read("l")))
      p:close()
      os.execute(("sleep %.3f"):format(0.05 + math.random() * 0.45))
      os.execute("kill -9 " .. pid .. " 2>/dev/null")
      for _ = 1, 200 do
        if dead(pid) then break end
        os.execute("sleep 0.01")
      end
      assert.is_true(dead(pid), "child " .. pid .. " survived kill -9")
      if io.open(path, "rb") then
        seen_file = seen_file + 1
        local ok, loaded = pcall(kind == "npy" and gl.load or gl.load_state, path)
        assert.is_true(ok, ("round %d: %s"):format(round, tostring(loaded)))
        local t = kind == "npy" and loaded or loaded.w
        assert.same({ 64, 1024 }, t:shape())
        local v = t:max():item()
        assert.equal(v, t:min():item(), "a tensor mixing two saves")
        assert.is_true(v >= 1 and v == math.floor(v))
        if kind == "npz" then
          assert.same({ 100 }, loaded.b:shape())
          assert.equal(-v, loaded.b:max():item())
          assert.equal(-v, loaded.b:min():item())
        end
        seen_values[#seen_values + 1] = v
      end
    end
    os.execute("rm -rf " .. quote(dir))
    -- The kills landed mid-loop, not all before the first save.
    assert.is_true(seen_file >= rounds // 2, ("a file after only %d of %d kills"):format(seen_file, rounds))
    return seen_values
  end

  it("gl.save: 20 kills, the target is always absent or complete", function()
    kill_rounds("npy", 20)
  end)

  it("gl.save_state: 20 kills, the target is always absent or complete", function()
    kill_rounds("npz", 20)
  end)
end)

-- ------------------------------------------------------------------- determinism
-- A short training touching dropout, shuffling, BLAS, conv and the optimizer; returns the
-- loss and gradient-norm series as exact hexadecimal floats.
local TRAINING = [[
local gl, seed, threads = ...
local nn, optim = gl.nn, gl.optim
gl.set_num_threads(threads)
gl.manual_seed(seed)
local x, y = gl.data.spirals(256, 3)
local model = nn.Sequential{ nn.Linear(2, 128), nn.Tanh(), nn.Dropout(0.1), nn.Linear(128, 128),
                             nn.ReLU(), nn.LayerNorm(128), nn.Linear(128, 3) }
local conv = nn.Conv2d(1, 4, 3, { padding = 1 })
local params = model:parameters()
for _, p in ipairs(conv:parameters()) do params[#params + 1] = p end
local opt = optim.Adam(params, { lr = 1e-2 })
local loader = gl.data.loader(x, y, { batch = 64 })
local lines = {}
for _ = 1, 2 do
  for xb, yb in loader:epoch() do
    opt:zero_grad()
    local image = xb:matmul(gl.ones{ 2, 64 }):view{ -1, 1, 8, 8 }
    local loss = gl.loss.cross_entropy(model(xb), yb) + conv(image):pow(2):mean() * 1e-3
    loss:backward()
    local norm = optim.clip_grad_norm(params, 1e9)
    opt:step()
    lines[#lines + 1] = ("%a %a"):format(loss:item(), norm)
  end
end
return table.concat(lines, "\n")
]]

describe("determinism", function()
  local function in_process(seed, threads)
    local before = gl.get_num_threads()
    local out = assert(load(TRAINING))(gl, seed, threads)
    gl.set_num_threads(before)
    return out
  end

  local function in_child(seed, threads)
    local script = os.tmpname()
    write_file(script, "io.write((load(" .. ("%q"):format(TRAINING) .. "))(gl, " .. seed .. ", " .. threads .. "))")
    local out, code = run(quote(PROGRAM) .. " " .. quote(script))
    os.remove(script)
    assert.equal(0, code, out)
    return out
  end

  it("gives bitwise-identical loss and gradient-norm series in one process", function()
    local first = in_process(42, 2)
    assert.equal(8, select(2, first:gsub("\n", "")) + 1)
    assert.equal(first, in_process(42, 2))
    assert.are_not.equal(first, in_process(43, 2))
  end)

  it("gives the same series in two separate processes, and the same as in-process", function()
    local one, two = in_child(7, 2), in_child(7, 2)
    assert.equal(one, two)
    assert.equal(one, in_process(7, 2))
  end)
end)

-- ---------------------------------------------------------------- resource limits
describe("resource limits", function()
  local huge = {
    { "zeros{1e6, 1e6, 1e6}", function() return gl.zeros{1e6, 1e6, 1e6} end, "zeros" },
    { "ones{2^62, 4} (overflows int64)", function() return gl.ones{2 ^ 62, 4} end, "ones" },
    { "randn{2^31, 2^31}", function() return gl.randn{2 ^ 31, 2 ^ 31} end, "randn" },
    { "empty{8e9} (32 GB)", function() return gl.empty{8e9} end, "empty" },
    { "full of 10^12", function() return gl.full({ 1e12 }, 1) end, "full" },
    { "eye(1e9)", function() return gl.eye(1e9) end, "eye" },
    { "arange(0, 2^40)", function() return gl.arange(0, 2 ^ 40) end, "arange" },
    { "randperm(2^40)", function() return gl.randperm(2 ^ 40) end, "randperm" },
    { "randint over 2^40", function() return gl.randint(1, 2, { 2 ^ 40 }) end, "randint" },
    { "view to huge", function() return gl.zeros{ 6 }:view{ 2 ^ 40, 2 ^ 40 } end, "view" },
    { "reshape to 2^62 x 4", function() return gl.zeros{ 6 }:reshape{ 2 ^ 62, 4 } end, "reshape" },
    { "contiguous copy of a huge expanded view", function() return gl.zeros{ 1 }:expand{ 2 ^ 40 }:contiguous() end, "contiguous" },
    { "cat of huge views", function() local h = gl.zeros{ 1 }:expand{ 2 ^ 40 }; return gl.cat({ h, h }, 1) end, "cat" },
    { "cat overflowing int64", function() local h = gl.zeros{ 1 }:expand{ 2 ^ 62 }; return gl.cat({ h, h, h, h }, 1) end, "cat" },
    { "broadcast add to 2^40", function() return gl.zeros{ 1 }:expand{ 2 ^ 40 } + 1 end, "add" },
    { "matmul to a 2^31 x 2^31 result", function()
        return gl.zeros{ 1, 1 }:expand{ 2 ^ 31, 1 }:matmul(gl.zeros{ 1, 1 }:expand{ 1, 2 ^ 31 })
      end, "matmul" },
    { "Linear(1e6, 1e6)", function() return nn.Linear(1e6, 1e6) end, "Linear" },
    -- found by spec/fuzz/api_fuzz.lua: empty shapes whose other sizes overflow or loop for ever
    { "zeros{0, 2^62, 3}", function() return gl.zeros{0, 2 ^ 62, 3} end, "zeros" },
    { "zeros{2^62, 0}", function() return gl.zeros{2 ^ 62, 0} end, "zeros" },
    { "an empty view as {2^62, 0}", function() return gl.zeros{0}:view{2 ^ 62, 0} end, "view" },
    { "an empty expand to {2^62, 0}", function() return gl.zeros{0}:expand{2 ^ 62, 0} end, "expand" },
    { "expand to 2^62 x 4", function() return gl.zeros{1}:expand{2 ^ 62, 4} end, "expand" },
    { "group_norm with 2^62 groups of 0 channels", function()
        return gl.group_norm(gl.zeros{3, 0}, 2 ^ 62)
      end, "group_norm" },
    { "a .npy whose header claims 2^60 elements", function()
        local path = os.tmpname()
        local dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1073741824), }"
        dict = dict .. string.rep(" ", 117 - #dict) .. "\n"
        write_file(path, "\x93NUMPY\1\0" .. string.pack("<I2", #dict) .. dict .. string.rep("\0", 64))
        local ok, err = pcall(gl.load, path)
        os.remove(path)
        if not ok then error(err, 0) end
      end, "load" },
  }
  for _, case in ipairs(huge) do
    it("refuses " .. case[1] .. " with a clean error", function()
      local ok, err = pcall(case[2])
      assert.is_false(ok)
      err = tostring(err)
      assert.truthy(err:find(case[3] .. ": ", 1, true), err)
      -- and the session goes on
      assert.equal(4, gl.ones{ 2, 2 }:matmul(gl.ones{ 2, 2 }):sum():item() / 2)
    end)
  end

  it("differentiates GELU at NaN and infinity without undefined behaviour (api_fuzz finding)", function()
    local x = gl.param(gl.tensor{ 0 / 0, math.huge, -math.huge, -100, 0, 1 })
    local y = gl.gelu(x)
    y:sum():backward()
    local g = x.grad:totable()
    assert.is_true(g[1] ~= g[1])
    assert.near(0, g[4], 1e-6)
    assert.near(0.5, g[5], 1e-6)
  end)

  it("keeps a piped REPL session that makes and drops 10^5 tensors at constant memory", function()
    local input = os.tmpname()
    local f = assert(io.open(input, "w"))
    f:write('function rss() local s = io.open("/proc/self/statm"):read("l"); '
      .. 'return tonumber(s:match("^%d+%s+(%d+)")) * 4096 end\n')
    for i = 1, 100000 do
      f:write(i % 2 == 1 and "t = gl.randn{16, 16} * 2\n" or "u = gl.zeros{64}:add_(t:sum())\n")
      if i == 10000 then f:write('print("rss1", rss(), gl.memory())\n') end
      if i == 100000 then f:write('print("rss2", rss(), gl.memory())\n') end
    end
    f:close()
    local out, code = run("timeout 300 " .. quote(PROGRAM) .. " < " .. quote(input))
    os.remove(input)
    assert.equal(0, code, out:sub(-2000))
    local rss1, live1 = out:match("rss1\t(%d+)\t(%d+)")
    local rss2, live2 = out:match("rss2\t(%d+)\t(%d+)")
    assert.truthy(rss1 and rss2, out:sub(-2000))
    rss1, rss2 = tonumber(rss1), tonumber(rss2)
    -- Tensors alive in the engine: the two globals only, not 10^5 dropped ones.
    assert.is_true(tonumber(live2) < 1e6, "live tensor bytes " .. live2)
    if not SANITIZED then
      assert.is_true(rss2 - rss1 < 4 * 1024 * 1024,
                     ("RSS grew from %.1f MB to %.1f MB"):format(rss1 / 2 ^ 20, rss2 / 2 ^ 20))
    end
  end)
end)

-- ------------------------------------------------------------------- API fuzzing
describe("random misuse of the whole API (spec/fuzz/api_fuzz.lua)", function()
  for _, seed in ipairs { 1, 2, 3, 4 } do
    it("survives 30000 random calls, seed " .. seed, function()
      local out, code = run("timeout 300 " .. quote(PROGRAM) .. " spec/fuzz/api_fuzz.lua " .. seed .. " 30000")
      assert.equal(0, code, out:sub(-3000))
      assert.truthy(out:find("api_fuzz seed " .. seed .. ": 30000 calls", 1, true), out:sub(-3000))
    end)
  end
end)

-- -------------------------------------------------------------------- fuzz corpus
-- The seeds and every crash reproducer the fuzzers found (spec/fuzz/corpus/), replayed
-- through the Lua API on every `make test`, so a regression shows without clang.
describe("the fuzz corpus through the Lua API", function()
  local function files(target)
    local list = {}
    local p = io.popen("ls spec/fuzz/corpus/" .. target .. " 2>/dev/null")
    for name in p:lines() do list[#list + 1] = "spec/fuzz/corpus/" .. target .. "/" .. name end
    p:close()
    return list
  end

  local function replay(target, fn, prefix, strip)
    local list = files(target)
    assert.is_true(#list > 0, "no corpus for " .. target)
    for _, path in ipairs(list) do
      local source = path
      if strip then   -- the csv target's first byte is its header flag
        source = os.tmpname()
        write_file(source, (slurp(path) or ""):sub(2))
      end
      local ok, err = pcall(fn, source)
      if strip then os.remove(source) end
      if not ok then
        assert.truthy(tostring(err):find(prefix, 1, true), path .. ": " .. tostring(err))
      end
    end
  end

  it("loads or cleanly refuses every .npy input", function() replay("npy", gl.load, "load: ") end)
  it("loads or cleanly refuses every .npz input", function() replay("npz", gl.load_state, "load_state: ") end)
  it("reads or cleanly refuses every CSV input", function()
    replay("csv", function(p) return gl.data.csv(p, { header = false }) end, "data.csv: ", true)
  end)
  it("reads or cleanly refuses every monitor CSV", function()
    replay("monitor_csv", gl.monitor_from_csv, "monitor_from_csv: ")
  end)
end)

describe("data.csv (engine/csv.c)", function()
  local dir
  setup(function() dir = temp_dir() end)
  teardown(function() os.execute("rm -rf " .. quote(dir)) end)

  it("reads separators, blanks, CRLF, a BOM, hex and special values", function()
    write_file(dir .. "/a.csv", "\xef\xbb\xbfa,b,c\r\n1, 2 ,3\r\n\r\n  \t\n4;5e1;0x10\r\nnan,inf,-inf\n")
    local t = gl.data.csv(dir .. "/a.csv")
    assert.same({ 3, 3 }, t:shape())
    assert.same({ 1, 2, 3 }, t:select(1, 1):totable())
    assert.same({ 4, 50, 16 }, t:select(1, 2):totable())
    local last = t:select(1, 3):totable()
    assert.is_true(last[1] ~= last[1] and last[2] == math.huge and last[3] == -math.huge)
    assert.error_matches(function() gl.data.csv(dir .. "/a.csv", { header = false }) end,
                         "line 1: 'a' is not a number")
  end)

  it("gives (0, 0) for a file with only a header, and names line and cell in errors", function()
    write_file(dir .. "/h.csv", "x,y\n")
    assert.same({ 0, 0 }, gl.data.csv(dir .. "/h.csv"):shape())
    write_file(dir .. "/e.csv", "1,2\n3,,4\n")
    assert.error_matches(function() gl.data.csv(dir .. "/e.csv", { header = false }) end,
                         "data.csv: ", "e.csv", "line 2: '' is not a number")
    write_file(dir .. "/q.csv", '1,"2"\n')
    assert.error_matches(function() gl.data.csv(dir .. "/q.csv", { header = false }) end,
                         "line 1: '\"2\"' is not a number")
  end)
end)
