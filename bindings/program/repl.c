/*
 * repl.c — the read-eval-print loop of `gradlab`.
 *
 * A chunk is read as lua.c reads it: a line is first tried as `return <line>`, so that an
 * expression prints its value; otherwise it is compiled as a statement, and while the only
 * syntax error is an unexpected end of input ("<eof>"), more lines are read with the
 * continuation prompt (and the `return` form is tried again on the lines so far).  Results
 * are printed by inspect.c's repl_format.
 *
 * On a terminal, lines come from libedit (BSD licence, through its readline emulation) with
 * history and tab completion; on piped input they come from stdin with getline, and the
 * evaluation and printing are the same, without prompts.
 *
 * Ctrl-C: while a chunk runs, prog_docall turns SIGINT into the Lua error "interrupted!" and
 * the session goes on with its globals.  At the prompt, our handler (not libedit's, which
 * would re-raise the signal to the whole process group) sets a flag that our character
 * reader turns into end of input; the pending line and any unfinished multi-line chunk are
 * dropped and a fresh prompt shown.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/types.h>
#include <unistd.h>

#include <editline/readline.h>

#include <lauxlib.h>
#include <lua.h>

#include "repl.h"

#define PROMPT1 "gl> "
#define PROMPT2 "..> "
#define CHUNKNAME "=stdin"
#define EOFMARK "<eof>"
#define HISTORY_MAX 1000     /* lines kept in the history file and in memory */
#define HISTORY_SLACK 250    /* the file may grow this much past HISTORY_MAX before a rewrite */

enum { READ_OK = 0, READ_EOF = -1, READ_CANCEL = -2 };

typedef struct repl {
    lua_State *L;
    repl_mode mode;
    char *history;      /* path of the history file; NULL when there is none */
    char *last;         /* the line last added to the history, to skip repeats */
    char *buffer;       /* getline's buffer for piped input */
    size_t capacity;
    bool first_line;    /* piped input: a first line starting with '#' is skipped */
} repl;

/* Set by SIGINT while readline waits.  Signal state is the one kind of global we keep. */
static volatile sig_atomic_t prompt_interrupted;

/* readline calls the completion function without a user pointer: the state it completes in. */
static lua_State *completion_state;

/* Completion works on the name chain before the cursor (`gl.nn.Li`, `t:resh`), so `.` and
 * `:` are not word breaks; every other punctuation character is. */
static char word_breaks[] = " \t\n!\"#$%&'()*+,-/;<=>?@[\\]^`{|}~";

/* ---------------------------------------------------------------- history */

/* $GRADLAB_HISTORY (empty: no history file) or ~/.gradlab_history; NULL if none. */
static char *history_path(void)
{
    const char *env = getenv("GRADLAB_HISTORY");
    if (env != NULL)
        return *env != '\0' ? strdup(env) : NULL;
    const char *home = getenv("HOME");
    if (home == NULL || *home == '\0')
        return NULL;
    size_t size = strlen(home) + sizeof "/.gradlab_history";
    char *path = malloc(size);
    if (path != NULL)
        snprintf(path, size, "%s/.gradlab_history", home);
    return path;
}

static void write_line(int fd, const char *line)
{
    size_t len = strlen(line);
    /* A short write leaves a partial line at worst; history is best effort. */
    if (write(fd, line, len) == (ssize_t)len)
        (void)!write(fd, "\n", 1);
}

/* Replaces the file with its last HISTORY_MAX lines, atomically (temp file + rename). */
static void history_rewrite(const char *path, char **ring, size_t first, size_t count)
{
    size_t size = strlen(path) + sizeof ".tmp";
    char *tmp = malloc(size);
    if (tmp == NULL)
        return;
    snprintf(tmp, size, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        for (size_t i = first; i < count; i++)
            write_line(fd, ring[i % HISTORY_MAX]);
        if (close(fd) != 0 || rename(tmp, path) != 0)
            unlink(tmp);
    }
    free(tmp);
}

/* Loads the history file into libedit; any failure just means no history. */
static void history_load(repl *r)
{
    FILE *f = fopen(r->history, "r");
    if (f == NULL)
        return;
    char **ring = calloc(HISTORY_MAX, sizeof *ring);   /* the last HISTORY_MAX lines */
    char *line = NULL;
    size_t cap = 0, count = 0;
    ssize_t len;
    while (ring != NULL && (len = getline(&line, &cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        char *copy = strdup(line);
        if (copy == NULL)
            break;
        free(ring[count % HISTORY_MAX]);
        ring[count % HISTORY_MAX] = copy;
        count++;
    }
    free(line);
    fclose(f);
    if (ring == NULL)
        return;
    size_t first = count > HISTORY_MAX ? count - HISTORY_MAX : 0;
    for (size_t i = first; i < count; i++)
        add_history(ring[i % HISTORY_MAX]);
    if (count > HISTORY_MAX + HISTORY_SLACK)
        history_rewrite(r->history, ring, first, count);
    if (count > 0)
        r->last = strdup(ring[(count - 1) % HISTORY_MAX]);
    for (size_t i = 0; i < HISTORY_MAX; i++)
        free(ring[i]);
    free(ring);
}

/* Adds a typed line to the history and appends it to the file. */
static void history_add(repl *r, const char *line)
{
    if (line[strspn(line, " \t\r")] == '\0')
        return;
    if (r->last != NULL && strcmp(r->last, line) == 0)
        return;
    add_history(line);
    free(r->last);
    r->last = strdup(line);
    if (r->history == NULL)
        return;
    int fd = open(r->history, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd >= 0) {
        write_line(fd, line);
        close(fd);
    }
}

/* ------------------------------------------------------------- completion */

/* Protected part of a completion: the Lua work, which may raise (memory, an __index).
 * Argument: the text as a light userdata.  Returns the sorted candidates and the character to
 * append to a single candidate ('.' after a plain table, so that Tab can go on). */
static int complete_protected(lua_State *L)
{
    const char *text = lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_pushstring(L, text);
    repl_complete(L);   /* its two results are at the top */
    int list = lua_gettop(L) - 1, set = list + 1;
    int append = '\0';
    if (lua_rawlen(L, list) == 1) {
        lua_rawgeti(L, list, 1);
        if (lua_rawget(L, set) == LUA_TTABLE && !lua_getmetatable(L, -1))
            append = '.';
    }
    lua_settop(L, list);
    lua_pushinteger(L, append);
    return 2;
}

/* Copies the n candidates of the sequence at `list` in the readline convention:
 * matches[0] replaces the word (the candidates' common prefix), matches[1..n] are listed,
 * then NULL.  A single candidate thus comes as {c, c, NULL}, which is also what libedit
 * expects (it reads matches[2] to detect a single match). */
static char **build_matches(lua_State *L, int list, size_t n)
{
    char **matches = calloc(n + 2, sizeof *matches);
    if (matches == NULL)
        return NULL;
    size_t common = SIZE_MAX;
    for (size_t i = 1; i <= n; i++) {
        lua_rawgeti(L, list, (lua_Integer)i);
        const char *s = lua_tostring(L, -1);
        matches[i] = strdup(s != NULL ? s : "");
        lua_pop(L, 1);
        if (matches[i] == NULL)
            goto fail;
        size_t k = 0;
        while (k < common && matches[i][k] != '\0' && matches[i][k] == matches[1][k])
            k++;
        common = k;
    }
    matches[0] = strndup(matches[1], common);
    if (matches[0] != NULL)
        return matches;
fail:
    for (size_t i = 1; i <= n; i++)
        free(matches[i]);
    free(matches);
    return NULL;
}

static char **attempted_completion(const char *text, int start, int end)
{
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1;   /* never fall back to file names */
    rl_completion_append_character = '\0';
    lua_State *L = completion_state;
    if (L == NULL || !lua_checkstack(L, 4))
        return NULL;
    int top = lua_gettop(L);
    /* Nothing that can raise is done outside the protected call: no longjmp may cross
     * libedit's frames. */
    lua_pushcfunction(L, complete_protected);
    lua_pushlightuserdata(L, (void *)text);
    char **matches = NULL;
    if (lua_pcall(L, 1, 2, 0) == LUA_OK) {
        size_t n = lua_rawlen(L, top + 1);
        if (n > 0)
            matches = build_matches(L, top + 1, n);
        if (matches != NULL && n == 1)
            rl_completion_append_character = (int)lua_tointeger(L, top + 2);
    }
    lua_settop(L, top);
    return matches;
}

/* ------------------------------------------------------------------ input */

static void on_prompt_sigint(int sig)
{
    (void)sig;
    prompt_interrupted = 1;
}

/* Reads one byte of terminal input.  SIGINT is blocked while readline runs and let through
 * only inside pselect, atomically, so that a Ctrl-C is never lost: not even one that comes
 * while libedit prints the prompt, before its first read.  Returns 1, 0 at end of input or on
 * an error, -1 when Ctrl-C was pressed. */
static int read_byte(unsigned char *byte)
{
    sigset_t during;
    sigprocmask(SIG_SETMASK, NULL, &during);
    sigdelset(&during, SIGINT);
    for (;;) {
        if (prompt_interrupted)
            return -1;
        fd_set readable;
        FD_ZERO(&readable);
        FD_SET(STDIN_FILENO, &readable);
        if (pselect(STDIN_FILENO + 1, &readable, NULL, NULL, NULL, &during) < 0) {
            if (errno == EINTR)
                continue;
            return 0;
        }
        ssize_t got = read(STDIN_FILENO, byte, 1);
        if (got == 1)
            return 1;
        if (got == 0 || (errno != EINTR && errno != EAGAIN))
            return 0;
    }
}

/* libedit's character reader (rl_getc_function).  It returns one character as an int, so
 * UTF-8 input is decoded here into its code point (what libedit's own reader does with
 * mbrtowc).  EOF ends readline, which then returns NULL: end of input, or Ctrl-C when
 * prompt_interrupted is set. */
static int read_char(FILE *unused)
{
    (void)unused;
    unsigned char byte;
    if (read_byte(&byte) != 1)
        return EOF;
    if (byte < 0x80 || MB_CUR_MAX == 1)
        return byte;
    int extra = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : 0;
    if (extra == 0 || byte >= 0xF8)
        return 0xFFFD;
    long code = byte & (0x3F >> extra);
    while (extra-- > 0) {
        if (read_byte(&byte) != 1)
            return EOF;
        if ((byte & 0xC0) != 0x80)
            return 0xFFFD;
        code = (code << 6) | (byte & 0x3F);
    }
    return (int)code;
}

/* Reads one line with libedit.  NULL at end of input, or with *cancelled set on Ctrl-C.
 * on_prompt_sigint is the SIGINT handler for the whole terminal session (see repl_run). */
static char *edit_line(const char *prompt, bool *cancelled)
{
    sigset_t block, saved;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &saved);
    prompt_interrupted = 0;   /* a Ctrl-C between two chunks is not for this prompt */
    char *line = readline(prompt);
    sigprocmask(SIG_SETMASK, &saved, NULL);
    *cancelled = line == NULL && prompt_interrupted;
    return line;
}

/* Reads one line (without its newline) and pushes it.  Returns READ_OK, READ_EOF or
 * READ_CANCEL. */
static int read_line(repl *r, const char *prompt)
{
    lua_State *L = r->L;
    if (r->mode == REPL_TERMINAL) {
        bool cancelled;
        char *line = edit_line(prompt, &cancelled);
        if (line == NULL) {
            if (cancelled) {
                fputs("^C\n", stdout);
                fflush(stdout);
            }
            return cancelled ? READ_CANCEL : READ_EOF;
        }
        history_add(r, line);
        lua_pushstring(L, line);
        free(line);
        return READ_OK;
    }
    for (;;) {
        if (r->mode == REPL_PROMPTED) {
            fputs(prompt, stdout);
            fflush(stdout);
        }
        ssize_t len = getline(&r->buffer, &r->capacity, stdin);
        if (len < 0)
            return READ_EOF;
        if (len > 0 && r->buffer[len - 1] == '\n')
            len--;
        bool shebang = r->first_line && r->mode == REPL_QUIET && len > 0 && r->buffer[0] == '#';
        r->first_line = false;
        if (shebang)
            continue;
        lua_pushlstring(L, r->buffer, (size_t)len);
        return READ_OK;
    }
}

/* Whether the status and message at the top say the chunk is only unfinished. */
static bool is_incomplete(lua_State *L, int status)
{
    if (status != LUA_ERRSYNTAX)
        return false;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    size_t mark = sizeof EOFMARK - 1;
    return msg != NULL && len >= mark && strcmp(msg + len - mark, EOFMARK) == 0;
}

/* Compiles `return <source>;` from the source at the top.  On success replaces the source
 * by the function and returns true; otherwise leaves the stack as it was. */
static bool load_as_expression(lua_State *L)
{
    const char *source = lua_pushfstring(L, "return %s;", lua_tostring(L, -1));
    if (luaL_loadbuffer(L, source, strlen(source), CHUNKNAME) == LUA_OK) {
        lua_remove(L, -2);
        lua_remove(L, -2);
        return true;
    }
    lua_pop(L, 2);
    return false;
}

/* Reads and compiles one chunk.  Returns LUA_OK with the function pushed, an error status
 * with the message pushed, or READ_EOF / READ_CANCEL with nothing pushed.  As in lua.c, an
 * expression prints its value; unlike lua.c, this holds for one spread over several lines
 * (`f(1,` then `2)`) too. */
static int load_chunk(repl *r)
{
    lua_State *L = r->L;
    int rc = read_line(r, PROMPT1);
    if (rc != READ_OK)
        return rc;
    for (;;) {   /* stack: source */
        if (load_as_expression(L))
            return LUA_OK;
        size_t len;
        const char *source = lua_tolstring(L, -1, &len);
        int status = luaL_loadbuffer(L, source, len, CHUNKNAME);
        if (!is_incomplete(L, status)) {
            lua_remove(L, -2);
            return status;
        }
        rc = read_line(r, PROMPT2);   /* stack: source, message, [line] */
        if (rc == READ_EOF) {
            lua_remove(L, -2);
            return status;
        }
        if (rc == READ_CANCEL) {
            lua_pop(L, 2);
            return READ_CANCEL;
        }
        lua_remove(L, -2);
        lua_pushliteral(L, "\n");
        lua_insert(L, -2);
        lua_concat(L, 3);
    }
}

/* Prints the values above `base`, as repl_format renders them. */
static void print_results(repl *r, int base)
{
    lua_State *L = r->L;
    int n = lua_gettop(L) - base;
    if (n == 0)
        return;
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_pushcfunction(L, repl_format);
    lua_insert(L, base + 1);
    if (prog_docall(L, n, 1, r->mode == REPL_TERMINAL) == LUA_OK) {
        size_t len;
        const char *text = lua_tolstring(L, -1, &len);
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        lua_pop(L, 1);
    } else {
        fflush(stdout);
        fputs("error printing the results: ", stderr);
        prog_report(L, NULL);
    }
}

/* ------------------------------------------------------------------- loop */

static void terminal_open(repl *r)
{
    completion_state = r->L;
    rl_readline_name = "gradlab";   /* for `gradlab:` lines in ~/.editrc */
    rl_catch_signals = 0;           /* ours, not libedit's: see the top of this file */
    rl_basic_word_break_characters = word_breaks;
    rl_completer_word_break_characters = word_breaks;
    rl_attempted_completion_function = attempted_completion;
    rl_getc_function = read_char;
    /* The terminal's character set, for libedit to handle UTF-8 input.  Only LC_CTYPE:
     * LC_NUMERIC would change how Lua prints and reads numbers. */
    setlocale(LC_CTYPE, "");
    rl_initialize();
    stifle_history(HISTORY_MAX);
    r->history = history_path();
    if (r->history != NULL)
        history_load(r);
    fputs("gl = require \"gradlab\" is loaded; Tab completes, Ctrl-C interrupts, Ctrl-D exits.\n",
          stdout);
    fflush(stdout);
}

int repl_run(lua_State *L, repl_mode mode)
{
    repl r = { .L = L, .mode = mode, .first_line = true };
    int failures = 0;
    int base = lua_gettop(L);
    /* In a terminal session Ctrl-C never kills: prog_docall installs its own handler while a
     * chunk runs, and this one covers the prompt and the moments in between. */
    struct sigaction action, original;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_prompt_sigint;
    action.sa_flags = SA_RESTART;   /* pselect in read_byte is interrupted all the same */
    sigemptyset(&action.sa_mask);
    if (mode == REPL_TERMINAL) {
        sigaction(SIGINT, &action, &original);
        terminal_open(&r);
    }
    for (;;) {
        int status = load_chunk(&r);
        if (status == READ_EOF)
            break;
        if (status == READ_CANCEL)
            continue;
        if (status == LUA_OK)
            status = prog_docall(L, 0, LUA_MULTRET, mode == REPL_TERMINAL);
        if (status == LUA_OK) {
            print_results(&r, base);
        } else {
            prog_report(L, NULL);
            failures++;
        }
        lua_settop(L, base);
    }
    if (mode != REPL_QUIET) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    lua_settop(L, base);
    if (mode == REPL_TERMINAL)
        sigaction(SIGINT, &original, NULL);
    completion_state = NULL;
    free(r.history);
    free(r.last);
    free(r.buffer);
    return failures;
}
