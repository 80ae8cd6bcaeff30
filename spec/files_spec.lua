-- files_spec.lua — gl.save / gl.load (.npy) and gl.save_state / gl.load_state (.npz),
-- cross-checked against the real NumPy (Debian's python at $GRADLAB_PYTHON).
local gl = require "gradlab"

local PYTHON = os.getenv("GRADLAB_PYTHON") or "/usr/bin/python3"

local function quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs `code` under NumPy's python with the temp dir as sys.argv[1]; returns its output.
local function python(code, dir)
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write("import sys\nimport numpy as np\nd = sys.argv[1] if len(sys.argv) > 1 else '.'\n", code)
    f:close()
    local p = io.popen(PYTHON .. " " .. quote(script) .. " " .. quote(dir or ".") .. " 2>&1")
    local out = p:read("a")
    local ok = p:close()
    os.remove(script)
    assert(ok, "python failed:\n" .. out)
    return out
end

local function read_bytes(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function write_bytes(path, s)
    local f = assert(io.open(path, "wb"))
    f:write(s)
    f:close()
end

local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
end

local function listdir(dir)
    local p = io.popen("ls -A " .. quote(dir))
    local names = {}
    for line in p:lines() do names[#names + 1] = line end
    p:close()
    table.sort(names)
    return names
end

-- float32 rounding of a Lua number, as NumPy's astype(float32) does.
local function f32(x)
    return (string.unpack("f", string.pack("f", x)))
end

-- Calls fn, expects a Lua error, returns its message.
local function raises(fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok, "expected an error")
    return tostring(err)
end

local function has(message, piece)
    assert(message:find(piece, 1, true), ("expected %q in message %q"):format(piece, message))
end

describe("files", function()
    local dir

    before_each(function()
        dir = os.tmpname()
        os.remove(dir)
        assert(os.execute("mkdir " .. quote(dir)))
    end)

    after_each(function()
        os.execute("rm -rf " .. quote(dir))
    end)

    describe("save/load round trip", function()
        it("keeps a 0-d tensor", function()
            local p = dir .. "/s.npy"
            gl.save(p, gl.tensor(3.5))
            local t = gl.load(p)
            assert.same({}, t:shape())
            assert.equal(3.5, t:item())
        end)

        it("keeps a 1-d tensor", function()
            local p = dir .. "/v.npy"
            gl.save(p, gl.tensor{1, -2.5, 1e30, 0})
            local t = gl.load(p)
            assert.same({4}, t:shape())
            assert.same({1, -2.5, f32(1e30), 0}, t:totable())
        end)

        it("keeps a 3-d tensor", function()
            local p = dir .. "/c.npy"
            local a = gl.arange(0, 24):view{2, 3, 4} / 8
            gl.save(p, a)
            local t = gl.load(p)
            assert.same({2, 3, 4}, t:shape())
            assert.same(a:totable(), t:totable())
        end)

        it("keeps 0-size tensors", function()
            local p = dir .. "/z.npy"
            gl.save(p, gl.zeros{0, 3})
            assert.same({0, 3}, gl.load(p):shape())
            gl.save(p, gl.zeros{2, 0, 5})
            local t = gl.load(p)
            assert.same({2, 0, 5}, t:shape())
            assert.equal(0, t:numel())
        end)

        it("writes a transposed view in logical order", function()
            local p = dir .. "/t.npy"
            gl.save(p, gl.tensor{{1, 2, 3}, {4, 5, 6}}:t())
            local t = gl.load(p)
            assert.same({3, 2}, t:shape())
            assert.same({{1, 4}, {2, 5}, {3, 6}}, t:totable())
        end)

        it("writes a strided narrow view in logical order", function()
            local p = dir .. "/n.npy"
            local a = gl.arange(0, 12):view{3, 4}
            gl.save(p, a:narrow(2, 2, 2):t())
            assert.same({{1, 5, 9}, {2, 6, 10}}, gl.load(p):totable())
        end)

        it("writes the header NumPy writes, padded to 64 bytes", function()
            local p = dir .. "/h.npy"
            gl.save(p, gl.zeros{2, 3})
            local bytes = read_bytes(p)
            assert.equal("\x93NUMPY\x01\x00", bytes:sub(1, 8))
            local header_len = string.unpack("<I2", bytes, 9)
            assert.equal(0, (10 + header_len) % 64)
            assert.equal(10 + header_len + 24, #bytes)
            has(bytes, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }")
            assert.equal("\n", bytes:sub(10 + header_len, 10 + header_len))
        end)

        it("creates files with the usual permissions, not mkstemp's 0600", function()
            local p = dir .. "/perm.npy"
            gl.save(p, gl.zeros{1})
            local mode = io.popen("stat -c %a " .. quote(p)):read("l")
            local umask = tonumber(io.popen("sh -c umask"):read("l"), 8)
            assert.equal(string.format("%o", 438 & ~umask), mode)   -- 438 = 0666
        end)
    end)

    describe("save_state/load_state", function()
        it("round-trips a table of tensors", function()
            local p = dir .. "/state.npz"
            local state = {
                ["layer.1.weight"] = gl.tensor{{1, 2}, {3, 4}},
                ["layer.1.bias"] = gl.tensor{0.5, -0.5},
                step = gl.tensor(7),
                empty = gl.zeros{0},
                view = gl.tensor{{1, 2, 3}, {4, 5, 6}}:t(),
            }
            gl.save_state(p, state)
            local back = gl.load_state(p)
            local n = 0
            for name, t in pairs(back) do
                n = n + 1
                assert.same(state[name]:shape(), t:shape())
                assert.same(state[name]:totable(), t:totable())
            end
            assert.equal(5, n)
        end)

        it("round-trips an empty table", function()
            local p = dir .. "/empty.npz"
            gl.save_state(p, {})
            assert.same({}, gl.load_state(p))
        end)

        it("writes the same bytes for the same state", function()
            local a, b = dir .. "/a.npz", dir .. "/b.npz"
            local state = {w = gl.ones{3, 3}, b = gl.zeros{3}, x = gl.tensor(1), c = gl.ones{2}}
            gl.save_state(a, state)
            gl.save_state(b, state)
            assert.equal(read_bytes(a), read_bytes(b))
        end)
    end)

    describe("with NumPy", function()
        it("loads what numpy.save writes, with exact values", function()
            python([==[
np.save(d + '/f4.npy', np.array([[1.5, -2.25, 3], [4, 5, 0.125]], dtype='<f4'))
np.save(d + '/f8.npy', np.array([0.1, 1e300, -2.5, 1e-50]))
np.save(d + '/i4.npy', np.array([-2147483648, 0, 7, 2147483647], dtype='<i4'))
np.save(d + '/i8.npy', np.array([-(2**40) - 1, 3, 2**62], dtype='<i8'))
np.save(d + '/u1.npy', np.array([0, 1, 255], dtype=np.uint8))
np.save(d + '/b1.npy', np.array([True, False, True]))
np.save(d + '/i1.npy', np.array([-128, 127], dtype=np.int8))
np.save(d + '/u4.npy', np.array([4294967295, 1], dtype='<u4'))
np.save(d + '/f2.npy', np.array([0.5, -2, 65504, 2**-24, np.inf], dtype='<f2'))
np.save(d + '/be_f4.npy', np.array([[1.5, -2], [3, 4]], dtype='>f4'))
np.save(d + '/be_f8.npy', np.array([0.1, -7], dtype='>f8'))
np.save(d + '/be_i4.npy', np.array([-5, 1 << 20], dtype='>i4'))
np.save(d + '/be_i8.npy', np.array([1, -2, 300], dtype='>i8'))
np.save(d + '/fortran2.npy', np.asfortranarray(np.arange(6, dtype='<i4').reshape(3, 2)))
np.save(d + '/fortran3.npy', np.asfortranarray(np.arange(24, dtype='<f8').reshape(2, 3, 4)))
np.save(d + '/be_fortran.npy', np.asfortranarray(np.arange(6, dtype='>f4').reshape(2, 3)))
np.save(d + '/scalar.npy', np.float32(7.25))
np.save(d + '/zero.npy', np.zeros((0, 5)))
for v in [(2, 0), (3, 0)]:
    with open(d + '/v%d.npy' % v[0], 'wb') as f:
        np.lib.format.write_array(f, np.arange(6, dtype='<f4').reshape(2, 3), version=v)
]==], dir)
            local function load(name) return gl.load(dir .. "/" .. name) end
            assert.same({{1.5, -2.25, 3}, {4, 5, 0.125}}, load("f4.npy"):totable())
            assert.same({f32(0.1), math.huge, -2.5, 0}, load("f8.npy"):totable())
            assert.same({-2147483648, 0, 7, f32(2147483647)}, load("i4.npy"):totable())
            assert.same({f32(-(2 ^ 40) - 1), 3, 2 ^ 62}, load("i8.npy"):totable())
            assert.same({0, 1, 255}, load("u1.npy"):totable())
            assert.same({1, 0, 1}, load("b1.npy"):totable())
            assert.same({-128, 127}, load("i1.npy"):totable())
            assert.same({2 ^ 32, 1}, load("u4.npy"):totable())
            assert.same({0.5, -2, 65504, 2 ^ -24, math.huge}, load("f2.npy"):totable())
            assert.same({{1.5, -2}, {3, 4}}, load("be_f4.npy"):totable())
            assert.same({f32(0.1), -7}, load("be_f8.npy"):totable())
            assert.same({-5, 1 << 20}, load("be_i4.npy"):totable())
            assert.same({1, -2, 300}, load("be_i8.npy"):totable())
            assert.same({{0, 1}, {2, 3}, {4, 5}}, load("fortran2.npy"):totable())
            assert.same(gl.arange(0, 24):view{2, 3, 4}:totable(), load("fortran3.npy"):totable())
            assert.same({{0, 1, 2}, {3, 4, 5}}, load("be_fortran.npy"):totable())
            local s = load("scalar.npy")
            assert.same({}, s:shape())
            assert.equal(7.25, s:item())
            assert.same({0, 5}, load("zero.npy"):shape())
            assert.same({{0, 1, 2}, {3, 4, 5}}, load("v2.npy"):totable())
            assert.same({{0, 1, 2}, {3, 4, 5}}, load("v3.npy"):totable())
        end)

        it("loads what numpy.savez writes", function()
            python([==[
np.savez(d + '/s.npz', w=np.array([[1, 2], [3, 4]], dtype=np.float64), b=np.array([0.5], dtype='>f4'),
         step=np.int64(12), mask=np.array([True, False]), none=np.zeros((3, 0)))
np.savez(d + '/positional.npz', np.ones(2), np.zeros(1))
]==], dir)
            local s = gl.load_state(dir .. "/s.npz")
            assert.same({{1, 2}, {3, 4}}, s.w:totable())
            assert.same({0.5}, s.b:totable())
            assert.same({}, s.step:shape())
            assert.equal(12, s.step:item())
            assert.same({1, 0}, s.mask:totable())
            assert.same({3, 0}, s.none:shape())
            local p = gl.load_state(dir .. "/positional.npz")
            assert.same({1, 1}, p.arr_0:totable())
            assert.same({0}, p.arr_1:totable())
        end)

        it("numpy.load reads what gl.save writes", function()
            gl.save(dir .. "/a.npy", gl.arange(0, 24):view{2, 3, 4} / 4)
            gl.save(dir .. "/t.npy", gl.tensor{{1, 2, 3}, {4, 5, 6}}:t())
            gl.save(dir .. "/s.npy", gl.tensor(-1.5))
            gl.save(dir .. "/v.npy", gl.tensor{1e-3, 2})
            gl.save(dir .. "/z.npy", gl.zeros{4, 0})
            local out = python([==[
a = np.load(d + '/a.npy')
assert a.dtype == np.float32 and a.shape == (2, 3, 4), a
assert (a == np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 4).all()
t = np.load(d + '/t.npy')
assert t.shape == (3, 2) and (t == np.array([[1, 4], [2, 5], [3, 6]])).all()
s = np.load(d + '/s.npy')
assert s.shape == () and s == -1.5
v = np.load(d + '/v.npy')
assert v.shape == (2,) and v[0] == np.float32(1e-3) and v[1] == 2
z = np.load(d + '/z.npy')
assert z.shape == (4, 0) and z.dtype == np.float32
print('ok')
]==], dir)
            assert.equal("ok\n", out)
        end)

        it("numpy.load reads what gl.save_state writes", function()
            gl.save_state(dir .. "/s.npz", {
                weight = gl.tensor{{1, 2, 3}, {4, 5, 6}},
                bias = gl.tensor{0.25, -8},
                step = gl.tensor(3),
                ["block.1.gamma"] = gl.ones{2, 2}:t(),
            })
            local out = python([==[
import zipfile
with zipfile.ZipFile(d + '/s.npz') as z:
    assert z.testzip() is None
    assert z.namelist() == sorted(z.namelist()), z.namelist()
f = np.load(d + '/s.npz')
assert sorted(f.files) == ['bias', 'block.1.gamma', 'step', 'weight'], f.files
assert (f['weight'] == np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)).all()
assert f['weight'].dtype == np.float32
assert (f['bias'] == np.array([0.25, -8])).all()
assert f['step'].shape == () and f['step'] == 3
assert (f['block.1.gamma'] == np.ones((2, 2))).all()
print('ok')
]==], dir)
            assert.equal("ok\n", out)
        end)
    end)

    describe("errors", function()
        local t

        before_each(function()
            t = gl.tensor{{1, 2}, {3, 4}}
        end)

        it("reading a missing file names the function, the path and the cause", function()
            local p = dir .. "/missing.npy"
            local msg = raises(function() return gl.load(p) end)
            has(msg, "load")
            has(msg, p)
            has(msg, "No such file or directory")
            msg = raises(function() return gl.load_state(p) end)
            has(msg, "load_state")
            has(msg, p)
        end)

        it("a directory as path raises on load and on save, leaving no temp file", function()
            local sub = dir .. "/sub"
            assert(os.execute("mkdir " .. quote(sub)))
            local msg = raises(function() return gl.load(sub) end)
            has(msg, "load")
            has(msg, sub)
            has(msg, "Is a directory")
            msg = raises(function() return gl.load_state(sub) end)
            has(msg, "load_state")
            msg = raises(function() gl.save(sub, t) end)
            has(msg, "save")
            has(msg, sub)
            msg = raises(function() gl.save_state(sub, {w = t}) end)
            has(msg, "save_state")
            has(msg, sub)
            assert.same({"sub"}, listdir(dir))
        end)

        it("an unwritable path raises and creates nothing", function()
            local p = dir .. "/no/such/dir/x.npy"
            local msg = raises(function() gl.save(p, t) end)
            has(msg, "save")
            has(msg, p)
            has(msg, "No such file or directory")
            msg = raises(function() gl.save_state(dir .. "/no/x.npz", {w = t}) end)
            has(msg, "save_state")
            has(msg, dir .. "/no/x.npz")
            assert.is_false(exists(p))
            assert.same({}, listdir(dir))
        end)

        it("a truncated .npy file raises with both sizes", function()
            local p = dir .. "/cut.npy"
            python("np.save(d + '/cut.npy', np.arange(6, dtype='<f4').reshape(2, 3))\n", dir)
            local whole = read_bytes(p)
            write_bytes(p, whole:sub(1, #whole - 4))
            local msg = raises(function() return gl.load(p) end)
            has(msg, "load")
            has(msg, p)
            has(msg, "truncated data: header says 24 bytes, file has 20")
            write_bytes(p, whole:sub(1, 40))
            msg = raises(function() return gl.load(p) end)
            has(msg, p)
            has(msg, "truncated header")
            write_bytes(p, whole:sub(1, 7))
            has(raises(function() return gl.load(p) end), p)
        end)

        it("garbage and empty files raise 'not a .npy file'", function()
            local p = dir .. "/junk.npy"
            write_bytes(p, "this is not numpy at all, just text\n")
            local msg = raises(function() return gl.load(p) end)
            has(msg, "load")
            has(msg, p)
            has(msg, "not a .npy file")
            write_bytes(p, "")
            has(raises(function() return gl.load(p) end), "not a .npy file")
            msg = raises(function() return gl.load_state(p) end)
            has(msg, "load_state")
            has(msg, "not a .npz file")
        end)

        it("an unsupported dtype names the dtype", function()
            local p = dir .. "/c8.npy"
            python("np.save(d + '/c8.npy', np.zeros(3, dtype='<c8'))\n", dir)
            local msg = raises(function() return gl.load(p) end)
            has(msg, "load")
            has(msg, p)
            has(msg, "unsupported dtype '<c8'")
        end)

        it("a compressed .npz says to use numpy.savez", function()
            local p = dir .. "/c.npz"
            python("np.savez_compressed(d + '/c.npz', x=np.ones(3))\n", dir)
            local msg = raises(function() return gl.load_state(p) end)
            has(msg, "load_state")
            has(msg, p)
            has(msg, "member 'x.npy' is compressed")
            has(msg, "savez_compressed")
        end)

        it("a corrupt or truncated .npz raises naming the path", function()
            local p = dir .. "/s.npz"
            gl.save_state(p, {w = gl.arange(0, 16)})
            local whole = read_bytes(p)
            -- Flip a byte of the data: the CRC check catches it.
            local at = whole:find("\x00\x00\x80\x3f", 1, true)   -- float32 1.0
            write_bytes(p, whole:sub(1, at - 1) .. "\x01" .. whole:sub(at + 1))
            local msg = raises(function() return gl.load_state(p) end)
            has(msg, p)
            has(msg, "CRC-32 mismatch")
            write_bytes(p, whole:sub(1, #whole - 30))
            msg = raises(function() return gl.load_state(p) end)
            has(msg, "load_state")
            has(msg, p)
        end)

        it("bad arguments name the function and the argument", function()
            local p = dir .. "/x.npy"
            has(raises(function() gl.save(p, "not a tensor") end), "bad argument #2 to 'save'")
            has(raises(function() gl.save(nil, t) end),
                "bad argument #1 to 'save' (string expected, got nil)")
            has(raises(function() gl.save(p) end), "bad argument #2 to 'save'")
            has(raises(function() return gl.load() end), "bad argument #1 to 'load'")
            has(raises(function() return gl.load(p .. "\0.txt") end), "NUL")
            has(raises(function() gl.save_state(p, t) end), "bad argument #2 to 'save_state'")
            has(raises(function() return gl.load_state({}) end), "bad argument #1 to 'load_state'")
            has(raises(function() gl.save_state(p, {t}) end), "names must be strings")
            has(raises(function() gl.save_state(p, {[""] = t}) end), "empty")
            assert.same({}, listdir(dir))
        end)

        it("save_state with a non-tensor value names the key", function()
            local msg = raises(function() gl.save_state(dir .. "/s.npz", {w = t, b = "zero"}) end)
            has(msg, "bad argument #2 to 'save_state'")
            has(msg, "'b'")
            has(msg, "string")
        end)

        it("a failed save leaves the previous file intact", function()
            local p, q = dir .. "/keep.npy", dir .. "/keep.npz"
            gl.save(p, t)
            gl.save_state(q, {w = t})
            local before_p, before_q = read_bytes(p), read_bytes(q)
            raises(function() gl.save(p, {1, 2}) end)
            raises(function() gl.save_state(q, {w = t, v = 5}) end)
            raises(function() gl.save_state(q, {[1] = t}) end)
            assert.equal(before_p, read_bytes(p))
            assert.equal(before_q, read_bytes(q))
            assert.same({{1, 2}, {3, 4}}, gl.load(p):totable())
            assert.same({{1, 2}, {3, 4}}, gl.load_state(q).w:totable())
            assert.same({"keep.npy", "keep.npz"}, listdir(dir))
        end)

        it("mutated files either load or raise, never crash", function()
            local p, q = dir .. "/m.npy", dir .. "/m.npz"
            gl.save(p, gl.arange(0, 6):view{2, 3})
            gl.save_state(q, {a = gl.ones{3}, b = gl.tensor(2)})
            local seeds = {read_bytes(p), read_bytes(q)}
            local target = dir .. "/fuzz"
            math.randomseed(1234)
            for i = 1, 400 do
                local s = seeds[i % 2 + 1]
                local bytes = {s:byte(1, -1)}
                for _ = 1, math.random(1, 4) do
                    bytes[math.random(1, #bytes)] = math.random(0, 255)
                end
                local cut = math.random() < 0.2 and math.random(0, #bytes) or #bytes
                write_bytes(target, string.char(table.unpack(bytes, 1, cut)))
                local ok, err = pcall(gl.load, target)
                assert(ok or type(err) == "string")
                ok, err = pcall(gl.load_state, target)
                assert(ok or type(err) == "string")
            end
        end)
    end)
end)
