#include "selfmod.h"

#include <string.h>

#include "analysis/process.h"
#include "suites.h"
#include "output/symbolize.h"

volatile uintptr_t sym_sink;

__attribute__((noinline)) static uintptr_t return_address(void)
{
    uintptr_t ra = (uintptr_t)__builtin_return_address(0);
    __asm__ volatile("" ::: "memory");
    return ra;
}

__attribute__((noinline)) static uintptr_t known_caller(int *line)
{
    *line = __LINE__ + 1;
    uintptr_t ra = return_address();
    sym_sink = ra;
    return ra;
}

static inline __attribute__((always_inline)) uintptr_t inlined_helper(int *line)
{
    *line = __LINE__ + 1;
    uintptr_t ra = return_address();
    sym_sink = ra;
    return ra;
}

__attribute__((noinline)) static uintptr_t outer_of_inline(int *line, int *call_line)
{
    *call_line = __LINE__ + 1;
    uintptr_t ra = inlined_helper(line);
    sym_sink = ra + 1;
    return ra;
}

static void self_process(struct process *p)
{
    static struct recbuf b;
    b.len = 0;
    rb_self_module(&b);
    process_init(p);
    ck_assert_int_eq(process_feed(p, 1, b.data, b.len), 0);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A return address names the line of the call, not the line after it. */
START_TEST(return_address_names_call_line)
{
    struct process p;
    self_process(&p);
    struct symbolizer *s = symbolizer_new(&p);
    ck_assert_ptr_nonnull(s);
    int line = 0;
    uintptr_t ra = known_caller(&line);
    size_t n;
    const struct frame *f = symbolize(s, ra, &n);
    ck_assert_uint_ge(n, 1);
    ck_assert_str_eq(f[0].function, "known_caller");
    ck_assert_ptr_nonnull(f[0].file);
    ck_assert(ends_with(f[0].file, "test_symbolize.c"));
    ck_assert_int_eq(f[0].line, line);
    ck_assert_int_eq(f[0].lang, LANG_C);
    ck_assert_int_eq(f[0].system, 0);
    /* the cache answers the same */
    const struct frame *again = symbolize(s, ra, &n);
    ck_assert_str_eq(again[0].function, "known_caller");
    symbolizer_free(s);
    process_free(&p);
}
END_TEST

/* An inlined function gets a frame of its own, then the function it was inlined into, at
 * the line of the inlined call. */
START_TEST(inlined_calls_are_expanded)
{
    struct process p;
    self_process(&p);
    struct symbolizer *s = symbolizer_new(&p);
    int line = 0, call_line = 0;
    uintptr_t ra = outer_of_inline(&line, &call_line);
    size_t n;
    const struct frame *f = symbolize(s, ra, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(f[0].function, "inlined_helper");
    ck_assert_int_eq(f[0].line, line);
    ck_assert_int_eq(f[0].inlined, 1);
    ck_assert_str_eq(f[1].function, "outer_of_inline");
    ck_assert_int_eq(f[1].line, call_line);
    ck_assert(ends_with(f[1].file, "test_symbolize.c"));
    symbolizer_free(s);
    process_free(&p);
}
END_TEST

START_TEST(unknown_address_is_kept_as_address)
{
    struct process p;
    self_process(&p);
    struct symbolizer *s = symbolizer_new(&p);
    size_t n;
    const struct frame *f = symbolize(s, 0x10, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_null(f[0].function);
    ck_assert_ptr_null(f[0].module);
    symbolizer_free(s);
    process_free(&p);
}
END_TEST

START_TEST(missing_module_is_a_warning)
{
    static struct recbuf b;
    b.len = 0;
    rb_module(&b, "/nonexistent/libgone.so", 0x7f0000000000, 0x7f0000000000, 0x7f0000100000, 0);
    struct process p;
    process_init(&p);
    process_feed(&p, 1, b.data, b.len);
    struct symbolizer *s = symbolizer_new(&p);
    size_t n;
    const struct frame *f = symbolize(s, 0x7f0000000100, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_null(f[0].function);
    ck_assert_ptr_nonnull(f[0].module);
    ck_assert_ptr_nonnull(strstr(symbolizer_warnings(s), "/nonexistent/libgone.so"));
    symbolizer_free(s);
    process_free(&p);
}
END_TEST

START_TEST(system_libraries)
{
    ck_assert_int_eq(module_is_system("/lib/x86_64-linux-gnu/libc.so.6"), 1);
    ck_assert_int_eq(module_is_system("/usr/lib/x86_64-linux-gnu/libstdc++.so.6"), 1);
    ck_assert_int_eq(module_is_system("/lib64/ld-linux-x86-64.so.2"), 1);
    ck_assert_int_eq(module_is_system("/home/me/app/libmine.so"), 0);
    ck_assert_int_eq(module_is_system("/home/me/app/prog"), 0);
}
END_TEST

Suite *symbolize_suite(void)
{
    Suite *s = suite_create("symbolize");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, return_address_names_call_line);
    tcase_add_test(tc, inlined_calls_are_expanded);
    tcase_add_test(tc, unknown_address_is_kept_as_address);
    tcase_add_test(tc, missing_module_is_a_warning);
    tcase_add_test(tc, system_libraries);
    suite_add_tcase(s, tc);
    return s;
}
