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
