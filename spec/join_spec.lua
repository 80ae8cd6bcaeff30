-- spec/join_spec.lua — engine/join.c: cat and stack.
local gl = require "gradlab"

describe("cat", function()
  it("concatenates along a dimension (default 1)", function()
    local a, b = gl.tensor{{1, 2}}, gl.tensor{{3, 4}, {5, 6}}
    assert.tensor_near(gl.cat{a, b}, {{1, 2}, {3, 4}, {5, 6}})
    assert.tensor_near(gl.cat({b, b:t()}, 2), {{3, 4, 3, 5}, {5, 6, 4, 6}})
    assert.tensor_near(gl.cat({gl.ones{2}, gl.zeros{0}, gl.zeros{1}}, -1), {1, 1, 0})
  end)

  it("refuses mismatched or empty lists", function()
    assert.error_matches(function() gl.cat{gl.ones{2, 2}, gl.ones{2, 3}} end, "cat", "{2, 3}", "{2, 2}")
    assert.error_matches(function() gl.cat{} end, "bad argument #1 to 'cat'", "empty")
    assert.error_matches(function() gl.cat{gl.ones{2}, 3} end, "cat", "item 2", "number")
    assert.error_matches(function() gl.cat({gl.ones{2}}, 2) end, "cat", "out of range")
    assert.error_matches(function() gl.cat{gl.tensor(1)} end, "cat", "0-d")
  end)
end)

describe("stack", function()
  it("stacks equal shapes along a new dimension", function()
    local a, b = gl.tensor{1, 2}, gl.tensor{3, 4}
    assert.tensor_near(gl.stack{a, b}, {{1, 2}, {3, 4}})
    assert.tensor_near(gl.stack({a, b}, 2), {{1, 3}, {2, 4}})
    assert.tensor_near(gl.stack{gl.tensor(1), gl.tensor(2)}, {1, 2})
  end)

  it("refuses unequal shapes", function()
    assert.error_matches(function() gl.stack{gl.ones{2}, gl.ones{3}} end, "stack", "{3}", "{2}")
    assert.error_matches(function() gl.stack({gl.ones{2}}, 3) end, "stack", "out of range")
  end)
end)
