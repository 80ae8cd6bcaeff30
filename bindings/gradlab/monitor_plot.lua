-- gradlab.monitor_plot — the monitor's figures (mon:plot), drawn with gl.plot.
--
--   kind = "lines"      the field per layer over steps (log y); the total norm before
--                       clipping and the clipped steps as markers; the first
--                       non-finite step marked
--   kind = "heatmap"    layer x step, log colour scale; a "clipped" row
--   kind = "hist"       distribution of log10(field) over steps, first/middle/last layer
--   kind = "profile"    the field across depth at the first and last step; with
--                       theory = true, the backward-signal profile predicted from the
--                       initial weights and the activations (gain^2 x fan ratio per layer)
--   kind = "dashboard"  2 x 2: lines, heatmap, loss, profile
return function(gl)
  local M = {}

  local function finite(v) return v ~= nil and v == v and v > -math.huge and v < math.huge end

  -- Rows of the figure: weight-bearing layers for parameter fields, modules for module fields.
  local function rows_for(mon, field)
    if field:match("^act_") or field == "grad_out_norm" then
      local names = {}
      for _, e in ipairs(mon.modules) do names[#names + 1] = e[1] end
      return names
    end
    return mon:_layers()
  end

  local function value(rec, name, field)
    local r = rec.params[name] or rec.modules[name]
    return r and r[field]
  end

  local function first_nonfinite(mon)
    for _, w in ipairs(mon._warnings or {}) do
      if w.kind == "non-finite" then return w end
    end
  end

  local function lines_panel(mon, field)
    local series = {}
    local names = rows_for(mon, field)
    -- Past 10 layers a legend helps no one: colour the layers along viridis from
    -- the input (purple) to the output (yellow) and say so in the title.
    local ramp = #names > 10
    for i, name in ipairs(names) do
      local xs, ys = mon:series(name, field)
      if #xs > 0 then
        local color
        if ramp then color = ("#%02x%02x%02x"):format(gl.plot.viridis((i - 1) / (#names - 1))) end
        series[#series + 1] = { name = name, x = xs, y = ys, color = color, style = ramp and "solid" or nil }
      end
    end
    local cx, cy, mx, my = {}, {}, {}, {}
    local _, clips = mon:_clips()
    for _, rec in ipairs(clips > 0 and mon.records or {}) do
      if rec.clip then
        cx[#cx + 1], cy[#cy + 1] = rec.step, rec.clip.pre
        if rec.clip.clipped then mx[#mx + 1], my[#my + 1] = rec.step, rec.clip.pre end
      end
    end
    if field == "grad_norm" and #cx > 0 then
      series[#series + 1] = { name = "total norm before clipping", x = cx, y = cy, color = "#555555", style = "dashed" }
      if #mx > 0 then
        series[#series + 1] = { name = ("clipped (%d of %d steps)"):format(#mx, #cx), x = mx, y = my,
                                color = "#d62728", style = "none", marker = "x" }
      end
    end
    local bad = first_nonfinite(mon)
    if bad then
      -- mark the step at the last finite value of that row, or at the first row's
      local row = series[1]
      for _, s in ipairs(series) do if s.name == bad.name then row = s end end
      local y
      if row then for i = #row.x, 1, -1 do if row.x[i] <= bad.step and finite(row.y[i]) then y = row.y[i]; break end end end
      if y then
        series[#series + 1] = { name = ("first NaN/Inf: %s, %s, step %s"):format(bad.name, bad.direction or "?", tostring(bad.step)),
                                x = { bad.step }, y = { y }, color = "#000000", style = "none", marker = "D" }
      end
    end
    if #series == 0 then series = { { name = field, x = { 0 }, y = { 0 / 0 } } } end
    local spec = { kind = "lines", xlabel = "step", ylabel = field, title = field .. " per layer",
                   logy = field ~= "grad_mean" and field ~= "act_mean", series = series }
    if ramp then
      spec.legend = false
      spec.title = field .. " per layer (purple: input, yellow: output" ..
                   (#cx > 0 and field == "grad_norm" and "; dashed: total before clipping)" or ")")
    end
    return spec
  end

  local function heatmap_panel(mon, field)
    local rows, values = {}, {}
    for _, name in ipairs(rows_for(mon, field)) do
      rows[#rows + 1] = name
      values[#values + 1] = mon:_row(name, field)
    end
    local marks = {}
    local _, clips = mon:_clips()
    for i, rec in ipairs(clips > 0 and mon.records or {}) do
      if rec.clip and rec.clip.clipped then marks[#marks + 1] = i end
    end
    if #rows == 0 or #mon.records == 0 then
      rows, values = { field }, { { 0 / 0 } }
    end
    local positive = field ~= "grad_mean" and field ~= "act_mean"
    local title = field .. ": layer x step"
    if #marks > 0 then title = title .. ("  (x: clipped, %d of %d steps)"):format(#marks, #mon.records) end
    local xlabel = ("record (steps %s to %s)"):format(tostring(mon.records[1] and mon.records[1].step),
                                                      tostring(mon.records[#mon.records] and mon.records[#mon.records].step))
    return { kind = "heatmap", title = title, xlabel = xlabel, ylabel = "layer",
             rows = rows, values = values, log = positive, marks = marks }
  end

  local function hist_panel(mon, field)
    local names = rows_for(mon, field)
    local pick = { names[1], names[(#names + 1) // 2], names[#names] }
    local series, used = {}, {}
    for _, name in ipairs(pick) do
      if name and not used[name] then
        used[name] = true
        local values = {}
        local _, ys = mon:series(name, field)
        for _, v in ipairs(ys) do
          if finite(v) and v > 0 then values[#values + 1] = math.log(v, 10) end
        end
        if #values > 0 then series[#series + 1] = { name = name, values = values } end
      end
    end
    if #series == 0 then series = { { name = field, values = { 0 } } } end
    return { kind = "histogram", title = "distribution of log10 " .. field, xlabel = "log10 " .. field,
             ylabel = "steps", series = series, bins = 30 }
  end

  local function loss_panel(mon)
    local xs, ys = mon:series("loss")
    if #xs == 0 then xs, ys = { 0 }, { 0 / 0 } end
    local positive = true
    for _, v in ipairs(ys) do if not (v > 0) then positive = false end end
    return { kind = "lines", title = "loss", xlabel = "step", ylabel = "loss", logy = positive and #ys > 1,
             series = { { name = "loss", x = xs, y = ys } } }
  end

  -- Mean-field theory of the backward signal.  Between consecutive weight
  -- layers j and j+1 (pre-activations z_j, z_{j+1}, widths n_j, n_{j+1}):
  --   Var(dL/dz_j) = E[phi'(z_j)^2] * n_{j+1} Var(W_{j+1}) * Var(dL/dz_{j+1})
  -- (the gain^2 x fan ratio of the initializer, times the activation's slope),
  -- and a norm over a layer is sqrt(width x variance).  E[phi'(z)^2] is taken
  -- for z ~ N(0, s^2) with s the pre-activation std measured at the first step.
  local function erf(x)   -- Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7), enough for a theory curve
    local sign = x < 0 and -1 or 1
    x = math.abs(x)
    local t = 1 / (1 + 0.3275911 * x)
    local y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * math.exp(-x * x)
    return sign * y
  end

  local function tanh(z)
    if z > 20 then return 1 elseif z < -20 then return -1 end
    local e = math.exp(2 * z)
    return (e - 1) / (e + 1)
  end

  local slopes = {
    ReLU = function() return 0.5 end,
    Identity = function() return 1 end,
    LeakyReLU = function(m) return (1 + m.slope * m.slope) / 2 end,
    PReLU = function(m) local a = m.weight:mean():item(); return (1 + a * a) / 2 end,
    Tanh = function(_, z) local t = tanh(z); return (1 - t * t) ^ 2 end,
    Sigmoid = function(_, z) local s = 1 / (1 + math.exp(-z)); return (s * (1 - s)) ^ 2 end,
    GELU = function(_, z) return (0.5 * (1 + erf(z / math.sqrt(2))) + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)) ^ 2 end,
    ELU = function(m, z) return z > 0 and 1 or (m.alpha * math.exp(z)) ^ 2 end,
    Softplus = function(_, z) return (1 / (1 + math.exp(-z))) ^ 2 end,
  }
  local pointwise = { Tanh = true, Sigmoid = true, GELU = true, ELU = true, Softplus = true }

  -- E[phi'(z)^2] for z ~ N(0, sigma^2), by quadrature over +-8 sigma.
  local function slope_moment(class, m, sigma)
    local f = slopes[class]
    if not f then return nil end
    if not pointwise[class] then return f(m) end
    sigma = (sigma and sigma > 0) and sigma or 1e-3
    local total, weight = 0, 0
    for k = -800, 800 do
      local t = k / 100
      local w = math.exp(-t * t / 2)
      total, weight = total + w * f(m, sigma * t), weight + w
    end
    return total / weight
  end

  -- Weight layers in order, each with the activation that follows it.
  local function layers_with_activation(mon)
    local layers = {}
    for _, e in ipairs(mon.modules) do
      local m, class = e[2], e[3]
      local leaf = m and #m._modules == 0
      if leaf and m.weight and gl.is_tensor(m.weight) and m.weight:dim() >= 2 then
        layers[#layers + 1] = { path = e[1], weight = e[1] .. ".weight", out = m.weight:size(1) }
      elseif leaf and layers[#layers] and slopes[class] and not layers[#layers].class then
        layers[#layers].class, layers[#layers].module = class, m
      end
    end
    return layers
  end

  -- The predicted backward-signal norm at each weight layer's output, anchored
  -- at the last layer's measured value at the first recorded step, plus the
  -- layers themselves; nil without a model or a measurement.
  function M.theory(mon)
    local first = mon.records[1]
    local layers = mon.modules[1] and mon.modules[1][2] and layers_with_activation(mon) or {}
    if not first or #layers == 0 then return nil end
    local anchor = value(first, layers[#layers].path, "grad_out_norm")
    if not anchor or anchor <= 0 then return nil end
    local ys = {}
    local level = anchor
    ys[#layers] = level
    for j = #layers - 1, 1, -1 do
      local here, nxt = layers[j], layers[j + 1]
      local sigma = value(first, here.path, "act_std")
      local moment = here.class and slope_moment(here.class, here.module, sigma) or 1
      local chi = moment * nxt.out * (mon._initial_weight_var[nxt.weight] or 0)
      level = level * math.sqrt(chi * here.out / nxt.out)
      ys[j] = level
    end
    return ys, layers
  end

  local function profile_panel(mon, field, theory)
    local first, last = mon.records[1], mon.records[#mon.records]
    local layers = mon.modules[1] and mon.modules[1][2] and layers_with_activation(mon) or {}
    local use_modules = #layers > 0 and (field == "grad_out_norm" or theory)
    local names = {}
    if use_modules then for i, l in ipairs(layers) do names[i] = l.path end
    else names = rows_for(mon, field) end
    local f = use_modules and "grad_out_norm" or field
    local series = {}
    for _, which in ipairs{ { first, "first step" }, { last, "last step" } } do
      local rec = which[1]
      if rec then
        local xs, ys = {}, {}
        for i, name in ipairs(names) do
          local v = value(rec, name, f)
          if v ~= nil then xs[#xs + 1], ys[#ys + 1] = i, v end
        end
        if #xs > 0 then
          series[#series + 1] = { name = ("%s (step %s)"):format(which[2], tostring(rec.step)), x = xs, y = ys, marker = true }
        end
      end
      if first == last then break end
    end
    if theory and use_modules and first then
      local profile = M.theory(mon)
      if profile then
        local xs = {}
        for j = 1, #profile do xs[j] = j end
        series[#series + 1] = { name = "theory (mean field from the initial weights)", x = xs, y = profile,
                                color = "#555555", style = "dashed" }
      end
    end
    if #series == 0 then series = { { name = f, x = { 1 }, y = { 0 / 0 } } } end
    return { kind = "lines", title = (use_modules and "backward signal ||dL/dh||" or f) .. " across depth",
             xlabel = "layer (input -> output)", ylabel = f, logy = true, series = series }
  end

  local KINDS = { lines = true, heatmap = true, hist = true, histogram = true, profile = true, dashboard = true }

  function M.render(mon, path, options)
    if type(path) ~= "string" or path == "" then error("plot: bad argument #1 (a PNG path expected)", 3) end
    options = options or {}
    if type(options) ~= "table" then error("plot: bad argument #2 (options table expected)", 3) end
    local kind = options.kind or "lines"
    if not KINDS[kind] then
      error(("plot: kind must be lines, heatmap, hist, profile or dashboard, got '%s'"):format(tostring(kind)), 3)
    end
    local field = options.field or "grad_norm"
    local known = false
    for _, f in ipairs(mon.PARAM_FIELDS) do known = known or f == field end
    for _, f in ipairs(mon.MODULE_FIELDS) do known = known or f == field end
    if not known then error(("plot: unknown field '%s'"):format(tostring(field)), 3) end
    if #mon.records == 0 then error("plot: nothing recorded yet (call mon:record after backward)", 3) end
    local spec
    if kind == "lines" then spec = lines_panel(mon, field)
    elseif kind == "heatmap" then spec = heatmap_panel(mon, field)
    elseif kind == "hist" or kind == "histogram" then spec = hist_panel(mon, field)
    elseif kind == "profile" then spec = profile_panel(mon, field, options.theory)
    else
      spec = { kind = "grid", cols = 2, title = options.title or "gradient flow",
               width = options.width or 1600, height = options.height or 1100,
               panels = { lines_panel(mon, field), heatmap_panel(mon, field), loss_panel(mon),
                          profile_panel(mon, "grad_out_norm", options.theory ~= false) } }
    end
    spec.path = path
    if kind ~= "dashboard" then
      spec.title = options.title or spec.title
      spec.width, spec.height = options.width, options.height
    end
    if spec.kind == "grid" then
      spec.kind = nil
      gl.plot.grid(spec)
    elseif spec.kind == "lines" then
      spec.kind = nil
      gl.plot.lines(spec)
    elseif spec.kind == "heatmap" then
      spec.kind = nil
      gl.plot.heatmap(spec)
    else
      spec.kind = nil
      gl.plot.histogram(spec)
    end
    return path
  end

  return M
end
