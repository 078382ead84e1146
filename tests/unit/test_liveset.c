#include "analysis/liveset.h"
#include "suites.h"

START_TEST(alloc_then_free)
{
    struct liveset s;
    liveset_init(&s);
    ck_assert_int_eq(liveset_alloc(&s, 0x1000, 10, 1, 5), 0);
    ck_assert_int_eq(liveset_alloc(&s, 0x2000, 20, 1, 6), 0);
    ck_assert_uint_eq(s.live_count, 2);
    ck_assert_uint_eq(s.live_bytes, 30);
    ck_assert_int_eq(liveset_free_block(&s, 0x1000, 7), 1);
    ck_assert_uint_eq(s.live_count, 1);
    ck_assert_uint_eq(s.live_bytes, 20);
    ck_assert_uint_eq(liveset_pending(&s), 0);
    liveset_free(&s);
}
END_TEST

/* Thread B allocated X at t=1 and thread A freed it at t=2, but A's records were read first. */
START_TEST(free_read_before_its_allocation)
{
    struct liveset s;
    liveset_init(&s);
    ck_assert_int_eq(liveset_free_block(&s, 0x1000, 2), 0);
    ck_assert_uint_eq(liveset_pending(&s), 1);
    ck_assert_int_eq(liveset_alloc(&s, 0x1000, 10, 1, 1), 0);
    ck_assert_uint_eq(s.live_count, 0);
    ck_assert_uint_eq(liveset_pending(&s), 0);
    /* B reuses X at t=3, after the free: that block is live. */
    ck_assert_int_eq(liveset_alloc(&s, 0x1000, 30, 2, 3), 0);
    ck_assert_uint_eq(s.live_count, 1);
    ck_assert_uint_eq(s.live_bytes, 30);
    liveset_free(&s);
}
END_TEST

/* B: alloc X t=1, alloc X t=3 (read first); A: free X t=2 (read later). The free ends the
 * allocation at t=1, and the one at t=3 stays live. */
START_TEST(address_reused_before_free_read)
{
    struct liveset s;
    liveset_init(&s);
    liveset_alloc(&s, 0x1000, 10, 1, 1);
    liveset_alloc(&s, 0x1000, 30, 2, 3);
    ck_assert_uint_eq(s.live_count, 2);
    ck_assert_int_eq(liveset_free_block(&s, 0x1000, 2), 1);
    ck_assert_uint_eq(s.live_count, 1);
    ck_assert_uint_eq(s.live_bytes, 30);
    ck_assert_int_eq(liveset_free_block(&s, 0x1000, 4), 1);
    ck_assert_uint_eq(s.live_count, 0);
    ck_assert_int_eq(liveset_has(&s, 0x1000), 0);
    liveset_free(&s);
}
END_TEST

/* The latest earlier allocation is the one a free ends, whichever table holds it. */
START_TEST(free_picks_latest_earlier_allocation)
{
    struct liveset s;
    liveset_init(&s);
    liveset_alloc(&s, 0x1000, 1, 1, 10);
    liveset_alloc(&s, 0x1000, 2, 2, 30);
    liveset_alloc(&s, 0x1000, 4, 3, 20);
    ck_assert_int_eq(liveset_free_block(&s, 0x1000, 25), 1); /* ends the one at 20 */
    ck_assert_uint_eq(s.live_bytes, 3);
    ck_assert_int_eq(liveset_free_block(&s, 0x1000, 35), 1); /* ends the one at 30 */
    ck_assert_uint_eq(s.live_bytes, 1);
    ck_assert_int_eq(liveset_free_block(&s, 0x1000, 40), 1);
    ck_assert_uint_eq(s.live_count, 0);
    liveset_free(&s);
}
END_TEST

static void count(const struct live_block *b, void *arg)
{
    (void)b;
    ++*(int *)arg;
}

/* A block of 4 GiB or more keeps its exact size. */
START_TEST(huge_block)
{
    struct liveset s;
    liveset_init(&s);
    uint64_t big = (5ull << 30) + 3;
    liveset_alloc(&s, 0x7000, big, 9, 1);
    ck_assert_uint_eq(s.live_bytes, big);
    ck_assert_int_eq(liveset_free_block(&s, 0x7000, 2), 1);
    ck_assert_uint_eq(s.live_bytes, 0);
    ck_assert_uint_eq(s.big_sizes.len, 0);
    liveset_free(&s);
}
END_TEST

/* Per-stack counts follow allocations and frees, duplicates included. */
START_TEST(per_stack_counts)
{
    struct liveset s;
    liveset_init(&s);
    liveset_alloc(&s, 0x1000, 10, 7, 1);
    liveset_alloc(&s, 0x1000, 20, 8, 3); /* the free of the first is not read yet */
    liveset_alloc(&s, 0x2000, 5, 7, 4);
    liveset_free_block(&s, 0x1000, 2);
    ck_assert_uint_eq(s.nstacks, 2);
    ck_assert_uint_eq(s.per_stack[0].stack, 7);
    ck_assert_uint_eq(s.per_stack[0].bytes, 5);
    ck_assert_uint_eq(s.per_stack[0].blocks, 1);
    ck_assert_uint_eq(s.per_stack[0].allocs, 2);
    ck_assert_uint_eq(s.per_stack[0].alloc_bytes, 15);
    ck_assert_uint_eq(s.per_stack[1].bytes, 20);
    ck_assert_int_eq(liveset_has(&s, 0x1000), 1); /* the duplicate moved into the table */
    ck_assert_uint_eq(s.ndups, 0);
    liveset_free(&s);
}
END_TEST

START_TEST(slots_are_reused)
{
    struct liveset s;
    liveset_init(&s);
    for (uint64_t round = 0; round < 100; round++) {
        for (uint64_t i = 1; i <= 1000; i++)
            liveset_alloc(&s, i * 16, 16, 1, round * 2000 + i);
        for (uint64_t i = 1; i <= 1000; i++)
            liveset_free_block(&s, i * 16, round * 2000 + 1000 + i);
    }
    liveset_alloc(&s, 0x99990, 5, 1, 1u << 30);
    ck_assert_uint_le(liveset_capacity(&s), 8192); /* memory follows live blocks, not events */
    int n = 0;
    liveset_each(&s, count, &n);
    ck_assert_int_eq(n, 1);
    liveset_free(&s);
}
END_TEST

Suite *liveset_suite(void)
{
    Suite *s = suite_create("liveset");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, alloc_then_free);
    tcase_add_test(tc, free_read_before_its_allocation);
    tcase_add_test(tc, address_reused_before_free_read);
    tcase_add_test(tc, free_picks_latest_earlier_allocation);
    tcase_add_test(tc, slots_are_reused);
    tcase_add_test(tc, huge_block);
    tcase_add_test(tc, per_stack_counts);
    suite_add_tcase(s, tc);
    return s;
}
