-- spec/schedule_spec.lua — the learning-rate schedules of bindings/gradlab/optim.lua:
-- the lr sequence equals the closed form at chosen steps.
local gl = require "gradlab"
local optim = gl.optim

local function optimizer(lr)
  return optim.SGD({gl.param(gl.ones{1})}, {lr = lr or 1.0})
end

-- lr after k calls of step(), for k = 0..n
local function sequence(s, n)
  local out = { s:lr() }
  for k = 1, n do out[k + 1] = s:step() end
  return out
end

describe("schedules", function()
  it("step_lr: base * gamma^floor(k / size)", function()
    local lrs = sequence(optim.step_lr(optimizer(0.5), 3, 0.1), 9)
    for k = 0, 9 do assert.near(0.5 * 0.1 ^ (k // 3), lrs[k + 1], 1e-12) end
  end)

  it("cosine: eta_min + (base - eta_min)(1 + cos(pi k / T_max)) / 2", function()
    local lrs = sequence(optim.cosine(optimizer(0.1), 10, 0.001), 15)
    for _, k in ipairs{0, 1, 5, 9, 10, 13} do
      assert.near(0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * k / 10)) / 2, lrs[k + 1], 1e-12)
    end
    assert.near(0.001, lrs[11], 1e-12)
  end)

  it("cosine_restarts: periods T0, T0 * T_mult, ...", function()
    local lrs = sequence(optim.cosine_restarts(optimizer(1.0), 4, 2), 20)
    local function expected(k)
      local T, start = 4, 0
      while k >= start + T do start, T = start + T, T * 2 end
      return (1 + math.cos(math.pi * (k - start) / T)) / 2
    end
    for _, k in ipairs{0, 1, 3, 4, 5, 11, 12, 20} do assert.near(expected(k), lrs[k + 1], 1e-12) end
    assert.equal(1, lrs[5])    -- restart at k = 4
    assert.equal(1, lrs[13])   -- and at k = 4 + 8
  end)

  it("warmup ramps linearly, then chains into the next schedule", function()
    local opt = optimizer(0.2)
    local lrs = sequence(optim.warmup(opt, 4, optim.cosine(opt, 10)), 8)
    assert.near(0.05, lrs[1], 1e-12)
    assert.near(0.10, lrs[2], 1e-12)
    assert.near(0.20, lrs[4], 1e-12)
    -- after warmup: cosine's step 1, 2, ...
    for k = 4, 8 do
      assert.near(0.2 * (1 + math.cos(math.pi * (k - 3) / 10)) / 2, lrs[k + 1], 1e-12)
    end
    local plain = sequence(optim.warmup(optimizer(1.0), 2), 4)
    assert.same({0.5, 1, 1, 1, 1}, plain)
  end)

  it("scale every group from its own base lr and drive the optimizer's steps", function()
    local a, b = gl.param(gl.ones{1}), gl.param(gl.ones{1})
    local opt = optim.SGD({ {params = {a}, lr = 1.0}, {params = {b}, lr = 0.1} }, {lr = 1.0})
    local s = optim.step_lr(opt, 1, 0.5)
    s:step()
    assert.near(0.5, opt.param_groups[1].lr, 1e-12)
    assert.near(0.05, opt.param_groups[2].lr, 1e-12)
    a.grad, b.grad = gl.ones{1}, gl.ones{1}
    opt:step()
    assert.near(0.5, a:item(), 1e-6)
    assert.near(0.95, b:item(), 1e-6)
  end)

  it("raise clear errors on misuse", function()
    assert.error_matches(function() optim.cosine({}, 10) end, "cosine", "optimizer")
    assert.error_matches(function() optim.cosine(optimizer(), 0) end, "cosine", "T_max")
    assert.error_matches(function() optim.step_lr(optimizer(), 2.5) end, "step_lr", "size")
    assert.error_matches(function() optim.warmup(optimizer(), 3, 5) end, "warmup", "schedule")
    assert.error_matches(function() optim.cosine_restarts(optimizer(), 4, 0) end, "cosine_restarts", "T_mult")
  end)
end)
