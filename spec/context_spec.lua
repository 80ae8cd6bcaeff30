-- spec/context_spec.lua — engine/context.c: the seeded generator and thread settings.
local gl = require "gradlab"

describe("the random generator", function()
  it("is a documented xoshiro256** stream: fixed values for a fixed seed", function()
    -- Guards against silent changes of the generator, which would change every
    -- published experiment's numbers.
    -- Reference values from an independent Python transcription of
    -- splitmix64 seeding + xoshiro256**, top 24 bits of each output.
    gl.manual_seed(0)
    assert.same({0.6012629866600037, 0.747774064540863, 0.10301995277404785}, gl.rand{3}:totable())
  end)

  it("gives the same normals whatever the thread count", function()
    gl.set_num_threads(1)
    gl.manual_seed(9)
    local a = gl.randn{1000}
    local p = gl.randn{64, 64}:matmul(gl.randn{64, 64})
    gl.set_num_threads(2)
    gl.manual_seed(9)
    assert.same(a:totable(), gl.randn{1000}:totable())
    assert.tensor_near(gl.randn{64, 64}:matmul(gl.randn{64, 64}), p, 1e-5)
  end)
end)

describe("thread settings", function()
  it("round-trip and refuse nonsense", function()
    gl.set_num_threads(1)
    assert.equal(1, gl.get_num_threads())
    gl.set_num_threads(2)
    assert.equal(2, gl.get_num_threads())
    assert.error_matches(function() gl.set_num_threads(0) end, "bad argument #1 to 'set_num_threads'")
    assert.error_matches(function() gl.set_num_threads("many") end, "bad argument #1 to 'set_num_threads'")
  end)
end)

describe("gl.clock", function()
  it("is monotonic wall time in seconds", function()
    local t0 = gl.clock()
    local t1 = gl.clock()
    assert.is_true(t1 >= t0)
    assert.is_true(t0 > 0)
  end)
end)
