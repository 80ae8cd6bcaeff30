-- gradlab.nn_graph — graph layers and skip connections across them, added to gl.nn.
--
--   nn.GraphConv(in_features, out_features [, {aggregate = "mean" | "sum", self_loops = true,
--                normalize = nil | "symmetric", bias = true, adjacency =, init =, bias_init =}])
--       y = aggregate(x) W^T + b on node features x (N, in_features), called as
--       m(x, adjacency [, edge_weight]) where adjacency is
--         - a dense (N, N) tensor: node i aggregates from every j with A[i][j] ~= 0, weighted
--           by A[i][j] (y = A x; an (N, N) with N = 2 counts as dense);
--         - an edge list (E, 2) of 1-based {source, target} rows: messages flow source ->
--           target, as PyTorch Geometric's edge_index (list both directions for an undirected
--           graph), with optional edge_weight (E);
--         - {edges = (E, 2) [, weight = (E)]}, an edge list said explicitly.
--       aggregate = "mean" divides by the (weighted) in-degree, "sum" does not; self_loops adds
--       A + I first; normalize = "symmetric" is GCN's D^-1/2 (A + I) D^-1/2 with D the degrees
--       of A + I (sum aggregation; "mean" with it is an error).  A node with no neighbours
--       aggregates to zero (never NaN).  Gradients flow to x, weight and bias; the graph is a
--       constant.  `adjacency` stores a graph so that m(x) works, e.g. inside nn.Sequential.
--       Parameters: weight (out, in), bias (out) as nn.Linear; the product runs on whichever
--       side of the aggregation is narrower (same result: aggregation is linear).
--
--   nn.JumpingKnowledge{layer1, layer2, ... [, mode = "cat", activation = module]}
--       Runs the layers in sequence, each called as layer(h, adjacency), applies activation
--       after each, and combines every layer's output h1..hL (Xu et al. 2018): mode "cat"
--       concatenates them on the feature dimension (PyTorch Geometric's JumpingKnowledge
--       mode="cat"), "max" takes the elementwise maximum (all layers the same width).  Called
--       as jk(x, adjacency); jk.outputs holds h1..hL after a call.
--   nn.JumpingKnowledge(mode) / nn.JumpingKnowledge{mode = ...} without layers is PyTorch
--       Geometric's aggregator: jk{h1, h2, ...} combines a list the caller collected.
--   gl.nn.jumping_knowledge(list [, mode = "cat"]): the same as a function.
--
-- Skip connections of the residual kind: x + conv(x, A) directly, or nn.Residual(conv) with a
-- stored graph (nn.GraphConv(d, d, {adjacency = A})), since Residual passes only x.
-- Kernel: gl.graph_aggregate (engine/graph.c): sgemm for dense graphs, a scatter-add over the
-- edges for edge lists.
return function(gl, nn)
  local class = nn.class
  local check = require "gradlab.nn_check"
  local shape_text, integer_check, options_check = check.shape_text, check.integer, check.options

  -- A graph argument: a tensor or {edges =, weight =}.
  local function graph_check(layer, adjacency, level)
    if gl.is_tensor(adjacency) then return adjacency end
    if type(adjacency) == "table" and gl.is_tensor(adjacency.edges) then return adjacency end
    error(("%s: adjacency must be an (N, N) tensor, an (E, 2) edge list or {edges =, weight =}, got %s")
      :format(layer, type(adjacency)), level + 1)
  end

  -- GraphConv -----------------------------------------------------------------
  local GraphConv = class("GraphConv")
  local graph_conv_options = { aggregate = true, self_loops = true, normalize = true, bias = true, adjacency = true,
                               init = true, bias_init = true }

  function GraphConv:init(in_features, out_features, options)
    in_features = integer_check("GraphConv", 1, in_features, "in_features")
    out_features = integer_check("GraphConv", 2, out_features, "out_features")
    options = options_check("GraphConv", 3, options, graph_conv_options)
    local normalize, aggregate = options.normalize, options.aggregate
    if normalize ~= nil and normalize ~= "symmetric" then
      error(("GraphConv: normalize must be nil or \"symmetric\", got %s"):format(tostring(normalize)), 3)
    end
    if aggregate ~= nil and aggregate ~= "mean" and aggregate ~= "sum" then
      error(("GraphConv: aggregate must be \"mean\" or \"sum\", got %s"):format(tostring(aggregate)), 3)
    end
    if normalize and aggregate == "mean" then
      error("GraphConv: normalize = \"symmetric\" already weights a sum (D^-1/2 A D^-1/2); it cannot go with aggregate = \"mean\"", 3)
    end
    self.in_features, self.out_features = in_features, out_features
    self.aggregate = aggregate or (normalize and "sum" or "mean")
    self.normalize = normalize
    self.self_loops = options.self_loops == nil and true or (options.self_loops and true or false)
    self.norm = normalize or self.aggregate
    if options.adjacency ~= nil then self.adjacency = graph_check("GraphConv", options.adjacency, 3) end
    -- nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias.
    local bound = 1 / math.sqrt(in_features)
    self:register_parameter("weight", gl.init.uniform(gl.empty{ out_features, in_features }, -bound, bound))
    gl.init.apply("GraphConv", options.init, self.weight, "init")
    if options.bias ~= false then
      self:register_parameter("bias", gl.init.uniform(gl.empty{ out_features }, -bound, bound))
      gl.init.apply("GraphConv", options.bias_init, self.bias, "bias_init")
    end
  end

  -- Sets (or with nil clears) the graph used when m(x) is called without one.
  function GraphConv:set_adjacency(adjacency)
    self.adjacency = adjacency ~= nil and graph_check("GraphConv", adjacency, 2) or nil
    return self
  end

  function GraphConv:forward(x, adjacency, edge_weight)
    if not gl.is_tensor(x) or x:dim() ~= 2 or x:size(2) ~= self.in_features then
      error(("GraphConv: node features must be (nodes, %d), got %s"):format(self.in_features,
        gl.is_tensor(x) and shape_text(x:shape()) or type(x)), 3)
    end
    if adjacency == nil then adjacency = self.adjacency end
    if adjacency == nil then
      error("GraphConv: no graph: call m(x, adjacency) or store one with {adjacency = A} / m:set_adjacency(A)", 3)
    end
    graph_check("GraphConv", adjacency, 3)
    local options = { norm = self.norm, self_loops = self.self_loops, edge_weight = edge_weight }
    if self.out_features < self.in_features then
      local h = gl.graph_aggregate(gl.linear(x, self.weight), adjacency, options)
      if self.bias then h = h + self.bias end
      return h
    end
    return gl.linear(gl.graph_aggregate(x, adjacency, options), self.weight, self.bias)
  end

  -- Reduced precision rounds features and parameters, never the graph (its
  -- node indices are exact in bf16 only up to 256).
  function GraphConv:_forward_in_precision(x, adjacency, edge_weight)
    local method = self._precision
    local weight, bias = self.weight, self.bias
    rawset(self, "weight", weight[method](weight))
    if bias then rawset(self, "bias", bias[method](bias)) end
    local ok, out = pcall(self.forward, self, x[method](x), adjacency, edge_weight)
    rawset(self, "weight", weight)
    rawset(self, "bias", bias)
    if not ok then error(out, 0) end
    return out[method](out)
  end

  function GraphConv:extra_repr()
    local text = ("%d, %d, aggregate=%s, self_loops=%s"):format(self.in_features, self.out_features, self.aggregate,
                                                               tostring(self.self_loops))
    if self.normalize then text = text .. ", normalize=" .. self.normalize end
    if not self.bias then text = text .. ", bias=false" end
    return text
  end

  -- Jumping knowledge -----------------------------------------------------------
  local modes = { cat = true, max = true }

  local function combine(list, mode, level)
    if type(list) ~= "table" or #list == 0 then
      error(("jumping_knowledge: a non-empty list of tensors expected, got %s"):format(type(list)), level + 1)
    end
    for i, t in ipairs(list) do
      if not gl.is_tensor(t) then
        error(("jumping_knowledge: item %d is a %s, not a tensor"):format(i, type(t)), level + 1)
      end
    end
    if mode == "cat" then return gl.cat(list, list[1]:dim()) end
    local shape = shape_text(list[1]:shape())
    for i, t in ipairs(list) do
      if shape_text(t:shape()) ~= shape then
        error(("jumping_knowledge: mode \"max\" needs equal shapes; item 1 is %s, item %d is %s")
          :format(shape, i, shape_text(t:shape())), level + 1)
      end
    end
    if #list == 1 then return list[1] end
    return (gl.stack(list, 1):max(1))
  end

  function nn.jumping_knowledge(list, mode)
    mode = mode or "cat"
    if not modes[mode] then
      error(("jumping_knowledge: mode must be \"cat\" or \"max\", got %s"):format(tostring(mode)), 2)
    end
    return combine(list, mode, 2)
  end

  local JumpingKnowledge = class("JumpingKnowledge")
  function JumpingKnowledge:init(spec)
    if type(spec) == "string" or spec == nil then spec = { mode = spec } end
    if type(spec) ~= "table" then
      error(("JumpingKnowledge: bad argument #1 (a list of layers or a mode expected, got %s)"):format(type(spec)), 3)
    end
    for key in pairs(spec) do
      if type(key) ~= "number" and key ~= "mode" and key ~= "activation" then
        error(("JumpingKnowledge: unknown option '%s'"):format(tostring(key)), 3)
      end
    end
    self.mode = spec.mode or "cat"
    if not modes[self.mode] then
      error(("JumpingKnowledge: mode must be \"cat\" or \"max\", got %s"):format(tostring(self.mode)), 3)
    end
    for i, layer in ipairs(spec) do
      if type(layer) ~= "table" or not layer._modules then
        error(("JumpingKnowledge: item %d is a %s, not a module"):format(i, type(layer)), 3)
      end
      self:register_module(tostring(i), layer)
    end
    self.num_layers = #spec
    if spec.activation ~= nil then
      if type(spec.activation) ~= "table" or not spec.activation._modules then
        error("JumpingKnowledge: activation must be a module such as nn.ReLU()", 3)
      end
      self:register_module("activation", spec.activation)
    end
  end

  function JumpingKnowledge:forward(x, adjacency, edge_weight)
    if self.num_layers == 0 then return combine(x, self.mode, 3) end
    if not gl.is_tensor(x) then
      error(("JumpingKnowledge: node features must be a tensor, got %s (a module built without layers takes a list)")
        :format(type(x)), 3)
    end
    local outputs, h = {}, x
    for i = 1, self.num_layers do
      h = self._modules[i][2](h, adjacency, edge_weight)
      if self.activation then h = self.activation(h) end
      outputs[i] = h
    end
    self.outputs = outputs
    return combine(outputs, self.mode, 3)
  end

  function JumpingKnowledge:extra_repr() return ("mode=%s"):format(self.mode) end

  return nn
end
