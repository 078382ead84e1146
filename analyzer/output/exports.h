/* The report in the formats other tools read: pprof (go tool pprof), SARIF (code review and
 * code scanning), folded stacks (flame graphs). Each is fully symbolized: reading it needs no
 * binary. Each returns 0, or -1 after telling the user on stderr what went wrong. */
#ifndef CGOSCOPE_EXPORTS_H
#define CGOSCOPE_EXPORTS_H

#include <stddef.h>
#include <stdio.h>

#include "output/report.h"

/* Gzipped profile.proto: leaked_objects/leaked_bytes per leak stack, cgo_calls/c_time per cgo
 * call site and caller. */
int export_pprof(const char *path, const struct report *reports, size_t n);
/* SARIF 2.1.0: one result per user leak site. Files under source_root (may be NULL) are given
 * relative to %SRCROOT%, others as absolute file: URIs. */
int export_sarif(const char *path, const struct report *reports, size_t n, const char *source_root);
/* One line per stack, outermost frame first: "f1;f2;f3 BYTES". User leaks no suppression
 * matched; all leaks with all_leaks. Glue frames are left out unless full_stacks. */
int export_folded(const char *path, const struct report *reports, size_t n, int all_leaks, int full_stacks);

/* Creating and finishing an export file (mode 0600, like the JSON report); what names the
 * format in messages ("SARIF report"). */
FILE *export_create(const char *path, const char *what);
int export_finish(FILE *f, const char *path, const char *what);

#endif
