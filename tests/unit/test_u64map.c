#include <stdint.h>

#include "suites.h"
#include "util/u64map.h"

START_TEST(put_get_delete)
{
    struct u64map m;
    u64map_init(&m);
    ck_assert_ptr_null(u64map_get(&m, 42));
    int added;
    *u64map_put(&m, 42, &added) = 7;
    ck_assert_int_eq(added, 1);
    *u64map_put(&m, 42, &added) += 1;
    ck_assert_int_eq(added, 0);
    ck_assert_uint_eq(*u64map_get(&m, 42), 8);
    ck_assert_int_eq(u64map_del(&m, 42), 1);
    ck_assert_int_eq(u64map_del(&m, 42), 0);
    ck_assert_ptr_null(u64map_get(&m, 42));
    ck_assert_ptr_null(u64map_put(&m, 0, &added)); /* 0 is the empty marker, never a key */
    u64map_free(&m);
}
END_TEST

/* Many keys that share low bits collide; deleting from the middle of probe runs must keep
 * every other key reachable. */
START_TEST(delete_keeps_probe_runs)
{
    struct u64map m;
    u64map_init(&m);
    const uint64_t n = 20000;
    for (uint64_t i = 1; i <= n; i++)
        *u64map_put(&m, i << 16, NULL) = i;
    for (uint64_t i = 1; i <= n; i += 3)
        ck_assert_int_eq(u64map_del(&m, i << 16), 1);
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t *v = u64map_get(&m, i << 16);
        if ((i - 1) % 3 == 0) {
            ck_assert_ptr_null(v);
        } else {
            ck_assert_ptr_nonnull(v);
            ck_assert_uint_eq(*v, i);
        }
    }
    ck_assert_uint_eq(m.len, n - (n + 2) / 3);
    u64map_free(&m);
}
END_TEST

Suite *u64map_suite(void)
{
    Suite *s = suite_create("u64map");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, put_get_delete);
    tcase_add_test(tc, delete_keeps_probe_runs);
    suite_add_tcase(s, tc);
    return s;
}
