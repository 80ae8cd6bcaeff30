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
-- no hooks for the user to write).
--
-- The work is C's (engine/monitor_record.c): each module carries a tap in its
-- `_taps` list, and the C call ending its forward hands the output to the recorder (statistics taken at
-- once, backward asked for the signal's norm); record() is one C call over
-- every parameter and module; the optimizers' kernels write the update ratio.
-- Values live in C columns: `mon.records` builds a record's tables only when
-- it is read (and keeps them while they are referenced), so a long run costs
-- the numbers and nothing else.
return function(gl)
  local plot = require("gradlab.monitor_plot")(gl)

  local Monitor = {}
  Monitor.__index = Monitor
  Monitor.__name = "Monitor"

  -- Parameters the optimizers report updates for (parameter -> its tap), and
  -- the live monitors that clip_grad_norm reports to (weak: a dropped monitor
  -- costs nothing).
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
  local is_param_field, is_module_field = {}, {}
  for _, f in ipairs(PARAM_FIELDS) do is_param_field[f] = true end
  for _, f in ipairs(MODULE_FIELDS) do is_module_field[f] = true end

  local function option(options, key, default, check)
    local v = options[key]
    if v == nil then return default end
    if not check(v) then error(("monitor: bad option %s = %s"):format(key, tostring(v)), 3) end
    return v
  end

  local function positive_number(v) return type(v) == "number" and v > 0 and v == v end

  -- Records of a live monitor, built from the C columns when read --------------
  -- A record is {step =, loss =} whose `params`, `modules` and `clip` are
  -- filled in on first access.  The last record may still change (the update
  -- ratio of the step that follows it, a clip): its tables are rebuilt when
  -- the recorder's version moves; older records are final and kept.
  -- Each record has its own small metatable holding its index, so making one
  -- (every mon:record returns one) touches no shared table: weak tables
  -- indexed by records grew to the most records ever alive between two
  -- collections and kept that size.
  local function record_meta(self)
    local open = setmetatable({}, { __mode = "k" })    -- last record -> {version, params, modules}
    local recorder = self._rec
    local function lookup(rec, key)
      local kind = key == "params" and "param" or key == "modules" and "module" or nil
      if not kind and key ~= "clip" then return nil end
      local i = getmetatable(rec).index
      if key == "clip" then
        local _, _, pre, post = recorder:info(i)
        local clip = pre and { pre = pre, post = post, clipped = post < pre } or nil
        if clip and i < recorder:count() then rawset(rec, "clip", clip) end
        return clip
      end
      local names = kind == "param" and self._param_names or self._module_names
      if i < recorder:count() then
        local t = recorder:entries(i, kind, names)
        rawset(rec, key, t)
        return t
      end
      local version = recorder:version()
      local cached = open[rec]
      if not cached or cached.version ~= version then
        cached = { version = version }
        open[rec] = cached
      end
      local t = cached[key]
      if not t then
        t = recorder:entries(i, kind, names)
        cached[key] = t
      end
      return t
    end
    return function(i) return { __index = lookup, index = i } end
  end

  -- Record i; those read through mon.records are cached (the same object on
  -- every read while someone holds it), the one mon:record returns is not.
  local function record_object(self, i, step, loss, uncached)
    local cache = self._record_cache
    local rec = not uncached and cache[i]
    if rec then return rec end
    if step == nil then step, loss = self._rec:info(i) end
    rec = setmetatable({ step = step, loss = loss }, self._record_meta(i))
    if not uncached then cache[i] = rec end
    return rec
  end

  local function records_proxy(self)
    local recorder = self._rec
    local function get(_, i)
      i = type(i) == "number" and math.tointeger(i)
      if i and i >= 1 and i <= recorder:count() then return record_object(self, i) end
      return nil
    end
    return setmetatable({}, {
      __index = get,
      __len = function() return recorder:count() end,
      __pairs = function(t)
        return function(_, i)
          i = i + 1
          local rec = get(t, i)
          if rec then return i, rec end
        end, t, 0
      end,
      __newindex = function() error("monitor: records are read-only (they live in the recorder)", 2) end,
    })
  end

  -- Taps in, taps out: each module's `_taps` list (Module.__call hands them
  -- its output in one C call, nn.lua) and the optimizers' listeners.
  function Monitor:_attach()
    if self._attached or not self._rec then return end
    self._attached = true
    for i, entry in ipairs(self.params) do update_listeners[entry[2]] = self._param_taps[i] end
    if self.activations then
      for i, entry in ipairs(self.modules) do
        local m = entry[2]
        local taps = rawget(m, "_taps")
        if not taps then taps = {}; m._taps = taps end
        taps[#taps + 1] = self._module_taps[i]
      end
    end
  end

  function Monitor:_detach()
    if not self._attached then return end
    self._attached = false
    if self.activations then
      for i, entry in ipairs(self.modules) do
        local m, tap = entry[2], self._module_taps[i]
        local taps = rawget(m, "_taps")
        if taps then
          for k = #taps, 1, -1 do if taps[k] == tap then table.remove(taps, k) end end
          if #taps == 0 then m._taps = nil end
        end
      end
    end
    for i, entry in ipairs(self.params) do
      if update_listeners[entry[2]] == self._param_taps[i] then update_listeners[entry[2]] = nil end
    end
  end

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
      _warnings = {},
    }, Monitor)
    for _, entry in ipairs(model:named_parameters()) do
      self.params[#self.params + 1] = { entry[1], entry[2] }
    end
    if #self.params == 0 then error("monitor: the model has no parameters to watch", 2) end
    for _, entry in ipairs(model:named_modules()) do
      local path, m = entry[1], entry[2]
      if path ~= "" then self.modules[#self.modules + 1] = { path, m, getmetatable(m).__name } end
    end
    local recorder = gl._monitor_recorder(self.vanish, self.explode)
    self._rec = recorder
    self._param_index, self._param_names, self._param_taps = {}, {}, {}
    self._module_names, self._module_taps, self._slot = {}, {}, {}
    for i, entry in ipairs(self.params) do
      self._param_index[entry[2]] = i
      self._param_names[i] = entry[1]
      self._param_taps[i] = recorder:add_param(entry[2])
      self._slot[entry[1]] = { "param", i }
    end
    for i, entry in ipairs(self.modules) do
      local band = saturation[entry[3]]
      self._module_names[i] = entry[1]
      self._module_taps[i] = band and recorder:add_module(band[1], band[2]) or recorder:add_module()
      if not self._slot[entry[1]] then self._slot[entry[1]] = { "module", i } end
    end
    self._record_cache = setmetatable({}, { __mode = "v" })
    self._record_meta = record_meta(self)
    self.records = records_proxy(self)
    self._initial_weight_var = {}
    for _, entry in ipairs(self.params) do
      local s = entry[2]:stats()
      self._initial_weight_var[entry[1]] = s.std * s.std
    end
    self:_attach()
    monitors[self] = true
    return self
  end

  -- Call after loss:backward() (and before the optimizer step).  Returns the
  -- record (its tables are built when read), or nil on a step not kept.
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
    local recorder = self._rec
    if not recorder then error("record: this monitor was read from a CSV file and records nothing", 2) end
    local index, warned, loss = recorder:record(step, extra and extra.loss, self.every)
    if not index then return nil end
    if warned > 0 then
      local warnings = self._warnings
      for _, w in ipairs(recorder:warnings(#warnings + 1)) do
        local entry = w.module and self.modules[w.index] or self.params[w.index]
        warnings[#warnings + 1] = { kind = w.kind, name = entry[1], step = step, value = w.value,
                                    direction = w.direction }
      end
    end
    return record_object(self, index, step, loss, true)
  end

  -- Called by optim.clip_grad_norm with the parameters it clipped.
  function Monitor:_note_clip(params, pre, post)
    if not self._rec then return end
    local ours = false
    for _, p in ipairs(params) do if self._param_index[p] then ours = true; break end end
    if ours then self._rec:note_clip(pre, post) end
  end

  -- Stops watching (the records stay readable).
  function Monitor:remove()
    self:_detach()
    if self._rec then self._rec:detach() end
    monitors[self] = nil
  end

  -- A monitor nobody can read any more stops costing the model anything.
  function Monitor:__gc()
    if self._rec then self:remove() end
  end

  -- Queries -------------------------------------------------------------------
  function Monitor:names(kind)
    local list = {}
    if kind ~= "module" then for _, e in ipairs(self.params) do list[#list + 1] = e[1] end end
    if kind ~= "param" then for _, e in ipairs(self.modules) do list[#list + 1] = e[1] end end
    return list
  end

  local function check_field(field)
    if not is_param_field[field] and not is_module_field[field] then
      error(("series: bad argument #2 (unknown field '%s'; one of %s, %s)")
        :format(tostring(field), table.concat(PARAM_FIELDS, ", "), table.concat(MODULE_FIELDS, ", ")), 3)
    end
  end

  -- x (steps) and y for a parameter name, a module path, or "loss".  Steps where
  -- the value is missing are left out.
  function Monitor:series(name, field)
    if type(name) ~= "string" then error("series: bad argument #1 (a parameter or module name expected)", 2) end
    local xs, ys = {}, {}
    if name == "loss" then
      if self._rec then return self._rec:losses() end
      for _, rec in ipairs(self.records) do
        if rec.loss then xs[#xs + 1], ys[#ys + 1] = rec.step, rec.loss end
      end
      return xs, ys
    end
    field = field or "grad_norm"
    check_field(field)
    if self._rec then
      local slot = self._slot[name]
      if not slot then error(("series: no parameter or module named '%s' (try mon:names())"):format(name), 2) end
      local kind, index = slot[1], slot[2]
      -- a module field of a parameter (or the reverse) has no values
      if (kind == "param" and not is_param_field[field]) or (kind == "module" and not is_module_field[field]) then
        return xs, ys
      end
      return self._rec:series(kind, index, field)
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

  -- One value per record (NaN where absent), for the figures.
  function Monitor:_row(name, field)
    if self._rec then
      local slot = self._slot[name]
      if slot and ((slot[1] == "param" and is_param_field[field]) or (slot[1] == "module" and is_module_field[field])) then
        return self._rec:row(slot[1], slot[2], field)
      end
      local row = {}
      for i = 1, #self.records do row[i] = 0 / 0 end
      return row
    end
    local row = {}
    for i, rec in ipairs(self.records) do
      local r = rec.params[name] or rec.modules[name]
      local v = r and r[field]
      row[i] = v == nil and 0 / 0 or v
    end
    return row
  end

  -- How many records were clipped, of how many that clipped at all.
  function Monitor:_clips()
    if self._rec then
      local total, clipped = self._rec:clips()
      return clipped, total
    end
    local clipped, total = 0, 0
    for _, rec in ipairs(self.records) do
      if rec.clip then total = total + 1; if rec.clip.clipped then clipped = clipped + 1 end end
    end
    return clipped, total
  end

  -- The step of every record.
  function Monitor:_steps()
    if self._rec then return self._rec:steps() end
    local xs = {}
    for i, rec in ipairs(self.records) do xs[i] = rec.step end
    return xs
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
    local clipped, total = self:_clips()
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
