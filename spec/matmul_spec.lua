-- spec/matmul_spec.lua — engine/matmul.c: 2-d, batched, vectors, transposed views.
local gl = require "gradlab"
local helper = require "helper"

-- A naive reference product on nested tables, the oracle for BLAS.
local function reference(a, b)
  local out = {}
  for i = 1, #a do
    out[i] = {}
    for j = 1, #b[1] do
      local s = 0
      for k = 1, #b do s = s + a[i][k] * b[k][j] end
      out[i][j] = s
    end
  end
  return out
end

describe("matmul", function()
  it("multiplies 2-d matrices", function()
    local a, b = gl.tensor{{1, 2, 3}, {4, 5, 6}}, gl.tensor{{1, 0}, {0, 1}, {1, 1}}
    assert.tensor_near(a:matmul(b), {{4, 5}, {10, 11}})
    gl.manual_seed(1)
    local x, y = gl.randn{7, 5}, gl.randn{5, 3}
    assert.tensor_near(x:matmul(y), reference(x:totable(), y:totable()), 1e-5)
  end)

  it("reads transposed and sliced views without copying them first", function()
    gl.manual_seed(2)
    local x, y = gl.randn{5, 7}, gl.randn{3, 5}
    local expected = reference(x:t():totable(), y:t():totable())
    assert.tensor_near(x:t():matmul(y:t()), expected, 1e-5)
    local wide = gl.randn{6, 10}
    local part = wide:narrow(2, 3, 5)       -- rows with a stride of 10
    assert.tensor_near(part:matmul(x), reference(part:totable(), x:totable()), 1e-5)
    local every_other = gl.randn{5, 8}:narrow(2, 1, 8):view{5, 4, 2}:select(3, 1)   -- column stride 2
    assert.tensor_near(x:t():matmul(every_other), reference(x:t():totable(), every_other:totable()), 1e-5)
  end)

  it("batches over a leading dimension and broadcasts a 2-d operand", function()
    gl.manual_seed(3)
    local a, b = gl.randn{4, 3, 5}, gl.randn{4, 5, 2}
    local c = a:matmul(b)
    assert.same({4, 3, 2}, c:shape())
    for i = 1, 4 do
      assert.tensor_near(c:select(1, i), reference(a:select(1, i):totable(), b:select(1, i):totable()), 1e-5)
    end
    local w = gl.randn{5, 6}
    local d = a:matmul(w)
    for i = 1, 4 do
      assert.tensor_near(d:select(1, i), reference(a:select(1, i):totable(), w:totable()), 1e-5)
    end
    local e = w:t():matmul(b)
    assert.same({4, 6, 2}, e:shape())
    assert.tensor_near(e:select(1, 2), reference(w:t():totable(), b:select(1, 2):totable()), 1e-5)
    assert.same({5, 2}, a:transpose(2, 3):matmul(gl.randn{1, 3, 2}):select(1, 4):shape())
  end)

  it("treats 1-d operands as vectors", function()
    local m = gl.tensor{{1, 2}, {3, 4}}
    local v = gl.tensor{1, 1}
    assert.tensor_near(m:matmul(v), {3, 7})
    assert.tensor_near(v:matmul(m), {4, 6})
    assert.equal(2, v:matmul(v):item())
  end)

  it("handles empty inner and outer dimensions", function()
    assert.tensor_near(gl.ones{2, 0}:matmul(gl.ones{0, 3}), gl.zeros{2, 3})
    assert.same({0, 3}, gl.ones{0, 4}:matmul(gl.ones{4, 3}):shape())
  end)

  it("names both shapes on a mismatch", function()
    assert.error_matches(function() gl.ones{2, 3}:matmul(gl.ones{4, 5}) end, "matmul", "{2, 3}", "{4, 5}")
    assert.error_matches(function() gl.ones{2, 3, 4}:matmul(gl.ones{3, 4, 5}) end, "matmul", "batch")
    assert.error_matches(function() gl.ones{1, 1, 1, 1}:matmul(gl.ones{1}) end, "matmul", "{1, 1, 1, 1}")
    assert.error_matches(function() gl.ones{2}:matmul(3) end, "bad argument #1 to 'matmul'", "tensor expected")
  end)

  it("agrees with NumPy", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    gl.manual_seed(4)
    local a, b, c = gl.randn{33, 17}, gl.randn{17, 9}, gl.randn{3, 9, 4}
    local r = helper.numpy("result = [a @ b, a.T @ a, (a @ b) @ c]", {a = a, b = b, c = c})
    assert.tensor_near(a:matmul(b), r[1], 1e-4)
    assert.tensor_near(a:t():matmul(a), r[2], 1e-4)
    assert.tensor_near(a:matmul(b):matmul(c), r[3], 1e-4)
  end)
end)
