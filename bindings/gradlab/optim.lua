-- gradlab.optim — optimizers, clipping and learning-rate schedules (gl.optim).
--
-- The update of each parameter is one fused C kernel (engine/optim.c); this file
-- holds the bookkeeping: parameter groups, per-parameter state, checkpoints.
--
--   local opt = gl.optim.Adam(model:parameters(), {lr = 1e-3})
--   opt = gl.optim.SGD({ {params = a, lr = 0.1}, {params = b} }, {lr = 0.01, momentum = 0.9})
--   loss:backward(); opt:step(); opt:zero_grad()
--   opt.lr = 0.5            -- sets every group's lr; reading gives the first group's
return function(gl)
  local optim = {}

  -- Optimizer base -----------------------------------------------------------
  local Optimizer = {}
  Optimizer.__name = "Optimizer"

  local function is_module(x) return type(x) == "table" and x._modules ~= nil and x.parameters ~= nil end

  -- Normalizes the params argument into a list of groups {params = {...}, ...}.
  local function make_groups(name, params, defaults)
    if is_module(params) then params = params:parameters() end
    if gl.is_tensor(params) then params = { params } end
    if type(params) ~= "table" then
      error(("%s: bad argument #1 (a list of parameters or of parameter groups expected, got %s)")
        :format(name, type(params)), 3)
    end
    local groups = {}
    local is_groups = type(params[1]) == "table" and not gl.is_tensor(params[1])
    local raw = is_groups and params or { { params = params } }
    local seen = {}
    for gi, spec in ipairs(raw) do
      if type(spec) ~= "table" then error(("%s: group %d is a %s, not a table"):format(name, gi, type(spec)), 3) end
      local list = spec.params
      if is_module(list) then list = list:parameters() end
      if gl.is_tensor(list) then list = { list } end
      if type(list) ~= "table" then error(("%s: group %d has no params list"):format(name, gi), 3) end
      local group = {}
      for k, v in pairs(defaults) do group[k] = v end
      for k, v in pairs(spec) do if k ~= "params" then group[k] = v end end
      group.params = {}
      for i, p in ipairs(list) do
        if not gl.is_tensor(p) then
          error(("%s: parameter %d of group %d is a %s, not a tensor"):format(name, i, gi, type(p)), 3)
        end
        if not (p:is_leaf() and p:tracks_grad()) then
          error(("%s: parameter %d of group %d does not require grad (use gl.param)"):format(name, i, gi), 3)
        end
        if seen[p] then error(("%s: a parameter appears in more than one group"):format(name), 3) end
        if not p:is_contiguous() then
          error(("%s: parameter %d of group %d is a non-contiguous view; optimize the tensor it views"):format(name, i, gi), 3)
        end
        seen[p] = true
        group.params[#group.params + 1] = p
      end
      group.initial_lr = group.initial_lr or group.lr
      groups[#groups + 1] = group
    end
    local total = 0
    for _, g in ipairs(groups) do total = total + #g.params end
    if total == 0 then error(name .. ": no parameters to optimize (the list is empty)", 3) end
    return groups
  end

  local function check_hyper(name, group, key, low, high, inclusive_low)
    local v = group[key]
    if v == nil then return end
    if type(v) ~= "number" or v ~= v or v < low or v > high or (not inclusive_low and v == low and low ~= 0) then
      error(("%s: %s must be a number in [%g, %g], got %s"):format(name, key, low, high, tostring(v)), 4)
    end
  end

  -- class(name, defaults, validate, kind [, decoupled]): kind names the fused
  -- kernel of l_optim.c's _optim_step ("sgd", "adam", "rmsprop", "adagrad").
  local function class(name, defaults, validate, kind, decoupled)
    local cls = {}
    cls.__name = name
    cls.__index = function(self, key)
      if key == "lr" then return rawget(self, "param_groups")[1].lr end
      return cls[key] or Optimizer[key]
    end
    cls.__newindex = function(self, key, value)
      if key == "lr" then
        if type(value) ~= "number" or value ~= value or value < 0 then
          error(("%s: lr must be a non-negative number, got %s"):format(name, tostring(value)), 2)
        end
        for _, g in ipairs(self.param_groups) do g.lr = value end
        return
      end
      rawset(self, key, value)
    end
    cls.__tostring = function(self)
      local parts = {}
      for i, g in ipairs(self.param_groups) do
        local keys = {}
        for k, v in pairs(g) do
          if k ~= "params" and k ~= "initial_lr" then
            keys[#keys + 1] = ("%s=%s"):format(k, type(v) == "table" and "{" .. table.concat(v, ", ") .. "}" or tostring(v))
          end
        end
        table.sort(keys)
        parts[i] = ("  group %d (%d tensors): %s"):format(i, #g.params, table.concat(keys, ", "))
      end
      return name .. "(\n" .. table.concat(parts, "\n") .. "\n)"
    end
    cls.kind, cls.decoupled = kind, decoupled or false
    optim[name] = setmetatable(cls, {
      __call = function(_, params, options)
        if options ~= nil and type(options) ~= "table" then
          error(("%s: bad argument #2 (options table expected, got %s)"):format(name, type(options)), 2)
        end
        local merged = {}
        for k, v in pairs(defaults) do merged[k] = v end
        for k, v in pairs(options or {}) do merged[k] = v end
        if merged.lr == nil then error(name .. ": lr is required", 2) end
        local self = setmetatable({ param_groups = make_groups(name, params, merged), _state = {} }, cls)
        for _, g in ipairs(self.param_groups) do
          check_hyper(name, g, "lr", 0, math.huge, true)
          check_hyper(name, g, "weight_decay", 0, math.huge, true)
          check_hyper(name, g, "l1", 0, math.huge, true)
          validate(name, g, check_hyper)
        end
        return self
      end,
    })
    return optim[name]
  end

  function Optimizer:parameters()
    local list = {}
    for _, g in ipairs(self.param_groups) do for _, p in ipairs(g.params) do list[#list + 1] = p end end
    return list
  end

  function Optimizer:zero_grad()
    for _, g in ipairs(self.param_groups) do for _, p in ipairs(g.params) do p.grad = nil end end
  end

  -- One fused C loop per parameter group (l_optim.c: _optim_step): parameters
  -- without a gradient are skipped, as PyTorch does; state buffers appear on
  -- the first step; a parameter a monitor watches has a tap, and the kernel
  -- takes ‖Δp‖ and ‖p‖ in the same pass and writes the update ratio into the
  -- monitor itself.
  function Optimizer:step()
    local states, taps, kind, decoupled = self._state, gl._update_listeners, self.kind, self.decoupled
    for _, group in ipairs(self.param_groups) do gl._optim_step(kind, group, states, taps, decoupled) end
  end

  -- Checkpoints: state() copies every buffer; load_state copies them back, so
  -- continuing after a load is bit-identical to never stopping.
  function Optimizer:state()
    local saved = { kind = getmetatable(self).__name, groups = {}, params = {} }
    for gi, group in ipairs(self.param_groups) do
      local hyper = {}
      for k, v in pairs(group) do
        if k ~= "params" then hyper[k] = type(v) == "table" and { table.unpack(v) } or v end
      end
      saved.groups[gi] = hyper
      for pi, p in ipairs(group.params) do
        local state = self._state[p]
        if state then
          local copy = {}
          for k, v in pairs(state) do copy[k] = gl.is_tensor(v) and v:clone() or v end
          saved.params[#saved.params + 1] = { group = gi, index = pi, state = copy }
        end
      end
    end
    return saved
  end

  function Optimizer:load_state(saved)
    local name = getmetatable(self).__name
    if type(saved) ~= "table" or type(saved.groups) ~= "table" or type(saved.params) ~= "table" then
      error(name .. ":load_state: bad argument #1 (a table from :state() expected)", 2)
    end
    if saved.kind ~= nil and saved.kind ~= name then
      error(("%s:load_state: bad argument #1 (the state of a %s, not of a %s)"):format(name, tostring(saved.kind), name), 2)
    end
    if #saved.groups ~= #self.param_groups then
      error(("%s:load_state: the state has %d parameter groups, this optimizer %d")
        :format(name, #saved.groups, #self.param_groups), 2)
    end
    local states = {}
    for _, entry in ipairs(saved.params) do
      local group = self.param_groups[entry.group]
      local p = group and group.params[entry.index]
      if not p then error(name .. ":load_state: the state names a parameter this optimizer does not have", 2) end
      local copy = {}
      for k, v in pairs(entry.state) do
        if gl.is_tensor(v) then
          if table.concat(v:shape(), ",") ~= table.concat(p:shape(), ",") then
            error(("%s:load_state: buffer '%s' has shape {%s}, the parameter {%s}")
              :format(name, k, table.concat(v:shape(), ", "), table.concat(p:shape(), ", ")), 2)
          end
          copy[k] = v:clone()
        else
          copy[k] = v
        end
      end
      states[p] = copy
    end
    for gi, hyper in ipairs(saved.groups) do
      for k, v in pairs(hyper) do self.param_groups[gi][k] = type(v) == "table" and { table.unpack(v) } or v end
    end
    self._state = states
  end

  -- The optimizers ------------------------------------------------------------

  class("SGD", { momentum = 0, dampening = 0, nesterov = false, weight_decay = 0, l1 = 0 },
    function(name, g, check)
      check(name, g, "momentum", 0, math.huge, true)
      check(name, g, "dampening", 0, 1, true)
      if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
        error(name .. ": nesterov needs momentum > 0 and dampening = 0", 4)
      end
    end, "sgd")

  local function adam_validate(name, g, check)
    check(name, g, "eps", 0, math.huge, true)
    local b = g.betas
    if type(b) ~= "table" or type(b[1]) ~= "number" or type(b[2]) ~= "number"
       or b[1] < 0 or b[1] >= 1 or b[2] < 0 or b[2] >= 1 then
      error(name .. ": betas must be {beta1, beta2} with each in [0, 1)", 4)
    end
  end

  class("Adam", { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0, amsgrad = false, l1 = 0 },
        adam_validate, "adam")
  class("AdamW", { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2, amsgrad = false, l1 = 0 },
        adam_validate, "adam", true)

  class("RMSprop", { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false, l1 = 0 },
    function(name, g, check)
      check(name, g, "alpha", 0, 1, true)
      check(name, g, "eps", 0, math.huge, true)
      check(name, g, "momentum", 0, math.huge, true)
    end, "rmsprop")

  class("Adagrad", { lr = 1e-2, lr_decay = 0, weight_decay = 0, initial_accumulator_value = 0, eps = 1e-10, l1 = 0 },
    function(name, g, check)
      check(name, g, "lr_decay", 0, math.huge, true)
      check(name, g, "eps", 0, math.huge, true)
      check(name, g, "initial_accumulator_value", 0, math.huge, true)
    end, "adagrad")

  -- Clipping ----------------------------------------------------------------
  local function param_list(name, params)
    if is_module(params) then return params:parameters() end
    if gl.is_tensor(params) then return { params } end
    if type(params) ~= "table" then
      error(("%s: bad argument #1 (a list of parameters expected, got %s)"):format(name, type(params)), 3)
    end
    if params.param_groups then return params:parameters() end
    return params
  end

  -- Returns the total norm of all gradients before clipping (as PyTorch).
  -- norm_type 2 (default) or "inf".  A non-finite total leaves the gradients
  -- untouched (and is returned), so the caller — or the monitor — sees it.
  function optim.clip_grad_norm(params, max_norm, norm_type)
    params = param_list("clip_grad_norm", params)
    if type(max_norm) ~= "number" or max_norm ~= max_norm or max_norm < 0 then
      error("clip_grad_norm: bad argument #2 (max_norm must be a non-negative number, got " .. tostring(max_norm) .. ")", 2)
    end
    norm_type = norm_type or 2
    if norm_type ~= 2 and norm_type ~= "inf" and norm_type ~= math.huge then
      error("clip_grad_norm: norm_type must be 2 or \"inf\", got " .. tostring(norm_type), 2)
    end
    local total, nonfinite = 0, false
    for _, p in ipairs(params) do
      local g = p.grad
      if g then
        local s = g:stats()
        if s.nonfinite > 0 then nonfinite = true end
        if norm_type == 2 then total = total + s.sum_squares
        else total = math.max(total, s.max_abs) end
      end
    end
    if norm_type == 2 then total = math.sqrt(total) end
    local post = total
    if nonfinite then
      total, post = math.huge, math.huge
    else
      local coefficient = max_norm / (total + 1e-6)
      if coefficient < 1 then
        for _, p in ipairs(params) do if p.grad then p.grad:mul_(coefficient) end end
        post = total * coefficient
      end
    end
    -- Monitors watching these parameters record the norm before and after.
    for monitor in pairs(gl._monitors or {}) do monitor:_note_clip(params, total, post) end
    return total
  end

  function optim.clip_grad_value(params, value)
    params = param_list("clip_grad_value", params)
    if type(value) ~= "number" or value ~= value or value < 0 then
      error("clip_grad_value: bad argument #2 (a non-negative number expected, got " .. tostring(value) .. ")", 2)
    end
    gl.no_grad(function()
      for _, p in ipairs(params) do
        if p.grad then p.grad:copy(p.grad:clamp(-value, value)) end
      end
    end)
  end

  -- Schedules ---------------------------------------------------------------
  -- Each schedule sets every group's lr from that group's base lr (its lr when
  -- the schedule was made); s:step() advances one step, s:lr() reads the first
  -- group's current lr.  Formulas (k = number of step() calls so far):
  --   step_lr       base * gamma ^ floor(k / size)
  --   cosine        eta_min + (base - eta_min) (1 + cos(pi k / T_max)) / 2     (PyTorch's closed form)
  --   cosine_restarts  the same within each period; periods T0, T0 T_mult, T0 T_mult^2, ...
  --   warmup        base * (k + 1) / steps for k < steps, then the chained schedule (if any)
  local Schedule = {}
  Schedule.__index = Schedule
  function Schedule:lr() return self.optimizer.param_groups[1].lr end
  function Schedule:apply()
    for i, g in ipairs(self.optimizer.param_groups) do g.lr = self:value(self.base[i]) end
  end
  function Schedule:step()
    self.k = self.k + 1
    self:advance()
    self:apply()
    return self:lr()
  end
  function Schedule:advance() end

  local function schedule(name, optimizer, fields)
    if type(optimizer) ~= "table" or not optimizer.param_groups then
      error(("%s: bad argument #1 (an optimizer expected, got %s)"):format(name, type(optimizer)), 3)
    end
    local s = setmetatable(fields, Schedule)
    s.name, s.optimizer, s.k, s.base = name, optimizer, 0, {}
    for i, g in ipairs(optimizer.param_groups) do s.base[i] = g.lr end
    return s
  end

  local function positive_integer(name, position, v, what)
    if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) or v < 1 then
      error(("%s: bad argument #%d (%s must be a positive integer, got %s)"):format(name, position, what, tostring(v)), 3)
    end
    return math.tointeger(v)
  end

  function optim.step_lr(optimizer, size, gamma)
    local s = schedule("step_lr", optimizer, {
      size = positive_integer("step_lr", 2, size, "size"), gamma = gamma or 0.1,
    })
    if type(s.gamma) ~= "number" or s.gamma < 0 then error("step_lr: gamma must be a non-negative number", 2) end
    function s:value(base) return base * self.gamma ^ (self.k // self.size) end
    s:apply()
    return s
  end

  function optim.cosine(optimizer, T_max, eta_min)
    local s = schedule("cosine", optimizer, {
      T_max = positive_integer("cosine", 2, T_max, "T_max"), eta_min = eta_min or 0,
    })
    function s:value(base)
      return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.k / self.T_max)) / 2
    end
    s:apply()
    return s
  end

  function optim.cosine_restarts(optimizer, T0, T_mult, eta_min)
    local s = schedule("cosine_restarts", optimizer, {
      T_i = positive_integer("cosine_restarts", 2, T0, "T0"), T_cur = 0,
      T_mult = positive_integer("cosine_restarts", 3, T_mult or 1, "T_mult"), eta_min = eta_min or 0,
    })
    function s:advance()
      self.T_cur = self.T_cur + 1
      if self.T_cur >= self.T_i then
        self.T_cur = self.T_cur - self.T_i
        self.T_i = self.T_i * self.T_mult
      end
    end
    function s:value(base)
      return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
    end
    s:apply()
    return s
  end

  function optim.warmup(optimizer, steps, next_schedule)
    local s = schedule("warmup", optimizer, { steps = positive_integer("warmup", 2, steps, "steps") })
    if next_schedule ~= nil and (type(next_schedule) ~= "table" or not next_schedule.step) then
      error("warmup: bad argument #3 (a schedule to chain into expected)", 2)
    end
    if next_schedule then
      if next_schedule.optimizer ~= optimizer then error("warmup: the chained schedule drives another optimizer", 2) end
      s.base = next_schedule.base   -- the chained schedule starts from the same base
    end
    s.next = next_schedule
    function s:value(base) return base * math.min(1, (self.k + 1) / self.steps) end
    function s:step()
      self.k = self.k + 1
      if self.k >= self.steps and self.next then return self.next:step() end
      self:apply()
      return self:lr()
    end
    s:apply()
    return s
  end

  return optim
end
