-- plot_spec.lua — gl.plot: figures are decoded with gl.plot.read_png and checked by
-- their pixels (colours, where things are), never by comparing bytes.
local gl = require "gradlab"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))

local function path(name) return dir .. "/" .. name end

local function hex_rgb(hex)
  return { tonumber(hex:sub(2, 3), 16), tonumber(hex:sub(4, 5), 16), tonumber(hex:sub(6, 7), 16) }
end

local function region(img, x, y, w, h)
  return img:narrow(1, y, h):narrow(2, x, w):narrow(3, 1, 3)
end

-- Pixels of the region (1-based x, y, size w x h; default the whole image)
-- within `tol` of colour rgb on every channel.
local function count_color(img, rgb, tol, x, y, w, h)
  x, y = x or 1, y or 1
  w, h = w or img:size(2) - x + 1, h or img:size(1) - y + 1
  local diff = (region(img, x, y, w, h) - gl.tensor(rgb)):abs():max(3)
  return diff:le(tol or 0):sum():item()
end

-- Pixels whose darkest channel is below `level` (text, spines, data).
local function count_dark(img, level, x, y, w, h)
  x, y = x or 1, y or 1
  w, h = w or img:size(2) - x + 1, h or img:size(1) - y + 1
  return region(img, x, y, w, h):max(3):lt(level):sum():item()
end

local function count_nonwhite(img, x, y, w, h)
  x, y = x or 1, y or 1
  w, h = w or img:size(2) - x + 1, h or img:size(1) - y + 1
  return region(img, x, y, w, h):min(3):lt(245):sum():item()
end

-- Pixels of the note's red ink (red well above green and blue), anti-aliased or not.
local function count_note(img, x, y, w, h)
  x, y = x or 1, y or 1
  w, h = w or img:size(2) - x + 1, h or img:size(1) - y + 1
  local r = region(img, x, y, w, h)
  local red, green, blue = r:narrow(3, 1, 1), r:narrow(3, 2, 1), r:narrow(3, 3, 1)
  return ((red - green):gt(40) * (red - blue):gt(40)):sum():item()
end

-- Mean row (1-based) of the pixels of a colour, or nil when there are none.
local function mean_row(img, rgb, tol)
  local mask = (region(img, 1, 1, img:size(2), img:size(1)) - gl.tensor(rgb)):abs():max(3):le(tol)
  local per_row = mask:sum(2)
  local n = per_row:sum():item()
  if n == 0 then return nil end
  return (per_row * gl.arange(1, img:size(1) + 1)):sum():item() / n
end

local function read_bytes(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function dir_listing()
  local p = io.popen("ls -a '" .. dir .. "'")
  local names = {}
  for name in p:lines() do
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  p:close()
  table.sort(names)
  return names
end

local function ramp(n, f)
  local t = {}
  for i = 1, n do t[i] = f(i) end
  return t
end

local LEGEND_FRAME = { 204, 204, 204 }
local SPINE = { 0x33, 0x33, 0x33 }

describe("gl.plot.read_png", function()
  it("returns a height x width x 4 tensor of 0..255", function()
    gl.plot.lines { path = path("shape.png"), width = 320, height = 200,
                    series = { { y = { 1, 2, 3 } } } }
    local img = gl.plot.read_png(path("shape.png"))
    assert.same({ 200, 320, 4 }, img:shape())
    assert.equal(255, img:max():item())
    assert.is_true(img:min():item() >= 0)
    -- opaque everywhere, white in the corner
    assert.equal(200 * 320, img:narrow(3, 4, 1):eq(255):sum():item())
    assert.same({ 255, 255, 255, 255 }, { img:get(1, 1, 1), img:get(1, 1, 2), img:get(1, 1, 3), img:get(1, 1, 4) })
  end)

  it("raises for a missing or non-PNG file", function()
    assert.error_matches(function() gl.plot.read_png(path("none.png")) end,
                         "read_png: cannot read", "No such file")
    local f = assert(io.open(path("text.png"), "w"))
    f:write("not a png")
    f:close()
    assert.error_matches(function() gl.plot.read_png(path("text.png")) end, "not a readable PNG")
  end)
end)

describe("gl.plot.lines", function()
  local first = hex_rgb(gl.plot.palette(1))
  local second = hex_rgb(gl.plot.palette(2))

  it("draws a single series in the first palette colour, without a legend", function()
    gl.plot.lines { path = path("one.png"), title = "One series", xlabel = "step", ylabel = "loss",
                    series = { { name = "loss", y = ramp(50, function(i) return 1 / i end) } } }
    local img = gl.plot.read_png(path("one.png"))
    assert.same({ 700, 1200, 4 }, img:shape())   -- the default size
    assert.is_true(count_color(img, first, 40) > 200)
    assert.is_true(count_color(img, LEGEND_FRAME, 0) < 20)
    -- the title region holds dark text pixels
    assert.is_true(count_dark(img, 100, 400, 1, 400, 35) > 50)
    -- and the y label, turned, sits at the left edge
    assert.is_true(count_dark(img, 100, 1, 250, 30, 200) > 10)
  end)

  it("shows a legend only with more than one series", function()
    gl.plot.lines { path = path("two.png"), width = 600, height = 400,
                    series = { { name = "relu", y = { 1, 2, 3 } }, { name = "tanh", y = { 3, 2, 1 } } } }
    local img = gl.plot.read_png(path("two.png"))
    assert.is_true(count_color(img, first, 40) > 50)
    assert.is_true(count_color(img, second, 40) > 50)
    assert.is_true(count_color(img, LEGEND_FRAME, 0) > 100)
    gl.plot.lines { path = path("two.png"), width = 600, height = 400, legend = false,
                    series = { { name = "relu", y = { 1, 2, 3 } }, { name = "tanh", y = { 3, 2, 1 } } } }
    assert.is_true(count_color(gl.plot.read_png(path("two.png")), LEGEND_FRAME, 0) < 20)
  end)

  it("puts larger values higher up", function()
    gl.plot.lines { path = path("order.png"), width = 500, height = 400, legend = false,
                    series = { { y = { 10, 10, 10 } }, { y = { 1, 1, 1 } } } }
    local img = gl.plot.read_png(path("order.png"))
    local high, low = mean_row(img, first, 40), mean_row(img, second, 40)
    assert.is_true(high < low)
    -- y = 10 with a 5 % margin lands near the top of the plot area, y = 1 near the bottom
    assert.is_true(high < 100)
    assert.is_true(low > 300)
  end)

  -- Rows (1-based) where a horizontal line of colour rgb spans most of the image width.
  local function line_rows(img, rgb, fraction)
    local mask = (region(img, 1, 1, img:size(2), img:size(1)) - gl.tensor(rgb)):abs():max(3):le(0)
    local per_row, rows = mask:sum(2), {}
    for r = 1, img:size(1) do
      if per_row:get(r) >= fraction * img:size(2) then rows[#rows + 1] = r end
    end
    return rows
  end

  it("lands a value on the expected pixel row", function()
    gl.plot.lines { path = path("row.png"), width = 600, height = 500, legend = false,
                    series = { { y = { 2, 2, 2 } }, { y = { 8, 8, 8 } } } }
    local img = gl.plot.read_png(path("row.png"))
    -- the frame's top and bottom spines, then the data range [2, 8] padded by 5 %
    local spines = line_rows(img, SPINE, 0.6)
    local top, bottom = spines[1], spines[#spines]
    local lo, hi = 2 - 0.3, 8 + 0.3
    local function row_of(v) return bottom - (v - lo) / (hi - lo) * (bottom - top) end
    assert.is_true(math.abs(mean_row(img, second, 40) - row_of(8)) < 1.5)
    assert.is_true(math.abs(mean_row(img, first, 40) - row_of(2)) < 1.5)
  end)

  it("puts log gridlines at evenly spaced decades", function()
    gl.plot.lines { path = path("decades.png"), width = 600, height = 500, logy = true,
                    series = { { y = ramp(7, function(i) return 10 ^ (1 - i) end) } } }
    local img = gl.plot.read_png(path("decades.png"))
    local rows = line_rows(img, { 0xe3, 0xe3, 0xe3 }, 0.3)   -- major gridlines: 1e-6 .. 1e0
    assert.equal(7, #rows)
    for i = 3, #rows do
      assert.is_true(math.abs((rows[i] - rows[i - 1]) - (rows[2] - rows[1])) <= 1)
    end
  end)

  it("draws a log axis with NaN and negative points, and notes them", function()
    local y = ramp(40, function(i) return 10 ^ (-i / 5) end)
    y[7], y[20] = 0 / 0, -1
    gl.plot.lines { path = path("log.png"), width = 800, height = 500, logy = true,
                    series = { { name = "g", y = y } } }
    local img = gl.plot.read_png(path("log.png"))
    assert.is_true(count_color(img, first, 40) > 100)
    assert.is_true(count_note(img, 400, 450, 401, 51) > 20)
    -- without bad points there is no note
    gl.plot.lines { path = path("log.png"), width = 800, height = 500, logy = true,
                    series = { { name = "g", y = ramp(40, function(i) return 10 ^ (-i / 5) end) } } }
    assert.equal(0, count_note(gl.plot.read_png(path("log.png"))))
  end)

  it("still draws constant data, single points and all-NaN series", function()
    gl.plot.lines { path = path("const.png"), width = 400, height = 300,
                    series = { { y = { 5, 5, 5, 5 } } } }
    assert.is_true(count_color(gl.plot.read_png(path("const.png")), first, 40) > 50)
    gl.plot.lines { path = path("single.png"), width = 400, height = 300, logx = true, logy = true,
                    series = { { x = { 3 }, y = { 7 } } } }
    assert.is_true(count_color(gl.plot.read_png(path("single.png")), first, 40) > 10)
    gl.plot.lines { path = path("nan.png"), width = 400, height = 300,
                    series = { { y = { 0 / 0, 1 / 0, -1 / 0 } } } }
    local img = gl.plot.read_png(path("nan.png"))
    assert.is_true(count_note(img) > 10)
    assert.is_true(count_color(img, SPINE, 0) > 500)   -- the axes are there
  end)

  it("takes tensors, strided ones included, and explicit x", function()
    local m = gl.tensor { { 1, 4 }, { 2, 3 }, { 3, 2 } }
    gl.plot.lines { path = path("tensor.png"), width = 400, height = 300,
                    series = { { name = "a", x = m:select(2, 1), y = m:select(2, 2) },
                               { name = "b", y = gl.arange(0, 3) } } }
    local img = gl.plot.read_png(path("tensor.png"))
    assert.is_true(count_color(img, first, 40) > 20)
    assert.is_true(count_color(img, second, 40) > 20)
  end)

  it("handles many series with cycling styles and markers", function()
    local series = {}
    for k = 1, 25 do
      series[k] = { name = "layer " .. k, y = ramp(30, function(i) return k + math.sin(i / 3) end) }
    end
    series[1].marker = "o"
    gl.plot.lines { path = path("many.png"), width = 900, height = 500, markers = false, series = series }
    assert.is_true(count_nonwhite(gl.plot.read_png(path("many.png"))) > 5000)
  end)
end)

describe("gl.plot.heatmap", function()
  it("maps low values to dark purple and high ones to yellow, with a colour bar", function()
    local low, high = {}, {}
    for i = 1, 20 do low[i], high[i] = 1e-6, 1 end
    gl.plot.heatmap { path = path("heat.png"), width = 800, height = 500, title = "norms",
                      rows = { "layer1", "layer2" }, values = { low, high } }
    local img = gl.plot.read_png(path("heat.png"))
    local purple, yellow, middle = { gl.plot.viridis(0) }, { gl.plot.viridis(1) }, { gl.plot.viridis(0.5) }
    local top, bottom = mean_row(img, purple, 2), mean_row(img, yellow, 2)
    assert.is_truthy(top and bottom)
    -- row 1 (low) is drawn above row 2 (high)... and the bar has them the other way round,
    -- so compare inside the plot area: its left half
    local w = img:size(2)
    assert.is_true(count_color(img, purple, 2, 1, 1, w // 2, 250) > 1000)
    assert.is_true(count_color(img, yellow, 2, 1, 250, w // 2, 250) > 1000)
    -- only the colour bar holds the middle of the map
    assert.is_true(count_color(img, middle, 3) > 20)
    assert.is_true(count_color(img, middle, 3, 1, 1, w // 2, 500) == 0)
    -- without the bar, no middle colour at all
    gl.plot.heatmap { path = path("heat.png"), width = 800, height = 500, colorbar = false,
                      values = { low, high } }
    assert.equal(0, count_color(gl.plot.read_png(path("heat.png")), middle, 3))
  end)

  it("takes a 2-d tensor, a linear scale, and marks bad cells", function()
    local v = gl.arange(0, 60):reshape { 6, 10 }
    v:set(0 / 0, 1, 1)
    gl.plot.heatmap { path = path("heat2.png"), width = 600, height = 400, log = false, values = v }
    local img = gl.plot.read_png(path("heat2.png"))
    assert.is_true(count_note(img) > 10)
    assert.is_true(count_color(img, { gl.plot.viridis(1) }, 3) > 100)
    -- a log scale skips the zero cell too
    gl.plot.heatmap { path = path("heat2.png"), width = 600, height = 400, values = v:t() }
    assert.is_true(count_note(gl.plot.read_png(path("heat2.png"))) > 10)
  end)
end)

describe("gl.plot.histogram", function()
  it("overlays two series translucently", function()
    local a, b = {}, {}
    for i = 1, 2000 do
      a[i] = (i % 100) / 100
      b[i] = 0.5 + (i % 100) / 100
    end
    gl.plot.histogram { path = path("hist.png"), width = 700, height = 450, bins = 20,
                        series = { { name = "a", values = a }, { name = "b", values = gl.tensor(b) } } }
    local img = gl.plot.read_png(path("hist.png"))
    -- colour 2 at 45 % over colour 1 at 45 % over white
    local c1, c2 = hex_rgb(gl.plot.palette(1)), hex_rgb(gl.plot.palette(2))
    local mixed = {}
    for k = 1, 3 do
      local over_white = 255 + (c1[k] - 255) * 0.45
      mixed[k] = over_white + (c2[k] - over_white) * 0.45
    end
    assert.is_true(count_color(img, mixed, 3) > 1000)
    assert.is_true(count_color(img, LEGEND_FRAME, 0) > 50)
  end)

  it("draws small multiples and a log count axis", function()
    local a = ramp(500, function(i) return math.sin(i) end)
    gl.plot.histogram { path = path("multi.png"), width = 600, height = 500, multiples = true, logy = true,
                        series = { { name = "a", values = a }, { name = "b", values = a } } }
    local img = gl.plot.read_png(path("multi.png"))
    assert.is_true(count_color(img, hex_rgb(gl.plot.palette(2)), 40) > 500)
  end)
end)

describe("gl.plot.grid", function()
  it("draws four framed panels of any kind", function()
    local y = ramp(30, function(i) return 1 / i end)
    gl.plot.grid { path = path("grid.png"), title = "report", cols = 2, width = 1000, height = 800,
                   panels = {
                     { kind = "lines", title = "loss", series = { { y = y } } },
                     { kind = "heatmap", values = { y, y } },
                     { kind = "histogram", series = { { values = y } } },
                     { kind = "lines", logy = true, series = { { y = y }, { y = y } } },
                   } }
    local img = gl.plot.read_png(path("grid.png"))
    assert.same({ 800, 1000, 4 }, img:shape())
    -- each quadrant has a long horizontal spine: a frame
    for _, q in ipairs { { 1, 1 }, { 501, 1 }, { 1, 401 }, { 501, 401 } } do
      local mask = (region(img, q[1], q[2], 500, 400) - gl.tensor(SPINE)):abs():max(3):le(0)
      assert.is_true(mask:sum(2):max():item() > 200)
    end
  end)
end)

describe("the fallback font", function()
  it("still draws text when GRADLAB_FONT names a missing file", function()
    local code = ("package.path = %q; package.cpath = %q; local gl = require 'gradlab'; " ..
                  "gl.plot.lines{path = %q, title = 'Fallback TITLE 123', xlabel = 'step', " ..
                  "series = {{name = 'a', y = {1, 2}}, {name = 'b', y = {2, 1}}}}")
                 :format(package.path, package.cpath, path("fallback.png"))
    local ok = os.execute("GRADLAB_FONT=/nonexistent/font.ttf lua5.4 -e " ..
                          "'" .. code:gsub("'", "'\\''") .. "'")
    assert.is_true(ok)
    local img = gl.plot.read_png(path("fallback.png"))
    assert.is_true(count_dark(img, 100, 400, 1, 400, 35) > 50)   -- the title
    assert.is_true(count_color(img, LEGEND_FRAME, 0) > 50)         -- the legend
    -- the bitmap font has solid pixels, FreeType text mostly grey edges
    assert.is_true(count_color(img, { 0x1a, 0x1a, 0x1a }, 0, 400, 1, 400, 35) > 30)
  end)
end)

describe("writing", function()
  it("replaces files atomically and leaves no temp files", function()
    local target = path("atomic.png")
    gl.plot.lines { path = target, width = 300, height = 200, series = { { y = { 1, 2 } } } }
    local before = read_bytes(target)
    -- a bad spec fails before the file is touched
    assert.has_error(function()
      gl.plot.lines { path = target, series = { { name = "relu", x = { 1, 2 }, y = { 1 } } } }
    end)
    assert.equal(before, read_bytes(target))
    -- a good one replaces it with a complete PNG
    gl.plot.lines { path = target, width = 310, height = 200, series = { { y = { 1, 2 } } } }
    assert.same({ 200, 310, 4 }, gl.plot.read_png(target):shape())
    for _, name in ipairs(dir_listing()) do
      assert.is_nil(name:find("tmp", 1, true), "temp file left: " .. name)
    end
  end)
end)

describe("bad specs", function()
  local ok_series = { { y = { 1, 2 } } }
  local cases = {
    { "lines", { series = ok_series }, "lines: missing field 'path'" },
    { "lines", { path = path("x.png"), series = {} }, "lines: series is empty" },
    { "lines", { path = path("x.png") }, "lines: missing field 'series'" },
    { "lines", { path = path("x.png"), series = { { y = { 1 } }, { name = "relu", x = ramp(10, math.abs), y = ramp(9, math.abs) } } },
      "lines: series 2 'relu': x has 10 values, y has 9" },
    { "lines", { path = path("x.png"), series = { { name = "w", y = {} } } }, "lines: series 1 'w': y is empty" },
    { "lines", { path = path("x.png"), series = { { y = { 1, "a" } } } }, "lines: series 1: y[2] is a string, expected a number" },
    { "lines", { path = path("x.png"), series = { { x = { 1 } } } }, "lines: series 1: missing field 'y'" },
    { "lines", { path = "/nonexistent/x.png", series = ok_series },
      "lines: cannot write '/nonexistent/x.png': No such file or directory" },
    { "lines", { path = path("x.png"), width = 50, series = ok_series }, "lines: width must be between 100 and 10000, got 50" },
    { "lines", { path = path("x.png"), height = 20000, series = ok_series }, "lines: height must be between 100 and 10000" },
    { "lines", { path = path("x.png"), titel = "typo", series = ok_series }, "lines: unknown field 'titel'" },
    { "lines", { path = path("x.png"), logy = "yes", series = ok_series }, "lines: logy must be true or false" },
    { "lines", { path = path("x.png"), series = { { y = gl.zeros { 2, 2 } } } }, "lines: series 1: y must be a 1-d tensor, got shape {2, 2}" },
    { "lines", { path = path("x.png"), series = { { y = { 1 }, color = "red" } } }, "lines: series 1: color must be '#rrggbb'" },
    { "heatmap", { path = path("x.png"), values = {} }, "heatmap: values is empty" },
    { "heatmap", { path = path("x.png") }, "heatmap: missing field 'values'" },
    { "heatmap", { path = path("x.png"), rows = { "a", "b", "c" }, values = { { 1 }, { 2 } } },
      "heatmap: rows has 3 labels, values has 2 rows" },
    { "heatmap", { path = path("x.png"), values = { { 1, 2 }, { 3 } } }, "heatmap: values row 2 has 1 values, row 1 has 2" },
    { "heatmap", { path = path("x.png"), values = gl.zeros { 4 } }, "heatmap: values must be a 2-d tensor" },
    { "histogram", { path = path("x.png"), series = { { name = "w", values = {} } } }, "histogram: series 1 'w': values is empty" },
    { "histogram", { path = path("x.png"), bins = 0, series = { { values = { 1 } } } }, "histogram: bins must be between 1 and" },
    { "grid", { path = path("x.png"), panels = {} }, "grid: panels is empty" },
    { "grid", { path = path("x.png"), panels = { { kind = "pie" } } }, "grid: panel 1: unknown kind 'pie'" },
    { "grid", { path = path("x.png"), panels = { { kind = "lines", series = ok_series },
                                                 { kind = "lines", series = { { name = "relu", x = { 1, 2 }, y = { 1 } } } } } },
      "grid: panel 2 (lines): series 1 'relu': x has 2 values, y has 1" },
    { "grid", { path = path("x.png"), panels = { { kind = "heatmap", path = "p.png", values = { { 1 } } } } },
      "grid: panel 1 (heatmap): 'path' belongs to the grid spec" },
  }
  for _, case in ipairs(cases) do
    it(case[1] .. " -> " .. case[3], function()
      assert.error_matches(function() gl.plot[case[1]](case[2]) end, case[3])
    end)
  end

  it("a non-table spec names the function", function()
    assert.error_matches(function() gl.plot.lines("x.png") end, "lines: expected a spec table")
  end)

  it("leaves nothing behind after failing", function()
    for _, name in ipairs(dir_listing()) do
      assert.is_nil(name:find("x.png", 1, true))
    end
  end)
end)

teardown(function()
  -- GRADLAB_KEEP_PLOTS=1 keeps the figures to look at
  if os.getenv("GRADLAB_KEEP_PLOTS") then
    print("\nplots kept in " .. dir)
  else
    os.execute("rm -rf '" .. dir .. "'")
  end
end)
