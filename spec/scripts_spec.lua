-- spec/scripts_spec.lua — every experiment script in scripts/ runs in --quick mode and
-- its headline claims hold on the numbers it measured.
local gl = require "gradlab"
local helper = require "helper"

local run_script = helper.run_script

local files_in = helper.files_in

describe("scripts/vanishing.lua (the flagship)", function()
  local results, ex, dir
  setup(function() results, ex, dir = run_script("vanishing") end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("writes PNG figures and the monitor CSVs", function()
    local pngs, csvs = 0, 0
    for _, f in ipairs(files_in(dir)) do
      if f:match("%.png$") then
        pngs = pngs + 1
        local img = gl.plot.read_png(dir .. "/" .. f)
        assert.is_true(img:size(1) >= 500 and img:size(2) >= 800)
      end
      if f:match("%.csv$") then csvs = csvs + 1 end
    end
    assert.is_true(pngs >= 5)
    assert.equal(6, csvs)
  end)

  it("measures what the seed claims", function()
    local by = {}
    for _, r in ipairs(results) do by[r.config.key] = r end
    assert.is_true(by.sigmoid_xavier.weight_ratio < 1e-3)
    assert.is_true(by.relu_he.weight_ratio >= 0.2 and by.relu_he.weight_ratio <= 5)
    assert.is_true(by.relu_xavier.weight_ratio >= 0.2 and by.relu_xavier.weight_ratio <= 5)
    assert.near(1 / math.sqrt(2), by.relu_xavier.signal_factor, 0.05)
    assert.near(1, by.relu_he.signal_factor, 0.05)
    assert.near(0.234, by.sigmoid_xavier.signal_factor, 0.234 * 0.05)
  end)

  it("reports every claim as holding", function()
    for _, c in ipairs(ex.claims) do assert.is_true(c.holds, c.text) end
  end)
end)
