/*
 * main.c — the `gradlab` program: Lua 5.4 with gradlab built in.
 *
 *   gradlab [options] [script [args]]
 *
 * Options and `arg` follow the stock `lua` interpreter (lua.c) so that scripts behave the same
 * under both; the differences are that the gradlab C core is linked in (preloaded as
 * "gradlab.core", never loaded a second time from core.so), the global `gl` holds
 * require("gradlab") before anything runs, and input from a pipe is read line by line as the
 * REPL would (`echo '1+1' | gradlab` prints 2) instead of as one file.  LUA_INIT is not run.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "bindings.h"
#include "repl.h"

#ifndef GRADLAB_VERSION
#define GRADLAB_VERSION "0.1.0"
#endif

#define PROGNAME "gradlab"

/* ------------------------------------------------------------- interrupts */

/* The state a SIGINT interrupts.  A signal handler gets no user pointer, so this one static is
 * unavoidable (lua.c does the same); it is set just before each protected call. */
static lua_State *volatile interrupt_state = NULL;

/* Runs at the next line, call, return or instruction of Lua code after a SIGINT. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    luaL_error(L, "interrupted!");
}

/* lua_sethook is the one Lua call that is safe in a signal handler.  The hook stops the Lua
 * code at its next step; a C function (a long matmul) is stopped when it returns. */
static void on_sigint_keep(int sig)
{
    (void)sig;
    lua_sethook(interrupt_state, stop_hook,
                LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

/* As lua.c: the handler resets itself to the default, so that a second Ctrl-C kills a C
 * function that never returns to Lua. */
static void on_sigint_once(int sig)
{
    signal(sig, SIG_DFL);
    on_sigint_keep(sig);
}

/* Message handler: turns any error value into a string and appends a traceback. */
static int msghandler(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int prog_docall(lua_State *L, int narg, int nres, bool keep_session)
{
    int base = lua_gettop(L) - narg;
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);

    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    action.sa_handler = keep_session ? on_sigint_keep : on_sigint_once;
    sigemptyset(&action.sa_mask);
    interrupt_state = L;
    sigaction(SIGINT, &action, &previous);
    int status = lua_pcall(L, narg, nres, base);
    sigaction(SIGINT, &previous, NULL);
    /* A Ctrl-C that came after the last Lua instruction left the hook set: drop it, or the
     * next chunk would stop at once.  Only our hook: the user's debug.sethook stays. */
    if (lua_gethook(L) == stop_hook)
        lua_sethook(L, NULL, 0, 0);
    /* A module whose forward raised (or was interrupted) left its path set for messages. */
    if (status != LUA_OK)
        gl_set_module_path("");

    lua_remove(L, base);
    return status;
}

void prog_report(lua_State *L, const char *prefix)
{
    static const char tail[] = "\n\t[C]: in ?";
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    if (msg == NULL) {
        msg = "(error object is not a string)";
        len = strlen(msg);
    }
    /* The bottom frames are this program's C functions calling the chunk: not the user's. */
    while (len >= sizeof tail - 1 && memcmp(msg + len - (sizeof tail - 1), tail, sizeof tail - 1) == 0)
        len -= sizeof tail - 1;
    const char *header = "\nstack traceback:";
    if (len >= strlen(header) && memcmp(msg + len - strlen(header), header, strlen(header)) == 0)
        len -= strlen(header);
    fflush(stdout);
    if (prefix != NULL)
        fprintf(stderr, "%s: ", prefix);
    fprintf(stderr, "%.*s\n", (int)len, msg);
    fflush(stderr);
    lua_pop(L, 1);
}

/* Reports a failed status, returns whether it succeeded. */
static bool report_status(lua_State *L, int status)
{
    if (status != LUA_OK)
        prog_report(L, PROGNAME);
    return status == LUA_OK;
}

/* ------------------------------------------------------------------ usage */

static void print_version(void)
{
    printf("gradlab %s  (%s)\n", GRADLAB_VERSION, LUA_RELEASE);
    fflush(stdout);
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: " PROGNAME " [options] [script [args]]\n"
            "Available options are:\n"
            "  -e chunk  execute string 'chunk'\n"
            "  -i        enter interactive mode after executing 'script'\n"
            "  -l mod    require library 'mod' into global 'mod'\n"
            "  -l g=mod  require library 'mod' into global 'g'\n"
            "  -v        show version information (also --version)\n"
            "  -h        show this help (also --help)\n"
            "  -E        ignore environment variables (LUA_PATH, LUA_CPATH)\n"
            "  -W        turn warnings on\n"
            "  --        stop handling options\n"
            "  -         read statements from stdin, one line at a time\n"
            "       " PROGNAME " plot run.csv [-o fig.png] [--kind dashboard|lines|heatmap|hist|profile]\n"
            "                 [--field grad_norm] [--title text] [--no-theory]\n"
            "  re-renders a monitor CSV (mon:to_csv) as a PNG, without re-running training\n"
            "Without a script or -e, " PROGNAME " starts a REPL when stdin is a terminal and\n"
            "reads statements from stdin otherwise.  The global 'gl' holds require('gradlab').\n"
            "History file: $GRADLAB_HISTORY or ~/.gradlab_history.\n");
    fflush(out);
}

/* ------------------------------------------------------------- arguments */

enum {
    HAS_ERROR = 1,   /* bad option */
    HAS_I = 2,       /* -i */
    HAS_V = 4,       /* -v */
    HAS_E = 8,       /* -e */
    HAS_NOENV = 16,  /* -E */
    HAS_HELP = 32,   /* -h */
    HAS_L = 64       /* -l */
};

/* Scans the options as lua.c does.  *script becomes the index of the script name (argc when
 * there is none); on a bad option it is the index of that option. */
static int collect_args(char **argv, int *script)
{
    int flags = 0;
    int i;
    for (i = 1; argv[i] != NULL; i++) {
        *script = i;
        const char *a = argv[i];
        if (a[0] != '-')
            return flags;
        if (strcmp(a, "--version") == 0) {
            flags |= HAS_V;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            flags |= HAS_HELP;
            continue;
        }
        switch (a[1]) {
        case '-':
            if (a[2] != '\0')
                return HAS_ERROR;
            *script = i + 1;
            return flags;
        case '\0':
            return flags;   /* the script is "-": stdin */
        case 'E':
        case 'W':
        case 'h':
        case 'i':
        case 'v':
            if (a[2] != '\0')
                return HAS_ERROR;
            flags |= a[1] == 'E' ? HAS_NOENV : a[1] == 'h' ? HAS_HELP
                   : a[1] == 'i' ? HAS_I | HAS_V : a[1] == 'v' ? HAS_V : 0;
            break;
        case 'e':
        case 'l':
            flags |= a[1] == 'e' ? HAS_E : HAS_L;
            if (a[2] == '\0') {
                i++;
                if (argv[i] == NULL || argv[i][0] == '-')
                    return HAS_ERROR;
            }
            break;
        default:
            return HAS_ERROR;
        }
    }
    *script = i;
    return flags;
}

/* The global `arg`: arg[0] is the script, arg[1..] its arguments, the interpreter and its
 * options at negative indices.  Without a script, arg[0] is the program. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
    if (script == argc)
        script = 0;
    lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

/* Runs -e, -l and -W in order. */
static bool run_args(lua_State *L, char **argv, int script)
{
    for (int i = 1; i < script; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l' && a[1] != 'W'))
            continue;
        if (a[1] == 'W') {
            lua_warning(L, "@on", 0);
            continue;
        }
        const char *value = a[2] != '\0' ? a + 2 : argv[++i];
        int status;
        if (a[1] == 'e') {
            status = luaL_loadbuffer(L, value, strlen(value), "=(command line)");
            if (status == LUA_OK)
                status = prog_docall(L, 0, 0, false);
        } else {
            /* -l g=mod sets global g to require("mod"); -l mod sets global mod. */
            const char *eq = strchr(value, '=');
            const char *module = eq != NULL ? eq + 1 : value;
            lua_getglobal(L, "require");
            lua_pushstring(L, module);
            status = prog_docall(L, 1, 1, false);
            if (status == LUA_OK) {
                if (eq != NULL)
                    lua_pushlstring(L, value, (size_t)(eq - value));
                else
                    lua_pushstring(L, value);
                lua_insert(L, -2);
                lua_setglobal(L, lua_tostring(L, -2));
                lua_pop(L, 1);
            }
        }
        if (!report_status(L, status))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ setup */

/* Prepends to package.path the Lua modules beside the executable: <dir>/lua (the build tree)
 * and <dir>/../share/lua/5.4 (an installed prefix). */
static void setup_path(lua_State *L, const char *argv0)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
    } else if (argv0 != NULL && strchr(argv0, '/') != NULL && strlen(argv0) < sizeof exe) {
        strcpy(exe, argv0);
    } else {
        return;
    }
    char *slash = strrchr(exe, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    const char *dir = slash == exe ? "" : exe;

    lua_getglobal(L, "package");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;"
                       "%s/../share/lua/5.4/?.lua;%s/../share/lua/5.4/?/init.lua;%s",
                    dir, dir, dir, dir, lua_isstring(L, -1) ? lua_tostring(L, -1) : "");
    lua_setfield(L, -3, "path");
    lua_pop(L, 2);
}

/* Makes require("gradlab.core") return the core linked into this program, and
 * require("gradlab.repl") the REPL helpers. */
static void preload_modules(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_gradlab_core);
    lua_setfield(L, -2, "gradlab.core");
    lua_pushcfunction(L, luaopen_gradlab_repl);
    lua_setfield(L, -2, "gradlab.repl");
    lua_pop(L, 1);
}

/* gl = require("gradlab") */
static bool load_gradlab(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "gradlab");
    int status = prog_docall(L, 1, 1, false);
    if (status != LUA_OK) {
        fprintf(stderr, PROGNAME ": cannot load the gradlab Lua module\n");
        return report_status(L, status);
    }
    lua_setglobal(L, "gl");
    return true;
}

/* Runs the script at argv[script] with the arguments after it as `...`. */
static bool run_script(lua_State *L, char **argv, int argc, int script)
{
    int status = luaL_loadfile(L, argv[script]);
    if (status == LUA_OK) {
        int n = argc - script - 1;
        luaL_checkstack(L, n + 3, "too many arguments to script");
        for (int i = 1; i <= n; i++)
            lua_pushstring(L, argv[script + i]);
        status = prog_docall(L, n, LUA_MULTRET, false);
    }
    return report_status(L, status);
}

/* The whole program, run inside a protected call so that memory errors are reported. */
/* `gradlab plot run.csv ...`: hands the arguments to gradlab.cli.plot. */
static int run_plot_command(lua_State *L, int argc, char **argv)
{
    luaL_openlibs(L);
    setup_path(L, argv[0]);
    preload_modules(L);
    if (!load_gradlab(L)) return 0;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "gradlab.cli");
    if (!report_status(L, prog_docall(L, 1, 1, false))) return 0;
    lua_getfield(L, -1, "run_plot");
    lua_createtable(L, argc - 2, 0);
    for (int i = 2; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1);
    }
    if (!report_status(L, prog_docall(L, 1, 2, false))) return 0;
    if (!lua_toboolean(L, -2)) {   /* a usage or file error: the message alone, no traceback */
        fprintf(stderr, PROGNAME " %s\n", lua_tostring(L, -1));
        return 0;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int pmain(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = (char **)lua_touserdata(L, 2);
    if (argc >= 2 && strcmp(argv[1], "plot") == 0) {
        lua_settop(L, 0);
        return run_plot_command(L, argc, argv);
    }
    int script = argc;
    int flags = collect_args(argv, &script);
    lua_settop(L, 0);

    if (flags == HAS_ERROR) {
        const char *bad = argv[script];
        if (bad[1] == 'e' || bad[1] == 'l')
            fprintf(stderr, PROGNAME ": '%s' needs argument\n", bad);
        else
            fprintf(stderr, PROGNAME ": unrecognized option '%s'\n", bad);
        print_usage(stderr);
        return 0;
    }
    if (flags & HAS_HELP) {
        print_usage(stdout);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (flags & HAS_V) {
        print_version();
        if (script == argc && !(flags & (HAS_I | HAS_E | HAS_L))) {   /* nothing else to do */
            lua_pushboolean(L, 1);
            return 1;
        }
    }
    if (flags & HAS_NOENV) {
        lua_pushboolean(L, 1);
        lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
    }

    luaL_openlibs(L);
    setup_path(L, argv[0]);
    preload_modules(L);
    create_arg_table(L, argv, argc, script);
    if (!load_gradlab(L))
        return 0;
    if (!run_args(L, argv, script))
        return 0;

    int failures = 0;
    bool stdin_script = false;
    if (script < argc) {
        stdin_script = strcmp(argv[script], "-") == 0 && strcmp(argv[script - 1], "--") != 0;
        if (stdin_script)
            failures += repl_run(L, REPL_QUIET);
        else if (!run_script(L, argv, argc, script))
            return 0;
    }
    if (flags & HAS_I) {
        failures = 0;   /* a session ends well however many lines failed in it */
        repl_run(L, isatty(STDIN_FILENO) ? REPL_TERMINAL : REPL_PROMPTED);
    } else if (script == argc && !(flags & (HAS_E | HAS_V))) {
        if (isatty(STDIN_FILENO)) {
            print_version();
            repl_run(L, REPL_TERMINAL);
        } else {
            failures += repl_run(L, REPL_QUIET);
        }
    }
    lua_pushboolean(L, failures == 0);
    return 1;
}

int main(int argc, char **argv)
{
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, PROGNAME ": cannot create state: not enough memory\n");
        return EXIT_FAILURE;
    }
    lua_pushcfunction(L, pmain);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 0);
    bool ok = status == LUA_OK && lua_toboolean(L, -1);
    if (status != LUA_OK)
        prog_report(L, PROGNAME);
    lua_close(L);
    return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
