-- spec/ops_reduce_spec.lua — engine/ops_reduce.c: sum, mean, max, min, argmax, norm.
local gl = require "gradlab"
local helper = require "helper"

describe("reductions", function()
  local t = gl.tensor{{1, 5, 3}, {4, 2, 6}}

  it("over all elements return 0-d tensors", function()
    assert.equal(0, t:sum():dim())
    assert.equal(21, t:sum():item())
    assert.equal(3.5, t:mean():item())
    assert.equal(6, t:max():item())
    assert.equal(1, t:min():item())
    assert.near(math.sqrt(91), t:norm():item(), 1e-5)
    assert.equal(0, gl.zeros{0}:sum():item())
  end)

  it("over a dimension, with keepdim", function()
    assert.tensor_near(t:sum(1), {5, 7, 9})
    assert.tensor_near(t:sum(2), {9, 12})
    assert.tensor_near(t:sum(-1), {9, 12})
    assert.tensor_near(t:sum(2, true), {{9}, {12}})
    assert.tensor_near(t:mean(1), {2.5, 3.5, 4.5})
    local values, indices = t:max(2)
    assert.tensor_near(values, {5, 6})
    assert.tensor_near(indices, {2, 3})
    local low, where = t:min(1, true)
    assert.tensor_near(low, {{1, 2, 3}})
    assert.tensor_near(where, {{1, 2, 1}})
  end)

  it("argmax and argmin give 1-based indices", function()
    assert.tensor_near(t:argmax(2), {2, 3})
    assert.tensor_near(t:argmin(1), {1, 2, 1})
    assert.equal(6, t:argmax():item())   -- flat index over all elements
    assert.equal(1, t:argmin():item())
  end)

  it("reduce strided views", function()
    local v = gl.arange(0, 12):view{3, 4}:t()
    assert.tensor_near(v:sum(1), {6, 22, 38})
    assert.tensor_near(v:sum(2), {12, 15, 18, 21})
  end)

  it("propagate NaN through max and sum", function()
    local x = gl.tensor{1, 0 / 0, 3}
    assert.is_true(x:max():item() ~= x:max():item())
    assert.is_true(x:sum():item() ~= x:sum():item())
  end)

  it("refuse bad dimensions and empty max", function()
    assert.error_matches(function() t:sum(3) end, "sum", "out of range", "{2, 3}")
    assert.error_matches(function() t:sum(0) end, "1-based")
    assert.error_matches(function() gl.zeros{0}:max() end, "max", "empty")
    assert.error_matches(function() gl.zeros{2, 0}:max(2) end, "max", "size 0")
  end)

  it("agree with NumPy", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    gl.manual_seed(2)
    local x = gl.randn{4, 5, 6}
    local r = helper.numpy([[result = [x.sum(), x.sum(axis=0), x.mean(axis=1), x.max(axis=2),
      x.min(axis=0), x.argmax(axis=1) + 1, np.linalg.norm(x), x.sum(axis=2, keepdims=True)] ]], {x = x})
    assert.near(r[1], x:sum():item(), 1e-4)
    assert.tensor_near(x:sum(1), r[2], 1e-5)
    assert.tensor_near(x:mean(2), r[3], 1e-5)
    assert.tensor_near(x:max(3), r[4], 0)
    assert.tensor_near(x:min(1), r[5], 0)
    assert.tensor_near(x:argmax(2), r[6], 0)
    assert.near(r[7], x:norm():item(), 1e-4)
    assert.tensor_near(x:sum(3, true), r[8], 1e-5)
  end)
end)
