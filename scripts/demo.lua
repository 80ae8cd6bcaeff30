-- scripts/demo.lua — the placeholder demo until the flagship experiment lands:
-- a tour of tensors, then a small measurement of how a signal's scale changes
-- through 20 random linear maps (the root of vanishing and exploding gradients).
local gl = require "gradlab"

local out = "out/demo"
for i = 1, #arg do if arg[i] == "--out" then out = arg[i + 1] end end
os.execute("mkdir -p " .. out)

gl.manual_seed(0)
local a = gl.tensor{{1, 2}, {3, 4}}
print("a =", a)
print("a:matmul(a:t()) =", a:matmul(a:t()))
print("broadcast a + {10, 20} =", a + gl.tensor{10, 20})

-- Push a batch through 20 square random maps with weights of std s/sqrt(width):
-- the activation norm grows like s^depth, so only s = 1 keeps it stable.
local width, depth, batch = 256, 20, 64
print(("\nactivation std after each of %d linear layers (width %d):"):format(depth, width))
print(("%-6s %12s %12s %12s"):format("layer", "s = 0.5", "s = 1.0", "s = 2.0"))
local rows, scales = {}, {0.5, 1.0, 2.0}
local x0 = gl.randn{batch, width}
local xs = {x0, x0, x0}
for layer = 1, depth do
  local row = {layer}
  for k, s in ipairs(scales) do
    local w = gl.randn{width, width} * (s / math.sqrt(width))
    xs[k] = xs[k]:matmul(w)
    local std = (xs[k] * xs[k]):mean():sqrt():item()
    row[#row + 1] = std
  end
  rows[#rows + 1] = row
  print(("%-6d %12.4g %12.4g %12.4g"):format(table.unpack(row)))
end

local csv = assert(io.open(out .. "/activation_std.csv", "w"))
csv:write("layer,s0.5,s1.0,s2.0\n")
for _, row in ipairs(rows) do csv:write(table.concat(row, ","), "\n") end
csv:close()
gl.save(out .. "/final_activations.npy", xs[2])
print(("\nwrote %s/activation_std.csv and %s/final_activations.npy"):format(out, out))
print("(PNG plots arrive with the plotting issue; this demo grows into the flagship experiment.)")
