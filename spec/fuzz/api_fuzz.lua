-- spec/fuzz/api_fuzz.lua — random calls of the whole Lua API with hostile arguments.
--
--   gradlab spec/fuzz/api_fuzz.lua [seed [calls]]      (TRACE=1 prints each call on stderr)
--
-- Tensor methods, gl.* functions, losses, nn modules (built from random arguments and called
-- on random tensors) and optimizers get arguments drawn from a pool: tensors of awkward shapes
-- (0-d, empty, transposed, expanded, narrowed, NaN/inf-filled, tracking grad), numbers such as
-- 0, -1, NaN, inf, 2^62, shapes with such sizes, nil, strings and tables.  Results go back into
-- the pool, are printed and back-propagated.  A Lua error is the expected answer to most calls;
-- what must never happen is a crash, a sanitizer report (run it with build-check/gradlab) or a
-- hang.  Even seeds favour well-typed arguments (deeper calls), odd seeds hostile ones.
-- spec/robust_spec.lua runs a few seeds; longer runs by hand found the bugs listed in
-- spec/fuzz/README.md.
local seed = tonumber(arg and arg[1]) or 1
local calls = tonumber(arg and arg[2]) or 20000
local trace = os.getenv("TRACE") ~= nil
math.randomseed(seed)
gl.manual_seed(seed)
local well_typed = seed % 2 == 0

local function fresh_pool()
  return {
    gl.tensor(3), gl.zeros{0}, gl.zeros{0, 3}, gl.randn{2, 3}, gl.randn{3, 1}, gl.randn{2, 3}:t(),
    gl.zeros{1, 3}:expand{4, 3}, gl.randn{2, 2, 2}, gl.randn{1, 1, 4, 4}, gl.tensor{1, 2, 3},
    gl.full({2, 2}, 0 / 0), gl.full({3}, math.huge), gl.randn{4, 4}:narrow(2, 2, 2),
    gl.param(gl.randn{2, 3}), gl.arange(1, 7):view{2, 3}, gl.randn{5}:select(1, 2), gl.zeros{3, 0, 2},
  }
end
local pool = fresh_pool()
local numbers = { 0, 1, -1, 2, 3, 0.5, -0.5, 1e4, -1e4, 0 / 0, math.huge, -math.huge, 2 ^ 62, 2 ^ 40,
                  1e-45, 9, 4 }
local odd_sizes = { -1, 0.5, 0 / 0, math.huge, 2 ^ 62, 2 ^ 40, -3 }

local function random_number() return numbers[math.random(#numbers)] end
local function random_shape()
  local shape = {}
  for i = 1, math.random(0, 4) do
    shape[i] = math.random() < 0.85 and math.random(0, 4) or odd_sizes[math.random(#odd_sizes)]
  end
  return shape
end
local function random_tensor() return pool[math.random(#pool)] end
local function random_argument()
  local r = math.random(100)
  if well_typed then
    if r <= 50 then return random_tensor()
    elseif r <= 85 then return ({ 1, 2, 3, -1, 1, 2 })[math.random(6)]
    elseif r <= 92 then return random_shape()
    elseif r <= 95 then return nil end
    return random_number()
  end
  if r <= 40 then return random_tensor()
  elseif r <= 70 then return random_number()
  elseif r <= 80 then return random_shape()
  elseif r <= 85 then return nil
  elseif r <= 90 then return "x"
  elseif r <= 95 then return { random_tensor(), random_tensor() } end
  return true
end

local methods, probe = {}, gl.zeros{1}
for _, name in ipairs { "shape", "size", "stride", "dim", "numel", "is_contiguous", "item", "get", "set",
  "totable", "view", "reshape", "expand", "transpose", "t", "permute", "narrow", "select", "unsqueeze",
  "squeeze", "contiguous", "clone", "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne",
  "lt", "le", "gt", "ge", "neg", "exp", "log", "sqrt", "abs", "sign", "half", "bfloat16", "clamp", "matmul",
  "sum", "mean", "max", "min", "argmax", "argmin", "norm", "fill", "zero", "copy", "add_", "mul_",
  "index_select", "requires_grad", "detach", "retain_grad", "zero_grad", "is_leaf", "tracks_grad",
  "grad_fn", "set_name", "name", "stats", "watch_grad", "watched_grad", "relu", "sigmoid", "tanh",
  "softmax", "log_softmax" } do
  if type(probe[name]) == "function" then methods[#methods + 1] = name end
end

local functions = {}
for _, name in ipairs { "zeros", "ones", "full", "empty", "randn", "rand", "randint", "eye", "arange",
  "cat", "stack", "where", "maximum", "minimum", "matmul", "randperm", "index_select", "relu", "sigmoid",
  "tanh", "gelu", "elu", "leaky_relu", "softmax", "log_softmax", "dropout", "linear", "softplus", "prelu",
  "batch_norm", "layer_norm", "group_norm", "rms_norm", "conv2d", "max_pool2d", "avg_pool2d", "embedding",
  "attention" } do
  if type(gl[name]) == "function" then functions[#functions + 1] = name end
end
for _, name in ipairs { "mse", "cross_entropy", "nll", "bce", "bce_with_logits" } do
  functions[#functions + 1] = "loss." .. name
end
for _, name in ipairs { "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "Embedding", "Dropout",
  "RNN", "LSTM", "GRU", "MultiheadAttention", "TransformerBlock", "GraphConv", "Sigmoid", "Tanh", "ReLU",
  "LeakyReLU", "ELU", "PReLU", "GELU", "Softmax", "BatchNorm", "LayerNorm", "GroupNorm", "RMSNorm" } do
  if gl.nn[name] then functions[#functions + 1] = "nn." .. name end
end
for _, name in ipairs { "SGD", "Adam", "AdamW", "RMSprop", "Adagrad" } do
  functions[#functions + 1] = "optim." .. name
end

local function describe(args, n)
  local parts = {}
  for k = 1, n do
    local v = args[k]
    parts[k] = gl.is_tensor(v) and ("T{" .. table.concat(v:shape(), ",") .. "}")
      or (type(v) == "table" and ("{#" .. #v .. "}") or tostring(v))
  end
  return table.concat(parts, " ")
end

local ok_count = 0
for i = 1, calls do
  if i % 500 == 0 then pool = fresh_pool() end
  local nargs = math.random(0, 4)
  local args = {}
  for k = 1, nargs do args[k] = random_argument() end
  local name, fn
  if math.random() < 0.6 then
    name = methods[math.random(#methods)]
    local self = random_tensor()
    fn = function() return self[name](self, table.unpack(args, 1, nargs)) end
  else
    name = functions[math.random(#functions)]
    if name:find("^nn%.") then
      local class, x = gl.nn[name:sub(4)], random_tensor()
      fn = function()
        local m = class(table.unpack(args, 2, nargs))
        if math.random() < 0.3 then m:evaluate() end
        return m(x, args[1])
      end
    elseif name:find("^optim%.") then
      local class = gl.optim[name:sub(7)]
      fn = function()
        local params = {}
        for k = 1, math.random(0, 2) do params[k] = gl.param(gl.randn{ math.random(0, 3), 2 }) end
        local opt = class(params, { lr = args[1], momentum = args[2], weight_decay = args[3] })
        for _, p in ipairs(params) do (p * p):sum():backward() end
        opt:step()
        gl.optim.clip_grad_norm(params, args[4] or 1)
        return params[1]
      end
    else
      local f = name:find("^loss%.") and gl.loss[name:sub(6)] or gl[name]
      fn = function() return f(table.unpack(args, 1, nargs)) end
    end
  end
  if trace then io.stderr:write(i, " ", name, " ", describe(args, nargs), "\n") end
  local ok, result = pcall(fn)
  if ok then
    ok_count = ok_count + 1
    if gl.is_tensor(result) and result:numel() < 1e6 then
      pcall(function()
        local _ = tostring(result)
        if result:tracks_grad() and result:numel() > 0 then result:sum():backward() end
        if result:numel() < 1e4 then pool[math.random(#pool)] = result end
      end)
    end
  end
end
gl.detect_anomaly(false)
print(("api_fuzz seed %d: %d calls, %d returned, %d raised"):format(seed, calls, ok_count, calls - ok_count))
