-- spec/embedding_spec.lua — engine/embedding.c through gl.embedding and nn.Embedding: lookup
-- against a plain Lua loop, the scatter-add gradient with repeated indices, padding_idx,
-- gradcheck, reduced precision that leaves indices alone, and clear errors for bad indices.
local gl = require "gradlab"
local helper = require "helper"
local nn = gl.nn

-- The oracle: out[p][j] = weight[indices[p]][j] with Lua tables.
local function lookup(indices, weight)
  local rows = weight:totable()
  local flat = helper.flatten(indices:totable())
  local out = {}
  for p, index in ipairs(flat) do out[p] = rows[index] end
  return out
end

describe("gl.embedding", function()
  before_each(function() gl.manual_seed(2) end)

  it("gathers rows for indices of any shape", function()
    local weight = gl.randn{ 6, 3 }
    for _, indices in ipairs{ gl.tensor{ 1, 6, 3, 3 }, gl.tensor{ { 2, 5, 1 }, { 6, 6, 4 } }, gl.tensor(4) } do
      local out = gl.embedding(indices, weight)
      local shape = indices:shape()
      shape[#shape + 1] = 3
      assert.same(shape, out:shape())
      local want = lookup(indices:dim() == 0 and indices:view{ 1 } or indices, weight)
      assert.tensor_near(out:reshape{ -1, 3 }, want, 0)
    end
  end)

  it("reads strided index tensors and an empty batch", function()
    local weight = gl.randn{ 5, 2 }
    local indices = gl.tensor{ { 1, 2 }, { 3, 4 }, { 5, 1 } }:t()
    assert.tensor_near(gl.embedding(indices, weight), gl.embedding(indices:contiguous(), weight), 0)
    assert.same({ 0, 2 }, gl.embedding(gl.zeros{ 0 }, weight):shape())
  end)

  it("scatter-adds the gradient, counting repeated indices", function()
    local weight = gl.randn{ 4, 2 }:requires_grad(true)
    local indices = gl.tensor{ { 2, 2, 4 }, { 2, 1, 4 } }
    local seed = gl.randn{ 2, 3, 2 }
    gl.embedding(indices, weight):backward(seed)
    local g = seed:totable()
    local want = { { 0, 0 }, { 0, 0 }, { 0, 0 }, { 0, 0 } }
    local flat_rows = { g[1][1], g[1][2], g[1][3], g[2][1], g[2][2], g[2][3] }
    for p, index in ipairs(helper.flatten(indices:totable())) do
      for j = 1, 2 do want[index][j] = want[index][j] + flat_rows[p][j] end
    end
    assert.tensor_near(weight.grad, want, 1e-6)
  end)

  it("passes gradcheck", function()
    local weight = gl.randn{ 5, 3 }:requires_grad(true)
    local ok, err = gl.gradcheck(function(w) return gl.embedding(gl.tensor{ { 1, 5, 5 }, { 2, 3, 1 } }, w) end, { weight })
    assert.is_true(ok, "max error " .. tostring(err))
  end)

  it("gives the padding row no gradient", function()
    local weight = gl.randn{ 4, 2 }:requires_grad(true)
    gl.embedding(gl.tensor{ 1, 3, 3, 2 }, weight, 3):sum():backward()
    assert.tensor_near(weight.grad, { { 1, 1 }, { 1, 1 }, { 0, 0 }, { 0, 0 } }, 0)
  end)

  it("refuses indices out of range, non-integers and NaN, naming the position", function()
    local weight = gl.randn{ 3, 4 }
    assert.error_matches(function() gl.embedding(gl.tensor{ { 1, 2 }, { 4, 1 } }, weight) end,
                         "embedding", "index 4", "position {2, 1}", "out of range 1..3", "{3, 4}")
    assert.error_matches(function() gl.embedding(gl.tensor{ 0 }, weight) end, "index 0", "out of range 1..3")
    assert.error_matches(function() gl.embedding(gl.tensor{ 1, 2.5 }, weight) end, "index 2.5", "not an integer")
    assert.error_matches(function() gl.embedding(gl.tensor{ 0 / 0 }, weight) end, "embedding", "nan")
    assert.error_matches(function() gl.embedding(gl.tensor{ 1e30 }, weight) end, "out of range")
    assert.error_matches(function() gl.embedding(gl.tensor{ 1 }, gl.randn{ 3 }) end, "weight must be 2-d", "{3}")
    assert.error_matches(function() gl.embedding(gl.tensor{ 1 }, weight, 4) end, "padding_idx 4", "1..3")
    assert.error_matches(function() gl.embedding(gl.tensor{ 1 }, weight, 1.5) end, "padding_idx must be an integer")
  end)
end)

describe("nn.Embedding", function()
  before_each(function() gl.manual_seed(3) end)

  it("holds weight (n, d) drawn from N(0, 1), with a zero padding row", function()
    local m = nn.Embedding(1000, 8, { padding_idx = 7 })
    assert.same({ 1000, 8 }, m.weight:shape())
    assert.equal("weight", m:named_parameters()[1][1])
    local std = ((m.weight * m.weight):mean():item()) ^ 0.5
    assert.is_true(math.abs(std - 1) < 0.05, "std " .. std)
    assert.tensor_near(m.weight:select(1, 7), gl.zeros{ 8 }, 0)
    assert.equal("Embedding(1000, 8, padding_idx=7)", tostring(m))
    assert.equal("Embedding(10, 3)", tostring(nn.Embedding(10, 3)))
    assert.equal(10, nn.Embedding(10, 3, { padding_idx = -1 }).padding_idx)   -- from the end, as PyTorch
  end)

  it("looks rows up and learns only the rows it used", function()
    local m = nn.Embedding(5, 2, { padding_idx = 1 })
    local indices = gl.tensor{ { 1, 2 }, { 4, 2 } }
    local y = m(indices)
    assert.tensor_near(y:reshape{ -1, 2 }, lookup(indices, m.weight), 0)
    y:sum():backward()
    assert.tensor_near(m.weight.grad, { { 0, 0 }, { 2, 2 }, { 0, 0 }, { 1, 1 }, { 0, 0 } }, 0)
  end)

  it("accepts an initializer", function()
    local m = nn.Embedding(4, 3, { init = "zeros" })
    assert.equal(0, m.weight:abs():max():item())
  end)

  it("keeps indices exact under reduced precision", function()
    local m = nn.Embedding(600, 4)
    m:precision("bf16")
    local y = m(gl.tensor{ 301, 599 })   -- bf16 would round these to 300 and 600
    assert.tensor_near(y:select(1, 1), m.weight:select(1, 301):bfloat16(), 0)
    assert.tensor_near(y:select(1, 2), m.weight:select(1, 599):bfloat16(), 0)
  end)

  it("reports misuse clearly", function()
    assert.error_matches(function() nn.Embedding(0, 3) end, "Embedding", "num_embeddings must be positive")
    assert.error_matches(function() nn.Embedding(4, 2.5) end, "embedding_dim must be an integer")
    assert.error_matches(function() nn.Embedding(4, 2, { padding_idx = 5 }) end, "padding_idx 5 is out of range 1..4")
    assert.error_matches(function() nn.Embedding(4, 2, { paddingidx = 1 }) end, "unknown option 'paddingidx'")
    local m = nn.Embedding(4, 2)
    assert.error_matches(function() m({ 1, 2 }) end, "Embedding", "tensor of 1-based indices")
    assert.error_matches(function() m(gl.tensor{ 5 }) end, "index 5", "out of range 1..4")
  end)
end)
