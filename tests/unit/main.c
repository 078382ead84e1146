#include <stdlib.h>

#include "suites.h"

int main(void)
{
    SRunner *sr = srunner_create(u64map_suite());
    srunner_add_suite(sr, liveset_suite());
    srunner_add_suite(sr, records_suite());
    srunner_add_suite(sr, symbolize_suite());
    srunner_add_suite(sr, gobuild_suite());
    srunner_add_suite(sr, report_suite());
    srunner_add_suite(sr, trace_suite());
    srunner_add_suite(sr, gate_suite());
    srunner_add_suite(sr, robust_suite());
    srunner_add_suite(sr, reach_suite());
    srunner_add_suite(sr, reorder_suite());
    srunner_add_suite(sr, lifetime_suite());
    srunner_add_suite(sr, rules_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
