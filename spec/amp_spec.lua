-- spec/amp_spec.lua — reduced precision: model:precision (bindings/gradlab/nn.lua) and
-- gl.amp.GradScaler (bindings/gradlab/amp.lua).
local gl = require "gradlab"
local nn = gl.nn

local function model()
  gl.manual_seed(1)
  return nn.Sequential{nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1)}
end

describe("model:precision", function()
  it("rounds activations through fp16, so large values overflow", function()
    local m = nn.Sequential{nn.Linear(1, 1, {bias = false, init = function(t) gl.init.constant(t, 1000) end})}
    m:precision("fp16")
    assert.equal(math.huge, m(gl.tensor{{100}}):item())    -- 1e5 > 65504
    m:precision("bf16")
    assert.near(1e5, m(gl.tensor{{100}}):item(), 1e5 * 2^-8)
    m:precision("fp32")
    assert.equal(1e5, m(gl.tensor{{100}}):item())
  end)

  it("rounds gradients: a gradient of 1e-8 vanishes in fp16 without scaling", function()
    local m = model():precision("fp16")
    local loss = (m(gl.ones{2, 4}) * 1e-8):sum()
    loss:backward()
    for _, p in ipairs(m:parameters()) do assert.equal(0, p.grad:abs():max():item()) end
    -- in fp32 the same gradient is there
    local f = model()
    ;(f(gl.ones{2, 4}) * 1e-8):sum():backward()
    assert.is_true(f:get(3).bias.grad:item() > 0)
  end)

  it("keeps float32 master weights", function()
    local m = model():precision("fp16")
    local w = m:get(1).weight
    m(gl.ones{1, 4})
    assert.equal(w, m:get(1).weight)
    assert.error_matches(function() m:precision("fp8") end, "precision", "fp8")
  end)
end)

describe("GradScaler", function()
  it("lets a 1e-8 gradient survive fp16 and unscales it exactly", function()
    local m = model():precision("fp16")
    local opt = gl.optim.SGD(m:parameters(), {lr = 0})
    local scaler = gl.amp.GradScaler()
    scaler:scale((m(gl.ones{2, 4}) * 1e-8):sum()):backward()
    assert.is_true(scaler:step(opt))
    local g = m:get(3).bias.grad:item()
    assert.is_true(math.abs(g - 2e-8) / 2e-8 < 2e-3, "bias gradient " .. g)
    scaler:update()
    assert.equal(2 ^ 16, scaler:get_scale())
  end)

  it("skips a step with an inf gradient and halves the scale", function()
    local p = gl.param(gl.tensor{1, 2})
    local opt = gl.optim.SGD({p}, {lr = 0.1})
    local scaler = gl.amp.GradScaler{init_scale = 1024}
    p.grad = gl.tensor{1 / 0, 1}
    assert.is_false(scaler:step(opt))
    scaler:update()
    assert.tensor_near(p, {1, 2})
    assert.equal(512, scaler:get_scale())
    p.grad = gl.tensor{512, 512}   -- scaled by the new scale: unscales to 1
    assert.is_true(scaler:step(opt))
    scaler:update()
    assert.tensor_near(p, {0.9, 1.9}, 1e-6)
  end)

  it("grows the scale after growth_interval clean steps", function()
    local p = gl.param(gl.tensor{1})
    local opt = gl.optim.SGD({p}, {lr = 0})
    local scaler = gl.amp.GradScaler{init_scale = 4, growth_interval = 3, growth_factor = 2}
    for step = 1, 7 do
      p.grad = gl.tensor{1}
      scaler:step(opt)
      scaler:update()
      local expected = 4 * 2 ^ (step // 3)
      assert.equal(expected, scaler:get_scale())
    end
  end)

  it("unscales once, so clipping can happen in between", function()
    local p = gl.param(gl.tensor{0, 0})
    local opt = gl.optim.SGD({p}, {lr = 1})
    local scaler = gl.amp.GradScaler{init_scale = 8}
    p.grad = gl.tensor{24, 32}
    scaler:unscale(opt)
    assert.near(5, gl.optim.clip_grad_norm({p}, 1), 1e-5)
    scaler:step(opt)
    scaler:update()
    assert.tensor_near(p, {-0.6, -0.8}, 1e-5)
    assert.error_matches(function() scaler:unscale(opt); scaler:unscale(opt) end, "already")
    assert.error_matches(function() gl.amp.GradScaler{backoff_factor = 2} end, "GradScaler", "backoff")
    assert.error_matches(function() scaler:scale(3) end, "GradScaler:scale", "tensor")
  end)
end)
