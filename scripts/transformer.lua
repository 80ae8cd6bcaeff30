-- scripts/transformer.lua — where does the gradient go in a deep Transformer, and why
-- does post-LN need a learning-rate warm-up when pre-LN does not?
--
-- A stack of nn.TransformerBlock (4 heads, GELU feed-forward, no dropout) on a token
-- task: embed a random sequence, and at every position predict (x_t + x_{t-1}) mod V.
--   pre-LN  (norm_first = true):  x = x + attn(LN(x)); x = x + ff(LN(x))
--   post-LN (norm_first = false): x = LN(x + attn(x)); x = LN(x + ff(x))
--   1. At initialization, depth 6 and 24: the gradient norm of each block's parameters
--      against its position.  Xiong et al. (2020): post-LN gradients grow toward the
--      output (the last blocks get the largest), pre-LN stays roughly flat.
--   2. Early training with Adam at a large learning rate, with and without a linear
--      warm-up: the training loss of each stack.
-- In the figure: left, the per-block profile at init (log scale); right, the loss.
--
--   build/gradlab scripts/transformer.lua [--out DIR] [--quick]
local gl = require "gradlab"
local nn = gl.nn

local ex = gl.experiment("transformer", arg)
local d, heads, V = 32, 4, 16
local T, batch = 8, ex.quick and 8 or 16
local depths = { 6, 24 }
local steps = ex.quick and 20 or 80
local lr, warm = 2e-3, ex.quick and 10 or 30

local function task(n)
  local x = gl.randint(1, V, { n, T })
  local xs, y = x:totable(), gl.empty{ n, T }
  for b = 1, n do
    for t = 1, T do y:set((xs[b][t] + (xs[b][t - 1] or 0)) % V + 1, b, t) end
  end
  return x, y
end

local function build(depth, pre)
  local blocks = {}
  for l = 1, depth do blocks[l] = nn.TransformerBlock(d, heads, { norm_first = pre }) end
  local stack = nn.Sequential(blocks)
  local final = pre and nn.LayerNorm(d) or nn.Identity()   -- pre-LN stacks end with a LayerNorm
  local model = nn.Sequential{ nn.Embedding(V, d), stack, final, nn.Linear(d, V) }
  return model, stack
end

local function loss_of(model, x, y)
  local logits = model(x)                                   -- (B, T, V)
  return gl.loss.cross_entropy(logits:reshape{ batch * T, V }, y:reshape{ batch * T })
end

-- ||grad|| of every block's parameters together, input block first.
local function block_norms(stack, depth)
  local norms = {}
  for l = 1, depth do
    local s = 0
    for _, p in ipairs(stack:get(l):parameters()) do
      if p.grad then s = s + p.grad:norm():item() ^ 2 end
    end
    norms[l] = math.sqrt(s)
  end
  return norms
end

-- Part 1: the per-block gradient profile at initialization --------------------------
gl.manual_seed(3)
local x0, y0 = task(batch)
local profile = {}
for _, depth in ipairs(depths) do
  for _, pre in ipairs{ true, false } do
    gl.manual_seed(depth)
    local model, stack = build(depth, pre)
    loss_of(model, x0, y0):backward()
    local norms = block_norms(stack, depth)
    profile[#profile + 1] = { name = ("%s, %d blocks"):format(pre and "pre-LN" or "post-LN", depth), depth = depth,
                              pre = pre, norms = norms, ratio = norms[depth] / norms[1] }
  end
end

-- Part 2: early training, with and without warm-up ------------------------------------
local runs, total, done = {}, #depths * 4 * steps, 0
for _, depth in ipairs(depths) do
  for _, pre in ipairs{ true, false } do
    for _, warmup in ipairs{ false, true } do
      gl.manual_seed(depth)
      local model, stack = build(depth, pre)
      local mon = gl.monitor(stack, { every = 5, activations = false })
      local opt = gl.optim.Adam(model, { lr = lr })
      local schedule = warmup and gl.optim.warmup(opt, warm) or nil
      local losses, xs = {}, {}
      for s = 1, steps do
        local x, y = task(batch)
        local loss = loss_of(model, x, y)
        opt:zero_grad()
        loss:backward()
        mon:record(s, { loss = loss })
        opt:step()
        if schedule then schedule:step() end
        xs[s], losses[s] = s, loss:item()
        done = done + 1
        gl.progress(done, total, { loss = loss })
      end
      local tail, n = 0, math.min(10, steps)
      for s = steps - n + 1, steps do tail = tail + losses[s] / n end
      local key = ("%s_%d%s"):format(pre and "pre" or "post", depth, warmup and "_warmup" or "")
      runs[#runs + 1] = { key = key, name = ("%s, %d, %s"):format(pre and "pre-LN" or "post-LN", depth,
                          warmup and "warm-up" or "no warm-up"), depth = depth, pre = pre, warmup = warmup,
                          losses = losses, x = xs, tail = tail }
      runs[key] = runs[#runs]
      if depth == depths[#depths] and not warmup then mon:to_csv(ex:path(key .. ".csv")) end
    end
  end
end

-- The table ------------------------------------------------------------------------
local rows = {}
for _, p in ipairs(profile) do rows[#rows + 1] = { p.name, p.norms[1], p.norms[p.depth], p.ratio } end
ex:table({ "stack", "|grad| block 1", "|grad| last block", "last/first" }, rows,
         ("per-block gradient norm at initialization (d %d, %d heads, T %d)"):format(d, heads, T))
rows = {}
for _, r in ipairs(runs) do rows[#rows + 1] = { r.name, r.losses[1], r.tail } end
ex:table({ "run", "loss 0", ("loss (last 10 of %d)"):format(steps) }, rows,
         ("Adam lr %g, warm-up: linear over %d steps; chance = ln %d = %.2f"):format(lr, warm, V, math.log(V)))

-- The figures ----------------------------------------------------------------------
local prof_series = {}
for i, p in ipairs(profile) do
  local xs = {}
  for l = 1, p.depth do xs[l] = l end
  prof_series[i] = { name = p.name, x = xs, y = p.norms, color = gl.plot.palette(p.pre and 1 or 2),
                     style = p.depth == depths[1] and "dashed" or "solid", marker = true }
end
local loss_series = {}
for i, r in ipairs(runs) do
  local sm, acc = {}, 0
  for k, v in ipairs(r.losses) do acc = acc + v - (r.losses[k - 10] or 0); sm[k] = acc / math.min(k, 10) end
  loss_series[i] = { name = r.name, x = r.x, y = sm, color = gl.plot.palette((r.pre and 1 or 2) + (r.warmup and 2 or 0)),
                     style = r.depth == depths[1] and "dashed" or "solid" }
end
gl.plot.grid{ path = ex:path("transformer.png"), cols = 2, width = 1800, height = 750,
  title = ("Pre-LN vs post-LN Transformer stacks (d %d, %d heads, Adam lr %g, warm-up %d steps)"):format(d, heads, lr, warm),
  panels = {
    { kind = "lines", title = "|grad| per block at init (dashed: 6, solid: 24)",
      xlabel = "block (input -> output)", ylabel = "|dL/d block params|", logy = true, series = prof_series },
    { kind = "lines", title = "loss, moving average of 10 steps",
      xlabel = "step", ylabel = "cross-entropy", series = loss_series },
  } }

-- The conclusions ------------------------------------------------------------------
local by = {}
for _, p in ipairs(profile) do by[(p.pre and "pre" or "post") .. p.depth] = p end
print()
for _, depth in ipairs(depths) do
  ex:claim(("%d blocks at init: post-LN's last/first block gradient ratio %.2f exceeds pre-LN's %.2f")
    :format(depth, by["post" .. depth].ratio, by["pre" .. depth].ratio), by["post" .. depth].ratio > by["pre" .. depth].ratio)
end
local D = depths[#depths]
ex:claim(("%d blocks: post-LN gains from warm-up (loss %.3f with vs %.3f without)")
  :format(D, runs["post_" .. D .. "_warmup"].tail, runs["post_" .. D].tail),
  runs["post_" .. D .. "_warmup"].tail < runs["post_" .. D].tail)
ex:claim(("%d blocks: pre-LN trains without warm-up (loss %.3f) at least as well as post-LN (%.3f)")
  :format(D, runs["pre_" .. D].tail, runs["post_" .. D].tail), runs["pre_" .. D].tail <= runs["post_" .. D].tail)
ex:finish()
return { profile = profile, runs = runs }, ex
