-- spec/autograd_spec.lua — engine/autograd.c and every op's backward: gradcheck for
-- each differentiable tensor op, and the semantics of backward.
local gl = require "gradlab"

local function check(fn, inputs, options)
  local ok, err = gl.gradcheck(fn, inputs, options)
  assert.is_true(ok, "gradcheck max error " .. tostring(err))
end

-- Fresh leaves away from kinks: values in [lo, hi] with both signs unless told.
local function leaf(shape, lo, hi)
  lo, hi = lo or -2, hi or 2
  return (gl.rand(shape) * (hi - lo) + lo):requires_grad()
end

describe("gradcheck of elementwise ops", function()
  before_each(function() gl.manual_seed(7) end)

  it("binary ops with broadcasting", function()
    local a, b = leaf{3, 4}, leaf{4}
    check(function(x, y) return x + y end, {a, b})
    check(function(x, y) return x - y end, {a, b})
    check(function(x, y) return x * y end, {a, b})
    check(function(x, y) return x / y end, {a, leaf({3, 1}, 0.5, 2)})
    check(function(x, y) return x:pow(y) end, {leaf({2, 3}, 0.5, 2), leaf({3}, -1, 2)})
    check(function(x, y) return gl.maximum(x, y) end, {a, b})
    check(function(x, y) return gl.minimum(x, y) end, {a, b})
  end)

  it("operations with numbers on either side", function()
    local a = leaf({2, 3}, 0.5, 2)
    check(function(x) return x + 3 end, {a})
    check(function(x) return 3 - x end, {a})
    check(function(x) return x * -2 end, {a})
    check(function(x) return 2 / x end, {a})
    check(function(x) return x ^ 3 end, {a})
    check(function(x) return 2 ^ x end, {a})
    check(function(x) return -x end, {a})
  end)

  it("unary ops away from their kinks", function()
    local pos = leaf({2, 3}, 0.5, 2)
    check(function(x) return x:exp() end, {leaf{2, 3}})
    check(function(x) return x:log() end, {pos})
    check(function(x) return x:sqrt() end, {pos})
    check(function(x) return (x - 1.25):abs() end, {gl.tensor{{0.5, 0.7}, {1.9, 2.0}}:requires_grad()})
    check(function(x) return x:clamp(-1, 1) end, {gl.tensor{-1.5, -0.5, 0.3, 1.7}:requires_grad()})
    check(function(x) return x:sign() * x end, {gl.tensor{-1.5, 0.5}:requires_grad()})
  end)

  it("where", function()
    local a, b = leaf{2, 3}, leaf{3}
    local mask = gl.tensor{{1, 0, 1}, {0, 0, 1}}
    check(function(x, y) return gl.where(mask, x, y) end, {a, b})
  end)

  it("half and bfloat16 round the gradient through their format too", function()
    local a = leaf{4}
    local y = (a:half() * 3):sum()
    y:backward()
    assert.tensor_near(a.grad, {3, 3, 3, 3})
    local b = leaf{2}
    ;(b:half() * 1e-8):sum():backward()
    assert.tensor_near(b.grad, {0, 0}, 0)          -- 1e-8 underflows in half
    local c = leaf{2}
    ;(c:bfloat16() * 1e-8):sum():backward()
    assert.is_true(c.grad:get(1) > 0)               -- bfloat16 keeps float32's range
  end)
end)

describe("gradcheck of reductions", function()
  before_each(function() gl.manual_seed(8) end)

  it("sum and mean, over all and over a dimension", function()
    local a = leaf{3, 4, 2}
    check(function(x) return x:sum() end, {a})
    check(function(x) return x:mean() end, {a})
    check(function(x) return x:sum(2) end, {a})
    check(function(x) return x:mean(-1, true) end, {a})
    check(function(x) return x:sum(1, true) * x end, {a})
  end)

  it("max and min send the gradient to the winners", function()
    local a = leaf{3, 5}
    check(function(x) return x:max() end, {a})
    check(function(x) return x:min(2) end, {a})
    check(function(x) return (x:max(1, true)) end, {a})
    local t = gl.tensor{1, 3, 3}:requires_grad()
    t:max():backward()
    assert.tensor_near(t.grad, {0, 0.5, 0.5})   -- ties share, as in PyTorch
  end)

  it("norm", function()
    check(function(x) return x:norm() end, {leaf{4, 3}})
  end)
end)

describe("gradcheck of matmul", function()
  before_each(function() gl.manual_seed(9) end)

  it("2-d, batched and broadcast operands", function()
    check(function(x, y) return x:matmul(y) end, {leaf{3, 4}, leaf{4, 2}})
    check(function(x, y) return x:matmul(y) end, {leaf{2, 3, 4}, leaf{2, 4, 5}})
    check(function(x, y) return x:matmul(y) end, {leaf{2, 3, 4}, leaf{4, 5}})
    check(function(x, y) return x:matmul(y) end, {leaf{3, 4}, leaf{2, 4, 5}})
    check(function(x, y) return x:matmul(y) end, {leaf{1, 3, 4}, leaf{2, 4, 5}})
  end)

  it("vectors and transposed views", function()
    check(function(x, y) return x:matmul(y) end, {leaf{3, 4}, leaf{4}})
    check(function(x, y) return x:matmul(y) end, {leaf{3}, leaf{3, 2}})
    check(function(x, y) return x:matmul(y) end, {leaf{3}, leaf{3}})
    check(function(x, y) return x:t():matmul(y:t()) end, {leaf{4, 3}, leaf{2, 4}})
  end)
end)

describe("gradcheck of views and joins", function()
  before_each(function() gl.manual_seed(10) end)

  it("view, reshape, transpose, permute", function()
    local a = leaf{2, 3, 4}
    check(function(x) return x:view{6, 4} * 2 end, {a})
    check(function(x) return x:transpose(1, 3):reshape{4, 6} end, {a})
    check(function(x) return x:permute{3, 1, 2} end, {a})
    check(function(x) return x:transpose(2, 3):contiguous() end, {a})
    check(function(x) return x:clone() * x end, {a})
  end)

  it("narrow, select, squeeze, unsqueeze, expand", function()
    local a = leaf{3, 4}
    check(function(x) return x:narrow(2, 2, 2) end, {a})
    check(function(x) return x:select(1, 3) end, {a})
    check(function(x) return x:select(2, -1) * x:select(2, 1) end, {a})
    check(function(x) return x:unsqueeze(2):squeeze() end, {a})
    check(function(x) return x:view{3, 1, 4}:expand{3, 5, 4} end, {a})
  end)

  it("cat and stack", function()
    local a, b = leaf{2, 3}, leaf{1, 3}
    check(function(x, y) return gl.cat{x, y, x} end, {a, b})
    check(function(x, y) return gl.cat({x:t(), x:t()}, 2) end, {a})
    check(function(x, y) return gl.stack({x, x * 2}, 2) end, {a})
  end)
end)

describe("backward", function()
  it("accumulates into .grad across uses and calls", function()
    local w = gl.tensor{1, 2, 3}:requires_grad()
    local y = (w * w + w):sum()
    y:backward()
    assert.tensor_near(w.grad, {3, 5, 7})
    ;(w * 2):sum():backward()
    assert.tensor_near(w.grad, {5, 7, 9})
    w:zero_grad()
    assert.is_nil(w.grad)
  end)

  it("takes an explicit gradient for non-scalar outputs", function()
    local w = gl.tensor{1, 2}:requires_grad()
    local y = w * 3
    y:backward(gl.tensor{1, 10})
    assert.tensor_near(w.grad, {3, 30})
    local z = gl.param(gl.ones{2}) * 2
    assert.error_matches(function() z:backward() end, "backward", "1-element", "{2}")
    assert.error_matches(function() z:backward(gl.ones{3}) end, "backward", "{3}", "{2}")
  end)

  it("refuses a second backward through a freed graph unless retained", function()
    local w = gl.param(gl.tensor{1, 2})
    local y = (w * w):sum()
    y:backward({retain_graph = true})
    y:backward()
    assert.tensor_near(w.grad, {4, 8})
    assert.error_matches(function() y:backward() end, "backward", "freed", "retain_graph")
  end)

  it("keeps gradients of non-leaves asked with retain_grad", function()
    local w = gl.param(gl.tensor{1, 2})
    local h = (w * 3):retain_grad()
    local y = (h * h):sum()
    y:backward()
    assert.tensor_near(h.grad, {6, 12})
    assert.tensor_near(w.grad, {18, 36})
  end)

  it("stops at detach and records nothing under no_grad", function()
    local w = gl.param(gl.tensor{1, 2})
    local d = (w * 2):detach()
    assert.is_false(d:tracks_grad())
    local y = gl.no_grad(function() return w * 2 end)
    assert.is_false(y:tracks_grad())
    assert.is_true(gl.is_grad_enabled())
    assert.error_matches(function() gl.no_grad(function() error("boom") end) end, "boom")
    assert.is_true(gl.is_grad_enabled())   -- restored after an error
    assert.error_matches(function() d:backward() end, "backward", "does not require grad")
  end)

  it("marks only leaves", function()
    local w = gl.param(gl.ones{2})
    local y = w * 2
    assert.error_matches(function() y:requires_grad(true) end, "requires_grad", "leaf", "detach")
    local p = gl.param(y)        -- gl.param of a non-leaf detaches it
    assert.is_true(p:is_leaf() and p:tracks_grad())
    assert.equal("mul", y:grad_fn())
    assert.is_nil(w:grad_fn())
  end)

  it("detects a saved tensor modified in place", function()
    local w = gl.param(gl.tensor{1, 2})
    local h = w * 1
    local y = (h * h):sum()
    h:add_(1)
    assert.error_matches(function() y:backward() end, "backward", "modified in place")
  end)

  it("works through an RNN unrolled in a Lua loop (BPTT)", function()
    gl.manual_seed(3)
    local W = gl.param(gl.randn{4, 4} * 0.3)
    local x = gl.randn{5, 4}
    local function run(w)
      local h = gl.zeros{4}
      for t = 1, 5 do h = (w:matmul(h) + x:select(1, t)):exp():log() * 0.9 end
      return h
    end
    check(run, {W})
  end)

  it("sets .grad of a leaf through t.grad = ... and checks its shape", function()
    local w = gl.param(gl.ones{2})
    w.grad = gl.tensor{1, 1}
    ;(w * 2):sum():backward()
    assert.tensor_near(w.grad, {3, 3})
    assert.error_matches(function() w.grad = gl.ones{3} end, "grad", "{3}", "{2}")
    assert.error_matches(function() w.foo = 1 end, "cannot set field 'foo'")
  end)
end)

describe("anomaly mode", function()
  after_each(function() gl.detect_anomaly(false) end)

  it("names the first op whose forward yields NaN or Inf", function()
    gl.detect_anomaly(true)
    local w = gl.param(gl.tensor{1, -1})
    assert.error_matches(function() return w:log() end, "anomaly", "log", "forward")
    assert.error_matches(function() return gl.tensor{0}:log() end, "anomaly", "log")
    local fine = (w * 2):sum()   -- the session goes on
    fine:backward()
    assert.tensor_near(w.grad, {2, 2})
  end)

  it("names the op whose backward yields NaN or Inf", function()
    local w = gl.param(gl.tensor{0, 1})
    local y = w:sqrt():sum()   -- finite forward, infinite gradient at 0
    gl.detect_anomaly(true)
    assert.error_matches(function() y:backward() end, "anomaly", "backward of sqrt")
  end)
end)

describe("graph memory", function()
  it("is released when tensors are collected: a long loop holds constant memory", function()
    gl.manual_seed(1)
    local w = gl.param(gl.randn{64, 64} * 0.1)
    local x = gl.randn{32, 64}
    local function step()
      local y = x:matmul(w):exp():mean()
      y:backward()
      w.grad = nil
    end
    for _ = 1, 200 do step() end
    collectgarbage()
    local base = gl.memory()
    for _ = 1, 3000 do step() end
    collectgarbage()
    assert.is_true(gl.memory() <= base + 64 * 1024, ("memory grew from %d to %d bytes"):format(base, gl.memory()))
  end)

  it("frees a deep graph without recursion", function()
    local w = gl.param(gl.ones{1})
    local h = w
    for _ = 1, 100000 do h = h + 0 end
    h = nil
    collectgarbage()
    collectgarbage()
    assert.is_true(true)
  end)
end)
