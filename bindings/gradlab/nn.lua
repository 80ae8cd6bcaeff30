-- gradlab.nn — modules: the wiring in Lua, the kernels in C (as PyTorch keeps
-- nn.Module in Python).  `local nn = gl.nn`.
--
-- A module is a table with ordered parameters, buffers and child modules.
-- Calling it runs :forward.  Names follow PyTorch's dotted paths with Lua's
-- 1-based indices for sequence positions ("3.weight", "block.1.bias").
return function(gl)
  local nn = {}

  -- Classes ---------------------------------------------------------------
  local Module = {}
  Module.__index = Module
  Module.__name = "Module"

  -- class(name [, parent]): a table of methods; calling it builds an instance
  -- through its `init` method.
  local function class(name, parent)
    local cls = {}
    cls.__index = cls
    cls.__name = name
    cls.__call = Module.__call
    cls.__tostring = Module.__tostring
    setmetatable(cls, {
      __index = parent or Module,
      __call = function(c, ...)
        local self = setmetatable({}, c)
        self:_setup()
        self:init(...)
        return self
      end,
    })
    nn[name] = cls
    return cls
  end
  nn.class = class

  function Module:_setup()
    self._parameters, self._buffers, self._modules = {}, {}, {}
    self.training = true
  end

  function Module:init() end

  function Module:forward()
    error(getmetatable(self).__name .. ": forward is not implemented", 2)
  end

  local function check_name(self, name, what)
    if type(name) ~= "string" or name == "" or name:find(".", 1, true) then
      error(("%s: %s name must be a non-empty string without dots, got %s")
        :format(getmetatable(self).__name, what, tostring(name)), 3)
    end
  end

  -- Registers (or replaces) an entry of an ordered {name, value} list.
  local function put(list, name, value)
    for _, entry in ipairs(list) do
      if entry[1] == name then entry[2] = value; return end
    end
    list[#list + 1] = { name, value }
  end

  local function invalidate_paths(self) self._paths_ready = nil end

  function Module:register_parameter(name, t)
    check_name(self, name, "parameter")
    if t ~= nil and not gl.is_tensor(t) then
      error(("%s: parameter '%s' must be a tensor"):format(getmetatable(self).__name, name), 2)
    end
    if t then t = gl.param(t) end
    put(self._parameters, name, t)
    self[name] = t
    invalidate_paths(self)
    return t
  end

  function Module:register_buffer(name, t)
    check_name(self, name, "buffer")
    put(self._buffers, name, t)
    self[name] = t
    return t
  end

  function Module:register_module(name, m)
    check_name(self, name, "module")
    if type(m) ~= "table" or not m._modules then
      error(("%s: child '%s' is a %s, not a module"):format(getmetatable(self).__name, name, type(m)), 3)
    end
    put(self._modules, name, m)
    self[name] = m
    invalidate_paths(self)
    return m
  end

  -- Iteration -------------------------------------------------------------
  local function join(prefix, name) return prefix == "" and name or prefix .. "." .. name end

  -- Calls visit(path, module) for self and every descendant, each module once.
  local function walk(self, prefix, visit, seen)
    if seen[self] then return end
    seen[self] = true
    visit(prefix, self)
    for _, entry in ipairs(self._modules) do walk(entry[2], join(prefix, entry[1]), visit, seen) end
  end

  function Module:named_modules()
    local list = {}
    walk(self, "", function(path, m) list[#list + 1] = { path, m } end, {})
    return list
  end

  function Module:children()
    local list = {}
    for i, entry in ipairs(self._modules) do list[i] = entry[2] end
    return list
  end

  -- {name, tensor} pairs, each tensor once, in registration order.
  function Module:named_parameters()
    local list, seen = {}, {}
    walk(self, "", function(path, m)
      for _, entry in ipairs(m._parameters) do
        local t = entry[2]
        if t and not seen[t] then
          seen[t] = true
          list[#list + 1] = { join(path, entry[1]), t }
        end
      end
    end, {})
    return list
  end

  function Module:parameters()
    local list = {}
    for i, entry in ipairs(self:named_parameters()) do list[i] = entry[2] end
    return list
  end

  function Module:named_buffers()
    local list = {}
    walk(self, "", function(path, m)
      for _, entry in ipairs(m._buffers) do
        if entry[2] then list[#list + 1] = { join(path, entry[1]), entry[2] } end
      end
    end, {})
    return list
  end

  function Module:zero_grad()
    for _, p in ipairs(self:parameters()) do p.grad = nil end
    return self
  end

  function Module:train(flag)
    if flag == nil then flag = true end
    walk(self, "", function(_, m) m.training = flag and true or false end, {})
    return self
  end

  function Module:evaluate() return self:train(false) end

  -- Paths ---------------------------------------------------------------
  -- Each module learns its dotted path from the module first called as a root,
  -- and every parameter its full name: ops record the path, and anomaly
  -- messages and the monitor name "layers.7" and "layers.7.weight".
  function Module:_assign_paths()
    walk(self, "", function(path, m)
      m._path = path
      m._paths_ready = true
      for _, entry in ipairs(m._parameters) do
        if entry[2] then entry[2]:set_name(join(path, entry[1])) end
      end
    end, {})
  end

  -- No pcall here (it would cost every module call): if forward raises, the
  -- path stays at the failing module until the next call sets it again.  A
  -- root module (path "") therefore restores "" rather than what it found,
  -- which may be such a stale path: the next model call after an error clears
  -- it, so later anomaly messages do not blame the module that failed.
  --
  -- The C call that restores the path also hands the output to the module's
  -- monitor taps (`_taps`, gradlab.monitor): the monitor costs no Lua call
  -- per module.  They see the module's own output, before forward hooks.
  local module_path, module_done = gl._module_path, gl._module_done
  function Module.__call(self, ...)
    if not self._paths_ready then self:_assign_paths() end
    local previous = module_path(self._path)
    if self._path == "" then previous = "" end
    local out, extra
    if self._precision then
      out, extra = self:_forward_in_precision(...)
    else
      out, extra = self.forward(self, ...)
    end
    module_done(previous, out, self._taps)
    local hooks = self._forward_hooks
    if hooks then
      for i = 1, #hooks do
        local replaced = hooks[i](self, out, ...)
        if replaced ~= nil then out = replaced end
      end
    end
    return out, extra
  end

  -- Reduced precision ------------------------------------------------------
  -- m:precision("fp16" | "bf16" | "fp32") emulates mixed precision as autocast
  -- does it: every module computes with its parameters, its tensor inputs and
  -- its output rounded through the format, and because rounding's backward
  -- rounds the gradient too, activations' and parameters' gradients pass
  -- through the format (fp16 underflow and overflow really happen).  Master
  -- weights, optimizer state and .grad accumulation stay in float32.
  local casts = { fp16 = "half", bf16 = "bfloat16" }

  function Module:precision(format)
    if format ~= "fp32" and not casts[format] then
      error(("precision: format must be \"fp16\", \"bf16\" or \"fp32\", got %s"):format(tostring(format)), 2)
    end
    walk(self, "", function(_, m) m._precision = casts[format] end, {})
    return self
  end

  local function cast_all(method, ...)
    local n = select("#", ...)
    if n == 1 then
      local x = ...
      return gl.is_tensor(x) and x[method](x) or x
    end
    local values = { ... }
    for i = 1, n do
      if gl.is_tensor(values[i]) then values[i] = values[i][method](values[i]) end
    end
    return table.unpack(values, 1, n)
  end

  function Module:_forward_in_precision(...)
    local method = self._precision
    local own = self._parameters
    for _, entry in ipairs(own) do
      if entry[2] then rawset(self, entry[1], entry[2][method](entry[2])) end
    end
    local ok, out, extra = pcall(self.forward, self, cast_all(method, ...))
    for _, entry in ipairs(own) do rawset(self, entry[1], entry[2]) end   -- the float32 masters back
    if not ok then error(out, 0) end
    if gl.is_tensor(out) then out = out[method](out) end
    return out, extra
  end

  -- fn(module, output, inputs...) runs after forward; a non-nil result
  -- replaces the output.  Returns a handle with :remove().
  function Module:register_forward_hook(fn)
    self._forward_hooks = self._forward_hooks or {}
    local hooks = self._forward_hooks
    hooks[#hooks + 1] = fn
    return {
      remove = function()
        for i = #hooks, 1, -1 do if hooks[i] == fn then table.remove(hooks, i) end end
      end,
    }
  end

  -- Printing, PyTorch style -------------------------------------------------
  function Module:extra_repr() return "" end

  local function render(m, indent)
    local name = getmetatable(m).__name
    local head = name .. "(" .. m:extra_repr()
    if #m._modules == 0 then return head .. ")" end
    local lines = { head }
    for _, entry in ipairs(m._modules) do
      lines[#lines + 1] = indent .. "  (" .. entry[1] .. "): " .. render(entry[2], indent .. "  ")
    end
    lines[#lines + 1] = indent .. ")"
    return table.concat(lines, "\n")
  end

  function Module.__tostring(m) return render(m, "") end

  -- Layers ----------------------------------------------------------------
  local function check_size(layer, position, value, what)
    if math.type(value) ~= "integer" and not (type(value) == "number" and value == math.floor(value)) then
      local shown = type(value) == "number" and tostring(value) or ("a %s"):format(type(value))
      error(("%s: bad argument #%d (%s must be an integer, got %s)"):format(layer, position, what, shown), 4)
    end
    if value < 1 then
      error(("%s: bad argument #%d (%s must be positive, got %d)"):format(layer, position, what, value), 4)
    end
    return math.tointeger(value)
  end

  local function check_options(layer, position, options)
    if options ~= nil and type(options) ~= "table" then
      error(("%s: bad argument #%d (options table expected, got %s)"):format(layer, position, type(options)), 4)
    end
    return options or {}
  end

  local Linear = class("Linear")
  function Linear:init(in_features, out_features, options)
    in_features = check_size("Linear", 1, in_features, "in_features")
    out_features = check_size("Linear", 2, out_features, "out_features")
    options = check_options("Linear", 3, options)
    self.in_features, self.out_features = in_features, out_features
    -- PyTorch's default: kaiming_uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)),
    -- and the bias from the same range.
    local bound = 1 / math.sqrt(in_features)
    local ok, weight = pcall(gl.empty, { out_features, in_features })
    if not ok then error("Linear: " .. tostring(weight):gsub("^empty: ", ""), 3) end
    self:register_parameter("weight", gl.init.uniform(weight, -bound, bound))
    gl.init.apply("Linear", options.init, self.weight, "init")
    if options.bias ~= false then
      self:register_parameter("bias", gl.init.uniform(gl.empty{out_features}, -bound, bound))
      gl.init.apply("Linear", options.bias_init, self.bias, "bias_init")
    end
  end
  function Linear:forward(x) return gl.linear(x, self.weight, self.bias) end
  function Linear:extra_repr()
    return ("in_features=%d, out_features=%d, bias=%s"):format(self.in_features, self.out_features,
                                                              tostring(self.bias ~= nil))
  end

  local Dropout = class("Dropout")
  function Dropout:init(p)
    p = p == nil and 0.5 or p
    if type(p) ~= "number" or not (p >= 0 and p <= 1) then
      error(("Dropout: bad argument #1 (p must be a number in [0, 1], got %s)"):format(tostring(p)), 3)
    end
    self.p = p
  end
  function Dropout:forward(x) return gl.dropout(x, self.p, self.training) end
  function Dropout:extra_repr() return ("p=%g"):format(self.p) end

  local Flatten = class("Flatten")
  function Flatten:init(start_dim, end_dim)
    self.start_dim, self.end_dim = start_dim or 2, end_dim or -1
    for position, v in ipairs { self.start_dim, self.end_dim } do
      if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v) and v > -2 ^ 31 and v < 2 ^ 31) or v == 0 then
        error(("Flatten: bad argument #%d (%s must be a non-zero integer dimension, got %s)")
          :format(position, position == 1 and "start_dim" or "end_dim", tostring(v)), 3)
      end
    end
    self.start_dim, self.end_dim = math.tointeger(self.start_dim), math.tointeger(self.end_dim)
  end
  function Flatten:forward(x)
    local shape, n = x:shape(), x:dim()
    local first = self.start_dim < 0 and n + 1 + self.start_dim or self.start_dim
    local last = self.end_dim < 0 and n + 1 + self.end_dim or self.end_dim
    if first < 1 or last > n or first > last then
      error(("Flatten: dimensions %d..%d do not fit input shape {%s}")
        :format(self.start_dim, self.end_dim, table.concat(shape, ", ")), 3)
    end
    local out = {}
    for d = 1, first - 1 do out[#out + 1] = shape[d] end
    local merged = 1
    for d = first, last do merged = merged * shape[d] end
    out[#out + 1] = merged
    for d = last + 1, n do out[#out + 1] = shape[d] end
    return x:reshape(out)
  end
  function Flatten:extra_repr() return ("start_dim=%d, end_dim=%d"):format(self.start_dim, self.end_dim) end

  local Identity = class("Identity")
  function Identity:forward(x) return x end

  -- Composition -----------------------------------------------------------
  local Sequential = class("Sequential")
  function Sequential:init(list)
    if list ~= nil and type(list) ~= "table" then
      error("Sequential: bad argument #1 (a list of modules expected, got " .. type(list) .. ")", 3)
    end
    for i, m in ipairs(list or {}) do
      if type(m) ~= "table" or not m._modules then
        error(("Sequential: item %d is a %s, not a module"):format(i, type(m)), 3)
      end
      self:add(m)
    end
  end
  function Sequential:add(m)
    self:register_module(tostring(#self._modules + 1), m)
    return self
  end
  function Sequential:get(i) local entry = self._modules[i]; return entry and entry[2] end
  function Sequential:size() return #self._modules end
  function Sequential:forward(x)
    for _, entry in ipairs(self._modules) do x = entry[2](x) end
    return x
  end

  local Residual = class("Residual")
  function Residual:init(block) self:register_module("block", block) end
  function Residual:forward(x, ...) return x + self.block(x, ...) end   -- extra arguments (an adjacency) pass through

  -- DenseNet-style: the block's output joins its input on the feature dimension
  -- (the last for 1-d inputs, dimension 2 otherwise: features of (B, F), channels of (B, C, H, W)).
  local Dense = class("Dense")
  function Dense:init(block) self:register_module("block", block) end
  function Dense:forward(x, ...) return gl.cat({ x, self.block(x, ...) }, x:dim() == 1 and 1 or 2) end

  -- Activations -----------------------------------------------------------
  local function activation(name, fn, repr)
    local cls = class(name)
    cls.forward = fn
    if repr then cls.extra_repr = repr end
    return cls
  end
  activation("Sigmoid", function(_, x) return gl.sigmoid(x) end)
  activation("Tanh", function(_, x) return gl.tanh(x) end)
  activation("ReLU", function(_, x) return gl.relu(x) end)
  activation("GELU", function(_, x) return gl.gelu(x) end)
  activation("Softplus", function(_, x) return gl.softplus(x) end)

  local LeakyReLU = activation("LeakyReLU", function(self, x) return gl.leaky_relu(x, self.slope) end,
                               function(self) return ("negative_slope=%g"):format(self.slope) end)
  -- A finite number, or nil for the default.
  local function check_number(layer, what, value, default)
    if value == nil then return default end
    if type(value) ~= "number" or value ~= value or value == math.huge or value == -math.huge then
      error(("%s: bad argument #1 (%s must be a finite number, got %s)"):format(layer, what, tostring(value)), 4)
    end
    return value
  end

  function LeakyReLU:init(slope) self.slope = check_number("LeakyReLU", "negative_slope", slope, 0.01) end

  local ELU = activation("ELU", function(self, x) return gl.elu(x, self.alpha) end,
                         function(self) return ("alpha=%g"):format(self.alpha) end)
  function ELU:init(alpha) self.alpha = check_number("ELU", "alpha", alpha, 1) end

  local PReLU = activation("PReLU", function(self, x) return gl.prelu(x, self.weight) end,
                           function(self) return ("num_parameters=%d"):format(self.weight:numel()) end)
  function PReLU:init(num_parameters, value)
    num_parameters = check_size("PReLU", 1, num_parameters or 1, "num_parameters")
    self:register_parameter("weight", gl.full({ num_parameters }, value or 0.25))
  end

  local Softmax = activation("Softmax", function(self, x) return gl.softmax(x, self.dim) end,
                             function(self) return ("dim=%d"):format(self.dim) end)
  function Softmax:init(dim) self.dim = dim or -1 end

  local LogSoftmax = activation("LogSoftmax", function(self, x) return gl.log_softmax(x, self.dim) end,
                                function(self) return ("dim=%d"):format(self.dim) end)
  function LogSoftmax:init(dim) self.dim = dim or -1 end

  nn.Module = Module
  return nn
end
