-- spec/catalogue_spec.lua — the bad-input catalogue: misuses a user makes at the REPL all day.
--
-- Each case must raise a Lua error (never crash, abort or hang) whose message names the
-- function and the argument at fault, and the session must go on working afterwards: after
-- every pcall the spec runs a real computation (a matmul and its backward, an optimizer step)
-- and checks global state (grad mode, module path) was not left half-changed.  Under
-- `make check` the same cases run with AddressSanitizer and UBSan, so a case that corrupts
-- memory without crashing fails there.
--
-- case(area, what, fn, fragment...): fn must raise; the message must contain every fragment
-- (plain text): the function's name first, then what identifies the argument.
local gl = require "gradlab"
local nn, optim = gl.nn, gl.optim

local dir   -- fixtures: good and damaged files, made in setup
local cases = {}
local function case(area, what, fn, ...)
  cases[#cases + 1] = { area = area, what = what, fn = fn, fragments = { ... } }
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function mlp() return nn.Sequential{ nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2) } end
local a, b = gl.randn{2, 3}, gl.randn{4, 5}

-- ------------------------------------------------------------- tensors: creation
case("tensor", "shape given as a string", function() return gl.zeros("abc") end, "zeros", "shape")
case("tensor", "negative size", function() return gl.zeros{2, -3} end, "zeros", "size 2", "negative")
case("tensor", "NaN size", function() return gl.ones{2, 0 / 0} end, "ones", "position 2", "not an integer")
case("tensor", "fractional size", function() return gl.empty{2.5} end, "empty", "size 2.5")
case("tensor", "infinite size", function() return gl.randn{math.huge} end, "randn", "size inf")
case("tensor", "nine dimensions", function() return gl.zeros{1, 1, 1, 1, 1, 1, 1, 1, 1} end,
     "zeros", "at most 8 dimensions")
case("tensor", "fill value of the wrong type", function() return gl.full({2}, "x") end,
     "full", "#2")
case("tensor", "fill value missing (wrong arity)", function() return gl.full({2}) end, "full", "#2")
case("tensor", "ragged nested table", function() return gl.tensor{{1, 2}, {3}} end,
     "tensor", "ragged")
case("tensor", "string among the values", function() return gl.tensor{1, "a"} end,
     "tensor", "got a string")
case("tensor", "nil instead of values", function() return gl.tensor(nil) end, "tensor", "#1")
case("tensor", "randint with low above high", function() return gl.randint(5, 1, {3}) end,
     "randint", "high (1) is below low (5)")
case("tensor", "eye of a negative size", function() return gl.eye(-1) end, "eye", "#1")
case("tensor", "arange with step 0", function() return gl.arange(0, 10, 0) end, "arange", "step")
case("tensor", "arange to infinity", function() return gl.arange(0, math.huge) end,
     "arange", "bounds finite")
case("tensor", "manual_seed of a string", function() return gl.manual_seed("x") end,
     "manual_seed", "#1")
case("tensor", "zero threads", function() return gl.set_num_threads(0) end,
     "set_num_threads", "#1")
case("tensor", "randperm of a negative n", function() return gl.randperm(-1) end, "randperm", "n must")

-- ----------------------------------------------------------- tensors: inspect, views
case("tensor", "size of dimension 5 of a 2-d tensor", function() return a:size(5) end,
     "size", "dimension 5")
case("tensor", "size of dimension 0 (1-based)", function() return a:size(0) end,
     "size", "1-based")
case("tensor", "get out of range", function() return a:get(3, 1) end, "get", "index 3", "dimension 1")
case("tensor", "get with too few indices", function() return a:get(1) end, "get", "needs 2 indices")
case("tensor", "set with a string value", function() return a:clone():set("x", 1, 1) end,
     "set", "#1")
case("tensor", "set with too many indices", function() return a:clone():set(1, 1, 1, 1) end,
     "set", "got 3")
case("tensor", "item of a 6-element tensor", function() return a:item() end, "item", "6 elements")
case("tensor", "item of a 0-element tensor", function() return gl.zeros{0}:item() end,
     "item", "0 elements")
case("tensor", "method called on a number", function() return a.sum(5) end, "sum", "#1")
case("tensor", "view with the wrong element count", function() return a:view{4, 4} end,
     "view", "{4, 4}")
case("tensor", "view with two -1 sizes", function() return a:view{-1, -1} end,
     "view", "only one size may be -1")
case("tensor", "view of a transposed (non-contiguous) tensor", function() return a:t():view{6} end,
     "view", "strides", "use reshape")
case("tensor", "transpose of dimension 3", function() return a:transpose(1, 3) end,
     "transpose", "dimension 3")
case("tensor", "narrow past the end", function() return a:narrow(1, 2, 5) end,
     "narrow", "length 5", "dimension 1")
case("tensor", "narrow from 0 (1-based)", function() return a:narrow(1, 0, 1) end, "narrow", "#2")
case("tensor", "select out of range", function() return a:select(1, 9) end, "select", "index 9")
case("tensor", "permute naming a dimension twice", function() return a:permute{1, 1} end,
     "permute", "once")
case("tensor", "expand to an incompatible shape", function() return a:expand{3, 5} end,
     "expand", "{2, 3}", "{3, 5}")
case("tensor", "unsqueeze out of range", function() return a:unsqueeze(9) end,
     "unsqueeze", "dimension 9")

-- ------------------------------------------------------------------- tensors: math
case("math", "adding mismatched shapes", function() return a + b end, "add", "{2, 3}", "{4, 5}")
case("math", "adding a string", function() return a + "s" end, "add", "string")
case("math", "matmul with mismatched inner sizes", function() return a:matmul(b) end,
     "matmul", "{2, 3}", "{4, 5}")
case("math", "matmul of 4-d tensors", function() return gl.zeros{2, 2, 2, 2}:matmul(gl.zeros{2, 2, 2, 2}) end,
     "matmul", "1-d, 2-d or 3-d")
case("math", "matmul with a number", function() return a:matmul(5) end, "matmul", "#1")
case("math", "pow with a string exponent", function() return a:pow("x") end, "pow", "string")
case("math", "clamp with low above high", function() return a:clamp(2, 1) end, "clamp", "low (2)")
case("math", "clamp with a NaN bound", function() return a:clamp(0 / 0, 1) end, "clamp", "low")
case("math", "sum over dimension 5", function() return a:sum(5) end, "sum", "dimension 5")
case("math", "argmax over dimension 3", function() return a:argmax(3) end, "argmax", "dimension 3")
case("math", "max of a 0-element tensor", function() return gl.zeros{0}:max() end, "max", "empty")
case("math", "argmax of a 0-element tensor", function() return gl.zeros{0}:argmax() end,
     "argmax", "size 0")
case("math", "cat of an empty list", function() return gl.cat({}, 1) end, "cat", "#1", "empty")
case("math", "cat of mismatched shapes", function() return gl.cat({a, b}, 1) end,
     "cat", "tensor 2", "{4, 5}")
case("math", "cat with a number in the list", function() return gl.cat({a, 5}, 1) end,
     "cat", "item 2")
case("math", "cat along dimension 4", function() return gl.cat({a, a}, 4) end, "cat", "dimension 4")
case("math", "stack of mismatched shapes", function() return gl.stack({a, b}, 1) end,
     "stack", "tensor 2")
case("math", "where with mismatched shapes", function() return gl.where(gl.zeros{2, 3}, a, b) end,
     "where", "{4, 5}")
case("math", "copy from a mismatched source", function() return a:clone():copy(b) end,
     "copy", "source of shape {4, 5}")
case("math", "add_ of a mismatched tensor", function() return a:clone():add_(b) end,
     "add_", "{4, 5}")
case("math", "mul_ by a string", function() return a:clone():mul_("x") end, "mul_", "#1")
case("math", "fill without a value", function() return a:clone():fill() end, "fill", "#1")
case("math", "writing into an expanded view", function() return gl.zeros{1, 3}:expand{4, 3}:fill(2) end,
     "fill", "expanded view")
case("math", "index_select out of range", function() return a:index_select(1, gl.tensor{3}) end,
     "index_select", "index 3")
case("math", "index_select with a NaN index", function() return a:index_select(1, gl.tensor{0 / 0}) end,
     "index_select", "position 1")

-- ----------------------------------------------------------------------- autograd
case("autograd", "backward twice through a freed graph", function()
  local p = gl.param(gl.randn{3})
  local loss = (p * p):sum()
  loss:backward()
  loss:backward()
end, "backward", "already freed", "retain_graph")
case("autograd", "backward of a non-scalar without grad", function()
  (gl.param(gl.randn{3}) * 2):backward()
end, "backward", "shape {3}")
case("autograd", "backward with a grad of the wrong shape", function()
  (gl.param(gl.randn{3}) * 2):backward(gl.ones{4})
end, "backward", "grad has shape {4}")
case("autograd", "backward with a string grad", function()
  (gl.param(gl.randn{3}) * 2):backward("x")
end, "backward", "#1")
case("autograd", "backward of a tensor that needs no grad", function()
  gl.randn{3}:sum():backward()
end, "backward", "does not require grad")
case("autograd", "requires_grad on a non-leaf", function()
  (gl.param(gl.randn{3}) * 2):requires_grad(true)
end, "requires_grad", "leaf")
case("autograd", "backward after an in-place change of a saved tensor", function()
  local p = gl.param(gl.randn{3})
  local e = p:exp()
  local loss = e:sum()
  e:add_(gl.ones{3})
  loss:backward()
end, "backward", "'exp' saved", "modified in place")
case("autograd", "no_grad of a number", function() gl.no_grad(5) end, "no_grad", "#1")
case("autograd", "an error inside no_grad", function()
  gl.no_grad(function() error("no_grad body failed") end)
end, "no_grad body failed")
case("autograd", "gradcheck of a number", function() gl.gradcheck(5, {a}) end, "gradcheck", "#1")
case("autograd", "gradcheck with inputs that are not tensors", function()
  gl.gradcheck(function(x) return x:sum() end, 5)
end, "gradcheck", "#2")
case("autograd", "param of a string", function() gl.param("x") end, "param", "#1")
case("autograd", "anomaly: log of a negative number", function()
  gl.detect_anomaly(true)
  local ok, message = pcall(function() return gl.param(gl.tensor{-1}):log() end)
  gl.detect_anomaly(false)
  if not ok then error(message, 0) end
end, "anomaly", "log")

-- ------------------------------------------------------------------------ modules
case("module", "Linear with 0 inputs", function() nn.Linear(0, 3) end, "Linear", "#1", "in_features")
case("module", "Linear with a negative size", function() nn.Linear(3, -1) end, "Linear", "#2")
case("module", "Linear with a NaN size", function() nn.Linear(0 / 0, 3) end, "Linear", "#1")
case("module", "Linear with a string size", function() nn.Linear("3", 3) end,
     "Linear", "#1", "a string")
case("module", "Linear fed the wrong feature count", function() nn.Linear(3, 4)(gl.zeros{2, 5}) end,
     "linear", "input has 5 features", "{2, 5}")
case("module", "Linear called on a string", function() nn.Linear(3, 4)("x") end, "linear", "#1")
case("module", "Linear called with no input", function() nn.Linear(3, 4)() end, "linear", "#1")
case("module", "Linear with an unknown init", function() nn.Linear(3, 4, { init = "bogus" }) end,
     "Linear", "init 'bogus'")
case("module", "Dropout with p = 1.5", function() nn.Dropout(1.5) end, "Dropout", "#1", "p must")
case("module", "Dropout with p = NaN", function() nn.Dropout(0 / 0) end, "Dropout", "#1")
case("module", "LeakyReLU with a string slope", function() nn.LeakyReLU("x") end,
     "LeakyReLU", "#1", "negative_slope")
case("module", "ELU with alpha = NaN", function() nn.ELU(0 / 0) end, "ELU", "#1", "alpha")
case("module", "BatchNorm of 0 features", function() nn.BatchNorm(0) end, "BatchNorm", "#1")
case("module", "BatchNorm fed the wrong channel count", function() nn.BatchNorm(4)(gl.zeros{2, 3}) end,
     "BatchNorm", "{2, 3}", "expects 4")
case("module", "BatchNorm training on one sample", function() nn.BatchNorm(3)(gl.zeros{1, 3}) end,
     "batch_norm", "more than one value per channel")
case("module", "BatchNorm training on an empty batch", function() nn.BatchNorm(3)(gl.zeros{0, 3}) end,
     "batch_norm", "{0, 3}")
case("module", "BatchNorm with a negative eps", function() nn.BatchNorm(3, { eps = -1 }) end,
     "BatchNorm", "eps")
case("module", "LayerNorm fed the wrong last size", function() nn.LayerNorm(4)(gl.zeros{2, 3}) end,
     "LayerNorm", "normalized_shape {4}")
case("module", "GroupNorm whose groups do not divide channels", function() nn.GroupNorm(3, 4) end,
     "GroupNorm", "3 groups")
case("module", "Sequential of a number", function() nn.Sequential{5} end, "Sequential", "item 1")
case("module", "Sequential:add of a string", function() nn.Sequential():add("x") end,
     "Sequential", "string")
case("module", "Residual whose block changes the shape", function()
  nn.Residual(nn.Linear(3, 4))(gl.zeros{2, 3})
end, "add", "{2, 3}", "{2, 4}")
case("module", "Flatten from dimension inf to NaN", function() nn.Flatten(math.huge, 0 / 0) end,
     "Flatten", "#1", "start_dim")
case("module", "Softmax over dimension 5", function() nn.Softmax(5)(gl.zeros{2, 3}) end,
     "softmax", "dimension 5")
case("module", "precision of an unknown format", function() mlp():precision("fp8") end,
     "precision", "fp8")
case("module", "Conv2d with kernel 0", function() nn.Conv2d(1, 2, 0) end, "Conv2d", "#3", "kernel_size")
case("module", "Conv2d fed the wrong channel count", function() nn.Conv2d(1, 2, 3)(gl.zeros{1, 2, 5, 5}) end,
     "conv2d", "2 channels")
case("module", "Conv2d on an image smaller than the kernel", function()
  nn.Conv2d(1, 2, 3)(gl.zeros{1, 1, 2, 2})
end, "conv2d", "too small")
case("module", "MaxPool2d with kernel 0", function() nn.MaxPool2d(0) end, "MaxPool2d", "#1")
case("module", "Embedding index past the table", function() nn.Embedding(10, 4)(gl.tensor{11}) end,
     "embedding", "index 11", "1..10")
case("module", "Embedding index 1.5", function() nn.Embedding(10, 4)(gl.tensor{1.5}) end,
     "embedding", "index 1.5")
case("module", "LSTM fed a 2-d input", function() nn.LSTM(3, 4)(gl.zeros{2, 3}) end,
     "LSTM", "3-d", "{2, 3}")
case("module", "LSTM over an empty sequence", function() nn.LSTM(3, 4)(gl.zeros{0, 2, 3}) end,
     "LSTM", "empty", "{0, 2, 3}")
case("module", "RNN with an unknown nonlinearity", function() nn.RNN(3, 4, { nonlinearity = "sigmoid" }) end,
     "RNN", "nonlinearity")
case("module", "MultiheadAttention whose heads do not divide", function() nn.MultiheadAttention(6, 4) end,
     "MultiheadAttention", "num_heads 4")

-- ------------------------------------------------------------------------- losses
case("loss", "label past the last class", function() gl.loss.cross_entropy(gl.zeros{2, 3}, gl.tensor{1, 4}) end,
     "cross_entropy", "label 4", "position 2")
case("loss", "label 0 (1-based)", function() gl.loss.cross_entropy(gl.zeros{2, 3}, gl.tensor{0, 1}) end,
     "cross_entropy", "label 0", "position 1")
case("loss", "NaN label", function() gl.loss.cross_entropy(gl.zeros{2, 3}, gl.tensor{0 / 0, 1}) end,
     "cross_entropy", "position 1")
case("loss", "fractional label", function() gl.loss.cross_entropy(gl.zeros{2, 3}, gl.tensor{1.5, 1}) end,
     "cross_entropy", "label 1.5")
case("loss", "label 1e30", function() gl.loss.cross_entropy(gl.zeros{2, 3}, gl.tensor{1e30, 1}) end,
     "cross_entropy", "position 1")
case("loss", "one label too many", function() gl.loss.cross_entropy(gl.zeros{2, 3}, gl.tensor{1, 1, 1}) end,
     "cross_entropy", "labels of shape {3}")
case("loss", "labels as a table", function() gl.loss.cross_entropy(gl.zeros{2, 3}, {1, 2}) end,
     "cross_entropy", "#2")
case("loss", "nll label out of range", function() gl.loss.nll(gl.zeros{2, 3}, gl.tensor{1, 7}) end,
     "nll", "label 7")
case("loss", "mse of mismatched shapes", function() gl.loss.mse(gl.zeros{2, 3}, gl.zeros{3, 2}) end,
     "mse", "target has shape {3, 2}")
case("loss", "bce of values outside [0, 1]", function() gl.loss.bce(gl.full({2}, 1.5), gl.zeros{2}) end,
     "bce", "1.5", "position 1")

-- --------------------------------------------------------------------- optimizers
case("optim", "an optimizer with no parameters", function() optim.SGD({}, { lr = 0.1 }) end,
     "SGD", "no parameters")
case("optim", "parameters nil", function() optim.Adam(nil) end, "Adam", "#1")
case("optim", "negative lr", function() optim.SGD(mlp():parameters(), { lr = -1 }) end, "SGD", "lr")
case("optim", "NaN lr", function() optim.Adam(mlp():parameters(), { lr = 0 / 0 }) end, "Adam", "lr")
case("optim", "lr missing for SGD", function() optim.SGD(mlp():parameters()) end, "SGD", "lr")
case("optim", "lr set to a string later", function()
  local opt = optim.SGD(mlp():parameters(), { lr = 0.1 })
  opt.lr = "fast"
  opt:step()
end, "SGD", "lr")
case("optim", "Adam beta1 = 1.5", function() optim.Adam(mlp():parameters(), { betas = { 1.5, 0.9 } }) end,
     "Adam", "betas")
case("optim", "Adam with negative eps", function() optim.Adam(mlp():parameters(), { eps = -1 }) end,
     "Adam", "eps")
case("optim", "negative momentum", function() optim.SGD(mlp():parameters(), { lr = 0.1, momentum = -0.5 }) end,
     "SGD", "momentum")
case("optim", "nesterov without momentum", function() optim.SGD(mlp():parameters(), { lr = 0.1, nesterov = true }) end,
     "SGD", "nesterov")
case("optim", "RMSprop alpha = 2", function() optim.RMSprop(mlp():parameters(), { lr = 0.1, alpha = 2 }) end,
     "RMSprop", "alpha")
case("optim", "options given as a string", function() optim.Adam(mlp():parameters(), "x") end,
     "Adam", "#2")
case("optim", "a number among the parameters", function() optim.SGD({ 5 }, { lr = 1 }) end,
     "SGD", "parameter 1")
case("optim", "a tensor that does not require grad", function() optim.SGD({ gl.randn{3} }, { lr = 1 }) end,
     "SGD", "parameter 1", "require grad")
case("optim", "a non-contiguous parameter", function()
  optim.SGD({ gl.param(gl.randn{3, 4}:t()) }, { lr = 0.1 })
end, "SGD", "parameter 1", "non-contiguous")
case("optim", "load_state of a string", function() optim.Adam(mlp():parameters()):load_state("x") end,
     "load_state", "#1")
case("optim", "load_state of another optimizer's state", function()
  local sgd = optim.SGD(mlp():parameters(), { lr = 0.1, momentum = 0.9 })
  optim.Adam(mlp():parameters()):load_state(sgd:state())
end, "load_state", "#1", "SGD")
case("optim", "clip_grad_norm to a negative norm", function() optim.clip_grad_norm(mlp():parameters(), -1) end,
     "clip_grad_norm", "#2")
case("optim", "clip_grad_norm to NaN", function() optim.clip_grad_norm(mlp():parameters(), 0 / 0) end,
     "clip_grad_norm", "#2")
case("optim", "clip_grad_value of a number", function() optim.clip_grad_value(5, 1) end,
     "clip_grad_value", "#1")
case("optim", "cosine schedule over 0 steps", function()
  optim.cosine(optim.SGD(mlp():parameters(), { lr = 0.1 }), 0)
end, "cosine", "#2", "T_max")
case("optim", "step_lr of a number", function() optim.step_lr(5, 10, 0.5) end, "step_lr", "#1")
case("optim", "GradScaler with a negative scale", function() gl.amp.GradScaler{ init_scale = -1 } end,
     "GradScaler", "init_scale")

-- ------------------------------------------------------------------------ monitor
local monitored, monitor = mlp(), nil
case("monitor", "monitor of a number", function() gl.monitor(5) end, "monitor", "#1")
case("monitor", "every = 0", function() gl.monitor(mlp(), { every = 0 }) end, "monitor", "every")
case("monitor", "record with a string step", function() monitor:record("x") end, "record", "#1")
case("monitor", "record with a NaN step", function() monitor:record(0 / 0) end, "record", "#1", "finite")
case("monitor", "series of an unknown name", function() monitor:series("nope", "grad_norm") end,
     "series", "'nope'")
case("monitor", "series of an unknown field", function() monitor:series("1.weight", "bogus") end,
     "series", "#2", "'bogus'")
case("monitor", "to_csv into a missing folder", function() monitor:to_csv("/nonexistent/dir/m.csv") end,
     "to_csv", "/nonexistent/dir/m.csv")
case("monitor", "plot of an unknown kind", function() monitor:plot(dir .. "/m.png", { kind = "pie" }) end,
     "plot", "kind", "'pie'")
case("monitor", "monitor_from_csv of a missing file", function() gl.monitor_from_csv("/nonexistent.csv") end,
     "monitor_from_csv", "/nonexistent.csv")
case("monitor", "monitor_from_csv of a .npy file", function() gl.monitor_from_csv(dir .. "/good.npy") end,
     "monitor_from_csv", "good.npy", "not a monitor CSV")
case("monitor", "monitor_from_csv with a NaN step", function() gl.monitor_from_csv(dir .. "/nan_step.csv") end,
     "monitor_from_csv", "line 2", "step")
case("monitor", "monitor_from_csv of a truncated row", function() gl.monitor_from_csv(dir .. "/short_row.csv") end,
     "monitor_from_csv", "line 3", "fields")

-- -------------------------------------------------------------------------- plots
local xy = { { x = { 1, 2 }, y = { 1, 2 } } }
case("plot", "lines without a path", function() gl.plot.lines{ series = xy } end, "lines", "'path'")
case("plot", "lines with x and y of different lengths", function()
  gl.plot.lines{ path = dir .. "/p.png", series = { { x = { 1, 2 }, y = { 1 } } } }
end, "lines", "series 1", "y has 1")
case("plot", "lines into a missing folder", function()
  gl.plot.lines{ path = "/nonexistent/p.png", series = xy }
end, "lines", "/nonexistent/p.png")
case("plot", "lines with a negative width", function()
  gl.plot.lines{ path = dir .. "/p.png", width = -5, series = xy }
end, "lines", "width")
case("plot", "lines with a NaN height", function()
  gl.plot.lines{ path = dir .. "/p.png", height = 0 / 0, series = xy }
end, "lines", "height")
case("plot", "a string among the y values", function()
  gl.plot.lines{ path = dir .. "/p.png", series = { { x = { 1, 2 }, y = { 1, "a" } } } }
end, "lines", "y[2]")
case("plot", "heatmap of a string", function() gl.plot.heatmap{ path = dir .. "/h.png", values = "x" } end,
     "heatmap", "values")
case("plot", "heatmap of ragged rows", function()
  gl.plot.heatmap{ path = dir .. "/h.png", values = { { 1, 2 }, { 3 } } }
end, "heatmap", "row 2")
case("plot", "heatmap of a 3-d tensor", function()
  gl.plot.heatmap{ path = dir .. "/h.png", values = gl.zeros{2, 2, 2} }
end, "heatmap", "{2, 2, 2}")
case("plot", "histogram with 0 bins", function()
  gl.plot.histogram{ path = dir .. "/g.png", series = { { values = { 1, 2 } } }, bins = 0 }
end, "histogram", "bins")
case("plot", "histogram with 10^12 bins", function()
  gl.plot.histogram{ path = dir .. "/g.png", series = { { values = { 1, 2 } } }, bins = 1e12 }
end, "histogram", "bins")
case("plot", "histogram of no values", function()
  gl.plot.histogram{ path = dir .. "/g.png", series = { { values = {} } } }
end, "histogram", "values is empty")
case("plot", "grid without panels", function() gl.plot.grid{ path = dir .. "/g.png", panels = {} } end,
     "grid", "panels")
case("plot", "grid panel of an unknown kind", function()
  gl.plot.grid{ path = dir .. "/g.png", panels = { { kind = "pie" } } }
end, "grid", "panel 1", "'pie'")

-- -------------------------------------------------------------------------- files
case("files", "save into a missing folder", function() gl.save("/nonexistent/dir/x.npy", a) end,
     "save", "/nonexistent/dir/x.npy")
case("files", "save below a regular file (unwritable path)", function() gl.save(dir .. "/good.npy/x.npy", a) end,
     "save", "Not a directory")
case("files", "save of a string", function() gl.save(dir .. "/x.npy", "x") end, "save", "#2")
case("files", "save to a number as path", function() gl.save(5, a) end, "save", "#1")
case("files", "save to an empty path", function() gl.save("", a) end, "save", "#1", "empty")
case("files", "save to a path with a NUL byte", function() gl.save(dir .. "/a\0b.npy", a) end,
     "save", "#1", "NUL")
case("files", "load of a missing file", function() gl.load(dir .. "/none.npy") end,
     "load", "none.npy", "No such file")
case("files", "load of a truncated .npy (data)", function() gl.load(dir .. "/trunc_data.npy") end,
     "load", "trunc_data.npy", "truncated data")
case("files", "load of a truncated .npy (header)", function() gl.load(dir .. "/trunc_head.npy") end,
     "load", "trunc_head.npy", "truncated header")
case("files", "load of a directory (unreadable path)", function() gl.load(dir) end,
     "load", "Is a directory")
case("files", "load of /proc/self/mem (unreadable: EIO)", function() gl.load("/proc/self/mem") end,
     "load", "/proc/self/mem", "Input/output error")
case("files", "data.csv of /proc/self/mem (unreadable)", function() gl.data.csv("/proc/self/mem") end,
     "data.csv", "/proc/self/mem", "cannot read")
case("monitor", "monitor_from_csv of /proc/self/mem (unreadable)", function() gl.monitor_from_csv("/proc/self/mem") end,
     "monitor_from_csv", "cannot read")
case("files", "load of an .npz archive", function() gl.load(dir .. "/good.npz") end,
     "load", "good.npz", "not a .npy file")
case("files", "save_state of a number value", function() gl.save_state(dir .. "/s.npz", { w = 5 }) end,
     "save_state", "#2", "'w'")
case("files", "save_state with a number key", function() gl.save_state(dir .. "/s.npz", { [1] = a }) end,
     "save_state", "#2", "key 1")
case("files", "save_state into a missing folder", function()
  gl.save_state("/nonexistent/s.npz", { w = a })
end, "save_state", "/nonexistent/s.npz")
case("files", "load_state of a truncated archive", function() gl.load_state(dir .. "/trunc.npz") end,
     "load_state", "trunc.npz")
case("files", "load_state of a .npy file", function() gl.load_state(dir .. "/good.npy") end,
     "load_state", "good.npy", "use load")
case("files", "data.csv of a missing file", function() gl.data.csv(dir .. "/none.csv") end,
     "data.csv", "none.csv")
case("files", "data.csv of a ragged file", function() gl.data.csv(dir .. "/ragged.csv", { header = false }) end,
     "data.csv", "line 2")
case("files", "data.csv of a binary file", function() gl.data.csv(dir .. "/good.npy") end,
     "data.csv", "good.npy", "not a number")
case("files", "data.csv with options as a string", function() gl.data.csv(dir .. "/ragged.csv", "x") end,
     "data.csv", "#2")

-- ------------------------------------------------------------------- data, init
case("data", "loader of x and y with different lengths", function()
  gl.data.loader(gl.zeros{4, 2}, gl.zeros{3})
end, "data.loader", "4 rows", "3")
case("data", "loader with batch 0", function() gl.data.loader(gl.zeros{4, 2}, gl.zeros{4}, { batch = 0 }) end,
     "data.loader", "batch")
case("data", "spirals of 0 points", function() gl.data.spirals(0) end, "data.spirals", "#1")
case("init", "kaiming with an unknown mode", function() gl.init.kaiming_uniform(gl.zeros{3, 3}, { mode = "bogus" }) end,
     "kaiming_uniform", "mode")
case("init", "normal with a negative std", function() gl.init.normal(gl.zeros{3}, 0, -1) end,
     "init.normal", "std")
case("init", "orthogonal of a 1-d tensor", function() gl.init.orthogonal(gl.zeros{3}) end,
     "orthogonal", "{3}")
case("init", "zeros of a number", function() gl.init.zeros(5) end, "init.zeros", "#1")

-- ------------------------------------------------------------------------- the spec

-- The session still works: a matmul and its backward, an optimizer step, a module call,
-- and the global state a failed call could leave changed.
local function session_still_works()
  local w = gl.param(gl.tensor{ { 1, 2 }, { 3, 4 } })
  local y = w:matmul(gl.tensor{ { 1 }, { 1 } }):sum()
  assert.equal(10, y:item())
  y:backward()
  assert.tensor_near(w.grad, { { 1, 1 }, { 1, 1 } })
  local opt = optim.SGD({ w }, { lr = 0.5 })
  opt:step()
  assert.tensor_near(w, { { 0.5, 1.5 }, { 2.5, 3.5 } })
  local out = nn.Linear(2, 3)(gl.ones{ 4, 2 })
  assert.same({ 4, 3 }, out:shape())
  assert.is_true(gl.is_grad_enabled())
  assert.equal("", gl._module_path())
end

describe("bad-input catalogue", function()
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    gl.save(dir .. "/good.npy", gl.randn{ 4, 4 })
    local good = read(dir .. "/good.npy")
    write(dir .. "/trunc_data.npy", good:sub(1, #good - 7))
    write(dir .. "/trunc_head.npy", good:sub(1, 20))
    gl.save_state(dir .. "/good.npz", { w = gl.randn{ 3, 3 }, b = gl.randn{ 3 } })
    local goodz = read(dir .. "/good.npz")
    write(dir .. "/trunc.npz", goodz:sub(1, #goodz - 30))
    write(dir .. "/ragged.csv", "1,2\n3\n")
    write(dir .. "/nan_step.csv", "step,kind,name,loss\nnan,step,,0.5\n")
    write(dir .. "/short_row.csv", "step,kind,name,loss\n1,step,,0.5\n2,step\n")
    monitor = gl.monitor(monitored)
    gl.loss.cross_entropy(monitored(gl.randn{ 5, 3 }), gl.tensor{ 1, 2, 1, 2, 2 }):backward()
    monitor:record(1, { loss = 1 })
  end)

  teardown(function()
    if dir then os.execute("rm -rf '" .. dir .. "'") end
  end)

  it("has at least 80 distinct cases", function()
    assert.is_true(#cases >= 80, #cases .. " cases")
    local seen = {}
    for _, c in ipairs(cases) do
      local key = c.area .. ": " .. c.what
      assert.is_nil(seen[key], "duplicate case " .. key)
      seen[key] = true
    end
  end)

  for _, c in ipairs(cases) do
    it(c.area .. ": " .. c.what, function()
      assert.error_matches(c.fn, table.unpack(c.fragments))
      session_still_works()
    end)
  end

  it("leaves the files it refused untouched and the session's data intact", function()
    local before = a:clone()
    for _, c in ipairs(cases) do pcall(c.fn) end
    assert.tensor_near(a, before, 0)
    session_still_works()
    -- no half-written file where a save failed
    assert.is_nil(io.open(dir .. "/s.npz", "rb"))
    assert.is_nil(io.open(dir .. "/x.npy", "rb"))
  end)
end)
