-- gradlab.nn_check — the argument checks the layer modules (nn_norm, nn_conv,
-- nn_recurrent, nn_attention, nn_graph) share.  `level` is error()'s level:
-- the default 4 points at the user's call when a check is called from a
-- constructor (check → init → class __call → caller); callers one frame deeper
-- pass 5.
local check = {}

function check.shape_text(shape) return "{" .. table.concat(shape, ", ") .. "}" end

-- A positive integer (a float with an integer value is accepted and converted).
function check.integer(layer, position, value, what, level)
  level = level or 4
  if type(value) ~= "number" or value ~= math.floor(value) or value == math.huge or value == -math.huge then
    error(("%s: bad argument #%d (%s must be an integer, got %s)"):format(layer, position, what, tostring(value)), level)
  end
  if value < 1 then
    error(("%s: bad argument #%d (%s must be positive, got %d)"):format(layer, position, what, value), level)
  end
  return math.tointeger(value)
end

-- An options table (nil gives {}) holding only the keys in `known`.
function check.options(layer, position, options, known, level)
  level = level or 4
  if options == nil then return {} end
  if type(options) ~= "table" then
    error(("%s: bad argument #%d (options table expected, got %s)"):format(layer, position, type(options)), level)
  end
  for key in pairs(options) do
    if not known[key] then
      local names = {}
      for name in pairs(known) do names[#names + 1] = name end
      table.sort(names)
      error(("%s: unknown option '%s' (known: %s)"):format(layer, tostring(key), table.concat(names, ", ")), level)
    end
  end
  return options
end

return check
