-- spec/monitor_spec.lua — engine/monitor.c and bindings/gradlab/monitor*.lua: statistics
-- against hand computations, warnings, clipping, CSV round trip, figures and the CLI.
local gl = require "gradlab"
local nn = gl.nn

local function tmpdir()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  return dir
end

local function rms(t) return (t * t):mean():sqrt():item() end

describe("tensor statistics", function()
  it("count zeros, saturation and non-finite values in one pass", function()
    local s = gl.tensor{0, 1, -2, 0.995, 0 / 0, 1 / 0}:stats(-0.99, 0.99)
    assert.equal(6, s.count)
    assert.equal(2, s.nonfinite)
    assert.equal(1, s.zeros)
    assert.equal(3, s.saturated)   -- 1, -2 and 0.995 lie outside [-0.99, 0.99]
    assert.near(0 + 1 - 2 + 0.995, s.sum, 1e-6)
    assert.near(math.sqrt(1 + 4 + 0.995 ^ 2), s.norm, 1e-6)
    assert.equal(2, s.max_abs)
  end)

  it("count values on the band's edges as inside, at every lane position", function()
    -- The fast pass counts the inside (low <= v <= high) and turns it around.
    for _, n in ipairs{5, 40, 100, 1100} do
      local values, outside, zeros = {}, 0, 0
      for i = 1, n do
        local v = ({-0.5, -0.25, 0, 0.75, -0.5000001, 0.7500001, 0.1})[i % 7 + 1]
        values[i] = v
        if v < -0.5 or v > 0.75 then outside = outside + 1 end
        if v == 0 then zeros = zeros + 1 end
      end
      local s = gl.tensor(values):stats(-0.5, 0.75)
      assert.equal(outside, s.saturated)
      assert.equal(zeros, s.zeros)
    end
  end)

  it("work on strided views and large tensors", function()
    local t = gl.arange(0, 20000):view{100, 200}:t()
    local s = t:stats()
    assert.near(20000 * 19999 / 2, s.sum, 1)
    assert.equal(1, s.zeros)
    assert.near(t:norm():item(), s.norm, s.norm * 1e-6)
  end)
end)

describe("the monitor", function()
  local function small_model()
    gl.manual_seed(3)
    return nn.Sequential{nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)}
  end

  it("records parameter and module statistics equal to hand computations", function()
    local model = small_model()
    local mon = gl.monitor(model)
    local x, y = gl.randn{16, 4}, gl.randint(1, 3, {16})
    -- the same forward by hand, keeping what we compare with
    local h1 = model:get(1)(x):retain_grad()
    local a1 = model:get(2)(h1)
    local loss = gl.loss.cross_entropy(model:get(3)(a1), y)
    model:zero_grad()
    loss:backward()
    local w1_grad, h1_grad = model:get(1).weight.grad:clone(), h1.grad:clone()
    -- now through the model, as a user would
    model:zero_grad()
    gl.loss.cross_entropy(model(x), y):backward()
    local rec = mon:record(1, {loss = loss})
    local p = rec.params["1.weight"]
    assert.near(w1_grad:norm():item(), p.grad_norm, 1e-5)
    assert.near(w1_grad:mean():item(), p.grad_mean, 1e-6)
    assert.near(w1_grad:abs():max():item(), p.grad_max, 1e-6)
    local m1 = rec.modules["1"]
    assert.near(h1:mean():item(), m1.act_mean, 1e-5)
    assert.near(math.sqrt(((h1 - h1:mean()) ^ 2):mean():item()), m1.act_std, 1e-5)
    assert.near(h1_grad:norm():item(), m1.grad_out_norm, 1e-6)
    local m2 = rec.modules["2"]
    assert.near(a1:abs():gt(0.99):mean():item(), m2.act_sat_frac, 1e-6)
    assert.is_nil(m1.act_sat_frac)   -- a Linear output has no saturation band
    assert.near(loss:item(), rec.loss, 1e-6)
  end)

  it("records the update ratio of the optimizer step that follows", function()
    local model = small_model()
    local opt = gl.optim.Adam(model, {lr = 0.01})
    local mon = gl.monitor(model)
    local x, y = gl.randn{8, 4}, gl.randint(1, 3, {8})
    local w = model:get(3).weight
    gl.loss.cross_entropy(model(x), y):backward()
    mon:record(1)
    local before = w:clone()
    opt:step()
    local expected = (w - before):norm():item() / before:norm():item()
    assert.near(expected, mon.records[1].params["3.weight"].update_ratio, expected * 1e-4)
    local xs, ys = mon:series("3.weight", "update_ratio")
    assert.same({1}, xs)
  end)

  it("records every k-th step only", function()
    local model = small_model()
    local mon = gl.monitor(model, {every = 3})
    local x, y = gl.randn{8, 4}, gl.randint(1, 3, {8})
    for step = 1, 10 do
      model:zero_grad()
      gl.loss.cross_entropy(model(x), y):backward()
      mon:record(step)
    end
    local steps = {}
    for i, rec in ipairs(mon.records) do steps[i] = rec.step end
    assert.same({3, 6, 9}, steps)
    assert.is_not_nil(mon.records[1].modules["1"].grad_out_norm)
  end)

  it("warns at the first exploding and non-finite step of a deliberately exploding net", function()
    gl.manual_seed(5)
    local layers = {}
    for _ = 1, 6 do layers[#layers + 1] = nn.Linear(16, 16); layers[#layers + 1] = nn.Tanh() end
    layers[#layers + 1] = nn.Linear(16, 1)
    local model = nn.Sequential(layers)
    local opt = gl.optim.SGD(model, {lr = 10})
    local mon = gl.monitor(model, {explode = 50})
    local x, y = gl.randn{32, 16}, gl.randn{32, 1} * 100
    for step = 1, 40 do
      opt:zero_grad()
      gl.loss.mse(model(x), y):backward()
      mon:record(step)
      opt:step()
    end
    local warnings = mon:warnings()
    assert.is_true(#warnings > 0)
    -- each warning's step is the first recorded step where its condition held
    for _, w in ipairs(warnings) do
      if w.kind == "exploding" then
        local xs, ys = mon:series(w.name, "grad_norm")
        local first
        for i = 1, #xs do if ys[i] > 50 then first = xs[i]; break end end
        assert.equal(first, w.step)
      end
    end
    assert.truthy(tostring(warnings):find("exploding", 1, true))
  end)

  it("warns about vanishing gradients and names the parameter", function()
    gl.manual_seed(6)
    local layers = {}
    for _ = 1, 12 do layers[#layers + 1] = nn.Linear(16, 16, {init = function(t) gl.init.normal(t, 0, 0.05) end}); layers[#layers + 1] = nn.Sigmoid() end
    local model = nn.Sequential(layers)
    local mon = gl.monitor(model, {vanish = 1e-9})
    model(gl.randn{8, 16}):sum():backward()
    mon:record(1)
    local found = false
    for _, w in ipairs(mon:warnings()) do
      if w.kind == "vanishing" and w.name == "1.weight" then found = w.step == 1 end
    end
    assert.is_true(found, tostring(mon:warnings()))
  end)

  it("trips on the first non-finite value, with its module and direction", function()
    local model = nn.Sequential{nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)}
    local mon = gl.monitor(model)
    gl.no_grad(function() model:get(3).bias:fill(1 / 0) end)
    model(gl.ones{1, 2}):sum():backward()
    mon:record(7)
    local forward
    for _, w in ipairs(mon:warnings()) do
      if w.kind == "non-finite" and w.direction == "forward" then forward = w end
    end
    assert.is_not_nil(forward)
    assert.equal("3", forward.name)
    assert.equal(7, forward.step)
  end)

  it("records clipping: the norm before and after, and the clipped fraction", function()
    local model = small_model()
    local opt = gl.optim.SGD(model, {lr = 0.1})
    local mon = gl.monitor(model)
    local x, y = gl.randn{8, 4}, gl.randint(1, 3, {8})
    for step = 1, 4 do
      opt:zero_grad()
      gl.loss.cross_entropy(model(x), y):backward()
      local total = gl.optim.clip_grad_norm(model, step <= 2 and 1e-3 or 1e3)
      mon:record(step)
      assert.near(total, mon.records[step].clip.pre, 1e-9)
      opt:step()
    end
    assert.is_true(mon.records[1].clip.clipped)
    assert.near(1e-3, mon.records[1].clip.post, 1e-6)
    assert.is_false(mon.records[4].clip.clipped)
    assert.equal(0.5, mon:summary().clipped_fraction)
  end)

  it("summarizes first vs last layer and draws sparklines", function()
    local model = small_model()
    local mon = gl.monitor(model)
    for step = 1, 3 do
      model:zero_grad()
      model(gl.randn{4, 4}):sum():backward()
      mon:record(step)
    end
    local s = mon:summary()
    assert.equal("1.weight", s.first_layer)
    assert.equal("3.weight", s.last_layer)
    assert.near(s.rows[1].last / s.rows[2].last, s.ratio_last, 1e-9)
    assert.truthy(tostring(s):find("first/last layer ratio", 1, true))
    local lines = {}
    for line in mon:sparkline():gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(3, #lines)   -- two layers and the scale line
    assert.truthy(lines[1]:find("1.weight", 1, true))
  end)

  it("rejects bad arguments", function()
    assert.error_matches(function() gl.monitor(5) end, "monitor", "module")
    assert.error_matches(function() gl.monitor(small_model(), {every = 0}) end, "monitor", "every")
    local mon = gl.monitor(small_model())
    assert.error_matches(function() mon:record("x") end, "record", "step")
    assert.error_matches(function() mon:series("nope") end, "series", "nope")
    assert.error_matches(function() mon:plot("/tmp/x.png") end, "plot", "nothing recorded")
  end)
end)

describe("the recorder (values in C columns)", function()
  local function model_of(seed)
    gl.manual_seed(seed)
    return nn.Sequential{nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 6), nn.Sigmoid(), nn.Linear(6, 3)}
  end

  -- What a record should hold, computed with tensor ops from outputs a user
  -- hook kept (user hooks run beside the monitor's taps).
  local function capture(model)
    local outputs = {}
    for i = 1, model:size() do
      model:get(i):register_forward_hook(function(_, out) outputs[tostring(i)] = out:retain_grad() end)
    end
    return outputs
  end

  local function expect_module(r, out, band)
    local n = out:numel()
    local mean = out:mean():item()
    assert.near(mean, r.act_mean, 1e-5)
    assert.near(math.sqrt(((out - mean) ^ 2):mean():item()), r.act_std, 1e-5)
    assert.near(out:eq(0):sum():item() / n, r.act_zero_frac, 1e-12)
    if band then
      local sat = out:lt(band[1]):sum():item() + out:gt(band[2]):sum():item()
      assert.near(sat / n, r.act_sat_frac, 1e-12)
    else
      assert.is_nil(r.act_sat_frac)
    end
    assert.near(out.grad:norm():item(), r.grad_out_norm, 1e-5 * (1 + r.grad_out_norm))
  end

  it("records what a hand computation gives, step after step, with the update ratio of each step", function()
    local model = model_of(11)
    local outputs = capture(model)
    local opt = gl.optim.SGD(model, {lr = 0.1, momentum = 0.9})
    local mon = gl.monitor(model)
    local x, y = gl.randn{9, 5}, gl.randint(1, 3, {9})
    local bands = { ["2"] = {-0.99, 0.99}, ["4"] = {0.01, 0.99} }
    for step = 1, 4 do
      local loss = gl.loss.cross_entropy(model(x), y)
      opt:zero_grad()
      loss:backward()
      local rec = mon:record(step, {loss = loss})
      assert.equal(step, rec.step)
      assert.near(loss:item(), rec.loss, 1e-6)
      for _, entry in ipairs(model:named_parameters()) do
        local name, g = entry[1], entry[2].grad
        local r = rec.params[name]
        assert.near(g:norm():item(), r.grad_norm, 1e-5 * (1 + r.grad_norm))
        assert.near(g:mean():item(), r.grad_mean, 1e-6)
        assert.near(g:abs():max():item(), r.grad_max, 1e-7)
        assert.is_nil(r.update_ratio)   -- not stepped yet
      end
      for path, out in pairs(outputs) do expect_module(rec.modules[path], out, bands[path]) end
      local before = {}
      for _, entry in ipairs(model:named_parameters()) do before[entry[1]] = entry[2]:clone() end
      opt:step()
      for _, entry in ipairs(model:named_parameters()) do
        local name, p = entry[1], entry[2]
        local expected = (p - before[name]):norm():item() / before[name]:norm():item()
        -- the record already handed out sees the step that followed it
        assert.near(expected, rec.params[name].update_ratio, expected * 1e-4)
        assert.near(expected, mon.records[step].params[name].update_ratio, expected * 1e-4)
      end
    end
    assert.equal(4, #mon.records)
    local n = 0
    for i, rec in ipairs(mon.records) do n = n + 1; assert.equal(i, rec.step) end
    assert.equal(4, n)
    assert.equal(mon.records[2], mon.records[2])   -- the same table while it is referenced
  end)

  it("keeps every k-th step, and drops the activations of steps it does not keep", function()
    local model = model_of(12)
    local outputs = capture(model)
    local mon = gl.monitor(model, {every = 2})
    local x = gl.randn{4, 5}
    for step = 1, 6 do
      model:zero_grad()
      model(x * step):sum():backward()
      local rec = mon:record(step)
      if step % 2 == 1 then assert.is_nil(rec)
      else expect_module(rec.modules["2"], outputs["2"], {-0.99, 0.99}) end
    end
    local steps = {}
    for i, rec in ipairs(mon.records) do steps[i] = rec.step end
    assert.same({2, 4, 6}, steps)
  end)

  it("records no modules with activations = false, and stops watching after remove()", function()
    local model = model_of(13)
    local mon = gl.monitor(model, {activations = false})
    model(gl.randn{3, 5}):sum():backward()
    local rec = mon:record(1)
    assert.is_nil(next(rec.modules))
    assert.is_not_nil(rec.params["1.weight"].grad_norm)
    local other = gl.monitor(model)
    assert.equal(1, #model:get(1)._taps)   -- only the monitor watching activations taps modules
    other:remove()
    assert.is_nil(model:get(1)._taps)
    model:zero_grad()
    model(gl.randn{3, 5}):sum():backward()
    assert.is_nil(next(other:record(2).modules))   -- still records parameters, no more modules
    assert.equal(1, #other.records[1] and 1)
  end)

  it("lets several monitors watch different models (and the same one) side by side", function()
    local a, b = model_of(14), model_of(15)
    local ma, mb, mb2 = gl.monitor(a), gl.monitor(b), gl.monitor(b, {vanish = 1e-30})
    local oa, ob = gl.optim.Adam(a, {lr = 0.01}), gl.optim.RMSprop(b, {lr = 0.01})
    local x = gl.randn{6, 5}
    for step = 1, 3 do
      oa:zero_grad(); ob:zero_grad()
      a(x):sum():backward()
      b(x):pow(2):sum():backward()
      ma:record(step); mb:record(step); mb2:record(step)
      assert.near(a:get(5).weight.grad:norm():item(), ma.records[step].params["5.weight"].grad_norm, 1e-5)
      assert.near(b:get(5).weight.grad:norm():item(), mb.records[step].params["5.weight"].grad_norm, 1e-5)
      assert.equal(mb.records[step].modules["3"].act_mean, mb2.records[step].modules["3"].act_mean)
      oa:step(); ob:step()
    end
    assert.is_not_nil(ma.records[3].params["1.weight"].update_ratio)
    -- the optimizer reports to the monitor created last on a parameter
    assert.is_not_nil(mb2.records[3].params["1.weight"].update_ratio)
  end)

  it("taps modules without forward hooks: user hooks run as before, and see what they saw", function()
    -- Module.__call hands the output to the taps in the C call that ends
    -- forward; the taps see the module's own output, before any hook.
    local model = model_of(18)
    local calls, seen = 0, nil
    model:get(2):register_forward_hook(function(m, out, input)
      calls = calls + 1
      assert.equal(model:get(2), m)
      assert.is_true(gl.is_tensor(input))
      seen = out:clone()
      return out * 0   -- replaces the output for the layers after it
    end)
    local mon = gl.monitor(model)
    assert.is_nil(model:get(2)._forward_hooks[2])   -- the monitor added no hook
    local x = gl.randn{4, 5}
    model(x):sum():backward()
    assert.equal(1, calls)
    local rec = mon:record(1)
    assert.near(seen:mean():item(), rec.modules["2"].act_mean, 1e-6)   -- tanh's output, not the zeros
    -- the next layer got the zeros: its output is its bias
    assert.near(model:get(3).bias:mean():item(), rec.modules["3"].act_mean, 1e-6)
    -- a module whose forward returns no tensor is skipped, not an error
    local Pair = nn.class("PairForTaps")
    function Pair:init() self.inner = self:register_module("inner", nn.Linear(2, 2)) end
    function Pair:forward(x) return {self.inner(x), x} end
    local pair = Pair()
    local pmon = gl.monitor(pair)
    local out = pair(gl.randn{3, 2})
    assert.equal(2, #out)
    out[1]:sum():backward()
    local prec = pmon:record(1)
    assert.is_nil(prec.modules[""])
    assert.is_not_nil(prec.modules["inner"].act_mean)
    pmon:remove()
    assert.is_nil(pair.inner._taps)
  end)

  it("lets go of a monitor nobody holds, and of a model with its monitor", function()
    local model = model_of(16)
    do gl.monitor(model) end
    collectgarbage(); collectgarbage()
    assert.is_nil(model:get(2)._taps)   -- its taps came off with it
    do
      local m = model_of(17)
      local mon = gl.monitor(m)
      m(gl.randn{2, 5}):sum():backward()
      mon:record(1)
    end
    collectgarbage(); collectgarbage()
    -- monitors that are left (none here) are told about clipping without trouble
    model(gl.randn{2, 5}):sum():backward()
    gl.optim.clip_grad_norm(model, 1)
  end)

  it("grows by the numbers it keeps over 10^4 records, not by Lua objects", function()
    local model = model_of(18)
    local opt = gl.optim.SGD(model, {lr = 1e-3})
    local mon = gl.monitor(model)
    local x, y = gl.randn{4, 5}, gl.randint(1, 3, {4})
    local function steps(from, to)
      for step = from, to do
        local loss = gl.loss.cross_entropy(model(x), y)
        opt:zero_grad()
        loss:backward()
        mon:record(step, {loss = loss})
        opt:step()
      end
    end
    steps(1, 200)
    collectgarbage(); collectgarbage()
    local lua_before, tensors_before = collectgarbage("count"), gl.memory()
    steps(201, 10000)
    collectgarbage(); collectgarbage()
    assert.equal(10000, #mon.records)
    assert.is_true(collectgarbage("count") - lua_before < 64, "Lua heap grew by " .. (collectgarbage("count") - lua_before) .. " KB")
    assert.equal(tensors_before, gl.memory())
    -- 6 parameters x 4 fields and 5 modules x 5 fields in doubles, plus flags and the step's own
    local per_record = 6 * (4 * 8 + 1) + 5 * (5 * 8 + 1) + 4 * 8 + 1
    assert.is_true(mon._rec:bytes() < 2 * 10000 * per_record + 65536, "recorder holds " .. mon._rec:bytes())
    local xs = mon:series("3", "act_mean")
    assert.equal(10000, #xs)
  end)

  it("reports bad arguments with the function and argument", function()
    local model = model_of(19)
    local mon = gl.monitor(model)
    model(gl.randn{2, 5}):sum():backward()
    assert.error_matches(function() mon:record(1, 5) end, "record", "#2")
    assert.error_matches(function() mon:record(1, {loss = "low"}) end, "record", "#2", "loss", "string")
    assert.error_matches(function() mon:record(1, {loss = gl.ones{2}}) end, "record", "#2", "one-element")
    assert.error_matches(function() mon:record(1 / 0) end, "record", "#1", "finite")
    mon:record(1, {loss = gl.tensor{0.5}})
    assert.error_matches(function() mon.records[2] = {} end, "records", "read-only")
    assert.is_nil(mon.records[2])
    assert.is_nil(mon.records[0])
    local rec = mon._rec
    assert.error_matches(function() rec:info(2) end, "bad argument #1 to 'info'", "out of range")
    assert.error_matches(function() rec:series("param", 99, "grad_norm") end, "bad argument #2 to 'series'")
    assert.error_matches(function() rec:series("param", 1, "act_mean") end, "bad argument #3 to 'series'", "act_mean")
    assert.error_matches(function() rec:series("weights", 1, "grad_norm") end, "bad argument #1 to 'series'")
    assert.error_matches(function() gl._monitor_recorder(-1, 1) end, "monitor", "vanish")
    assert.error_matches(function() gl._monitor_note_update({}, 1, 1) end, "_monitor_note_update", "#1")
    assert.error_matches(function() rec:add_param(gl.ones{2}) end, "before the first record")
    assert.equal(false, getmetatable(rec))
  end)
end)

describe("statistics kernels", function()
  -- double-precision references, summed in Lua
  local function reference(t, low, high)
    local sum, squares, top, zeros, bad, sat = 0, 0, 0, 0, 0, 0
    for _, v in ipairs(t:view{-1}:totable()) do
      if v == 0 then zeros = zeros + 1 end
      if v ~= v or v == math.huge or v == -math.huge then bad = bad + 1
      else
        sum, squares, top = sum + v, squares + v * v, math.max(top, math.abs(v))
        if low and (v < low or v > high) then sat = sat + 1 end
      end
    end
    return { sum = sum, norm = math.sqrt(squares), max_abs = top, zeros = zeros, nonfinite = bad, saturated = sat }
  end

  local function check(t, low, high)
    local s, r = t:stats(low, high), reference(t, low, high)
    assert.near(r.sum, s.sum, 1e-5 * (r.norm * math.sqrt(t:numel())) + 1e-30)
    assert.near(r.norm, s.norm, 1e-5 * r.norm)
    assert.equal(r.max_abs, s.max_abs)
    assert.equal(r.zeros, s.zeros)
    assert.equal(r.nonfinite, s.nonfinite)
    if low then assert.equal(r.saturated, s.saturated) end
  end

  it("agree with double sums at lane and block boundaries, for tiny, huge and non-finite values", function()
    gl.manual_seed(21)
    for _, n in ipairs{1, 31, 32, 33, 63, 64, 65, 1023, 1024, 1025, 3000, 4133} do
      check(gl.randn{n})
      check(gl.randn{n}:relu(), -0.5, 0.5)
      check(gl.randn{n} * 1e-25)           -- float squares would underflow
      check(gl.randn{n} * 1e25)            -- and overflow
    end
    local t = gl.randn{2050}
    t:narrow(1, 700, 1):fill(0 / 0)
    t:narrow(1, 1500, 1):fill(-1 / 0)
    check(t, -1, 1)
    check(gl.zeros{1500})
  end)

  it("take update norms in the vanishing regime, where float squares underflow", function()
    local p = gl.full({3000}, 1e-20)
    local g = gl.full({3000}, 1e-20)
    local update, weight = gl._optim_sgd(p, g, nil, 1, {lr = 0.01}, true)
    assert.near(math.sqrt(3000) * 1e-22, update, 1e-6 * update)   -- float sums would be off by far more
    assert.near(math.sqrt(3000) * 1e-20, weight, 1e-6 * weight)
    p, g = gl.randn{3000}, gl.randn{3000}
    local before = p:clone()
    update, weight = gl._optim_sgd(p, g, nil, 1, {lr = 0.01}, true)
    assert.near((p - before):norm():item(), update, 1e-5 * update)
    assert.near(before:norm():item(), weight, 1e-5 * weight)
  end)

  it("take SGD's update norms in lanes at every length, with and without momentum and decay", function()
    -- SGD's kernel adds the squares in 64 lanes per 1024-element block; a
    -- ragged tail, momentum, and decay terms each take their own loop.
    gl.manual_seed(23)
    local groups = {{lr = 0.01}, {lr = 0.01, momentum = 0.9}, {lr = 0.01, weight_decay = 0.1},
                    {lr = 0.01, momentum = 0.9, nesterov = true, l1 = 0.01}}
    for _, n in ipairs{1, 63, 64, 65, 1023, 1024, 1025, 4133} do
      for _, group in ipairs(groups) do
        local p, g = gl.randn{n}, gl.randn{n}
        local b = group.momentum and gl.randn{n} or nil
        local before, q, c = p:clone(), p:clone(), b and b:clone()
        local update, weight = gl._optim_sgd(p, g, b, 2, group, true)
        local delta = (p - before):norm():item()
        assert.near(delta, update, 1e-5 * delta)
        assert.near(before:norm():item(), weight, 1e-5 * weight)
        -- the same values, bit for bit, as the kernel without norms
        assert.is_nil(gl._optim_sgd(q, g, c, 2, group))
        assert.equal(0, (p - q):abs():max():item())
        if b then assert.equal(0, (b - c):abs():max():item()) end
      end
    end
  end)

  it("give zero update norms when nothing moved, and tiny ones when a single value did", function()
    -- A vanishing gradient leaves whole blocks unchanged: exactly 0.  A block
    -- whose float squares underflow but where a value moved is summed in double.
    local p, g = gl.full({2500}, 1.0), gl.full({2500}, 1e-23)
    local update = gl._optim_sgd(p, g, nil, 1, {lr = 0.01}, true)
    assert.equal(0, update)
    assert.equal(1.0, p:max():item())
    p = gl.full({2500}, 1.0)
    p:narrow(1, 1800, 1):fill(1e-24)   -- this one moves by 1e-25; its square underflows in float
    local before = p:clone()
    update = gl._optim_sgd(p, g, nil, 1, {lr = 0.01}, true)
    assert.near(1e-25, update, 1e-6 * 1e-25)
    assert.near((p - before):norm():item(), update, 1e-6 * update)
  end)
end)

describe("the backward signal taken inside backward kernels", function()
  -- Activations and a Linear with a bias add up the squares of the gradient
  -- reaching their output in their own backward loop (autograd.h,
  -- gl_node_watch_sink); other ops, a Linear without bias, or a watcher that
  -- asks for more than the norm take the separate pass.  Both must give what a
  -- hand computation gives.
  local function model_of(seed, bias)
    gl.manual_seed(seed)
    return nn.Sequential{nn.Linear(5, 40, {bias = bias}), nn.Tanh(), nn.Linear(40, 33), nn.Sigmoid(),
                         nn.Linear(33, 700), nn.ReLU(), nn.Linear(700, 3), nn.LeakyReLU(0.1), nn.GELU(),
                         nn.Linear(3, 2, {bias = bias}), nn.ELU()}
  end

  local function run(model, scale, separate)
    local outputs = {}
    for i = 1, model:size() do
      model:get(i):register_forward_hook(function(_, out)
        outputs[tostring(i)] = out:retain_grad()
        -- watch_grad asks for sum and max as well: backward's separate pass
        if separate then out:watch_grad() end
      end)
    end
    local mon = gl.monitor(model)
    local x = gl.randn{9, 5}
    ;(model(x):pow(2):sum() * scale):backward()
    return mon:record(1), outputs
  end

  it("equals the separate pass and a hand computation for every module kind", function()
    local fused, outputs = run(model_of(31, true), 1)
    local separate = run(model_of(31, true), 1, true)
    for path, out in pairs(outputs) do
      local norm = out.grad:norm():item()
      assert.near(norm, fused.modules[path].grad_out_norm, 1e-5 * norm)
      assert.near(separate.modules[path].grad_out_norm, fused.modules[path].grad_out_norm, 1e-5 * norm)
    end
  end)

  it("falls back to the separate pass for a Linear without bias, and in the underflow regime", function()
    local rec, outputs = run(model_of(32, false), 1)
    for path, out in pairs(outputs) do
      local norm = out.grad:norm():item()
      assert.near(norm, rec.modules[path].grad_out_norm, 1e-5 * norm)
    end
    -- gradients near 1e-25: their float squares underflow, the careful pass does not
    rec, outputs = run(model_of(33, true), 1e-25)
    for path, out in pairs(outputs) do
      local norm = (out.grad * 1e25):norm():item() * 1e-25
      assert.is_true(norm > 0)
      assert.near(norm, rec.modules[path].grad_out_norm, 1e-5 * norm)
    end
  end)

  it("is taken only on the steps a monitor keeps (every = k)", function()
    local model = model_of(34, true)
    local outputs = {}
    for i = 1, model:size() do
      model:get(i):register_forward_hook(function(_, out) outputs[tostring(i)] = out:retain_grad() end)
    end
    local mon = gl.monitor(model, {every = 3})
    local x = gl.randn{4, 5}
    for step = 1, 7 do
      model:zero_grad()
      model(x * step):sum():backward()
      -- kept steps (3, 6) were watched, and the first (its step is not known
      -- before record); the others took no statistics at all
      for path, out in pairs(outputs) do
        local watched = out:watched_grad()
        if step == 1 or step % 3 == 0 then
          assert.near(out.grad:norm():item(), watched.norm, 1e-5 * watched.norm, path)
        else
          assert.is_nil(watched, path)
        end
      end
      mon:record(step)
    end
    assert.equal(2, #mon.records)
  end)
end)

describe("monitor files and figures", function()
  local dir, mon

  setup(function()
    dir = tmpdir()
    gl.manual_seed(8)
    local layers = {}
    for _ = 1, 5 do layers[#layers + 1] = nn.Linear(16, 16, {init = "he_normal"}); layers[#layers + 1] = nn.ReLU() end
    layers[#layers + 1] = nn.Linear(16, 4)
    local model = nn.Sequential(layers)
    local opt = gl.optim.SGD(model, {lr = 0.05})
    mon = gl.monitor(model)
    local x, y = gl.randn{32, 16}, gl.randint(1, 4, {32})
    for step = 1, 25 do
      local loss = gl.loss.cross_entropy(model(x), y)
      opt:zero_grad()
      loss:backward()
      gl.optim.clip_grad_norm(model, step % 5 == 0 and 1e-4 or 1e4)
      mon:record(step, {loss = loss})
      opt:step()
    end
  end)

  teardown(function() os.execute("rm -rf " .. dir) end)

  it("round-trips through CSV: the series read back equal the recorded ones", function()
    local path = mon:to_csv(dir .. "/run.csv")
    local back = gl.monitor_from_csv(path)
    assert.equal(#mon.records, #back.records)
    for _, name in ipairs{"1.weight", "11.bias"} do
      for _, field in ipairs{"grad_norm", "update_ratio"} do
        local _, a = mon:series(name, field)
        local _, b = back:series(name, field)
        assert.equal(#a, #b)
        for i = 1, #a do assert.near(a[i], b[i], math.abs(a[i]) * 1e-7) end
      end
    end
    local _, la = mon:series("loss")
    local _, lb = back:series("loss")
    assert.near(la[#la], lb[#lb], 1e-6)
    assert.equal(back.records[5].clip.clipped, true)
    local header = io.open(path):read("l")
    assert.truthy(header:find("step,kind,name,grad_norm", 1, true))
  end)

  it("draws every kind of figure as a non-blank PNG of the asked size", function()
    for _, kind in ipairs{"lines", "heatmap", "hist", "profile", "dashboard"} do
      local path = dir .. "/" .. kind .. ".png"
      local size = kind ~= "dashboard" and {900, 500} or {}
      mon:plot(path, {kind = kind, theory = true, width = size[1], height = size[2]})
      local img = gl.plot.read_png(path)
      if kind == "dashboard" then assert.same({1100, 1600, 4}, img:shape())
      else assert.same({500, 900, 4}, img:shape()) end
      -- not blank: plenty of non-white pixels
      local rgb = img:narrow(3, 1, 3):sum(3)
      assert.is_true(rgb:lt(3 * 250):mean():item() > 0.02, kind .. " looks blank")
    end
  end)

  it("marks clipped steps on the heatmap with red crosses", function()
    local path = dir .. "/marks.png"
    mon:plot(path, {kind = "heatmap", width = 900, height = 500})
    local img = gl.plot.read_png(path)
    local r, g, b = img:select(3, 1), img:select(3, 2), img:select(3, 3)
    local red = r:gt(180):mul(g:lt(90)):mul(b:lt(90))
    assert.is_true(red:sum():item() > 10)
  end)

  it("re-renders the CSV from the command line", function()
    local program = os.getenv("GRADLAB_PROGRAM") or "build/gradlab"
    mon:to_csv(dir .. "/cli.csv")
    local ok = os.execute(("%s plot %s/cli.csv -o %s/cli.png --kind lines > /dev/null"):format(program, dir, dir))
    assert.is_true(ok == true or ok == 0)
    assert.same({700, 1200, 4}, gl.plot.read_png(dir .. "/cli.png"):shape())
    local pipe = io.popen(("%s plot %s/missing.csv 2>&1; echo rc=$?"):format(program, dir))
    local output = pipe:read("a")
    pipe:close()
    assert.truthy(output:find("cannot read", 1, true))
    assert.truthy(output:find("rc=1", 1, true))
  end)

  it("reports a truncated or foreign CSV clearly", function()
    local path = dir .. "/bad.csv"
    local f = io.open(path, "w")
    f:write("a,b\n1,2\n")
    f:close()
    assert.error_matches(function() gl.monitor_from_csv(path) end, "monitor_from_csv", "not a monitor CSV")
    f = io.open(path, "w")
    f:write("step,kind,name,grad_norm\n1,param,w\n")
    f:close()
    assert.error_matches(function() gl.monitor_from_csv(path) end, "monitor_from_csv", "line 2")
  end)
end)
