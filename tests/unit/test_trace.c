#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recbuf.h"
#include "suites.h"
#include "ingest/trace.h"

static char dir[] = "/tmp/cgoscope-unit-XXXXXX";

static void make_dir(void)
{
    if (dir[sizeof dir - 2] == 'X')
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void write_sample(const char *path)
{
    static struct recbuf b;
    b.len = 0;
    rb_proc(&b, 5, "/bin/prog");
    rb_alloc(&b, 0x1000, 10, 1, 1);
    rb_alloc(&b, 0x2000, 20, 1, 2);
    rb_free(&b, 0x1000, 3);
    struct process p;
    process_init(&p);
    p.argc = 2;
    p.argv = calloc(3, sizeof *p.argv);
    p.argv[0] = strdup("prog");
    p.argv[1] = strdup("-x");
    p.exit_kind = EXIT_SIGNAL;
    p.exit_value = 9;
    p.pid = 5;
    struct trace_writer w;
    ck_assert_int_eq(trace_writer_open(&w, path), 0);
    trace_write_block(&w, TRACE_RECORDS, 5, 42, b.data, b.len);
    trace_write_end(&w, &p);
    char err[256];
    ck_assert_int_eq(trace_writer_close(&w, err, sizeof err), 0);
    process_free(&p);
}

START_TEST(round_trip)
{
    make_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/a.cgs", dir);
    write_sample(path);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    struct procset ps;
    procset_init(&ps);
    char err[256] = "";
    ck_assert_int_eq(trace_read(path, &ps, err, sizeof err), 0);
    ck_assert_uint_eq(ps.n, 1);
    struct process *p = ps.v[0];
    ck_assert_uint_eq(p->pid, 5);
    ck_assert_uint_eq(p->live.live_count, 1);
    ck_assert_uint_eq(p->live.live_bytes, 20);
    ck_assert_int_eq(p->argc, 2);
    ck_assert_str_eq(p->argv[1], "-x");
    ck_assert_int_eq(p->exit_kind, EXIT_SIGNAL);
    ck_assert_int_eq(p->exit_value, 9);
    procset_free(&ps);
}
END_TEST

/* Every prefix of a trace reads without crashing; a cut one says so and keeps what it had. */
START_TEST(truncated_and_flipped)
{
    make_dir();
    char path[256], cut[256];
    snprintf(path, sizeof path, "%s/b.cgs", dir);
    snprintf(cut, sizeof cut, "%s/b-cut.cgs", dir);
    write_sample(path);
    FILE *f = fopen(path, "rb");
    static uint8_t data[4096];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    for (size_t len = 0; len < n; len++) {
        f = fopen(cut, "wb");
        fwrite(data, 1, len, f);
        fclose(f);
        struct procset ps;
        procset_init(&ps);
        char err[256] = "";
        int rc = trace_read(cut, &ps, err, sizeof err);
        ck_assert_int_ne(rc, 0);
        ck_assert_str_ne(err, "");
        procset_free(&ps);
    }
    for (size_t bit = 0; bit < n * 8; bit += 3) {
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        f = fopen(cut, "wb");
        fwrite(data, 1, n, f);
        fclose(f);
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        struct procset ps;
        procset_init(&ps);
        char err[256] = "";
        trace_read(cut, &ps, err, sizeof err);
        procset_free(&ps);
    }
}
END_TEST

START_TEST(not_a_trace_or_future_version)
{
    make_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/c.cgs", dir);
    FILE *f = fopen(path, "wb");
    fputs("hello, this is not a trace", f);
    fclose(f);
    struct procset ps;
    procset_init(&ps);
    char err[256] = "";
    ck_assert_int_eq(trace_read(path, &ps, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a cgoscope trace"));
    procset_free(&ps);

    f = fopen(path, "wb");
    uint32_t v[2] = {TRACE_VERSION + 1, 16};
    fwrite("CGSTRACE", 1, 8, f);
    fwrite(v, sizeof v, 1, f);
    fclose(f);
    procset_init(&ps);
    err[0] = 0;
    ck_assert_int_eq(trace_read(path, &ps, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "format"));
    procset_free(&ps);
}
END_TEST

Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, truncated_and_flipped);
    tcase_add_test(tc, not_a_trace_or_future_version);
    suite_add_tcase(s, tc);
    return s;
}
