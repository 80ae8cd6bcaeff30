-- spec/init_spec.lua — engine/init.c and bindings/gradlab/initializers.lua: gl.init.
local gl = require "gradlab"
local init = gl.init

local function std(t) local c = t - t:mean(); return (c * c):mean():sqrt():item() end

describe("initializers", function()
  before_each(function() gl.manual_seed(11) end)

  it("compute fans as PyTorch does", function()
    assert.same({784, 300}, {init.fans(gl.empty{300, 784})})
    assert.same({3 * 9, 16 * 9}, {init.fans(gl.empty{16, 3, 3, 3})})
    assert.error_matches(function() init.fans(gl.empty{5}) end, "fan", "2 dimensions")
  end)

  it("give the documented gains", function()
    assert.equal(1, init.gain("linear"))
    assert.equal(1, init.gain("sigmoid"))
    assert.near(5 / 3, init.gain("tanh"), 1e-12)
    assert.near(math.sqrt(2), init.gain("relu"), 1e-12)
    assert.near(math.sqrt(2 / (1 + 0.2 ^ 2)), init.gain("leaky_relu", 0.2), 1e-12)
    assert.near(math.sqrt(2 / (1 + 0.01 ^ 2)), init.gain("leaky_relu"), 1e-12)
    assert.equal(0.75, init.gain("selu"))
    assert.error_matches(function() init.gain("swish") end, "gain", "swish")
  end)

  it("match their formulas' std within 2% on 1000x1000", function()
    local t = gl.empty{1000, 1000}
    local fan = 1000
    local cases = {
      {function() init.xavier_uniform(t) end, math.sqrt(2 / (fan + fan))},
      {function() init.xavier_normal(t, 5 / 3) end, 5 / 3 * math.sqrt(2 / (fan + fan))},
      {function() init.kaiming_uniform(t, {nonlinearity = "relu"}) end, math.sqrt(2) / math.sqrt(fan)},
      {function() init.kaiming_normal(t) end, math.sqrt(2) / math.sqrt(fan)},
      {function() init.he_normal(t, {mode = "fan_out", nonlinearity = "tanh"}) end, 5 / 3 / math.sqrt(fan)},
      {function() init.kaiming_normal(t, {nonlinearity = "leaky_relu", a = 0.2}) end, math.sqrt(2 / 1.04) / math.sqrt(fan)},
      {function() init.lecun_normal(t) end, 1 / math.sqrt(fan)},
      {function() init.normal(t, 0, 0.01) end, 0.01},
      {function() init.uniform(t, -0.5, 0.5) end, 1 / math.sqrt(12)},
      {function() init.orthogonal(t) end, 1 / math.sqrt(fan)},
    }
    for i, case in ipairs(cases) do
      case[1]()
      local s = std(t)
      assert.is_true(math.abs(s / case[2] - 1) < 0.02, ("case %d: std %g, formula %g"):format(i, s, case[2]))
    end
  end)

  it("orthogonal gives W^T W = I (tall) and W W^T = I (wide), times the gain", function()
    local tall = init.orthogonal(gl.empty{64, 32})
    assert.tensor_near(tall:t():matmul(tall), gl.eye(32), 1e-5)
    local wide = init.orthogonal(gl.empty{16, 48}, 2)
    assert.tensor_near(wide:matmul(wide:t()), gl.eye(16) * 4, 1e-4)
    local conv = init.orthogonal(gl.empty{8, 2, 3, 3})
    local flat = conv:view{8, 18}
    assert.tensor_near(flat:matmul(flat:t()), gl.eye(8), 1e-5)
    assert.error_matches(function() init.orthogonal(gl.empty{5}) end, "orthogonal", "2 dimensions")
  end)

  it("fill constants in place and return the tensor", function()
    local t = gl.empty{3}
    assert.equal(t, init.constant(t, 0.1))
    assert.tensor_near(t, {0.1, 0.1, 0.1})
    assert.tensor_near(init.zeros(gl.empty{2}), {0, 0})
    assert.tensor_near(init.ones(gl.empty{2}), {1, 1})
  end)

  it("do not record a graph on parameters", function()
    local w = gl.param(gl.empty{4, 4})
    init.kaiming_normal(w)
    assert.is_true(w:is_leaf())
    ;(w * 2):sum():backward()
    assert.tensor_near(w.grad, gl.full({4, 4}, 2))
  end)

  it("reject bad arguments with the initializer's name", function()
    assert.error_matches(function() init.normal({}, 0, 1) end, "init.normal", "tensor expected")
    assert.error_matches(function() init.normal(gl.empty{2}, 0, -1) end, "init.normal", "std")
    assert.error_matches(function() init.uniform(gl.empty{2}, 1, 0) end, "init.uniform")
    assert.error_matches(function() init.kaiming_normal(gl.empty{2, 2}, {mode = "fan_both"}) end, "kaiming_normal", "mode")
    assert.error_matches(function() init.constant(gl.empty{2}, "x") end, "init.constant")
  end)

  it("are what layers apply by name, function or number", function()
    local fc = gl.nn.Linear(1000, 500, {init = "he_normal", bias_init = 0.1})
    assert.is_true(math.abs(std(fc.weight) / math.sqrt(2 / 1000) - 1) < 0.02)
    assert.tensor_near(fc.bias, gl.full({500}, 0.1))
    local custom = gl.nn.Linear(3, 2, {init = function(t) init.constant(t, 7) end, bias_init = "zeros"})
    assert.tensor_near(custom.weight, gl.full({2, 3}, 7))
    assert.tensor_near(custom.bias, {0, 0})
    assert.error_matches(function() gl.nn.Linear(3, 2, {init = "glorot"}) end, "Linear", "glorot")
    -- PyTorch's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
    local default = gl.nn.Linear(400, 300)
    assert.is_true(default.weight:abs():max():item() <= 1 / 20)
    assert.is_true(math.abs(std(default.weight) / (1 / 20 / math.sqrt(3)) - 1) < 0.02)
    assert.is_true(default.bias:abs():max():item() <= 1 / 20)
  end)
end)
