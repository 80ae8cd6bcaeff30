-- gradlab.gradcheck — compares backward with central finite differences.
--
--   ok, max_err = gl.gradcheck(fn, inputs [, {eps = 1e-3, tol = 1e-2}])
--
-- fn(...) receives the inputs (a list of tensors, or one tensor) and returns a
-- tensor.  Inputs marked requires_grad are checked (all of them when none is
-- marked).  The output is reduced to a scalar with fixed pseudo-random weights,
-- so every output element takes part; finite differences are summed in double
-- precision in Lua.  max_err is the largest |analytic - numeric| / (1 + |numeric|).
return function(gl)
  local function weights_like(out)
    -- A small LCG of our own: gradcheck must not consume the engine's RNG,
    -- or fn (dropout, say) would see different numbers between calls.
    local state, values = 12345, {}
    for i = 1, out:numel() do
      state = (state * 1103515245 + 12345) % 2147483648
      values[i] = 0.5 + state / 2147483648   -- in [0.5, 1.5): no element is ignored
    end
    return values
  end

  local function flat_values(t)
    local values = {}
    if t:dim() == 0 then return { t:item() } end
    local function walk(x)
      if type(x) == "table" then for _, v in ipairs(x) do walk(v) end
      else values[#values + 1] = x end
    end
    walk(t:totable())
    return values
  end

  local function weighted_sum(out, weights)
    local total = 0.0
    for i, v in ipairs(flat_values(out)) do total = total + v * weights[i] end
    return total
  end

  -- Multi-index of flat position i (1-based) in shape.
  local function unflatten(i, shape)
    local index, rest = {}, i - 1
    for d = #shape, 1, -1 do
      index[d] = rest % shape[d] + 1
      rest = rest // shape[d]
    end
    return index
  end

  return function(fn, inputs, options)
    if type(fn) ~= "function" then error("gradcheck: bad argument #1 (function expected, got " .. type(fn) .. ")", 2) end
    if gl.is_tensor(inputs) then inputs = { inputs } end
    if type(inputs) ~= "table" or #inputs == 0 then
      error("gradcheck: bad argument #2 (a tensor or a list of tensors expected)", 2)
    end
    options = options or {}
    local eps, tol = options.eps or 1e-3, options.tol or 1e-2
    local checked = {}
    for i, t in ipairs(inputs) do
      if not gl.is_tensor(t) then error(("gradcheck: input %d is a %s, not a tensor"):format(i, type(t)), 2) end
      if t:is_leaf() and t:tracks_grad() then checked[#checked + 1] = t end
    end
    if #checked == 0 then
      for _, t in ipairs(inputs) do
        if t:is_leaf() then t:requires_grad(true); checked[#checked + 1] = t end
      end
    end
    if #checked == 0 then error("gradcheck: no leaf input to check", 2) end

    for _, t in ipairs(checked) do t.grad = nil end
    local out = fn(table.unpack(inputs))
    if not gl.is_tensor(out) then error("gradcheck: fn must return a tensor, got " .. type(out), 2) end
    local weights = weights_like(out)
    local shaped = gl.tensor(weights)
    if out:dim() == 0 then shaped = gl.tensor(weights[1]) else shaped = shaped:view(out:shape()) end
    ;(out * shaped):sum():backward()

    local max_err = 0
    for _, t in ipairs(checked) do
      local analytic = t.grad and flat_values(t.grad) or {}
      local shape = t:shape()
      for i = 1, t:numel() do
        local index = unflatten(i, shape)
        local original = t:get(table.unpack(index))
        t:set(original + eps, table.unpack(index))
        local high = t:get(table.unpack(index))   -- what float32 could represent
        local plus = gl.no_grad(function() return weighted_sum(fn(table.unpack(inputs)), weights) end)
        t:set(original - eps, table.unpack(index))
        local low = t:get(table.unpack(index))
        local minus = gl.no_grad(function() return weighted_sum(fn(table.unpack(inputs)), weights) end)
        t:set(original, table.unpack(index))
        local numeric = (plus - minus) / (high - low)
        local a = analytic[i] or 0
        local err = math.abs(a - numeric) / (1 + math.abs(numeric))
        if err > max_err or err ~= err then max_err = err ~= err and math.huge or err end
      end
    end
    for _, t in ipairs(checked) do t.grad = nil end
    return max_err <= tol, max_err
  end
end
