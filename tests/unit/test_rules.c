/* The rules the reports rest on, alone: the histogram's buckets (record.h), quantiles from them
 * (analyzer/output/crossings.c) and the growth rule (analyzer/analysis/growth.c, docs/growth.md). */
#include <stdint.h>
#include <string.h>

#include "analysis/growth.h"
#include "analysis/process.h"
#include "cgoscope/record.h"
#include "output/crossings.h"
#include "suites.h"

/* 4 buckets per power of two; cgs_hist_lower is the least duration of each bucket. */
START_TEST(hist_buckets_and_their_bounds)
{
    for (uint64_t t = 0; t < 4; t++)
        ck_assert_uint_eq(cgs_hist_bucket(t), t);
    for (unsigned k = 2; k < 40; k++)
        ck_assert_uint_eq(cgs_hist_bucket((uint64_t)1 << k), 4 * k - 4);
    for (unsigned b = 0; b < CGS_HIST_BUCKETS; b++) {
        ck_assert_uint_eq(cgs_hist_bucket(cgs_hist_lower(b)), b);
        if (b > 0) {
            ck_assert_uint_gt(cgs_hist_lower(b), cgs_hist_lower(b - 1));
            ck_assert_uint_eq(cgs_hist_bucket(cgs_hist_lower(b) - 1), b - 1);
        }
    }
    /* Beyond the last bucket everything lands in it. */
    ck_assert_uint_eq(cgs_hist_bucket(UINT64_MAX), CGS_HIST_BUCKETS - 1);
    ck_assert_uint_eq(cgs_hist_bucket((uint64_t)1 << 50), CGS_HIST_BUCKETS - 1);
    /* A bucket is at most a quarter of its lower bound wide: quantiles within about 10%. */
    for (unsigned b = 8; b + 1 < CGS_HIST_BUCKETS; b++)
        ck_assert_uint_le(cgs_hist_lower(b + 1) - cgs_hist_lower(b), cgs_hist_lower(b) / 4);
}
END_TEST

static void add_calls(struct call_stats *s, uint64_t ticks, uint64_t n)
{
    s->calls += n;
    s->timed += n;
    s->ticks_sum += ticks * n;
    if (ticks > s->ticks_max)
        s->ticks_max = ticks;
    if (!s->ticks_min || ticks < s->ticks_min)
        s->ticks_min = ticks;
    s->hist[cgs_hist_bucket(ticks)] += n;
}

START_TEST(quantiles_from_the_histogram)
{
    struct call_stats s;
    memset(&s, 0, sizeof s);
    ck_assert_double_eq(crossings_quantile_ticks(&s, 0.5), 0); /* nothing timed */
    /* 50 calls of 100 ticks, 40 of 1000, 10 of 100000. */
    add_calls(&s, 100, 50);
    add_calls(&s, 1000, 40);
    add_calls(&s, 100000, 10);
    double p50 = crossings_quantile_ticks(&s, 0.50), p90 = crossings_quantile_ticks(&s, 0.90);
    double p99 = crossings_quantile_ticks(&s, 0.99);
    ck_assert_double_ge(p50, 100 * 0.9);
    ck_assert_double_le(p50, 100 * 1.15);
    ck_assert_double_ge(p90, 1000 * 0.9);
    ck_assert_double_le(p90, 1000 * 1.15);
    ck_assert_double_eq(p99, 100000); /* the bucket's middle, held to the largest time seen */
    ck_assert_double_le(crossings_quantile_ticks(&s, 0.0), p50);
    /* One duration only: every quantile is that duration (clamped to min and max). */
    memset(&s, 0, sizeof s);
    add_calls(&s, 777, 9);
    ck_assert_double_eq(crossings_quantile_ticks(&s, 0.5), 777);
    ck_assert_double_eq(crossings_quantile_ticks(&s, 0.99), 777);
}
END_TEST

#define NPTS 12

/* A series of NPTS snapshots, one every 200 ms, of bytes base + i * step (blocks alike). */
static struct growth_verdict judge_line(uint64_t base, uint64_t step, uint64_t every_ns)
{
    uint64_t t[NPTS], bytes[NPTS], blocks[NPTS];
    for (size_t i = 0; i < NPTS; i++) {
        t[i] = 1000000000ull + i * every_ns;
        bytes[i] = base + i * step;
        blocks[i] = bytes[i] / 64;
    }
    return growth_judge(t, bytes, blocks, NPTS);
}

START_TEST(growth_rule)
{
    /* 1 KiB every 200 ms for 2.2 s: 11 KiB of rise, all of what it holds. */
    struct growth_verdict v = judge_line(0, 1024, 200000000ull);
    ck_assert_int_eq(v.growing, 1);
    ck_assert_double_eq_tol(v.bytes_per_s, 5120, 1e-3);
    /* Held, not growing: a flat series. */
    ck_assert_int_eq(judge_line(1 << 20, 0, 200000000ull).growing, 0);
    /* Shrinking. */
    ck_assert_int_eq(judge_line(1 << 20, (uint64_t)-1024, 200000000ull).growing, 0);
    /* Too little: under 4 KiB over the span. */
    ck_assert_int_eq(judge_line(0, 256, 200000000ull).growing, 0);
    /* Too little of what it holds: 11 KiB on top of 1 MiB (under a fifth). */
    ck_assert_int_eq(judge_line(1 << 20, 1024, 200000000ull).growing, 0);
    /* Too short a span: under a second. */
    ck_assert_int_eq(judge_line(0, 1024, 50000000ull).growing, 0);
    /* Too few snapshots. */
    uint64_t t[4] = {0, 1000000000ull, 2000000000ull, 3000000000ull}, b[4] = {0, 8192, 16384, 24576};
    ck_assert_int_eq(growth_judge(t, b, b, 4).growing, 0);
    /* Filled early, then held: a cache that stops growing has no trend. */
    uint64_t tt[NPTS], fill[NPTS];
    for (size_t i = 0; i < NPTS; i++) {
        tt[i] = i * 200000000ull;
        fill[i] = i < 3 ? i * 65536 : 3 * 65536;
    }
    ck_assert_int_eq(growth_judge(tt, fill, fill, NPTS).growing, 0);
}
END_TEST

static const struct growth_series *series_of(const struct growth *g, uint64_t stack)
{
    for (size_t i = 0; i < g->nseries; i++)
        if (g->series[i]->stack == stack)
            return g->series[i];
    return NULL;
}

/* Snapshots visit only the stacks that changed; the others' series lag until growth_settle. After
 * settling, every series has the value its stack held at each snapshot kept, through a thinning
 * of the table (a series last written at an odd snapshot, which thinning drops) and a free. */
START_TEST(growth_series_lag_and_settle)
{
    struct liveset live;
    struct growth g;
    liveset_init(&live);
    growth_init(&g, 1);
    enum { A = 0xa, B = 0xb, C = 0xc, SNAPS = 300 };
    uint64_t a_bytes = 0, addr = 0x10000;
    for (uint64_t t = 1; t <= SNAPS; t++) {
        /* A grows by 100 every 3rd snapshot; B takes 50 at snapshot 6 (index 5: odd) and keeps it; C
         * takes 70 at snapshot 2 and frees it at snapshot 200. */
        if (t % 3 == 0) {
            ck_assert_int_eq(liveset_alloc(&live, addr++, 100, A, t), 0);
            a_bytes += 100;
        }
        if (t == 6)
            ck_assert_int_eq(liveset_alloc(&live, 0x500, 50, B, t), 0);
        if (t == 2)
            ck_assert_int_eq(liveset_alloc(&live, 0x700, 70, C, t), 0);
        if (t == 200)
            ck_assert_int_eq(liveset_free_block(&live, 0x700, t), 1);
        growth_snapshot(&g, &live, t);
    }
    growth_settle(&g);
    ck_assert_uint_lt(g.n, SNAPS); /* thinned at least once */
    const struct growth_series *sa = series_of(&g, A), *sb = series_of(&g, B), *sc = series_of(&g, C);
    ck_assert_ptr_nonnull(sa);
    ck_assert_ptr_nonnull(sb);
    ck_assert_ptr_nonnull(sc);
    const struct growth_series *all[3] = {sa, sb, sc};
    /* C holds nothing at the end: growth_settle leaves it lagging (no report reads it), and
     * what it has is right up to there. */
    ck_assert_uint_lt(sc->first + sc->n, g.n);
    ck_assert_uint_eq(sc->bytes[sc->n - 1], 0);
    for (int k = 0; k < 3; k++) {
        const struct growth_series *s = all[k];
        if (s != sc)
            ck_assert_uint_eq(s->first + s->n, g.n);
        for (uint32_t j = 0; j < s->n; j++) {
            uint64_t t = g.times[s->first + j], want;
            if (s == sa)
                want = t / 3 * 100;
            else if (s == sb)
                want = t >= 6 ? 50 : 0;
            else
                want = t >= 2 && t < 200 ? 70 : 0;
            ck_assert_msg(s->bytes[j] == want, "series %d at t=%llu: %llu bytes, want %llu", k,
                          (unsigned long long)t, (unsigned long long)s->bytes[j], (unsigned long long)want);
        }
    }
    ck_assert_uint_eq(sa->bytes[sa->n - 1], a_bytes);
    growth_free(&g);
    liveset_free(&live);
}
END_TEST

Suite *rules_suite(void)
{
    Suite *s = suite_create("rules");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hist_buckets_and_their_bounds);
    tcase_add_test(tc, quantiles_from_the_histogram);
    tcase_add_test(tc, growth_rule);
    tcase_add_test(tc, growth_series_lag_and_settle);
    suite_add_tcase(s, tc);
    return s;
}
