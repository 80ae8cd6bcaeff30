-- spec/ops_elementwise_spec.lua — engine/ops_elementwise.c: operators, broadcasting,
-- unary math, where, in-place updates and half/bfloat16 rounding.
local gl = require "gradlab"
local helper = require "helper"

describe("binary operators", function()
  local a = gl.tensor{{1, 2}, {3, 4}}

  it("work between tensors and with numbers on either side", function()
    assert.tensor_near(a + a, {{2, 4}, {6, 8}})
    assert.tensor_near(a - 1, {{0, 1}, {2, 3}})
    assert.tensor_near(10 - a, {{9, 8}, {7, 6}})
    assert.tensor_near(a * 2, {{2, 4}, {6, 8}})
    assert.tensor_near(2 * a, {{2, 4}, {6, 8}})
    assert.tensor_near(a / 2, {{0.5, 1}, {1.5, 2}})
    assert.tensor_near(1 / a, {{1, 0.5}, {1 / 3, 0.25}})
    assert.tensor_near(a ^ 2, {{1, 4}, {9, 16}})
    assert.tensor_near(2 ^ a, {{2, 4}, {8, 16}})
    assert.tensor_near(-a, {{-1, -2}, {-3, -4}})
    assert.tensor_near(a:pow(0.5), {{1, math.sqrt(2)}, {math.sqrt(3), 2}})
  end)

  it("broadcast NumPy-style", function()
    local row, col = gl.tensor{10, 20}, gl.tensor{{1}, {2}, {3}}
    assert.tensor_near(a + row, {{11, 22}, {13, 24}})
    assert.tensor_near(col + row, {{11, 21}, {12, 22}, {13, 23}})
    assert.tensor_near(gl.ones{2, 1, 3} * gl.ones{4, 1}, gl.ones{2, 4, 3})
    assert.tensor_near(a + gl.tensor(1), {{2, 3}, {4, 5}})
    assert.same({0, 3}, (gl.zeros{0, 1} + gl.zeros{3}):shape())
  end)

  it("work on strided views", function()
    local t = gl.arange(0, 6):view{2, 3}
    assert.tensor_near(t:t() + t:t(), {{0, 6}, {2, 8}, {4, 10}})
    assert.tensor_near(t:narrow(2, 2, 2) * t:select(2, 1):view{2, 1}, {{0, 0}, {12, 15}})
  end)

  it("compare elementwise into 0/1 masks", function()
    local x = gl.tensor{1, 2, 3}
    assert.tensor_near(x:gt(2), {0, 0, 1})
    assert.tensor_near(x:ge(2), {0, 1, 1})
    assert.tensor_near(x:lt(2), {1, 0, 0})
    assert.tensor_near(x:le(2), {1, 1, 0})
    assert.tensor_near(x:eq(gl.tensor{1, 0, 3}), {1, 0, 1})
    assert.tensor_near(x:ne(2), {1, 0, 1})
    assert.tensor_near(gl.maximum(x, 2), {2, 2, 3})
    assert.tensor_near(x:minimum(gl.tensor{0, 5, 3}), {0, 2, 3})
  end)

  it("name both shapes when they do not broadcast", function()
    assert.error_matches(function() return a + gl.ones{3} end, "add", "{2, 2}", "{3}")
    assert.error_matches(function() return gl.ones{2, 3} * gl.ones{3, 2} end, "mul", "{2, 3}", "{3, 2}")
    assert.error_matches(function() return a / "x" end, "div")
  end)
end)

describe("unary math", function()
  it("exp, log, sqrt, abs, sign, clamp", function()
    local x = gl.tensor{-2, -0.5, 0, 1, 4}
    assert.tensor_near(x:exp(), {math.exp(-2), math.exp(-0.5), 1, math.exp(1), math.exp(4)})
    assert.tensor_near(x:abs(), {2, 0.5, 0, 1, 4})
    assert.tensor_near(x:sign(), {-1, -1, 0, 1, 1})
    assert.tensor_near(x:clamp(-1, 1), {-1, -0.5, 0, 1, 1})
    assert.tensor_near(x:clamp(0), {0, 0, 0, 1, 4})
    assert.tensor_near(gl.tensor{1, 4, 9}:sqrt(), {1, 2, 3})
    assert.tensor_near(gl.tensor{1, math.exp(2)}:log(), {0, 2})
    local l = gl.tensor{0, -1}:log():totable()
    assert.equal(-math.huge, l[1])
    assert.is_true(l[2] ~= l[2])
    assert.tensor_near(gl.exp(gl.tensor{0}), {1})
    assert.error_matches(function() x:clamp(1, -1) end, "clamp", "low")
  end)

  it("apply to non-contiguous views", function()
    local t = gl.arange(1, 7):view{2, 3}:t()
    assert.tensor_near(t:sqrt(), {{1, 2}, {math.sqrt(2), math.sqrt(5)}, {math.sqrt(3), math.sqrt(6)}})
  end)
end)

describe("where", function()
  it("selects with broadcasting and numbers", function()
    local x = gl.tensor{-1, 2, -3}
    assert.tensor_near(gl.where(x:gt(0), x, 0), {0, 2, 0})
    assert.tensor_near(gl.where(gl.tensor{{1}, {0}}, gl.ones{3}, gl.zeros{1}), {{1, 1, 1}, {0, 0, 0}})
    assert.error_matches(function() gl.where(gl.ones{2}, gl.ones{3}, 0) end, "where", "{3}")
    assert.error_matches(function() gl.where(gl.ones{2}, "a", 0) end, "bad argument #2 to 'where'")
  end)
end)

describe("in-place updates", function()
  it("fill, zero, copy, add_, mul_ write through views", function()
    local t = gl.zeros{2, 3}
    t:select(1, 2):fill(5)
    assert.tensor_near(t, {{0, 0, 0}, {5, 5, 5}})
    t:narrow(2, 1, 1):copy(gl.tensor{{7}, {8}})
    assert.tensor_near(t, {{7, 0, 0}, {8, 5, 5}})
    t:add_(gl.tensor{1, 1, 1}, 2)
    assert.tensor_near(t, {{9, 2, 2}, {10, 7, 7}})
    t:mul_(0.5)
    assert.tensor_near(t, {{4.5, 1, 1}, {5, 3.5, 3.5}})
    t:copy(3)
    assert.tensor_near(t, gl.full({2, 3}, 3))
    t:zero()
    assert.equal(0, t:abs():sum():item())
    assert.equal(t, t:add_(1))   -- returns itself for chaining
  end)

  it("read overlapping sources before writing", function()
    local t = gl.tensor{{1, 2}, {3, 4}}
    t:copy(t:t())
    assert.tensor_near(t, {{1, 3}, {2, 4}})
    local u = gl.tensor{1, 2, 3}
    u:add_(u)
    assert.tensor_near(u, {2, 4, 6})
  end)

  it("split big contiguous runs over the threads: the same bits for 1 and 2 threads", function()
    local threads = gl.get_num_threads()
    local function run(n)
      gl.set_num_threads(n)
      gl.manual_seed(3)
      local a, b = gl.randn{ 32, 16, 32, 32 }, gl.randn{ 32, 16, 32, 32 }
      local s, q, r = a + b, a * b, a / (b:abs() + 1)
      local acc = a:clone()
      acc:add_(b)
      local big = gl.randn{ 1 << 20 }
      big:narrow(1, 2, (1 << 20) - 1):add_(big:narrow(1, 1, (1 << 20) - 1))   -- shifted overlap
      gl.set_num_threads(threads)
      return { s, q, r, acc, big }
    end
    local one, two = run(1), run(2)
    for k = 1, #one do assert.tensor_near(two[k], one[k], 0) end
  end)

  it("refuse shapes that do not fit the destination", function()
    local t = gl.zeros{2, 3}
    assert.error_matches(function() t:copy(gl.ones{3, 2}) end, "copy", "{3, 2}", "{2, 3}")
    assert.error_matches(function() t:add_(gl.ones{2, 3, 1}) end, "add_")
    assert.error_matches(function() t:fill("x") end, "bad argument #1 to 'fill'")
  end)
end)

describe("reduced precision rounding", function()
  it("rounds through IEEE half with underflow and overflow", function()
    local h = gl.tensor{1e-8, 65504, 70000, -70000, 1 + 2^-11, 1 + 3 * 2^-11, 2^-24, 0.1}:half():totable()
    assert.equal(0, h[1])                      -- below half's smallest subnormal: flushes to 0
    assert.equal(65504, h[2])                  -- largest half
    assert.equal(math.huge, h[3])
    assert.equal(-math.huge, h[4])
    assert.equal(1, h[5])                      -- a tie rounds to even
    assert.equal(1 + 4 * 2^-11, h[6])
    assert.equal(2^-24, h[7])                  -- smallest subnormal survives
    assert.equal(0.0999755859375, h[8])
  end)

  it("rounds through bfloat16", function()
    local b = gl.tensor{1 + 2^-8, 1 + 3 * 2^-8, 1e-8, 3.4e38, 0.1}:bfloat16():totable()
    assert.equal(1, b[1])
    assert.equal(1 + 4 * 2^-8, b[2])
    assert.is_true(b[3] > 0 and math.abs(b[3] - 1e-8) / 1e-8 < 2^-8)  -- bfloat16 keeps float32's range
    assert.equal(math.huge, b[4])
    assert.equal(0.10009765625, b[5])
  end)

  it("matches NumPy's float16 on random values", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    gl.manual_seed(5)
    local x = gl.randn{200} * gl.tensor(10):pow(gl.randint(-9, 5, {200}))
    local expected = helper.numpy("result = x.astype(np.float16).astype(np.float32)", {x = x})
    assert.tensor_near(x:half(), expected, 0)
  end)
end)

describe("broadcasting against NumPy", function()
  it("agrees on random shapes", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    gl.manual_seed(11)
    local a, b = gl.randn{3, 1, 4}, gl.randn{2, 1}
    local c = gl.rand{4} + 0.5
    local r = helper.numpy("result = [a + b, a * b, a - c, a / c, np.maximum(a, b)]", {a = a, b = b, c = c})
    assert.tensor_near(a + b, r[1])
    assert.tensor_near(a * b, r[2])
    assert.tensor_near(a - c, r[3])
    assert.tensor_near(a / c, r[4])
    assert.tensor_near(gl.maximum(a, b), r[5])
  end)
end)
