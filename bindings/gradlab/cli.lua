-- gradlab.cli — subcommands of the `gradlab` program.
--
--   gradlab plot run.csv [-o fig.png] [--kind dashboard|lines|heatmap|hist|profile]
--                [--field grad_norm] [--title text] [--no-theory]
--
-- re-renders what mon:to_csv saved, so a report's figures can be remade
-- without re-running training.  Errors raise; the program prints them and
-- exits with status 1.
local gl = require "gradlab"

local cli = {}

local function usage(message)
  error(("plot: %s\nusage: gradlab plot run.csv [-o fig.png] [--kind dashboard|lines|heatmap|hist|profile] " ..
         "[--field name] [--title text] [--no-theory]"):format(message), 0)
end

function cli.plot(args)
  local csv, output, options = nil, nil, { kind = "dashboard" }
  local i = 1
  local function value(flag)
    i = i + 1
    local v = args[i]
    if v == nil then usage(flag .. " needs a value") end
    return v
  end
  while i <= #args do
    local a = args[i]
    if a == "-o" or a == "--output" then output = value(a)
    elseif a == "--kind" then options.kind = value(a)
    elseif a == "--field" then options.field = value(a)
    elseif a == "--title" then options.title = value(a)
    elseif a == "--no-theory" then options.theory = false
    elseif a == "-h" or a == "--help" then usage("help")
    elseif a:sub(1, 1) == "-" and a ~= "-" then usage("unknown option '" .. a .. "'")
    elseif csv == nil then csv = a
    else usage("one CSV file at a time ('" .. a .. "' is extra)") end
    i = i + 1
  end
  if not csv then usage("missing the CSV file") end
  output = output or (csv:gsub("%.csv$", "") .. ".png")
  local ok, monitor = pcall(gl.monitor_from_csv, csv)
  if not ok then error(tostring(monitor):gsub("^monitor_from_csv", "plot"), 0) end
  if #monitor.records == 0 then error(("plot: '%s' holds no records"):format(csv), 0) end
  monitor:plot(output, options)
  io.write(("wrote %s (%s, %d steps)\n"):format(output, options.kind, #monitor.records))
end

-- For the program: returns true, or false and the error message.
function cli.run_plot(args)
  local ok, message = pcall(cli.plot, args)
  if ok then return true end
  message = tostring(message):gsub("^[^\n]-cli%.lua:%d+: ", "")
  return false, message
end

return cli
