-- spec/norm_spec.lua — engine/norm_batch.c and engine/norm_group.c through gl.batch_norm,
-- gl.layer_norm, gl.group_norm, gl.rms_norm and the modules of bindings/gradlab/nn_norm.lua:
-- values against hand computations in Lua doubles and against NumPy, gradcheck in train and
-- evaluate modes, running statistics, the GroupNorm identities, and clear errors.
local gl = require "gradlab"
local helper = require "helper"
local nn = gl.nn

-- Tighter than gradcheck's default 1e-2: these kernels reach ~1e-4 in float32.
local function check(fn, inputs, what, tol)
  local ok, err = gl.gradcheck(fn, inputs, { tol = tol or 3e-3 })
  assert.is_true(ok, (what or "gradcheck") .. ": max error " .. tostring(err))
end

local function param(t) return t:requires_grad(true) end

-- Per-channel statistics of a (B, C, ...) tensor, in Lua doubles:
-- mean[c], biased var[c], unbiased var[c], and the count N.
local function channel_stats(x)
  local shape = x:shape()
  local B, C = shape[1], shape[2]
  local values = helper.flatten(x:contiguous():totable())
  local inner = #values // (B * C)
  local mean, var, unbiased = {}, {}, {}
  local n = B * inner
  for c = 1, C do
    local s = 0
    for b = 1, B do
      for i = 1, inner do s = s + values[((b - 1) * C + (c - 1)) * inner + i] end
    end
    mean[c] = s / n
    local q = 0
    for b = 1, B do
      for i = 1, inner do
        local d = values[((b - 1) * C + (c - 1)) * inner + i] - mean[c]
        q = q + d * d
      end
    end
    var[c], unbiased[c] = q / n, q / (n - 1)
  end
  return mean, var, unbiased, n
end

-- y[b, c, i] = f(c, x[b, c, i]) on a (B, C, ...) tensor, as a nested table of its shape.
local function map_channels(x, f)
  local shape = x:shape()
  local B, C = shape[1], shape[2]
  local values = helper.flatten(x:contiguous():totable())
  local inner = #values // (B * C)
  local out = {}
  for b = 1, B do
    for c = 1, C do
      for i = 1, inner do
        local at = ((b - 1) * C + (c - 1)) * inner + i
        out[at] = f(c, values[at])
      end
    end
  end
  return gl.tensor(out):view(shape)
end

describe("batch norm", function()
  before_each(function() gl.manual_seed(7) end)

  it("normalizes each feature of (B, F) and each channel of (B, C, H, W) with batch statistics", function()
    for _, shape in ipairs { { 16, 5 }, { 4, 3, 5, 6 }, { 3, 4, 7 } } do
      local x = gl.randn(shape) * 3 + 2
      local w, b = gl.randn{ shape[2] }, gl.randn{ shape[2] }
      local mean, var = channel_stats(x)
      local y = gl.batch_norm(x, nil, nil, w, b, true)
      local wt, bt = w:totable(), b:totable()
      local expected = map_channels(x, function(c, v)
        return (v - mean[c]) / math.sqrt(var[c] + 1e-5) * wt[c] + bt[c]
      end)
      assert.tensor_near(y, expected, 2e-5)
    end
  end)

  it("agrees with NumPy", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    local x = gl.randn{ 6, 3, 4, 5 } * 2 - 1
    local w, b = gl.randn{ 3 }, gl.randn{ 3 }
    local r = helper.numpy([[
m = x.astype(np.float64).mean(axis=(0, 2, 3), keepdims=True)
v = x.astype(np.float64).var(axis=(0, 2, 3), keepdims=True)
result = (x - m) / np.sqrt(v + 1e-5) * w.reshape(1, 3, 1, 1) + b.reshape(1, 3, 1, 1)]], { x = x, w = w, b = b })
    assert.tensor_near(gl.batch_norm(x, nil, nil, w, b, true), r, 2e-5)
  end)

  it("keeps its precision when the mean dwarfs the spread (two-pass variance)", function()
    local x = gl.randn{ 64, 2 } * 0.01 + 1000
    local mean, var = channel_stats(x)
    local y = gl.batch_norm(x, nil, nil, nil, nil, true, 0.1, 1e-12)
    local expected = map_channels(x, function(c, v) return (v - mean[c]) / math.sqrt(var[c]) end)
    assert.tensor_near(y, expected, 1e-2)   -- float32 x itself carries 6e-5 of 0.01 here
    local s = (y * y):mean(1):totable()
    assert.near(1, s[1], 1e-3)
    assert.near(1, s[2], 1e-3)
  end)

  it("updates the running statistics as PyTorch does: unbiased variance, momentum", function()
    for _, momentum in ipairs { 0.1, 0.35, 0, 1 } do
      local m = nn.BatchNorm(3, { momentum = momentum })
      local rm, rv = { 0, 0, 0 }, { 1, 1, 1 }
      for step = 1, 6 do
        local x = gl.randn{ 5, 3, 2, 2 } * step + step
        m(x)
        local mean, _, unbiased = channel_stats(x)
        for c = 1, 3 do
          rm[c] = (1 - momentum) * rm[c] + momentum * mean[c]
          rv[c] = (1 - momentum) * rv[c] + momentum * unbiased[c]
        end
      end
      assert.tensor_near(m.running_mean, rm, 1e-5)
      assert.tensor_near(m.running_var, rv, 1e-5)
      assert.equal(6, m.num_batches_tracked:item())
    end
  end)

  it("updates running statistics given to the functional form, in place, also under no_grad", function()
    local rm, rv = gl.zeros{ 4 }, gl.ones{ 4 }
    local x = gl.randn{ 10, 4 }
    local mean, _, unbiased = channel_stats(x)
    gl.no_grad(function() gl.batch_norm(x, { running_mean = rm, running_var = rv, training = true, momentum = 0.5 }) end)
    local em, ev = {}, {}
    for c = 1, 4 do em[c], ev[c] = 0.5 * mean[c], 0.5 + 0.5 * unbiased[c] end
    assert.tensor_near(rm, em, 1e-6)
    assert.tensor_near(rv, ev, 1e-6)
    -- a strided view as the buffer works too
    local both = gl.zeros{ 4, 2 }
    local vm, vv = both:select(2, 1), both:select(2, 2)
    vv:fill(1)
    gl.batch_norm(x, vm, vv, nil, nil, true, 0.5)
    assert.tensor_near(vm, em, 1e-6)
    assert.tensor_near(vv, ev, 1e-6)
  end)

  it("evaluate mode normalizes with the running statistics and leaves them alone", function()
    local m = nn.BatchNorm(3)
    gl.no_grad(function()
      m.weight:copy(gl.tensor{ 1.5, -0.5, 2 })
      m.bias:copy(gl.tensor{ 0.1, 0.2, -0.3 })
    end)
    for _ = 1, 5 do m(gl.randn{ 8, 3, 3, 3 } * 2 + 1) end
    local rm, rv = m.running_mean:totable(), m.running_var:totable()
    m:evaluate()
    local x = gl.randn{ 2, 3, 3, 3 }
    local w, b = m.weight:totable(), m.bias:totable()
    local expected = map_channels(x, function(c, v) return (v - rm[c]) / math.sqrt(rv[c] + 1e-5) * w[c] + b[c] end)
    assert.tensor_near(m(x), expected, 1e-5)
    assert.tensor_near(m.running_mean, rm, 0)
    assert.tensor_near(m.running_var, rv, 0)
    assert.equal(5, m.num_batches_tracked:item())
    -- batch size 1 is fine in evaluate mode
    assert.same({ 1, 3, 3, 3 }, m(gl.randn{ 1, 3, 3, 3 }):shape())
    m:train()
    m(gl.randn{ 4, 3, 3, 3 })
    assert.equal(6, m.num_batches_tracked:item())
  end)

  it("without running statistics uses batch statistics in both modes", function()
    local m = nn.BatchNorm(2, { track_running_stats = false, affine = false })
    assert.same({}, m:named_buffers())
    assert.same({}, m:named_parameters())
    local x = gl.randn{ 6, 2 } * 3
    local y = m(x)
    m:evaluate()
    assert.tensor_near(m(x), y, 0)
    assert.equal("BatchNorm(2, eps=1e-05, momentum=0.1, affine=false, track_running_stats=false)", tostring(m))
  end)

  it("passes gradcheck in train mode through the batch statistics, for x, weight and bias", function()
    for _, shape in ipairs { { 6, 3 }, { 3, 2, 2, 3 }, { 2, 3, 4 } } do
      local x = param(gl.randn(shape) * 2 + 0.5)
      local w, b = param(gl.randn{ shape[2] } + 1), param(gl.randn{ shape[2] })
      check(function(t, wt, bt) return gl.batch_norm(t, nil, nil, wt, bt, true) end, { x, w, b },
            "train " .. table.concat(shape, "x"))
      check(function(t) return gl.batch_norm(t, nil, nil, nil, nil, true) end, { x }, "train, no affine")
    end
  end)

  it("passes gradcheck in evaluate mode (a plain affine map)", function()
    local rm, rv = gl.randn{ 3 }, gl.rand{ 3 } + 0.5
    for _, shape in ipairs { { 5, 3 }, { 2, 3, 2, 2 } } do
      local x = param(gl.randn(shape))
      local w, b = param(gl.randn{ 3 }), param(gl.randn{ 3 })
      check(function(t, wt, bt) return gl.batch_norm(t, rm, rv, wt, bt, false) end, { x, w, b },
            "evaluate " .. table.concat(shape, "x"))
    end
    -- evaluate mode: dx = g w / sqrt(rv + eps) exactly
    local x = param(gl.randn{ 4, 3 })
    local w = gl.tensor{ 2, -1, 0.5 }
    gl.batch_norm(x, rm, rv, w, nil, false):sum():backward()
    local rvt, wt = rv:totable(), w:totable()
    local row = {}
    for c = 1, 3 do row[c] = wt[c] / math.sqrt(rvt[c] + 1e-5) end
    assert.tensor_near(x.grad, { row, row, row, row }, 1e-6)
  end)

  it("the module passes gradcheck in both modes", function()
    local m = nn.BatchNorm(3)
    gl.no_grad(function() m.weight:copy(gl.tensor{ 0.5, 1.5, -1 }); m.bias:copy(gl.tensor{ 0, 1, 2 }) end)
    local x = param(gl.randn{ 4, 3, 2, 2 } * 1.5)
    check(function(t) return m(t) end, { x, m.weight, m.bias }, "BatchNorm train")
    m:evaluate()
    check(function(t) return m(t) end, { x, m.weight, m.bias }, "BatchNorm evaluate")
  end)

  it("sums planes of any length exactly: statistics and parameter gradients against Lua doubles", function()
    -- norm_batch.c sums each plane in 16 double lanes, the last block padded: planes of 5, 16,
    -- 33 and 35 values reach full blocks, the tail and both at once; a mean 10^3 times the
    -- spread shows padding that leaked into the centred squares.
    for _, shape in ipairs { { 3, 2, 1, 5 }, { 2, 3, 4, 4 }, { 3, 2, 3, 11 }, { 2, 2, 5, 7 } } do
      local x = gl.randn(shape) * 0.5 + 500
      local g = gl.randn(shape)
      local w, b = param(gl.randn{ shape[2] }), param(gl.randn{ shape[2] })
      local rm, rv = gl.zeros{ shape[2] }, gl.zeros{ shape[2] }
      gl.batch_norm(x, rm, rv, w, b, true, 1.0, 1e-5):backward(g)
      local mean, var, unbiased = channel_stats(x)
      local xhat = map_channels(x, function(c, v) return (v - mean[c]) / math.sqrt(var[c] + 1e-5) end)
      local function per_channel(t) return t:sum(4):sum(3):sum(1):view{ -1 }:totable() end
      local dw, db = per_channel(g * xhat), per_channel(g)
      local rmt, rvt, dwt, dbt = rm:totable(), rv:totable(), w.grad:totable(), b.grad:totable()
      for c = 1, shape[2] do
        assert.near(mean[c], rmt[c], 1e-4)
        assert.near(unbiased[c], rvt[c], 1e-5 * unbiased[c])
        assert.near(dw[c], dwt[c], 1e-3)
        assert.near(db[c], dbt[c], 1e-4)
      end
    end
  end)

  it("train-mode input gradients sum to zero per channel and are orthogonal to x̂", function()
    local x = param(gl.randn{ 32, 4 } * 2 + 3)
    local y = gl.batch_norm(x, nil, nil, nil, nil, true)
    local loss = (y * gl.randn{ 32, 4 }):sum()
    loss:backward()
    local s = x.grad:sum(1):totable()
    for c = 1, 4 do assert.near(0, s[c], 1e-5) end
    local dot = (x.grad * y:detach()):sum(1):totable()
    for c = 1, 4 do assert.near(0, dot[c], 1e-4) end
  end)

  it("splits big inputs over the threads by channel: the same bits for any thread count", function()
    -- 32 x 16 x 32 x 32 values: enough for norm_batch.c to run channel ranges on 2 threads.
    local threads = gl.get_num_threads()
    local function run(n)
      gl.set_num_threads(n)
      gl.manual_seed(5)
      local x = (gl.randn{ 32, 16, 32, 32 } * 3 + 1):requires_grad(true)
      local w, b = gl.randn{ 16 }:requires_grad(true), gl.randn{ 16 }:requires_grad(true)
      local rm, rv = gl.zeros{ 16 }, gl.ones{ 16 }
      local y = gl.batch_norm(x, rm, rv, w, b, true)
      y:backward(gl.randn(y:shape()))
      gl.set_num_threads(threads)
      return { y, x.grad, w.grad, b.grad, rm, rv }
    end
    local one, two = run(1), run(2)
    for k = 1, #one do assert.tensor_near(two[k], one[k], 0) end
  end)

  it("accepts non-contiguous input", function()
    local x = gl.randn{ 3, 6 }
    local y = gl.batch_norm(x:t(), nil, nil, nil, nil, true)
    assert.tensor_near(y, gl.batch_norm(x:t():contiguous(), nil, nil, nil, nil, true), 0)
  end)

  it("raises clear errors and the session keeps working", function()
    local m = nn.BatchNorm(4)
    assert.error_matches(function() m(gl.randn{ 1, 4 }) end,
                         "batch_norm: training needs more than one value per channel, got input shape {1, 4}")
    assert.error_matches(function() nn.BatchNorm(3)(gl.randn{ 1, 3, 1, 1 }) end, "more than one value", "{1, 3, 1, 1}")
    assert.equal(0, m.num_batches_tracked:item())       -- the failed call counted nothing
    assert.tensor_near(m.running_mean, { 0, 0, 0, 0 }, 0) -- and left the buffers alone
    assert.error_matches(function() m(gl.randn{ 8, 3 }) end, "BatchNorm", "{8, 3}", "expects 4", "{4}")
    assert.error_matches(function() m(gl.randn{ 8, 5, 2, 2 }) end, "BatchNorm", "{8, 5, 2, 2}", "{4}")
    assert.error_matches(function() m(gl.randn{ 4 }) end, "BatchNorm", "{4}", "dimension 2")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, nil, nil, gl.ones{ 4 }, nil, true) end,
                         "batch_norm: weight of shape {4} does not match 3 channels", "{8, 3}")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, gl.zeros{ 2 }, gl.ones{ 2 }, nil, nil, true) end,
                         "running_mean of shape {2}", "{8, 3}")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, nil, nil, nil, nil, false) end,
                         "batch_norm", "evaluate mode", "running_mean")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, gl.zeros{ 3 }, nil, nil, nil, true) end,
                         "running_mean and running_var go together")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, nil, nil, nil, nil, true, 1.5) end,
                         "batch_norm: momentum must be in [0, 1], got 1.5")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, nil, nil, nil, nil, true, -0.1) end, "momentum")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, nil, nil, nil, nil, true, 0.1, 0) end,
                         "batch_norm: eps must be positive")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, nil, nil, nil, nil, true, 0.1, -1) end, "eps")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, { momentun = 0.2 }) end, "unknown option 'momentun'")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, { weight = 3, training = true }) end,
                         "option 'weight' must be a tensor")
    assert.error_matches(function() gl.batch_norm(gl.randn{ 8, 3 }, nil, nil, "w") end, "bad argument #4", "weight")
    assert.error_matches(function() nn.BatchNorm(4, { momentum = 2 }) end, "BatchNorm", "momentum", "[0, 1]")
    assert.error_matches(function() nn.BatchNorm(4, { eps = 0 }) end, "BatchNorm", "eps")
    assert.error_matches(function() nn.BatchNorm(0) end, "BatchNorm", "positive")
    assert.error_matches(function() nn.BatchNorm(4, { affine = true, bogus = 1 }) end, "unknown option 'bogus'")
    -- still works after all of that
    local y = m(gl.randn{ 8, 4 })
    assert.same({ 8, 4 }, y:shape())
    assert.equal(1, m.num_batches_tracked:item())
  end)
end)

describe("layer norm", function()
  before_each(function() gl.manual_seed(11) end)

  -- Rows of the last k dims of x normalized in Lua doubles, then y = xhat * w + b (flat, optional).
  local function reference(x, k, w, b, eps, centred)
    local shape = x:shape()
    local m = 1
    for d = #shape - k + 1, #shape do m = m * shape[d] end
    local values = helper.flatten(x:contiguous():totable())
    local wt = w and helper.flatten(w:totable()) or nil
    local bt = b and helper.flatten(b:totable()) or nil
    local out = {}
    for r = 0, #values // m - 1 do
      local s, q = 0, 0
      if centred ~= false then
        for j = 1, m do s = s + values[r * m + j] end
        s = s / m
      end
      for j = 1, m do q = q + (values[r * m + j] - s) ^ 2 end
      local rstd = 1 / math.sqrt(q / m + eps)
      for j = 1, m do
        out[r * m + j] = (values[r * m + j] - s) * rstd * (wt and wt[j] or 1) + (bt and bt[j] or 0)
      end
    end
    return gl.tensor(out):view(shape)
  end

  it("normalizes over the trailing normalized_shape", function()
    local x = gl.randn{ 4, 3, 5 } * 2 + 1
    local w, b = gl.randn{ 5 }, gl.randn{ 5 }
    assert.tensor_near(gl.layer_norm(x, 5, w, b), reference(x, 1, w, b, 1e-5), 2e-5)
    local w2, b2 = gl.randn{ 3, 5 }, gl.randn{ 3, 5 }
    assert.tensor_near(gl.layer_norm(x, { 3, 5 }, w2, b2, 1e-3), reference(x, 2, w2, b2, 1e-3), 2e-5)
    assert.tensor_near(gl.layer_norm(x, { 4, 3, 5 }), reference(x, 3, nil, nil, 1e-5), 2e-5)
  end)

  it("agrees with NumPy", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    local x, w, b = gl.randn{ 6, 8 } * 3, gl.randn{ 8 }, gl.randn{ 8 }
    local r = helper.numpy([[
m = x.mean(axis=-1, keepdims=True); v = x.var(axis=-1, keepdims=True)
result = (x - m) / np.sqrt(v + 1e-5) * w + b]], { x = x, w = w, b = b })
    assert.tensor_near(gl.layer_norm(x, 8, w, b), r, 2e-5)
  end)

  it("passes gradcheck for x, weight and bias", function()
    local x = param(gl.randn{ 3, 2, 4 })
    local w, b = param(gl.randn{ 4 }), param(gl.randn{ 4 })
    check(function(t, wt, bt) return gl.layer_norm(t, 4, wt, bt) end, { x, w, b }, "layer_norm")
    local w2, b2 = param(gl.randn{ 2, 4 }), param(gl.randn{ 2, 4 })
    check(function(t, wt, bt) return gl.layer_norm(t, { 2, 4 }, wt, bt) end, { x, w2, b2 }, "layer_norm 2-d")
    check(function(t) return gl.layer_norm(t, 4) end, { x }, "layer_norm, no affine")
  end)

  it("module: parameters, printing, gradcheck and errors", function()
    local m = nn.LayerNorm(6)
    assert.equal("LayerNorm({6}, eps=1e-05, elementwise_affine=true)", tostring(m))
    assert.equal("LayerNorm({2, 3}, eps=0.001, elementwise_affine=false)",
                 tostring(nn.LayerNorm({ 2, 3 }, { eps = 1e-3, elementwise_affine = false })))
    assert.equal("LayerNorm({6}, eps=1e-05, elementwise_affine=true, bias=false)", tostring(nn.LayerNorm(6, { bias = false })))
    local names = {}
    for i, entry in ipairs(nn.Sequential{ nn.Linear(6, 6), m }:named_parameters()) do names[i] = entry[1] end
    assert.same({ "1.weight", "1.bias", "2.weight", "2.bias" }, names)
    gl.no_grad(function() m.weight:copy(gl.randn{ 6 }); m.bias:copy(gl.randn{ 6 }) end)
    local x = param(gl.randn{ 3, 6 })
    check(function(t) return m(t) end, { x, m.weight, m.bias }, "LayerNorm")
    assert.error_matches(function() m(gl.randn{ 3, 5 }) end, "LayerNorm", "{3, 5}", "{6}")
    assert.error_matches(function() gl.layer_norm(gl.randn{ 3, 5 }, 6) end,
                         "layer_norm: input shape {3, 5} does not end with normalized_shape {6}")
    assert.error_matches(function() gl.layer_norm(gl.randn{ 3, 5 }, 5, gl.ones{ 4 }) end,
                         "layer_norm: weight of shape {4} does not match normalized_shape {5}")
    assert.error_matches(function() gl.layer_norm(gl.randn{ 3, 5 }, 5, nil, nil, 0) end, "layer_norm: eps must be positive")
    assert.error_matches(function() gl.layer_norm(gl.randn{ 3, 5 }, 0) end, "layer_norm", "normalized_shape")
    assert.error_matches(function() nn.LayerNorm({}) end, "LayerNorm", "normalized_shape")
    assert.error_matches(function() nn.LayerNorm(4, { eps = -1 }) end, "LayerNorm", "eps")
    assert.same({ 3, 6 }, m(gl.randn{ 3, 6 }):shape())
  end)
end)

describe("group norm", function()
  before_each(function() gl.manual_seed(5) end)

  it("with groups = C equals instance norm (each (b, c) over H, W)", function()
    local x = gl.randn{ 2, 3, 4, 5 } * 2 + 1
    local y = gl.group_norm(x, 3)
    -- hand computation: each (b, c) plane on its own
    local t = x:totable()
    local expected = {}
    for b = 1, 2 do
      expected[b] = {}
      for c = 1, 3 do
        local plane, s, q = t[b][c], 0, 0
        for i = 1, 4 do for j = 1, 5 do s = s + plane[i][j] end end
        s = s / 20
        for i = 1, 4 do for j = 1, 5 do q = q + (plane[i][j] - s) ^ 2 end end
        local rstd = 1 / math.sqrt(q / 20 + 1e-5)
        expected[b][c] = {}
        for i = 1, 4 do
          expected[b][c][i] = {}
          for j = 1, 5 do expected[b][c][i][j] = (plane[i][j] - s) * rstd end
        end
      end
    end
    assert.tensor_near(y, expected, 2e-5)
    assert.tensor_near(nn.InstanceNorm(3)(x), expected, 2e-5)
    local inorm = nn.InstanceNorm(3, { affine = true })
    gl.no_grad(function() inorm.weight:copy(gl.tensor{ 2, 3, 4 }) end)
    assert.tensor_near(inorm(x), gl.group_norm(x, 3, gl.tensor{ 2, 3, 4 }, gl.zeros{ 3 }), 1e-6)
  end)

  it("with groups = 1 equals layer norm over (C, H, W), affine included", function()
    local x = gl.randn{ 3, 4, 2, 3 } * 3 - 1
    local w, b = gl.randn{ 4 }, gl.randn{ 4 }
    local w_full = w:view{ 4, 1, 1 }:expand{ 4, 2, 3 }:contiguous()
    local b_full = b:view{ 4, 1, 1 }:expand{ 4, 2, 3 }:contiguous()
    assert.tensor_near(gl.group_norm(x, 1, w, b), gl.layer_norm(x, { 4, 2, 3 }, w_full, b_full), 1e-6)
    assert.tensor_near(gl.group_norm(x, 1), gl.layer_norm(x, { 4, 2, 3 }), 1e-6)
  end)

  it("agrees with NumPy for 2 groups of 3 channels", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    local x, w, b = gl.randn{ 2, 6, 3, 3 }, gl.randn{ 6 }, gl.randn{ 6 }
    local r = helper.numpy([[
g = x.reshape(2, 2, -1).astype(np.float64)
n = ((g - g.mean(axis=-1, keepdims=True)) / np.sqrt(g.var(axis=-1, keepdims=True) + 1e-5)).reshape(2, 6, 3, 3)
result = n * w.reshape(1, 6, 1, 1) + b.reshape(1, 6, 1, 1)]], { x = x, w = w, b = b })
    assert.tensor_near(gl.group_norm(x, 2, w, b), r, 2e-5)
  end)

  it("passes gradcheck for x, weight and bias", function()
    local x = param(gl.randn{ 2, 4, 2, 3 })
    local w, b = param(gl.randn{ 4 }), param(gl.randn{ 4 })
    for _, groups in ipairs { 1, 2, 4 } do
      check(function(t, wt, bt) return gl.group_norm(t, groups, wt, bt) end, { x, w, b }, "group_norm " .. groups)
    end
    local x2 = param(gl.randn{ 3, 4 })
    check(function(t, wt, bt) return gl.group_norm(t, 2, wt, bt) end, { x2, w, b }, "group_norm (B, C)")
    local m = nn.GroupNorm(2, 4)
    gl.no_grad(function() m.weight:copy(gl.randn{ 4 }); m.bias:copy(gl.randn{ 4 }) end)
    check(function(t) return m(t) end, { x, m.weight, m.bias }, "GroupNorm")
    local inorm = nn.InstanceNorm(4, { affine = true })
    check(function(t) return inorm(t) end, { x, inorm.weight, inorm.bias }, "InstanceNorm")
  end)

  it("module: printing and clear errors", function()
    assert.equal("GroupNorm(2, 6, eps=1e-05, affine=true)", tostring(nn.GroupNorm(2, 6)))
    assert.equal("InstanceNorm(3, eps=1e-05, affine=false)", tostring(nn.InstanceNorm(3)))
    assert.same({}, nn.InstanceNorm(3):named_parameters())
    assert.error_matches(function() nn.GroupNorm(4, 6) end, "GroupNorm: 4 groups do not divide 6 channels")
    assert.error_matches(function() gl.group_norm(gl.randn{ 2, 6, 2 }, 4) end,
                         "group_norm: 4 groups do not divide 6 channels (input shape {2, 6, 2})")
    assert.error_matches(function() gl.group_norm(gl.randn{ 2, 6, 2 }, 0) end, "group_norm: groups must be positive")
    assert.error_matches(function() gl.group_norm(gl.randn{ 2, 6, 2 }, 2, gl.ones{ 5 }) end,
                         "group_norm: weight of shape {5} does not match 6 channels")
    assert.error_matches(function() gl.group_norm(gl.randn{ 2, 6 }, 2, nil, nil, 0) end, "group_norm: eps must be positive")
    assert.error_matches(function() nn.GroupNorm(2, 6)(gl.randn{ 2, 4, 3 }) end, "GroupNorm", "{2, 4, 3}", "expects 6")
    assert.error_matches(function() nn.InstanceNorm(3)(gl.randn{ 2, 3 }) end, "InstanceNorm", "{2, 3}")
    assert.same({ 2, 6, 3 }, nn.GroupNorm(3, 6)(gl.randn{ 2, 6, 3 }):shape())
  end)
end)

describe("RMS norm", function()
  before_each(function() gl.manual_seed(3) end)

  it("divides by the root mean square over the trailing dims, default eps = float32 epsilon", function()
    local x, w = gl.randn{ 3, 4 } * 2, gl.randn{ 4 }
    local t, wt = x:totable(), w:totable()
    local expected = {}
    for r = 1, 3 do
      local q = 0
      for j = 1, 4 do q = q + t[r][j] ^ 2 end
      local scale = 1 / math.sqrt(q / 4 + 2 ^ -23)
      expected[r] = {}
      for j = 1, 4 do expected[r][j] = t[r][j] * scale * wt[j] end
    end
    assert.tensor_near(gl.rms_norm(x, 4, w), expected, 2e-6)
    local m = nn.RMSNorm(4)
    gl.no_grad(function() m.weight:copy(w) end)
    assert.tensor_near(m(x), expected, 2e-6)
    assert.equal("RMSNorm({4}, eps=1.19209e-07, elementwise_affine=true)", tostring(m))
    assert.equal("RMSNorm({2, 4}, eps=1e-06, elementwise_affine=false)",
                 tostring(nn.RMSNorm({ 2, 4 }, { eps = 1e-6, elementwise_affine = false })))
    -- the mean is not removed: a constant row stays constant, at ±1
    assert.tensor_near(gl.rms_norm(gl.full({ 2, 3 }, -5), 3), { { -1, -1, -1 }, { -1, -1, -1 } }, 1e-6)
  end)

  it("agrees with NumPy over two trailing dims", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    local x, w = gl.randn{ 2, 3, 4 }, gl.randn{ 3, 4 }
    local r = helper.numpy("result = x / np.sqrt((x.astype(np.float64) ** 2).mean(axis=(1, 2), keepdims=True) + 1e-6) * w",
                           { x = x, w = w })
    assert.tensor_near(gl.rms_norm(x, { 3, 4 }, w, 1e-6), r, 2e-5)
  end)

  it("passes gradcheck for x and weight", function()
    local x = param(gl.randn{ 3, 5 })
    local w = param(gl.randn{ 5 })
    check(function(t, wt) return gl.rms_norm(t, 5, wt) end, { x, w }, "rms_norm")
    check(function(t) return gl.rms_norm(t, 5) end, { x }, "rms_norm, no weight")
    local x3 = param(gl.randn{ 2, 2, 3 })
    local w3 = param(gl.randn{ 2, 3 })
    check(function(t, wt) return gl.rms_norm(t, { 2, 3 }, wt) end, { x3, w3 }, "rms_norm 2-d")
    local m = nn.RMSNorm(3)
    check(function(t) return m(t) end, { x3, m.weight }, "RMSNorm")
  end)

  it("raises clear errors", function()
    assert.error_matches(function() nn.RMSNorm(4)(gl.randn{ 2, 5 }) end, "RMSNorm", "{2, 5}", "{4}")
    assert.error_matches(function() gl.rms_norm(gl.randn{ 2, 5 }, 5, gl.ones{ 4 }) end,
                         "rms_norm: weight of shape {4} does not match normalized_shape {5}")
    assert.error_matches(function() gl.rms_norm(gl.randn{ 2, 5 }, 5, nil, -1e-6) end, "rms_norm: eps must be positive")
    assert.error_matches(function() nn.RMSNorm(4, { eps = 0 }) end, "RMSNorm", "eps")
    assert.error_matches(function() gl.rms_norm(gl.randn{ 2, 5 }, "5") end, "rms_norm", "normalized_shape")
  end)
end)

-- The naive reference: each normalizer written with primitive tensor ops, whose autograd
-- gives the gradients the fused kernels must reproduce.
describe("fused kernels against the formula composed from primitive ops", function()
  before_each(function() gl.manual_seed(17) end)

  -- Runs fn on fresh leaf copies of inputs, backpropagates a fixed weighting of the
  -- output, and returns the output and the gradients.
  local function run(fn, inputs, weights)
    local leaves = {}
    for i, t in ipairs(inputs) do leaves[i] = t:clone():requires_grad(true) end
    local y = fn(table.unpack(leaves))
    local loss = (y * weights):sum()
    loss:backward()
    local grads = {}
    for i, t in ipairs(leaves) do grads[i] = t.grad end
    return y, grads
  end

  local function same(fused, composed, inputs, out_shape, tol)
    local weights = gl.randn(out_shape)
    local y1, g1 = run(fused, inputs, weights)
    local y2, g2 = run(composed, inputs, weights)
    assert.tensor_near(y1, y2, tol)
    for i = 1, #inputs do assert.tensor_near(g1[i], g2[i], tol) end
  end

  local function mean_over(t, dims)
    for _, d in ipairs(dims) do t = t:mean(d, true) end
    return t
  end

  it("batch norm, train and evaluate", function()
    for _, shape in ipairs { { 12, 5 }, { 4, 3, 3, 2 } } do
      local C = shape[2]
      local dims = #shape == 2 and { 1 } or { 1, 3, 4 }
      local view = #shape == 2 and { 1, C } or { 1, C, 1, 1 }
      local x, w, b = gl.randn(shape) * 2 + 1, gl.randn{ C }, gl.randn{ C }
      same(function(t, wt, bt) return gl.batch_norm(t, nil, nil, wt, bt, true) end,
           function(t, wt, bt)
             local m = mean_over(t, dims)
             local v = mean_over((t - m) * (t - m), dims)
             return (t - m) / (v + 1e-5):sqrt() * wt:view(view) + bt:view(view)
           end, { x, w, b }, shape, 2e-5)
      local rm, rv = gl.randn{ C }, gl.rand{ C } + 0.5
      same(function(t, wt, bt) return gl.batch_norm(t, rm, rv, wt, bt, false) end,
           function(t, wt, bt) return (t - rm:view(view)) / (rv:view(view) + 1e-5):sqrt() * wt:view(view) + bt:view(view) end,
           { x, w, b }, shape, 2e-5)
    end
  end)

  it("layer norm, group norm and RMS norm", function()
    local x, w, b = gl.randn{ 3, 4, 5 } * 2 - 1, gl.randn{ 5 }, gl.randn{ 5 }
    same(function(t, wt, bt) return gl.layer_norm(t, 5, wt, bt) end,
         function(t, wt, bt)
           local m = t:mean(3, true)
           local v = ((t - m) * (t - m)):mean(3, true)
           return (t - m) / (v + 1e-5):sqrt() * wt + bt
         end, { x, w, b }, { 3, 4, 5 }, 2e-5)
    same(function(t, wt) return gl.rms_norm(t, 5, wt, 1e-6) end,
         function(t, wt) return t / ((t * t):mean(3, true) + 1e-6):sqrt() * wt end, { x, w }, { 3, 4, 5 }, 2e-5)
    local xg, wg, bg = gl.randn{ 2, 6, 2, 2 } * 3, gl.randn{ 6 }, gl.randn{ 6 }
    same(function(t, wt, bt) return gl.group_norm(t, 3, wt, bt) end,
         function(t, wt, bt)
           local g = t:reshape{ 2, 3, 8 }
           local m = g:mean(3, true)
           local v = ((g - m) * (g - m)):mean(3, true)
           local n = ((g - m) / (v + 1e-5):sqrt()):reshape{ 2, 6, 2, 2 }
           return n * wt:view{ 1, 6, 1, 1 } + bt:view{ 1, 6, 1, 1 }
         end, { xg, wg, bg }, { 2, 6, 2, 2 }, 2e-5)
  end)
end)

describe("normalizers in a network", function()
  it("list PyTorch's names for parameters and buffers", function()
    local m = nn.Sequential{ nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm(8), nn.Linear(8, 2), nn.LayerNorm(2) }
    local names = {}
    for i, entry in ipairs(m:named_parameters()) do names[i] = entry[1] end
    assert.same({ "1.weight", "1.bias", "3.weight", "3.bias", "4.weight", "4.bias", "5.weight", "5.bias" }, names)
    local buffers = {}
    for i, entry in ipairs(m:named_buffers()) do buffers[i] = entry[1] end
    assert.same({ "3.running_mean", "3.running_var", "3.num_batches_tracked" }, buffers)
    assert.equal([[
Sequential(
  (1): Linear(in_features=4, out_features=8, bias=true)
  (2): ReLU()
  (3): BatchNorm(8, eps=1e-05, momentum=0.1, affine=true)
  (4): Linear(in_features=8, out_features=2, bias=true)
  (5): LayerNorm({2}, eps=1e-05, elementwise_affine=true)
)]], tostring(m))
  end)

  it("BatchNorm keeps the first-layer gradient of a deep sigmoid MLP alive at initialization", function()
    gl.manual_seed(21)
    local function mlp(norm)
      local layers = {}
      for i = 1, 12 do
        layers[#layers + 1] = nn.Linear(16, 16)
        if norm then layers[#layers + 1] = nn.BatchNorm(16) end
        layers[#layers + 1] = nn.Sigmoid()
      end
      layers[#layers + 1] = nn.Linear(16, 1)
      return nn.Sequential(layers)
    end
    local x = gl.randn{ 64, 16 }
    local plain, normed = mlp(false), mlp(true)
    plain(x):sum():backward()
    normed(x):sum():backward()
    local g_plain = plain:get(1).weight.grad:norm():item()
    local g_norm = normed:get(1).weight.grad:norm():item()
    assert.is_true(g_norm > 10 * g_plain, ("with BatchNorm %g, without %g"):format(g_norm, g_plain))
  end)
end)
