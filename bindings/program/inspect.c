/*
 * inspect.c — what the REPL prints and what it suggests.
 *
 * Both are plain functions of the Lua state, with no terminal involved, so they are exported
 * to Lua as the module "gradlab.repl" (preloaded by the program in every mode) and tested by
 * spec/program_spec.lua through `gradlab -e`:
 *
 *   local repl = require "gradlab.repl"
 *   repl.format(1, "a", {x = {1, 2}})   --> '1\ta\t{x = {1, 2}}'
 *   repl.complete("gl.ze")              --> {"gl.zeros"}
 *
 * Formatting reads tables raw (no __index, no __pairs), so printing a value never runs user
 * code except __tostring.  Completion resolves the dotted path with ordinary indexing (an
 * __index function may run), inside a protected call made by the caller.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "repl.h"

#define FMT_MAX_DEPTH   3     /* tables nested deeper print as {…} */
#define FMT_MAX_ITEMS   24    /* entries shown per table before "…" */
#define FMT_BUDGET      200   /* entries shown in one printed result, all tables together */
#define FMT_MAX_STRING  72    /* bytes of a string shown inside a table literal */
#define FMT_MAX_INLINE  72    /* bytes of an object's tostring shown inside a table literal */
#define FMT_MAX_SORTED  20000 /* tables with more hash keys print unsorted (sorting costs) */

#define ELLIPSIS "\xe2\x80\xa6" /* "…" in UTF-8 */

static const char *const lua_keywords[] = {
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
    "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    NULL
};

static bool is_keyword(const char *s, size_t len)
{
    for (int i = 0; lua_keywords[i] != NULL; i++)
        if (strlen(lua_keywords[i]) == len && memcmp(lua_keywords[i], s, len) == 0)
            return true;
    return false;
}

/* ASCII only, as Lua's lexer in the C locale. */
static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
           || (!first && c >= '0' && c <= '9');
}

/* A name usable after `.` or as `name = ` in a table constructor. */
static bool is_identifier(const char *s, size_t len)
{
    if (len == 0 || !is_name_char(s[0], true))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_name_char(s[i], false))
            return false;
    return !is_keyword(s, len);
}

/* ------------------------------------------------------------- formatting */

/* The pieces of the text are strings appended to a Lua table and concatenated at the end:
 * a luaL_Buffer cannot stay open across the stack juggling of a table walk. */
typedef struct fmt {
    lua_State *L;
    int out;        /* stack index of the table of pieces */
    lua_Integer n;  /* pieces so far */
    int path;       /* stack index of the set of tables being printed (cycles) */
    int budget;     /* entries left for the current result */
} fmt;

static void fmt_add(fmt *f, const char *s)
{
    lua_pushstring(f->L, s);
    lua_rawseti(f->L, f->out, ++f->n);
}

/* Appends the string at the top of the stack and pops it. */
static void fmt_add_top(fmt *f)
{
    lua_rawseti(f->L, f->out, ++f->n);
}

/* Length of s cut to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

/* Pushes s as a Lua string literal, shortened to FMT_MAX_STRING bytes. */
static void push_quoted(lua_State *L, const char *s, size_t len)
{
    size_t shown = utf8_cut(s, len, FMT_MAX_STRING);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '"');
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': luaL_addstring(&b, "\\\""); break;
        case '\\': luaL_addstring(&b, "\\\\"); break;
        case '\n': luaL_addstring(&b, "\\n"); break;
        case '\r': luaL_addstring(&b, "\\r"); break;
        case '\t': luaL_addstring(&b, "\\t"); break;
        default:
            if (c < 0x20 || c == 0x7F) {
                char esc[8];
                snprintf(esc, sizeof esc, "\\%03d", c);
                luaL_addstring(&b, esc);
            } else {
                luaL_addchar(&b, (char)c);
            }
        }
    }
    if (shown < len)
        luaL_addstring(&b, ELLIPSIS);
    luaL_addchar(&b, '"');
    luaL_pushresult(&b);
}

/* Replaces the string at the top by a one-line version: whitespace runs become one space,
 * and it is cut to FMT_MAX_INLINE bytes.  For a tensor's multi-line tostring inside a table. */
static void inline_top(lua_State *L)
{
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t written = 0;
    bool space = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = written > 0;
            continue;
        }
        if (written >= FMT_MAX_INLINE && ((unsigned char)c & 0xC0) != 0x80) {
            luaL_addstring(&b, ELLIPSIS);
            break;
        }
        if (space) {
            luaL_addchar(&b, ' ');
            written++;
            space = false;
        }
        luaL_addchar(&b, c);
        written++;
    }
    luaL_pushresult(&b);
    lua_remove(L, -2);
}

static bool has_tostring(lua_State *L, int idx)
{
    if (luaL_getmetafield(L, idx, "__tostring") == LUA_TNIL)
        return false;
    lua_pop(L, 1);
    return true;
}

/* Orders table keys for printing: numbers, then strings, then booleans, then the rest. */
static int key_rank(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: return 0;
    case LUA_TSTRING: return 1;
    case LUA_TBOOLEAN: return 2;
    default: return 3;
    }
}

/* The comparator handed to table.sort; a strict weak order over any keys. */
static int key_less(lua_State *L)
{
    int ra = key_rank(L, 1), rb = key_rank(L, 2);
    bool less;
    if (ra != rb) {
        less = ra < rb;
    } else if (ra == 0) {
        less = lua_compare(L, 1, 2, LUA_OPLT);
    } else if (ra == 1) {
        size_t la, lb;
        const char *a = lua_tolstring(L, 1, &la), *b = lua_tolstring(L, 2, &lb);
        int c = memcmp(a, b, la < lb ? la : lb);
        less = c < 0 || (c == 0 && la < lb);
    } else if (ra == 2) {
        less = !lua_toboolean(L, 1) && lua_toboolean(L, 2);
    } else if (lua_type(L, 1) != lua_type(L, 2)) {
        less = lua_type(L, 1) < lua_type(L, 2);
    } else {
        less = (uintptr_t)lua_topointer(L, 1) < (uintptr_t)lua_topointer(L, 2);
    }
    lua_pushboolean(L, less);
    return 1;
}

/* Sorts the sequence at `idx` with table.sort from package.loaded (not the global `table`,
 * which user code may have replaced).  Leaves it unsorted if that is unavailable. */
static void sort_keys(lua_State *L, int idx)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "table") == LUA_TTABLE && lua_getfield(L, -1, "sort") == LUA_TFUNCTION) {
        lua_pushvalue(L, idx);
        lua_pushcfunction(L, key_less);
        lua_call(L, 2, 0);
    }
    lua_settop(L, idx);
}

static void fmt_value(fmt *f, int idx, int depth);

static void fmt_key(fmt *f, int key)
{
    lua_State *L = f->L;
    size_t len;
    if (lua_type(L, key) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, key, &len);
        if (is_identifier(s, len)) {
            lua_pushfstring(L, "%s = ", s);
            fmt_add_top(f);
            return;
        }
    }
    fmt_add(f, "[");
    fmt_value(f, key, FMT_MAX_DEPTH);
    fmt_add(f, "] = ");
}

/* Appends the separator before an entry, or the ellipsis and false when the table has shown
 * as many entries as it may. */
static bool fmt_entry_start(fmt *f, int count)
{
    if (count >= FMT_MAX_ITEMS || f->budget <= 0) {
        fmt_add(f, count > 0 ? ", " ELLIPSIS : ELLIPSIS);
        return false;
    }
    if (count > 0)
        fmt_add(f, ", ");
    f->budget--;
    return true;
}

static void fmt_table(fmt *f, int idx, int depth)
{
    lua_State *L = f->L;
    luaL_checkstack(L, 8, "table too deep to print");
    lua_pushvalue(L, idx);
    bool on_path = lua_rawget(L, f->path) != LUA_TNIL;
    lua_pop(L, 1);
    if (on_path) {
        fmt_add(f, "<cycle>");
        return;
    }
    if (depth >= FMT_MAX_DEPTH) {
        lua_pushnil(L);
        bool empty = lua_next(L, idx) == 0;
        lua_settop(L, lua_gettop(L) - (empty ? 0 : 2));
        fmt_add(f, empty ? "{}" : "{" ELLIPSIS "}");
        return;
    }
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, f->path);
    fmt_add(f, "{");

    /* The sequence part 1..n, in order and without keys. */
    int count = 0;
    lua_Integer n = 0;
    bool more = true;
    while (lua_rawgeti(L, idx, n + 1) != LUA_TNIL) {
        if (!fmt_entry_start(f, count)) {
            more = false;
            break;
        }
        fmt_value(f, lua_gettop(L), depth + 1);
        lua_pop(L, 1);
        count++;
        n++;
    }
    lua_pop(L, 1);

    /* The other keys, sorted. */
    if (more) {
        lua_newtable(L);
        int keys = lua_gettop(L);
        lua_Integer nkeys = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            if (lua_isinteger(L, -1)) {
                lua_Integer k = lua_tointeger(L, -1);
                if (k >= 1 && k <= n)
                    continue;
            }
            lua_pushvalue(L, -1);
            lua_rawseti(L, keys, ++nkeys);
        }
        if (nkeys <= FMT_MAX_SORTED)
            sort_keys(L, keys);
        for (lua_Integer i = 1; i <= nkeys; i++) {
            if (!fmt_entry_start(f, count))
                break;
            lua_rawgeti(L, keys, i);
            int key = lua_gettop(L);
            fmt_key(f, key);
            lua_pushvalue(L, key);
            lua_rawget(L, idx);
            fmt_value(f, lua_gettop(L), depth + 1);
            lua_settop(L, keys);
            count++;
        }
        lua_settop(L, keys - 1);
    }

    fmt_add(f, "}");
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, f->path);
}

/* A value inside a table literal. */
static void fmt_value(fmt *f, int idx, int depth)
{
    lua_State *L = f->L;
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        push_quoted(L, s, len);
        fmt_add_top(f);
    } else if (lua_type(L, idx) == LUA_TTABLE && !has_tostring(L, idx)) {
        fmt_table(f, idx, depth);
    } else {
        luaL_tolstring(L, idx, NULL);
        inline_top(L);
        fmt_add_top(f);
    }
}

int repl_format(lua_State *L)
{
    int n = lua_gettop(L);
    lua_newtable(L);
    lua_newtable(L);
    fmt f = { .L = L, .out = n + 1, .n = 0, .path = n + 2, .budget = 0 };
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            fmt_add(&f, "\t");
        if (lua_type(L, i) == LUA_TSTRING) {
            lua_pushvalue(L, i);
            fmt_add_top(&f);
        } else if (lua_type(L, i) == LUA_TTABLE && !has_tostring(L, i)) {
            f.budget = FMT_BUDGET;
            fmt_table(&f, i, 0);
        } else {
            luaL_tolstring(L, i, NULL);
            fmt_add_top(&f);
        }
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (lua_Integer i = 1; i <= f.n; i++) {
        lua_rawgeti(L, f.out, i);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    return 1;
}

/* ------------------------------------------------------------- completion */

/* What a completion looks for: keys starting with `partial`, each turned into a candidate by
 * prepending `head` (the whole text up to and including the last `.` or `:`). */
typedef struct query {
    int head;            /* stack index of the head string */
    const char *partial;
    size_t partial_len;
    bool methods;        /* after `:` — callable values only, no metamethods */
    int set;             /* stack index of the table candidate -> value */
} query;

static bool is_callable(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TFUNCTION)
        return true;
    if (luaL_getmetafield(L, idx, "__call") == LUA_TNIL)
        return false;
    lua_pop(L, 1);
    return true;
}

/* Adds the matching string keys of the table at `t` to the candidate set. */
static void add_keys(lua_State *L, int t, const query *q, bool skip_metamethods)
{
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        int value = lua_gettop(L), key = value - 1;
        size_t len;
        const char *name;
        if (lua_type(L, key) != LUA_TSTRING)
            goto next;
        name = lua_tolstring(L, key, &len);
        if (len < q->partial_len || memcmp(name, q->partial, q->partial_len) != 0
            || !is_identifier(name, len))
            goto next;
        if ((skip_metamethods || q->methods) && len >= 2 && name[0] == '_' && name[1] == '_')
            goto next;
        if (q->methods && !is_callable(L, value))
            goto next;
        lua_pushvalue(L, q->head);
        lua_pushvalue(L, key);
        lua_concat(L, 2);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, q->set) == LUA_TNIL) {   /* the nearest definition wins */
            lua_pop(L, 1);
            lua_pushvalue(L, value);
            lua_rawset(L, q->set);
        }
    next:
        lua_settop(L, key);
    }
}

/* Adds what can follow `.` or `:` on the value at `v`: its own keys when it is a table, then
 * along the chain of __index tables of its metatables.  When an __index is a function, its
 * keys cannot be listed; the metatable's own fields and the tables the function closes over
 * (other than _ENV) are the usual places for methods, so those are offered. */
static void add_fields(lua_State *L, int v, const query *q)
{
    int top = lua_gettop(L);
    luaL_checkstack(L, 8, NULL);
    lua_pushvalue(L, v);
    for (int level = 0; level < 16; level++) {   /* bounded: __index chains may loop */
        int cur = lua_gettop(L);
        if (lua_type(L, cur) == LUA_TTABLE)
            add_keys(L, cur, q, false);
        if (!lua_getmetatable(L, cur))
            break;
        int mt = lua_gettop(L);
        lua_pushliteral(L, "__index");
        int kind = lua_rawget(L, mt);
        if (kind == LUA_TTABLE) {
            lua_replace(L, cur);
            lua_settop(L, cur);
            continue;
        }
        if (kind == LUA_TFUNCTION) {
            int fn = lua_gettop(L);
            add_keys(L, mt, q, true);
            for (int i = 1;; i++) {
                const char *name = lua_getupvalue(L, fn, i);
                if (name == NULL)
                    break;
                if (lua_type(L, -1) == LUA_TTABLE && strcmp(name, "_ENV") != 0
                    && !lua_rawequal(L, -1, mt))
                    add_keys(L, lua_gettop(L), q, true);
                lua_pop(L, 1);
            }
        }
        break;
    }
    lua_settop(L, top);
}

/* Length of the expression at the end of `text`: names joined by `.` and `:`. */
static size_t tail_length(const char *text, size_t len)
{
    size_t i = len;
    while (i > 0 && (is_name_char(text[i - 1], false) || text[i - 1] == '.' || text[i - 1] == ':'))
        i--;
    return len - i;
}

int repl_complete(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    size_t word_len = tail_length(text, len);
    const char *word = text + len - word_len;
    lua_settop(L, 1);
    lua_newtable(L);   /* 2: candidate -> value */

    /* Split the word at its last separator into head ("gl.nn.") and partial ("Li"). */
    size_t sep = word_len;
    while (sep > 0 && word[sep - 1] != '.' && word[sep - 1] != ':')
        sep--;
    query q = { .head = 0, .partial = word + sep, .partial_len = word_len - sep,
                .methods = sep > 0 && word[sep - 1] == ':', .set = 2 };
    lua_pushlstring(L, text, (size_t)(word - text) + sep);   /* 3: head, with the text before */
    q.head = 3;

    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);   /* 4: the value walked down */
    bool valid = true;
    if (sep == 0) {
        for (int i = 0; lua_keywords[i] != NULL; i++)
            if (strncmp(lua_keywords[i], q.partial, q.partial_len) == 0) {
                lua_pushboolean(L, 1);
                lua_setfield(L, q.set, lua_keywords[i]);
            }
    } else {
        /* Walk the names before the last separator; each but the last must be followed by
         * `.` (a method call is never followed by more names). */
        size_t start = 0;
        while (valid && start < sep) {
            size_t end = start;
            while (is_name_char(word[end], false))
                end++;
            bool last = end == sep - 1;
            if (!is_identifier(word + start, end - start) || (word[end] == ':' && !last)) {
                valid = false;
                break;
            }
            int t = lua_type(L, 4);
            if (t != LUA_TTABLE && t != LUA_TUSERDATA && start > 0) {
                valid = false;
                break;
            }
            lua_pushlstring(L, word + start, end - start);
            lua_gettable(L, 4);
            lua_replace(L, 4);
            start = end + 1;
        }
        valid = valid && !lua_isnil(L, 4);
    }
    if (valid)
        add_fields(L, 4, &q);

    /* Sorted list of the candidates. */
    lua_settop(L, 2);
    lua_newtable(L);   /* 3 */
    lua_Integer n = 0;
    lua_pushnil(L);
    while (lua_next(L, 2) != 0) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawseti(L, 3, ++n);
    }
    sort_keys(L, 3);
    lua_pushvalue(L, 2);
    return 2;
}

/* Lua: complete(text) -> sorted candidates; an expression that cannot be indexed (or whose
 * __index raises) has none. */
static int l_repl_complete(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_settop(L, 1);
    lua_pushcfunction(L, repl_complete);
    lua_insert(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        lua_newtable(L);
    return 1;
}

int luaopen_gradlab_repl(lua_State *L)
{
    static const luaL_Reg functions[] = {
        { "format", repl_format },
        { "complete", l_repl_complete },
        { NULL, NULL }
    };
    luaL_newlib(L, functions);
    return 1;
}
