-- gradlab.nn_conv — convolution and pooling modules, added to gl.nn (NCHW):
--
--   nn.Conv2d(in_channels, out_channels, kernel_size [, {stride = 1, padding = 0, dilation = 1,
--             groups = 1, bias = true, init =, bias_init =}])
--       weight (out_channels, in_channels / groups, kh, kw) and bias (out_channels), PyTorch's
--       layout and default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both (kaiming_uniform
--       with a = sqrt(5)), fan_in = in_channels / groups * kh * kw.
--   nn.MaxPool2d(kernel_size [, {stride = kernel_size, padding = 0, dilation = 1, ceil_mode = false}])
--   nn.AvgPool2d(kernel_size [, {stride = kernel_size, padding = 0, ceil_mode = false,
--                                count_include_pad = true}])
--   nn.GlobalAvgPool2d([{keepdim = false}])   (B, C, H, W) -> (B, C): the mean of each plane
--
-- Sizes are a number or a pair {h, w}.  Inputs are (B, C, H, W), or (C, H, W) for one sample.
-- The kernels are in C (engine/conv.c, engine/pool.c) behind gl.conv2d, gl.max_pool2d,
-- gl.avg_pool2d and gl.global_avg_pool2d; this file holds parameters, defaults and checks.
return function(gl, nn)
  local class = nn.class

  local check = require "gradlab.nn_check"
  local integer_check, options_check = check.integer, check.options

  -- Errors raised from a constructor point at the user's call (level 4 from here:
  -- helper → init → class __call → caller).
  -- A number or {h, w} → {h, w} of integers >= minimum.
  local function pair_check(layer, position, value, what, minimum)
    local pair = type(value) == "table" and value or { value, value }
    if type(value) == "table" and #value ~= 2 or type(value) ~= "table" and type(value) ~= "number" then
      error(("%s: bad argument #%d (%s must be an integer or a pair {h, w}, got %s)")
        :format(layer, position, what, type(value) == "table" and ("a table of %d values"):format(#value) or tostring(value)), 4)
    end
    local out = {}
    for i = 1, 2 do
      local v = pair[i]
      if type(v) ~= "number" or v ~= math.floor(v) then
        error(("%s: bad argument #%d (%s must be an integer or a pair {h, w} of integers, got %s)")
          :format(layer, position, what, tostring(v)), 4)
      end
      if v < minimum then
        error(("%s: bad argument #%d (%s must be %s, got %s)"):format(layer, position, what,
          minimum == 0 and "non-negative" or "positive", tostring(v)), 4)
      end
      out[i] = math.tointeger(v)
    end
    return out
  end

  local function flag(value, default) if value == nil then return default end return value and true or false end

  -- "(3, 3)" like a Python tuple.
  local function tuple(pair) return ("(%d, %d)"):format(pair[1], pair[2]) end
  -- A pooling size as PyTorch prints what it was given: a number stays a number.
  local function size_text(pair, given)
    return type(given) == "number" and tostring(math.tointeger(given) or given) or tuple(pair)
  end

  -- Conv2d -------------------------------------------------------------------
  local Conv2d = class("Conv2d")
  local conv_options = { stride = true, padding = true, dilation = true, groups = true, bias = true,
                         init = true, bias_init = true }
  function Conv2d:init(in_channels, out_channels, kernel_size, options)
    in_channels = integer_check("Conv2d", 1, in_channels, "in_channels")
    out_channels = integer_check("Conv2d", 2, out_channels, "out_channels")
    if kernel_size == nil then
      error("Conv2d: bad argument #3 (kernel_size expected: a number or a pair {h, w})", 3)
    end
    local kernel = pair_check("Conv2d", 3, kernel_size, "kernel_size", 1)
    options = options_check("Conv2d", 4, options, conv_options)
    local groups = integer_check("Conv2d", 4, options.groups or 1, "groups")
    if in_channels % groups ~= 0 then
      error(("Conv2d: in_channels (%d) must be divisible by groups (%d)"):format(in_channels, groups), 3)
    end
    if out_channels % groups ~= 0 then
      error(("Conv2d: out_channels (%d) must be divisible by groups (%d)"):format(out_channels, groups), 3)
    end
    self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
    self.kernel_size = kernel
    self.stride = pair_check("Conv2d", 4, options.stride or 1, "stride", 1)
    self.padding = pair_check("Conv2d", 4, options.padding or 0, "padding", 0)
    self.dilation = pair_check("Conv2d", 4, options.dilation or 1, "dilation", 1)
    local fan_in = in_channels // groups * kernel[1] * kernel[2]
    local bound = 1 / math.sqrt(fan_in)
    local weight = gl.empty{ out_channels, in_channels // groups, kernel[1], kernel[2] }
    self:register_parameter("weight", gl.init.uniform(weight, -bound, bound))
    gl.init.apply("Conv2d", options.init, self.weight, "init")
    if options.bias ~= false then
      self:register_parameter("bias", gl.init.uniform(gl.empty{ out_channels }, -bound, bound))
      gl.init.apply("Conv2d", options.bias_init, self.bias, "bias_init")
    end
    self._options = { stride = self.stride, padding = self.padding, dilation = self.dilation, groups = groups }
  end

  function Conv2d:forward(x)
    return gl.conv2d(x, self.weight, self.bias, self._options)
  end

  function Conv2d:extra_repr()
    local text = ("%d, %d, kernel_size=%s, stride=%s"):format(self.in_channels, self.out_channels,
                                                              tuple(self.kernel_size), tuple(self.stride))
    if self.padding[1] ~= 0 or self.padding[2] ~= 0 then text = text .. ", padding=" .. tuple(self.padding) end
    if self.dilation[1] ~= 1 or self.dilation[2] ~= 1 then text = text .. ", dilation=" .. tuple(self.dilation) end
    if self.groups ~= 1 then text = text .. ", groups=" .. self.groups end
    if not self.bias then text = text .. ", bias=false" end
    return text
  end

  -- Pooling -------------------------------------------------------------------
  -- Shared constructor: kernel_size, then stride (default: the kernel), padding, ...
  local function pool_init(self, layer, kernel_size, options, known)
    if kernel_size == nil then
      error(("%s: bad argument #1 (kernel_size expected: a number or a pair {h, w})"):format(layer), 4)
    end
    self.kernel_size = pair_check(layer, 1, kernel_size, "kernel_size", 1)
    options = options_check(layer, 2, options, known)
    self.stride = pair_check(layer, 2, options.stride or kernel_size, "stride", 1)
    self.padding = pair_check(layer, 2, options.padding or 0, "padding", 0)
    for d = 1, 2 do
      if self.padding[d] > self.kernel_size[d] // 2 then
        error(("%s: padding %s must be at most half the kernel size %s")
          :format(layer, tuple(self.padding), tuple(self.kernel_size)), 4)
      end
    end
    self.ceil_mode = flag(options.ceil_mode, false)
    -- Printed as given, the way PyTorch echoes its arguments.
    self._given = { kernel = kernel_size, stride = options.stride or kernel_size, padding = options.padding or 0 }
    return options
  end

  local MaxPool2d = class("MaxPool2d")
  local max_pool_options = { stride = true, padding = true, dilation = true, ceil_mode = true }
  function MaxPool2d:init(kernel_size, options)
    options = pool_init(self, "MaxPool2d", kernel_size, options, max_pool_options)
    self.dilation = pair_check("MaxPool2d", 2, options.dilation or 1, "dilation", 1)
    self._given.dilation = options.dilation or 1
    self._options = { stride = self.stride, padding = self.padding, dilation = self.dilation,
                      ceil_mode = self.ceil_mode }
  end
  function MaxPool2d:forward(x) return gl.max_pool2d(x, self.kernel_size, self._options) end
  function MaxPool2d:extra_repr()
    local g = self._given
    return ("kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s")
      :format(size_text(self.kernel_size, g.kernel), size_text(self.stride, g.stride),
              size_text(self.padding, g.padding), size_text(self.dilation, g.dilation), tostring(self.ceil_mode))
  end

  local AvgPool2d = class("AvgPool2d")
  local avg_pool_options = { stride = true, padding = true, ceil_mode = true, count_include_pad = true }
  function AvgPool2d:init(kernel_size, options)
    options = pool_init(self, "AvgPool2d", kernel_size, options, avg_pool_options)
    self.count_include_pad = flag(options.count_include_pad, true)
    self._options = { stride = self.stride, padding = self.padding, ceil_mode = self.ceil_mode,
                      count_include_pad = self.count_include_pad }
  end
  function AvgPool2d:forward(x) return gl.avg_pool2d(x, self.kernel_size, self._options) end
  function AvgPool2d:extra_repr()
    local g = self._given
    local text = ("kernel_size=%s, stride=%s, padding=%s"):format(size_text(self.kernel_size, g.kernel),
      size_text(self.stride, g.stride), size_text(self.padding, g.padding))
    if self.ceil_mode then text = text .. ", ceil_mode=true" end
    if not self.count_include_pad then text = text .. ", count_include_pad=false" end
    return text
  end

  local GlobalAvgPool2d = class("GlobalAvgPool2d")
  function GlobalAvgPool2d:init(options)
    options = options_check("GlobalAvgPool2d", 1, options, { keepdim = true })
    self.keepdim = flag(options.keepdim, false)
  end
  function GlobalAvgPool2d:forward(x) return gl.global_avg_pool2d(x, self.keepdim) end
  function GlobalAvgPool2d:extra_repr() return self.keepdim and "keepdim=true" or "" end

  return nn
end
