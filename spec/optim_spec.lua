-- spec/optim_spec.lua — engine/optim.c and bindings/gradlab/optim.lua: each update rule
-- against NumPy transcriptions of PyTorch's documented algorithms, checkpoints,
-- parameter groups, clipping and bad input.
local gl = require "gradlab"
local helper = require "helper"
local optim = gl.optim

-- The fixed tiny problem: loss = sum(c * p^2) + sum(d * p), gradient 2 c p + d.
local p0 = {0.5, -1.5, 2.0, -0.25, 1e-3, 3.0}
local c = {1.0, 0.5, 2.0, 3.0, 1.0, 0.1}
local d = {0.1, -0.2, 0.3, 0.0, -1.0, 0.5}

local function run(make, steps)
  local p = gl.param(gl.tensor(p0))
  local opt = make({p})
  local ct, dt = gl.tensor(c), gl.tensor(d)
  for _ = 1, steps do
    opt:zero_grad()
    ;((ct * p * p):sum() + (dt * p):sum()):backward()
    opt:step()
  end
  return p, opt
end

-- NumPy reference: the same 5 steps, written from PyTorch's documentation in float64.
local reference = [[
c = np.array(CS); d = np.array(DS)
def grad(p): return 2 * c * p + d
def sgd(lr, momentum=0.0, dampening=0.0, nesterov=False, wd=0.0, l1=0.0):
    p = np.array(P0); b = None
    for t in range(1, 6):
        g = grad(p) + wd * p + l1 * np.sign(p)
        if momentum:
            b = g.copy() if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
    return p
def adam(lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False, amsgrad=False, l1=0.0):
    p = np.array(P0); m = np.zeros_like(p); v = np.zeros_like(p); vmax = np.zeros_like(p)
    for t in range(1, 6):
        g = grad(p)   # the gradient of the forward pass, before any decay
        if decoupled: p = p * (1 - lr * wd)
        g = g + (0 if decoupled else wd) * p + l1 * np.sign(p)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vv = vmax if amsgrad else v
        p = p - lr / (1 - b1 ** t) * m / (np.sqrt(vv) / np.sqrt(1 - b2 ** t) + eps)
    return p
def rmsprop(lr, alpha=0.99, eps=1e-8, wd=0.0, momentum=0.0, centered=False):
    p = np.array(P0); v = np.zeros_like(p); b = np.zeros_like(p); a = np.zeros_like(p)
    for t in range(1, 6):
        g = grad(p) + wd * p
        v = alpha * v + (1 - alpha) * g * g
        var = v
        if centered:
            a = alpha * a + (1 - alpha) * g
            var = v - a * a
        den = np.sqrt(var) + eps
        if momentum > 0:
            b = momentum * b + g / den
            p = p - lr * b
        else:
            p = p - lr * g / den
    return p
def adagrad(lr, lr_decay=0.0, wd=0.0, init=0.0, eps=1e-10):
    p = np.array(P0); s = np.full_like(p, init)
    for t in range(1, 6):
        g = grad(p) + wd * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        p = p - clr * g / (np.sqrt(s) + eps)
    return p
result = [
  sgd(0.1), sgd(0.05, momentum=0.9), sgd(0.05, momentum=0.9, dampening=0.3, wd=0.01),
  sgd(0.05, momentum=0.9, nesterov=True), sgd(0.1, l1=0.05),
  adam(0.1), adam(0.05, b1=0.8, b2=0.99, wd=0.1), adam(0.05, wd=0.1, decoupled=True),
  adam(0.1, amsgrad=True), adam(0.1, l1=0.01),
  rmsprop(0.01), rmsprop(0.01, momentum=0.9, centered=True, wd=0.01),
  adagrad(0.1), adagrad(0.1, lr_decay=0.1, wd=0.01, init=0.1),
]
]]

describe("optimizers", function()
  local expected
  setup(function()
    if helper.has_numpy() then
      local code = reference:gsub("CS", helper.python_list(c)):gsub("DS", helper.python_list(d)):gsub("P0", helper.python_list(p0))
      expected = helper.numpy(code, {})
    end
  end)

  local cases = {
    {"SGD", function(ps) return optim.SGD(ps, {lr = 0.1}) end},
    {"SGD momentum", function(ps) return optim.SGD(ps, {lr = 0.05, momentum = 0.9}) end},
    {"SGD dampening + weight decay", function(ps) return optim.SGD(ps, {lr = 0.05, momentum = 0.9, dampening = 0.3, weight_decay = 0.01}) end},
    {"SGD Nesterov", function(ps) return optim.SGD(ps, {lr = 0.05, momentum = 0.9, nesterov = true}) end},
    {"SGD l1", function(ps) return optim.SGD(ps, {lr = 0.1, l1 = 0.05}) end},
    {"Adam", function(ps) return optim.Adam(ps, {lr = 0.1}) end},
    {"Adam betas + L2", function(ps) return optim.Adam(ps, {lr = 0.05, betas = {0.8, 0.99}, weight_decay = 0.1}) end},
    {"AdamW", function(ps) return optim.AdamW(ps, {lr = 0.05, weight_decay = 0.1}) end},
    {"Adam amsgrad", function(ps) return optim.Adam(ps, {lr = 0.1, amsgrad = true}) end},
    {"Adam l1", function(ps) return optim.Adam(ps, {lr = 0.1, l1 = 0.01}) end},
    {"RMSprop", function(ps) return optim.RMSprop(ps, {lr = 0.01}) end},
    {"RMSprop centered momentum", function(ps) return optim.RMSprop(ps, {lr = 0.01, momentum = 0.9, centered = true, weight_decay = 0.01}) end},
    {"Adagrad", function(ps) return optim.Adagrad(ps, {lr = 0.1}) end},
    {"Adagrad decay", function(ps) return optim.Adagrad(ps, {lr = 0.1, lr_decay = 0.1, weight_decay = 0.01, initial_accumulator_value = 0.1}) end},
  }

  for i, case in ipairs(cases) do
    it(case[1] .. ": 5 steps equal the documented update (NumPy, float64) to 1e-6", function()
      if not expected then pending("NumPy not installed") return end
      local p = run(case[2], 5)
      assert.tensor_near(p, expected[i], 1e-6)
    end)
  end

  it("resume bit-identically from state() / load_state()", function()
    for _, case in ipairs(cases) do
      local straight = run(case[2], 6)
      local p, opt = run(case[2], 3)
      local saved = opt:state()
      local p2 = gl.param(p:detach():clone())
      local opt2 = case[2]({p2})
      opt2:load_state(saved)
      local ct, dt = gl.tensor(c), gl.tensor(d)
      for _ = 1, 3 do
        opt2:zero_grad()
        ;((ct * p2 * p2):sum() + (dt * p2):sum()):backward()
        opt2:step()
      end
      assert.same(straight:totable(), p2:totable(), case[1])
    end
  end)

  it("round-trip their state through an .npz-free Lua table without sharing buffers", function()
    local p, opt = run(function(ps) return optim.Adam(ps, {lr = 0.1}) end, 2)
    local saved = opt:state()
    local before = saved.params[1].state.exp_avg:totable()
    opt:step()
    assert.same(before, saved.params[1].state.exp_avg:totable())
    assert.equal(2, saved.params[1].state.step)
  end)

  it("support parameter groups with their own hyper-parameters", function()
    local a, b = gl.param(gl.ones{2}), gl.param(gl.ones{2})
    local opt = optim.SGD({ {params = {a}, lr = 0.5}, {params = {b}} }, {lr = 0.1})
    a.grad, b.grad = gl.ones{2}, gl.ones{2}
    opt:step()
    assert.tensor_near(a, {0.5, 0.5})
    assert.tensor_near(b, {0.9, 0.9})
    assert.equal(0.5, opt.lr)
    opt.lr = 0.01
    assert.equal(0.01, opt.param_groups[2].lr)
    local m = gl.nn.Linear(3, 2)
    assert.equal(2, #optim.Adam(m):parameters())       -- a module is accepted too
    assert.equal(2, #optim.Adam(m:parameters()):parameters())
  end)

  it("skip parameters without a gradient", function()
    local a = gl.param(gl.ones{2})
    local opt = optim.Adam({a}, {lr = 0.1})
    opt:step()
    assert.tensor_near(a, {1, 1})
  end)

  it("raise clear errors on misuse", function()
    local p = gl.param(gl.ones{2})
    assert.error_matches(function() optim.SGD({}, {lr = 0.1}) end, "SGD", "no parameters")
    assert.error_matches(function() optim.SGD({p}) end, "SGD", "lr is required")
    assert.error_matches(function() optim.SGD({p}, {lr = -1}) end, "SGD", "lr")
    assert.error_matches(function() optim.SGD({p}, {lr = 0 / 0}) end, "SGD", "lr")
    assert.error_matches(function() optim.SGD({p}, {lr = 0.1, nesterov = true}) end, "SGD", "nesterov")
    assert.error_matches(function() optim.Adam({p}, {betas = {0.9, 1.0}}) end, "Adam", "betas")
    assert.error_matches(function() optim.Adam({gl.ones{2}}) end, "Adam", "does not require grad")
    assert.error_matches(function() optim.Adam({p, "x"}) end, "Adam", "parameter 2")
    assert.error_matches(function() optim.Adam({p, p}) end, "Adam", "more than one group")
    assert.error_matches(function() optim.Adam(5) end, "Adam", "bad argument #1")
    assert.error_matches(function() optim.RMSprop({p}, {alpha = 2}) end, "RMSprop", "alpha")
    local opt = optim.Adam({p})
    assert.error_matches(function() opt.lr = "fast" end, "Adam", "lr")
    assert.error_matches(function() opt:load_state({}) end, "load_state")
    p.grad = gl.ones{2}
    opt:step()   -- still works
    assert.is_true(p:get(1) < 1)
  end)
end)

describe("clipping", function()
  it("clip_grad_norm scales all gradients to the global norm and returns the old norm", function()
    local a, b = gl.param(gl.zeros{2}), gl.param(gl.zeros{1})
    a.grad, b.grad = gl.tensor{3, 0}, gl.tensor{4}
    local total = optim.clip_grad_norm({a, b}, 1)
    assert.near(5, total, 1e-6)
    assert.tensor_near(a.grad, {0.6, 0}, 1e-5)
    assert.tensor_near(b.grad, {0.8}, 1e-5)
    assert.near(1, optim.clip_grad_norm({a, b}, 10), 1e-5)   -- below the threshold: untouched
    assert.tensor_near(a.grad, {0.6, 0}, 1e-5)
  end)

  it("clip_grad_norm with the inf norm, and with a non-finite gradient", function()
    local a = gl.param(gl.zeros{3})
    a.grad = gl.tensor{-4, 2, 1}
    assert.equal(4, optim.clip_grad_norm({a}, 2, "inf"))
    assert.tensor_near(a.grad, {-2, 1, 0.5}, 1e-5)
    a.grad = gl.tensor{1, 1 / 0, 0}
    assert.equal(math.huge, optim.clip_grad_norm({a}, 1))
  end)

  it("clip_grad_value clamps each element", function()
    local a = gl.param(gl.zeros{3})
    a.grad = gl.tensor{-4, 0.2, 9}
    optim.clip_grad_value({a}, 1)
    assert.tensor_near(a.grad, {-1, 0.2, 1})
    assert.error_matches(function() optim.clip_grad_value({a}, -1) end, "clip_grad_value", "#2")
    assert.error_matches(function() optim.clip_grad_norm({a}, "x") end, "clip_grad_norm", "max_norm")
  end)
end)

describe("big parameters on the engine's threads", function()
  -- 300,001 elements: split in parts (at whole blocks of 1024, with a ragged
  -- end) when two threads are allowed; updates are elementwise, so the bits
  -- must not depend on the thread count.
  local configs = {
    { "SGD", { lr = 0.1 } },
    { "SGD", { lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 1e-3 } },
    { "Adam", { lr = 1e-2, amsgrad = true } },
    { "AdamW", { lr = 1e-2, l1 = 1e-4 } },
    { "RMSprop", { lr = 1e-2, momentum = 0.5, centered = true } },
    { "Adagrad", { lr = 1e-2, lr_decay = 0.1 } },
  }
  for _, config in ipairs(configs) do
    it(config[1] .. " gives the same parameters and state on 1 and 2 threads", function()
      local function run(threads)
        gl.set_num_threads(threads)
        gl.manual_seed(17)
        local p = gl.param(gl.randn{300001})
        local opt = optim[config[1]]({ p }, config[2])
        for _ = 1, 3 do
          p.grad = gl.randn{300001}
          opt:step()
        end
        return p, opt:state()
      end
      local p1, s1 = run(1)
      local p2, s2 = run(2)
      gl.set_num_threads(2)
      assert.is_true((p1 - p2):abs():max():item() == 0)
      for key, value in pairs(s1.params[1].state) do
        if gl.is_tensor(value) then
          assert.is_true((value - s2.params[1].state[key]):abs():max():item() == 0, key)
        else
          assert.equal(value, s2.params[1].state[key])
        end
      end
    end)
  end
end)
