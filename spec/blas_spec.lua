-- spec/blas_spec.lua — engine/blas.c: which OpenBLAS kernels run the products.
--
-- Child processes (the gradlab program) see the kernel choice made at load time
-- under a given environment; their products must agree with each other.
local gl = require "gradlab"

local PROGRAM = os.getenv("GRADLAB_PROGRAM") or "build/gradlab"
if PROGRAM:sub(1, 1) ~= "/" then PROGRAM = (os.getenv("PWD") or ".") .. "/" .. PROGRAM end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs a Lua chunk in `gradlab -e` with the given environment assignments
-- (OPENBLAS_CORETYPE and GRADLAB_KEEP_BLAS_KERNELS are cleared first).
local function child(env, code)
  local cmd = "env -u OPENBLAS_CORETYPE -u GRADLAB_KEEP_BLAS_KERNELS " .. env .. " timeout 30 "
    .. quote(PROGRAM) .. " -e " .. quote(code) .. " 2>&1"
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  assert(ok, "child failed: " .. out)
  return out
end

local REPORT = [[local b = gl.blas(); io.write(b.core, " ", b.chosen_by, " ", tostring(os.getenv("OPENBLAS_CORETYPE")))]]

describe("gl.blas", function()
  it("names the kernels in use, who chose them and the thread count", function()
    local b = gl.blas()
    assert.is_string(b.core)
    assert.is_true(#b.core > 0)
    assert.is_truthy(({ openblas = true, environment = true, gradlab = true })[b.chosen_by])
    assert.equal(gl.get_num_threads(), b.threads)
  end)

  it("leaves an explicit OPENBLAS_CORETYPE alone", function()
    local core, by = child("OPENBLAS_CORETYPE=Haswell", REPORT):match("^(%S+) (%S+)")
    assert.equal("Haswell", core)
    assert.equal("environment", by)
  end)

  it("keeps OpenBLAS's own choice when GRADLAB_KEEP_BLAS_KERNELS is set", function()
    local by = child("GRADLAB_KEEP_BLAS_KERNELS=1", REPORT):match("^%S+ (%S+)")
    assert.equal("openblas", by)
  end)

  it("never replaces a specific core with a generic one, and leaks nothing into the environment", function()
    local core, by, env = child("", REPORT):match("^(%S+) (%S+) (%S+)")
    local generic = { Prescott = true, Core2 = true, Nehalem = true, Penryn = true, Dunnington = true }
    if by == "gradlab" then assert.is_nil(generic[core]) end
    assert.equal("nil", env)   -- the variable used to ask OpenBLAS is removed again
    -- ... and programs started from gradlab do not inherit it.
    local inherited = child("", [[local p = io.popen("printenv OPENBLAS_CORETYPE || echo unset"); io.write(p:read("a")); p:close()]])
    assert.equal("unset", inherited:match("%S+"))
  end)

  it("gives the same products whichever kernels were chosen", function()
    local code = [[
      gl.manual_seed(5)
      local a, b = gl.randn{67, 129}, gl.randn{129, 33}
      local c = a:matmul(b)
      local m = gl.nn.Linear(129, 33)
      local y = m(a):sum()
      y:backward()
      io.write(("%.6f %.6f %.6f"):format(c:sum():item(), (c * c):sum():item(), m.weight.grad:abs():sum():item()))]]
    local chosen = child("", code)
    local kept = child("GRADLAB_KEEP_BLAS_KERNELS=1", code)
    local x = {}
    for v in chosen:gmatch("%S+") do x[#x + 1] = tonumber(v) end
    local i = 0
    for v in kept:gmatch("%S+") do
      i = i + 1
      assert.near(tonumber(v), x[i], 1e-4 * (1 + math.abs(x[i])))
    end
    assert.equal(3, i)
  end)
end)
