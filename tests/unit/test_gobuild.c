#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gobin/gobuild.h"
#include "gobin/golayout.h"
#include "suites.h"

START_TEST(user_packages_with_build_info)
{
    char *mods[] = {"example.com/app", "github.com/mattn/go-sqlite3"};
    struct gobuild b = {.modules = mods, .nmodules = 2};
    ck_assert_int_eq(gobuild_is_user_package(&b, "main"), 1);
    ck_assert_int_eq(gobuild_is_user_package(&b, "main.leakGrab"), 1);
    ck_assert_int_eq(gobuild_is_user_package(&b, "example.com/app/internal/db"), 1);
    ck_assert_int_eq(gobuild_is_user_package(&b, "example.com/app.Run"), 1);
    ck_assert_int_eq(gobuild_is_user_package(&b, "github.com/mattn/go-sqlite3.(*SQLiteConn).exec"), 1);
    ck_assert_int_eq(gobuild_is_user_package(&b, "example.com/application"), 0);
    ck_assert_int_eq(gobuild_is_user_package(&b, "net"), 0);
    ck_assert_int_eq(gobuild_is_user_package(&b, "runtime.cgocall"), 0);
    ck_assert_int_eq(gobuild_is_user_package(&b, "os/user"), 0);
    ck_assert_int_eq(gobuild_is_user_package(&b, "mainly"), 0);
}
END_TEST

START_TEST(user_packages_without_build_info)
{
    ck_assert_int_eq(gobuild_is_user_package(NULL, "main.f"), 1);
    ck_assert_int_eq(gobuild_is_user_package(NULL, "github.com/x/y.F"), 1);
    ck_assert_int_eq(gobuild_is_user_package(NULL, "net.cgoLookupHost"), 0);
    ck_assert_int_eq(gobuild_is_user_package(NULL, "os/user.lookupUser"), 0);
}
END_TEST

/* Reads a real Go binary's build info: the integration build passes the test programs. */
START_TEST(reads_go_binary)
{
    const char *dir = getenv("CGOSCOPE_TESTPROGS");
    if (!dir)
        return; /* built without the Go test programs */
    char path[4096];
    snprintf(path, sizeof path, "%s/leaky", dir);
    struct gobuild b;
    ck_assert_int_eq(gobuild_read(path, &b), 0);
    ck_assert_int_eq(strncmp(b.go_version, "go1.", 4), 0);
    ck_assert_str_eq(b.main_path, "cgoscope.test/testprogs/leaky");
    ck_assert_uint_ge(b.nmodules, 1);
    ck_assert_str_eq(b.modules[0], "cgoscope.test/testprogs");
    ck_assert_int_eq(gobuild_is_user_package(&b, "cgoscope.test/testprogs/internal/truth.Leak"), 1);
    /* The table of runtime field offsets has this release, and its row is what the DWARF says. */
    struct go_layout table, dwarf;
    ck_assert_int_eq(go_layout_of_release(b.go_version, &table), 0);
    ck_assert_int_eq(go_layout_read(path, &dwarf), 0);
    ck_assert_uint_eq(table.g_m, dwarf.g_m);
    ck_assert_uint_eq(table.m_ncgocall, dwarf.m_ncgocall);
    ck_assert_uint_eq(table.m_procid, dwarf.m_procid);
    gobuild_free(&b);
}
END_TEST

START_TEST(layout_table_versions)
{
    struct go_layout l;
    ck_assert_int_eq(go_layout_of_release("go1.21.13", &l), 0);
    ck_assert_uint_eq(l.m_ncgocall, 304);
    ck_assert_int_eq(go_layout_of_release("go1.26rc1", &l), 0);
    ck_assert_uint_eq(l.m_procid, 64);
    ck_assert_int_eq(go_layout_of_release("go1.26.8 X:nocoverageredesign", &l), -1);
    ck_assert_int_eq(go_layout_of_release("go1.20.14", &l), -1);
    ck_assert_int_eq(go_layout_of_release("go1.27", &l), -1);
    ck_assert_int_eq(go_layout_of_release("devel go1.27-abcdef", &l), -1);
    ck_assert_int_eq(go_layout_of_release(NULL, &l), -1);
}
END_TEST

START_TEST(not_a_go_binary)
{
    struct gobuild b;
    ck_assert_int_eq(gobuild_read("/proc/self/exe", &b), -1);
    ck_assert_int_eq(gobuild_read("/nonexistent", &b), -1);
}
END_TEST

Suite *gobuild_suite(void)
{
    Suite *s = suite_create("gobuild");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, user_packages_with_build_info);
    tcase_add_test(tc, user_packages_without_build_info);
    tcase_add_test(tc, reads_go_binary);
    tcase_add_test(tc, not_a_go_binary);
    tcase_add_test(tc, layout_table_versions);
    suite_add_tcase(s, tc);
    return s;
}
