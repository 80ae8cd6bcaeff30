-- gradlab.data — small synthetic data sets and a mini-batch loader (gl.data).
--
-- Every generator draws from the engine's generator, so gl.manual_seed(n) makes
-- it reproducible, and returns x, y: inputs, and targets (1-based class labels
-- for classification, values for regression).
--
--   spirals(n, classes)            x (n, 2), y (n): interleaved noisy spirals
--   blobs(n, classes, dim)         x (n, dim), y (n): Gaussian clusters
--   teacher(n, in, out [, depth])  x (n, in), y (n, out): a random tanh network's outputs
--   adding_problem(n, T)           x (T, n, 2), y (n, 1): sum of the two marked values
--   copy_task(n, T, symbols)       x (2T+1, n, symbols+2) one-hot, y (2T+1, n) labels
--   random_graph(n, p [, opts])    x (n, features), y (n) community labels, adjacency (n, n)
--   csv(path [, {header = true}])  a 2-d tensor of the file's numbers
--   loader(x, y, {batch =, shuffle = true, drop_last = false})  :epoch() iterates batches
return function(gl)
  local data = {}

  local function count(name, position, v, what, minimum)
    minimum = minimum or 1
    if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) or v < minimum then
      error(("data.%s: bad argument #%d (%s must be an integer >= %d, got %s)")
        :format(name, position, what, minimum, tostring(v)), 3)
    end
    return math.tointeger(v)
  end

  function data.spirals(n, classes, noise)
    n = count("spirals", 1, n, "n")
    classes = count("spirals", 2, classes or 2, "classes")
    noise = noise or 0.05
    local x, y = gl.empty{n, 2}, gl.empty{n}
    local u, e = gl.rand{n}:totable(), gl.randn{n, 2}:totable()
    for i = 1, n do
      local c = (i - 1) % classes
      local r = 0.05 + 0.95 * u[i]
      local angle = 3.5 * math.pi * r + 2 * math.pi * c / classes
      x:set(r * math.cos(angle) + noise * e[i][1], i, 1)
      x:set(r * math.sin(angle) + noise * e[i][2], i, 2)
      y:set(c + 1, i)
    end
    return x, y
  end

  function data.blobs(n, classes, dim, spread)
    n = count("blobs", 1, n, "n")
    classes = count("blobs", 2, classes or 3, "classes")
    dim = count("blobs", 3, dim or 2, "dim")
    local centers = gl.randn{classes, dim} * (spread or 3)
    local y = gl.randint(1, classes, {n})
    local x = centers:index_select(1, y) + gl.randn{n, dim}
    return x, y
  end

  function data.teacher(n, inputs, outputs, depth, width)
    n = count("teacher", 1, n, "n")
    inputs = count("teacher", 2, inputs, "in")
    outputs = count("teacher", 3, outputs or 1, "out")
    depth = count("teacher", 4, depth or 2, "depth")
    width = width or 32
    local x = gl.randn{n, inputs}
    local h, fan = x, inputs
    gl.no_grad(function()
      for layer = 1, depth do
        local out = layer == depth and outputs or width
        local w = gl.randn{out, fan} * (1 / math.sqrt(fan))
        h = gl.linear(h, w)
        if layer < depth then h = h:tanh() end
        fan = out
      end
    end)
    return x, h
  end

  -- Hochreiter & Schmidhuber's adding problem, in the recurrent layout (T, B, 2):
  -- row 1 holds U(0,1) values, row 2 marks two of them (one in each half).
  function data.adding_problem(n, T)
    n = count("adding_problem", 1, n, "n")
    T = count("adding_problem", 2, T, "T", 2)
    local values = gl.rand{T, n}
    local marks = gl.zeros{T, n}
    local half = T // 2
    local first = gl.randint(1, half, {n}):totable()
    local second = gl.randint(half + 1, T, {n}):totable()
    local y = gl.empty{n, 1}
    for b = 1, n do
      marks:set(1, first[b], b)
      marks:set(1, second[b], b)
      y:set(values:get(first[b], b) + values:get(second[b], b), b, 1)
    end
    return gl.stack({values, marks}, 3), y
  end

  -- Copy task: T symbols, a delimiter, then T blanks during which the net must
  -- repeat the symbols.  Classes: 1 = blank, 2 = delimiter, 3.. = symbols.
  function data.copy_task(n, T, symbols)
    n = count("copy_task", 1, n, "n")
    T = count("copy_task", 2, T, "T")
    symbols = count("copy_task", 3, symbols or 8, "symbols")
    local L, width = 2 * T + 1, symbols + 2
    local x, y = gl.zeros{L, n, width}, gl.ones{L, n}
    local s = gl.randint(3, symbols + 2, {T, n}):totable()
    for b = 1, n do
      for t = 1, T do
        x:set(1, t, b, s[t][b])
        y:set(s[t][b], T + 1 + t, b)
      end
      x:set(1, T + 1, b, 2)
      for t = T + 2, L do x:set(1, t, b, 1) end
    end
    return x, y
  end

  -- Two communities (stochastic block model: p inside, p/4 across), features
  -- a noisy one-hot of the community, and optionally `hubs` nodes linked to
  -- half of all others (the high-degree nodes the seed warns about).
  function data.random_graph(n, p, options)
    n = count("random_graph", 1, n, "n", 2)
    if type(p) ~= "number" or p < 0 or p > 1 then error("data.random_graph: bad argument #2 (p must be in [0, 1])", 2) end
    options = options or {}
    local features = count("random_graph", 3, options.features or 8, "features")
    local hubs = options.hubs or 0
    local y = gl.empty{n}
    for i = 1, n do y:set(i <= n // 2 and 1 or 2, i) end
    local u = gl.rand{n, n}:totable()
    local adjacency = gl.zeros{n, n}
    for i = 1, n do
      for j = i + 1, n do
        local same = (i <= n // 2) == (j <= n // 2)
        local q = same and p or p / 4
        if i <= hubs or j <= hubs then q = math.max(q, 0.5) end
        if u[i][j] < q then adjacency:set(1, i, j); adjacency:set(1, j, i) end
      end
    end
    local x = gl.randn{n, features} * 0.5
    for i = 1, n do x:set(x:get(i, y:get(i)) + 1, i, y:get(i)) end
    return x, y, adjacency
  end

  -- Numbers separated by commas (or semicolons, tabs); a header line when
  -- {header = true} (the default); every row the same length.  Parsed in C
  -- (engine/csv.c, fuzzed by spec/fuzz/fuzz_csv.c).
  function data.csv(path, options)
    if type(path) ~= "string" then error("data.csv: bad argument #1 (a file path expected)", 2) end
    if options ~= nil and type(options) ~= "table" then
      error(("data.csv: bad argument #2 (options table expected, got %s)"):format(type(options)), 2)
    end
    options = options or {}
    local ok, result = pcall(gl._csv_load, path, options.header ~= false)
    if not ok then
      local message = tostring(result):gsub("^csv: ", "data.csv: "):gsub("^bad argument #(%d+) to '[^']*'", "data.csv: bad argument #%1")
      error(message, 2)
    end
    return result
  end

  -- Mini-batches along dimension 1; shuffling uses the engine's generator.
  local Loader = {}
  Loader.__index = Loader

  function data.loader(x, y, options)
    if not gl.is_tensor(x) then error("data.loader: bad argument #1 (tensor expected)", 2) end
    if y ~= nil and not gl.is_tensor(y) then error("data.loader: bad argument #2 (tensor or nil expected)", 2) end
    if y and y:size(1) ~= x:size(1) then
      error(("data.loader: x has %d rows but y has %d"):format(x:size(1), y:size(1)), 2)
    end
    options = options or {}
    local batch = count("loader", 3, options.batch or 32, "batch")
    return setmetatable({ x = x, y = y, batch = batch, shuffle = options.shuffle ~= false,
                          drop_last = options.drop_last == true }, Loader)
  end

  function Loader:__len()
    local n = self.x:size(1)
    return self.drop_last and n // self.batch or (n + self.batch - 1) // self.batch
  end

  function Loader:epoch()
    local n = self.x:size(1)
    local order = self.shuffle and gl.randperm(n) or nil
    local start = 1
    return function()
      if start > n then return nil end
      local length = math.min(self.batch, n - start + 1)
      if length < self.batch and self.drop_last then return nil end
      local xb, yb
      if order then
        local picks = order:narrow(1, start, length)
        xb = self.x:index_select(1, picks)
        yb = self.y and self.y:index_select(1, picks)
      else
        xb = self.x:narrow(1, start, length)
        yb = self.y and self.y:narrow(1, start, length)
      end
      start = start + length
      return xb, yb
    end
  end

  return data
end
