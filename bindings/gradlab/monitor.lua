-- gradlab.monitor — the gradient monitor (gl.monitor): per-layer gradient and
-- activation statistics over training, warnings, CSV, and figures.
--
--   local mon = gl.monitor(model, {every = 1, activations = true, vanish = 1e-7, explode = 1e3})
--   for step = 1, n do
--     local loss = loss_fn(model(x), y)
--     opt:zero_grad(); loss:backward()
--     mon:record(step, {loss = loss:item()})    -- after backward, before the step
--     opt:step()                                -- the monitor sees ‖Δw‖/‖w‖ of this step
--   end
--   print(mon:summary()); print(mon:sparkline()); mon:plot("run.png", {kind = "dashboard"})
--
-- Per named parameter: grad_norm, grad_mean, grad_max, update_ratio.  Per module
-- (dotted path): act_mean, act_std, act_zero_frac, act_sat_frac, grad_out_norm
-- (‖∂L/∂output‖, the backward signal, taken by the engine as backward passes:
-- no hooks for the user to write).  Every statistic is one C pass over a buffer.
return function(gl)
  local plot = require("gradlab.monitor_plot")(gl)

  local Monitor = {}
  Monitor.__index = Monitor
  Monitor.__name = "Monitor"

  -- Parameters the optimizers report updates for, and the live monitors that
  -- clip_grad_norm reports to (weak: a dropped monitor costs nothing).
  local update_listeners = setmetatable({}, { __mode = "k" })
  local monitors = setmetatable({}, { __mode = "k" })
  gl._update_listeners = update_listeners
  gl._monitors = monitors

  -- Saturation bands by module class: the activation is saturated outside them.
  local saturation = {
    Tanh = { -0.99, 0.99 },
    Sigmoid = { 0.01, 0.99 },
  }

  local PARAM_FIELDS = { "grad_norm", "grad_mean", "grad_max", "update_ratio" }
  local MODULE_FIELDS = { "act_mean", "act_std", "act_zero_frac", "act_sat_frac", "grad_out_norm" }
  Monitor.PARAM_FIELDS, Monitor.MODULE_FIELDS = PARAM_FIELDS, MODULE_FIELDS

  local function option(options, key, default, check)
    local v = options[key]
    if v == nil then return default end
    if not check(v) then error(("monitor: bad option %s = %s"):format(key, tostring(v)), 3) end
    return v
  end

  local function positive_number(v) return type(v) == "number" and v > 0 and v == v end

  function gl.monitor(model, options)
    if type(model) ~= "table" or not model.named_parameters then
      error("monitor: bad argument #1 (a module expected, got " .. type(model) .. ")", 2)
    end
    if options ~= nil and type(options) ~= "table" then
      error("monitor: bad argument #2 (options table expected, got " .. type(options) .. ")", 2)
    end
    options = options or {}
    local self = setmetatable({
      model = model,
      every = option(options, "every", 1, function(v) return math.type(v) == "integer" and v >= 1 end),
      activations = option(options, "activations", true, function(v) return type(v) == "boolean" end),
      vanish = option(options, "vanish", 1e-7, positive_number),
      explode = option(options, "explode", 1e3, positive_number),
      params = {},          -- ordered {name, tensor}
      modules = {},         -- ordered {path, module, class}
      records = {},
      _warned = {},
      _warnings = {},
      _armed = true,
      _pending = {},        -- module path -> stats of this step's forward
      _watched = {},        -- module path -> output tensor whose backward signal we read
      _hooks = {},
    }, Monitor)
    for _, entry in ipairs(model:named_parameters()) do
      self.params[#self.params + 1] = { entry[1], entry[2] }
      update_listeners[entry[2]] = self
    end
    if #self.params == 0 then error("monitor: the model has no parameters to watch", 2) end
    self._param_index = {}
    for i, entry in ipairs(self.params) do self._param_index[entry[2]] = i end
    for _, entry in ipairs(model:named_modules()) do
      local path, m = entry[1], entry[2]
      if path ~= "" then
        local class = getmetatable(m).__name
        self.modules[#self.modules + 1] = { path, m, class }
        if self.activations then
          self._hooks[#self._hooks + 1] = m:register_forward_hook(function(_, out)
            self:_observe(path, class, out)
          end)
        end
      end
    end
    self._initial_weight_var = {}
    for _, entry in ipairs(self.params) do
      local s = entry[2]:stats()
      self._initial_weight_var[entry[1]] = s.std * s.std
    end
    monitors[self] = true
    return self
  end

  -- A module's output, seen in forward on a step that will be recorded.
  function Monitor:_observe(path, class, out)
    if not self._armed or not gl.is_tensor(out) then return end
    local band = saturation[class]
    local s = band and out:stats(band[1], band[2]) or out:stats()
    local finite = s.count - s.nonfinite
    self._pending[path] = {
      act_mean = s.mean,
      act_std = s.std,
      act_zero_frac = s.count > 0 and s.zeros / s.count or 0,
      act_sat_frac = band and (finite > 0 and s.saturated / finite or 0) or nil,
      nonfinite = s.nonfinite,
    }
    if out:tracks_grad() and out:watch_grad() then self._watched[path] = out end
  end

  function Monitor:_warn(kind, name, step, value, direction)
    local key = kind .. "\0" .. name
    if self._warned[key] then return end
    self._warned[key] = true
    self._warnings[#self._warnings + 1] = { kind = kind, name = name, step = step, value = value,
                                            direction = direction }
  end

  -- Call after loss:backward() (and before the optimizer step).
  function Monitor:record(step, extra)
    if type(step) ~= "number" then
      error("record: bad argument #1 (step number expected, got " .. type(step) .. ")", 2)
    end
    if step ~= step or step == math.huge or step == -math.huge then
      error("record: bad argument #1 (step must be a finite number, got " .. tostring(step) .. ")", 2)
    end
    if extra ~= nil and type(extra) ~= "table" then
      error("record: bad argument #2 (a table such as {loss = v} expected)", 2)
    end
    -- Forward hooks run only before a step that will be kept (the first
    -- forward always, since its step number is not known yet).
    self._armed = self.every == 1 or (step + 1) % self.every == 0
    if step % self.every ~= 0 then
      self._pending, self._watched = {}, {}
      return nil
    end
    local loss = extra and extra.loss
    if gl.is_tensor(loss) then loss = loss:item() end
    local rec = { step = step, loss = loss, params = {}, modules = {} }
    for _, entry in ipairs(self.params) do
      local name, p = entry[1], entry[2]
      local g = p.grad
      if g then
        local s = g:stats()
        local r = { grad_norm = s.norm, grad_mean = s.mean, grad_max = s.max_abs }
        if s.nonfinite > 0 then
          r.grad_norm = 0 / 0
          self:_warn("non-finite", name, step, 0 / 0, "backward")
        elseif s.norm < self.vanish then
          self:_warn("vanishing", name, step, s.norm)
        elseif s.norm > self.explode then
          self:_warn("exploding", name, step, s.norm)
        end
        rec.params[name] = r
      end
    end
    for _, entry in ipairs(self.modules) do
      local path = entry[1]
      local r = self._pending[path]
      if r then
        if r.nonfinite > 0 then self:_warn("non-finite", path, step, 0 / 0, "forward") end
        r.nonfinite = nil
        local out = self._watched[path]
        local g = out and out:watched_grad()
        if g then
          r.grad_out_norm = g.nonfinite > 0 and 0 / 0 or g.norm
          if g.nonfinite > 0 then self:_warn("non-finite", path, step, 0 / 0, "backward") end
        end
        rec.modules[path] = r
      end
    end
    self._pending, self._watched = {}, {}
    if self._pending_clip then rec.clip, self._pending_clip = self._pending_clip, nil end
    self.records[#self.records + 1] = rec
    self._current, self._stepped = rec, false
    return rec
  end

  -- Called by the optimizers for every watched parameter they update.
  function Monitor:_note_update(p, update_norm, param_norm)
    local rec = self._current
    local index = self._param_index[p]
    if not rec or not index then return end
    local r = rec.params[self.params[index][1]]
    if r and r.update_ratio == nil then   -- a second step after one record keeps the first
      r.update_ratio = param_norm > 0 and update_norm / param_norm or (update_norm > 0 and math.huge or 0)
    end
    self._stepped = true
  end

  -- Called by optim.clip_grad_norm with the parameters it clipped.
  function Monitor:_note_clip(params, pre, post)
    local ours = false
    for _, p in ipairs(params) do if self._param_index[p] then ours = true; break end end
    if not ours then return end
    local clip = { pre = pre, post = post, clipped = post < pre }
    if self._current and not self._stepped and not self._current.clip then
      self._current.clip = clip
    else
      self._pending_clip = clip
    end
  end

  function Monitor:remove()
    for _, h in ipairs(self._hooks) do h.remove() end
    self._hooks = {}
    for _, entry in ipairs(self.params) do
      if update_listeners[entry[2]] == self then update_listeners[entry[2]] = nil end
    end
    monitors[self] = nil
  end

  -- Queries -------------------------------------------------------------------
  function Monitor:names(kind)
    local list = {}
    if kind ~= "module" then for _, e in ipairs(self.params) do list[#list + 1] = e[1] end end
    if kind ~= "param" then for _, e in ipairs(self.modules) do list[#list + 1] = e[1] end end
    return list
  end

  -- x (steps) and y for a parameter name, a module path, or "loss".  Steps where
  -- the value is missing are left out.
  function Monitor:series(name, field)
    if type(name) ~= "string" then error("series: bad argument #1 (a parameter or module name expected)", 2) end
    local xs, ys = {}, {}
    if name == "loss" then
      for _, rec in ipairs(self.records) do
        if rec.loss then xs[#xs + 1], ys[#ys + 1] = rec.step, rec.loss end
      end
      return xs, ys
    end
    field = field or "grad_norm"
    local known_field = false
    for _, f in ipairs(PARAM_FIELDS) do known_field = known_field or f == field end
    for _, f in ipairs(MODULE_FIELDS) do known_field = known_field or f == field end
    if not known_field then
      error(("series: bad argument #2 (unknown field '%s'; one of %s, %s)")
        :format(tostring(field), table.concat(PARAM_FIELDS, ", "), table.concat(MODULE_FIELDS, ", ")), 2)
    end
    local found = false
    for _, rec in ipairs(self.records) do
      local r = rec.params[name] or rec.modules[name]
      if r then
        found = true
        local v = r[field]
        if v ~= nil then xs[#xs + 1], ys[#ys + 1] = rec.step, v end
      end
    end
    if not found and not self:_knows(name) then
      error(("series: no parameter or module named '%s' (try mon:names())"):format(name), 2)
    end
    return xs, ys
  end

  function Monitor:_knows(name)
    for _, n in ipairs(self:names()) do if n == name then return true end end
    return false
  end

  function Monitor:warnings()
    local list = {}
    for i, w in ipairs(self._warnings) do list[i] = w end
    return setmetatable(list, { __tostring = function(l)
      if #l == 0 then return "no warnings" end
      local lines = {}
      for i, w in ipairs(l) do
        lines[i] = ("step %s: %s %s%s (%s)"):format(tostring(w.step), w.kind, w.name,
          w.direction and (" in " .. w.direction) or "",
          w.value ~= w.value and "NaN/Inf" or ("%.3g"):format(w.value))
      end
      return table.concat(lines, "\n")
    end })
  end

  -- The first and last weight-bearing layers (parameters named *.weight, else all).
  function Monitor:_layers()
    local weights = {}
    for _, e in ipairs(self.params) do
      -- (read back from CSV there is no tensor: the name decides)
      if e[1]:match("weight$") and (e[2] == nil or e[2]:dim() >= 2) then weights[#weights + 1] = e[1] end
    end
    if #weights == 0 then for _, e in ipairs(self.params) do weights[#weights + 1] = e[1] end end
    return weights
  end

  function Monitor:summary()
    local first, last = self.records[1], self.records[#self.records]
    local layers = self:_layers()
    local rows = {}
    local function value(rec, name, field)
      local r = rec and (rec.params[name] or rec.modules[name])
      return r and r[field]
    end
    for _, name in ipairs(layers) do
      rows[#rows + 1] = { name = name, first = value(first, name, "grad_norm"), last = value(last, name, "grad_norm"),
                          update_ratio = value(last, name, "update_ratio") }
    end
    local summary = { rows = rows, steps = #self.records,
                      first_layer = layers[1], last_layer = layers[#layers] }
    local a, b = rows[1], rows[#rows]
    if a and b then
      summary.ratio_first = a.first and b.first and b.first > 0 and a.first / b.first or nil
      summary.ratio_last = a.last and b.last and b.last > 0 and a.last / b.last or nil
    end
    local clipped, total = 0, 0
    for _, rec in ipairs(self.records) do
      if rec.clip then total = total + 1; if rec.clip.clipped then clipped = clipped + 1 end end
    end
    summary.clipped_fraction = total > 0 and clipped / total or nil
    return setmetatable(summary, { __tostring = function(s)
      local function f(v) return v == nil and "-" or ("%.3e"):format(v) end
      local lines = { ("gradient norms over %d recorded steps"):format(s.steps),
                      ("%-28s %12s %12s %12s"):format("parameter", "first step", "last step", "update ratio") }
      for _, r in ipairs(s.rows) do
        lines[#lines + 1] = ("%-28s %12s %12s %12s"):format(r.name, f(r.first), f(r.last), f(r.update_ratio))
      end
      lines[#lines + 1] = ("first/last layer ratio: %s at the first step, %s at the last")
        :format(f(s.ratio_first), f(s.ratio_last))
      if s.clipped_fraction then
        lines[#lines + 1] = ("clipped on %.1f%% of the steps"):format(100 * s.clipped_fraction)
      end
      return table.concat(lines, "\n")
    end })
  end

  -- One Unicode sparkline per layer of log10(field) over the recorded steps.
  function Monitor:sparkline(field, width)
    field = field or "grad_norm"
    width = width or 40
    local bars = { "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" }
    local names = (field:match("^act_") or field == "grad_out_norm") and self:names("module") or self:_layers()
    local lines, label = {}, 0
    for _, name in ipairs(names) do label = math.max(label, #name) end
    local low, high = math.huge, -math.huge
    local all = {}
    for i, name in ipairs(names) do
      local _, ys = self:series(name, field)
      local logs = {}
      for j, v in ipairs(ys) do
        logs[j] = (v > 0 and v < math.huge) and math.log(v, 10) or nil
        if logs[j] then low, high = math.min(low, logs[j]), math.max(high, logs[j]) end
      end
      all[i] = { logs, #ys }
    end
    for i, name in ipairs(names) do
      local logs, n = all[i][1], all[i][2]
      local chars = {}
      local stride = math.max(1, n / width)
      local k = 1
      while k <= n and #chars < width do
        local j = math.floor(k)
        local v = logs[j]
        if v == nil then chars[#chars + 1] = "·"
        else
          local level = high > low and math.floor((v - low) / (high - low) * 7 + 0.5) + 1 or 4
          chars[#chars + 1] = bars[level]
        end
        k = k + stride
      end
      local last = n > 0 and logs[n] and ("%.2e"):format(10 ^ logs[n]) or "-"
      lines[#lines + 1] = ("%-" .. label .. "s %s %s"):format(name, table.concat(chars), last)
    end
    lines[#lines + 1] = ("(%s, log scale from %.1e to %.1e)"):format(field, 10 ^ low, 10 ^ high)
    return table.concat(lines, "\n")
  end

  -- CSV -----------------------------------------------------------------------
  local CSV_COLUMNS = { "step", "kind", "name", "grad_norm", "grad_mean", "grad_max", "update_ratio",
                        "act_mean", "act_std", "act_zero_frac", "act_sat_frac", "grad_out_norm",
                        "loss", "clip_pre", "clip_post" }
  Monitor.CSV_COLUMNS = CSV_COLUMNS

  local function csv_number(v)
    if v == nil then return "" end
    if v ~= v then return "nan" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    return ("%.9g"):format(v)
  end

  -- One row per step × parameter and step × module, plus a "step" row holding
  -- the loss and clipping; written to a temp file and renamed into place.
  function Monitor:to_csv(path)
    if type(path) ~= "string" or path == "" then error("to_csv: bad argument #1 (a file path expected)", 2) end
    local lines = { table.concat(CSV_COLUMNS, ",") }
    local function row(values)
      local cells = {}
      for i, column in ipairs(CSV_COLUMNS) do
        local v = values[column]
        cells[i] = type(v) == "string" and v or csv_number(v)
      end
      lines[#lines + 1] = table.concat(cells, ",")
    end
    for _, rec in ipairs(self.records) do
      row({ step = rec.step, kind = "step", name = "", loss = rec.loss,
            clip_pre = rec.clip and rec.clip.pre, clip_post = rec.clip and rec.clip.post })
      for _, e in ipairs(self.params) do
        local r = rec.params[e[1]]
        if r then
          local values = { step = rec.step, kind = "param", name = e[1] }
          for _, f in ipairs(PARAM_FIELDS) do values[f] = r[f] end
          row(values)
        end
      end
      for _, e in ipairs(self.modules) do
        local r = rec.modules[e[1]]
        if r then
          local values = { step = rec.step, kind = "module", name = e[1] }
          for _, f in ipairs(MODULE_FIELDS) do values[f] = r[f] end
          row(values)
        end
      end
    end
    for _, e in ipairs(self.params) do
      if e[1]:find(",", 1, true) then error("to_csv: parameter name '" .. e[1] .. "' contains a comma", 2) end
    end
    local temp = path .. ".tmp" .. tostring(os.time()) .. tostring(math.random(1e9))
    local file, message = io.open(temp, "w")
    if not file then error(("to_csv: cannot write '%s': %s"):format(path, message), 2) end
    local ok, write_error = file:write(table.concat(lines, "\n"), "\n")
    file:close()
    if not ok then
      os.remove(temp)
      error(("to_csv: cannot write '%s': %s"):format(path, write_error), 2)
    end
    local renamed, rename_error = os.rename(temp, path)
    if not renamed then
      os.remove(temp)
      error(("to_csv: cannot write '%s': %s"):format(path, rename_error), 2)
    end
    return path
  end

  -- A monitor's records read back from to_csv's file (for `gradlab plot`):
  -- everything but the model, so series, summary, sparkline and plot work.
  function gl.monitor_from_csv(path)
    if type(path) ~= "string" then error("monitor_from_csv: bad argument #1 (a file path expected)", 2) end
    local file, message = io.open(path, "r")
    if not file then error(("monitor_from_csv: cannot read '%s': %s"):format(path, message), 2) end
    local header, read_error = file:read("l")
    if not header then
      file:close()
      if read_error then error(("monitor_from_csv: cannot read '%s': %s"):format(path, read_error), 2) end
      error(("monitor_from_csv: '%s' is empty"):format(path), 2)
    end
    local columns = {}
    for name in (header .. ","):gmatch("([^,]*),") do columns[#columns + 1] = name end
    local position = {}
    for i, name in ipairs(columns) do position[name] = i end
    for _, needed in ipairs{ "step", "kind", "name" } do
      if not position[needed] then
        file:close()
        error(("monitor_from_csv: '%s' is not a monitor CSV (no '%s' column)"):format(path, needed), 2)
      end
    end
    local self = setmetatable({ params = {}, modules = {}, records = {}, _warnings = {}, _warned = {},
                                _param_index = {}, _initial_weight_var = {} }, Monitor)
    local seen_param, seen_module, by_step = {}, {}, {}
    local line_number = 1
    for line in file:lines() do
      line_number = line_number + 1
      if line:find("\0", 1, true) then
        file:close()
        error(("monitor_from_csv: '%s' line %d contains a NUL byte (not a CSV that to_csv wrote)"):format(path, line_number), 2)
      end
      if line ~= "" then
        local cells = {}
        for cell in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = cell end
        if #cells ~= #columns then
          file:close()
          error(("monitor_from_csv: '%s' line %d has %d fields, the header %d"):format(path, line_number, #cells, #columns), 2)
        end
        local function number(column)
          local text = cells[position[column] or 0]
          if text == nil or text == "" then return nil end
          if text == "nan" then return 0 / 0 end
          if text == "inf" then return math.huge end
          if text == "-inf" then return -math.huge end
          local v = tonumber(text)
          if v == nil then
            file:close()
            error(("monitor_from_csv: '%s' line %d: '%s' is not a number (column %s)"):format(path, line_number, text, column), 2)
          end
          return v
        end
        local step = number("step")
        if step == nil then file:close(); error(("monitor_from_csv: '%s' line %d has no step"):format(path, line_number), 2) end
        if step ~= step or step == math.huge or step == -math.huge then
          file:close()
          error(("monitor_from_csv: '%s' line %d: step %s is not a finite number"):format(path, line_number, tostring(step)), 2)
        end
        local rec = by_step[step]
        if not rec then
          rec = { step = step, params = {}, modules = {} }
          by_step[step] = rec
          self.records[#self.records + 1] = rec
        end
        local kind, name = cells[position.kind], cells[position.name]
        if kind == "step" then
          rec.loss = number("loss")
          local pre, post = number("clip_pre"), number("clip_post")
          if pre then rec.clip = { pre = pre, post = post or pre, clipped = (post or pre) < pre } end
        elseif kind == "param" then
          local r = {}
          for _, f in ipairs(PARAM_FIELDS) do r[f] = number(f) end
          rec.params[name] = r
          if not seen_param[name] then seen_param[name] = true; self.params[#self.params + 1] = { name } end
        elseif kind == "module" then
          local r = {}
          for _, f in ipairs(MODULE_FIELDS) do r[f] = number(f) end
          rec.modules[name] = r
          if not seen_module[name] then seen_module[name] = true; self.modules[#self.modules + 1] = { name } end
        else
          file:close()
          error(("monitor_from_csv: '%s' line %d: unknown kind '%s'"):format(path, line_number, tostring(kind)), 2)
        end
      end
    end
    file:close()
    table.sort(self.records, function(a, b) return a.step < b.step end)
    return self
  end

  -- Figures -------------------------------------------------------------------
  -- The mean-field prediction of the backward signal at each weight layer's
  -- output (see monitor_plot.lua), and the layers (path, class of the
  -- activation that follows).
  function Monitor:theory() return plot.theory(self) end

  function Monitor:plot(path, options)
    return plot.render(self, path, options)
  end

  Monitor.__tostring = function(self)
    return ("Monitor(%d parameters, %d modules, %d records)"):format(#self.params, #self.modules, #self.records)
  end

  return Monitor
end
