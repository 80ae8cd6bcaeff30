-- spec/linear_spec.lua — engine/linear.c (fused Linear) and engine/dropout.c.
local gl = require "gradlab"

describe("linear", function()
  it("computes x W^T + b for 1-d, 2-d and 3-d inputs", function()
    local w = gl.tensor{{1, 2}, {3, 4}, {5, 6}}
    local b = gl.tensor{0.5, -1, 2}
    assert.tensor_near(gl.linear(gl.tensor{{1, 1}}, w, b), {{3.5, 6, 13}})
    assert.tensor_near(gl.linear(gl.tensor{1, 0}, w), {1, 3, 5})
    local x = gl.randn{2, 4, 2}
    local y = gl.linear(x, w, b)
    assert.same({2, 4, 3}, y:shape())
    assert.tensor_near(y:select(1, 2), x:select(1, 2):matmul(w:t()) + b, 1e-5)
  end)

  it("passes gradcheck with and without bias, on strided inputs", function()
    gl.manual_seed(5)
    local x, w, b = gl.randn{6, 4}:requires_grad(), gl.randn{3, 4}:requires_grad(), gl.randn{3}:requires_grad()
    assert.is_true((gl.gradcheck(function(a, c, d) return gl.linear(a, c, d) end, {x, w, b})))
    assert.is_true((gl.gradcheck(function(a, c) return gl.linear(a, c) end, {x, w})))
    local wide = gl.randn{4, 6}:requires_grad()
    assert.is_true((gl.gradcheck(function(a, c) return gl.linear(a:t(), c:t():t()) end, {wide, w})))
    assert.is_true((gl.gradcheck(function(a, c, d) return gl.linear(a, c, d) end, {gl.randn{2, 3, 4}:requires_grad(), w, b})))
  end)

  it("names both shapes when the features do not match", function()
    assert.error_matches(function() gl.linear(gl.randn{32, 300}, gl.randn{10, 784}) end,
                         "linear: input has 300 features, weight expects 784", "{32, 300}")
    assert.error_matches(function() gl.linear(gl.randn{2, 3}, gl.randn{4, 3}, gl.randn{5}) end, "linear", "bias", "{5}")
    assert.error_matches(function() gl.linear(gl.randn{2, 3}, gl.randn{3}) end, "linear", "2-d")
  end)
end)

describe("dropout", function()
  it("zeroes about p of the elements and scales the rest", function()
    gl.manual_seed(1)
    local y = gl.dropout(gl.ones{100000}, 0.3)
    local kept = y:gt(0):mean():item()
    assert.is_true(math.abs(kept - 0.7) < 0.01)
    assert.near(1 / 0.7, y:max():item(), 1e-5)
    assert.near(1, y:mean():item(), 0.02)
  end)

  it("is the identity in evaluation and at p = 0, and drops everything at p = 1", function()
    local x = gl.randn{10}
    assert.tensor_near(gl.dropout(x, 0.5, false), x)
    assert.tensor_near(gl.dropout(x, 0), x)
    assert.tensor_near(gl.dropout(x, 1), gl.zeros{10})
  end)

  it("sends the gradient through the same mask", function()
    gl.manual_seed(2)
    local x = gl.ones{1000}:requires_grad()
    local y = gl.dropout(x, 0.5)
    y:sum():backward()
    assert.tensor_near(x.grad, y)
  end)

  it("refuses p outside [0, 1]", function()
    assert.error_matches(function() gl.dropout(gl.ones{2}, 1.5) end, "dropout", "[0, 1]")
    assert.error_matches(function() gl.nn.Dropout(-0.1) end, "Dropout", "[0, 1]")
  end)
end)
