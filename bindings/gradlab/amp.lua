-- gradlab.amp — loss scaling for reduced precision (gl.amp), with PyTorch's
-- GradScaler semantics:
--
--   local scaler = gl.amp.GradScaler{init_scale = 2^16, growth_factor = 2,
--                                    backoff_factor = 0.5, growth_interval = 2000}
--   scaler:scale(loss):backward()
--   scaler:unscale(opt)          -- optional: before clipping
--   scaler:step(opt)             -- unscales if needed; skips the step on inf/NaN
--   scaler:update()              -- backs off after a skipped step, grows after
--                                -- growth_interval clean steps in a row
return function(gl)
  local amp = {}
  local GradScaler = {}
  GradScaler.__index = GradScaler
  GradScaler.__name = "GradScaler"

  local function number_option(options, key, default, low)
    local v = options[key]
    if v == nil then return default end
    if type(v) ~= "number" or v ~= v or v <= low then
      error(("GradScaler: %s must be a number > %g, got %s"):format(key, low, tostring(v)), 3)
    end
    return v
  end

  function amp.GradScaler(options)
    options = options or {}
    if type(options) ~= "table" then error("GradScaler: bad argument #1 (options table expected)", 2) end
    local self = setmetatable({
      scale_value = number_option(options, "init_scale", 2 ^ 16, 0),
      growth_factor = number_option(options, "growth_factor", 2, 1),
      backoff_factor = number_option(options, "backoff_factor", 0.5, 0),
      growth_interval = math.tointeger(number_option(options, "growth_interval", 2000, 0)),
      enabled = options.enabled ~= false,
      growth_tracker = 0,
      skipped = 0,
      _unscaled = {},
      _found_inf = false,
    }, GradScaler)
    if self.backoff_factor >= 1 then error("GradScaler: backoff_factor must be below 1", 2) end
    if not self.growth_interval then error("GradScaler: growth_interval must be an integer", 2) end
    return self
  end

  function GradScaler:get_scale() return self.enabled and self.scale_value or 1 end

  function GradScaler:scale(loss)
    if not gl.is_tensor(loss) then error("GradScaler:scale: bad argument #1 (tensor expected, got " .. type(loss) .. ")", 2) end
    if not self.enabled then return loss end
    return loss * self.scale_value
  end

  -- Divides every gradient of the optimizer by the scale (once per step) and
  -- records whether any of them holds inf or NaN.
  function GradScaler:unscale(optimizer)
    if not self.enabled then return end
    if self._unscaled[optimizer] then
      error("GradScaler:unscale: already called for this optimizer since the last update()", 2)
    end
    local inverse = 1 / self.scale_value
    for _, p in ipairs(optimizer:parameters()) do
      local g = p.grad
      if g then
        if g:stats().nonfinite > 0 then self._found_inf = true end
        g:mul_(inverse)
      end
    end
    self._unscaled[optimizer] = true
  end

  -- Returns true when the optimizer stepped, false when the step was skipped.
  function GradScaler:step(optimizer)
    if type(optimizer) ~= "table" or not optimizer.step then
      error("GradScaler:step: bad argument #1 (an optimizer expected)", 2)
    end
    if not self.enabled then optimizer:step(); return true end
    if not self._unscaled[optimizer] then self:unscale(optimizer) end
    if self._found_inf then
      self.skipped = self.skipped + 1
      return false
    end
    optimizer:step()
    return true
  end

  function GradScaler:update(new_scale)
    if not self.enabled then return end
    if new_scale ~= nil then
      if type(new_scale) ~= "number" or new_scale <= 0 then error("GradScaler:update: the new scale must be a positive number", 2) end
      self.scale_value = new_scale
    elseif self._found_inf then
      self.scale_value = self.scale_value * self.backoff_factor
      self.growth_tracker = 0
    else
      self.growth_tracker = self.growth_tracker + 1
      if self.growth_tracker == self.growth_interval then
        self.scale_value = self.scale_value * self.growth_factor
        self.growth_tracker = 0
      end
    end
    self._found_inf = false
    self._unscaled = {}
  end

  function GradScaler:state()
    return { scale = self.scale_value, growth_tracker = self.growth_tracker, skipped = self.skipped }
  end

  function GradScaler:load_state(s)
    if type(s) ~= "table" or type(s.scale) ~= "number" then error("GradScaler:load_state: a table from :state() expected", 2) end
    self.scale_value, self.growth_tracker, self.skipped = s.scale, s.growth_tracker or 0, s.skipped or 0
  end

  GradScaler.__tostring = function(self)
    return ("GradScaler(scale=%g, growth_factor=%g, backoff_factor=%g, growth_interval=%d)")
      :format(self.scale_value, self.growth_factor, self.backoff_factor, self.growth_interval)
  end

  return amp
end
