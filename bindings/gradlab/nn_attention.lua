-- gradlab.nn_attention — embedding and attention modules, added to gl.nn.
--
--   nn.Embedding(num_embeddings, embedding_dim [, {padding_idx =, init =}])
--       weight (num_embeddings, embedding_dim), N(0, 1) as PyTorch; called with a tensor of
--       1-based indices of any shape (integers held as floats, like labels everywhere in
--       gradlab), returns (..., embedding_dim).  The padding_idx row starts at zero and
--       receives no gradient.  An index outside 1..num_embeddings is an error naming it.
--
--   nn.MultiheadAttention(embed_dim, num_heads [, {bias = true, dropout = 0, causal = false}])
--       Layout: BATCH FIRST.  Inputs are (B, T, embed_dim), or (T, embed_dim) for one
--       sequence; heads are packed in the feature dimension (head h = features
--       (h-1)*head_dim+1 .. h*head_dim), as PyTorch's batch_first=True.
--         y, weights = m(x [, options])                    self-attention
--         y, weights = m(query, key, value [, options])    query (B, Tq, E), key/value (B, Tk, E)
--       options: {mask = additive tensor broadcasting to (B, heads, Tq, Tk) (use -math.huge to
--       forbid; it may be a learned bias, gradients flow into it), key_padding_mask = (B, Tk)
--       with nonzero for keys to ignore, causal = true/false (query i sees keys j <= i)}.
--       weights (B, heads, Tq, Tk) are the softmax probabilities (before dropout), per head,
--       not averaged as PyTorch's need_weights does.  A query whose keys are all masked gets
--       zero weights and zero output, not NaN.
--       After each call, for inspection:
--         m.attention      the weights above (detached)
--         m.head_outputs   (B, heads, Tq, head_dim): each head's output before out_proj (detached view)
--         m.context        (B, Tq, embed_dim): the heads concatenated, the input of out_proj, IN the
--                          graph: m.context:retain_grad() before backward gives per-head gradients
--                          (it keeps the last call's graph alive until the next call, as holding any
--                          output would).
--       Parameters (PyTorch's names and layout): in_proj_weight (3E, E) = [W_q; W_k; W_v],
--       in_proj_bias (3E), out_proj.weight (E, E), out_proj.bias (E); PyTorch's init
--       (xavier_uniform in_proj_weight, zero biases).
--
--   nn.TransformerBlock(d_model, nhead [, {norm_first = true, dim_feedforward = 4 d_model,
--                       dropout = 0, activation = "gelu" | "relu", causal = false, eps = 1e-5,
--                       bias = true}])
--       One encoder layer, batch first (B, T, d_model) -> (B, T, d_model):
--         norm_first = true  (pre-LN):   x = x + drop(attn(norm1(x)));  x = x + drop(ff(norm2(x)))
--         norm_first = false (post-LN):  x = norm1(x + drop(attn(x)));  x = norm2(x + drop(ff(x)))
--       with ff(x) = linear2(drop(act(linear1(x)))), linear1 d_model -> dim_feedforward.
--       Children and parameter names are those of torch.nn.TransformerEncoderLayer (self_attn,
--       linear1, dropout, linear2, norm1, norm2, dropout1, dropout2), so weights move between
--       the two.  Called as block(x [, options]) with MultiheadAttention's options.
--
-- Kernels: gl.embedding (engine/embedding.c); gl.attention / gl.attention_packed
-- (engine/attention.c): one fused node per attention, self-attention reading Q, K, V straight
-- from the packed projection.
return function(gl, nn)
  local class = nn.class
  local check = require "gradlab.nn_check"
  local shape_text, integer_check, options_check = check.shape_text, check.integer, check.options


  local function probability_check(layer, value)
    if type(value) ~= "number" or not (value >= 0 and value < 1) then
      error(("%s: dropout must be a number in [0, 1), got %s"):format(layer, tostring(value)), 4)
    end
    return value
  end

  local function flag(value, default) if value == nil then return default end return value and true or false end

  -- Embedding ---------------------------------------------------------------
  local Embedding = class("Embedding")
  local embedding_options = { padding_idx = true, init = true }
  function Embedding:init(num_embeddings, embedding_dim, options)
    num_embeddings = integer_check("Embedding", 1, num_embeddings, "num_embeddings")
    embedding_dim = integer_check("Embedding", 2, embedding_dim, "embedding_dim")
    options = options_check("Embedding", 3, options, embedding_options)
    local padding = options.padding_idx
    if padding ~= nil then
      if math.type(padding) ~= "integer" and not (type(padding) == "number" and padding == math.floor(padding)) then
        error(("Embedding: padding_idx must be an integer, got %s"):format(tostring(padding)), 3)
      end
      -- Negative counts from the end, as PyTorch's padding_idx = -1 is the last row.
      if padding < 0 then padding = num_embeddings + 1 + padding end
      if padding < 1 or padding > num_embeddings then
        error(("Embedding: padding_idx %s is out of range 1..%d"):format(tostring(options.padding_idx), num_embeddings), 3)
      end
      padding = math.tointeger(padding)
    end
    self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding
    self:register_parameter("weight", gl.randn{ num_embeddings, embedding_dim })
    gl.init.apply("Embedding", options.init, self.weight, "init")
    if padding then
      gl.no_grad(function() self.weight:select(1, padding):zero() end)
    end
  end

  function Embedding:forward(indices)
    if not gl.is_tensor(indices) then
      error(("Embedding: input must be a tensor of 1-based indices, got %s"):format(type(indices)), 3)
    end
    return gl.embedding(indices, self.weight, self.padding_idx)
  end

  -- Reduced precision rounds the weights, never the indices (bf16 holds integers
  -- exactly only up to 256, fp16 up to 2048).
  function Embedding:_forward_in_precision(indices)
    local weight = self.weight
    rawset(self, "weight", weight[self._precision](weight))
    local ok, out = pcall(self.forward, self, indices)
    rawset(self, "weight", weight)
    if not ok then error(out, 0) end
    return out
  end

  function Embedding:extra_repr()
    local text = ("%d, %d"):format(self.num_embeddings, self.embedding_dim)
    if self.padding_idx then text = text .. (", padding_idx=%d"):format(self.padding_idx) end
    return text
  end

  -- MultiheadAttention --------------------------------------------------------
  local MultiheadAttention = class("MultiheadAttention")
  local attention_options = { bias = true, dropout = true, causal = true }
  function MultiheadAttention:init(embed_dim, num_heads, options)
    embed_dim = integer_check("MultiheadAttention", 1, embed_dim, "embed_dim")
    num_heads = integer_check("MultiheadAttention", 2, num_heads, "num_heads")
    options = options_check("MultiheadAttention", 3, options, attention_options)
    if embed_dim % num_heads ~= 0 then
      error(("MultiheadAttention: embed_dim %d is not divisible by num_heads %d"):format(embed_dim, num_heads), 3)
    end
    self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
    self.dropout = probability_check("MultiheadAttention", options.dropout == nil and 0 or options.dropout)
    self.causal = flag(options.causal, false)
    local bias = flag(options.bias, true)
    self:register_parameter("in_proj_weight", gl.init.xavier_uniform(gl.empty{ 3 * embed_dim, embed_dim }))
    if bias then self:register_parameter("in_proj_bias", gl.zeros{ 3 * embed_dim }) end
    self:register_module("out_proj", nn.Linear(embed_dim, embed_dim, { bias = bias }))
    if bias then gl.no_grad(function() self.out_proj.bias:zero() end) end
  end

  local call_options = { mask = true, key_padding_mask = true, causal = true }

  -- The features of a (B, T, E) or (T, E) input against embed_dim; level 4 from here is the
  -- caller of the module (helper → forward → Module.__call → caller).
  local function input_check(self, name, t)
    if not gl.is_tensor(t) then
      error(("MultiheadAttention: %s must be a tensor (B, T, %d), got %s"):format(name, self.embed_dim, type(t)), 4)
    end
    local n = t:dim()
    if (n ~= 3 and n ~= 2) or t:size(n) ~= self.embed_dim then
      error(("MultiheadAttention: %s of shape %s must be (batch, sequence, %d) (batch first) or (sequence, %d)")
        :format(name, shape_text(t:shape()), self.embed_dim, self.embed_dim), 4)
    end
  end

  function MultiheadAttention:forward(query, key, value, options)
    if key ~= nil and not gl.is_tensor(key) and value == nil and options == nil then
      options, key = key, nil
    end
    input_check(self, "query", query)
    if key ~= nil or value ~= nil then
      input_check(self, "key", key)
      input_check(self, "value", value)
      if key:dim() ~= query:dim() or value:dim() ~= query:dim() then
        error(("MultiheadAttention: query %s, key %s and value %s must all be batched (3-d) or all unbatched (2-d)")
          :format(shape_text(query:shape()), shape_text(key:shape()), shape_text(value:shape())), 3)
      end
    end
    if options ~= nil and type(options) ~= "table" then
      error(("MultiheadAttention: options must be a table {mask =, key_padding_mask =, causal =}, got %s")
        :format(type(options)), 3)
    end
    options = options or {}
    for k in pairs(options) do
      if not call_options[k] then error(("MultiheadAttention: unknown option '%s'"):format(tostring(k)), 3) end
    end
    local unbatched = query:dim() == 2
    if unbatched then
      query = query:unsqueeze(1)
      if key then key, value = key:unsqueeze(1), value:unsqueeze(1) end
    end
    local causal = options.causal
    if causal == nil then causal = self.causal end
    local o = { mask = options.mask, key_padding_mask = options.key_padding_mask, causal = causal and true or false,
                dropout = self.dropout, training = self.training }
    local E, H = self.embed_dim, self.num_heads
    local context, weights
    if key == nil or (rawequal(key, query) and rawequal(value, query)) then
      local qkv = gl.linear(query, self.in_proj_weight, self.in_proj_bias)
      context, weights = gl.attention_packed(qkv, H, o)
    else
      local w, b = self.in_proj_weight, self.in_proj_bias
      local function project(x, first, count)
        return gl.linear(x, w:narrow(1, first, count), b and b:narrow(1, first, count))
      end
      local q, k, v = project(query, 1, E)
      if rawequal(key, value) then   -- one product for K and V, read as two column blocks
        local kv = project(key, E + 1, 2 * E)
        k, v = kv:narrow(3, 1, E), kv:narrow(3, E + 1, E)
      else
        k, v = project(key, E + 1, E), project(value, 2 * E + 1, E)
      end
      context, weights = gl.attention(q, k, v, H, o)
    end
    local B, Tq = context:size(1), context:size(2)
    self.attention, self.context = weights, context
    self.head_outputs = context:detach():view{ B, Tq, H, self.head_dim }:transpose(2, 3)
    local y = self.out_proj(context)
    if unbatched then return y:squeeze(1), weights:squeeze(1) end
    return y, weights
  end

  function MultiheadAttention:extra_repr()
    local text = ("embed_dim=%d, num_heads=%d"):format(self.embed_dim, self.num_heads)
    if self.dropout > 0 then text = text .. (", dropout=%g"):format(self.dropout) end
    if self.causal then text = text .. ", causal=true" end
    if not self.in_proj_bias then text = text .. ", bias=false" end
    return text
  end

  -- TransformerBlock ----------------------------------------------------------
  local TransformerBlock = class("TransformerBlock")
  local block_options = { norm_first = true, dim_feedforward = true, dropout = true, activation = true,
                          causal = true, eps = true, bias = true }
  local activations = { gelu = gl.gelu, relu = gl.relu }

  function TransformerBlock:init(d_model, nhead, options)
    d_model = integer_check("TransformerBlock", 1, d_model, "d_model")
    nhead = integer_check("TransformerBlock", 2, nhead, "nhead")
    options = options_check("TransformerBlock", 3, options, block_options)
    if d_model % nhead ~= 0 then
      error(("TransformerBlock: d_model %d is not divisible by nhead %d"):format(d_model, nhead), 3)
    end
    local ff = options.dim_feedforward == nil and 4 * d_model
      or integer_check("TransformerBlock", 3, options.dim_feedforward, "dim_feedforward")
    local p = probability_check("TransformerBlock", options.dropout == nil and 0 or options.dropout)
    local activation = options.activation == nil and "gelu" or options.activation
    if not activations[activation] then
      error(("TransformerBlock: activation must be \"gelu\" or \"relu\", got %s"):format(tostring(activation)), 3)
    end
    local eps = options.eps == nil and 1e-5 or options.eps
    if type(eps) ~= "number" or not (eps > 0) then
      error(("TransformerBlock: eps must be a positive number, got %s"):format(tostring(eps)), 3)
    end
    local bias = flag(options.bias, true)
    self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, ff
    self.norm_first = flag(options.norm_first, true)
    self.activation_name, self.activation = activation, activations[activation]
    self:register_module("self_attn", nn.MultiheadAttention(d_model, nhead,
      { dropout = p, causal = flag(options.causal, false), bias = bias }))
    self:register_module("linear1", nn.Linear(d_model, ff, { bias = bias }))
    self:register_module("dropout", nn.Dropout(p))
    self:register_module("linear2", nn.Linear(ff, d_model, { bias = bias }))
    self:register_module("norm1", nn.LayerNorm(d_model, { eps = eps, bias = bias }))
    self:register_module("norm2", nn.LayerNorm(d_model, { eps = eps, bias = bias }))
    self:register_module("dropout1", nn.Dropout(p))
    self:register_module("dropout2", nn.Dropout(p))
  end

  -- Dropout with p = 0 would still add an identity node per call: skip it.
  local function drop(m, x)
    if m.p > 0 then return m(x) end
    return x
  end

  function TransformerBlock:_attention_block(x, options)
    return drop(self.dropout1, (self.self_attn(x, options)))
  end

  function TransformerBlock:_feed_forward_block(x)
    local h = drop(self.dropout, self.activation(self.linear1(x)))
    return drop(self.dropout2, self.linear2(h))
  end

  function TransformerBlock:forward(x, options)
    if not gl.is_tensor(x) or (x:dim() ~= 3 and x:dim() ~= 2) or x:size(x:dim()) ~= self.d_model then
      error(("TransformerBlock: input must be (batch, sequence, %d) (batch first) or (sequence, %d), got %s")
        :format(self.d_model, self.d_model, gl.is_tensor(x) and shape_text(x:shape()) or type(x)), 3)
    end
    if self.norm_first then
      x = x + self:_attention_block(self.norm1(x), options)
      return x + self:_feed_forward_block(self.norm2(x))
    end
    x = self.norm1(x + self:_attention_block(x, options))
    return self.norm2(x + self:_feed_forward_block(x))
  end

  function TransformerBlock:extra_repr()
    return ("d_model=%d, nhead=%d, dim_feedforward=%d, norm_first=%s, activation=%s")
      :format(self.d_model, self.nhead, self.dim_feedforward, tostring(self.norm_first), self.activation_name)
  end

  return nn
end
