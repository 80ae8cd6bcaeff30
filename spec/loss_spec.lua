-- spec/loss_spec.lua — engine/loss.c: values, reductions, gradients and bad inputs.
local gl = require "gradlab"
local helper = require "helper"
local loss = gl.loss

local function check(fn, inputs)
  local ok, err = gl.gradcheck(fn, inputs)
  assert.is_true(ok, "gradcheck max error " .. tostring(err))
end

describe("losses", function()
  it("mse with every reduction", function()
    local p, t = gl.tensor{1, 2, 3}, gl.tensor{1, 0, 0}
    assert.near(13 / 3, loss.mse(p, t):item(), 1e-6)
    assert.near(13, loss.mse(p, t, {reduction = "sum"}):item(), 1e-6)
    assert.tensor_near(loss.mse(p, t, "none"), {0, 4, 9})
    check(function(a, b) return loss.mse(a, b) end, {gl.randn{3, 2}:requires_grad(), gl.randn{3, 2}:requires_grad()})
    check(function(a) return loss.mse(a, gl.zeros{4}, "none") end, {gl.randn{4}:requires_grad()})
  end)

  it("cross_entropy is a stable log-softmax with 1-based labels", function()
    local logits = gl.tensor{{1, 2, 3}, {1000, 0, -1000}}
    local labels = gl.tensor{3, 1}
    local first = math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3
    assert.tensor_near(loss.cross_entropy(logits, labels, "none"), {first, 0}, 1e-5)
    assert.near(first / 2, loss.cross_entropy(logits, labels):item(), 1e-5)
    assert.near(first, loss.cross_entropy(gl.tensor{1, 2, 3}, gl.tensor(3)):item(), 1e-5)   -- one sample
    gl.manual_seed(3)
    check(function(z) return loss.cross_entropy(z, gl.tensor{1, 4, 2}) end, {gl.randn{3, 4}:requires_grad()})
    check(function(z) return loss.cross_entropy(z, gl.tensor{2, 2}, "sum") end, {gl.randn{2, 3}:requires_grad()})
    check(function(z) return loss.cross_entropy(z, gl.tensor{1, 3}, "none") end, {gl.randn{2, 3}:requires_grad()})
  end)

  it("nll of log_softmax equals cross_entropy", function()
    gl.manual_seed(4)
    local z, y = gl.randn{5, 4}, gl.tensor{1, 2, 3, 4, 1}
    assert.near(loss.cross_entropy(z, y):item(), loss.nll(z:log_softmax(2), y):item(), 1e-5)
    check(function(a) return loss.nll(a, y) end, {gl.randn{5, 4}:requires_grad()})
  end)

  it("bce and bce_with_logits agree and stay finite", function()
    gl.manual_seed(5)
    local z, t = gl.randn{6}, gl.rand{6}
    assert.near(loss.bce_with_logits(z, t):item(), loss.bce(z:sigmoid(), t):item(), 1e-5)
    assert.tensor_near(loss.bce(gl.tensor{0, 1}, gl.tensor{1, 0}, "none"), {100, 100})   -- logs clamped at -100
    assert.tensor_near(loss.bce_with_logits(gl.tensor{-1000, 1000}, gl.tensor{1, 0}, "none"), {1000, 1000})
    check(function(a, b) return loss.bce(a, b) end, {(gl.rand{5} * 0.8 + 0.1):requires_grad(), gl.rand{5}:requires_grad()})
    check(function(a, b) return loss.bce_with_logits(a, b, "sum") end, {gl.randn{5}:requires_grad(), gl.rand{5}:requires_grad()})
  end)

  it("agree with NumPy", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    gl.manual_seed(6)
    local z, p, t = gl.randn{4, 3} * 3, gl.rand{4, 3}, gl.rand{4, 3}
    local r = helper.numpy([=[
m = z.max(axis=1, keepdims=True)
lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
ce = lse - z[np.arange(4), [0, 2, 1, 0]]
bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
result = [ce, bce]]=], {z = z, p = p, t = t})
    assert.tensor_near(loss.cross_entropy(z, gl.tensor{1, 3, 2, 1}, "none"), r[1], 1e-5)
    assert.tensor_near(loss.bce(p, t, "none"), r[2], 1e-5)
  end)

  it("raise clear errors on bad inputs", function()
    local z = gl.randn{3, 4}
    assert.error_matches(function() loss.cross_entropy(z, gl.tensor{1, 5, 2}) end,
                         "cross_entropy", "label 5 at position 2", "1..4")
    assert.error_matches(function() loss.cross_entropy(z, gl.tensor{0, 1, 2}) end, "cross_entropy", "label 0")
    assert.error_matches(function() loss.cross_entropy(z, gl.tensor{1.5, 1, 2}) end, "cross_entropy", "1.5")
    assert.error_matches(function() loss.cross_entropy(z, gl.tensor{1, 2}) end, "cross_entropy", "{2}", "{3, 4}")
    assert.error_matches(function() loss.mse(gl.ones{3}, gl.ones{3, 1}) end, "mse", "{3}", "{3, 1}")
    assert.error_matches(function() loss.bce(gl.tensor{1.5}, gl.tensor{1}) end, "bce", "[0, 1]", "bce_with_logits")
    assert.error_matches(function() loss.mse(gl.ones{3}, gl.ones{3}, "average") end, "mse", "reduction")
    assert.error_matches(function() loss.mse(gl.ones{3}) end, "bad argument #2 to 'mse'")
  end)
end)
