-- gradlab.initializers — gl.init: in-place weight initializers, as torch.nn.init.
--
-- Every initializer fills its tensor in place (without recording a graph) and
-- returns it.  Fans follow PyTorch: for a weight of shape (out, in, k1, k2, ...)
-- fan_in = in * k1 * k2 ..., fan_out = out * k1 * k2 ...
return function(gl)
  local init = {}

  local function check_tensor(name, t)
    if not gl.is_tensor(t) then
      error(("init.%s: bad argument #1 (tensor expected, got %s)"):format(name, type(t)), 3)
    end
  end

  local function check_number(name, position, value)
    if type(value) ~= "number" or value ~= value then
      error(("init.%s: bad argument #%d (number expected, got %s)"):format(name, position, tostring(value)), 3)
    end
  end

  -- Fill without recording: initializers modify parameters in place.
  local function fill_from(t, values)
    gl.no_grad(function() t:copy(values) end)
    return t
  end

  function init.fans(t)
    local shape = t:shape()
    if #shape < 2 then
      error(("init: fan in and fan out need a tensor of at least 2 dimensions, got shape {%s}")
        :format(table.concat(shape, ", ")), 3)
    end
    local receptive = 1
    for d = 3, #shape do receptive = receptive * shape[d] end
    return shape[2] * receptive, shape[1] * receptive
  end

  function init.gain(nonlinearity, param)
    nonlinearity = nonlinearity or "linear"
    if nonlinearity == "linear" or nonlinearity == "identity" or nonlinearity == "sigmoid"
       or nonlinearity:match("^conv") then
      return 1
    elseif nonlinearity == "tanh" then
      return 5 / 3
    elseif nonlinearity == "relu" then
      return math.sqrt(2)
    elseif nonlinearity == "leaky_relu" then
      local slope = param == nil and 0.01 or param
      if type(slope) ~= "number" then error("init.gain: leaky_relu's slope must be a number", 2) end
      return math.sqrt(2 / (1 + slope * slope))
    elseif nonlinearity == "selu" then
      return 3 / 4
    end
    error(("init.gain: unknown nonlinearity '%s' (linear, sigmoid, tanh, relu, leaky_relu, selu, conv*)")
      :format(tostring(nonlinearity)), 2)
  end

  function init.zeros(t) check_tensor("zeros", t); return gl.no_grad(function() return t:fill(0) end) end
  function init.ones(t) check_tensor("ones", t); return gl.no_grad(function() return t:fill(1) end) end

  function init.constant(t, v)
    check_tensor("constant", t)
    check_number("constant", 2, v)
    return gl.no_grad(function() return t:fill(v) end)
  end

  function init.uniform(t, a, b)
    check_tensor("uniform", t)
    a, b = a or 0, b or 1
    check_number("uniform", 2, a)
    check_number("uniform", 3, b)
    if a > b then error(("init.uniform: a (%g) must not exceed b (%g)"):format(a, b), 2) end
    return fill_from(t, gl.rand(t:shape()) * (b - a) + a)
  end

  function init.normal(t, mean, std)
    check_tensor("normal", t)
    mean, std = mean or 0, std or 1
    check_number("normal", 2, mean)
    check_number("normal", 3, std)
    if std < 0 then error(("init.normal: std must be >= 0, got %g"):format(std), 2) end
    return fill_from(t, gl.randn(t:shape()) * std + mean)
  end

  function init.xavier_uniform(t, gain)
    check_tensor("xavier_uniform", t)
    local fan_in, fan_out = init.fans(t)
    local std = (gain or 1) * math.sqrt(2 / (fan_in + fan_out))
    local bound = math.sqrt(3) * std
    return fill_from(t, gl.rand(t:shape()) * (2 * bound) - bound)
  end

  function init.xavier_normal(t, gain)
    check_tensor("xavier_normal", t)
    local fan_in, fan_out = init.fans(t)
    return fill_from(t, gl.randn(t:shape()) * ((gain or 1) * math.sqrt(2 / (fan_in + fan_out))))
  end

  -- Kaiming/He: std = gain / sqrt(fan), options {mode = "fan_in" | "fan_out",
  -- nonlinearity = "relu" | "leaky_relu" | ..., a = negative slope}.
  local function kaiming_std(name, t, options)
    check_tensor(name, t)
    options = options or {}
    if type(options) ~= "table" then
      error(("init.%s: bad argument #2 (options table expected, got %s)"):format(name, type(options)), 3)
    end
    local mode = options.mode or "fan_in"
    local fan_in, fan_out = init.fans(t)
    local fan
    if mode == "fan_in" then fan = fan_in
    elseif mode == "fan_out" then fan = fan_out
    else error(("init.%s: mode must be \"fan_in\" or \"fan_out\", got %s"):format(name, tostring(mode)), 3) end
    local nonlinearity = options.nonlinearity or "leaky_relu"
    local gain = init.gain(nonlinearity, options.a or 0)
    return gain / math.sqrt(fan)
  end

  function init.kaiming_uniform(t, options)
    local bound = math.sqrt(3) * kaiming_std("kaiming_uniform", t, options)
    return fill_from(t, gl.rand(t:shape()) * (2 * bound) - bound)
  end

  function init.kaiming_normal(t, options)
    local std = kaiming_std("kaiming_normal", t, options)
    return fill_from(t, gl.randn(t:shape()) * std)
  end

  init.he_uniform = init.kaiming_uniform
  init.he_normal = init.kaiming_normal

  -- LeCun normal: std = 1 / sqrt(fan_in), the variance SELU networks want.
  function init.lecun_normal(t)
    check_tensor("lecun_normal", t)
    local fan_in = init.fans(t)
    return fill_from(t, gl.randn(t:shape()) * (1 / math.sqrt(fan_in)))
  end

  function init.orthogonal(t, gain)
    check_tensor("orthogonal", t)
    return gl.no_grad(function() return gl._init_orthogonal(t, gain or 1) end)
  end

  -- Applies an `init` or `bias_init` option of a layer: a name, a function or
  -- (for biases) a number.
  function init.apply(layer, option, t, what)
    if option == nil then return t end
    if type(option) == "function" then
      option(t)
    elseif type(option) == "number" then
      init.constant(t, option)
    elseif type(option) == "string" then
      local fn = init[option]
      if not fn or option == "apply" or option == "fans" or option == "gain" then
        error(("%s: unknown %s '%s' (try \"he_normal\", \"xavier_uniform\", \"orthogonal\", ...)")
          :format(layer, what, option), 4)
      end
      fn(t)
    else
      error(("%s: %s must be an initializer name, a function or a number, got %s"):format(layer, what, type(option)), 4)
    end
    return t
  end

  return init
end
