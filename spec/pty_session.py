"""pty_session — drives the gradlab REPL through a pseudo-terminal for the specs
(program_spec.lua, robust_spec.lua), as a person at a terminal would.

    from pty_session import start, send, expect, finish
    start(program, {"GRADLAB_HISTORY": path}, expect_timeout=10.0)
    expect("gl> "); send("x = 42\\r"); expect("gl> ")
    finish(5.0)   # Ctrl-D, then prints "exit N" (or kills the program)

A failed expect prints the transcript, kills the program and exits 1.
"""
import os
import pty
import select
import signal
import sys
import time

_pid, _fd = None, None
_transcript, _pos = b"", 0
_timeout = 10.0


def start(program, env_extra, expect_timeout=10.0):
    """Starts `program` on a new pseudo-terminal (TERM=xterm plus env_extra)."""
    global _pid, _fd, _timeout
    env = dict(os.environ, TERM="xterm", **env_extra)
    _timeout = expect_timeout
    _pid, _fd = pty.fork()
    if _pid == 0:
        os.execve(program, [program], env)


def expect(token, timeout=None):
    """Waits for `token` in the output after the previous expected token."""
    global _transcript, _pos
    end = time.time() + (timeout if timeout is not None else _timeout)
    while _transcript.find(token.encode(), _pos) < 0:
        left = end - time.time()
        ready = select.select([_fd], [], [], max(left, 0))[0] if left > 0 else []
        if not ready:
            print("TIMEOUT waiting for %r after %r; transcript: %r"
                  % (token, _transcript[:_pos].decode(errors="replace")[-60:],
                     _transcript.decode(errors="replace")))
            os.kill(_pid, signal.SIGKILL)
            sys.exit(1)
        try:
            _transcript += os.read(_fd, 4096)
        except OSError:
            pass
    # The next expect looks at the output after this token only.
    _pos = _transcript.find(token.encode(), _pos) + len(token)


def send(text):
    """Types `text`, a moment after the prompt: libedit sets the terminal to raw
    mode as it starts reading, and input that comes before is cooked by the
    kernel (echoed, ^D and ^C taken by the line discipline)."""
    time.sleep(0.1)
    os.write(_fd, text.encode())


def finish(timeout):
    """Sends Ctrl-D and waits for the program to end: prints "exit N" and exits
    0, or prints "still running after Ctrl-D" and kills it."""
    send("\x04")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if select.select([_fd], [], [], 0.05)[0]:
            try:
                os.read(_fd, 4096)
            except OSError:
                pass
        wpid, status = os.waitpid(_pid, os.WNOHANG)
        if wpid:
            print("exit", os.waitstatus_to_exitcode(status))
            sys.exit(0)
    print("still running after Ctrl-D")
    os.kill(_pid, signal.SIGKILL)
