-- gradlab.experiment — the small harness every script in scripts/ shares.
--
--   local ex = gl.experiment("vanishing", arg)   -- parses --out DIR and --quick
--   ex.quick, ex.out                             -- the mode and the output folder (created)
--   ex:path("profile.png")                       -- a file inside it
--   ex:table({"config", "ratio"}, rows)          -- prints an aligned table, keeps it in ex.results
--   ex:claim("ReLU + He keeps the signal", ok)   -- prints the conclusion, records it
--   ex:finish()                                  -- prints what was written
return function(gl)
  local Experiment = {}
  Experiment.__index = Experiment

  local function mkdir(path)
    local ok = os.execute(("mkdir -p '%s'"):format(path:gsub("'", "'\\''")))
    if ok ~= true and ok ~= 0 then error(("experiment: cannot create the folder '%s'"):format(path), 3) end
  end

  function Experiment:path(file)
    local path = self.out .. "/" .. file
    self.written[#self.written + 1] = path
    return path
  end

  local function cell(v)
    if type(v) == "number" then
      if v ~= v then return "nan" end
      if v == math.floor(v) and math.abs(v) < 1e9 then return ("%d"):format(v) end
      local a = math.abs(v)
      if a ~= 0 and (a < 1e-3 or a >= 1e5) then return ("%.3e"):format(v) end
      return ("%.4f"):format(v)
    end
    return tostring(v)
  end

  function Experiment:table(headers, rows, title)
    local widths = {}
    for j, h in ipairs(headers) do widths[j] = #h end
    local texts = {}
    for i, row in ipairs(rows) do
      texts[i] = {}
      for j = 1, #headers do
        texts[i][j] = cell(row[j])
        widths[j] = math.max(widths[j], #texts[i][j])
      end
    end
    local function line(values)
      local parts = {}
      for j, v in ipairs(values) do parts[j] = (j == 1 and "%-" or "%") .. widths[j] .. "s" end
      return table.concat(parts, "  "):format(table.unpack(values))
    end
    if title then io.write("\n", title, "\n") end
    io.write(line(headers), "\n")
    local rule = {}
    for j = 1, #headers do rule[j] = ("-"):rep(widths[j]) end
    io.write(line(rule), "\n")
    for _, t in ipairs(texts) do io.write(line(t), "\n") end
    self.results[#self.results + 1] = { title = title, headers = headers, rows = rows }
  end

  function Experiment:claim(text, holds)
    self.claims[#self.claims + 1] = { text = text, holds = holds and true or false }
    io.write(("%s %s\n"):format(holds and "[holds]" or "[FAILS]", text))
    return holds
  end

  function Experiment:finish()
    io.write(("\nwrote %d files to %s in %.1f s\n"):format(#self.written, self.out, gl.clock() - self.started))
    return self
  end

  return function(name, args)
    if type(name) ~= "string" or name == "" then error("experiment: bad argument #1 (a name expected)", 2) end
    local self = setmetatable({ name = name, quick = false, out = "out/" .. name, results = {}, claims = {},
                                written = {}, started = gl.clock() }, Experiment)
    args = args or {}
    local i = 1
    while i <= #args do
      local a = args[i]
      if a == "--quick" then self.quick = true
      elseif a == "--out" then
        i = i + 1
        if not args[i] then error(name .. ": --out needs a folder", 2) end
        self.out = args[i]
      elseif a == "--help" or a == "-h" then
        io.write(("usage: gradlab scripts/%s.lua [--out DIR] [--quick]\n"):format(name))
        os.exit(0)
      else
        error(("%s: unknown argument '%s' (usage: [--out DIR] [--quick])"):format(name, a), 2)
      end
      i = i + 1
    end
    mkdir(self.out)
    io.write(("== %s%s -> %s\n"):format(name, self.quick and " (quick)" or "", self.out))
    return self
  end
end
