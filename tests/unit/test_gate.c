#define _GNU_SOURCE /* asprintf */
/* The CI gate's pure parts: the suppression matcher, applying suppressions to a report, the
 * exit status, and how `cgoscope diff` matches sites across runs. */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "diff/diff.h"
#include "output/exports.h"
#include "output/profile.pb-c.h"
#include "output/gate.h"
#include "output/leaksite.h"
#include "suites.h"
#include "output/suppress.h"
#include "output/symbolize.h"

#define F(fn_, file_, line_, lang_, obj_) {.pc = 0, .function = (fn_), .file = (file_), .line = (line_), .lang = (lang_), .object = (obj_)}

/* A leak of C.CString made by main.leakNames, as the report has it (innermost first). */
static const struct report_frame cstring_stack[] = {
    F("_cgo_317c6cfcf4f2_Cfunc__Cmalloc", "/tmp/go-build/_cgo_export.c", 32, LANG_C, "/src/prog"),
    F("cgs_timed_call", "/work/shim/callstats.c", 230, LANG_C, "/usr/local/lib/cgoscope/libcgoscope.so"),
    F("runtime.asmcgocall", "/usr/local/go/src/runtime/asm_amd64.s", 995, LANG_GO, "/src/prog"),
    F("runtime.cgocall", "/usr/local/go/src/runtime/cgocall.go", 185, LANG_GO, "/src/prog"),
    F("main._Cfunc_CString", "_cgo_gotypes.go", 66, LANG_GO, "/src/prog"),
    F("main.leakNames", "/src/leaky/main.go", 45, LANG_GO, "/src/prog"),
    F("main.main", "/src/leaky/main.go", 76, LANG_GO, "/src/prog"),
    F("runtime.main", "/usr/local/go/src/runtime/proc.go", 290, LANG_GO, "/src/prog"),
    F("runtime.goexit", "/usr/local/go/src/runtime/asm_amd64.s", 1771, LANG_GO, "/src/prog"),
};
#define NCSTRING (sizeof cstring_stack / sizeof cstring_stack[0])

/* The loader's thread-local storage for a thread the runtime starts. */
static const struct report_frame tls_stack[] = {
    F("calloc", "../include/rtld-malloc.h", 44, LANG_C, "/lib64/ld-linux-x86-64.so.2"),
    F("_dl_allocate_tls", "../elf/dl-tls.c", 670, LANG_C, "/lib64/ld-linux-x86-64.so.2"),
    F("__pthread_create_2_1", "./nptl/pthread_create.c", 650, LANG_C, "/lib/x86_64-linux-gnu/libc.so.6"),
    F("_cgo_try_pthread_create", "runtime/cgo/gcc_libinit.c", 220, LANG_C, "/src/prog"),
};

/* A C thread of the program leaking: libc's thread start is on the stack, and must not hide it. */
static const struct report_frame cthread_stack[] = {
    F("thread_leak", "/src/cthread/main.go", 14, LANG_C, "/src/prog"),
    F("thread_main", "/src/cthread/main.go", 20, LANG_C, "/src/prog"),
    F("start_thread", "./nptl/pthread_create.c", 442, LANG_C, "/lib/x86_64-linux-gnu/libc.so.6"),
    F("__clone3", "../sysdeps/unix/sysv/linux/x86_64/clone3.S", 81, LANG_C, "/lib/x86_64-linux-gnu/libc.so.6"),
};

START_TEST(pattern_templates)
{
    ck_assert(suppression_pattern_matches("leakNames", "main.leakNames"));
    ck_assert(suppression_pattern_matches("main.leak*", "main.leakNames"));
    ck_assert(suppression_pattern_matches("^main.", "main.leakNames"));
    ck_assert(!suppression_pattern_matches("^leak", "main.leakNames"));
    ck_assert(suppression_pattern_matches("Names$", "main.leakNames"));
    ck_assert(!suppression_pattern_matches("leak$", "main.leakNames"));
    ck_assert(suppression_pattern_matches("^main.*Names$", "main.leakNames"));
    ck_assert(suppression_pattern_matches("m*k*s", "main.leakNames"));
    ck_assert(!suppression_pattern_matches("m*z*s", "main.leakNames"));
    ck_assert(suppression_pattern_matches("*", ""));
    ck_assert(!suppression_pattern_matches("x", ""));
    ck_assert(suppression_pattern_matches("a*a*a", "aaaa"));
    ck_assert(!suppression_pattern_matches("^a*b$", "aaaa"));
}
END_TEST

START_TEST(parse_file_format)
{
    struct suppressions s;
    suppressions_init(&s);
    char err[256] = "";
    const char *text = "# comment\n\n  leak:main.leakNames  \r\nleak:^x_cgo_\n\t# indented comment\nleak:*.c";
    ck_assert_int_eq(suppressions_parse(&s, text, "supp.txt", err, sizeof err), 0);
    ck_assert_uint_eq(s.n, 3);
    ck_assert_str_eq(s.v[0].pattern, "main.leakNames");
    ck_assert_str_eq(s.v[0].source, "supp.txt:3");
    ck_assert_str_eq(s.v[1].pattern, "^x_cgo_");
    ck_assert_str_eq(s.v[2].source, "supp.txt:6");
    ck_assert_int_eq(suppressions_parse(&s, "leak:ok\nrace:foo\n", "bad.txt", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bad.txt:2"));
    ck_assert_ptr_nonnull(strstr(err, "race"));
    ck_assert_int_eq(suppressions_parse(&s, "main.leakNames\n", "bad.txt", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bad.txt:1: expected `leak:PATTERN`"));
    ck_assert_int_eq(suppressions_parse(&s, "leak:   \n", "bad.txt", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "empty pattern"));
    suppressions_free(&s);
}
END_TEST

START_TEST(load_file_and_errors)
{
    char path[] = "/tmp/cgoscope-supp-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "leak:leakNames\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct suppressions s;
    suppressions_init(&s);
    char err[512] = "";
    ck_assert_int_eq(suppressions_load(&s, path, err, sizeof err), 0);
    ck_assert_uint_eq(s.n, 1);
    unlink(path);
    ck_assert_int_eq(suppressions_load(&s, path, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    suppressions_free(&s);
}
END_TEST

/* A rule matches a frame's function, file or object; a stack matches when any frame does. */
START_TEST(match_any_frame_any_field)
{
    struct suppressions s;
    suppressions_init(&s);
    char err[128];
    ck_assert_int_eq(suppressions_parse(&s, "leak:leakNames\n", "t", err, sizeof err), 0);
    ck_assert_ptr_eq(suppressions_match(&s, cstring_stack, NCSTRING), &s.v[0]);
    ck_assert_ptr_null(suppressions_match(&s, cthread_stack, 4));
    suppressions_free(&s);
    ck_assert_int_eq(suppressions_parse(&s, "leak:cthread/main.go\n", "t", err, sizeof err), 0);
    ck_assert_ptr_nonnull(suppressions_match(&s, cthread_stack, 4));
    ck_assert_ptr_null(suppressions_match(&s, cstring_stack, NCSTRING));
    suppressions_free(&s);
    ck_assert_int_eq(suppressions_parse(&s, "leak:^/src/prog$\n", "t", err, sizeof err), 0);
    ck_assert_ptr_nonnull(suppressions_match(&s, cthread_stack, 4));
    suppressions_free(&s);
    /* A frame with no symbol, file or object matches nothing, and breaks nothing. */
    struct report_frame bare = {.pc = 0x1234};
    ck_assert_int_eq(suppressions_parse(&s, "leak:*\n", "t", err, sizeof err), 0);
    ck_assert_ptr_null(suppressions_match(&s, &bare, 1));
    suppressions_free(&s);
}
END_TEST

/* The defaults silence the runtime's own allocations, never a leak of the program, even though
 * every cgo stack has runtime frames and a C thread has libc frames. */
START_TEST(defaults_spare_user_stacks)
{
    struct suppressions s;
    suppressions_init(&s);
    ck_assert_int_eq(suppressions_add_defaults(&s), 0);
    ck_assert_uint_gt(s.n, 5);
    ck_assert_str_eq(s.v[0].source, "default");
    ck_assert_ptr_null(suppressions_match(&s, cstring_stack, NCSTRING));
    ck_assert_ptr_null(suppressions_match(&s, cthread_stack, 4));
    ck_assert_ptr_nonnull(suppressions_match(&s, tls_stack, 4));
    struct report_frame thread_start = F("x_cgo_thread_start", "runtime/cgo/gcc_util.c", 15, LANG_C, "/src/prog");
    ck_assert_ptr_nonnull(suppressions_match(&s, &thread_start, 1));
    ck_assert_ptr_nonnull(strstr(suppressions_default_text(), "leak:^x_cgo_"));
    suppressions_free(&s);
}
END_TEST

/* With the memo (each distinct string matched once), the first matching rule of each type is the
 * one rule-by-rule matching finds; asked twice, from the memo the second time. Over 63 rules the
 * memo stays off. */
START_TEST(memo_finds_the_same_rule)
{
    struct suppressions s;
    suppressions_init(&s);
    char err[128];
    ck_assert_int_eq(suppressions_parse(&s,
                                        "double_free:leakNames\n"
                                        "leak:*pthread_create*\n"
                                        "invalid_free:^/src/prog$\n"
                                        "leak:main.go\n",
                                        "t", err, sizeof err),
                     0);
    ck_assert_int_eq(suppressions_add_defaults(&s), 0);
    struct report_frame bare = {.pc = 0x1234};
    const struct report_frame *stacks[] = {cstring_stack, tls_stack, cthread_stack, &bare};
    const size_t lens[] = {NCSTRING, 4, 4, 1};
    struct suppression *want[4][3];
    for (int k = 0; k < 4; k++)
        for (int type = 0; type < 3; type++)
            want[k][type] = suppressions_match_type(&s, type, stacks[k], lens[k]);
    ck_assert_ptr_eq(want[0][SUPP_LEAK], &s.v[3]);        /* main.go, not a later default */
    ck_assert_ptr_eq(want[1][SUPP_LEAK], &s.v[1]);        /* pthread_create, before _dl_ */
    ck_assert_ptr_eq(want[0][SUPP_DOUBLE_FREE], &s.v[0]);
    ck_assert_ptr_null(want[3][SUPP_LEAK]);
    suppressions_memo_begin(&s);
    ck_assert_ptr_nonnull(s.memo);
    for (int round = 0; round < 2; round++)
        for (int k = 0; k < 4; k++)
            for (int type = 0; type < 3; type++)
                ck_assert_ptr_eq(suppressions_match_type(&s, type, stacks[k], lens[k]), want[k][type]);
    suppressions_memo_end(&s);
    ck_assert_ptr_null(s.memo);
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(suppressions_parse(&s, "leak:no_such_function_anywhere\n", "t", err, sizeof err), 0);
    suppressions_memo_begin(&s);
    ck_assert_ptr_null(s.memo);
    ck_assert_ptr_eq(suppressions_match(&s, cstring_stack, NCSTRING), &s.v[3]);
    suppressions_free(&s);
}
END_TEST

static struct report three_groups(struct leak_group *g)
{
    memset(g, 0, 3 * sizeof *g);
    g[0] = (struct leak_group){.stack = 1, .blocks = 3, .bytes = 17, .origin = ORIGIN_USER,
                               .frames = (struct report_frame *)cstring_stack, .nframes = NCSTRING};
    g[1] = (struct leak_group){.stack = 2, .blocks = 1, .bytes = 9, .origin = ORIGIN_USER,
                               .frames = (struct report_frame *)cthread_stack, .nframes = 4};
    g[2] = (struct leak_group){.stack = 3, .blocks = 4, .bytes = 1280, .origin = ORIGIN_RUNTIME,
                               .frames = (struct report_frame *)tls_stack, .nframes = 4};
    return (struct report){.groups = g, .ngroups = 3, .user_blocks = 4, .user_bytes = 26, .runtime_blocks = 4,
                           .runtime_bytes = 1280};
}

/* Suppressed user leaks leave the headline for suppressed_*, sort after the others, and the
 * gate counts only what is left. Runtime leaks are never the gate's. */
START_TEST(apply_moves_counts)
{
    struct leak_group g[3];
    struct report r = three_groups(g);
    struct gate gate;
    gate_init(&gate);
    char err[128];
    ck_assert_int_eq(suppressions_parse(&gate.supp, "leak:leakNames\n", "s.txt", err, sizeof err), 0);
    ck_assert_int_eq(suppressions_add_defaults(&gate.supp), 0);
    gate_apply(&gate, &r, 1);
    ck_assert_uint_eq(r.user_blocks, 1);
    ck_assert_uint_eq(r.user_bytes, 9);
    ck_assert_uint_eq(r.suppressed_blocks, 3);
    ck_assert_uint_eq(r.suppressed_bytes, 17);
    ck_assert_uint_eq(r.runtime_bytes, 1280);
    ck_assert_uint_eq(r.groups[0].stack, 2); /* the unsuppressed user leak first */
    ck_assert_int_eq(r.groups[0].suppressed, 0);
    ck_assert_uint_eq(r.groups[1].stack, 1);
    ck_assert_int_eq(r.groups[1].suppressed, 1);
    ck_assert_str_eq(r.groups[1].suppressed_source, "s.txt:1");
    ck_assert_uint_eq(r.groups[2].stack, 3);
    ck_assert_int_eq(r.groups[2].suppressed, 1); /* by a default; still runtime */
    ck_assert_uint_eq(gate.leaked_blocks, 1);
    ck_assert_uint_eq(gate.leaked_bytes, 9);
    ck_assert_uint_eq(gate.supp.v[0].hits, 1);
    /* --fail-on-leak: 23 unless told otherwise; without it, the program's own status. */
    ck_assert_int_eq(gate_exit_status(&gate, 0), 0);
    gate.fail_on_leak = 1;
    ck_assert_int_eq(gate_exit_status(&gate, 0), 23);
    ck_assert_int_eq(gate_option(&gate, GATE_OPT_LEAK_EXITCODE, "42"), GATE_OK);
    ck_assert_int_eq(gate_exit_status(&gate, 3), 42);
    ck_assert_int_eq(gate_option(&gate, GATE_OPT_LEAK_EXITCODE, "0"), GATE_BAD);
    ck_assert_int_eq(gate_option(&gate, GATE_OPT_LEAK_EXITCODE, "7x"), GATE_BAD);
    gate.leaked_blocks = 0;
    ck_assert_int_eq(gate_exit_status(&gate, 3), 3);
    gate_free(&gate);
}
END_TEST

START_TEST(stable_names)
{
    char buf[128];
    ck_assert_str_eq(leaksite_stable_name("_cgo_317c6cfcf4f2_Cfunc__Cmalloc", buf, sizeof buf), "_cgo_Cfunc__Cmalloc");
    ck_assert_str_eq(leaksite_stable_name("main._cgo_317c6cfcf4f2_Cfunc_f", buf, sizeof buf), "main._cgo_Cfunc_f");
    ck_assert_str_eq(leaksite_stable_name("_cgo_cmalloc", buf, sizeof buf), "_cgo_cmalloc");
    ck_assert_str_eq(leaksite_stable_name("_cgo_317c6cfcf4f2x_f", buf, sizeof buf), "_cgo_317c6cfcf4f2x_f");
    /* The site is where the program's own source is: the Go line of C.CString, not cgo's stub. */
    ck_assert_int_eq(leaksite_location(cstring_stack, NCSTRING), 5);
    ck_assert_int_eq(leaksite_location(cthread_stack, 4), 0);
    ck_assert_int_eq(leaksite_location(tls_stack, 4), -1);
}
END_TEST

START_TEST(path_expansion)
{
    struct gate gate;
    gate_init(&gate);
    struct process p = {.pid = 4242};
    ck_assert_str_eq(gate_path(&gate, "out/%p.json", &p, 1), "out/4242.json");
    ck_assert_str_eq(gate_path(&gate, "a%%b-%p-%x", &p, 1), "a%b-4242-%x");
    ck_assert_str_eq(gate_path(&gate, "plain.json", &p, 1), "plain.json");
    ck_assert_str_eq(gate_path(NULL, "x%p", &p, 1), "x%p");
    gate_free(&gate);
}
END_TEST

/* ---- diff -------------------------------------------------------------------------------- */

static void with_line(struct report_frame *dst, const struct report_frame *src, size_t n, size_t at, int line)
{
    memcpy(dst, src, n * sizeof *dst);
    dst[at].line = line;
}

static const struct diff_leak_change *find_change(const struct diff_result *r, int status)
{
    for (size_t i = 0; i < r->nleaks; i++)
        if (r->leaks[i].status == status)
            return &r->leaks[i];
    return NULL;
}

/* Sites match by symbols, not addresses, and glue frames (the shim's among them) do not count. */
START_TEST(diff_matches_by_symbols)
{
    struct diff_side base, head;
    diff_side_init(&base, "base");
    diff_side_init(&head, "head");
    struct report_frame moved[NCSTRING];
    memcpy(moved, cstring_stack, sizeof moved);
    for (size_t k = 0; k < NCSTRING; k++)
        moved[k].pc = 0x400000 + k;     /* another build, other addresses */
    moved[1].function = "cgs_other_hook"; /* another shim */
    moved[1].file = "/elsewhere/shim.c";
    moved[3].line = 999;                  /* glue frame moved: not part of the site */
    moved[0].function = "_cgo_0123456789ab_Cfunc__Cmalloc"; /* cgo's hash changes with any edit */
    moved[0].line = 77;
    ck_assert_int_eq(diff_add_leak(&base, cstring_stack, NCSTRING, 3, 17), 0);
    ck_assert_int_eq(diff_add_leak(&head, moved, NCSTRING, 3, 17), 0);
    ck_assert_str_eq(base.leaks[0].key, head.leaks[0].key);
    struct diff_limits lim = {.max_leak_increase = 0, .max_crossing_increase = -1};
    struct diff_result r;
    ck_assert_int_eq(diff_compare(&base, &head, &lim, &r), 0);
    ck_assert_uint_eq(r.nleaks, 1);
    ck_assert_int_eq(r.leaks[0].status, DIFF_SAME);
    ck_assert_uint_eq(r.leak_regressions, 0);
    diff_result_free(&r);
    diff_side_free(&base);
    diff_side_free(&head);
}
END_TEST

/* Code moved: a site whose lines changed is the same site, grown or not; with two sites in one
 * function, the one that went away is the one reported fixed (pairing in line order). */
START_TEST(diff_lines_moved)
{
    struct diff_side base, head;
    diff_side_init(&base, "base");
    diff_side_init(&head, "head");
    struct report_frame a[NCSTRING], b[NCSTRING], a2[NCSTRING];
    with_line(a, cstring_stack, NCSTRING, 5, 45);
    with_line(b, cstring_stack, NCSTRING, 5, 60);
    with_line(a2, cstring_stack, NCSTRING, 5, 52); /* line 45 moved to 52 */
    diff_add_leak(&base, a, NCSTRING, 3, 17);
    diff_add_leak(&base, b, NCSTRING, 1, 16);
    diff_add_leak(&head, a2, NCSTRING, 4, 24);
    struct diff_limits lim = {.max_leak_increase = 0, .max_crossing_increase = -1};
    struct diff_result r;
    ck_assert_int_eq(diff_compare(&base, &head, &lim, &r), 0);
    ck_assert_uint_eq(r.nleaks, 2);
    const struct diff_leak_change *grown = find_change(&r, DIFF_GROWN), *fixed = find_change(&r, DIFF_FIXED);
    ck_assert_ptr_nonnull(grown);
    ck_assert_ptr_nonnull(fixed);
    ck_assert_int_eq(grown->base->frames[5].line, 45);
    ck_assert_int_eq(grown->head->frames[5].line, 52);
    ck_assert_int_eq(grown->delta_bytes, 7);
    ck_assert_int_eq(grown->regression, 1);
    ck_assert_int_eq(fixed->base->frames[5].line, 60);
    ck_assert_int_eq(fixed->delta_bytes, -16);
    ck_assert_uint_eq(r.leak_regressions, 1);
    diff_result_free(&r);
    lim.max_leak_increase = 7; /* "more than BYTES" */
    ck_assert_int_eq(diff_compare(&base, &head, &lim, &r), 0);
    ck_assert_uint_eq(r.leak_regressions, 0);
    diff_result_free(&r);
    /* The other way round: one new site, one shrunk. */
    ck_assert_int_eq(diff_compare(&head, &base, &lim, &r), 0);
    ck_assert_ptr_nonnull(find_change(&r, DIFF_NEW));
    ck_assert_ptr_nonnull(find_change(&r, DIFF_SHRUNK));
    ck_assert_uint_eq(r.leak_regressions, 1); /* 16 new bytes > 7 */
    diff_result_free(&r);
    diff_side_free(&base);
    diff_side_free(&head);
}
END_TEST

static json_object *report_json(const char *leaks, const char *calls)
{
    char *text;
    ck_assert_int_ge(asprintf(&text, "{\"tool\":{\"name\":\"cgoscope\"},\"processes\":[{\"pid\":1,\"leaks\":[%s],"
                                     "\"cgo_calls\":[%s]}]}", leaks, calls), 0);
    json_object *doc = json_tokener_parse(text);
    free(text);
    ck_assert_ptr_nonnull(doc);
    return doc;
}

#define LEAK(origin, supp, fn, line, bytes)                                                                        \
    "{\"blocks\":1,\"bytes\":" #bytes ",\"origin\":\"" origin "\",\"suppressed\":" supp ",\"stack\":[{\"function\":\"" fn \
    "\",\"file\":\"/src/m.go\",\"line\":" #line ",\"language\":\"go\",\"object\":\"/p\",\"pc\":\"0x1\"}]}"
#define CALL(fn, calls, crossing)                                                                                  \
    "{\"function\":\"" fn "\",\"package\":\"main\",\"calls\":" #calls ",\"c_time_ns\":1000,\"crossing_ns_estimate\":" \
    crossing "}"

/* From JSON: only user leaks no suppression matched take part; crossing cost growth is judged
 * against --max-crossing-increase above DIFF_CROSSING_FLOOR_NS; a new call site and an unmeasured
 * one are never judged. */
START_TEST(diff_from_json)
{
    struct diff_side base, head;
    diff_side_init(&base, "base");
    diff_side_init(&head, "head");
    char err[256];
    json_object *b = report_json(LEAK("user", "false", "main.a", 10, 8) "," LEAK("user", "true", "main.b", 11, 8) ","
                                 LEAK("runtime", "false", "net.c", 12, 8),
                                 CALL("add", 100, "1000000") "," CALL("nap", 10, "null") "," CALL("tiny", 3, "90"));
    json_object *h = report_json(LEAK("user", "false", "main.a", 10, 8),
                                 CALL("add", 200, "2000000") "," CALL("nap", 100, "500") "," CALL("fresh", 1, "20") ","
                                     CALL("tiny", 3, "150"));
    ck_assert_int_eq(diff_add_document(&base, b, NULL, err, sizeof err), 0);
    ck_assert_int_eq(diff_add_document(&head, h, NULL, err, sizeof err), 0);
    ck_assert_uint_eq(base.nleaks, 1);
    ck_assert_uint_eq(base.ncalls, 3);
    struct diff_limits lim = {.max_leak_increase = 0, .max_crossing_increase = 150};
    struct diff_result r;
    ck_assert_int_eq(diff_compare(&base, &head, &lim, &r), 0);
    ck_assert_uint_eq(r.leak_regressions, 0);
    ck_assert_uint_eq(r.ncalls, 4);
    for (size_t i = 0; i < r.ncalls; i++) {
        const char *fn = r.calls[i].head->function;
        if (!strcmp(fn, "add")) {
            ck_assert(fabs(r.calls[i].crossing_pct - 100) < 1e-9);
            ck_assert_int_eq(r.calls[i].regression, 0);
        } else if (!strcmp(fn, "nap")) {
            ck_assert(isnan(r.calls[i].crossing_pct));
            ck_assert_int_eq(r.calls[i].regression, 0);
        } else if (!strcmp(fn, "tiny")) {
            ck_assert(fabs(r.calls[i].crossing_pct - 200.0 / 3) < 1e-9);
            ck_assert_int_eq(r.calls[i].regression, 0);
        } else {
            ck_assert(isinf(r.calls[i].crossing_pct));
            ck_assert_int_eq(r.calls[i].regression, 0);
        }
    }
    ck_assert_uint_eq(r.call_regressions, 0);
    diff_result_free(&r);
    /* add grew by 100% and 1 ms: a regression; tiny by 67% but 60 ns, the estimate's spread (a
     * site called 3 times): not one. */
    lim.max_crossing_increase = 50;
    ck_assert_int_eq(diff_compare(&base, &head, &lim, &r), 0);
    ck_assert_uint_eq(r.call_regressions, 1);
    for (size_t i = 0; i < r.ncalls; i++)
        ck_assert_int_eq(r.calls[i].regression, !strcmp(r.calls[i].head->function, "add"));
    diff_result_free(&r);
    /* Suppressions given to diff apply to JSON reports too. */
    struct gate g;
    gate_init(&g);
    ck_assert_int_eq(suppressions_parse(&g.supp, "leak:main.a\n", "t", err, sizeof err), 0);
    struct diff_side again;
    diff_side_init(&again, "again");
    ck_assert_int_eq(diff_add_document(&again, b, &g, err, sizeof err), 0);
    ck_assert_uint_eq(again.nleaks, 0);
    diff_side_free(&again);
    gate_free(&g);
    json_object *bad = json_tokener_parse("{\"leaks\": []}");
    ck_assert_int_eq(diff_add_document(&again, bad, NULL, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a cgoscope JSON report"));
    json_object_put(bad);
    json_object_put(b);
    json_object_put(h);
    diff_side_free(&base);
    diff_side_free(&head);
}
END_TEST

/* ---- exports ----------------------------------------------------------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return buf;
}

/* Folded stacks: outermost first, glue and the shim left out, one line per distinct stack. */
START_TEST(export_folded_lines)
{
    struct leak_group g[3];
    struct report r = three_groups(g);
    struct process p = {.pid = 7};
    r.proc = &p;
    char path[] = "/tmp/cgoscope-folded-XXXXXX";
    close(mkstemp(path));
    ck_assert_int_eq(export_folded(path, &r, 1, 0, 0), 0);
    ck_assert_str_eq(slurp(path), "__clone3;start_thread;thread_main;thread_leak 9\n"
                                  "main.main;main.leakNames;_cgo_317c6cfcf4f2_Cfunc__Cmalloc 17\n");
    ck_assert_int_eq(export_folded(path, &r, 1, 1, 0), 0); /* all leaks: the runtime's too */
    ck_assert_ptr_nonnull(strstr(slurp(path), "_cgo_try_pthread_create;__pthread_create_2_1;_dl_allocate_tls;calloc 1280\n"));
    unlink(path);
    ck_assert_int_eq(export_folded("/nonexistent-dir/x.folded", &r, 1, 0, 0), -1);
}
END_TEST

/* SARIF: one result per user leak site, at the Go line of the call for C.CString. */
START_TEST(export_sarif_results)
{
    struct leak_group g[3];
    struct report r = three_groups(g);
    struct process p = {.pid = 7};
    r.proc = &p;
    char path[] = "/tmp/cgoscope-sarif-XXXXXX";
    close(mkstemp(path));
    ck_assert_int_eq(export_sarif(path, &r, 1, NULL), 0);
    json_object *doc = json_object_from_file(path);
    ck_assert_ptr_nonnull(doc);
    json_object *runs, *results, *res, *locs;
    ck_assert(json_object_object_get_ex(doc, "runs", &runs));
    ck_assert(json_object_object_get_ex(json_object_array_get_idx(runs, 0), "results", &results));
    ck_assert_uint_eq(json_object_array_length(results), 2);
    res = json_object_array_get_idx(results, 0);
    ck_assert(json_object_object_get_ex(res, "locations", &locs));
    const char *loc = json_object_to_json_string_ext(json_object_array_get_idx(locs, 0),
                                                     JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    ck_assert_ptr_nonnull(strstr(loc, "\"uri\": \"file:///src/leaky/main.go\""));
    ck_assert_ptr_nonnull(strstr(loc, "\"startLine\": 45"));
    ck_assert_ptr_nonnull(strstr(loc, "\"fullyQualifiedName\": \"main.leakNames\""));
    json_object_put(doc);
    unlink(path);
}
END_TEST

/* pprof: the profile unpacks, with the sample types, the leaks' values and symbolized frames. */
START_TEST(export_pprof_profile)
{
    struct leak_group g[3];
    struct report r = three_groups(g);
    struct process p = {.pid = 7};
    r.proc = &p;
    struct crossing_site site = {.package = "main", .function = "nap", .calls = 10, .c_time_ns = 1000,
                                 .callers = {{.function = "main.mix", .file = "/src/m.go", .line = 9, .calls = 8}},
                                 .ncallers = 1};
    r.crossings.sites = &site;
    r.crossings.nsites = 1;
    char path[] = "/tmp/cgoscope-pprof-XXXXXX";
    close(mkstemp(path));
    ck_assert_int_eq(export_pprof(path, &r, 1), 0);
    gzFile gz = gzopen(path, "rb");
    static uint8_t buf[1 << 16];
    int n = gzread(gz, buf, sizeof buf);
    gzclose(gz);
    ck_assert_int_gt(n, 0);
    Cgoscope__Pprof__Profile *prof = cgoscope__pprof__profile__unpack(NULL, (size_t)n, buf);
    ck_assert_ptr_nonnull(prof);
    ck_assert_uint_eq(prof->n_sample_type, 10);
    ck_assert_str_eq(prof->string_table[prof->sample_type[7]->type], "possibly_lost_bytes");
    ck_assert_str_eq(prof->string_table[prof->sample_type[9]->type], "reachable_bytes");
    ck_assert_str_eq(prof->string_table[prof->sample_type[1]->type], "leaked_bytes");
    ck_assert_str_eq(prof->string_table[prof->sample_type[2]->type], "alloc_objects");
    ck_assert_str_eq(prof->string_table[prof->sample_type[3]->type], "alloc_bytes");
    ck_assert_str_eq(prof->string_table[prof->default_sample_type], "leaked_bytes");
    ck_assert_uint_eq(prof->n_sample, 3 + 2); /* three leaks; the site's caller and the rest */
    ck_assert_int_eq(prof->sample[0]->value[0], 3);
    ck_assert_int_eq(prof->sample[0]->value[1], 17);
    ck_assert_uint_eq(prof->sample[0]->n_location_id, NCSTRING);
    int64_t calls = 0, c_time = 0;
    for (size_t i = 3; i < 5; i++) {
        calls += prof->sample[i]->value[4];
        c_time += prof->sample[i]->value[5];
    }
    ck_assert_int_eq(calls, 10);
    ck_assert_int_eq(c_time, 1000);
    /* Every location names its function: pprof needs no binary. */
    for (size_t i = 0; i < prof->n_location; i++) {
        ck_assert_uint_ge(prof->location[i]->n_line, 1);
        uint64_t fid = prof->location[i]->line[0]->function_id;
        ck_assert_uint_ge(fid, 1);
        ck_assert_str_ne(prof->string_table[prof->function[fid - 1]->name], "");
    }
    cgoscope__pprof__profile__free_unpacked(prof, NULL);
    unlink(path);
}
END_TEST

Suite *gate_suite(void)
{
    Suite *s = suite_create("gate");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, pattern_templates);
    tcase_add_test(tc, parse_file_format);
    tcase_add_test(tc, load_file_and_errors);
    tcase_add_test(tc, match_any_frame_any_field);
    tcase_add_test(tc, defaults_spare_user_stacks);
    tcase_add_test(tc, memo_finds_the_same_rule);
    tcase_add_test(tc, apply_moves_counts);
    tcase_add_test(tc, stable_names);
    tcase_add_test(tc, path_expansion);
    tcase_add_test(tc, diff_matches_by_symbols);
    tcase_add_test(tc, diff_lines_moved);
    tcase_add_test(tc, diff_from_json);
    tcase_add_test(tc, export_folded_lines);
    tcase_add_test(tc, export_sarif_results);
    tcase_add_test(tc, export_pprof_profile);
    suite_add_tcase(s, tc);
    return s;
}
