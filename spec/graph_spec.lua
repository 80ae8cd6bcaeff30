-- spec/graph_spec.lua — engine/graph.c through gl.graph_aggregate and the modules of
-- bindings/gradlab/nn_graph.lua (GraphConv, JumpingKnowledge): mean and sum aggregation
-- against hand computations on a 4-node graph, GCN's symmetric normalization against its
-- formula, dense and edge-list graphs agreeing, isolated nodes without NaN, gradcheck,
-- skip connections across layers, and clear errors.
local gl = require "gradlab"
local nn = gl.nn

-- Tighter than gradcheck's default 1e-2: aggregation is linear, errors stay ~1e-4.
local function check(fn, inputs, what)
  local ok, err = gl.gradcheck(fn, inputs, { tol = 3e-3 })
  assert.is_true(ok, (what or "gradcheck") .. ": max error " .. tostring(err))
end

-- The 4-node graph of every hand computation: edges 1-2, 1-3, 3-4 (undirected),
-- node features one row each.
local A = gl.tensor{ { 0, 1, 1, 0 },
                     { 1, 0, 0, 0 },
                     { 1, 0, 0, 1 },
                     { 0, 0, 1, 0 } }
local EDGES = gl.tensor{ { 1, 2 }, { 2, 1 }, { 1, 3 }, { 3, 1 }, { 3, 4 }, { 4, 3 } }
local X = gl.tensor{ { 1, 0 }, { 0, 2 }, { 3, 1 }, { -1, 4 } }

-- y_i = sum_j c_ij x_j with a Lua table of coefficients.
local function apply(c, x)
  local xs, out = x:totable(), {}
  for i = 1, #c do
    out[i] = {}
    for f = 1, #xs[1] do
      local s = 0
      for j = 1, #c do s = s + c[i][j] * xs[j][f] end
      out[i][f] = s
    end
  end
  return out
end

-- The GCN formula D^-1/2 (A + I) D^-1/2 written out in Lua doubles.
local function gcn_coefficients(a)
  local n, t = #a, {}
  local degree = {}
  for i = 1, n do
    t[i] = {}
    degree[i] = 0
    for j = 1, n do
      t[i][j] = a[i][j] + (i == j and 1 or 0)
      degree[i] = degree[i] + t[i][j]
    end
  end
  for i = 1, n do
    for j = 1, n do t[i][j] = t[i][j] / math.sqrt(degree[i] * degree[j]) end
  end
  return t
end

describe("gl.graph_aggregate", function()
  it("sums and averages neighbours as computed by hand on a 4-node graph", function()
    -- node 1 has neighbours 2, 3; node 2: 1; node 3: 1, 4; node 4: 3
    local sum = { { 3, 3 }, { 1, 0 }, { 0, 4 }, { 3, 1 } }
    local sum_self = { { 4, 3 }, { 1, 2 }, { 3, 5 }, { 2, 5 } }
    local mean = { { 1.5, 1.5 }, { 1, 0 }, { 0, 2 }, { 3, 1 } }
    local mean_self = { { 4 / 3, 1 }, { 0.5, 1 }, { 1, 5 / 3 }, { 1, 2.5 } }
    for _, graph in ipairs{ A, EDGES } do
      assert.tensor_near(gl.graph_aggregate(X, graph), sum, 1e-6)
      assert.tensor_near(gl.graph_aggregate(X, graph, { self_loops = true }), sum_self, 1e-6)
      assert.tensor_near(gl.graph_aggregate(X, graph, { norm = "mean" }), mean, 1e-6)
      assert.tensor_near(gl.graph_aggregate(X, graph, { norm = "mean", self_loops = true }), mean_self, 1e-6)
    end
  end)

  it("normalizes symmetrically as GCN's D^-1/2 (A + I) D^-1/2", function()
    local want = apply(gcn_coefficients(A:totable()), X)
    assert.tensor_near(gl.graph_aggregate(X, A, { norm = "symmetric", self_loops = true }), want, 1e-6)
    assert.tensor_near(gl.graph_aggregate(X, EDGES, { norm = "symmetric", self_loops = true }), want, 1e-6)
    -- a random weighted symmetric graph, dense against edge list
    gl.manual_seed(4)
    local n = 7
    local w = gl.rand{ n, n }
    w = (w + w:t()) * gl.where(gl.rand{ n, n } - 0.5, gl.ones{ 1 }, gl.zeros{ 1 })
    w = w * (gl.ones{ n, n } - gl.eye(n))
    local x = gl.randn{ n, 3 }
    local dense = gl.graph_aggregate(x, w, { norm = "symmetric", self_loops = true })
    local pairs_list, weights = {}, {}
    local wt = w:totable()
    for i = 1, n do
      for j = 1, n do
        if wt[i][j] ~= 0 then pairs_list[#pairs_list + 1] = { j, i }; weights[#weights + 1] = wt[i][j] end
      end
    end
    local sparse = gl.graph_aggregate(x, { edges = gl.tensor(pairs_list), weight = gl.tensor(weights) },
                                      { norm = "symmetric", self_loops = true })
    assert.tensor_near(sparse, dense, 1e-5)
    assert.tensor_near(dense, apply(gcn_coefficients(wt), x), 1e-5)
  end)

  it("sends messages from source to target along an edge list", function()
    local x = gl.tensor{ { 1 }, { 10 }, { 100 } }
    local y = gl.graph_aggregate(x, gl.tensor{ { 1, 3 }, { 2, 3 } })   -- 1 -> 3, 2 -> 3
    assert.tensor_near(y, { { 0 }, { 0 }, { 11 } }, 0)
    local weighted = gl.graph_aggregate(x, gl.tensor{ { 1, 3 }, { 2, 3 } }, { edge_weight = gl.tensor{ 2, 0.5 } })
    assert.tensor_near(weighted, { { 0 }, { 0 }, { 7 } }, 0)
    -- a (2, 2) tensor with two nodes is dense; {edges = } says otherwise
    local two = gl.tensor{ { 1 }, { 10 } }
    assert.tensor_near(gl.graph_aggregate(two, gl.tensor{ { 0, 1 }, { 0, 0 } }), { { 10 }, { 0 } }, 0)
    assert.tensor_near(gl.graph_aggregate(two, { edges = gl.tensor{ { 1, 2 }, { 1, 2 } } }), { { 0 }, { 2 } }, 0)
  end)

  it("gives isolated nodes zeros, never NaN, in every mode", function()
    local a = gl.tensor{ { 0, 1, 0 }, { 1, 0, 0 }, { 0, 0, 0 } }   -- node 3 isolated
    local e = gl.tensor{ { 1, 2 }, { 2, 1 } }
    local x = gl.tensor{ { 1, 2 }, { 3, 4 }, { 5, 6 } }
    for _, graph in ipairs{ a, e } do
      for _, norm in ipairs{ "sum", "mean", "symmetric" } do
        local y = gl.graph_aggregate(x, graph, { norm = norm })
        assert.tensor_near(y:select(1, 3), { 0, 0 }, 0)
        assert.is_true(y:norm():item() == y:norm():item(), norm)
        local with_self = gl.graph_aggregate(x, graph, { norm = norm, self_loops = true })
        assert.tensor_near(with_self:select(1, 3), { 5, 6 }, 1e-6)
      end
    end
    local empty = gl.graph_aggregate(x, gl.zeros{ 0, 2 }, { norm = "symmetric" })
    assert.tensor_near(empty, gl.zeros{ 3, 2 }, 0)
  end)

  it("averages a high-degree hub as the mean of its leaves", function()
    local n = 200
    local edges, x = {}, gl.randn{ n + 1, 3 }
    for leaf = 2, n + 1 do edges[#edges + 1] = { leaf, 1 } end
    local y = gl.graph_aggregate(x, gl.tensor(edges), { norm = "mean" })
    assert.tensor_near(y:select(1, 1), x:narrow(1, 2, n):mean(1), 1e-5)
    local summed = gl.graph_aggregate(x, gl.tensor(edges))
    assert.tensor_near(summed:select(1, 1), x:narrow(1, 2, n):sum(1), 1e-4)
  end)

  it("passes gradcheck for dense and edge-list graphs in every mode", function()
    gl.manual_seed(6)
    local x = gl.randn{ 4, 3 }:requires_grad(true)
    for _, graph in ipairs{ A, EDGES, { edges = EDGES, weight = gl.rand{ 6 } + 0.5 } } do
      for _, norm in ipairs{ "sum", "mean", "symmetric" } do
        for _, self_loops in ipairs{ false, true } do
          check(function(t) return gl.graph_aggregate(t, graph, { norm = norm, self_loops = self_loops }) end, { x },
                ("%s self_loops=%s"):format(norm, tostring(self_loops)))
        end
      end
    end
  end)

  it("reports misuse naming the shapes and the bad edge", function()
    assert.error_matches(function() gl.graph_aggregate(X, gl.zeros{ 5, 5 }) end,
                         "graph_aggregate", "adjacency of shape {5, 5}", "4 nodes", "{4, 2}")
    assert.error_matches(function() gl.graph_aggregate(X, gl.zeros{ 4, 3 }) end, "adjacency of shape {4, 3}")
    assert.error_matches(function() gl.graph_aggregate(X, gl.tensor{ { 1, 2 }, { 2, 5 } }) end,
                         "edge 2 = {2, 5}", "target node 5", "out of range 1..4")
    assert.error_matches(function() gl.graph_aggregate(X, gl.tensor{ { 0, 2 } }) end, "source node 0", "out of range")
    assert.error_matches(function() gl.graph_aggregate(X, gl.tensor{ { 1.5, 2 } }) end, "not an integer")
    assert.error_matches(function() gl.graph_aggregate(X, { edges = gl.tensor{ { 1, 2, 3 } } }) end,
                         "edge list must be (E, 2)", "{1, 3}")
    assert.error_matches(function() gl.graph_aggregate(X, { edges = EDGES, weight = gl.ones{ 5 } }) end,
                         "edge weights of shape {5}", "6 edges")
    assert.error_matches(function() gl.graph_aggregate(X, A, { edge_weight = gl.ones{ 4 } }) end,
                         "edge weights go with an edge list")
    assert.error_matches(function() gl.graph_aggregate(gl.randn{ 4 }, A) end, "node features must be 2-d", "{4}")
    assert.error_matches(function() gl.graph_aggregate(X, A:clone():requires_grad(true)) end,
                         "adjacency takes part in autograd")
    assert.error_matches(function() gl.graph_aggregate(X, A, { norm = "max" }) end, "option 'norm' must be", "got max")
    assert.error_matches(function() gl.graph_aggregate(X, A, { selfloops = true }) end, "unknown option 'selfloops'")
    assert.error_matches(function() gl.graph_aggregate(X, "A") end, "bad argument #2")
  end)
end)

describe("nn.GraphConv", function()
  before_each(function() gl.manual_seed(9) end)

  it("is aggregate-then-linear with Linear's parameter layout", function()
    local conv = nn.GraphConv(2, 3)
    assert.same({ 3, 2 }, conv.weight:shape())
    assert.same({ 3 }, conv.bias:shape())
    local want = gl.linear(gl.graph_aggregate(X, A, { norm = "mean", self_loops = true }), conv.weight, conv.bias)
    assert.tensor_near(conv(X, A), want, 1e-6)
    assert.tensor_near(conv(X, EDGES), want, 1e-6)
    assert.equal("GraphConv(2, 3, aggregate=mean, self_loops=true)", tostring(conv))
    local gcn = nn.GraphConv(2, 1, { normalize = "symmetric", bias = false })
    local gcn_want = apply(gcn_coefficients(A:totable()), gl.linear(X, gcn.weight))
    assert.tensor_near(gcn(X, A), gcn_want, 1e-6)   -- narrower output: product first, same result
    assert.equal("GraphConv(2, 1, aggregate=sum, self_loops=true, normalize=symmetric, bias=false)", tostring(gcn))
  end)

  it("keeps isolated nodes finite in forward and backward", function()
    local lonely = gl.tensor{ { 1, 2 } }   -- node 3 and 4 have no edge
    for _, options in ipairs{ { self_loops = false }, { self_loops = false, normalize = "symmetric" },
                              { aggregate = "sum", self_loops = false } } do
      local conv = nn.GraphConv(2, 3, options)
      local x = X:clone():requires_grad(true)
      local y = conv(x, lonely)
      y:sum():backward()
      assert.tensor_near(y:select(1, 3), conv.bias, 0)   -- aggregate 0, plus the bias
      assert.is_true(y:norm():item() == y:norm():item() and x.grad:norm():item() == x.grad:norm():item())
    end
  end)

  it("passes gradcheck for x, weight and bias on both sides of the aggregation", function()
    for _, sizes in ipairs{ { 3, 5 }, { 5, 2 } } do
      local conv = nn.GraphConv(sizes[1], sizes[2], { aggregate = "sum" })
      local x = gl.randn{ 4, sizes[1] }:requires_grad(true)
      check(function(t) return conv(t, EDGES) end, { x, conv.weight, conv.bias }, "GraphConv " .. sizes[1] .. "->" .. sizes[2])
    end
  end)

  it("uses a stored graph, so it composes with Sequential and Residual", function()
    local conv = nn.GraphConv(2, 2, { adjacency = A })
    local model = nn.Sequential{ nn.Residual(conv), nn.ReLU() }
    local y = model(X)
    assert.tensor_near(y, gl.relu(X + conv(X, A)), 1e-6)
    conv:set_adjacency(EDGES)
    assert.tensor_near(model(X), y, 1e-6)
  end)

  it("keeps node indices exact under reduced precision", function()
    local n = 301   -- bf16 holds integers exactly only up to 256: 301 would become 300 or 302
    local edges = gl.tensor{ { n, 1 }, { 1, n } }
    local conv = nn.GraphConv(2, 2, { aggregate = "sum", self_loops = false, bias = false })
    local x = gl.randn{ n, 2 }
    local want = conv(x, edges)
    conv:precision("bf16")
    local y = conv(x, edges)
    assert.tensor_near(y, want, 2e-2)
    assert.tensor_near(y:select(1, 2), { 0, 0 }, 0)
  end)

  it("reports misuse clearly", function()
    assert.error_matches(function() nn.GraphConv(2, 3, { aggregate = "max" }) end, "GraphConv", "aggregate", "max")
    assert.error_matches(function() nn.GraphConv(2, 3, { normalize = "row" }) end, "normalize", "row")
    assert.error_matches(function() nn.GraphConv(2, 3, { normalize = "symmetric", aggregate = "mean" }) end,
                         "cannot go with aggregate = \"mean\"")
    assert.error_matches(function() nn.GraphConv(2, 3, { bais = false }) end, "unknown option 'bais'")
    local conv = nn.GraphConv(2, 3)
    assert.error_matches(function() conv(gl.randn{ 4, 5 }, A) end, "GraphConv", "(nodes, 2)", "{4, 5}")
    assert.error_matches(function() conv(X) end, "GraphConv: no graph")
    assert.error_matches(function() conv(X, gl.zeros{ 3, 3 }) end, "adjacency of shape {3, 3}", "4 nodes")
    assert.error_matches(function() conv(X, gl.tensor{ { 1, 9 } }) end, "target node 9", "1..4")
  end)
end)

describe("jumping knowledge", function()
  before_each(function() gl.manual_seed(12) end)

  it("concatenates every layer's output (PyTorch Geometric's mode = \"cat\")", function()
    local c1, c2, c3 = nn.GraphConv(2, 4), nn.GraphConv(4, 4), nn.GraphConv(4, 3)
    local jk = nn.JumpingKnowledge{ c1, c2, c3, activation = nn.ReLU() }
    local y = jk(X, A)
    assert.same({ 4, 11 }, y:shape())
    local h1 = gl.relu(c1(X, A))
    local h2 = gl.relu(c2(h1, A))
    local h3 = gl.relu(c3(h2, A))
    assert.tensor_near(y, gl.cat({ h1, h2, h3 }, 2), 1e-6)
    assert.equal(3, #jk.outputs)
    local names = {}
    for i, entry in ipairs(jk:named_parameters()) do names[i] = entry[1] end
    assert.same({ "1.weight", "1.bias", "2.weight", "2.bias", "3.weight", "3.bias" }, names)
    -- every layer gets gradient straight from the output, not only through the later layers
    y:sum():backward()
    for _, conv in ipairs{ c1, c2, c3 } do assert.is_true(conv.weight.grad:norm():item() > 0) end
    local ok, err = gl.gradcheck(function(t) return jk(t, EDGES) end, { X:clone():requires_grad(true), c1.weight })
    assert.is_true(ok, "max error " .. tostring(err))
  end)

  it("takes the elementwise maximum in mode \"max\", and aggregates a list as a function or module", function()
    local a, b = gl.tensor{ { 1, -1 }, { -2, 3 } }, gl.tensor{ { 0, 5 }, { -1, 2 } }
    assert.tensor_near(nn.jumping_knowledge({ a, b }, "max"), { { 1, 5 }, { -1, 3 } }, 0)
    assert.tensor_near(nn.jumping_knowledge{ a, b }, { { 1, -1, 0, 5 }, { -2, 3, -1, 2 } }, 0)
    assert.tensor_near(nn.JumpingKnowledge("max")({ a, b }), { { 1, 5 }, { -1, 3 } }, 0)
    assert.tensor_near(nn.JumpingKnowledge{ mode = "cat" }({ a, b }), nn.jumping_knowledge{ a, b }, 0)
    local jk = nn.JumpingKnowledge{ nn.GraphConv(2, 2), nn.GraphConv(2, 2), mode = "max" }
    assert.same({ 4, 2 }, jk(X, A):shape())
    assert.equal("JumpingKnowledge(mode=max)", tostring(nn.JumpingKnowledge("max")))
  end)

  it("reports misuse clearly", function()
    assert.error_matches(function() nn.JumpingKnowledge("lstm") end, "JumpingKnowledge", "mode", "lstm")
    assert.error_matches(function() nn.JumpingKnowledge{ nn.GraphConv(2, 2), 5 } end, "item 2 is a number")
    assert.error_matches(function() nn.JumpingKnowledge{ mdoe = "cat" } end, "unknown option 'mdoe'")
    assert.error_matches(function() nn.jumping_knowledge({ gl.zeros{ 2, 2 }, gl.zeros{ 2, 3 } }, "max") end,
                         "equal shapes", "{2, 3}")
    assert.error_matches(function() nn.jumping_knowledge({}) end, "non-empty list")
    assert.error_matches(function() nn.JumpingKnowledge{ nn.GraphConv(2, 2) }({ X }) end, "node features must be a tensor")
  end)
end)
