#ifndef CGOSCOPE_TEST_SUITES_H
#define CGOSCOPE_TEST_SUITES_H

#include <check.h>

Suite *u64map_suite(void);
Suite *liveset_suite(void);
Suite *records_suite(void);
Suite *symbolize_suite(void);
Suite *gobuild_suite(void);
Suite *report_suite(void);
Suite *trace_suite(void);
Suite *gate_suite(void);
Suite *robust_suite(void);
Suite *reorder_suite(void);
Suite *reach_suite(void);
Suite *lifetime_suite(void);
Suite *rules_suite(void);

#endif
