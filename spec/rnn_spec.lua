-- spec/rnn_spec.lua — engine/rnn.c through gl.rnn, gl.lstm, gl.gru and their *_cell forms, and
-- the modules of bindings/gradlab/nn_recurrent.lua: one step against hand math written with
-- tensor ops, the fused sequence (forward and backward through time) against the same math
-- unrolled through autograd and against a Lua loop over :step, gradcheck of both paths,
-- PyTorch's layout and results (when torch is installed), clear errors, and issue 6's
-- adding problem (an LSTM learns it where a tanh RNN does not).
local gl = require "gradlab"
local helper = require "helper"
local nn = gl.nn

local function check(fn, inputs, what, tol)
  local ok, err = gl.gradcheck(fn, inputs, { tol = tol or 5e-3 })
  assert.is_true(ok, (what or "gradcheck") .. ": max error " .. tostring(err))
end

local G = { rnn = 1, rnn_relu = 1, lstm = 4, gru = 3 }

-- One step of each kind written with tensor ops (matmul, sigmoid, tanh), PyTorch's
-- equations and gate order; biases may be nil.
local function reference_step(kind, x, h, c, w_ih, w_hh, b_ih, b_hh)
  local H = w_hh:size(2)
  local gx, gh = x:matmul(w_ih:t()), h:matmul(w_hh:t())
  if b_ih then gx = gx + b_ih end
  if b_hh then gh = gh + b_hh end
  local function block(t, k) return t:narrow(2, k * H + 1, H) end
  if kind == "lstm" then
    local a = gx + gh
    local i, f = block(a, 0):sigmoid(), block(a, 1):sigmoid()
    local g, o = block(a, 2):tanh(), block(a, 3):sigmoid()
    local c2 = f * c + i * g
    return o * c2:tanh(), c2
  elseif kind == "gru" then
    local r = (block(gx, 0) + block(gh, 0)):sigmoid()
    local z = (block(gx, 1) + block(gh, 1)):sigmoid()
    local n = (block(gx, 2) + r * block(gh, 2)):tanh()
    return (1 - z) * n + z * h
  elseif kind == "rnn_relu" then
    return (gx + gh):relu()
  end
  return (gx + gh):tanh()
end

-- The fused kernels with a uniform signature: y, h_n, c_n (c_n nil but for LSTM).
local function sequence(kind, x, h0, c0, w_ih, w_hh, b_ih, b_hh)
  if kind == "lstm" then return gl.lstm(x, h0, c0, w_ih, w_hh, b_ih, b_hh) end
  if kind == "gru" then return gl.gru(x, h0, w_ih, w_hh, b_ih, b_hh) end
  return gl.rnn(x, h0, w_ih, w_hh, b_ih, b_hh, kind == "rnn_relu" and "relu" or "tanh")
end

local function cell(kind, x, h, c, w_ih, w_hh, b_ih, b_hh)
  if kind == "lstm" then return gl.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh) end
  if kind == "gru" then return gl.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh) end
  return gl.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, kind == "rnn_relu" and "relu" or "tanh")
end

-- Random weights of a layer: w_ih, w_hh, b_ih, b_hh.
local function weights(kind, In, H, scale)
  scale = scale or 0.5
  local g = G[kind]
  return gl.randn{ g * H, In } * scale, gl.randn{ g * H, H } * scale, gl.randn{ g * H } * 0.3,
         gl.randn{ g * H } * 0.3
end

local function params(list)
  for _, t in ipairs(list) do t:requires_grad(true) end
  return list
end

local kinds = { "rnn", "rnn_relu", "lstm", "gru" }

describe("recurrent kernels", function()
  before_each(function() gl.manual_seed(6) end)

  it("compute one LSTM step as written with matmul, sigmoid and tanh", function()
    local B, In, H = 3, 5, 4
    local x, h, c = gl.randn{ B, In }, gl.randn{ B, H }, gl.randn{ B, H }
    local w_ih, w_hh, b_ih, b_hh = weights("lstm", In, H)
    local h2, c2 = gl.lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh)
    -- Gate by gate, in the i, f, g, o order of the weight rows.
    local a = x:matmul(w_ih:t()) + b_ih + h:matmul(w_hh:t()) + b_hh
    local i, f = a:narrow(2, 1, H):sigmoid(), a:narrow(2, H + 1, H):sigmoid()
    local g, o = a:narrow(2, 2 * H + 1, H):tanh(), a:narrow(2, 3 * H + 1, H):sigmoid()
    local c_expected = f * c + i * g
    assert.tensor_near(c2, c_expected, 1e-5)
    assert.tensor_near(h2, o * c_expected:tanh(), 1e-5)
  end)

  it("compute one GRU step with n = tanh(W_in x + b_in + r * (W_hn h + b_hn))", function()
    local B, In, H = 3, 5, 4
    local x, h = gl.randn{ B, In }, gl.randn{ B, H }
    local w_ih, w_hh, b_ih, b_hh = weights("gru", In, H)
    local function rows(t, k) return t:narrow(1, k * H + 1, H) end
    local r = (x:matmul(rows(w_ih, 0):t()) + rows(b_ih, 0) + h:matmul(rows(w_hh, 0):t()) + rows(b_hh, 0)):sigmoid()
    local z = (x:matmul(rows(w_ih, 1):t()) + rows(b_ih, 1) + h:matmul(rows(w_hh, 1):t()) + rows(b_hh, 1)):sigmoid()
    local n = (x:matmul(rows(w_ih, 2):t()) + rows(b_ih, 2) + r * (h:matmul(rows(w_hh, 2):t()) + rows(b_hh, 2))):tanh()
    assert.tensor_near(gl.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh), (1 - z) * n + z * h, 1e-5)
  end)

  it("compute one Elman step with tanh and with relu", function()
    local x, h = gl.randn{ 3, 5 }, gl.randn{ 3, 4 }
    local w_ih, w_hh, b_ih, b_hh = weights("rnn", 5, 4)
    local a = x:matmul(w_ih:t()) + b_ih + h:matmul(w_hh:t()) + b_hh
    assert.tensor_near(gl.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh), a:tanh(), 1e-5)
    assert.tensor_near(gl.rnn_cell(x, h, w_ih, w_hh, b_ih, b_hh, "relu"), a:relu(), 1e-6)
  end)

  it("treat a missing state as zeros and missing biases as none", function()
    for _, kind in ipairs(kinds) do
      local x = gl.randn{ 2, 3 }
      local w_ih, w_hh = weights(kind, 3, 4)
      local zeros = gl.zeros{ 2, 4 }
      assert.tensor_near(cell(kind, x, nil, nil, w_ih, w_hh), (cell(kind, x, zeros, zeros, w_ih, w_hh)), 0)
      assert.tensor_near(cell(kind, x, nil, nil, w_ih, w_hh), (reference_step(kind, x, zeros, zeros, w_ih, w_hh)), 1e-5)
    end
  end)

  it("run a sequence as the reference unrolled through autograd: outputs and every gradient", function()
    local T, B, In, H = 6, 3, 4, 5
    for _, kind in ipairs(kinds) do
      local x, h0, c0 = gl.randn{ T, B, In }, gl.randn{ B, H }, gl.randn{ B, H }
      local inputs = params{ x, h0, c0, weights(kind, In, H) }
      local weight_y, weight_h, weight_c = gl.randn{ T, B, H }, gl.randn{ B, H }, gl.randn{ B, H }

      local y, h_n, c_n = sequence(kind, table.unpack(inputs))
      local loss = (y * weight_y):sum() + (h_n * weight_h):sum()
      if c_n then loss = loss + (c_n * weight_c):sum() end
      loss:backward()
      local fused = {}
      for i, t in ipairs(inputs) do fused[i] = t.grad; t.grad = nil end

      local h, c, outputs = h0, c0, {}
      for t = 1, T do
        h, c = reference_step(kind, x:select(1, t), h, c, table.unpack(inputs, 4))
        outputs[t] = h
      end
      local y_ref = gl.stack(outputs, 1)
      assert.tensor_near(y, y_ref, 1e-5)
      assert.tensor_near(h_n, h, 1e-5)
      local loss_ref = (y_ref * weight_y):sum() + (h * weight_h):sum()
      if kind == "lstm" then
        assert.tensor_near(c_n, c, 1e-5)
        loss_ref = loss_ref + (c * weight_c):sum()
      end
      loss_ref:backward()
      for i, t in ipairs(inputs) do
        if kind ~= "lstm" and i == 3 then
          assert.is_nil(fused[i], kind .. ": c0 takes no part")
        else
          assert.tensor_near(fused[i], t.grad, 2e-4)
        end
      end
    end
  end)

  it("pass gradcheck on the whole sequence (y, h_n and c_n all differentiated)", function()
    local T, B, In, H = 4, 2, 3, 3
    for _, kind in ipairs(kinds) do
      local x, h0, c0 = gl.randn{ T, B, In }, gl.randn{ B, H } * 0.5, gl.randn{ B, H } * 0.5
      local w_ih, w_hh, b_ih, b_hh = weights(kind, In, H)
      local inputs = kind == "lstm" and { x, h0, c0, w_ih, w_hh, b_ih, b_hh } or { x, h0, w_ih, w_hh, b_ih, b_hh }
      check(function(...)
        local a = { ... }
        if kind ~= "lstm" then table.insert(a, 3, false) end
        local y, h_n, c_n = sequence(kind, a[1], a[2], a[3] or nil, a[4], a[5], a[6], a[7])
        local parts = { y:reshape{ -1 }, h_n:reshape{ -1 } }
        if c_n then parts[3] = c_n:reshape{ -1 } end
        return gl.cat(parts, 1)
      end, inputs, kind)
    end
  end)

  it("pass gradcheck without biases and without an initial state", function()
    for _, kind in ipairs(kinds) do
      local x = gl.randn{ 3, 2, 3 }
      local w_ih, w_hh = weights(kind, 3, 4)
      check(function(x, w_ih, w_hh) return (sequence(kind, x, nil, nil, w_ih, w_hh)) end, { x, w_ih, w_hh }, kind)
    end
  end)

  it("pass gradcheck through a Lua loop over the cells (BPTT through the graph)", function()
    local T, B, In, H = 4, 2, 3, 3
    for _, kind in ipairs(kinds) do
      local x, h0, c0 = gl.randn{ T, B, In }, gl.randn{ B, H } * 0.5, gl.randn{ B, H } * 0.5
      local w_ih, w_hh, b_ih, b_hh = weights(kind, In, H)
      check(function(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        local h, c, outputs = h0, c0, {}
        for t = 1, T do
          h, c = cell(kind, x:select(1, t), h, kind == "lstm" and c or nil, w_ih, w_hh, b_ih, b_hh)
          outputs[t] = kind == "lstm" and gl.cat({ h, c }, 2) or h
        end
        return gl.stack(outputs, 1)
      end, { x, h0, c0, w_ih, w_hh, b_ih, b_hh }, kind)
    end
  end)

  it("record nothing under no_grad and give the same values", function()
    local x = gl.randn{ 5, 2, 3 }
    local w_ih, w_hh, b_ih, b_hh = weights("lstm", 3, 4)
    params{ w_ih, w_hh }
    local y = gl.lstm(x, nil, nil, w_ih, w_hh, b_ih, b_hh)
    local y2 = gl.no_grad(function() return (gl.lstm(x, nil, nil, w_ih, w_hh, b_ih, b_hh)) end)
    assert.is_true(y:tracks_grad())
    assert.is_false(y2:tracks_grad())
    assert.tensor_near(y2, y, 0)
  end)

  it("accept non-contiguous inputs and weights", function()
    local x = gl.randn{ 3, 5, 4 }:transpose(1, 2)       -- (5, 3, 4), strided
    local w_ih = gl.randn{ 4, 16 }:t()                  -- (16, 4), strided
    local _, w_hh, b_ih, b_hh = weights("lstm", 4, 4)
    local y = gl.lstm(x, nil, nil, w_ih, w_hh, b_ih, b_hh)
    assert.tensor_near(y, (gl.lstm(x:contiguous(), nil, nil, w_ih:contiguous(), w_hh, b_ih, b_hh)), 0)
  end)

  it("agree with PyTorch on values and gradients (when torch is installed)", function()
    if os.execute(helper.python .. " -c 'import torch' 2>/dev/null") ~= true then
      pending("PyTorch not installed")
      return
    end
    local T, B, In, H = 5, 3, 4, 6
    for _, kind in ipairs { "lstm", "gru", "rnn_relu" } do
      local x, h0, c0 = gl.randn{ T, B, In }, gl.randn{ B, H }, gl.randn{ B, H }
      local inputs = params{ x, h0, c0, weights(kind, In, H) }
      local wy = gl.randn{ T, B, H }
      local y, h_n, c_n = sequence(kind, table.unpack(inputs))
      ;(y * wy):sum():backward()
      local torch = helper.numpy(([[
import torch
torch.set_num_threads(1)
kind = %q
T, B, In, H = x.shape[0], x.shape[1], x.shape[2], h0.shape[1]
if kind == "lstm": m = torch.nn.LSTM(In, H)
elif kind == "gru": m = torch.nn.GRU(In, H)
else: m = torch.nn.RNN(In, H, nonlinearity="relu")
with torch.no_grad():
    for name, value in (("weight_ih_l0", w_ih), ("weight_hh_l0", w_hh), ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
        getattr(m, name).copy_(torch.from_numpy(value))
xt = torch.from_numpy(x).requires_grad_()
h0t = torch.from_numpy(h0)[None].requires_grad_()
c0t = torch.from_numpy(c0)[None].requires_grad_()
y, state = m(xt, (h0t, c0t) if kind == "lstm" else h0t)
(y * torch.from_numpy(wy)).sum().backward()
result = [y.detach().numpy(), xt.grad.numpy(), h0t.grad[0].numpy(), m.weight_ih_l0.grad.numpy(),
          m.weight_hh_l0.grad.numpy(), m.bias_ih_l0.grad.numpy(), m.bias_hh_l0.grad.numpy()]
if kind == "lstm": result += [c0t.grad[0].numpy(), state[1][0].detach().numpy()]
]]):format(kind), { x = x, h0 = h0, c0 = c0, w_ih = inputs[4], w_hh = inputs[5], b_ih = inputs[6],
                   b_hh = inputs[7], wy = wy })
      assert.tensor_near(y, torch[1], 1e-5)
      local order = { 1, 2, 4, 5, 6, 7 }   -- x, h0, w_ih, w_hh, b_ih, b_hh
      for k, i in ipairs(order) do assert.tensor_near(inputs[i].grad, torch[k + 1], 1e-4) end
      if kind == "lstm" then
        assert.tensor_near(inputs[3].grad, torch[8], 1e-4)
        assert.tensor_near(c_n, torch[9], 1e-5)
      end
    end
  end)
end)

describe("recurrent kernel errors", function()
  local x = gl.randn{ 5, 2, 3 }
  local w_ih, w_hh, b_ih, b_hh = weights("lstm", 3, 4)

  it("name the function, the argument and both shapes", function()
    assert.error_matches(function() gl.lstm(gl.randn{ 5, 2, 7 }, nil, nil, w_ih, w_hh) end,
      "lstm: input has 7 features, weight_ih expects 3 (input shape {5, 2, 7}, weight_ih shape {16, 3})")
    assert.error_matches(function() gl.lstm(gl.randn{ 2, 3 }, nil, nil, w_ih, w_hh) end,
      "lstm: input must be 3-d (seq_len, batch, input_size), got shape {2, 3}")
    assert.error_matches(function() gl.lstm_cell(x, nil, nil, w_ih, w_hh) end,
      "lstm_cell: input must be 2-d (batch, input_size), got shape {5, 2, 3}")
    assert.error_matches(function() gl.gru(x, nil, w_ih, w_hh) end,
      "gru: weight_hh must be (3*hidden, hidden), got shape {16, 4}")
    assert.error_matches(function() gl.lstm(x, nil, nil, gl.randn{ 12, 3 }, w_hh) end,
      "lstm: weight_ih must be (16, input_size) to match weight_hh of shape {16, 4}, got shape {12, 3}")
    assert.error_matches(function() gl.lstm(x, nil, nil, w_ih, w_hh, gl.randn{ 4 }, b_hh) end,
      "lstm: bias_ih must be (16) for hidden size 4, got shape {4}")
    assert.error_matches(function() gl.lstm(x, gl.randn{ 3, 4 }, nil, w_ih, w_hh) end,
      "lstm: h0 has shape {3, 4}, expected {2, 4} (batch 2 of input shape {5, 2, 3}, hidden size 4)")
    assert.error_matches(function() gl.lstm_cell(x:select(1, 1), nil, gl.randn{ 2, 5 }, w_ih, w_hh) end,
      "lstm_cell: c has shape {2, 5}, expected {2, 4}")
    assert.error_matches(function() gl.lstm(gl.randn{ 0, 2, 3 }, nil, nil, w_ih, w_hh) end,
      "lstm: the sequence is empty (input shape {0, 2, 3})")
    assert.error_matches(function() gl.rnn_cell(x:select(1, 1), nil, w_ih:narrow(1, 1, 4), w_hh:narrow(1, 1, 4), nil, nil, "sigmoid") end,
      "rnn_cell: bad argument #7 (nonlinearity must be \"tanh\" or \"relu\", got sigmoid)")
    assert.error_matches(function() gl.gru(x, nil, 3, w_hh) end, "bad argument #3", "tensor expected, got number")
  end)

  it("leave no memory behind after failing calls", function()
    collectgarbage()
    collectgarbage()
    local before = gl.memory()
    for _ = 1, 50 do
      pcall(gl.lstm, x, gl.randn{ 3, 4 }, nil, w_ih, w_hh)
      pcall(gl.gru, x, nil, w_ih, w_hh)
    end
    collectgarbage()
    collectgarbage()
    assert.equal(before, gl.memory())
  end)
end)

describe("nn.RNN, nn.LSTM, nn.GRU", function()
  before_each(function() gl.manual_seed(11) end)

  it("name parameters as PyTorch does, with its layouts", function()
    local function listing(m)
      local out = {}
      for i, entry in ipairs(m:named_parameters()) do out[i] = entry[1] .. " " .. table.concat(entry[2]:shape(), "x") end
      return out
    end
    assert.same({ "weight_ih 128x32", "weight_hh 128x32", "bias_ih 128", "bias_hh 128" }, listing(nn.LSTM(32, 32)))
    assert.same({ "weight_ih 30x5", "weight_hh 30x10", "bias_ih 30", "bias_hh 30" }, listing(nn.GRU(5, 10)))
    assert.same({ "weight_ih 10x5", "weight_hh 10x10" }, listing(nn.RNN(5, 10, { bias = false })))
    assert.same({ "weight_ih_l0 24x5", "weight_hh_l0 24x6", "bias_ih_l0 24", "bias_hh_l0 24",
                  "weight_ih_l1 24x6", "weight_hh_l1 24x6", "bias_ih_l1 24", "bias_hh_l1 24" },
                listing(nn.LSTM(5, 6, { num_layers = 2 })))
    assert.same({ "weight_ih 12x3", "weight_hh 12x4", "bias_ih 12", "bias_hh 12" }, listing(nn.GRUCell(3, 4)))
  end)

  it("initialize every weight and bias from U(-1/sqrt(hidden), 1/sqrt(hidden))", function()
    local m = nn.LSTM(20, 25, { num_layers = 2 })
    for _, entry in ipairs(m:named_parameters()) do
      local t = entry[2]
      assert.is_true(t:abs():max():item() <= 0.2, entry[1])
      assert.is_true(t:abs():max():item() > 0.15, entry[1] .. " spans the range")
      assert.is_true(math.abs(t:mean():item()) < 0.03, entry[1])
    end
    local custom = nn.RNN(4, 8, { init = "xavier_uniform", init_hh = "orthogonal", bias_init = 0 })
    local w = custom.weight_hh
    assert.tensor_near(w:matmul(w:t()), gl.eye(8), 1e-5)
    assert.tensor_near(custom.bias_ih, gl.zeros{ 8 }, 0)
  end)

  it("print like PyTorch", function()
    assert.equal("LSTM(32, 128)", tostring(nn.LSTM(32, 128)))
    assert.equal("GRU(3, 4, num_layers=2, batch_first=true, dropout=0.1)",
                 tostring(nn.GRU(3, 4, { num_layers = 2, batch_first = true, dropout = 0.1 })))
    assert.equal("RNN(3, 4, nonlinearity=relu, bias=false)", tostring(nn.RNN(3, 4, { nonlinearity = "relu", bias = false })))
    assert.equal("LSTMCell(3, 4)", tostring(nn.LSTMCell(3, 4)))
  end)

  it("return outputs (T, B, H) and the last state: h, or {h, c} for LSTM", function()
    local x = gl.randn{ 7, 3, 5 }
    local y, h = nn.GRU(5, 4)(x)
    assert.same({ 7, 3, 4 }, y:shape())
    assert.same({ 3, 4 }, h:shape())
    assert.tensor_near(h, y:select(1, 7), 0)
    local lstm = nn.LSTM(5, 4, { num_layers = 3 })
    local y2, state = lstm(x)
    assert.same({ 7, 3, 4 }, y2:shape())
    assert.same({ 3, 3, 4 }, state[1]:shape())
    assert.same({ 3, 3, 4 }, state[2]:shape())
    assert.tensor_near(state[1]:select(1, 3), y2:select(1, 7), 0)
    local bf = nn.RNN(5, 4, { batch_first = true })
    local y3, h3 = bf(x:transpose(1, 2))
    assert.same({ 3, 7, 4 }, y3:shape())
    assert.tensor_near(h3, y3:select(2, 7), 0)
  end)

  it("carry the state across chunks of a sequence; PyTorch's (1, B, H) state is accepted", function()
    for _, name in ipairs { "RNN", "LSTM", "GRU" } do
      for _, layers in ipairs { 1, 2 } do
        local m = nn[name](3, 4, { num_layers = layers })
        local x = gl.randn{ 10, 2, 3 }
        local y, state = m(x)
        local y1, s1 = m(x:narrow(1, 1, 6))
        local y2, s2 = m(x:narrow(1, 7, 4), s1)
        assert.tensor_near(gl.cat({ y1, y2 }, 1), y, 1e-6)
        if name == "LSTM" then
          assert.tensor_near(s2[1], state[1], 1e-6)
          assert.tensor_near(s2[2], state[2], 1e-6)
        else
          assert.tensor_near(s2, state, 1e-6)
        end
      end
      local m = nn[name](3, 4)
      local x, h = gl.randn{ 5, 2, 3 }, gl.randn{ 2, 4 }
      local state = name == "LSTM" and { h, h } or h
      local state3 = name == "LSTM" and { h:view{ 1, 2, 4 }, h:view{ 1, 2, 4 } } or h:view{ 1, 2, 4 }
      assert.tensor_near((m(x, state3)), (m(x, state)), 0)
    end
  end)

  it("give the same outputs and gradients through :step in a Lua loop as through one call", function()
    for _, name in ipairs { "RNN", "LSTM", "GRU" } do
      local m = nn[name](3, 5, { num_layers = 2 })
      local x = gl.randn{ 6, 2, 3 }
      local weight = gl.randn{ 6, 2, 5 }
      local y = m(x)
      ;(y * weight):sum():backward()
      local fused = {}
      for i, p in ipairs(m:parameters()) do fused[i] = p.grad end
      m:zero_grad()
      local state, outputs = nil, {}
      for t = 1, 6 do outputs[t], state = m:step(x:select(1, t), state) end
      local looped = gl.stack(outputs, 1)
      assert.tensor_near(looped, y, 1e-6)
      ;(looped * weight):sum():backward()
      for i, p in ipairs(m:parameters()) do assert.tensor_near(p.grad, fused[i], 1e-5) end
    end
  end)

  it("pass gradcheck through the full-sequence call and through the :step loop", function()
    for _, name in ipairs { "RNN", "LSTM", "GRU" } do
      local m = nn[name](2, 3, { num_layers = 2 })
      local list = m:parameters()
      local x, h0 = gl.randn{ 3, 2, 2 }, gl.randn{ 2, 2, 3 } * 0.5
      local state = name == "LSTM" and { h0, gl.randn{ 2, 2, 3 } * 0.5 } or h0
      local inputs = { x, h0, table.unpack(list) }
      if name == "LSTM" then table.insert(inputs, 3, state[2]) end
      check(function() return (m(x, state)) end, params(inputs), name .. " sequence")
      check(function()
        local s, outputs = state, {}
        for t = 1, 3 do outputs[t], s = m:step(x:select(1, t), s) end
        return gl.stack(outputs, 1)
      end, inputs, name .. " steps")
    end
  end)

  it("run the cell modules as one step", function()
    local m = nn.LSTMCell(3, 4)
    local x = gl.randn{ 2, 3 }
    local h, state = m(x)
    local h2, c2 = gl.lstm_cell(x, nil, nil, m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh)
    assert.tensor_near(h, h2, 0)
    assert.tensor_near(state[2], c2, 0)
    local g = nn.GRUCell(3, 4)
    local hg, sg = g(x, gl.ones{ 2, 4 })
    assert.tensor_near(hg, gl.gru_cell(x, gl.ones{ 2, 4 }, g.weight_ih, g.weight_hh, g.bias_ih, g.bias_hh), 0)
    assert.equal(hg, sg)
  end)

  it("apply dropout between layers only while training", function()
    local m = nn.GRU(4, 8, { num_layers = 2, dropout = 0.5 })
    local x = gl.randn{ 5, 3, 4 }
    m:evaluate()
    local y1, y2 = m(x), m(x)
    assert.tensor_near(y1, y2, 0)
    m:train()
    local y3 = m(x)
    assert.is_true((y3 - y1):abs():max():item() > 1e-3)
  end)

  it("name the module in anomaly errors", function()
    local m = nn.Sequential{ nn.LSTM(2, 3) }
    gl.detect_anomaly(true)
    local x = gl.randn{ 4, 1, 2 }
    x:set(0 / 0, 2, 1, 1)
    local ok, message = pcall(m, x)
    gl.detect_anomaly(false)
    assert.is_false(ok)
    assert.truthy(tostring(message):find("lstm", 1, true), message)
    assert.truthy(tostring(message):find("module 1", 1, true), message)
  end)
end)

describe("recurrent module errors", function()
  local lstm = nn.LSTM(32, 16)

  it("say what the layer expects", function()
    assert.error_matches(function() lstm(gl.randn{ 50, 8, 16 }) end,
      "LSTM: input has 16 features, the layer expects 32 (input shape {50, 8, 16})")
    assert.error_matches(function() lstm(gl.randn{ 8, 32 }) end,
      "LSTM: input must be 3-d (seq_len, batch, input_size=32), got shape {8, 32}", "m:step")
    assert.error_matches(function() nn.GRU(32, 16, { batch_first = true })(gl.randn{ 8, 32 }) end,
      "GRU: input must be 3-d (batch, seq_len, input_size=32)")
    assert.error_matches(function() lstm:step(gl.randn{ 5, 8, 32 }) end,
      "LSTM: a step's input must be 2-d (batch, input_size=32), got shape {5, 8, 32}")
    assert.error_matches(function() lstm:step(gl.randn{ 8, 31 }) end,
      "LSTM: input has 31 features, the layer expects 32 (input shape {8, 31})")
    assert.error_matches(function() lstm(gl.randn{ 0, 8, 32 }) end, "LSTM: the sequence is empty")
    assert.error_matches(function() lstm("x") end, "LSTM: bad argument #1 (input tensor expected, got string)")
  end)

  it("reject states of the wrong shape or form", function()
    local x = gl.randn{ 5, 8, 32 }
    assert.error_matches(function() lstm(x, { gl.randn{ 4, 16 }, gl.randn{ 8, 16 } }) end,
      "LSTM: state h has shape {4, 16}, expected {8, 16} (batch 8 of input shape {5, 8, 32}, hidden size 16)")
    assert.error_matches(function() lstm(x, { gl.randn{ 8, 16 }, gl.randn{ 8, 17 } }) end,
      "LSTM: state c has shape {8, 17}, expected {8, 16}")
    assert.error_matches(function() lstm(x, gl.randn{ 8, 16 }) end, "LSTM: state must be a table {h, c}, got a tensor")
    assert.error_matches(function() nn.GRU(32, 16)(x, { gl.randn{ 8, 16 } }) end, "GRU: state must be a tensor, got table")
    assert.error_matches(function() nn.RNN(32, 16, { num_layers = 2 })(x, gl.randn{ 8, 16 }) end,
      "RNN: state has shape {8, 16}, expected {2, 8, 16} (num_layers 2, batch 8")
    assert.error_matches(function() lstm:step(x:select(1, 1), { gl.randn{ 3, 16 }, gl.randn{ 8, 16 } }) end,
      "LSTM: state h has shape {3, 16}, expected {8, 16}")
  end)

  it("check constructor arguments", function()
    assert.error_matches(function() nn.LSTM(0, 4) end, "LSTM: bad argument #1 (input_size must be positive, got 0)")
    assert.error_matches(function() nn.GRU(3, 2.5) end, "GRU: bad argument #2 (hidden_size must be an integer, got 2.5)")
    assert.error_matches(function() nn.RNN(3, 4, { nonlinearity = "sigmoid" }) end,
      "RNN: nonlinearity must be \"tanh\" or \"relu\", got sigmoid")
    assert.error_matches(function() nn.LSTM(3, 4, { nonlinearity = "relu" }) end, "LSTM: unknown option 'nonlinearity'")
    assert.error_matches(function() nn.LSTM(3, 4, { num_layers = 0 }) end, "num_layers must be positive")
    assert.error_matches(function() nn.GRU(3, 4, { dropout = 2 }) end, "GRU: dropout must be a number in [0, 1], got 2")
  end)
end)

-- Issue 6: the adding problem (Hochreiter & Schmidhuber 1997; T = 50).  Each step carries two
-- rows: a value from U(0, 1) and a marker; exactly two markers are 1, one in each half of the
-- sequence, and the target is the sum of the two marked values.  Predicting the mean 1 gives
-- MSE = Var(U + U) = 1/6 ≈ 0.167: a model must carry the marked values across up to 49 steps.
describe("adding problem (T = 50)", function()
  local T, B, H, steps, lr = 50, 64, 32, 800, 2e-2

  local function adding_batch(n)
    local values = gl.rand{ T, n, 1 }
    local first = gl.randint(1, T // 2, { n }):totable()
    local second = gl.randint(T // 2 + 1, T, { n }):totable()
    local marks = gl.zeros{ T, n, 1 }
    for b = 1, n do
      marks:set(1, first[b], b, 1)
      marks:set(1, second[b], b, 1)
    end
    return gl.cat({ values, marks }, 3), (values * marks):sum(1)   -- x (T, n, 2), y (n, 1)
  end

  -- Trains layer + Linear(H, 1) on the last h with Adam for `steps` fresh batches; returns the
  -- MSE on 1000 new sequences.
  local function train(name)
    gl.manual_seed(1)
    local rnn, head = nn[name](2, H), nn.Linear(H, 1)
    local list = rnn:parameters()
    for _, p in ipairs(head:parameters()) do list[#list + 1] = p end
    local opt = gl.optim.Adam(list, { lr = lr })
    local function last_h(state) return name == "LSTM" and state[1] or state end
    for _ = 1, steps do
      local x, y = adding_batch(B)
      local _, state = rnn(x)
      local loss = gl.loss.mse(head(last_h(state)), y)
      opt:zero_grad()
      loss:backward()
      opt:step()
    end
    local x, y = adding_batch(1000)
    return gl.no_grad(function()
      local _, state = rnn(x)
      return gl.loss.mse(head(last_h(state)), y):item()
    end)
  end

  it("is learnt by an LSTM (MSE < 0.05) but not by a tanh RNN (MSE > 0.1) with the same budget", function()
    local lstm_mse = train("LSTM")
    local rnn_mse = train("RNN")
    assert.is_true(lstm_mse < 0.05, "LSTM MSE " .. lstm_mse)
    assert.is_true(rnn_mse > 0.1, "RNN MSE " .. rnn_mse)
  end)
end)
