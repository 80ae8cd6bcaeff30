-- bench/common.lua — what the Lua benchmarks share, loaded with dofile (it is
-- not a module on the search path: it finds that path):
--
--   local script_dir = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
--   local common = dofile(script_dir .. "/common.lua")
--   local gl = common.load_gradlab("bench_conv", script_dir)
--   local threads = common.env_threads("bench_conv", 2)
local common = {}

-- gradlab as installed or on LUA_PATH, else from the build tree beside the
-- benchmarks (GRADLAB_BUILD, default <script_dir>/../build); exits when neither loads.
function common.load_gradlab(name, script_dir)
  local ok, gl = pcall(require, "gradlab")
  if ok then return gl end
  local build = os.getenv("GRADLAB_BUILD") or (script_dir .. "/../build")
  package.path = build .. "/lua/?.lua;" .. build .. "/lua/?/init.lua;" .. package.path
  package.cpath = build .. "/lua/?.so;" .. package.cpath
  ok, gl = pcall(require, "gradlab")
  if not ok then
    io.stderr:write(name, ": cannot load gradlab (build it with `make`, or set LUA_PATH/LUA_CPATH to ",
                    "build/lua):\n", tostring(gl), "\n")
    os.exit(1)
  end
  return gl
end

-- GRADLAB_THREADS as a positive integer, `default` when unset (may be nil);
-- exits with a message when it is set to anything else.
function common.env_threads(name, default)
  local text = os.getenv("GRADLAB_THREADS")
  if not text then return default end
  local n = tonumber(text)
  if not n or n < 1 or n % 1 ~= 0 then
    io.stderr:write(name, ": GRADLAB_THREADS must be a positive integer\n")
    os.exit(2)
  end
  return math.tointeger(n)
end

-- The median of a list of numbers (the list is left as it is; NaN when empty).
function common.median(values)
  local sorted = { table.unpack(values) }
  table.sort(sorted)
  local n = #sorted
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return sorted[(n + 1) // 2] end
  return 0.5 * (sorted[n // 2] + sorted[n // 2 + 1])
end

-- The 1, 5 and 15 minute load averages as text, for the reports ("?" when unknown).
function common.load_average()
  local file = io.open("/proc/loadavg")
  if not file then return "?" end
  local text = file:read("l")
  file:close()
  return text:match("^(%S+ %S+ %S+)") or "?"
end

return common
