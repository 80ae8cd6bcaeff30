-- spec/helper.lua — shared assertions and helpers for the Busted specs.
--
--   assert.tensor_near(actual, expected [, tol])   expected: tensor or nested table
--   assert.error_matches(fn, pattern, ...)          pcall(fn) fails with message ~ pattern
--   numpy(code, inputs)                             runs real NumPy (Debian python3-numpy)
local say = require "say"
local assert = require "luassert"
local gl = require "gradlab"

local helper = {}

local function flatten(value, out)
  out = out or {}
  if type(value) == "table" then
    for _, item in ipairs(value) do flatten(item, out) end
  else
    out[#out + 1] = value
  end
  return out
end
helper.flatten = flatten

local function shape_of(value)
  local shape = {}
  while type(value) == "table" do
    shape[#shape + 1] = #value
    value = value[1]
  end
  return shape
end

local function same_number(a, b, tol)
  if a ~= a then return b ~= b end                 -- NaN equals NaN here
  if a == math.huge or a == -math.huge then return a == b end
  return math.abs(a - b) <= tol * (1 + math.abs(b))
end

-- Compares a tensor against a tensor or nested table: shapes, then values.
local function tensor_near(state, arguments)
  local actual, expected, tol = arguments[1], arguments[2], arguments[3] or 1e-5
  if not gl.is_tensor(actual) then
    arguments[1] = "not a tensor: " .. tostring(actual)
    return false
  end
  local expected_shape, expected_values
  if gl.is_tensor(expected) then
    expected_shape, expected_values = expected:shape(), flatten(expected:totable())
  elseif type(expected) == "number" then
    expected_shape, expected_values = {}, { expected }
  else
    expected_shape, expected_values = shape_of(expected), flatten(expected)
  end
  local actual_shape = actual:shape()
  local actual_values = actual:dim() == 0 and { actual:item() } or flatten(actual:totable())
  local function shape_text(s) return "{" .. table.concat(s, ", ") .. "}" end
  if #expected_values == 0 and #actual_values == 0 then
    -- empty tensors: compare shapes only when the expectation says them
    if #expected_shape == 0 then return true end
  end
  if shape_text(actual_shape) ~= shape_text(expected_shape) then
    arguments[1] = "shape " .. shape_text(actual_shape)
    arguments[2] = "shape " .. shape_text(expected_shape)
    return false
  end
  for i = 1, #expected_values do
    if not same_number(actual_values[i], expected_values[i], tol) then
      arguments[1] = ("element %d is %.9g"):format(i, actual_values[i])
      arguments[2] = ("%.9g (tolerance %g)"):format(expected_values[i], tol)
      return false
    end
  end
  return true
end

say:set("assertion.tensor_near.positive", "Expected tensors to match:\n%s\nexpected:\n%s")
say:set("assertion.tensor_near.negative", "Expected tensors to differ:\n%s\nfrom:\n%s")
assert:register("assertion", "tensor_near", tensor_near,
                "assertion.tensor_near.positive", "assertion.tensor_near.negative")

-- assert.error_matches(fn, pattern, ...): fn must raise an error whose message
-- contains every given (plain, not Lua-pattern) fragment.
local function error_matches(state, arguments)
  local fn = arguments[1]
  local ok, message = pcall(fn)
  if ok then
    arguments[1] = "no error"
    return false
  end
  message = tostring(message)
  for i = 2, arguments.n or #arguments do
    if not message:find(arguments[i], 1, true) then
      arguments[1] = message
      arguments[2] = "a message containing '" .. arguments[i] .. "'"
      return false
    end
  end
  return true
end
say:set("assertion.error_matches.positive", "Expected an error, got:\n%s\nwanted:\n%s")
say:set("assertion.error_matches.negative", "Expected no matching error, got:\n%s")
assert:register("assertion", "error_matches", error_matches,
                "assertion.error_matches.positive", "assertion.error_matches.negative")

-- Python literal of a nested table or tensor (for NumPy cross-checks).
local function python_literal(value)
  if gl.is_tensor(value) then value = value:totable() end
  if type(value) == "table" then
    local parts = {}
    for i, item in ipairs(value) do parts[i] = python_literal(item) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  if value ~= value then return "float('nan')" end
  if value == math.huge then return "float('inf')" end
  if value == -math.huge then return "float('-inf')" end
  return ("%.9g"):format(value)
end

-- A Python list literal of a Lua list of numbers (full double precision).
function helper.python_list(values)
  local parts = {}
  for i, v in ipairs(values) do parts[i] = ("%.17g"):format(v) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

helper.python = os.getenv("GRADLAB_PYTHON") or "/usr/bin/python3"

-- Runs `code` under real NumPy with `inputs` bound as float32 arrays; the code
-- assigns `result` (an array, or a list/tuple of arrays) which comes back as
-- nested Lua tables.
function helper.numpy(code, inputs)
  local lines = { "import numpy as np", "import math, warnings", "warnings.filterwarnings(\"ignore\")" }
  for name, value in pairs(inputs or {}) do
    lines[#lines + 1] = ("%s = np.array(%s, dtype=np.float32)"):format(name, python_literal(value))
  end
  lines[#lines + 1] = code
  lines[#lines + 1] = [[
def lua(v):
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(lua(x) for x in v) + "}"
    a = np.asarray(v)
    if a.ndim == 0:
        x = float(a)
        if math.isnan(x): return "0/0"
        if math.isinf(x): return "math.huge" if x > 0 else "-math.huge"
        return repr(x)
    return "{" + ", ".join(lua(x) for x in a) + "}"
print("return " + lua(result))]]
  local path = os.tmpname()
  local file = assert(io.open(path, "w"))
  file:write(table.concat(lines, "\n"))
  file:close()
  local pipe = assert(io.popen(helper.python .. " " .. path .. " 2>&1"))
  local output = pipe:read("a")
  pipe:close()
  os.remove(path)
  local chunk, err = load(output)
  if not chunk then error("numpy failed:\n" .. output .. "\n" .. tostring(err)) end
  return chunk()
end

function helper.has_numpy()
  return os.execute(helper.python .. " -c 'import numpy' 2>/dev/null") == true
end

-- Runs scripts/NAME.lua in --quick mode into a fresh temp folder, as the
-- gradlab program would (the script sees `arg`); returns what the script returns
-- (results, experiment) and the folder.  busted runs specs in an environment of
-- their own, so `arg` is set in the real global table.
function helper.run_script(name)
  local dir = os.tmpname()
  os.remove(dir)
  local globals = debug.getregistry()[2]
  local saved_arg = globals.arg
  globals.arg = { "--quick", "--out", dir }
  local ok, results, ex = pcall(dofile, "scripts/" .. name .. ".lua")
  globals.arg = saved_arg
  assert(ok, results)
  return results, ex, dir
end

function helper.files_in(dir)
  local pipe = io.popen("ls " .. dir)
  local list = {}
  for line in pipe:lines() do list[#list + 1] = line end
  pipe:close()
  return list
end

package.loaded["helper"] = helper
return helper
