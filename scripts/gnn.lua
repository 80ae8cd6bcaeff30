-- scripts/gnn.lua — why do deep graph networks fail: vanishing gradients, or node
-- features that all become the same (oversmoothing)?  And do skip connections help?
--
-- A random two-community graph with a few high-degree hubs (gl.data.random_graph).
-- The net: Linear(features, d) -> L blocks -> Linear(d, 2), every block
--   plain     h <- ReLU(GraphConv(h, A))          (mean aggregation with self-loops)
--   residual  h <- h + ReLU(GraphConv(h, A))      (nn.Residual around the block, its
--                                                 weight scaled by 1/sqrt(L))
-- for L = 2 ... 32, He-initialized.  At initialization we measure
--   * the gradient of the first block's weight and the backward signal reaching it,
--   * oversmoothing: the mean pairwise cosine similarity of the node features after
--     each block (1 = every node has the same direction: the graph is washed out),
--     and their std across nodes, relative to the input's.
-- In the figure: left, cosine similarity against the block index for the deepest
-- nets; middle and right, against depth, the similarity at the last block and the
-- first block's gradient.
--
--   build/gradlab scripts/gnn.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("gnn", arg)
local n, d, features = ex.quick and 60 or 200, ex.quick and 16 or 32, 8
local depths = ex.quick and { 2, 8, 32 } or { 2, 4, 8, 16, 32 }

gl.manual_seed(13)
local x, y, A = gl.data.random_graph(n, 0.08, { hubs = 3, features = features })

-- The residual branch's weight is He-scaled by 1/sqrt(depth), so that the sum of the branches
-- keeps the features' variance bounded (unscaled, 32 blocks grow the std ~2e4-fold).
local function block(skip, depth)
  local init = skip and function(t) gl.init.he_normal(t); t:mul_(1 / math.sqrt(depth)) end or "he_normal"
  local b = nn.Sequential{ nn.GraphConv(d, d, { adjacency = A, init = init, bias_init = 0 }), nn.ReLU() }
  return skip and nn.Residual(b) or b
end

-- Mean pairwise cosine similarity of the rows of h (N, d), and the mean std across nodes.
local function smoothness(h)
  local rows = h:totable()
  local units, std = {}, 0
  for i, r in ipairs(rows) do
    local s = 0
    for _, v in ipairs(r) do s = s + v * v end
    s = math.sqrt(s)
    local u = {}
    for j, v in ipairs(r) do u[j] = s > 0 and v / s or 0 end
    units[i] = u
  end
  for j = 1, #rows[1] do
    local m, q = 0, 0
    for i = 1, #rows do m = m + rows[i][j] end
    m = m / #rows
    for i = 1, #rows do q = q + (rows[i][j] - m) ^ 2 end
    std = std + math.sqrt(q / #rows) / #rows[1]
  end
  local sum, pairs_ = 0, 0
  for i = 1, #units do
    for k = i + 1, #units do
      local c = 0
      for j = 1, #units[i] do c = c + units[i][j] * units[k][j] end
      sum, pairs_ = sum + c, pairs_ + 1
    end
  end
  return sum / pairs_, std
end

local results, curves = {}, {}
for ci, skip in ipairs{ false, true } do
  for _, depth in ipairs(depths) do
    gl.manual_seed(depth)
    local stem, head = nn.Linear(features, d, { init = "he_normal", bias_init = 0 }), nn.Linear(d, 2)
    local layers = { stem }
    for _ = 1, depth do layers[#layers + 1] = block(skip, depth) end
    layers[#layers + 1] = head
    local model = nn.Sequential(layers)
    local mon = gl.monitor(model, { activations = false })
    -- forward block by block, keeping each block's output
    local h = stem(x)
    h:retain_grad()
    local h0, cos, std = h, {}, {}
    local c0, s0 = smoothness(h)
    for l = 1, depth do
      h = model:get(l + 1)(h)
      cos[l], std[l] = smoothness(h)
      std[l] = std[l] / s0
    end
    gl.loss.cross_entropy(head(h), y):backward()
    mon:record(0)
    local name = ("%s, %d"):format(skip and "residual" or "plain", depth)
    local r = { name = name, skip = skip, depth = depth, cos = cos, std = std, cos0 = c0,
                cos_last = cos[depth], std_last = std[depth], signal = h0.grad:norm():item(),
                grad1 = model:get(2):parameters()[1].grad:norm():item() }
    results[#results + 1], results[(skip and "res" or "plain") .. depth] = r, r
    if depth == depths[#depths] then
      curves[#curves + 1] = r
      mon:to_csv(ex:path((skip and "residual_" or "plain_") .. depth .. ".csv"))
    end
    gl.progress(#results, 2 * #depths)
  end
end

-- The table ------------------------------------------------------------------------
local rows = {}
for _, r in ipairs(results) do rows[#rows + 1] = { r.name, r.cos0, r.cos_last, r.std_last, r.grad1, r.signal } end
ex:table({ "blocks, depth", "cos sim input", "cos sim last", "std last/input", "|dL/dW| block 1", "|dL/dh_0|" }, rows,
         ("%d nodes (3 hubs), width %d, at initialization: oversmoothing and gradients"):format(n, d))

-- The figures ----------------------------------------------------------------------
local per_block = {}
for i, r in ipairs(curves) do
  local xs = {}
  for l = 1, r.depth do xs[l] = l end
  per_block[i] = { name = r.name .. " blocks", x = xs, y = r.cos, color = gl.plot.palette(i), marker = true }
end
local function by_depth(field)
  local list = {}
  for ci, skip in ipairs{ false, true } do
    local xs, ys = {}, {}
    for _, depth in ipairs(depths) do
      xs[#xs + 1], ys[#ys + 1] = depth, results[(skip and "res" or "plain") .. depth][field]
    end
    list[ci] = { name = skip and "residual" or "plain", x = xs, y = ys, color = gl.plot.palette(ci), marker = true }
  end
  return list
end
gl.plot.grid{ path = ex:path("gnn.png"), cols = 3, width = 2100, height = 750,
  title = ("GraphConv stacks on a %d-node graph with hubs, at init: oversmoothing and gradients"):format(n),
  panels = {
    { kind = "lines", title = "mean cosine similarity of node features (1 = all alike)",
      xlabel = "block", ylabel = "cosine similarity", series = per_block },
    { kind = "lines", title = "cosine similarity after the last block", xlabel = "depth (blocks)",
      ylabel = "cosine similarity", series = by_depth("cos_last") },
    { kind = "lines", title = "first block's weight gradient", xlabel = "depth (blocks)", ylabel = "|dL/dW_1|",
      logy = true, series = by_depth("grad1"), legend = false },
  } }

-- The conclusions ------------------------------------------------------------------
local D, P = depths[#depths], results["plain" .. depths[#depths]]
local R = results["res" .. D]
print()
ex:claim(("plain, %d blocks: node features collapse (cos sim %.3f, from %.3f at the input, > 0.95)")
  :format(D, P.cos_last, P.cos0), P.cos_last > 0.95)
ex:claim(("plain: similarity grows with depth (%.3f at %d blocks -> %.3f at %d)")
  :format(results["plain" .. depths[1]].cos_last, depths[1], P.cos_last, D), P.cos_last > results["plain" .. depths[1]].cos_last)
ex:claim(("residual, %d blocks: less collapse than plain (1 - cos sim %.2g vs %.2g)"):format(D, 1 - R.cos_last, 1 - P.cos_last),
  R.cos_last < P.cos_last)
ex:claim(("%d blocks: the first block's gradient is %.2g with skips vs %.2g plain"):format(D, R.grad1, P.grad1),
  R.grad1 > P.grad1)
ex:finish()
return results, ex
