#include <stdlib.h>

#include "analysis/process.h"
#include "recbuf.h"
#include "suites.h"

START_TEST(stream_builds_state)
{
    static struct recbuf b;
    b.len = 0;
    uint64_t pcs[] = {0x401000, 0x402000, 0x403000};
    rb_proc(&b, 77, "/bin/prog");
    rb_module(&b, "/bin/prog", 0, 0x400000, 0x500000, 1);
    rb_site(&b, 0, "main._cgo_0123456789ab_Cfunc_leaky");
    rb_stack(&b, 0xabc, 0, 1, pcs, 3);
    rb_alloc(&b, 0x1000, 100, 0xabc, 1);
    rb_alloc(&b, 0x2000, 50, 0xabc, 2);
    rb_realloc(&b, 0x2000, 0x3000, 70, 0xabc, 3, 4);
    rb_free(&b, 0x1000, 5);

    struct process p;
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), 0);
    ck_assert_int_eq(p.attached, 1);
    ck_assert_uint_eq(p.pid, 77);
    ck_assert_str_eq(p.exe, "/bin/prog");
    ck_assert_uint_eq(p.nmodules, 1);
    ck_assert_int_eq(p.modules[0].is_exe, 1);
    const struct site_info *s = process_site(&p, 0);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->package, "main");
    ck_assert_str_eq(s->function, "leaky");
    const struct stack_info *st = process_stack(&p, 0xabc);
    ck_assert_ptr_nonnull(st);
    ck_assert_uint_eq(st->n, 3);
    ck_assert_uint_eq(st->nc, 1);
    ck_assert_uint_eq(st->pcs[2], 0x403000);
    ck_assert_uint_eq(p.allocations, 3);
    ck_assert_uint_eq(p.frees, 2);
    ck_assert_uint_eq(p.live.live_count, 1);
    ck_assert_uint_eq(p.live.live_bytes, 70);
    ck_assert_uint_eq(p.corrupt_records, 0);
    process_free(&p);
}
END_TEST

/* A realloc announced by REALLOC_BEGIN: the REALLOC (or FREE) that follows on the thread ends it
 * and alone changes the live set; one left open when the process ends (it died in glibc's
 * realloc) is an error when its address was no block. */
START_TEST(realloc_begin_records)
{
    static struct recbuf b;
    b.len = 0;
    rb_proc(&b, 77, "/bin/prog");
    rb_alloc(&b, 0x1000, 100, 0xabc, 1);
    rb_realloc_begin(&b, 0x1000, 0xdef, 2);
    rb_realloc(&b, 0x1000, 0x2000, 200, 0xdef, 2, 3); /* moved */
    rb_alloc(&b, 0x3000, 10, 0xabc, 4);
    rb_realloc_begin(&b, 0x3000, 0xdef, 5);
    rb_realloc_fail(&b, 0x3000); /* out of memory: 0x3000 stays */
    rb_realloc_begin(&b, 0x1000, 0xdef, 6); /* the old address again: the process dies in it */

    struct process p;
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), 0);
    ck_assert_uint_eq(p.corrupt_records, 0);
    ck_assert_uint_eq(p.allocations, 3);
    ck_assert_uint_eq(p.frees, 1);
    ck_assert_uint_eq(p.life.nopen, 1);
    ck_assert_uint_eq(p.life.nchecks, 1);
    process_finish(&p);
    ck_assert_uint_eq(p.live.live_count, 2);
    ck_assert_uint_eq(p.live.live_bytes, 210);
    ck_assert_uint_eq(p.life.nerrors, 1);
    ck_assert_int_eq(p.life.errors[0].kind, LT_DOUBLE_FREE);
    ck_assert_int_eq(p.life.errors[0].realloc, 1);
    ck_assert_uint_eq(p.life.errors[0].addr, 0x1000);
    ck_assert_uint_eq(p.life.errors[0].size, 100);
    ck_assert_uint_eq(p.life.errors[0].alloc_stack, 0xabc);
    ck_assert_uint_eq(p.life.errors[0].first_free_stack, 0xdef);
    process_free(&p);
}
END_TEST

START_TEST(package_path_with_dots_and_slashes)
{
    static struct recbuf b;
    b.len = 0;
    rb_site(&b, 3, "github.com/x/y.v2/sub._cgo_0123456789ab_C2func_getaddrinfo");
    struct process p;
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), 0);
    const struct site_info *s = process_site(&p, 3);
    ck_assert_str_eq(s->package, "github.com/x/y.v2/sub");
    ck_assert_str_eq(s->function, "getaddrinfo");
    process_free(&p);
}
END_TEST

/* Unknown record types from a newer shim are skipped by their size. */
START_TEST(unknown_type_is_skipped)
{
    static struct recbuf b;
    b.len = 0;
    rb_take(&b, 999, 0, 40);
    rb_alloc(&b, 0x1000, 8, 1, 1);
    struct process p;
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), 0);
    ck_assert_uint_eq(p.live.live_count, 1);
    process_free(&p);
}
END_TEST

START_TEST(corrupt_records_are_refused)
{
    static struct recbuf b;
    struct process p;

    /* A size that runs past the end. */
    b.len = 0;
    rb_alloc(&b, 0x1000, 8, 1, 1);
    ((struct cgs_rec_hdr *)b.data)->size = 4096;
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), -1);
    ck_assert_uint_eq(p.corrupt_records, 1);
    ck_assert_uint_eq(p.live.live_count, 0);
    process_free(&p);

    /* A size that is not a multiple of 8, and a size of 0 (which would loop forever). */
    for (uint32_t bad = 0; bad < 2; bad++) {
        b.len = 0;
        rb_alloc(&b, 0x1000, 8, 1, 1);
        ((struct cgs_rec_hdr *)b.data)->size = bad ? 12 : 0;
        process_init(&p);
        ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), -1);
        ck_assert_uint_eq(p.corrupt_records, 1);
        process_free(&p);
    }

    /* A stack claiming more frames than it holds. */
    b.len = 0;
    uint64_t pcs[2] = {1, 2};
    rb_stack(&b, 5, CGS_NO_SITE, 0, pcs, 2);
    ((struct cgs_rec_stack *)b.data)->nframes = 100;
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), -1);
    ck_assert_ptr_null(process_stack(&p, 5));
    process_free(&p);

    /* Strings without their terminating NUL. */
    b.len = 0;
    rb_proc(&b, 1, "/bin/x");
    memset(b.data + sizeof(struct cgs_rec_proc), 'A', b.len - sizeof(struct cgs_rec_proc));
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len), -1);
    ck_assert_ptr_null(p.exe);
    process_free(&p);

    /* A run that stops in the middle of a header. */
    b.len = 0;
    rb_alloc(&b, 0x1000, 8, 1, 1);
    process_init(&p);
    ck_assert_int_eq(process_feed(&p, 1, b.data, b.len + 4), -1);
    ck_assert_uint_eq(p.live.live_count, 1); /* what came before is kept */
    process_free(&p);
}
END_TEST

/* Random bytes never crash the reader. */
START_TEST(random_bytes)
{
    static struct recbuf b;
    srand(12345);
    for (int round = 0; round < 2000; round++) {
        b.len = (size_t)(rand() % 512);
        for (size_t i = 0; i < b.len; i++)
            b.data[i] = (uint8_t)rand();
        if (b.len >= 8 && round % 2) { /* plausible headers reach the type-specific checks */
            struct cgs_rec_hdr *h = (struct cgs_rec_hdr *)b.data;
            h->type = (uint16_t)(1 + rand() % CGS_REC_TYPE_MAX);
            h->size = (uint32_t)(b.len & ~(size_t)7);
        }
        struct process p;
        process_init(&p);
        process_feed(&p, 1, b.data, b.len);
        process_free(&p);
    }
}
END_TEST

Suite *records_suite(void)
{
    Suite *s = suite_create("records");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, stream_builds_state);
    tcase_add_test(tc, realloc_begin_records);
    tcase_add_test(tc, package_path_with_dots_and_slashes);
    tcase_add_test(tc, unknown_type_is_skipped);
    tcase_add_test(tc, corrupt_records_are_refused);
    tcase_add_test(tc, random_bytes);
    suite_add_tcase(s, tc);
    return s;
}
