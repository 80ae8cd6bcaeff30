/*
 * repl.h — the pieces of the `gradlab` program and how they call each other.
 *
 *   main.c     options, the Lua state, package.path, running scripts and -e chunks,
 *              and prog_docall(): a protected call that Ctrl-C can interrupt.
 *   repl.c     the read-eval-print loop, on a terminal (libedit: line editing, history,
 *              tab completion) or on piped input (same evaluation, no prompts).
 *   inspect.c  what the REPL prints (pretty-printed results) and suggests (completion
 *              candidates), as plain functions of the Lua state; also exported to Lua as
 *              the module "gradlab.repl" so that specs can test them without a terminal.
 */
#ifndef GRADLAB_PROGRAM_REPL_H
#define GRADLAB_PROGRAM_REPL_H

#include <stdbool.h>

#include <lua.h>

/* ------------------------------------------------------------------ main.c */

/* Calls the function below its `narg` arguments like lua_pcall, with a message handler that
 * appends a traceback, and with SIGINT turned into the Lua error "interrupted!".  With
 * keep_session (the terminal REPL) every Ctrl-C only interrupts, so that an impatient second
 * Ctrl-C during a long C operation does not lose the session; otherwise, as in lua.c, a second
 * Ctrl-C kills the process.  Returns the lua_pcall status; on error the message (with
 * traceback) is at the top of the stack. */
int prog_docall(lua_State *L, int narg, int nres, bool keep_session);

/* Prints the error message at the top of the stack on stderr, prefixed by `prefix` when it is
 * not NULL, with the frames of the program itself (the trailing "[C]: in ?") cut from its
 * traceback; pops it. */
void prog_report(lua_State *L, const char *prefix);

/* ------------------------------------------------------------------ repl.c */

typedef enum repl_mode {
    REPL_TERMINAL,   /* stdin is a terminal: libedit, prompts, history, completion */
    REPL_PROMPTED,   /* -i on piped input: plain reads, prompts printed */
    REPL_QUIET       /* piped input or `-`: plain reads, no prompts */
} repl_mode;

/* Reads, evaluates and prints chunks from stdin until end of input.  Returns the number of
 * chunks that failed (syntax or run-time errors), so that piped use can report failure. */
int repl_run(lua_State *L, repl_mode mode);

/* ---------------------------------------------------------------- inspect.c */

/* lua_CFunction: formats all its arguments as the REPL prints results (tab-separated; strings
 * raw, tables as short sorted literals, other values through tostring); returns the string. */
int repl_format(lua_State *L);

/* lua_CFunction: completes the name chain at the end of the text (argument 1): "gl.ze",
 * "gl.nn.Li", "x = t:res" (methods), "pri" (globals and keywords).  Returns a sorted sequence
 * of candidates, each the whole text with that chain completed ("gl.zeros", "x = t:reshape"),
 * and a table mapping each candidate to the value it names (keywords map to true).  Raises
 * if resolving the chain raises (an __index function). */
int repl_complete(lua_State *L);

/* Opens the module "gradlab.repl" = {format = repl_format, complete = (first result only)}. */
int luaopen_gradlab_repl(lua_State *L);

#endif
