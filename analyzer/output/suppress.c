#include "output/suppress.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Keep in step with docs/ci.md ("Built-in suppressions"). Each rule names code that only the
 * runtime, the loader or the C library runs, never a frame every cgo call has (runtime.cgocall,
 * runtime.main): a rule matches any frame of a stack. */
static const char default_text[] =
    "# cgoscope's built-in suppressions (--no-default-suppressions turns them off).\n"
    "# Go runtime: the C half of runtime/cgo (the threads it starts, setenv, ...)\n"
    "leak:^x_cgo_\n"
    "leak:^_cgo_sys_thread_start\n"
    "leak:^_cgo_try_pthread_create\n"
    "leak:runtime/cgo/gcc_\n"
    "# Dynamic loader (ld.so): thread-local storage, libraries it loads\n"
    "leak:^_dl_\n"
    "leak:*tls_get_addr*\n"
    "leak:/ld-linux\n"
    "# C library: state it keeps for the life of the process (NSS, resolver, locale)\n"
    "leak:*pthread_exit*\n"
    "leak:^__nss_\n"
    "leak:^__resolv_context_get\n"
    "leak:^_nl_\n";

const char *suppressions_default_text(void) { return default_text; }

void suppressions_init(struct suppressions *s) { memset(s, 0, sizeof *s); }

void suppressions_free(struct suppressions *s)
{
    suppressions_memo_end(s);
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].pattern);
        free(s->v[i].glob);
        free(s->v[i].source);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* "^abc" -> "abc*", "abc$" -> "*abc", "abc" -> "*abc*". */
static char *to_glob(const char *pat, size_t len)
{
    int start = len && pat[0] == '^';
    int end = len > (size_t)start && pat[len - 1] == '$';
    const char *core = pat + start;
    size_t clen = len - (size_t)start - (size_t)end;
    char *g = malloc(clen + 3);
    if (!g)
        return NULL;
    size_t k = 0;
    if (!start)
        g[k++] = '*';
    memcpy(g + k, core, clen);
    k += clen;
    if (!end)
        g[k++] = '*';
    g[k] = 0;
    return g;
}

/* Whole-string match where '*' matches any run of characters. */
static int glob_match(const char *g, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*g == '*') {
            star = g++;
            resume = s;
        } else if (*g == *s) {
            g++;
            s++;
        } else if (star) {
            g = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*g == '*')
        g++;
    return *g == 0;
}

int suppression_pattern_matches(const char *pattern, const char *name)
{
    char *g = to_glob(pattern, strlen(pattern));
    int m = g && name && glob_match(g, name);
    free(g);
    return m;
}

static int add_rule(struct suppressions *s, int type, const char *pat, size_t len, const char *source)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        struct suppression *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        s->v = nv;
        s->cap = nc;
    }
    struct suppression *r = &s->v[s->n];
    memset(r, 0, sizeof *r);
    r->type = type;
    r->pattern = strndup(pat, len);
    r->glob = to_glob(pat, len);
    r->source = strdup(source);
    if (!r->pattern || !r->glob || !r->source) {
        free(r->pattern);
        free(r->glob);
        free(r->source);
        return -1;
    }
    s->n++;
    return 0;
}

static const char *trim(const char *b, const char *e, const char **end)
{
    while (b < e && (*b == ' ' || *b == '\t' || *b == '\r'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *end = e;
    return b;
}

/* One line: blank, a comment, or "leak:PATTERN". */
static int parse_line(struct suppressions *s, const char *b, const char *e, const char *origin, int lineno, char *err,
                      size_t errlen)
{
    const char *end;
    b = trim(b, e, &end);
    if (b == end || *b == '#')
        return 0;
    const char *colon = memchr(b, ':', (size_t)(end - b));
    if (!colon) {
        snprintf(err, errlen, "%s:%d: expected `leak:PATTERN`, got `%.*s`", origin, lineno, (int)(end - b), b);
        return -1;
    }
    static const char *const types[] = {[SUPP_LEAK] = "leak", [SUPP_DOUBLE_FREE] = "double_free",
                                         [SUPP_INVALID_FREE] = "invalid_free"};
    int type = -1;
    for (int k = 0; k < (int)(sizeof types / sizeof types[0]); k++)
        if ((size_t)(colon - b) == strlen(types[k]) && memcmp(b, types[k], strlen(types[k])) == 0)
            type = k;
    if (type < 0) {
        snprintf(err, errlen,
                 "%s:%d: unknown suppression type `%.*s` (cgoscope knows `leak:`, `double_free:` and `invalid_free:`)",
                 origin, lineno, (int)(colon - b), b);
        return -1;
    }
    const char *pe;
    const char *pb = trim(colon + 1, end, &pe);
    if (pb == pe) {
        snprintf(err, errlen, "%s:%d: empty pattern after `%s:`", origin, lineno, types[type]);
        return -1;
    }
    char source[512];
    if (strcmp(origin, "default") == 0)
        snprintf(source, sizeof source, "default");
    else
        snprintf(source, sizeof source, "%s:%d", origin, lineno);
    if (add_rule(s, type, pb, (size_t)(pe - pb), source) != 0) {
        snprintf(err, errlen, "out of memory reading %s", origin);
        return -1;
    }
    return 0;
}

int suppressions_parse(struct suppressions *s, const char *text, const char *origin, char *err, size_t errlen)
{
    int lineno = 0;
    for (const char *b = text; *b;) {
        const char *e = strchr(b, '\n');
        if (!e)
            e = b + strlen(b);
        if (parse_line(s, b, e, origin, ++lineno, err, errlen) != 0)
            return -1;
        b = *e ? e + 1 : e;
    }
    return 0;
}

int suppressions_add_defaults(struct suppressions *s)
{
    char err[256];
    return suppressions_parse(s, default_text, "default", err, sizeof err);
}

int suppressions_load(struct suppressions *s, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        snprintf(err, errlen, "cannot read the suppression file %s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char buf[4096];
    size_t got;
    while (mem && (got = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, got, mem);
    int bad = ferror(f);
    fclose(f);
    if (!mem || fclose(mem) != 0 || bad) {
        snprintf(err, errlen, "cannot read the suppression file %s: %s", path, bad ? "read error" : "out of memory");
        free(text);
        return -1;
    }
    if (memchr(text, 0, len)) {
        snprintf(err, errlen, "%s is not a text file (it holds NUL bytes): not a suppression file", path);
        free(text);
        return -1;
    }
    int rc = suppressions_parse(s, text, path, err, errlen);
    free(text);
    return rc;
}

static int rule_matches(const struct suppression *r, const struct report_frame *f)
{
    return (f->function && glob_match(r->glob, f->function)) || (f->file && glob_match(r->glob, f->file)) ||
           (f->object && glob_match(r->glob, f->object));
}

#define MEMO_RULES 63              /* rules a memo's mask holds */
#define MEMO_SET (1ull << 63)      /* the mask is known (a 0 mask is a value too) */

void suppressions_memo_begin(struct suppressions *s)
{
    suppressions_memo_end(s);
    if (s->n > MEMO_RULES || !(s->memo = malloc(sizeof *s->memo)))
        return; /* matched rule by rule */
    u64map_init(s->memo);
}

void suppressions_memo_end(struct suppressions *s)
{
    if (s->memo) {
        u64map_free(s->memo);
        free(s->memo);
        s->memo = NULL;
    }
}

/* The rules str matches, bit i for rule i. */
static uint64_t string_rules(struct suppressions *s, const char *str)
{
    if (!str)
        return 0;
    int added = 0;
    uint64_t *v = u64map_put(s->memo, (uint64_t)(uintptr_t)str, &added);
    if (v && !added)
        return *v & ~MEMO_SET;
    uint64_t m = 0;
    for (size_t i = 0; i < s->n; i++)
        if (glob_match(s->v[i].glob, str))
            m |= 1ull << i;
    if (v)
        *v = m | MEMO_SET;
    return m;
}

struct suppression *suppressions_match_type(struct suppressions *s, int type, const struct report_frame *frames,
                                            size_t n)
{
    if (s->memo) {
        /* The first rule of the type that matches a frame: the same answer as rule by rule. */
        uint64_t want = 0, hit = 0;
        for (size_t i = 0; i < s->n; i++)
            if (s->v[i].type == type)
                want |= 1ull << i;
        for (size_t k = 0; k < n && want; k++)
            hit |= (string_rules(s, frames[k].function) | string_rules(s, frames[k].file) |
                    string_rules(s, frames[k].object)) & want;
        return hit ? &s->v[__builtin_ctzll(hit)] : NULL;
    }
    for (size_t i = 0; i < s->n; i++)
        for (size_t k = 0; k < n && s->v[i].type == type; k++)
            if (rule_matches(&s->v[i], &frames[k]))
                return &s->v[i];
    return NULL;
}

struct suppression *suppressions_match(struct suppressions *s, const struct report_frame *frames, size_t n)
{
    return suppressions_match_type(s, SUPP_LEAK, frames, n);
}
