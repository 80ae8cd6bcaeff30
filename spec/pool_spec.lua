-- spec/pool_spec.lua — engine/pool.c through gl.max_pool2d, gl.avg_pool2d, gl.global_avg_pool2d
-- and nn.MaxPool2d, nn.AvgPool2d, nn.GlobalAvgPool2d: values against a naive Lua pooling that
-- spells out PyTorch's rules (output size in floor and ceil mode, padding, dilation, the
-- average's divisor), against PyTorch itself when installed, the max's gradient routed to the
-- argmax, gradcheck, shapes and clear errors.
local gl = require "gradlab"
local helper = require "helper"
local nn = gl.nn

local function check(fn, inputs, what, tol)
  local ok, err = gl.gradcheck(fn, inputs, { tol = tol or 3e-3 })
  assert.is_true(ok, (what or "gradcheck") .. ": max error " .. tostring(err))
end

local function pair(v, default)
  v = v == nil and default or v
  return type(v) == "table" and v or { v, v }
end

-- PyTorch's pooling_output_shape.
local function output_size(n, k, s, p, d, ceil_mode)
  local span = n + 2 * p - d * (k - 1) - 1
  local out = (ceil_mode and -((-span) // s) or span // s) + 1
  if ceil_mode and (out - 1) * s >= n + p then out = out - 1 end
  return out
end

-- Pools a (B, C, H, W) or (C, H, W) tensor in Lua doubles.  kind "max" returns the values and
-- the 1-based plane positions of the maxima; "avg" returns the values.
local function naive_pool(kind, x, kernel, options)
  options = options or {}
  local k, s = pair(kernel), pair(options.stride, kernel)
  local p, d = pair(options.padding, 0), pair(options.dilation, 1)
  local ceil_mode = options.ceil_mode or false
  local include_pad = options.count_include_pad ~= false
  local unbatched = x:dim() == 3
  local v = (unbatched and x:view{ 1, table.unpack(x:shape()) } or x):totable()
  local B, C, H, W = #v, #v[1], #v[1][1], #v[1][1][1]
  local OH = output_size(H, k[1], s[1], p[1], d[1], ceil_mode)
  local OW = output_size(W, k[2], s[2], p[2], d[2], ceil_mode)
  local out, where = {}, {}
  for b = 1, B do
    out[b], where[b] = {}, {}
    for c = 1, C do
      local plane, o, wi = v[b][c], {}, {}
      for oh = 1, OH do
        o[oh], wi[oh] = {}, {}
        for ow = 1, OW do
          local h0, w0 = (oh - 1) * s[1] - p[1], (ow - 1) * s[2] - p[2]   -- 0-based window origin
          if kind == "max" then
            local best, at = -math.huge, nil
            for i = 0, k[1] - 1 do
              for j = 0, k[2] - 1 do
                local ih, iw = h0 + i * d[1], w0 + j * d[2]
                if ih >= 0 and ih < H and iw >= 0 and iw < W then
                  local value = plane[ih + 1][iw + 1]
                  if at == nil or value > best or value ~= value then best, at = value, ih * W + iw + 1 end
                end
              end
            end
            o[oh][ow], wi[oh][ow] = best, at
          else
            local h1, w1 = math.min(h0 + k[1], H + p[1]), math.min(w0 + k[2], W + p[2])
            local padded = (h1 - h0) * (w1 - w0)
            local sum, count = 0, 0
            for ih = math.max(h0, 0), math.min(h1, H) - 1 do
              for iw = math.max(w0, 0), math.min(w1, W) - 1 do
                sum, count = sum + plane[ih + 1][iw + 1], count + 1
              end
            end
            o[oh][ow] = sum / (include_pad and padded or count)
          end
        end
      end
      out[b][c], where[b][c] = o, wi
    end
  end
  if unbatched then return out[1], where[1] end
  return out, where
end

local max_cases = {
  { 2, {} },
  { 3, { stride = 2, padding = 1 } },
  { 3, { stride = 2, ceil_mode = true } },
  { 3, { stride = 2, padding = 1, ceil_mode = true } },
  { { 2, 3 }, { stride = { 1, 2 }, padding = { 1, 1 }, dilation = { 2, 1 } } },
  { 2, { stride = 1 } },
  { { 3, 1 }, { stride = { 3, 1 }, ceil_mode = true } },
}

local avg_cases = {
  { 2, {} },
  { 3, { stride = 2, padding = 1 } },
  { 3, { stride = 2, padding = 1, count_include_pad = false } },
  { 3, { stride = 2, padding = 1, ceil_mode = true } },
  { 3, { stride = 2, padding = 1, ceil_mode = true, count_include_pad = false } },
  { { 2, 3 }, { stride = { 1, 2 }, padding = { 1, 0 } } },
  { 4, { stride = 3, ceil_mode = true } },
}

describe("max_pool2d", function()
  before_each(function() gl.manual_seed(21) end)

  it("matches a naive pooling with PyTorch's rules, and returns 1-based argmax positions", function()
    for _, case in ipairs(max_cases) do
      local kernel, options = case[1], case[2]
      local x = gl.randn{ 2, 3, 7, 8 }
      local values, where = naive_pool("max", x, kernel, options)
      local with_indices = {}
      for key, v in pairs(options) do with_indices[key] = v end
      with_indices.return_indices = true
      local y, indices = gl.max_pool2d(x, kernel, with_indices)
      assert.tensor_near(y, values, 0)
      assert.tensor_near(indices, where, 0)
      assert.tensor_near(gl.max_pool2d(x, kernel, options), values, 0)
    end
    local x = gl.randn{ 3, 5, 6 }
    assert.tensor_near(gl.max_pool2d(x, 2), naive_pool("max", x, 2), 0)
  end)

  it("routes each output's gradient to its argmax, summing where windows overlap", function()
    local x = gl.randn{ 1, 2, 5, 5 }:requires_grad(true)
    local y, indices = gl.max_pool2d(x, 3, { stride = 1, return_indices = true })
    local g = gl.randn(y:shape())
    y:backward(g)
    local expected = {}
    local idx, gv = indices:totable(), g:totable()
    for c = 1, 2 do
      local plane = {}
      for i = 1, 25 do plane[i] = 0 end
      for oh = 1, 3 do
        for ow = 1, 3 do
          local at = idx[1][c][oh][ow]
          plane[at] = plane[at] + gv[1][c][oh][ow]
        end
      end
      expected[c] = plane
    end
    assert.tensor_near(x.grad:view{ 2, 25 }, expected, 1e-6)
  end)

  it("lets NaN win and never picks padding", function()
    local x = gl.tensor{ { { 1, 0 / 0, 3, -2 }, { 5, 6, -7, -8 } } }   -- (1, 2, 4)
    local y = gl.max_pool2d(x, 2)
    local v = y:totable()
    assert.is_true(v[1][1][1] ~= v[1][1][1])
    assert.equal(3, v[1][1][2])
    -- All negative with padding: the zeros of the padding must not win.
    local neg = gl.full({ 1, 1, 3, 3 }, -5)
    assert.tensor_near(gl.max_pool2d(neg, 3, { stride = 1, padding = 1 }), gl.full({ 1, 1, 3, 3 }, -5))
    local inf = gl.full({ 1, 1, 2, 2 }, -math.huge):requires_grad(true)
    local out = gl.max_pool2d(inf, 2)
    assert.equal(-math.huge, out:item())
    out:sum():backward()
    assert.tensor_near(inf.grad, { { { { 1, 0 }, { 0, 0 } } } })   -- the first position, as PyTorch
  end)

  it("passes gradcheck", function()
    for _, case in ipairs(max_cases) do
      local x = gl.randn{ 2, 2, 6, 7 }:requires_grad(true)
      check(function(a) return gl.max_pool2d(a, case[1], case[2]) end, { x }, "max_pool2d")
    end
  end)
end)

describe("avg_pool2d", function()
  before_each(function() gl.manual_seed(22) end)

  it("matches a naive pooling with PyTorch's divisor, padding and ceil mode", function()
    for _, case in ipairs(avg_cases) do
      local x = gl.randn{ 2, 3, 7, 8 }
      assert.tensor_near(gl.avg_pool2d(x, case[1], case[2]), naive_pool("avg", x, case[1], case[2]), 1e-6)
    end
    local x = gl.randn{ 3, 6, 5 }
    assert.tensor_near(gl.avg_pool2d(x, 2), naive_pool("avg", x, 2), 1e-6)
  end)

  it("spreads the gradient evenly over each window", function()
    local x = gl.randn{ 1, 1, 4, 4 }:requires_grad(true)
    gl.avg_pool2d(x, 2):sum():backward()
    assert.tensor_near(x.grad, gl.full({ 1, 1, 4, 4 }, 0.25))
    local xp = gl.randn{ 1, 1, 3, 3 }:requires_grad(true)
    gl.avg_pool2d(xp, 3, { stride = 1, padding = 1, count_include_pad = false }):sum():backward()
    -- Corner (1, 1) lies in 4 windows of 4 values each; the centre in all 9, with 4, 6 or 9 values.
    local corner = 1 / 4 + 1 / 6 + 1 / 6 + 1 / 9
    assert.near(corner, xp.grad:get(1, 1, 1, 1), 1e-6)
    assert.near(4 / 4 + 4 / 6 + 1 / 9, xp.grad:get(1, 1, 2, 2), 1e-6)
  end)

  it("passes gradcheck", function()
    for _, case in ipairs(avg_cases) do
      local x = gl.randn{ 2, 2, 6, 7 }:requires_grad(true)
      check(function(a) return gl.avg_pool2d(a, case[1], case[2]) end, { x }, "avg_pool2d")
    end
  end)
end)

describe("global_avg_pool2d", function()
  before_each(function() gl.manual_seed(23) end)

  it("averages each plane: (B, C, H, W) -> (B, C), keepdim, unbatched", function()
    local x = gl.randn{ 3, 4, 5, 6 }
    local y = gl.global_avg_pool2d(x)
    assert.same({ 3, 4 }, y:shape())
    assert.tensor_near(y, x:mean(4):mean(3), 1e-6)
    assert.same({ 3, 4, 1, 1 }, gl.global_avg_pool2d(x, true):shape())
    assert.same({ 3, 4, 1, 1 }, gl.global_avg_pool2d(x, { keepdim = true }):shape())
    assert.tensor_near(gl.global_avg_pool2d(x:select(1, 2)), y:select(1, 2), 1e-6)
    -- A big plane of a large constant keeps its precision (double accumulation).
    assert.near(1000.1, gl.global_avg_pool2d(gl.full({ 1, 1, 1000, 1000 }, 1000.1)):item(), 1e-3)
  end)

  it("passes gradcheck, and the gradient is g / (H W)", function()
    check(function(a) return gl.global_avg_pool2d(a) end, { gl.randn{ 2, 3, 4, 5 }:requires_grad(true) })
    local x = gl.randn{ 1, 2, 2, 5 }:requires_grad(true)
    gl.global_avg_pool2d(x):backward(gl.tensor{ { 10, -20 } })
    assert.tensor_near(x.grad:select(2, 1), gl.full({ 1, 2, 5 }, 1))
    assert.tensor_near(x.grad:select(2, 2), gl.full({ 1, 2, 5 }, -2))
  end)
end)

describe("pooling", function()
  it("agrees with PyTorch on values and input gradients", function()
    if os.execute(helper.python .. " -c 'import torch' >/dev/null 2>&1") ~= true then
      pending("PyTorch not installed (Debian package python3-torch)")
      return
    end
    gl.manual_seed(24)
    local function tuple(v, default)
      local p = pair(v, default)
      return ("(%d, %d)"):format(p[1], p[2])
    end
    local lines, inputs, runs = { "import torch", "import torch.nn.functional as F", "result = []" }, {}, {}
    local function add(kind, kernel, options, call)
      local i = #runs + 1
      local x = gl.randn{ 2, 3, 7, 8 }
      local y = call(x)
      local g = gl.randn(y:shape())
      inputs["x" .. i], inputs["g" .. i] = x, g
      local torch_call
      if kind == "max" then
        torch_call = ("F.max_pool2d(xt, %s, %s, %s, %s, %s)"):format(tuple(kernel), tuple(options.stride, kernel),
          tuple(options.padding, 0), tuple(options.dilation, 1), options.ceil_mode and "True" or "False")
      elseif kind == "avg" then
        torch_call = ("F.avg_pool2d(xt, %s, %s, %s, %s, %s)"):format(tuple(kernel), tuple(options.stride, kernel),
          tuple(options.padding, 0), options.ceil_mode and "True" or "False",
          options.count_include_pad == false and "False" or "True")
      else
        torch_call = "F.adaptive_avg_pool2d(xt, 1).flatten(2).squeeze(2)"
      end
      lines[#lines + 1] = ([[
xt = torch.tensor(x%d, requires_grad=True)
y = %s
y.backward(torch.tensor(g%d))
result += [y.detach().numpy(), xt.grad.numpy()]
]]):format(i, torch_call, i)
      runs[i] = { x = x, g = g, call = call }
    end
    for _, case in ipairs(max_cases) do
      add("max", case[1], case[2], function(x) return gl.max_pool2d(x, case[1], case[2]) end)
    end
    for _, case in ipairs(avg_cases) do
      add("avg", case[1], case[2], function(x) return gl.avg_pool2d(x, case[1], case[2]) end)
    end
    add("global", nil, nil, function(x) return gl.global_avg_pool2d(x) end)
    local r = helper.numpy(table.concat(lines, "\n"), inputs)
    for i, run in ipairs(runs) do
      local x = run.x:clone():requires_grad(true)
      local y = run.call(x)
      y:backward(run.g)
      assert.tensor_near(y, r[2 * i - 1], 1e-5)
      assert.tensor_near(x.grad, r[2 * i], 1e-5)
    end
  end)

  it("raises clear errors naming the function, the argument and the shapes", function()
    local x = gl.randn{ 2, 3, 6, 6 }
    assert.error_matches(function() gl.max_pool2d(gl.randn{ 6, 6 }, 2) end,
                         "max_pool2d: input must be (B, C, H, W) or (C, H, W), got shape {6, 6}")
    assert.error_matches(function() gl.avg_pool2d(gl.randn{ 1, 1, 1, 6, 6 }, 2) end,
                         "avg_pool2d: input must be (B, C, H, W) or (C, H, W), got shape {1, 1, 1, 6, 6}")
    assert.error_matches(function() gl.max_pool2d(x) end, "max_pool2d: bad argument #2", "kernel size")
    assert.error_matches(function() gl.max_pool2d(x, 0) end, "max_pool2d: kernel size must be a positive integer, got (0, 0)")
    assert.error_matches(function() gl.max_pool2d(x, 2, { stride = { 1, 0 } }) end,
                         "max_pool2d: stride must be a positive integer, got (1, 0)")
    assert.error_matches(function() gl.max_pool2d(x, 2, { dilation = 0 }) end, "max_pool2d: dilation must be a positive integer")
    assert.error_matches(function() gl.max_pool2d(x, 3, { padding = 2 }) end,
                         "max_pool2d: padding must be between 0 and half the kernel size, got padding (2, 2) for kernel (3, 3)")
    assert.error_matches(function() gl.avg_pool2d(x, 2, { padding = -1 }) end, "avg_pool2d: padding must be between 0")
    assert.error_matches(function() gl.max_pool2d(gl.randn{ 2, 3, 1, 6 }, 2) end,
                         "max_pool2d: input too small", "1x6", "gives an output of 0x3", "{2, 3, 1, 6}")
    assert.error_matches(function() gl.avg_pool2d(gl.randn{ 2, 3, 4, 4 }, 5, { padding = 0 }) end,
                         "avg_pool2d: input too small", "{2, 3, 4, 4}")
    assert.error_matches(function() gl.max_pool2d(x, 2, { strid = 1 }) end, "max_pool2d: unknown option 'strid'")
    assert.error_matches(function() gl.avg_pool2d(x, 2, { dilation = 2 }) end, "avg_pool2d: unknown option 'dilation'")
    assert.error_matches(function() gl.avg_pool2d(x, 2.5) end, "avg_pool2d: kernel size must be an integer", "2.5")
    assert.error_matches(function() gl.max_pool2d(x, 2, 2) end, "bad argument #3", "options")
    assert.error_matches(function() gl.global_avg_pool2d(gl.randn{ 4, 5 }) end,
                         "global_avg_pool2d: input must be (B, C, H, W) or (C, H, W), got shape {4, 5}")
    assert.error_matches(function() gl.global_avg_pool2d(gl.randn{ 2, 3, 0, 4 }) end,
                         "global_avg_pool2d: input has no positions", "{2, 3, 0, 4}")
    assert.error_matches(function() gl.global_avg_pool2d(x, { keep = true }) end, "unknown option 'keep'")
    assert.same({ 2, 3, 3, 3 }, gl.max_pool2d(x, 2):shape())   -- and the session goes on
  end)
end)

describe("pooling modules", function()
  it("default the stride to the kernel size and print like PyTorch", function()
    assert.equal("MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=false)", tostring(nn.MaxPool2d(2)))
    assert.equal("MaxPool2d(kernel_size=(2, 3), stride=1, padding=(1, 1), dilation=1, ceil_mode=true)",
                 tostring(nn.MaxPool2d({ 2, 3 }, { stride = 1, padding = { 1, 1 }, ceil_mode = true })))
    assert.equal("AvgPool2d(kernel_size=3, stride=2, padding=1)", tostring(nn.AvgPool2d(3, { stride = 2, padding = 1 })))
    assert.equal("AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=true, count_include_pad=false)",
                 tostring(nn.AvgPool2d(2, { ceil_mode = true, count_include_pad = false })))
    assert.equal("GlobalAvgPool2d()", tostring(nn.GlobalAvgPool2d()))
    assert.equal("GlobalAvgPool2d(keepdim=true)", tostring(nn.GlobalAvgPool2d{ keepdim = true }))
    assert.equal(0, #nn.MaxPool2d(2):parameters())
  end)

  it("run the functional ops with their options", function()
    gl.manual_seed(25)
    local x = gl.randn{ 2, 3, 7, 7 }
    assert.tensor_near(nn.MaxPool2d(2)(x), gl.max_pool2d(x, 2, { stride = 2 }))
    assert.tensor_near(nn.MaxPool2d(3, { stride = 2, padding = 1, dilation = 2 })(x),
                       gl.max_pool2d(x, 3, { stride = 2, padding = 1, dilation = 2 }))
    assert.tensor_near(nn.AvgPool2d(3, { stride = 2, padding = 1, ceil_mode = true, count_include_pad = false })(x),
                       gl.avg_pool2d(x, 3, { stride = 2, padding = 1, ceil_mode = true, count_include_pad = false }))
    assert.tensor_near(nn.GlobalAvgPool2d()(x), gl.global_avg_pool2d(x))
    assert.same({ 2, 3, 1, 1 }, nn.GlobalAvgPool2d{ keepdim = true }(x):shape())
  end)

  it("raise clear errors from the constructors", function()
    assert.error_matches(function() nn.MaxPool2d() end, "MaxPool2d: bad argument #1", "kernel_size")
    assert.error_matches(function() nn.MaxPool2d(0) end, "MaxPool2d: bad argument #1", "kernel_size must be positive")
    assert.error_matches(function() nn.AvgPool2d(2, { stride = 0 }) end, "AvgPool2d: bad argument #2", "stride must be positive")
    assert.error_matches(function() nn.MaxPool2d(2, { padding = 2 }) end,
                         "MaxPool2d: padding (2, 2) must be at most half the kernel size (2, 2)")
    assert.error_matches(function() nn.AvgPool2d(2, { dilation = 2 }) end, "AvgPool2d: unknown option 'dilation'")
    assert.error_matches(function() nn.GlobalAvgPool2d{ keep = 1 } end, "GlobalAvgPool2d: unknown option 'keep'")
    assert.error_matches(function() nn.MaxPool2d(2)(gl.randn{ 4, 4 }) end, "max_pool2d: input must be", "{4, 4}")
  end)
end)
