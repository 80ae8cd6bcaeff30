-- spec/robust/train_small.lua — a short training that touches most of the engine, run by
-- `make check` under valgrind (--leak-check=full): it must end with 0 bytes definitely lost.
-- Also usable by hand: `build/gradlab spec/robust/train_small.lua [out-dir]`.
local out = arg and arg[1] or os.tmpname()
os.remove(out)
os.execute("mkdir -p '" .. out .. "'")

gl.manual_seed(7)
local nn, optim = gl.nn, gl.optim
local x, y = gl.data.spirals(64, 2)
local model = nn.Sequential{ nn.Linear(2, 16), nn.Tanh(), nn.LayerNorm(16), nn.Linear(16, 16),
                             nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 2) }
local opt = optim.Adam(model:parameters(), { lr = 1e-2, weight_decay = 1e-4 })
local sched = optim.cosine(opt, 20)
local mon = gl.monitor(model)
local loader = gl.data.loader(x, y, { batch = 16 })
local step = 0
for _ = 1, 3 do
  for xb, yb in loader:epoch() do
    step = step + 1
    opt:zero_grad()
    local loss = gl.loss.cross_entropy(model(xb), yb)
    loss:backward()
    optim.clip_grad_norm(model:parameters(), 5)
    mon:record(step, { loss = loss:item() })
    opt:step()
    sched:step()
  end
end

-- Other layers and ops, forward and backward once.
local conv = nn.Conv2d(1, 2, 3, { padding = 1 })
local img = gl.randn{2, 1, 5, 5}
local pooled = nn.MaxPool2d(2)(conv(img))
pooled:sum():backward()
local rnn = nn.LSTM(3, 4)
local seq_out = rnn(gl.randn{4, 2, 3})
seq_out:pow(2):mean():backward()
local gru = nn.GRU(3, 4)
gru(gl.randn{3, 2, 3}):sum():backward()
local emb = nn.Embedding(10, 8)
local attn = nn.MultiheadAttention(8, 2)
local tokens = emb(gl.tensor{{1, 2, 3}, {4, 5, 6}})
attn(tokens):pow(2):sum():backward()
local a = gl.param(gl.randn{3, 4})
local b = (a:matmul(a:t()) + 1):log():abs():sqrt()
gl.cat({ b, b * 2 }, 1):sum():backward()
assert(a.grad and a.grad:numel() == 12)

-- Files: .npy, .npz, CSV, the monitor CSV and a figure.
gl.save(out .. "/w.npy", model:parameters()[1])
local w = gl.load(out .. "/w.npy")
assert(w:numel() == 32)
local state = {}
for _, p in ipairs(model:named_parameters()) do state[p[1]] = p[2] end
gl.save_state(out .. "/model.npz", state)
local back = gl.load_state(out .. "/model.npz")
assert(back["1.weight"]:numel() == 32)
local f = assert(io.open(out .. "/d.csv", "w"))
f:write("a,b\n1,2\n3,4\n")
f:close()
assert(gl.data.csv(out .. "/d.csv"):numel() == 4)
mon:to_csv(out .. "/monitor.csv")
local again = gl.monitor_from_csv(out .. "/monitor.csv")
assert(#again.records == step)
mon:plot(out .. "/lines.png", { kind = "lines", width = 320, height = 240 })
assert(#tostring(mon:summary()) > 0)

-- Errors raised from C and caught must not leak either.
for _, bad in ipairs {
  function() return gl.zeros{2, 3}:matmul(gl.zeros{4, 5}) end,
  function() return gl.load(out .. "/missing.npy") end,
  function() return gl.zeros{-1} end,
  function() return gl.loss.cross_entropy(gl.zeros{2, 3}, gl.tensor{1, 9}) end,
} do
  assert(not pcall(bad))
end

os.execute("rm -rf '" .. out .. "'")
print(("train_small: %d steps, final loss %.4f"):format(step, mon.records[#mon.records].loss))
