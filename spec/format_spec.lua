-- spec/format_spec.lua — engine/format.c: how tensors print.
local gl = require "gradlab"

describe("tostring of tensors", function()
  it("uses one number style for the whole tensor", function()
    assert.equal("tensor({1., 2.}, shape={2})", tostring(gl.tensor{1, 2}))
    assert.equal("tensor({ 0.5000, -1.2500}, shape={2})", tostring(gl.tensor{0.5, -1.25}))
    assert.equal("tensor({1.0000e-05, 1.0000e+00}, shape={2})", tostring(gl.tensor{1e-5, 1}))
    assert.equal("tensor({1.0000e+09}, shape={1})", tostring(gl.tensor{1e9}))
  end)

  it("prints nan and inf", function()
    assert.equal("tensor({ nan,  inf, -inf,   1.}, shape={4})",
                 tostring(gl.tensor{0 / 0, math.huge, -math.huge, 1}))
  end)

  it("prints empty and 0-d tensors", function()
    assert.equal("tensor({}, shape={0})", tostring(gl.zeros{0}))
    assert.equal("tensor({}, shape={2, 0})", tostring(gl.zeros{2, 0}))
    assert.equal("tensor(-3.)", tostring(gl.tensor(-3)))
  end)

  it("separates blocks of 3-d tensors with a blank line", function()
    local s = tostring(gl.arange(0, 8):view{2, 2, 2})
    assert.equal("tensor({{{0., 1.},\n         {2., 3.}},\n\n        {{4., 5.},\n         {6., 7.}}}, shape={2, 2, 2})", s)
  end)

  it("wraps long rows at 80 columns", function()
    local s = tostring(gl.arange(0, 40) / 7)
    for line in s:gmatch("[^\n]+") do assert.is_true(#line <= 82, line) end
    assert.truthy(s:find("\n", 1, true))
  end)

  it("elides the middle of large tensors in every dimension", function()
    local s = tostring(gl.arange(0, 100 * 100):view{100, 100})
    assert.truthy(s:find("{   0.,    1.,    2., ...,   97.,   98.,   99.}", 1, true))
    assert.truthy(s:find("...,\n", 1, true))
    assert.truthy(s:find("9999.", 1, true))
    local lines = 0
    for _ in s:gmatch("\n") do lines = lines + 1 end
    assert.equal(6, lines)
  end)

  it("prints views in logical order", function()
    assert.equal("tensor({{1., 3.},\n        {2., 4.}}, shape={2, 2})", tostring(gl.tensor{{1, 2}, {3, 4}}:t()))
  end)
end)
