-- spec/install_spec.lua — `make install PREFIX=…` gives a working program, Lua module,
-- and C library with header and pkg-config file.
local function run(command)
  local pipe = assert(io.popen(command .. " 2>&1"))
  local output = pipe:read("a")
  local ok, _, code = pipe:close()
  return ok, output, code
end

describe("make install", function()
  local prefix

  setup(function()
    prefix = os.tmpname()
    os.remove(prefix)
    local ok, output = run("make -s install PREFIX=" .. prefix)
    assert(ok, output)
  end)

  teardown(function()
    if prefix then os.execute("rm -rf " .. prefix) end
  end)

  it("installs a program that finds its Lua files", function()
    local ok, output = run(prefix .. "/bin/gradlab -e 'print(gl.ones{2}:sum():item())'")
    assert.is_true(ok, output)
    assert.equal("2.0\n", output)
  end)

  it("installs the module into the standard Lua 5.4 layout", function()
    assert.is_not_nil(io.open(prefix .. "/lib/lua/5.4/gradlab/core.so"))
    assert.is_not_nil(io.open(prefix .. "/share/lua/5.4/gradlab/init.lua"))
    local env = ("LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua' LUA_CPATH='%s/lib/lua/5.4/?.so' ")
        :format(prefix, prefix, prefix)
    local ok, output = run(env .. "lua5.4 -e 'local gl = require \"gradlab\"; print(gl.eye(2):sum():item())'")
    assert.is_true(ok, output)
    assert.equal("2.0\n", output)
  end)

  it("installs a header, libraries and a pkg-config file for C users", function()
    local source = prefix .. "/use.c"
    local file = assert(io.open(source, "w"))
    file:write([[
#include <gradlab.h>
#include <stdio.h>
int main(void) {
    gl_error err;
    gl_tensor *t = NULL, *s = NULL;
    int64_t shape[2] = {3, 4};
    if (gl_tensor_ones(2, shape, &t, &err) || gl_tensor_reduce_all(GL_REDUCE_SUM, t, &s, &err)) {
        puts(err.message);
        return 1;
    }
    printf("%g\n", gl_tensor_data(s)[0]);
    gl_tensor_release(t);
    gl_tensor_release(s);
    return 0;
}
]])
    file:close()
    local env = "PKG_CONFIG_PATH=" .. prefix .. "/lib/pkgconfig "
    local ok, output = run(env .. "cc -o " .. prefix .. "/use " .. source ..
                           " $(" .. env .. "pkg-config --cflags --libs --static gradlab) -Wl,-rpath," .. prefix .. "/lib")
    assert.is_true(ok, output)
    ok, output = run(prefix .. "/use")
    assert.is_true(ok, output)
    assert.equal("12\n", output)
  end)
end)
