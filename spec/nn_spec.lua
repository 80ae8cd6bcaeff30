-- spec/nn_spec.lua — bindings/gradlab/nn.lua: modules, composition, names, printing,
-- and the known-answer tests of issue 3 (gradient flow at init, training, memory).
local gl = require "gradlab"
local nn = gl.nn

local function check(fn, inputs)
  local ok, err = gl.gradcheck(fn, inputs)
  assert.is_true(ok, "gradcheck max error " .. tostring(err))
end

describe("modules", function()
  it("name parameters with PyTorch's dotted paths and layouts", function()
    local m = nn.Sequential{nn.Linear(4, 8), nn.ReLU(), nn.Residual(nn.Sequential{nn.Linear(8, 8), nn.Tanh()}),
                            nn.Linear(8, 3, {bias = false})}
    local names, shapes = {}, {}
    for i, entry in ipairs(m:named_parameters()) do
      names[i] = entry[1]
      shapes[i] = table.concat(entry[2]:shape(), "x")
    end
    assert.same({"1.weight", "1.bias", "3.block.1.weight", "3.block.1.bias", "4.weight"}, names)
    assert.same({"8x4", "8", "8x8", "8", "3x8"}, shapes)
    assert.equal(5, #m:parameters())
    assert.same({}, m:named_buffers())
    for _, p in ipairs(m:parameters()) do assert.is_true(p:is_leaf() and p:tracks_grad()) end
  end)

  it("list a shared parameter once", function()
    local shared = nn.Linear(3, 3)
    local m = nn.Sequential{shared, nn.Tanh(), shared}
    assert.equal(2, #m:parameters())
  end)

  it("print the tree like PyTorch", function()
    local m = nn.Sequential():add(nn.Linear(2, 3)):add(nn.LeakyReLU(0.2)):add(nn.Dense(nn.Sequential{nn.Linear(3, 1)}))
    assert.equal([[
Sequential(
  (1): Linear(in_features=2, out_features=3, bias=true)
  (2): LeakyReLU(negative_slope=0.2)
  (3): Dense(
    (block): Sequential(
      (1): Linear(in_features=3, out_features=1, bias=true)
    )
  )
)]], tostring(m))
    assert.equal("Dropout(p=0.1)", tostring(nn.Dropout(0.1)))
    assert.equal("Softmax(dim=2)", tostring(nn.Softmax(2)))
  end)

  it("switch train/evaluate recursively, which Dropout obeys", function()
    local m = nn.Sequential{nn.Linear(4, 4), nn.Dropout(0.9)}
    m:evaluate()
    assert.is_false(m:get(2).training)
    local x = gl.ones{2, 4}
    assert.tensor_near(m(x), m:get(1)(x))
    m:train()
    assert.is_true(m:get(2).training)
  end)

  it("zero_grad clears every parameter's gradient", function()
    local m = nn.Sequential{nn.Linear(3, 2), nn.Sigmoid()}
    m(gl.randn{4, 3}):sum():backward()
    assert.is_not_nil(m:get(1).weight.grad)
    m:zero_grad()
    for _, p in ipairs(m:parameters()) do assert.is_nil(p.grad) end
  end)

  it("compose: Residual adds, Dense concatenates on the feature dimension", function()
    local block = nn.Linear(3, 3)
    local x = gl.randn{2, 3}
    assert.tensor_near(nn.Residual(block)(x), x + block(x))
    local d = nn.Dense(nn.Linear(3, 2))(x)
    assert.same({2, 5}, d:shape())
    assert.tensor_near(d:narrow(2, 1, 3), x)
    assert.same({2, 5, 4, 4}, nn.Dense(nn.Identity())(gl.randn{2, 5, 4, 4}):narrow(2, 1, 5):shape())
    assert.same({2, 48}, nn.Flatten()(gl.randn{2, 3, 4, 4}):shape())
  end)

  it("every module passes gradcheck through its parameters and input", function()
    gl.manual_seed(12)
    local x = (gl.rand{3, 4} * 1.8 + 0.1):requires_grad()   -- away from the kinks at 0
    local modules = {
      nn.Linear(4, 3), nn.Sigmoid(), nn.Tanh(), nn.ReLU(), nn.LeakyReLU(0.1), nn.ELU(), nn.PReLU(),
      nn.PReLU(4), nn.GELU(), nn.Softmax(2), nn.LogSoftmax(2), nn.Flatten(), nn.Identity(),
      nn.Residual(nn.Sequential{nn.Linear(4, 4), nn.Tanh()}), nn.Dense(nn.Linear(4, 2)),
      nn.Sequential{nn.Linear(4, 5), nn.GELU(), nn.Linear(5, 2)},
    }
    for _, m in ipairs(modules) do
      local inputs = {x}
      for _, p in ipairs(m:parameters()) do inputs[#inputs + 1] = p end
      local ok, err = gl.gradcheck(function(input) return m(input) end, inputs)
      assert.is_true(ok, tostring(m) .. ": gradcheck error " .. tostring(err))
    end
  end)

  it("raise clear errors for bad construction and bad input", function()
    assert.error_matches(function() nn.Linear(0, 3) end, "Linear", "in_features", "positive")
    assert.error_matches(function() nn.Linear(2.5, 3) end, "Linear", "integer")
    assert.error_matches(function() nn.Linear(2, 3, 4) end, "Linear", "options")
    assert.error_matches(function() nn.Sequential{nn.ReLU(), 5} end, "Sequential", "item 2")
    assert.error_matches(function() nn.Residual("x") end, "Residual", "not a module")
    local m = nn.Sequential{nn.Linear(784, 10)}
    assert.error_matches(function() m(gl.randn{32, 300}) end, "linear: input has 300 features, weight expects 784")
    assert.equal(10, m(gl.randn{1, 784}):size(2))   -- still works
  end)

  it("anomaly mode names the module path and the parameter", function()
    local m = nn.Sequential{nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)}
    gl.detect_anomaly(true)
    local ok, err = pcall(function()
      gl.no_grad(function() m:get(3).weight:fill(0 / 0) end)
      return m(gl.ones{1, 2})
    end)
    gl.detect_anomaly(false)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("linear", 1, true))
    assert.truthy(tostring(err):find("module 3", 1, true))
    -- backward: a gradient that overflows (1e20 * 1e20) names the parameter it reached
    local p = nn.Sequential{nn.Linear(1, 1, {bias = false})}
    local loss = (p(gl.tensor{{1e20}}) * 1e20):sum()
    gl.detect_anomaly(true)
    ok, err = pcall(function() loss:backward() end)
    gl.detect_anomaly(false)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("1.weight", 1, true), tostring(err))
  end)
end)

describe("gradient flow at initialization (issue 3's known answers)", function()
  -- 19 bias-free 256->256 layers with the activation and a 256->10 head, batch 128,
  -- cross-entropy against random labels, 5 weight seeds.  Backward factor: the
  -- per-layer shrink of rms(dL/dz) from layer 19 down to layer 1; forward factor:
  -- the per-layer change of the activations' rms.
  local function factors(activation, init_name)
    local backward, forward = 0, 0
    for seed = 1, 5 do
      gl.manual_seed(seed)
      local layers = {}
      for l = 1, 19 do layers[l] = nn.Linear(256, 256, {bias = false, init = init_name}) end
      local head = nn.Linear(256, 10, {bias = false, init = init_name})
      local h, z1, z19, h1 = gl.randn{128, 256}
      for l = 1, 19 do
        local z = layers[l](h):retain_grad()
        h = activation(z)
        if l == 1 then z1, h1 = z, h end
        if l == 19 then z19 = z end
      end
      gl.loss.cross_entropy(head(h), gl.randint(1, 10, {128})):backward()
      local function rms(t) return (t * t):mean():sqrt():item() end
      backward = backward + (rms(z1.grad) / rms(z19.grad)) ^ (1 / 18) / 5
      forward = forward + (rms(h) / rms(h1)) ^ (1 / 18) / 5
    end
    return backward, forward
  end

  local function within(expected, actual, what)
    assert.is_true(math.abs(actual / expected - 1) < 0.05, ("%s: %.4f, expected %.4f"):format(what, actual, expected))
  end

  it("sigmoid + Xavier vanishes by ~0.234 per layer", function()
    within(0.234, factors(gl.sigmoid, "xavier_normal"), "backward factor")
  end)

  it("ReLU + Xavier loses 1/sqrt(2) per layer both ways", function()
    local backward, forward = factors(gl.relu, "xavier_normal")
    within(1 / math.sqrt(2), backward, "backward factor")
    within(0.70, forward, "forward factor")
  end)

  it("ReLU + He keeps both signals at ~1", function()
    local backward, forward = factors(gl.relu, "he_normal")
    within(1.00, backward, "backward factor")
    within(0.99, forward, "forward factor")
  end)
end)

describe("training", function()
  it("an MLP learns two spirals to > 95% accuracy", function()
    gl.manual_seed(0)
    local n = 200
    local x, y = gl.zeros{2 * n, 2}, gl.zeros{2 * n}
    local noise = gl.randn{2 * n, 2} * 0.02
    for c = 0, 1 do
      for i = 1, n do
        local r, t = i / n, 3.5 * math.pi * i / n + c * math.pi
        x:set(r * math.sin(t) + noise:get(c * n + i, 1), c * n + i, 1)
        x:set(r * math.cos(t) + noise:get(c * n + i, 2), c * n + i, 2)
        y:set(c + 1, c * n + i)
      end
    end
    local model = nn.Sequential{nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2)}
    local params = model:parameters()
    local velocity = {}
    for i, p in ipairs(params) do velocity[i] = gl.zeros(p:shape()) end
    for _ = 1, 2000 do
      local loss = gl.loss.cross_entropy(model(x), y)
      model:zero_grad()
      loss:backward()
      for i, p in ipairs(params) do velocity[i]:mul_(0.9):add_(p.grad); p:add_(velocity[i], -0.05) end
    end
    local accuracy = model(x):argmax(2):eq(y):mean():item()
    assert.is_true(accuracy > 0.95, "accuracy " .. accuracy)
  end)

  it("10^4 steps of a small MLP hold memory flat", function()
    gl.manual_seed(1)
    local model = nn.Sequential{nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)}
    local x, y = gl.randn{32, 16}, gl.randint(1, 4, {32})
    local params = model:parameters()
    local function step()
      local loss = gl.loss.cross_entropy(model(x), y)
      model:zero_grad()
      loss:backward()
      for _, p in ipairs(params) do p:add_(p.grad, -0.01) end
    end
    for _ = 1, 1000 do step() end
    collectgarbage()
    local lua_before, engine_before = collectgarbage("count"), gl.memory()
    for _ = 1, 9000 do step() end
    collectgarbage()
    local lua_after, engine_after = collectgarbage("count"), gl.memory()
    assert.is_true(engine_after <= engine_before + 16 * 1024, ("engine memory %d -> %d"):format(engine_before, engine_after))
    assert.is_true(lua_after <= lua_before * 1.1 + 64, ("Lua memory %.0f KB -> %.0f KB"):format(lua_before, lua_after))
  end)
end)
