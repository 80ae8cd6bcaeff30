-- gradlab.nn_recurrent — the recurrent modules, added to gl.nn:
--
--   nn.RNN(input_size, hidden_size [, options])    options.nonlinearity = "tanh" (default) | "relu"
--   nn.LSTM(input_size, hidden_size [, options])
--   nn.GRU(input_size, hidden_size [, options])
--     options: num_layers = 1, bias = true, batch_first = false, dropout = 0 (between layers,
--              training only), init = NAME | function (every weight matrix), init_hh = NAME |
--              function (the recurrent matrices only; overrides init for them), bias_init =
--              number | NAME | function.  Defaults are PyTorch's: every weight and bias
--              U(-1/sqrt(hidden), 1/sqrt(hidden)).
--   nn.RNNCell, nn.LSTMCell, nn.GRUCell(input_size, hidden_size [, {bias, nonlinearity, init,
--              init_hh, bias_init}]): one step, called as m(x_t, state).
--
-- Calls (T = seq_len, B = batch, H = hidden_size, L = num_layers):
--   y, state = m(x [, state])        x (T, B, input_size), or (B, T, input_size) with batch_first;
--                                    y (T, B, H) (or (B, T, H)): the last layer's h at every step
--   h, state = m:step(x_t [, state]) x_t (B, input_size); h (B, H): the last layer's new h
--
-- The state: for RNN and GRU a tensor h, for LSTM a table {h, c}.  With num_layers = 1,
-- h and c are (B, H) (PyTorch's (1, B, H) is accepted too); with L > 1 they are (L, B, H),
-- layer 1 first, as PyTorch's h_n.  A nil state means zeros.  The state returned has the same
-- format, so `y, state = m(x, state)` carries it across chunks of a long sequence.
--
-- Parameters follow PyTorch's names and layouts, so weights move between the two through
-- .npy: weight_ih (G*H, in), weight_hh (G*H, H), bias_ih, bias_hh (G*H), G = 1 (RNN),
-- 4 (LSTM: gates i, f, g, o) or 3 (GRU: r, z, n).  With num_layers > 1 every name takes the
-- layer's suffix as PyTorch has it: weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0,
-- weight_ih_l1, ...  The kernels are in C (engine/rnn.c, behind gl.rnn, gl.lstm, gl.gru and the
-- *_cell functions): one graph node per layer and call, with a fused backward through time.
return function(gl, nn)
  local class = nn.class
  local check = require "gradlab.nn_check"
  local shape_text = check.shape_text

  -- Constructor errors point at the user's call: level 5 from a check called by setup
  -- (check → setup → init → class __call → caller), 4 from setup itself.
  local gate_count = { RNN = 1, LSTM = 4, GRU = 3 }

  -- gl.init.apply raises at a level meant for layers that call it from init; from here the
  -- message is re-raised at the user's call (level 5, as the checks above), without the
  -- position it carried.
  local function apply_init(layer, option, t, what)
    local ok, message = pcall(gl.init.apply, layer, option, t, what)
    if not ok then error((tostring(message):gsub("^[^:]*:%d+: ", "")), 5) end
  end

  -- Shared set-up of the sequence and cell modules: sizes, options, parameters.
  local function setup(self, layer, input_size, hidden_size, options, known)
    self.input_size = check.integer(layer, 1, input_size, "input_size", 5)
    self.hidden_size = check.integer(layer, 2, hidden_size, "hidden_size", 5)
    options = check.options(layer, 3, options, known, 5)
    self.mode = layer:gsub("Cell$", "")
    if self.mode == "RNN" then
      local nonlinearity = options.nonlinearity or "tanh"
      if nonlinearity ~= "tanh" and nonlinearity ~= "relu" then
        error(("%s: nonlinearity must be \"tanh\" or \"relu\", got %s"):format(layer, tostring(nonlinearity)), 4)
      end
      self.nonlinearity = nonlinearity
    end
    self.num_layers = options.num_layers == nil and 1 or check.integer(layer, 3, options.num_layers, "num_layers", 5)
    self.bias = options.bias ~= false
    self.batch_first = options.batch_first == true
    local dropout = options.dropout == nil and 0 or options.dropout
    if type(dropout) ~= "number" or not (dropout >= 0 and dropout <= 1) then
      error(("%s: dropout must be a number in [0, 1], got %s"):format(layer, tostring(dropout)), 4)
    end
    self.dropout = dropout

    local G, H = gate_count[self.mode], self.hidden_size
    local bound = 1 / math.sqrt(H)
    local function uniform(shape) return gl.init.uniform(gl.empty(shape), -bound, bound) end
    self._names = {}
    for l = 1, self.num_layers do
      local suffix = self.num_layers == 1 and "" or ("_l" .. (l - 1))
      local names = { w_ih = "weight_ih" .. suffix, w_hh = "weight_hh" .. suffix }
      local in_features = l == 1 and self.input_size or H
      self:register_parameter(names.w_ih, uniform{ G * H, in_features })
      self:register_parameter(names.w_hh, uniform{ G * H, H })
      apply_init(layer, options.init, self[names.w_ih], "init")
      apply_init(layer, options.init_hh or options.init, self[names.w_hh], options.init_hh and "init_hh" or "init")
      if self.bias then
        names.b_ih, names.b_hh = "bias_ih" .. suffix, "bias_hh" .. suffix
        self:register_parameter(names.b_ih, uniform{ G * H })
        self:register_parameter(names.b_hh, uniform{ G * H })
        apply_init(layer, options.bias_init, self[names.b_ih], "bias_init")
        apply_init(layer, options.bias_init, self[names.b_hh], "bias_init")
      end
      self._names[l] = names
    end
  end

  local function extra_repr(self)
    local text = ("%d, %d"):format(self.input_size, self.hidden_size)
    if self.nonlinearity and self.nonlinearity ~= "tanh" then text = text .. ", nonlinearity=" .. self.nonlinearity end
    if self.num_layers ~= 1 then text = text .. ", num_layers=" .. self.num_layers end
    if not self.bias then text = text .. ", bias=false" end
    if self.batch_first then text = text .. ", batch_first=true" end
    if self.dropout ~= 0 then text = text .. (", dropout=%g"):format(self.dropout) end
    return text
  end

  -- State checks ------------------------------------------------------------
  -- Errors from the forward checks point at the user's call: level 4 (helper → forward →
  -- Module.__call → caller); :step passes its own level.

  -- One state tensor (h or c) against batch B: (B, H), or (L, B, H) ((1, B, H) for L = 1).
  local function state_tensor_check(self, t, what, B, x, level)
    local H, L, layer = self.hidden_size, self.num_layers, getmetatable(self).__name
    if not gl.is_tensor(t) then
      error(("%s: %s must be a tensor, got %s"):format(layer, what, type(t)), level)
    end
    local shape = t:shape()
    local fits
    if L == 1 then
      fits = (#shape == 2 and shape[1] == B and shape[2] == H)
          or (#shape == 3 and shape[1] == 1 and shape[2] == B and shape[3] == H)
    else
      fits = #shape == 3 and shape[1] == L and shape[2] == B and shape[3] == H
    end
    if not fits then
      local expected = L == 1 and ("{%d, %d}"):format(B, H) or ("{%d, %d, %d}"):format(L, B, H)
      local detail = L == 1 and "" or ("num_layers %d, "):format(L)
      error(("%s: %s has shape %s, expected %s (%sbatch %d of input shape %s, hidden size %d)")
        :format(layer, what, shape_text(shape), expected, detail, B, shape_text(x:shape()), H), level)
    end
  end

  -- h and c (nil for non-LSTM) of a state argument, checked.
  local function state_check(self, state, B, x, level)
    if state == nil then return nil, nil end
    local layer = getmetatable(self).__name
    if self.mode == "LSTM" then
      if type(state) ~= "table" then
        error(("%s: state must be a table {h, c}, got %s"):format(layer, gl.is_tensor(state) and "a tensor" or type(state)), level)
      end
      local h, c = state[1], state[2]
      if h == nil and c == nil then h, c = state.h, state.c end
      if h ~= nil then state_tensor_check(self, h, "state h", B, x, level + 1) end
      if c ~= nil then state_tensor_check(self, c, "state c", B, x, level + 1) end
      return h, c
    end
    state_tensor_check(self, state, "state", B, x, level + 1)
    return state, nil
  end

  -- Layer l's slice of a state tensor (nil stays nil).
  local function layer_state(self, t, l)
    if t == nil then return nil end
    if t:dim() == 3 then return t:select(1, l) end
    return t
  end

  local function pack_state(self, hs, cs)
    local h = self.num_layers == 1 and hs[1] or gl.stack(hs, 1)
    if self.mode ~= "LSTM" then return h end
    return { h, self.num_layers == 1 and cs[1] or gl.stack(cs, 1) }
  end

  -- Sequence modules ----------------------------------------------------------
  local sequence_options = { num_layers = true, bias = true, batch_first = true, dropout = true,
                             init = true, init_hh = true, bias_init = true }
  local rnn_options = { nonlinearity = true }
  for key in pairs(sequence_options) do rnn_options[key] = true end

  local function input_check(self, x, level)
    local layer = getmetatable(self).__name
    if not gl.is_tensor(x) then
      error(("%s: bad argument #1 (input tensor expected, got %s)"):format(layer, type(x)), level)
    end
    local layout = self.batch_first and "batch, seq_len" or "seq_len, batch"
    if x:dim() ~= 3 then
      error(("%s: input must be 3-d (%s, input_size=%d), got shape %s (for one time step use m:step(x_t, state))")
        :format(layer, layout, self.input_size, shape_text(x:shape())), level)
    end
    if x:size(3) ~= self.input_size then
      error(("%s: input has %d features, the layer expects %d (input shape %s)")
        :format(layer, x:size(3), self.input_size, shape_text(x:shape())), level)
    end
    if x:size(self.batch_first and 2 or 1) == 0 then
      error(("%s: the sequence is empty (input shape %s, %s)"):format(layer, shape_text(x:shape()), layout), level)
    end
  end

  local function sequence_forward(self, x, state)
    input_check(self, x, 4)
    local input = self.batch_first and x:transpose(1, 2) or x   -- (T, B, in) for the kernels
    local h, c = state_check(self, state, input:size(2), x, 4)
    local hs, cs = {}, {}
    for l = 1, self.num_layers do
      local p = self._names[l]
      local w_ih, w_hh, b_ih, b_hh = self[p.w_ih], self[p.w_hh], self[p.b_ih], self[p.b_hh]
      local h0 = layer_state(self, h, l)
      local y
      if self.mode == "LSTM" then
        y, hs[l], cs[l] = gl.lstm(input, h0, layer_state(self, c, l), w_ih, w_hh, b_ih, b_hh)
      elseif self.mode == "GRU" then
        y, hs[l] = gl.gru(input, h0, w_ih, w_hh, b_ih, b_hh)
      else
        y, hs[l] = gl.rnn(input, h0, w_ih, w_hh, b_ih, b_hh, self.nonlinearity)
      end
      if l < self.num_layers and self.dropout > 0 and self.training then y = gl.dropout(y, self.dropout, true) end
      input = y
    end
    if self.batch_first then input = input:transpose(1, 2) end
    return input, pack_state(self, hs, cs)
  end

  -- One step through every layer: x_t (B, input_size) → h (B, H) of the last layer, state.
  local function step_all(self, x, state, level)
    local layer = getmetatable(self).__name
    if not gl.is_tensor(x) then
      error(("%s: bad argument #1 (input tensor expected, got %s)"):format(layer, type(x)), level)
    end
    if x:dim() ~= 2 then
      error(("%s: a step's input must be 2-d (batch, input_size=%d), got shape %s%s")
        :format(layer, self.input_size, shape_text(x:shape()),
                x:dim() == 3 and " (call the module itself on a whole sequence)" or ""), level)
    end
    if x:size(2) ~= self.input_size then
      error(("%s: input has %d features, the layer expects %d (input shape %s)")
        :format(layer, x:size(2), self.input_size, shape_text(x:shape())), level)
    end
    local h, c = state_check(self, state, x:size(1), x, level + 1)
    local hs, cs = {}, {}
    local input = x
    for l = 1, self.num_layers do
      local p = self._names[l]
      local w_ih, w_hh, b_ih, b_hh = self[p.w_ih], self[p.w_hh], self[p.b_ih], self[p.b_hh]
      local h0 = layer_state(self, h, l)
      if self.mode == "LSTM" then
        hs[l], cs[l] = gl.lstm_cell(input, h0, layer_state(self, c, l), w_ih, w_hh, b_ih, b_hh)
      elseif self.mode == "GRU" then
        hs[l] = gl.gru_cell(input, h0, w_ih, w_hh, b_ih, b_hh)
      else
        hs[l] = gl.rnn_cell(input, h0, w_ih, w_hh, b_ih, b_hh, self.nonlinearity)
      end
      input = hs[l]
      if l < self.num_layers and self.dropout > 0 and self.training then input = gl.dropout(input, self.dropout, true) end
    end
    return hs[self.num_layers], pack_state(self, hs, cs)
  end

  -- m:step(x_t, state) records the module path as a call does (for anomaly messages).
  local module_path = gl._module_path
  local function step(self, x, state)
    if not self._paths_ready then self:_assign_paths() end
    local previous = module_path(self._path)
    local h, new_state = step_all(self, x, state, 3)
    module_path(previous)
    return h, new_state
  end

  for _, name in ipairs { "RNN", "LSTM", "GRU" } do
    local cls = class(name)
    local known = name == "RNN" and rnn_options or sequence_options
    function cls:init(input_size, hidden_size, options)
      setup(self, name, input_size, hidden_size, options, known)
    end
    cls.forward = sequence_forward
    cls.step = step
    cls.extra_repr = extra_repr
  end

  -- Cell modules ----------------------------------------------------------------
  local cell_options = { bias = true, init = true, init_hh = true, bias_init = true }
  local rnn_cell_options = { nonlinearity = true }
  for key in pairs(cell_options) do rnn_cell_options[key] = true end

  for _, name in ipairs { "RNNCell", "LSTMCell", "GRUCell" } do
    local cls = class(name)
    local known = name == "RNNCell" and rnn_cell_options or cell_options
    function cls:init(input_size, hidden_size, options)
      setup(self, name, input_size, hidden_size, options, known)
    end
    -- m(x_t [, state]) → h, state, as m:step of the sequence modules.
    function cls:forward(x, state)
      local h, new_state = step_all(self, x, state, 4)   -- not a tail call: the error levels count this frame
      return h, new_state
    end
    cls.step = step
    cls.extra_repr = extra_repr
  end

  return nn
end
