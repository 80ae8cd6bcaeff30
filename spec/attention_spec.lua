-- spec/attention_spec.lua — engine/attention.c through gl.attention / gl.attention_packed and
-- the modules of bindings/gradlab/nn_attention.lua (MultiheadAttention, TransformerBlock):
-- values against a naive per-head oracle built from matmul and softmax, gradcheck of every
-- path, the causal guarantee (exact independence and exactly zero gradients), pre-LN vs
-- post-LN, inspection of weights and per-head outputs, clear errors, and PyTorch parity
-- (nn.MultiheadAttention, nn.TransformerEncoderLayer) when PyTorch is installed.
local gl = require "gradlab"
local helper = require "helper"
local nn = gl.nn

-- Tighter than gradcheck's default 1e-2: these kernels reach ~4e-4 in float32.
local function check(fn, inputs, what)
  local ok, err = gl.gradcheck(fn, inputs, { tol = 3e-3 })
  assert.is_true(ok, (what or "gradcheck") .. ": max error " .. tostring(err))
end

local function param(t) return t:requires_grad(true) end

-- The oracle: one head at a time with matmul and softmax over a (B, Tq, Tk) score tensor.
-- options: mask (broadcasting to (B, H, Tq, Tk)), key_padding_mask (B, Tk), causal, scale.
local function reference(q, k, v, heads, options)
  options = options or {}
  local B, Tq, E = q:size(1), q:size(2), q:size(3)
  local Tk, dk, dv = k:size(2), E // heads, v:size(3) // heads
  local outs, weights = {}, {}
  for h = 1, heads do
    local qh = q:narrow(3, (h - 1) * dk + 1, dk)
    local kh = k:narrow(3, (h - 1) * dk + 1, dk)
    local vh = v:narrow(3, (h - 1) * dv + 1, dv)
    local s = qh:matmul(kh:transpose(2, 3)) * (options.scale or 1 / math.sqrt(dk))
    if options.mask then s = s + options.mask:expand{ B, heads, Tq, Tk }:select(2, h) end
    if options.causal then
      local c = gl.zeros{ Tq, Tk }
      for i = 1, Tq do for j = i + 1, Tk do c:set(-math.huge, i, j) end end
      s = s + c
    end
    if options.key_padding_mask then
      s = s + gl.where(options.key_padding_mask:view{ B, 1, Tk }, gl.full({ 1 }, -math.huge), gl.zeros{ 1 })
    end
    local p = gl.softmax(s, 3)
    outs[h], weights[h] = p:matmul(vh), p
  end
  return gl.cat(outs, 3), gl.stack(weights, 2)
end

-- A fresh tensor with the same values (no graph).
local function copy(t) return t:detach():clone() end

describe("gl.attention", function()
  before_each(function() gl.manual_seed(11) end)

  it("matches the per-head oracle (plain, causal, masked, key padding, scale)", function()
    local q, k, v = gl.randn{ 2, 5, 6 }, gl.randn{ 2, 7, 6 }, gl.randn{ 2, 7, 4 }
    local cases = {
      {},
      { causal = true },
      { mask = gl.randn{ 5, 7 } },
      { mask = gl.randn{ 2, 1, 5, 7 }, scale = 0.3 },
      { mask = gl.randn{ 2, 2, 1, 7 } },
      { key_padding_mask = gl.tensor{ { 0, 0, 1, 0, 0, 0, 1 }, { 1, 0, 0, 0, 0, 0, 0 } } },
    }
    for i, options in ipairs(cases) do
      local out, weights = gl.attention(q, k, v, 2, options)
      local want_out, want_weights = reference(q, k, v, 2, options)
      assert.tensor_near(out, want_out, 1e-5)
      assert.tensor_near(weights, want_weights, 1e-5)
      assert.same({ 2, 2, 5, 7 }, weights:shape(), "case " .. i)
    end
  end)

  it("gives weights that sum to 1 per query with masked entries exactly 0", function()
    local x = gl.randn{ 3, 6, 8 }
    local _, weights = gl.attention(x, x, x, 4, { causal = true })
    assert.tensor_near(weights:sum(4), gl.ones{ 3, 4, 6 }, 1e-6)
    for i = 1, 6 do
      for j = i + 1, 6 do assert.equal(0, weights:get(2, 3, i, j)) end
    end
  end)

  it("turns a query with every key masked into zeros, not NaN", function()
    local q, kv = gl.randn{ 1, 2, 4 }, gl.randn{ 1, 3, 4 }
    local mask = gl.tensor{ { -math.huge, -math.huge, -math.huge }, { 0, 0, 0 } }
    local out, weights = gl.attention(q, kv, kv, 1, { mask = mask })
    assert.tensor_near(out:select(2, 1), gl.zeros{ 1, 4 }, 0)
    assert.tensor_near(weights:select(3, 1), gl.zeros{ 1, 1, 3 }, 0)
    local all_padded = gl.attention(q, kv, kv, 2, { key_padding_mask = gl.ones{ 1, 3 } })
    assert.tensor_near(all_padded, gl.zeros{ 1, 2, 4 }, 0)
    -- and its gradient is finite
    local qp = param(copy(q))
    gl.attention(qp, kv, kv, 1, { mask = mask }):sum():backward()
    assert.is_true(qp.grad:norm():item() == qp.grad:norm():item())
  end)

  it("propagates NaN in the scores instead of hiding it", function()
    local q = gl.randn{ 1, 2, 4 }
    q:set(0 / 0, 1, 1, 1)
    local out = gl.attention(q, q, q, 1)
    local value = out:get(1, 1, 1)
    assert.is_true(value ~= value)
  end)

  it("splits (batch, head) pairs across threads without changing a bit", function()
    local saved = gl.get_num_threads()
    local qkv = gl.randn{ 4, 64, 3 * 128 }
    local mask = gl.randn{ 64, 64 }
    local seed = gl.randn{ 4, 64, 128 }
    local results = {}
    for _, threads in ipairs{ 1, 3 } do
      gl.set_num_threads(threads)
      local x, m = qkv:clone():requires_grad(true), mask:clone():requires_grad(true)
      local out, weights = gl.attention_packed(x, 4, { mask = m, causal = true })
      out:backward(seed)
      results[threads] = { out, weights, x.grad, m.grad }
    end
    gl.set_num_threads(saved)
    for i = 1, 4 do assert.tensor_near(results[3][i], results[1][i], 0) end
  end)

  it("reads packed [Q | K | V] like three narrow views", function()
    local qkv = gl.randn{ 2, 5, 12 }
    local packed, w1 = gl.attention_packed(qkv, 2, { causal = true })
    local q, k, v = qkv:narrow(3, 1, 4), qkv:narrow(3, 5, 4), qkv:narrow(3, 9, 4)
    local general, w2 = gl.attention(q, k, v, 2, { causal = true })
    assert.tensor_near(packed, general, 1e-6)
    assert.tensor_near(w1, w2, 1e-6)
  end)

  it("reads strided operands in place or through a copy with the same result", function()
    local base = gl.randn{ 2, 6, 5 }
    local q = base:transpose(2, 3)   -- (2, 5, 6), columns strided
    local out = gl.attention(q, q, q, 3)
    local want = gl.attention(q:contiguous(), q:contiguous(), q:contiguous(), 3)
    assert.tensor_near(out, want, 1e-6)
  end)

  it("passes gradcheck for q, k, v and a learned additive mask", function()
    local q, k, v = param(gl.randn{ 2, 3, 4 }), param(gl.randn{ 2, 4, 4 }), param(gl.randn{ 2, 4, 6 })
    check(function(a, b, c) return gl.attention(a, b, c, 2) end, { q, k, v }, "plain")
    check(function(a, b, c) return gl.attention(a, b, c, 2, { causal = true }) end, { q, k, v }, "causal")
    local mask = param(gl.randn{ 3, 4 })
    check(function(a, b, c, m) return gl.attention(a, b, c, 2, { mask = m }) end, { q, k, v, mask }, "mask")
    local head_mask = param(gl.randn{ 2, 1, 4 })
    check(function(a, m) return gl.attention(a, k, v, 2, { mask = m, scale = 0.7 }) end, { q, head_mask }, "mask by head")
    check(function(a, b) return gl.attention(a, b, b, 1, { key_padding_mask = gl.tensor{ { 0, 1, 0, 0 }, { 0, 0, 0, 1 } } }) end,
          { q, param(gl.randn{ 2, 4, 4 }) }, "key padding, key = value")
  end)

  it("passes gradcheck on the packed path, with and without a causal mask", function()
    local qkv = param(gl.randn{ 2, 4, 12 })
    check(function(x) return gl.attention_packed(x, 2) end, { qkv }, "packed")
    check(function(x) return gl.attention_packed(x, 4, { causal = true }) end, { qkv }, "packed causal")
    -- a narrow view of a wider tensor: rows strided by 20, read in place
    check(function(x) return gl.attention_packed(x:narrow(3, 3, 12), 2) end, { param(gl.randn{ 2, 4, 20 }) }, "strided")
  end)

  it("applies dropout to the weights in training, reproducibly, and differentiably", function()
    local x = gl.randn{ 2, 5, 8 }
    gl.manual_seed(3)
    local a, w = gl.attention(x, x, x, 2, { dropout = 0.5 })
    gl.manual_seed(3)
    local b = gl.attention(x, x, x, 2, { dropout = 0.5 })
    assert.tensor_near(a, b, 0)
    local plain = gl.attention(x, x, x, 2)
    assert.is_true((a - plain):abs():max():item() > 1e-3)
    assert.tensor_near(gl.attention(x, x, x, 2, { dropout = 0.5, training = false }), plain, 0)
    assert.tensor_near(w:sum(4), gl.ones{ 2, 2, 5 }, 1e-6)   -- weights are reported before dropout
    local q = param(gl.randn{ 1, 4, 4 })
    check(function(t)
      gl.manual_seed(9)   -- the same mask on every evaluation
      return gl.attention(t, t, t, 2, { dropout = 0.3 })
    end, { q }, "dropout")
  end)

  it("reports misuse naming the function, the argument and the shapes", function()
    local x = gl.randn{ 2, 5, 8 }
    assert.error_matches(function() gl.attention(x, x, x, 3) end, "attention", "3 heads", "8 features", "{2, 5, 8}")
    assert.error_matches(function() gl.attention(x, x, x, 0) end, "attention", "heads must be a positive integer")
    assert.error_matches(function() gl.attention(x, gl.randn{ 2, 5, 6 }, x, 2) end, "key has 6 features, query has 8")
    assert.error_matches(function() gl.attention(x, x, gl.randn{ 2, 4, 8 }, 2) end, "same sequence length", "{2, 4, 8}")
    assert.error_matches(function() gl.attention(x, gl.randn{ 3, 5, 8 }, x, 2) end, "batch sizes differ")
    assert.error_matches(function() gl.attention(gl.randn{ 5, 8 }, x, x, 2) end, "query must be 3-d", "{5, 8}")
    assert.error_matches(function() gl.attention(x, x, x, 2, { mask = gl.zeros{ 4, 5 } }) end,
                         "mask of shape {4, 5}", "{2, 2, 5, 5}")
    assert.error_matches(function() gl.attention(x, x, x, 2, { key_padding_mask = gl.zeros{ 2, 4 } }) end,
                         "key_padding_mask of shape {2, 4}", "{2, 5}")
    assert.error_matches(function() gl.attention(x, x, x, 2, { dropout = 1 }) end, "dropout", "[0, 1)")
    assert.error_matches(function() gl.attention(x, x, x, 2, { casual = true }) end, "unknown option 'casual'")
    assert.error_matches(function() gl.attention(x, x, x, 2, { mask = 3 }) end, "'mask' must be a tensor")
    assert.error_matches(function() gl.attention(x, x, x, 2, { scale = 0 }) end, "'scale' must be a finite nonzero")
    assert.error_matches(function() gl.attention_packed(x, 2) end, "qkv must be (batch, sequence, 3 * features)", "{2, 5, 8}")
    assert.error_matches(function() gl.attention_packed(gl.randn{ 2, 5, 12 }, 3) end, "3 heads do not divide the 4 features")
  end)
end)

describe("nn.MultiheadAttention", function()
  before_each(function() gl.manual_seed(5) end)

  it("has PyTorch's parameter names, layout, init and printing", function()
    local m = nn.MultiheadAttention(8, 2)
    local names, shapes = {}, {}
    for i, entry in ipairs(m:named_parameters()) do
      names[i], shapes[i] = entry[1], table.concat(entry[2]:shape(), "x")
    end
    assert.same({ "in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias" }, names)
    assert.same({ "24x8", "24", "8x8", "8" }, shapes)
    assert.equal(0, m.in_proj_bias:abs():max():item())
    assert.equal(0, m.out_proj.bias:abs():max():item())
    local bound = math.sqrt(6 / (8 + 24))   -- xavier_uniform on (3E, E)
    assert.is_true(m.in_proj_weight:abs():max():item() <= bound)
    assert.equal("MultiheadAttention(embed_dim=8, num_heads=2\n  (out_proj): Linear(in_features=8, out_features=8, bias=true)\n)",
                 tostring(m))
    local no_bias = nn.MultiheadAttention(8, 4, { bias = false, causal = true })
    assert.equal(2, #no_bias:parameters())
    assert.truthy(tostring(no_bias):find("causal=true, bias=false", 1, true))
  end)

  it("computes out_proj(attention(in_proj(x))) and exposes weights and per-head outputs", function()
    local m = nn.MultiheadAttention(6, 3)
    local x = gl.randn{ 2, 4, 6 }
    local y, weights = m(x)
    local W, b = m.in_proj_weight, m.in_proj_bias
    local q = gl.linear(x, W:narrow(1, 1, 6), b:narrow(1, 1, 6))
    local k = gl.linear(x, W:narrow(1, 7, 6), b:narrow(1, 7, 6))
    local v = gl.linear(x, W:narrow(1, 13, 6), b:narrow(1, 13, 6))
    local context, want_weights = reference(q, k, v, 3)
    assert.tensor_near(y, gl.linear(context, m.out_proj.weight, m.out_proj.bias), 1e-5)
    assert.tensor_near(weights, want_weights, 1e-5)
    assert.equal(weights, m.attention)
    assert.same({ 2, 3, 4, 2 }, m.head_outputs:shape())
    for h = 1, 3 do
      assert.tensor_near(m.head_outputs:select(2, h), context:narrow(3, 2 * h - 1, 2), 1e-5)
    end
    assert.is_false(m.head_outputs:tracks_grad())
  end)

  it("lets per-head gradients be read through m.context", function()
    local m = nn.MultiheadAttention(4, 2)
    local y = m(param(gl.randn{ 1, 3, 4 }))
    m.context:retain_grad()
    y:sum():backward()
    assert.same({ 1, 3, 4 }, m.context.grad:shape())
  end)

  it("does cross-attention with separate or shared key/value and unbatched input", function()
    local m = nn.MultiheadAttention(4, 2)
    local query, memory = gl.randn{ 2, 3, 4 }, gl.randn{ 2, 5, 4 }
    local shared, w = m(query, memory, memory)
    local separate = m(query, memory, memory:clone())
    assert.tensor_near(shared, separate, 1e-6)
    assert.same({ 2, 2, 3, 5 }, w:shape())
    local single = m(query:select(1, 2), memory:select(1, 2), memory:select(1, 2))
    assert.tensor_near(single, shared:select(1, 2), 1e-6)
    local self_unbatched, w1 = m(query:select(1, 1))
    assert.tensor_near(self_unbatched, (m(query)):select(1, 1), 1e-6)
    assert.same({ 2, 3, 3 }, w1:shape())
  end)

  it("passes gradcheck for inputs and every parameter, self and cross", function()
    local m = nn.MultiheadAttention(4, 2)
    local x = param(gl.randn{ 2, 3, 4 })
    local inputs = { x, m.in_proj_weight, m.in_proj_bias, m.out_proj.weight, m.out_proj.bias }
    check(function(a) return (m(a)) end, inputs, "self")
    check(function(a) return (m(a, { causal = true })) end, inputs, "self causal")
    local mem = param(gl.randn{ 2, 4, 4 })
    check(function(a, b) return (m(a, b, b)) end, { x, mem, m.in_proj_weight, m.in_proj_bias }, "cross")
  end)

  it("never lets output t depend on inputs after t when causal", function()
    local m = nn.MultiheadAttention(8, 2, { causal = true })
    local T, t = 6, 3
    local x = gl.randn{ 2, T, 8 }
    local y = m(x)
    local later = copy(x)
    later:narrow(2, t + 1, T - t):add_(gl.randn{ 2, T - t, 8 })
    local y2 = m(later)
    assert.tensor_near(y2:narrow(2, 1, t), y:narrow(2, 1, t), 0)
    assert.is_true((y2:narrow(2, t + 1, T - t) - y:narrow(2, t + 1, T - t)):abs():max():item() > 1e-4)
  end)

  it("reports misuse clearly", function()
    assert.error_matches(function() nn.MultiheadAttention(8, 3) end, "MultiheadAttention", "embed_dim 8", "num_heads 3")
    assert.error_matches(function() nn.MultiheadAttention(8, 2, { dropuot = 0.1 }) end, "unknown option 'dropuot'")
    assert.error_matches(function() nn.MultiheadAttention(8, 2, { dropout = 1.5 }) end, "dropout", "[0, 1)")
    local m = nn.MultiheadAttention(8, 2)
    assert.error_matches(function() m(gl.randn{ 2, 5, 6 }) end, "MultiheadAttention", "query of shape {2, 5, 6}",
                         "(batch, sequence, 8)")
    assert.error_matches(function() m(gl.randn{ 2, 5, 8 }, gl.randn{ 2, 5, 4 }, gl.randn{ 2, 5, 8 }) end,
                         "key of shape {2, 5, 4}")
    assert.error_matches(function() m(gl.randn{ 2, 5, 8 }, { mask = gl.zeros{ 5, 4 } }) end,
                         "mask of shape {5, 4}", "{2, 2, 5, 5}")
    assert.error_matches(function() m(gl.randn{ 2, 5, 8 }, { bogus = 1 }) end, "unknown option 'bogus'")
  end)
end)

describe("nn.TransformerBlock", function()
  before_each(function() gl.manual_seed(21) end)

  it("names its parameters as torch.nn.TransformerEncoderLayer does", function()
    local block = nn.TransformerBlock(8, 2)
    local names = {}
    for i, entry in ipairs(block:named_parameters()) do names[i] = entry[1] end
    assert.same({ "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                  "self_attn.out_proj.bias", "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                  "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias" }, names)
    assert.same({ 32, 8 }, block.linear1.weight:shape())
    assert.is_true(block.norm_first)
    assert.truthy(tostring(block):find("TransformerBlock(d_model=8, nhead=2, dim_feedforward=32, norm_first=true, activation=gelu", 1, true))
  end)

  it("runs pre-LN and post-LN, which differ on the same weights", function()
    gl.manual_seed(4)
    local pre = nn.TransformerBlock(8, 2, { norm_first = true })
    gl.manual_seed(4)
    local post = nn.TransformerBlock(8, 2, { norm_first = false })
    for i, entry in ipairs(pre:named_parameters()) do
      assert.tensor_near(entry[2], post:named_parameters()[i][2], 0)
    end
    local x = gl.randn{ 2, 5, 8 }
    local a, b = pre(x), post(x)
    assert.same({ 2, 5, 8 }, a:shape())
    assert.same({ 2, 5, 8 }, b:shape())
    assert.is_true((a - b):abs():max():item() > 1e-2)
    -- post-LN ends in a LayerNorm (unit weight, zero bias at init): each position has mean 0, variance 1
    assert.tensor_near(b:mean(3), gl.zeros{ 2, 5 }, 1e-5)
    -- pre-LN keeps the residual stream: with the sub-blocks zeroed out it is the identity
    gl.no_grad(function()
      pre.self_attn.out_proj.weight:zero(); pre.self_attn.out_proj.bias:zero()
      pre.linear2.weight:zero(); pre.linear2.bias:zero()
    end)
    assert.tensor_near(pre(x), x, 0)
  end)

  it("computes the formulas of both orders", function()
    local block = nn.TransformerBlock(4, 2, { norm_first = false, activation = "relu", dim_feedforward = 6 })
    local x = gl.randn{ 1, 3, 4 }
    local function ln(m, t) return gl.layer_norm(t, 4, m.weight, m.bias, 1e-5) end
    local function ff(t) return gl.linear(gl.relu(gl.linear(t, block.linear1.weight, block.linear1.bias)),
                                          block.linear2.weight, block.linear2.bias) end
    local h = ln(block.norm1, x + (block.self_attn(x)))
    assert.tensor_near(block(x), ln(block.norm2, h + ff(h)), 1e-5)
    block.norm_first = true
    local g = x + (block.self_attn(ln(block.norm1, x)))
    assert.tensor_near(block(x), g + ff(ln(block.norm2, g)), 1e-5)
  end)

  it("passes gradcheck in both orders", function()
    for _, norm_first in ipairs{ true, false } do
      local block = nn.TransformerBlock(4, 2, { norm_first = norm_first, dim_feedforward = 8 })
      local x = param(gl.randn{ 2, 3, 4 })
      local inputs = { x }
      for _, p in ipairs(block:parameters()) do inputs[#inputs + 1] = p end
      check(function(t) return block(t) end, inputs, "norm_first=" .. tostring(norm_first))
    end
  end)

  for _, norm_first in ipairs{ true, false } do
    it(("never lets output t depend on inputs after t when causal (norm_first=%s)"):format(tostring(norm_first)), function()
      local block = nn.TransformerBlock(8, 2, { norm_first = norm_first, causal = true })
      local B, T, t = 2, 7, 4
      local x = gl.randn{ B, T, 8 }
      local y = block(x)
      local later = copy(x)
      later:narrow(2, t + 1, T - t):add_(gl.randn{ B, T - t, 8 } * 3)
      local y2 = block(later)
      assert.tensor_near(y2:narrow(2, 1, t), y:narrow(2, 1, t), 0)          -- bitwise unchanged
      assert.is_true((y2:narrow(2, t + 1, T - t) - y:narrow(2, t + 1, T - t)):abs():max():item() > 1e-3)
      -- d output_t / d x_s is exactly zero for s > t, and not for s <= t
      local xp = param(copy(x))
      local out = block(xp);
      (out:select(2, t) * gl.randn{ B, 8 }):sum():backward()
      assert.tensor_near(xp.grad:narrow(2, t + 1, T - t), gl.zeros{ B, T - t, 8 }, 0)
      for s = 1, t do assert.is_true(xp.grad:select(2, s):abs():max():item() > 0) end
      -- the same through a per-call option on a non-causal block
      local free = nn.TransformerBlock(8, 2, { norm_first = norm_first })
      local z, z2 = free(x, { causal = true }), free(later, { causal = true })
      assert.tensor_near(z2:narrow(2, 1, t), z:narrow(2, 1, t), 0)
    end)
  end

  it("uses dropout only in training mode", function()
    local block = nn.TransformerBlock(8, 2, { dropout = 0.3 })
    local x = gl.randn{ 2, 4, 8 }
    local a, b = block(x), block(x)
    assert.is_true((a - b):abs():max():item() > 1e-4)
    block:evaluate()
    assert.tensor_near(block(x), block(x), 0)
    assert.equal(0.3, block.dropout1.p)
  end)

  it("reports misuse clearly", function()
    assert.error_matches(function() nn.TransformerBlock(8, 3) end, "TransformerBlock", "d_model 8", "nhead 3")
    assert.error_matches(function() nn.TransformerBlock(8, 2, { activation = "tanh" }) end, "activation", "tanh")
    assert.error_matches(function() nn.TransformerBlock(8, 2, { norm_frist = true }) end, "unknown option 'norm_frist'")
    assert.error_matches(function() nn.TransformerBlock(8, 2, { dim_feedforward = 0 }) end, "dim_feedforward must be positive")
    local block = nn.TransformerBlock(8, 2)
    assert.error_matches(function() block(gl.randn{ 2, 5, 6 }) end, "TransformerBlock", "(batch, sequence, 8)", "{2, 5, 6}")
    assert.error_matches(function() block(gl.randn{ 2, 5, 8 }, { mask = gl.zeros{ 3, 3 } }) end, "mask of shape {3, 3}")
  end)
end)

describe("PyTorch parity", function()
  local has_torch = os.execute(helper.python .. " -c 'import torch' >/dev/null 2>&1") == true

  it("matches nn.TransformerEncoderLayer (pre-LN and post-LN, causal) and nn.MultiheadAttention", function()
    if not has_torch then pending("PyTorch not installed") return end
    gl.manual_seed(8)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local x = gl.randn{ 2, 5, 8 }
    local padding = gl.tensor{ { 0, 0, 0, 1, 1 }, { 0, 0, 0, 0, 0 } }
    gl.save(dir .. "/x.npy", x)
    gl.save(dir .. "/padding.npy", padding)
    for _, norm_first in ipairs{ true, false } do
      local block = nn.TransformerBlock(8, 2, { norm_first = norm_first })
      local tag = norm_first and "pre" or "post"
      local params = {}
      for _, entry in ipairs(block:named_parameters()) do params[entry[1]] = entry[2] end
      gl.save_state(dir .. "/" .. tag .. ".npz", params)
      local xp = param(copy(x))
      local y = block(xp, { causal = true })
      gl.save(dir .. "/" .. tag .. "_y.npy", y)
      y:sum():backward()
      gl.save(dir .. "/" .. tag .. "_dx.npy", xp.grad)
      gl.save(dir .. "/" .. tag .. "_dw.npy", block.self_attn.in_proj_weight.grad)
    end
    local mha = nn.MultiheadAttention(8, 2)
    local mparams = {}
    for _, entry in ipairs(mha:named_parameters()) do mparams[entry[1]] = entry[2] end
    gl.save_state(dir .. "/mha.npz", mparams)
    local my, mw = mha(x, { key_padding_mask = padding })
    gl.save(dir .. "/mha_y.npy", my)
    gl.save(dir .. "/mha_w.npy", mw)
    local script = ([[
import numpy as np, torch
d = %q
x = torch.tensor(np.load(d + "/x.npy"))
errors = []
for tag, nf in (("pre", True), ("post", False)):
    layer = torch.nn.TransformerEncoderLayer(8, 2, 32, dropout=0.0, activation="gelu", batch_first=True, norm_first=nf)
    state = np.load(d + "/" + tag + ".npz")
    layer.load_state_dict({k: torch.tensor(state[k]) for k in state.files})
    xp = x.clone().requires_grad_(True)
    mask = torch.triu(torch.full((5, 5), float("-inf")), 1)
    y = layer(xp, src_mask=mask)
    y.sum().backward()
    errors.append(float((y - torch.tensor(np.load(d + "/" + tag + "_y.npy"))).abs().max()))
    errors.append(float((xp.grad - torch.tensor(np.load(d + "/" + tag + "_dx.npy"))).abs().max()))
    errors.append(float((layer.self_attn.in_proj_weight.grad - torch.tensor(np.load(d + "/" + tag + "_dw.npy"))).abs().max()))
mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
state = np.load(d + "/mha.npz")
mha.load_state_dict({k: torch.tensor(state[k]) for k in state.files})
pad = torch.tensor(np.load(d + "/padding.npy")) != 0
y, w = mha(x, x, x, key_padding_mask=pad, average_attn_weights=False)
errors.append(float((y - torch.tensor(np.load(d + "/mha_y.npy"))).abs().max()))
errors.append(float((w - torch.tensor(np.load(d + "/mha_w.npy"))).abs().max()))
print(" ".join("%%.3g" %% e for e in errors))
]]):format(dir)
    local path = dir .. "/check.py"
    local f = assert(io.open(path, "w"))
    f:write(script)
    f:close()
    local pipe = assert(io.popen(helper.python .. " " .. path .. " 2>&1"))
    local output = pipe:read("a")
    pipe:close()
    os.execute("rm -rf " .. dir)
    local errors = {}
    for value in output:gmatch("%S+") do errors[#errors + 1] = tonumber(value) end
    assert.equal(8, #errors, "python said: " .. output)
    for i, e in ipairs(errors) do assert.is_true(e < 2e-5, ("difference %d is %g: %s"):format(i, e, output)) end
  end)
end)
