#include "selfmod.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "output/jsonout.h"
#include "output/report.h"
#include "suites.h"

volatile uintptr_t rep_sink;

__attribute__((noinline)) static uintptr_t here(void)
{
    uintptr_t ra = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return ra;
}

__attribute__((noinline)) static uintptr_t user_c_function(void)
{
    uintptr_t r = here();
    rep_sink = r;
    return r;
}

/* jsonout_write_fd writes what json-c would print, and a newline. */
static void same_as_json_c(json_object *doc)
{
    int fd = memfd_create("jsonout", 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(jsonout_write_fd(fd, doc), 0);
    off_t len = lseek(fd, 0, SEEK_END);
    char *got = calloc(1, (size_t)len + 1);
    ck_assert_ptr_nonnull(got);
    ck_assert_int_eq(pread(fd, got, (size_t)len, 0), len);
    close(fd);
    const char *want = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    ck_assert_uint_eq(strlen(want) + 1, (size_t)len);
    ck_assert_int_eq(memcmp(got, want, strlen(want)), 0);
    ck_assert_int_eq(got[len - 1], '\n');
    free(got);
}

/* Every kind of value json-c prints, and each of its string escapes. */
START_TEST(jsonout_like_json_c)
{
    json_object *doc = json_object_new_object();
    json_object_object_add(doc, "null", NULL);
    json_object_object_add(doc, "true", json_object_new_boolean(1));
    json_object_object_add(doc, "false", json_object_new_boolean(0));
    json_object_object_add(doc, "int", json_object_new_int(-42));
    json_object_object_add(doc, "int64", json_object_new_int64(INT64_MIN));
    json_object_object_add(doc, "empty object", json_object_new_object());
    json_object_object_add(doc, "empty array", json_object_new_array());
    json_object_object_add(doc, "escapes \"/\\", json_object_new_string("a/b \"q\" \\ \b\f\n\r\t \x01\x1f\x7f é"));
    json_object_object_add(doc, "with NUL", json_object_new_string_len("a\0b", 3));
    const double d[] = {0, -0.0, 1, 3.0, 0.1, 0.038, 6.054010216, -2.5e-300, 1e300, 123456789012345678.0, NAN, INFINITY, -INFINITY};
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
        json_object_array_add(a, json_object_new_double(d[i]));
    json_object *nested = json_object_new_array();
    json_object_array_add(nested, NULL);
    json_object_array_add(nested, json_object_new_array());
    json_object *o = json_object_new_object();
    json_object_object_add(o, "k", json_object_new_string(""));
    json_object_array_add(nested, o);
    json_object_array_add(a, nested);
    json_object_object_add(doc, "numbers and nesting", a);
    same_as_json_c(doc);
    json_object_put(doc);
}
END_TEST

/* Three stacks: a cgo call from package main (user), a cgo call from net (runtime), and plain
 * C code of the program (user). Blocks are grouped by stack and sorted user first, biggest first. */
START_TEST(groups_sorted_and_classified)
{
    static struct recbuf b;
    b.len = 0;
    rb_proc(&b, 9, "/bin/prog");
    rb_self_module(&b);
    rb_site(&b, 0, "main._cgo_0123456789ab_Cfunc_grab");
    rb_site(&b, 1, "net._cgo_0123456789ab_C2func_getaddrinfo");
    uint64_t pc = user_c_function();
    rb_stack(&b, 100, 0, 1, &pc, 1);
    rb_stack(&b, 200, 1, 1, &pc, 1);
    rb_stack(&b, 300, CGS_NO_SITE, 1, &pc, 1);
    rb_alloc(&b, 0x1000, 10, 100, 1);
    rb_alloc(&b, 0x2000, 10, 100, 2);
    rb_alloc(&b, 0x3000, 10, 100, 3);
    rb_free(&b, 0x2000, 4);
    rb_alloc(&b, 0x4000, 500, 200, 5);
    rb_alloc(&b, 0x5000, 100, 300, 6);

    struct process p;
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), 0);
    p.exit_kind = EXIT_CODE;
    p.exit_value = 3;
    struct report r;
    ck_assert_int_eq(report_build(&r, &p, NULL), 0);
    ck_assert_uint_eq(r.ngroups, 3);
    ck_assert_uint_eq(r.groups[0].stack, 300);
    ck_assert_int_eq(r.groups[0].origin, ORIGIN_USER);
    ck_assert_uint_eq(r.groups[0].bytes, 100);
    ck_assert_uint_eq(r.groups[1].stack, 100);
    ck_assert_int_eq(r.groups[1].origin, ORIGIN_USER);
    ck_assert_uint_eq(r.groups[1].blocks, 2);
    ck_assert_uint_eq(r.groups[1].bytes, 20);
    ck_assert_uint_eq(r.groups[2].stack, 200);
    ck_assert_int_eq(r.groups[2].origin, ORIGIN_RUNTIME);
    ck_assert_uint_eq(r.user_blocks, 3);
    ck_assert_uint_eq(r.user_bytes, 120);
    ck_assert_uint_eq(r.runtime_bytes, 500);
    ck_assert_str_eq(r.groups[0].frames[0].function, "user_c_function");

    json_object *doc = report_document(&r, 1);
    same_as_json_c(doc); /* a whole report, shared frames and all */
    json_object *procs, *p0, *totals, *v, *leaks, *exit;
    ck_assert(json_object_object_get_ex(doc, "processes", &procs));
    p0 = json_object_array_get_idx(procs, 0);
    ck_assert(json_object_object_get_ex(p0, "totals", &totals));
    ck_assert(json_object_object_get_ex(totals, "leaked_bytes", &v));
    ck_assert_int_eq(json_object_get_int64(v), 120);
    ck_assert(json_object_object_get_ex(p0, "exit", &exit));
    ck_assert(json_object_object_get_ex(exit, "code", &v));
    ck_assert_int_eq(json_object_get_int(v), 3);
    ck_assert(json_object_object_get_ex(p0, "leaks", &leaks));
    ck_assert_uint_eq(json_object_array_length(leaks), 3);
    json_object *l2 = json_object_array_get_idx(leaks, 2);
    ck_assert(json_object_object_get_ex(l2, "origin", &v));
    ck_assert_str_eq(json_object_get_string(v), "runtime");
    json_object_put(doc);
    report_free(&r);
    process_free(&p);
}
END_TEST

/* A block whose stack never arrived (the process died between the two) is still counted. */
START_TEST(missing_stack_still_counted)
{
    static struct recbuf b;
    b.len = 0;
    rb_alloc(&b, 0x1000, 10, 777, 1);
    struct process p;
    process_init(&p);
    process_feed(&p, 1, b.data, b.len);
    struct report r;
    ck_assert_int_eq(report_build(&r, &p, NULL), 0);
    ck_assert_uint_eq(r.ngroups, 1);
    ck_assert_uint_eq(r.groups[0].nframes, 0);
    ck_assert_uint_eq(r.runtime_bytes + r.user_bytes, 10);
    report_free(&r);
    process_free(&p);
}
END_TEST

Suite *report_suite(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, groups_sorted_and_classified);
    tcase_add_test(tc, missing_stack_still_counted);
    tcase_add_test(tc, jsonout_like_json_c);
    suite_add_tcase(s, tc);
    return s;
}
