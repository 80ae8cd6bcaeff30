-- program_spec.lua — the `gradlab` program (bindings/program/): script runner, -e, piped
-- REPL mode, pretty-printing, completion candidates, and a terminal session driven through a
-- pseudo-terminal (Ctrl-C, Tab, history, Ctrl-D).
--
-- The program is $GRADLAB_PROGRAM (the Makefile exports it), else build/gradlab from the
-- repository root.  Every command runs under `timeout`, so a hang fails instead of blocking.

local PROGRAM = os.getenv("GRADLAB_PROGRAM") or "build/gradlab"
if PROGRAM:sub(1, 1) ~= "/" then
    PROGRAM = (os.getenv("PWD") or ".") .. "/" .. PROGRAM
end
local PYTHON = os.getenv("GRADLAB_PYTHON") or "/usr/bin/python3"

local function quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end
-- The pseudo-terminal drivers import spec/pty_session.py.
local SPEC_DIR = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local PTY_PATH = "PYTHONPATH=" .. quote(SPEC_DIR) .. " "

local function slurp(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function write_file(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
end

-- Runs `gradlab <args>` with `input` on stdin (none if nil) through sh; returns stdout,
-- stderr and the exit code.  `prefix` goes before the command (cd, env).
local function run(args, input, prefix)
    local errfile = os.tmpname()
    local cmd = (prefix or "") .. "timeout 10 " .. quote(PROGRAM) .. " " .. args
        .. " 2>" .. quote(errfile)
    if input ~= nil then
        cmd = "printf '%s' " .. quote(input) .. " | " .. cmd
    else
        cmd = cmd .. " </dev/null"
    end
    local p = assert(io.popen(cmd, "r"))
    local out = p:read("a")
    local _, _, code = p:close()
    local err = slurp(errfile) or ""
    os.remove(errfile)
    return out, err, code
end

-- Completion candidates through the program's own module (needs the program's state).
local function complete(setup, text)
    local out, err, code = run("-e " .. quote(setup .. "\nfor _, c in ipairs(require('gradlab.repl')"
        .. ".complete(" .. string.format("%q", text) .. ")) do print(c) end"))
    assert.equal(0, code, err)
    local list = {}
    for line in out:gmatch("[^\n]+") do list[#list + 1] = line end
    return list
end

local function contains(list, value)
    for _, v in ipairs(list) do
        if v == value then return true end
    end
    return false
end

describe("gradlab -e and scripts", function()
    it("runs -e chunks in order, with gl already loaded", function()
        local out, err, code = run("-e 'print(1+1)' -e 'print(type(gl), gl == require(\"gradlab\"))'")
        assert.equal(0, code, err)
        assert.equal("2\ntable\ttrue\n", out)
    end)

    it("gives a script `arg` and `...` as lua does", function()
        local script = os.tmpname()
        write_file(script, "print(arg[0] == ..., #arg, arg[1], arg[2], select('#', ...), ...)\n"
            .. "print(arg[-1] ~= nil)\n")
        -- arg[0] is the script, so `arg[0] == ...` compares it with the first vararg: false.
        local out, err, code = run(quote(script) .. " one 'two words'")
        os.remove(script)
        assert.equal(0, code, err)
        assert.equal("false\t2\tone\ttwo words\t2\tone\ttwo words\ntrue\n", out)
    end)

    it("exits non-zero with the message and a traceback when a script fails", function()
        local script = os.tmpname()
        write_file(script, "local function inner() error('broken on purpose') end\ninner()\n")
        local out, err, code = run(quote(script))
        os.remove(script)
        assert.is_not.equal(0, code)
        assert.equal("", out)
        assert.truthy(err:find("broken on purpose", 1, true), err)
        assert.truthy(err:find("stack traceback:", 1, true), err)
        assert.truthy(err:find("in local 'inner'", 1, true), err)
    end)

    it("reports a missing script and a bad option", function()
        local _, err, code = run("/nonexistent/script.lua")
        assert.is_not.equal(0, code)
        assert.truthy(err:find("cannot open", 1, true), err)
        _, err, code = run("-Q")
        assert.is_not.equal(0, code)
        assert.truthy(err:find("usage:", 1, true), err)
    end)

    it("honours os.exit", function()
        local _, _, code = run("-e 'os.exit(3)'")
        assert.equal(3, code)
        _, _, code = run("-e 'os.exit(true)'")
        assert.equal(0, code)
    end)

    it("prints its version and help", function()
        local out, _, code = run("--version")
        assert.equal(0, code)
        assert.truthy(out:match("^gradlab %S+  %(Lua 5%.4"), out)
        out, _, code = run("-h")
        assert.equal(0, code)
        assert.truthy(out:find("usage: gradlab", 1, true), out)
    end)

    it("finds its Lua modules from any directory, without LUA_PATH", function()
        local out, err, code = run("-e 'print(gl.zeros ~= nil)'", nil,
            "cd / && env -u LUA_PATH -u LUA_CPATH ")
        assert.equal(0, code, err)
        assert.equal("true\n", out)
    end)

    it("interrupts a running script on SIGINT with 'interrupted!'", function()
        -- The signal goes to gradlab itself once it runs the loop (`timeout -s INT` would also
        -- signal the whole process group, i.e. twice, and a second SIGINT kills as in lua.c).
        local errfile = os.tmpname()
        local shell = table.concat({
            quote(PROGRAM) .. " -e 'io.stderr:write(\"ready\\n\") while true do end'"
                .. " </dev/null 2>" .. quote(errfile) .. " & pid=$!",
            "(sleep 10; kill -9 $pid) >/dev/null 2>&1 & watchdog=$!",
            "i=0; while ! grep -q ready " .. quote(errfile) .. " && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done",
            "kill -INT $pid; wait $pid; rc=$?; kill $watchdog 2>/dev/null; echo $rc",
        }, "\n")
        local p = io.popen(shell)
        local status = p:read("a")
        p:close()
        local err = slurp(errfile)
        os.remove(errfile)
        assert.equal("1\n", status)
        assert.truthy(err:find("interrupted!", 1, true), err)
    end)
end)

describe("piped REPL mode", function()
    it("evaluates an expression line and prints its value", function()
        local out, err, code = run("", "1+1\n")
        assert.equal(0, code, err)
        assert.equal("2\n", out)
    end)

    it("reads multi-line chunks", function()
        local out, err, code = run("", "for i = 1, 2 do\nprint(i * 10)\nend\n")
        assert.equal(0, code, err)
        assert.equal("10\n20\n", out)
    end)

    it("prints the value of an expression spread over several lines", function()
        local out, err, code = run("", "math.max(1,\n5)\n")
        assert.equal(0, code, err)
        assert.equal("5\n", out)
    end)

    it("keeps globals between lines, prints nothing for statements", function()
        local out, err, code = run("", "x = 6\nlocal y = 1\nx * 7\n")
        assert.equal(0, code, err)
        assert.equal("42\n", out)
    end)

    it("separates several results with tabs; strings raw at top level", function()
        local out = run("", "1, nil, 'text', true\n")
        assert.equal("1\tnil\ttext\ttrue\n", out)
    end)

    it("pretty-prints tables as short sorted literals", function()
        local out, err = run("", table.concat({
            "{1, 2, 3}",
            "{zeta = 1, alpha = 'a', [10] = 'ten', 'first'}",
            "{a = {b = {c = {d = 1}}}}",
            "{['key with space'] = \"line\\nbreak\"}",
            "{}",
        }, "\n") .. "\n")
        assert.equal("", err)
        assert.equal(table.concat({
            "{1, 2, 3}",
            "{\"first\", [10] = \"ten\", alpha = \"a\", zeta = 1}",
            "{a = {b = {c = {\u{2026}}}}}",
            "{[\"key with space\"] = \"line\\nbreak\"}",
            "{}",
        }, "\n") .. "\n", out)
    end)

    it("caps long tables and survives cycles", function()
        local out = run("", "t = {} for i = 1, 100 do t[i] = i end\nt\nc = {} c.self = c\nc\n")
        local lines = {}
        for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
        assert.truthy(lines[1]:match("^{1, 2, 3, .*, \u{2026}}$"), lines[1])
        assert.is_nil(lines[1]:find("100", 1, true))
        assert.equal("{self = <cycle>}", lines[2])
    end)

    it("prints a tensor through its tostring", function()
        local expected, err = run("-e 'io.write(tostring(gl.tensor{1, 2}), \"\\n\")'")
        assert.equal("", err)
        local out, err2, code = run("", "gl.tensor{1, 2}\n")
        assert.equal(0, code, err2)
        assert.equal(expected, out)
    end)

    it("reports an error and goes on, then exits non-zero", function()
        local out, err, code = run("", "error('boom')\nx = = 1\nprint('still here')\n")
        assert.equal("still here\n", out)
        assert.truthy(err:find("stdin:1: boom", 1, true), err)
        assert.truthy(err:find("unexpected symbol", 1, true), err)
        assert.is_nil(err:find("[C]: in ?", 1, true), err)   -- the program's own frames are cut
        assert.is_not.equal(0, code)
    end)

    it("reports an unfinished chunk at end of input", function()
        local _, err, code = run("", "for i = 1, 2 do\n")
        assert.truthy(err:find("<eof>", 1, true), err)
        assert.is_not.equal(0, code)
    end)

    it("reads stdin line by line with `-`, sharing it with io.read", function()
        local out, err, code = run("- extra", "n = io.read('n')\n41\nn + 1\narg[1]\n")
        assert.equal(0, code, err)
        assert.equal("42\nextra\n", out)
    end)
end)

describe("completion candidates (require 'gradlab.repl')", function()
    it("completes globals and keywords", function()
        local c = complete("", "pri")
        assert.same({ "print" }, c)
        assert.truthy(contains(complete("", "fun"), "function"))
    end)

    it("completes fields of tables, nested", function()
        assert.truthy(contains(complete("", "gl.ze"), "gl.zeros"))
        assert.same({ "a.bb.cde", "a.bb.cdf" }, complete("a = {bb = {cde = 1, cdf = 2, x = 3}}", "a.bb.cd"))
        assert.same({ "x = math.huge" }, complete("", "x = math.hu"))
    end)

    it("completes gl.nn classes", function()
        local out = run("-e 'io.write(tostring(type(gl.nn) == \"table\"))'")
        if out ~= "true" then
            pending("gl.nn is not there yet")
            return
        end
        assert.truthy(contains(complete("", "gl.nn.Li"), "gl.nn.Linear"))
    end)

    it("completes methods of a tensor and of a string after ':'", function()
        assert.truthy(contains(complete("t = gl.tensor{1, 2}", "t:resh"), "t:reshape"))
        assert.same({ "s:upper" }, complete("s = 'x'", "s:up"))
        -- Methods only: a plain field is not offered after ':'.
        assert.same({}, complete("o = setmetatable({}, {__index = {data = 1, dump = print}})", "o:da"))
        assert.same({ "o:dump" }, complete("o = setmetatable({}, {__index = {data = 1, dump = print}})", "o:d"))
    end)

    it("offers nothing for what cannot be indexed", function()
        assert.same({}, complete("", "nothing.here"))
        assert.same({}, complete("n = 1", "n.x"))
        assert.same({}, complete("", "a:b.c"))
    end)
end)

describe("the terminal REPL", function()
    -- Drives `gradlab` under a pseudo-terminal, as a user would type.  Each step waits for
    -- the output it expects, so the test is not timing-sensitive; a step that does not come
    -- within its timeout fails the test with the transcript.
    local DRIVER = [==[
import sys, time
from pty_session import start, send, expect, finish
program, history = sys.argv[1], sys.argv[2]
start(program, {"GRADLAB_HISTORY": history}, expect_timeout=10.0)
expect("gl> ")
send("x = 42\r"); expect("gl> ")
send("while true do end\r"); time.sleep(0.3)
send("\x03"); expect("interrupted!"); expect("gl> ")
send("print(x)\r"); expect("42"); expect("gl> ")
print("interrupt ok")
send("abc\x03"); expect("gl> ")
send("for i = 1, 2 do\r"); expect("..> ")
send("\x03"); expect("gl> ")
send("print('aft' .. 'er')\r"); expect("after"); expect("gl> ")
print("cancel ok")
send("pri\t(6 * 9)\r"); expect("54"); expect("gl> ")
send("t = gl.tensor{1, 2}\r"); expect("gl> ")
send("t:resh\t{2, 1}:size(1) * 1000\r"); expect("2000"); expect("gl> ")
print("completion ok")
finish(5.0)
]==]

    it("interrupts a loop with Ctrl-C, keeps globals, cancels input, completes, exits on Ctrl-D", function()
        local script, history = os.tmpname(), os.tmpname()
        write_file(script, DRIVER)
        os.remove(history)
        local p = io.popen(PTY_PATH .. "timeout 60 " .. PYTHON .. " " .. quote(script) .. " " .. quote(PROGRAM)
            .. " " .. quote(history) .. " 2>&1 </dev/null")
        local out = p:read("a")
        p:close()
        os.remove(script)
        local saved = slurp(history) or ""
        os.remove(history)
        assert.truthy(out:find("interrupt ok", 1, true), out)
        assert.truthy(out:find("cancel ok", 1, true), out)
        assert.truthy(out:find("completion ok", 1, true), out)
        assert.truthy(out:find("exit 0", 1, true), out)
        -- Every entered line went to the history file, completions applied.
        assert.truthy(saved:find("x = 42\n", 1, true), saved)
        assert.truthy(saved:find("print(x)\n", 1, true), saved)
        assert.truthy(saved:find("print(6 * 9)\n", 1, true), saved)
    end)
end)
