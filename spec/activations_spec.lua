-- spec/activations_spec.lua — engine/activations.c: values, gradients (gradcheck away
-- from kinks), PReLU and softmax.
local gl = require "gradlab"
local helper = require "helper"

local function check(fn, inputs)
  local ok, err = gl.gradcheck(fn, inputs)
  assert.is_true(ok, "gradcheck max error " .. tostring(err))
end

-- Points kept 0.1 away from 0, where relu-like functions have a kink.
local function away_from_zero(shape)
  local t = gl.rand(shape) * 1.9 + 0.1
  return (t * gl.where(gl.rand(shape):gt(0.5), 1, -1)):requires_grad()
end

describe("activation values", function()
  local x = gl.tensor{-3, -0.5, 0, 0.5, 3}

  it("match their definitions", function()
    local function map(f) local out = {} for i, v in ipairs(x:totable()) do out[i] = f(v) end return out end
    assert.tensor_near(x:sigmoid(), map(function(v) return 1 / (1 + math.exp(-v)) end), 1e-6)
    assert.tensor_near(x:relu(), {0, 0, 0, 0.5, 3})
    assert.tensor_near(gl.leaky_relu(x, 0.1), {-0.3, -0.05, 0, 0.5, 3}, 1e-6)
    assert.tensor_near(gl.leaky_relu(x), {-0.03, -0.005, 0, 0.5, 3}, 1e-6)
    assert.tensor_near(gl.elu(x), map(function(v) return v > 0 and v or math.exp(v) - 1 end), 1e-6)
    assert.tensor_near(gl.elu(x, 2), map(function(v) return v > 0 and v or 2 * (math.exp(v) - 1) end), 1e-6)
    assert.tensor_near(gl.softplus(x), map(function(v) return math.log(1 + math.exp(v)) end), 1e-6)
    -- GELU(x) = x Φ(x); Φ(0.5) = 0.691462461274013, Φ(3) = 0.998650101968370
    assert.tensor_near(gl.gelu(x), {-3 * (1 - 0.998650101968370), -0.5 * (1 - 0.691462461274013), 0,
                                    0.5 * 0.691462461274013, 3 * 0.998650101968370}, 1e-6)
  end)

  it("compute tanh to float precision across its range, saturation included", function()
    local values = {}
    for i = 0, 2000 do values[#values + 1] = -10 + i * 0.01 end
    for e = -12, 1, 0.5 do values[#values + 1] = 10 ^ e; values[#values + 1] = -(10 ^ e) end
    local y = gl.tensor(values):tanh():totable()
    for i, v in ipairs(values) do
      -- tanh in double: a series near 0 (where exp(2v) - 1 cancels), else the exp form
      local exact
      if math.abs(v) < 1e-3 then exact = v - v ^ 3 / 3 + 2 * v ^ 5 / 15
      elseif math.abs(v) > 20 then exact = v > 0 and 1 or -1
      else exact = (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1) end
      -- float32 carries 2^-24 relative precision; allow 2 ulp.
      assert.is_true(math.abs(y[i] - exact) <= 2.5 * 2^-24 * math.max(math.abs(exact), 2^-126),
                     ("tanh(%.9g) = %.9g, want %.9g"):format(v, y[i], exact))
    end
    -- saturated gradients keep their size: the study of vanishing depends on it
    local x = gl.tensor{6}:requires_grad()
    x:tanh():backward()
    assert.near(1 - math.tanh(6) ^ 2, x.grad:item(), 2e-6)
  end)

  it("are stable at extreme inputs", function()
    local big = gl.tensor{-1000, 1000, 0 / 0}
    local s = big:sigmoid():totable()
    assert.same({0, 1}, {s[1], s[2]})
    assert.is_true(s[3] ~= s[3])
    assert.tensor_near(gl.tensor{-1000, 1000}:tanh(), {-1, 1})
    assert.tensor_near(gl.softplus(gl.tensor{-1000, 1000}), {0, 1000})
  end)
end)

describe("activation gradients", function()
  before_each(function() gl.manual_seed(4) end)

  it("pass gradcheck away from kinks", function()
    local x = away_from_zero{3, 5}
    check(function(t) return t:sigmoid() end, {x})
    check(function(t) return t:tanh() end, {x})
    check(function(t) return t:relu() end, {x})
    check(function(t) return gl.leaky_relu(t, 0.2) end, {x})
    check(function(t) return gl.elu(t, 1.5) end, {x})
    check(function(t) return t:gelu() end, {x})
    check(function(t) return gl.softplus(t) end, {x})
  end)

  it("PReLU learns its slope, shared or per channel", function()
    local x = away_from_zero{4, 3, 2}
    check(function(t, w) return gl.prelu(t, w) end, {x, gl.tensor{0.25}:requires_grad()})
    check(function(t, w) return gl.prelu(t, w) end, {x, gl.tensor{0.1, 0.2, 0.3}:requires_grad()})
    assert.tensor_near(gl.prelu(gl.tensor{{-1, 2}, {-2, -4}}, gl.tensor{0.5, 0.25}), {{-0.5, 2}, {-1, -1}})
    assert.error_matches(function() gl.prelu(x, gl.ones{2}) end, "prelu", "{2}", "{4, 3, 2}")
  end)

  it("softmax and log_softmax over any dimension", function()
    local x = gl.randn{3, 4}:requires_grad()
    check(function(t) return t:softmax(2) end, {x})
    check(function(t) return t:softmax(1) end, {x})
    check(function(t) return t:log_softmax(-1) end, {x})
    local s = gl.tensor{{1, 2, 3}, {1000, 1000, 1000}}:softmax(2)
    assert.tensor_near(s:sum(2), {1, 1})
    assert.tensor_near(s:select(1, 2), {1 / 3, 1 / 3, 1 / 3})
    assert.tensor_near(gl.tensor{{1, 2, 3}}:log_softmax(2):exp():sum(), 1)
    assert.error_matches(function() x:softmax(3) end, "softmax", "out of range", "{3, 4}")
  end)

  it("agree with NumPy on softmax", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    local x = gl.randn{5, 7} * 4
    local r = helper.numpy("e = np.exp(x - x.max(axis=1, keepdims=True)); result = e / e.sum(axis=1, keepdims=True)", {x = x})
    assert.tensor_near(x:softmax(2), r, 1e-5)
  end)

  it("reject bad parameters", function()
    assert.error_matches(function() gl.leaky_relu(gl.ones{2}, 0 / 0) end, "leaky_relu", "finite")
    assert.error_matches(function() gl.relu("x") end, "bad argument #1 to 'relu'")
  end)
end)

describe("activations on big tensors", function()
  it("split over the threads in slices: the same bits for 1 and 2 threads", function()
    local threads = gl.get_num_threads()
    local function run(n)
      gl.set_num_threads(n)
      gl.manual_seed(3)
      local x = gl.randn{ 8, 16, 64, 64 }:requires_grad(true)   -- 524288 values
      local outs = {}
      for _, f in ipairs{ gl.relu, gl.tanh, gl.sigmoid } do
        x.grad = nil
        local y = f(x)
        y:backward(gl.randn(y:shape()))
        outs[#outs + 1], outs[#outs + 2] = y, x.grad
      end
      gl.set_num_threads(threads)
      return outs
    end
    local one, two = run(1), run(2)
    for k = 1, #one do assert.tensor_near(two[k], one[k], 0) end
  end)
end)
