-- spec/scripts_seq_spec.lua — the sequence, attention and graph experiment scripts run in
-- --quick mode, and their headline claims hold on the numbers they measured (only the
-- claims the quick run measures robustly are asserted here).
local gl = require "gradlab"
local helper = require "helper"

local run_script = helper.run_script

local function count_files(dir)
  local pngs, csvs = 0, 0
  local pipe = io.popen("ls " .. dir)
  for f in pipe:lines() do
    if f:match("%.png$") then
      pngs = pngs + 1
      local img = gl.plot.read_png(dir .. "/" .. f)
      assert.is_true(img:size(1) >= 500 and img:size(2) >= 800)
    end
    if f:match("%.csv$") then csvs = csvs + 1 end
  end
  pipe:close()
  return pngs, csvs
end

describe("scripts/rnn.lua", function()
  local results, ex, dir
  setup(function() results, ex, dir = run_script("rnn") end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("writes a PNG figure and the monitor CSVs", function()
    local pngs, csvs = count_files(dir)
    assert.is_true(pngs >= 1 and csvs >= 1)
  end)

  it("measures vanishing and exploding through time", function()
    local p = results.probe
    local k = #p[1].norm - 1
    assert.is_true(p[1].ratio <= 0.9 ^ k)                         -- radius 0.9: at most rho^k
    assert.is_true(p[1].ratio < p[2].ratio and p[2].ratio < p[3].ratio)
    assert.is_true(p[3].ratio > 1)                                -- radius 1.1 grows back in time
  end)

  it("clipping keeps the radius-1.1 RNN finite", function()
    local no_clip, clip = results.clip[1], results.clip[2]
    assert.is_true(clip.tail == clip.tail and clip.tail < clip.losses[1])
    assert.is_true(no_clip.tail ~= no_clip.tail or no_clip.tail > clip.tail)
  end)

  it("gated cells pass more gradient to the first input at init", function()
    local by = {}
    for _, r in ipairs(results.reach) do by[r.kind] = r.ratio end
    assert.is_true(by.LSTM > by.RNN and by.GRU > by.RNN)
  end)
end)

describe("scripts/transformer.lua", function()
  local results, ex, dir
  setup(function() results, ex, dir = run_script("transformer") end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("writes a PNG figure and a monitor CSV", function()
    local pngs, csvs = count_files(dir)
    assert.is_true(pngs >= 1 and csvs >= 1)
  end)

  it("post-LN's gradient grows toward the output more than pre-LN's at 24 blocks", function()
    local by = {}
    for _, p in ipairs(results.profile) do by[(p.pre and "pre" or "post") .. p.depth] = p.ratio end
    assert.is_true(by.post24 > by.pre24)
    assert.is_true(by.post24 > 1 and by.pre24 < 1)
  end)
end)

describe("scripts/gnn.lua", function()
  local results, ex, dir
  setup(function() results, ex, dir = run_script("gnn") end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("writes a PNG figure and the monitor CSVs", function()
    local pngs, csvs = count_files(dir)
    assert.is_true(pngs >= 1 and csvs >= 1)
  end)

  it("deep plain GraphConv stacks oversmooth; skips slow it and keep the gradient", function()
    local P, R = results.plain32, results.res32
    assert.is_true(P.cos_last > 0.95 and P.cos_last > results.plain2.cos_last)
    assert.is_true(R.cos_last < P.cos_last)
    assert.is_true(results.res8.cos_last < 0.9)
    assert.is_true(R.grad1 > 10 * P.grad1)
  end)

  it("reports every claim as holding", function()
    for _, c in ipairs(ex.claims) do assert.is_true(c.holds, c.text) end
  end)
end)

describe("scripts/sequence_length.lua", function()
  local results, ex, dir
  setup(function() results, ex, dir = run_script("sequence_length") end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("writes a PNG figure and the monitor CSVs", function()
    local pngs, csvs = count_files(dir)
    assert.is_true(pngs >= 1 and csvs >= 3)
  end)

  it("measures every plan at every test length", function()
    for _, r in ipairs(results) do
      assert.equal(4, #r.test)
      for _, v in ipairs(r.test) do assert.is_true(v == v and v >= 0) end
    end
  end)

  it("a net trained at T = 10 does worse at T = 80", function()
    local S = results.short.test
    assert.is_true(S[4] > 2 * S[1])
  end)
end)
