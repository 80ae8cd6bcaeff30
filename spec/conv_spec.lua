-- spec/conv_spec.lua — engine/conv.c through gl.conv2d and nn.Conv2d (bindings/gradlab/nn_conv.lua):
-- the im2col + sgemm forward against the naive C reference and against NumPy, values and all
-- three gradients against PyTorch when it is installed, gradcheck on every code path (strided
-- col2im, stride-1 transposed convolution, pointwise, groups, dilation, unbatched), shapes,
-- clear errors, PyTorch's layout and init, and a small conv net learning bars and stripes.
local gl = require "gradlab"
local helper = require "helper"
local nn = gl.nn

local function check(fn, inputs, what, tol)
  local ok, err = gl.gradcheck(fn, inputs, { tol = tol or 3e-3 })
  assert.is_true(ok, (what or "gradcheck") .. ": max error " .. tostring(err))
end

local function shape_text(t) return "{" .. table.concat(t:shape(), ", ") .. "}" end

-- Each case: input shape, weight shape, options.  Together they reach every path of conv.c:
-- stride 1 (dx as a transposed convolution), stride > 1 and padding > d (k - 1) (dx by col2im),
-- 1x1 (no im2col), groups and depthwise, dilation, asymmetric pairs, unbatched (C, H, W).
local cases = {
  { "3x3, no padding", { 2, 3, 7, 9 }, { 4, 3, 3, 3 }, {} },
  { "3x3, padding 1", { 2, 3, 6, 5 }, { 4, 3, 3, 3 }, { padding = 1 } },
  { "3x2 kernel, stride 2, padding 1", { 2, 4, 8, 7 }, { 5, 4, 3, 2 }, { stride = 2, padding = 1 } },
  { "stride {2, 1}, padding {1, 2}, dilation {2, 1}, 2 groups", { 1, 6, 9, 7 }, { 4, 3, 2, 3 },
    { stride = { 2, 1 }, padding = { 1, 2 }, dilation = { 2, 1 }, groups = 2 } },
  { "dilation 2, padding 2", { 2, 2, 7, 7 }, { 3, 2, 3, 3 }, { padding = 2, dilation = 2 } },
  { "padding 3 > k - 1 (col2im at stride 1)", { 1, 2, 4, 5 }, { 3, 2, 3, 3 }, { padding = 3 } },
  { "1x1", { 3, 4, 5, 5 }, { 6, 4, 1, 1 }, {} },
  { "1x1, stride 2", { 2, 4, 5, 6 }, { 3, 4, 1, 1 }, { stride = 2 } },
  { "1x1, 2 groups", { 2, 4, 3, 3 }, { 6, 2, 1, 1 }, { groups = 2 } },
  { "depthwise 3x3, multiplier 2", { 2, 3, 6, 6 }, { 6, 1, 3, 3 }, { padding = 1, groups = 3 } },
  { "unbatched (C, H, W)", { 3, 6, 5 }, { 2, 3, 3, 3 }, { padding = 1 } },
  { "kernel as large as the padded input", { 2, 2, 3, 4 }, { 3, 2, 5, 6 }, { padding = 1 } },
}

describe("conv2d", function()
  before_each(function() gl.manual_seed(11) end)

  it("matches the naive reference kernel on every path", function()
    for _, case in ipairs(cases) do
      local name, xs, ws, options = table.unpack(case)
      local x, w, b = gl.randn(xs), gl.randn(ws), gl.randn{ ws[1] }
      local y = gl.conv2d(x, w, b, options)
      assert.tensor_near(y, gl._conv2d_reference(x, w, b, options), 1e-5)
      assert.tensor_near(gl.conv2d(x, w, options), gl._conv2d_reference(x, w, nil, options), 1e-5)
      assert.equal(#xs, y:dim(), name)
    end
  end)

  it("computes the output size as PyTorch: (H + 2p - d (k - 1) - 1) / s + 1", function()
    local y = gl.conv2d(gl.randn{ 2, 3, 11, 10 }, gl.randn{ 5, 3, 3, 2 }, nil,
                        { stride = { 2, 3 }, padding = { 1, 2 }, dilation = { 2, 1 } })
    -- H: (11 + 2 - 4 - 1) // 2 + 1 = 5;  W: (10 + 4 - 1 - 1) // 3 + 1 = 5
    assert.same({ 2, 5, 5, 5 }, y:shape())
    assert.same({ 4, 6, 8 }, gl.conv2d(gl.randn{ 3, 8, 10 }, gl.randn{ 4, 3, 3, 3 }):shape())
    assert.same({ 0, 4, 6, 8 }, gl.conv2d(gl.randn{ 0, 3, 8, 10 }, gl.randn{ 4, 3, 3, 3 }):shape())
  end)

  it("agrees with NumPy", function()
    if not helper.has_numpy() then pending("NumPy not installed") return end
    local code = [==[
def conv(x, w, b, stride, pad, dil, groups):
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    OH = (H + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    OW = (W + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((B, O, OH, OW)) + b.astype(np.float64)[None, :, None, None]
    Og = O // groups
    for g in range(groups):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dil[0]:i * dil[0] + stride[0] * (OH - 1) + 1:stride[0],
                           j * dil[1]:j * dil[1] + stride[1] * (OW - 1) + 1:stride[1]]
                y[:, g * Og:(g + 1) * Og] += np.einsum('bchw,oc->bohw', patch, w[g * Og:(g + 1) * Og, :, i, j])
    return y
result = [conv(x1, w1, b1, (1, 1), (1, 1), (1, 1), 1), conv(x2, w2, b2, (2, 1), (1, 2), (2, 1), 2)]
]==]
    local x1, w1, b1 = gl.randn{ 2, 3, 6, 5 }, gl.randn{ 4, 3, 3, 3 }, gl.randn{ 4 }
    local x2, w2, b2 = gl.randn{ 1, 6, 9, 7 }, gl.randn{ 4, 3, 2, 3 }, gl.randn{ 4 }
    local r = helper.numpy(code, { x1 = x1, w1 = w1, b1 = b1, x2 = x2, w2 = w2, b2 = b2 })
    assert.tensor_near(gl.conv2d(x1, w1, b1, { padding = 1 }), r[1], 1e-5)
    assert.tensor_near(gl.conv2d(x2, w2, b2, { stride = { 2, 1 }, padding = { 1, 2 }, dilation = { 2, 1 }, groups = 2 }),
                       r[2], 1e-5)
  end)

  it("agrees with PyTorch on values and on the gradients of x, weight and bias", function()
    if os.execute(helper.python .. " -c 'import torch' >/dev/null 2>&1") ~= true then
      pending("PyTorch not installed (Debian package python3-torch)")
      return
    end
    local inputs, lines = {}, { "import torch", "import torch.nn.functional as F", "result = []" }
    local tensors = {}
    for i, case in ipairs(cases) do
      local _, xs, ws, options = table.unpack(case)
      local x, w, b = gl.randn(xs), gl.randn(ws), gl.randn{ ws[1] }
      local y = gl.conv2d(x, w, b, options)
      local g = gl.randn(y:shape())
      inputs["x" .. i], inputs["w" .. i], inputs["b" .. i], inputs["g" .. i] = x, w, b, g
      local function pair(v, default)
        v = v or default
        return type(v) == "table" and ("(%d, %d)"):format(v[1], v[2]) or ("(%d, %d)"):format(v, v)
      end
      lines[#lines + 1] = ([[
xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x%d, w%d, b%d))
y = F.conv2d(xt, wt, bt, %s, %s, %s, %d)
y.backward(torch.tensor(g%d))
result += [y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]
]]):format(i, i, i, pair(options.stride, 1), pair(options.padding, 0), pair(options.dilation, 1),
           options.groups or 1, i, i)
      tensors[i] = { x = x, w = w, b = b, g = g }
    end
    local r = helper.numpy(table.concat(lines, "\n"), inputs)
    for i, case in ipairs(cases) do
      local t, options = tensors[i], case[4]
      local x, w, b = t.x:clone():requires_grad(true), t.w:clone():requires_grad(true), t.b:clone():requires_grad(true)
      local y = gl.conv2d(x, w, b, options)
      y:backward(t.g)
      assert.tensor_near(y, r[4 * i - 3], 1e-5)
      assert.tensor_near(x.grad, r[4 * i - 2], 1e-5)
      assert.tensor_near(w.grad, r[4 * i - 1], 1e-5)
      assert.tensor_near(b.grad, r[4 * i], 1e-5)
    end
  end)

  it("passes gradcheck for x, weight and bias on every path", function()
    for _, case in ipairs(cases) do
      local name, xs, ws, options = table.unpack(case)
      local x = gl.randn(xs):requires_grad(true)
      local w = gl.randn(ws):requires_grad(true)
      local b = gl.randn{ ws[1] }:requires_grad(true)
      check(function(x_, w_, b_) return gl.conv2d(x_, w_, b_, options) end, { x, w, b }, name)
    end
  end)

  it("computes only the gradients asked for, and accumulates over repeated use", function()
    local x, w = gl.randn{ 2, 3, 5, 5 }, gl.randn{ 4, 3, 3, 3 }:requires_grad(true)
    local y = gl.conv2d(x, w, nil, { padding = 1 })
    y:sum():backward()
    assert.is_nil(x.grad)
    local once = w.grad:clone()
    w:zero_grad()
    local twice = gl.conv2d(x, w, nil, { padding = 1 }) + gl.conv2d(x, w, nil, { padding = 1 })
    twice:sum():backward()
    assert.tensor_near(w.grad, once * 2, 1e-5)
    -- Only x: the weight is a constant.
    local xg = gl.randn{ 2, 3, 5, 5 }:requires_grad(true)
    gl.conv2d(xg, gl.randn{ 4, 3, 3, 3 }, gl.randn{ 4 }):sum():backward()
    assert.same({ 2, 3, 5, 5 }, xg.grad:shape())
  end)

  it("reads non-contiguous inputs and weights", function()
    local x = gl.randn{ 2, 3, 7, 6 }:transpose(3, 4)   -- (2, 3, 6, 7) view
    local w = gl.randn{ 4, 3, 3, 3 }:transpose(3, 4)
    local b = gl.randn{ 8 }:narrow(1, 2, 4)
    assert.tensor_near(gl.conv2d(x, w, b, { padding = 1 }),
                       gl.conv2d(x:contiguous(), w:contiguous(), b:contiguous(), { padding = 1 }), 1e-6)
    check(function(a) return gl.conv2d(a:transpose(3, 4), w, b) end, { gl.randn{ 1, 3, 5, 4 }:requires_grad(true) })
  end)

  it("cuts big images into blocks of output rows without changing the result", function()
    -- 64 channels x 9 taps x 136 columns = 78k floats per output row, so the engine's 1M-float
    -- blocks hold ~13 of the 128 rows: the forward and both gradients go block by block.
    local x = gl.randn{ 1, 64, 128, 136 }:requires_grad(true)
    local w = gl.randn{ 2, 64, 3, 3 }:requires_grad(true)
    local y = gl.conv2d(x, w, nil, { padding = 1 })
    assert.tensor_near(y, gl._conv2d_reference(x, w, nil, { padding = 1 }), 1e-4)
    local g = gl.randn(y:shape())
    y:backward(g)
    -- dW[o, c, i, j] = sum over positions of g[o] * shifted x[c]; checked on one tap by a dot product.
    local tap = (g:select(2, 1) * gl.conv2d(x:detach():narrow(2, 5, 1), gl.ones{ 1, 1, 1, 1 }):select(2, 1)):sum()
    assert.near(tap:item(), w.grad:get(1, 5, 2, 2), 1e-3 * math.abs(tap:item()) + 1e-3)
    -- dx by the adjoint identity <conv(x), g> = <x, dx> (no bias).
    assert.near((y:detach() * g):sum():item(), (x:detach() * x.grad):sum():item(), 1e-2)
  end)

  it("splits big batches over the threads: same values as one thread, same bits on a rerun", function()
    -- 8 x 32 x 1024 x 144 multiply-adds: enough work for the engine to split the batch
    -- between worker threads (each with single-threaded BLAS) when it has 2 threads or more.
    local threads = gl.get_num_threads()
    local function run(options, n)
      gl.set_num_threads(n)
      gl.manual_seed(9)
      local x = gl.randn{ 8, 16, 32, 32 }:requires_grad(true)
      local w = gl.randn{ 32, 16, 3, 3 }:requires_grad(true)
      local b = gl.randn{ 32 }:requires_grad(true)
      local y = gl.conv2d(x, w, b, options)
      y:backward(gl.randn(y:shape()))
      gl.set_num_threads(threads)
      return y, x.grad, w.grad, b.grad, x, w, b
    end
    for _, options in ipairs{ { padding = 1 }, { stride = 2, padding = 1 } } do
      local y1, dx1, dw1, db1, x, w, b = run(options, 1)
      local y2, dx2, dw2, db2 = run(options, 2)
      local y3, dx3, dw3, db3 = run(options, 2)
      -- 144-term float sums of values ~1: errors ~1e-5 wherever terms cancel, so against the scale.
      local reference = gl._conv2d_reference(x, w, b, options)
      local err = (y2 - reference):abs():max():item() / reference:abs():max():item()
      assert.is_true(err < 1e-6, "relative difference from the reference " .. err)
      -- Float sums in another order: compare against the scale of each result.
      for _, pair in ipairs{ { y2, y1 }, { dx2, dx1 }, { dw2, dw1 }, { db2, db1 } } do
        local err = (pair[1] - pair[2]):abs():max():item() / pair[2]:abs():max():item()
        assert.is_true(err < 1e-6, "relative difference " .. err)
      end
      for _, pair in ipairs{ { y2, y3 }, { dx2, dx3 }, { dw2, dw3 }, { db2, db3 } } do
        assert.tensor_near(pair[1], pair[2], 0)
      end
    end
  end)

  it("gives the same values and gradients by the direct kernels as by im2col + sgemm", function()
    -- algorithm = "auto" takes engine/conv_direct.c where the CPU has AVX-512; "im2col" never
    -- does.  Sizes with ragged 16-wide row segments (W 1, 17, 33),
    -- channel counts off the register blocks (7 -> 11), kernels whose width is not 3, a vertical
    -- stride, dilation, groups, padding wider than the kernel, 1x1 and unbatched inputs.
    local direct_cases = {
      { { 3, 7, 9, 17 }, { 11, 7, 3, 3 }, { padding = 1 } },
      { { 2, 5, 6, 33 }, { 9, 5, 3, 3 }, { padding = { 0, 2 } } },
      { { 2, 4, 5, 1 }, { 3, 4, 3, 1 }, { padding = { 1, 0 } } },
      { { 2, 6, 11, 19 }, { 8, 3, 5, 2 }, { stride = { 2, 1 }, padding = { 2, 1 }, dilation = { 1, 2 }, groups = 2 } },
      { { 2, 3, 8, 20 }, { 5, 3, 3, 3 }, { padding = 4, dilation = 2 } },
      { { 2, 13, 4, 18 }, { 17, 13, 1, 1 }, {} },
      { { 6, 7, 16 }, { 4, 6, 3, 3 }, { padding = 1 } },
      { { 4, 16, 16, 16 }, { 32, 16, 3, 3 }, { padding = 1 } },
      -- Horizontal strides: x split into column phases (forward, dW), dx phase by phase.
      { { 3, 5, 9, 33 }, { 7, 5, 3, 3 }, { stride = 2, padding = 1 } },
      { { 2, 4, 7, 7 }, { 9, 4, 3, 3 }, { stride = 2 } },
      { { 2, 3, 11, 35 }, { 5, 3, 3, 3 }, { stride = { 1, 2 }, padding = { 1, 2 }, dilation = { 1, 2 } } },
      { { 2, 6, 10, 13 }, { 4, 3, 3, 2 }, { stride = { 2, 3 }, padding = { 1, 0 }, groups = 2 } },
      { { 2, 3, 8, 20 }, { 5, 3, 3, 3 }, { stride = 2, padding = 4, dilation = 2 } },
      { { 2, 4, 6, 9 }, { 3, 4, 1, 1 }, { stride = 2 } },
      { { 1, 2, 5, 40 }, { 3, 2, 2, 5 }, { stride = { 3, 4 }, padding = { 0, 3 } } },
      { { 4, 16, 32, 32 }, { 32, 16, 3, 3 }, { stride = 2, padding = 1 } },
      { { 7, 9, 6 }, { 4, 7, 3, 3 }, { stride = 2, padding = 1 } },
      -- Stride 1 with padding wider than d (k - 1): dx by the phase kernel (one phase).
      { { 2, 3, 5, 6 }, { 4, 3, 3, 3 }, { padding = 3 } },
    }
    for n, case in ipairs(direct_cases) do
      local xs, ws, options = table.unpack(case)
      local x0, w0, b0 = gl.randn(xs), gl.randn(ws), gl.randn{ ws[1] }
      local results = {}
      for _, algorithm in ipairs{ "auto", "im2col" } do
        local o = { algorithm = algorithm }
        for k, v in pairs(options) do o[k] = v end
        local x, w, b = x0:clone():requires_grad(true), w0:clone():requires_grad(true), b0:clone():requires_grad(true)
        local y = gl.conv2d(x, w, b, o)
        gl.manual_seed(n)
        y:backward(gl.randn(y:shape()))
        results[algorithm] = { y, x.grad, w.grad, b.grad }
      end
      local reference = gl._conv2d_reference(x0, w0, b0, options)
      assert.tensor_near(results.auto[1], reference, 1e-5)
      for k, what in ipairs{ "y", "dx", "dw", "db" } do
        local a, b = results.auto[k], results.im2col[k]
        local err = (a - b):abs():max():item() / (b:abs():max():item() + 1e-30)
        assert.is_true(err < 1e-5, ("case %d, %s: relative difference %g"):format(n, what, err))
      end
    end
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 1, 3, 3 }, gl.randn{ 1, 1, 1, 1 }, { algorithm = "fft" }) end,
                         'conv2d: algorithm must be "auto" or "im2col", got fft')
  end)

  it("gives the same bits for 1 and 2 threads on the strided direct path (y, dx), and on a rerun (dW)", function()
    local threads = gl.get_num_threads()
    local function run(n)
      gl.set_num_threads(n)
      gl.manual_seed(5)
      local x = gl.randn{ 16, 16, 33, 31 }:requires_grad(true)  -- 2^24 multiply-adds: 2 parts
      local w = gl.randn{ 32, 16, 3, 3 }:requires_grad(true)
      local y = gl.conv2d(x, w, nil, { stride = 2, padding = 1 })
      y:backward(gl.randn(y:shape()))
      gl.set_num_threads(threads)
      return y, x.grad, w.grad
    end
    local y1, dx1, dw1 = run(1)
    local y2, dx2, dw2 = run(2)
    local y3, dx3, dw3 = run(2)
    assert.tensor_near(y1, y2, 0)
    assert.tensor_near(dx1, dx2, 0)
    assert.tensor_near(dw2, dw3, 0)
    assert.is_true((dw1 - dw2):abs():max():item() <= 1e-5 * dw1:abs():max():item())
    -- An empty batch takes no scratch and gives zero gradients.
    local x = gl.randn{ 0, 16, 9, 9 }:requires_grad(true)
    local w = gl.randn{ 8, 16, 3, 3 }:requires_grad(true)
    local y = gl.conv2d(x, w, nil, { stride = 2, padding = 1 })
    assert.same({ 0, 8, 5, 5 }, y:shape())
    y:sum():backward()
    assert.same({ 0, 16, 9, 9 }, x.grad:shape())
    assert.equal(0, w.grad:abs():max():item())
  end)

  it("passes gradcheck through the strided direct kernels", function()
    local x = gl.randn{ 2, 3, 7, 9 }:requires_grad(true)
    local w = gl.randn{ 4, 3, 3, 3 }:requires_grad(true)
    local b = gl.randn{ 4 }:requires_grad(true)
    check(function(x_, w_, b_) return gl.conv2d(x_, w_, b_, { stride = 2, padding = 1 }) end, { x, w, b },
          "direct, stride 2")
    check(function(x_, w_, b_) return gl.conv2d(x_, w_, b_, { stride = { 2, 3 }, padding = { 2, 1 }, dilation = 2 }) end,
          { x, w, b }, "direct, stride (2, 3), dilation 2")
  end)

  it("passes gradcheck through the direct kernels on ragged sizes", function()
    local x = gl.randn{ 2, 3, 5, 18 }:requires_grad(true)
    local w = gl.randn{ 5, 3, 3, 2 }:requires_grad(true)
    local b = gl.randn{ 5 }:requires_grad(true)
    check(function(x_, w_, b_) return gl.conv2d(x_, w_, b_, { padding = { 1, 2 }, dilation = { 1, 2 } }) end,
          { x, w, b }, "direct, ragged")
  end)

  it("raises clear errors naming the function, the argument and both shapes", function()
    local x, w = gl.randn{ 2, 3, 8, 8 }, gl.randn{ 8, 4, 3, 3 }
    assert.error_matches(function() gl.conv2d(x, w) end,
                         "conv2d: input has 3 channels, weight expects 4 (input shape {2, 3, 8, 8}, weight shape {8, 4, 3, 3})")
    assert.error_matches(function() gl.conv2d(gl.randn{ 2, 6, 8, 8 }, gl.randn{ 8, 2, 3, 3 }, { groups = 2 }) end,
                         "input has 6 channels, weight expects 4", "2 per group x 2 groups", "{2, 6, 8, 8}", "{8, 2, 3, 3}")
    assert.error_matches(function() gl.conv2d(gl.randn{ 2, 6, 8, 8 }, gl.randn{ 8, 2, 3, 3 }, { groups = 3 }) end,
                         "conv2d: weight has 8 output channels, which groups = 3 does not divide", "{8, 2, 3, 3}")
    assert.error_matches(function() gl.conv2d(gl.randn{ 2, 4, 8, 8 }, w, gl.randn{ 5 }) end,
                         "conv2d: bias of shape {5} does not match 8 output channels", "{8, 4, 3, 3}")
    assert.error_matches(function() gl.conv2d(gl.randn{ 2, 4, 8, 8 }, gl.randn{ 8, 4, 3 }) end,
                         "conv2d: weight must be 4-d", "{8, 4, 3}")
    assert.error_matches(function() gl.conv2d(gl.randn{ 4, 8 }, w) end,
                         "conv2d: input must be (B, C, H, W) or (C, H, W), got shape {4, 8}")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 2, 9 }, w) end,
                         "conv2d: input too small", "2x9", "extent 3x3", "{1, 4, 2, 9}", "{8, 4, 3, 3}")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 5, 5 }, w, nil, { dilation = 3 }) end,
                         "conv2d: input too small", "extent 7x7", "dilation (3, 3)")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, nil, { stride = { 1, 0 } }) end,
                         "conv2d: stride must be positive, got (1, 0)")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, nil, { padding = -1 }) end,
                         "conv2d: padding must be non-negative, got (-1, -1)")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, nil, { dilation = 0 }) end,
                         "conv2d: dilation must be positive")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, nil, { groups = 0 }) end,
                         "conv2d: groups must be positive, got 0")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, nil, { stride = 1.5 }) end,
                         "conv2d: stride must be an integer or a pair {h, w}", "1.5")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, nil, { padding = { 1, 2, 3 } }) end,
                         "conv2d: padding must be an integer or a pair {h, w}, got a table of 3 values")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, nil, { strides = 2 }) end,
                         "conv2d: unknown option 'strides'")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, "b") end, "bad argument #3", "bias")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, w, nil, 2) end, "bad argument #4", "options")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }) end, "bad argument #2")
    assert.error_matches(function() gl.conv2d(gl.randn{ 1, 4, 8, 8 }, gl.randn{ 0, 4, 3, 3 }) end,
                         "conv2d: weight shape {0, 4, 3, 3} has an empty dimension")
    -- The session keeps working.
    assert.same({ 2, 8, 6, 6 }, gl.conv2d(gl.randn{ 2, 4, 8, 8 }, w):shape())
  end)

  it("frees what it allocated on error paths", function()
    collectgarbage()
    collectgarbage()
    local before = gl.memory()
    for _ = 1, 50 do
      pcall(gl.conv2d, gl.randn{ 2, 3, 8, 8 }, gl.randn{ 8, 4, 3, 3 })
      pcall(gl.conv2d, gl.randn{ 2, 4, 2, 2 }, gl.randn{ 8, 4, 3, 3 })
    end
    collectgarbage()
    collectgarbage()
    assert.equal(before, gl.memory())
  end)
end)

describe("nn.Conv2d", function()
  before_each(function() gl.manual_seed(5) end)

  it("has PyTorch's parameter names, layout and default init bounds", function()
    local m = nn.Conv2d(6, 8, { 3, 2 }, { groups = 2 })
    local names, shapes = {}, {}
    for i, entry in ipairs(m:named_parameters()) do
      names[i], shapes[i] = entry[1], table.concat(entry[2]:shape(), "x")
    end
    assert.same({ "weight", "bias" }, names)
    assert.same({ "8x3x3x2", "8" }, shapes)
    -- fan_in = in / groups * kh * kw = 3 * 3 * 2 = 18: U(-1/sqrt(18), 1/sqrt(18)) for both.
    local big = nn.Conv2d(64, 64, 3)
    local bound = 1 / math.sqrt(64 * 9)
    local wmax, bmax = big.weight:abs():max():item(), big.bias:abs():max():item()
    assert.is_true(wmax <= bound and wmax > 0.99 * bound, "weight bound " .. wmax)
    assert.is_true(bmax <= bound and bmax > 0.8 * bound, "bias bound " .. bmax)
    assert.near(0, big.weight:mean():item(), bound / 20)
    -- Variance of U(-a, a) is a^2 / 3.
    assert.near(bound ^ 2 / 3, (big.weight * big.weight):mean():item(), bound ^ 2 / 30)
  end)

  it("takes init, bias_init and bias = false", function()
    local m = nn.Conv2d(2, 3, 3, { init = "zeros", bias_init = 0.5 })
    assert.tensor_near(m.weight, gl.zeros{ 3, 2, 3, 3 })
    assert.tensor_near(m.bias, { 0.5, 0.5, 0.5 })
    local n = nn.Conv2d(2, 3, 3, { bias = false, init = function(t) t:fill(2) end })
    assert.is_nil(n.bias)
    assert.equal(1, #n:parameters())
    assert.tensor_near(n.weight:max(), 2)
    local he = nn.Conv2d(16, 32, 3, { init = "he_normal" })
    -- he_normal: std = sqrt(2 / fan_in), fan_in = 16 * 9
    assert.near(math.sqrt(2 / 144), math.sqrt((he.weight * he.weight):mean():item()), 0.01)
  end)

  it("runs the functional op with its options and prints like PyTorch", function()
    local m = nn.Conv2d(3, 16, 3, { padding = 1 })
    assert.equal("Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))", tostring(m))
    assert.equal("Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 1), dilation=(2, 2), groups=2, bias=false)",
                 tostring(nn.Conv2d(4, 8, { 3, 5 }, { stride = { 2, 1 }, dilation = 2, groups = 2, bias = false })))
    assert.equal("Conv2d(1, 1, kernel_size=(1, 1), stride=(1, 1))", tostring(nn.Conv2d(1, 1, 1)))
    local x = gl.randn{ 2, 3, 8, 8 }
    assert.tensor_near(m(x), gl.conv2d(x, m.weight, m.bias, { padding = 1 }))
    local s = nn.Conv2d(4, 6, 3, { stride = 2, padding = { 1, 0 }, dilation = { 1, 2 }, groups = 2 })
    local xs = gl.randn{ 1, 4, 9, 9 }
    assert.tensor_near(s(xs), gl.conv2d(xs, s.weight, s.bias, { stride = 2, padding = { 1, 0 }, dilation = { 1, 2 }, groups = 2 }))
    check(function(a) return m(a) end, { gl.randn{ 1, 3, 4, 4 }:requires_grad(true) }, "module")
  end)

  it("raises clear errors from the constructor and on wrong inputs", function()
    assert.error_matches(function() nn.Conv2d(3, 4) end, "Conv2d: bad argument #3", "kernel_size")
    assert.error_matches(function() nn.Conv2d(0, 4, 3) end, "Conv2d: bad argument #1", "in_channels must be positive")
    assert.error_matches(function() nn.Conv2d(3, 4.5, 3) end, "Conv2d: bad argument #2", "out_channels must be an integer")
    assert.error_matches(function() nn.Conv2d(3, 4, { 3, 0 }) end, "Conv2d: bad argument #3", "kernel_size must be positive")
    assert.error_matches(function() nn.Conv2d(3, 4, 3, { groups = 2 }) end, "Conv2d: in_channels (3) must be divisible by groups (2)")
    assert.error_matches(function() nn.Conv2d(4, 3, 3, { groups = 2 }) end, "Conv2d: out_channels (3) must be divisible by groups (2)")
    assert.error_matches(function() nn.Conv2d(3, 4, 3, { stride = 0 }) end, "Conv2d", "stride must be positive")
    assert.error_matches(function() nn.Conv2d(3, 4, 3, { padding = -1 }) end, "Conv2d", "padding must be non-negative")
    assert.error_matches(function() nn.Conv2d(3, 4, 3, { pading = 1 }) end, "Conv2d: unknown option 'pading'")
    assert.error_matches(function() nn.Conv2d(3, 4, 3, { init = "nonsense" }) end, "Conv2d: unknown init 'nonsense'")
    local m = nn.Conv2d(3, 4, 3)
    assert.error_matches(function() m(gl.randn{ 2, 5, 8, 8 }) end,
                         "input has 5 channels, weight expects 3", "{2, 5, 8, 8}", "{4, 3, 3, 3}")
    assert.error_matches(function() m(gl.randn{ 2, 3, 2, 8 }) end, "input too small", "{2, 3, 2, 8}")
  end)
end)

-- Bars and stripes: 8x8 images where either whole rows (class 1) or whole columns (class 2)
-- are lit, at least one line and never all, under Gaussian noise.  No linear classifier on
-- the pixels separates them (a weight map would need positive row sums and negative column
-- sums, whose totals are equal), but oriented edge detectors do.
local function bars_and_stripes(n, seed)
  math.randomseed(seed)
  local images, labels = {}, {}
  for s = 1, n do
    local class = math.random(2)
    local lit = {}
    local count = 0
    repeat
      count = 0
      for i = 1, 8 do
        lit[i] = math.random() < 0.5
        if lit[i] then count = count + 1 end
      end
    until count > 0 and count < 8
    local image = {}
    for r = 1, 8 do
      local row = {}
      for c = 1, 8 do row[c] = ((class == 1 and lit[r]) or (class == 2 and lit[c])) and 1 or 0 end
      image[r] = row
    end
    images[s], labels[s] = { image }, class
  end
  return gl.tensor(images) + gl.randn{ n, 1, 8, 8 } * 0.3, gl.tensor(labels)
end

describe("a conv net", function()
  -- Trains the net for 12 epochs and returns the test accuracy and the seconds taken.  With
  -- `frozen`, only the last Linear learns: the random convolutions then stay features that
  -- do not separate the classes, so the gap measures what the conv and pool gradients bring.
  local function train(frozen)
    gl.manual_seed(3)
    local x, y = bars_and_stripes(512, 1)
    local x_test, y_test = bars_and_stripes(256, 2)
    local model = nn.Sequential{
      nn.Conv2d(1, 8, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(8, 16, 3, { padding = 1 }), nn.ReLU(), nn.GlobalAvgPool2d(),
      nn.Linear(16, 2),
    }
    local opt = gl.optim.Adam(frozen and model:get(7):parameters() or model:parameters(), { lr = 0.01 })
    local batch = 32
    local start = gl.clock()
    for _ = 1, 12 do
      for first = 1, 512, batch do
        local loss = gl.loss.cross_entropy(model(x:narrow(1, first, batch)), y:narrow(1, first, batch))
        model:zero_grad()
        loss:backward()
        opt:step()
      end
    end
    local seconds = gl.clock() - start
    local predicted = gl.no_grad(function() return model(x_test):argmax(2) end)
    return predicted:eq(y_test):mean():item(), seconds
  end

  it("learns bars and stripes to more than 95 % test accuracy", function()
    local accuracy, seconds = train(false)
    assert.is_true(accuracy > 0.95, ("test accuracy %.3f"):format(accuracy))
    assert.is_true(seconds < 20, ("training took %.1f s"):format(seconds))
    local frozen = train(true)
    assert.is_true(frozen < 0.8, ("with frozen convolutions the test accuracy is %.3f"):format(frozen))
  end)
end)
