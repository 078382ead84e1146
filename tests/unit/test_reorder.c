/* Allocation events of several threads, read thread by thread, applied in time order. */
#include <stdlib.h>

#include "analysis/process.h"
#include "recbuf.h"
#include "analysis/reorder.h"
#include "suites.h"

struct seen {
    uint64_t ts[16];
    uint32_t tid[16];
    int n;
};

static int note(void *arg, uint32_t tid, const uint8_t *rec, size_t size)
{
    struct seen *s = arg;
    const struct cgs_rec_free *r = (const void *)rec;
    ck_assert_uint_eq(size, sizeof *r);
    s->ts[s->n] = r->ts;
    s->tid[s->n] = tid;
    s->n++;
    return 0;
}

static void push_free(struct reorder *r, uint32_t tid, uint64_t ts)
{
    struct cgs_rec_free f = {{CGS_REC_FREE, 0, sizeof f}, ts, 0x1000, 0};
    ck_assert_int_eq(reorder_push(r, tid, ts, (const uint8_t *)&f, sizeof f), 0);
}

START_TEST(merges_threads_by_stamp_up_to_the_cut)
{
    struct reorder r;
    reorder_init(&r);
    push_free(&r, 7, 10);
    push_free(&r, 7, 30);
    push_free(&r, 7, 50);
    push_free(&r, 9, 20);
    push_free(&r, 9, 30); /* a tie with thread 7's: the one read first goes first */
    push_free(&r, 9, 60);
    struct seen s = {{0}, {0}, 0};
    ck_assert_int_eq(reorder_release(&r, 40, note, &s), 0);
    ck_assert_int_eq(s.n, 4);
    uint64_t want_ts[] = {10, 20, 30, 30};
    uint32_t want_tid[] = {7, 9, 7, 9};
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(s.ts[i], want_ts[i]);
        ck_assert_uint_eq(s.tid[i], want_tid[i]);
    }
    ck_assert_uint_eq(r.held, 2); /* 50 and 60 wait for a later cut */
    ck_assert_int_eq(reorder_release(&r, UINT64_MAX, note, &s), 0);
    ck_assert_int_eq(s.n, 6);
    ck_assert_uint_eq(s.ts[4], 50);
    ck_assert_uint_eq(s.ts[5], 60);
    ck_assert_uint_eq(r.held, 0);
    reorder_free(&r);
}
END_TEST

/* A stream of many events through a queue that wraps and grows. */
START_TEST(long_stream_keeps_its_order)
{
    struct reorder r;
    reorder_init(&r);
    uint64_t next = 1, last = 0;
    for (int round = 0; round < 50; round++) {
        for (int k = 0; k < 300; k++)
            push_free(&r, (uint32_t)(k % 3), next++);
        struct seen s;
        s.n = 0;
        /* Release all but the newest 100, sixteen at a time through the counter. */
        uint64_t w = next - 100;
        while (r.held > 100) {
            s.n = 0;
            ck_assert_int_eq(reorder_release(&r, last + 16 < w ? last + 16 : w, note, &s), 0);
            for (int i = 0; i < s.n; i++) {
                ck_assert_uint_eq(s.ts[i], last + 1);
                last = s.ts[i];
            }
        }
    }
    reorder_free(&r);
}
END_TEST

/* The interleaving of a false leak seen in gotest/clean: thread 71 allocated X at t=10 (read in
 * a first pass); then thread 71 freed X at 20 and allocated it again at 30, handed the block to
 * thread 73, which freed it at 50 and used X once more (51, 52). In the second pass thread 73's
 * chunk was read before thread 71's. Matched as read, the free at 50 ends the allocation at 10
 * and the one at 30 looks leaked; in time order, nothing is live. */
static void clean_handoff(int reorder_on, uint64_t *live, size_t *pending)
{
    static struct recbuf b71a, b73, b71b;
    b71a.len = b73.len = b71b.len = 0;
    rb_proc(&b71a, 5, "/bin/prog");
    rb_alloc(&b71a, 0x1000, 9, 0xabc, 10);
    rb_free(&b73, 0x1000, 50);
    rb_alloc(&b73, 0x1000, 9, 0xdef, 51);
    rb_free(&b73, 0x1000, 52);
    rb_free(&b71b, 0x1000, 20);
    rb_alloc(&b71b, 0x1000, 9, 0xabc, 30);

    struct process p;
    process_init(&p);
    p.reorder_on = reorder_on;
    ck_assert_int_eq(process_feed(&p, 71, b71a.data, b71a.len), 0);
    process_cut(&p, 15);
    ck_assert_int_eq(process_feed(&p, 73, b73.data, b73.len), 0);
    ck_assert_int_eq(process_feed(&p, 71, b71b.data, b71b.len), 0);
    process_cut(&p, 60);
    process_finish(&p);
    ck_assert_uint_eq(p.allocations, 3);
    ck_assert_uint_eq(p.frees, 3);
    *live = p.live.live_count;
    *pending = liveset_pending(&p.live);
    process_free(&p);
}

START_TEST(handoff_across_threads_is_not_a_leak)
{
    uint64_t live;
    size_t pending;
    clean_handoff(1, &live, &pending);
    ck_assert_uint_eq(live, 0);
    ck_assert_uint_eq(pending, 0);
    /* The same records matched as read: the false leak the cuts are for. */
    clean_handoff(0, &live, &pending);
    ck_assert_uint_eq(live, 1);
    ck_assert_uint_eq(pending, 1);
}
END_TEST

/* Events wait for a cut that covers them, in the live set only from then on; an event stamped
 * before the last cut (committed late) goes at once; the end of the process covers the rest. */
START_TEST(events_wait_for_their_cut)
{
    static struct recbuf b1, b2, b3;
    b1.len = b2.len = b3.len = 0;
    rb_proc(&b1, 5, "/bin/prog");
    rb_alloc(&b1, 0x1000, 100, 0xabc, 10);
    rb_alloc(&b1, 0x2000, 50, 0xabc, 20);
    rb_free(&b2, 0x1000, 15);
    rb_alloc(&b3, 0x3000, 30, 0xabc, 12); /* read after the cut at 18, stamped before it */
    struct process p;
    process_init(&p);
    p.reorder_on = 1;
    ck_assert_int_eq(process_feed(&p, 1, b1.data, b1.len), 0);
    ck_assert_int_eq(process_feed(&p, 2, b2.data, b2.len), 0);
    ck_assert_uint_eq(p.allocations, 2);
    ck_assert_uint_eq(p.frees, 1);
    ck_assert_uint_eq(p.live.live_count, 0);
    process_cut(&p, 18);
    ck_assert_uint_eq(p.live.live_count, 0); /* 0x1000 came and went; 0x2000 (at 20) waits */
    ck_assert_int_eq(process_feed(&p, 3, b3.data, b3.len), 0);
    ck_assert_uint_eq(p.live.live_count, 1);
    ck_assert_uint_eq(p.live.live_bytes, 30);
    process_finish(&p);
    ck_assert_uint_eq(p.live.live_count, 2);
    ck_assert_uint_eq(p.live.live_bytes, 80);
    ck_assert_uint_eq(liveset_pending(&p.live), 0);
    process_free(&p);
}
END_TEST

Suite *reorder_suite(void)
{
    Suite *s = suite_create("reorder");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, merges_threads_by_stamp_up_to_the_cut);
    tcase_add_test(tc, long_stream_keeps_its_order);
    tcase_add_test(tc, handoff_across_threads_is_not_a_leak);
    tcase_add_test(tc, events_wait_for_their_cut);
    suite_add_tcase(s, tc);
    return s;
}
