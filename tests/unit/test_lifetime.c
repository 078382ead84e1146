/* Double and invalid frees found from the records (analyzer/analysis/lifetime.c, docs/lifetime.md). */
#include <string.h>

#include "analysis/lifetime.h"
#include "suites.h"
#include "output/suppress.h"

struct lt_fixture {
    struct liveset live;
    struct lifetime lt;
};

static void setup(struct lt_fixture *f)
{
    liveset_init(&f->live);
    lifetime_init(&f->lt);
}

static void teardown(struct lt_fixture *f)
{
    lifetime_free(&f->lt);
    liveset_free(&f->live);
}

/* alloc (stack 11) t=1, free (stack 22) t=2, free again (stack 33) t=3. */
START_TEST(double_free_has_three_stacks)
{
    struct lt_fixture f;
    setup(&f);
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x1000, 6, 11, 1), 0);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x1000, 2, 22, 0), 1);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x1000, 3, 33, 0), 0);
    lifetime_finish(&f.lt, &f.live);
    ck_assert_uint_eq(f.lt.nerrors, 1);
    const struct lifetime_error *e = &f.lt.errors[0];
    ck_assert_int_eq(e->kind, LT_DOUBLE_FREE);
    ck_assert_uint_eq(e->addr, 0x1000);
    ck_assert_uint_eq(e->size, 6);
    ck_assert_uint_eq(e->stack, 33);
    ck_assert_uint_eq(e->alloc_stack, 11);
    ck_assert_uint_eq(e->first_free_stack, 22);
    teardown(&f);
}
END_TEST

/* A free read before the allocation it ends (another thread's records) is no error. */
START_TEST(free_read_early_is_no_error)
{
    struct lt_fixture f;
    setup(&f);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x2000, 5, 22, 0), 0);
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x2000, 8, 11, 4), 0);
    ck_assert_uint_eq(liveset_pending(&f.live), 0);
    /* ...and it counts as that block's free: a second free of it is a double free. */
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x2000, 6, 33, 0), 0);
    lifetime_finish(&f.lt, &f.live);
    ck_assert_uint_eq(f.lt.nerrors, 1);
    ck_assert_int_eq(f.lt.errors[0].kind, LT_DOUBLE_FREE);
    ck_assert_uint_eq(f.lt.errors[0].first_free_stack, 22);
    ck_assert_uint_eq(f.lt.errors[0].alloc_stack, 11);
    ck_assert_uint_eq(f.lt.errors[0].size, 8);
    teardown(&f);
}
END_TEST

/* An address freed, allocated again and freed again, correctly: no error. Then a free of an
 * address never allocated, and one 8 bytes into a live block. */
START_TEST(reuse_is_fine_invalid_and_interior)
{
    struct lt_fixture f;
    setup(&f);
    for (uint64_t t = 1; t < 100; t += 2) {
        ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x3000, 16, 11, t), 0);
        ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x3000, t + 1, 22, 0), 1);
    }
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x4000, 32, 44, 200), 0);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x4008, 201, 55, 0), 0);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x9000, 202, 66, 1), 0);
    lifetime_finish(&f.lt, &f.live);
    ck_assert_uint_eq(f.lt.nerrors, 2);
    const struct lifetime_error *a = &f.lt.errors[0], *b = &f.lt.errors[1];
    ck_assert_int_eq(a->kind, LT_INVALID_FREE);
    ck_assert_int_eq(a->interior, 1);
    ck_assert_uint_eq(a->offset, 8);
    ck_assert_uint_eq(a->size, 32);
    ck_assert_uint_eq(a->alloc_stack, 44);
    ck_assert_uint_eq(a->stack, 55);
    ck_assert_int_eq(b->kind, LT_INVALID_FREE);
    ck_assert_int_eq(b->interior, 0);
    ck_assert_int_eq(b->realloc, 1);
    ck_assert_uint_eq(b->size, 0);
    ck_assert_uint_eq(b->alloc_stack, 0);
    teardown(&f);
}
END_TEST

/* The ring keeps LIFETIME_RECENT frees: a double free within them is one, older ones are
 * invalid frees without an allocation stack. */
START_TEST(ring_bound)
{
    struct lt_fixture f;
    setup(&f);
    uint64_t t = 1;
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x10, 1, 7, t++), 0);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x10, t++, 8, 0), 1);
    for (uint64_t i = 0; i < LIFETIME_RECENT + 10; i++) {
        uint64_t a = 0x100000 + i * 16;
        ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, a, 16, 9, t++), 0);
        ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, a, t++, 10, 0), 1);
    }
    uint64_t recent = 0x100000 + (LIFETIME_RECENT - 5) * 16;
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, recent, t++, 12, 0), 0);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x10, t++, 13, 0), 0);
    lifetime_finish(&f.lt, &f.live);
    ck_assert_uint_eq(f.lt.nerrors, 2);
    ck_assert_int_eq(f.lt.errors[0].kind, LT_DOUBLE_FREE);
    ck_assert_uint_eq(f.lt.errors[0].addr, recent);
    ck_assert_uint_eq(f.lt.errors[0].first_free_stack, 10);
    ck_assert_int_eq(f.lt.errors[1].kind, LT_INVALID_FREE);
    ck_assert_uint_eq(f.lt.errors[1].alloc_stack, 0);
    teardown(&f);
}
END_TEST

/* A fork() child: a free of an unknown address may be its parent's block. */
START_TEST(fork_child_reports_no_invalid_free)
{
    struct lt_fixture f;
    setup(&f);
    f.lt.forked = 1;
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x5000, 1, 22, 0), 0);
    lifetime_finish(&f.lt, &f.live);
    ck_assert_uint_eq(f.lt.nerrors, 0);
    ck_assert_uint_eq(f.lt.unknown, 1);
    teardown(&f);
}
END_TEST

/* FREE records' stacks: full, same as the thread's previous, none (format 1). */
START_TEST(free_stack_per_thread)
{
    struct lt_fixture f;
    setup(&f);
    ck_assert_uint_eq(lifetime_free_stack(&f.lt, 1, 1, 0, 77), 77);
    ck_assert_uint_eq(lifetime_free_stack(&f.lt, 2, 1, 0, 88), 88);
    ck_assert_uint_eq(lifetime_free_stack(&f.lt, 1, 0, 1, 0), 77);
    ck_assert_uint_eq(lifetime_free_stack(&f.lt, 2, 0, 1, 0), 88);
    ck_assert_uint_eq(lifetime_free_stack(&f.lt, 1, 0, 0, 0), 0);
    ck_assert_uint_eq(lifetime_free_stack(&f.lt, 3, 0, 1, 0), 0);
    teardown(&f);
}
END_TEST

/* double_free: and invalid_free: rules match their kind only; leak: rules, leaks only. */
START_TEST(suppression_types)
{
    struct suppressions s;
    suppressions_init(&s);
    char err[256];
    ck_assert_int_eq(suppressions_parse(&s, "double_free:free_again\ninvalid_free:^main.bad\nleak:keep\n", "t", err,
                                        sizeof err),
                     0);
    struct report_frame fr = {.function = "free_again"}, keep = {.function = "keep"};
    ck_assert_ptr_null(suppressions_match(&s, &fr, 1));
    ck_assert_ptr_nonnull(suppressions_match(&s, &keep, 1));
    struct suppression *m = suppressions_match_type(&s, SUPP_DOUBLE_FREE, &fr, 1);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->pattern, "free_again");
    ck_assert_ptr_null(suppressions_match_type(&s, SUPP_INVALID_FREE, &fr, 1));
    ck_assert_ptr_null(suppressions_match_type(&s, SUPP_DOUBLE_FREE, &keep, 1));
    ck_assert_int_eq(suppressions_parse(&s, "use_after_free:x\n", "bad", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bad:1: unknown suppression type `use_after_free`"));
    suppressions_free(&s);
}
END_TEST

/* Reallocs that did not return (a REALLOC_BEGIN still open at the end) or that failed: an error
 * only when nothing was live at the address then, and nothing since says it may have been. */
START_TEST(realloc_not_returned)
{
    struct lt_fixture f;
    setup(&f);
    /* 0x1000: allocated (11), freed (22), then a realloc (33) the process died in: double free. */
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x1000, 1600, 11, 1), 0);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x1000, 2, 22, 0), 1);
    ck_assert_int_eq(lifetime_realloc_begin(&f.lt, 7, 0x1000, 3, 33), 0);
    /* 0x2000: live, its realloc (44) on thread 8 never returned (the process was killed): fine. */
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x2000, 16, 11, 4), 0);
    ck_assert_int_eq(lifetime_realloc_begin(&f.lt, 8, 0x2000, 5, 44), 0);
    /* 0x3000: Go memory, a realloc (55) on thread 9 that failed: invalid free. */
    ck_assert_int_eq(lifetime_realloc_begin(&f.lt, 9, 0x3000, 6, 55), 0);
    lifetime_realloc_end(&f.lt, 9, 1, 0x3000);
    /* 0x4000: live, a realloc (66) on thread 9 that failed, then freed: fine. */
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x4000, 16, 11, 7), 0);
    ck_assert_int_eq(lifetime_realloc_begin(&f.lt, 9, 0x4000, 8, 66), 0);
    lifetime_realloc_end(&f.lt, 9, 1, 0x4000);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x4000, 9, 22, 0), 1);
    /* 0x5000: a realloc (77) on thread 10 that returned (its REALLOC record took over): nothing. */
    ck_assert_int_eq(lifetime_realloc_begin(&f.lt, 10, 0x5000, 10, 77), 0);
    lifetime_realloc_end(&f.lt, 10, 0, 0x5000);
    ck_assert_uint_eq(f.lt.nopen, 2);
    lifetime_finish(&f.lt, &f.live);
    ck_assert_uint_eq(f.lt.nerrors, 2);
    const struct lifetime_error *e = &f.lt.errors[0];
    ck_assert_int_eq(e->kind, LT_DOUBLE_FREE);
    ck_assert_int_eq(e->realloc, 1);
    ck_assert_uint_eq(e->addr, 0x1000);
    ck_assert_uint_eq(e->size, 1600);
    ck_assert_uint_eq(e->stack, 33);
    ck_assert_uint_eq(e->alloc_stack, 11);
    ck_assert_uint_eq(e->first_free_stack, 22);
    e = &f.lt.errors[1];
    ck_assert_int_eq(e->kind, LT_INVALID_FREE);
    ck_assert_int_eq(e->realloc, 1);
    ck_assert_uint_eq(e->addr, 0x3000);
    ck_assert_uint_eq(e->stack, 55);
    ck_assert_uint_eq(e->alloc_stack, 0);
    teardown(&f);
}
END_TEST

/* A realloc that moved a block and freed it, then the process died before it could say so: the
 * old address, taken by another block since and freed again, is no error. */
START_TEST(realloc_not_returned_address_reused)
{
    struct lt_fixture f;
    setup(&f);
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x1000, 16, 11, 1), 0);
    ck_assert_int_eq(lifetime_realloc_begin(&f.lt, 7, 0x1000, 2, 33), 0);
    /* the record of 0x1000's end never came; another thread got the address and freed it */
    ck_assert_int_eq(lifetime_alloc(&f.lt, &f.live, 0x1000, 32, 12, 3), 0);
    ck_assert_int_eq(lifetime_free_block(&f.lt, &f.live, 0x1000, 4, 22, 0), 1);
    lifetime_finish(&f.lt, &f.live);
    ck_assert_uint_eq(f.lt.nerrors, 0);
    teardown(&f);
}
END_TEST

Suite *lifetime_suite(void)
{
    Suite *s = suite_create("lifetime");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, double_free_has_three_stacks);
    tcase_add_test(tc, free_read_early_is_no_error);
    tcase_add_test(tc, reuse_is_fine_invalid_and_interior);
    tcase_add_test(tc, ring_bound);
    tcase_add_test(tc, fork_child_reports_no_invalid_free);
    tcase_add_test(tc, free_stack_per_thread);
    tcase_add_test(tc, suppression_types);
    tcase_add_test(tc, realloc_not_returned);
    tcase_add_test(tc, realloc_not_returned_address_reused);
    suite_add_tcase(s, tc);
    return s;
}
