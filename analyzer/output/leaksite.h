/* Where a leak "is" for a person reading a review: the innermost frame in the program's own
 * source (not the cgo glue, the shim, the Go standard library or a system library). Shared by
 * the SARIF export and `cgoscope diff`. */
#ifndef CGOSCOPE_LEAKSITE_H
#define CGOSCOPE_LEAKSITE_H

#include <stddef.h>

#include "output/report.h"

/* Index of the frame a leak is reported at, or -1 when no frame has a source line in the
 * program's own code (a binary without debug info). */
long leaksite_location(const struct report_frame *frames, size_t n);
/* Frames that come and go with how a program was built or traced (the cgo stubs and runtime
 * call machinery, cgoscope's own shim): they are no part of a site's identity. */
int leaksite_frame_is_noise(const struct report_frame *f);
/* A frame of the code cgo writes for each package (_cgo_export.c, cgo-gcc-prolog, ...): its
 * lines move whenever the package's C preamble changes. */
int leaksite_frame_is_cgo_generated(const struct report_frame *f);
/* The name with cgo's per-build hash taken out: cgo names its C stubs _cgo_<12 hex digits>_...
 * after a hash of the package's files, so "_cgo_317c6cfcf4f2_Cfunc_f" becomes "_cgo_Cfunc_f"
 * and survives any edit. Returns name itself or buf. */
const char *leaksite_stable_name(const char *name, char *buf, size_t len);
/* Index of the Go line of the cgo call that made an allocation: the innermost Go frame of the
 * program's own code (not the standard library, the runtime or the cgo glue), or -1 when the
 * stack has none. */
long leaksite_go_line(const struct report_frame *frames, size_t n);
/* The name of a stack's innermost frame, as a reader knows it: cgo's stub for C.malloc is
 * "C.malloc"; "0x..." when unnamed. */
void leaksite_c_name(const struct report_frame *frames, size_t n, char *buf, size_t len);
/* "C function \u2190 Go function (file:line)": the innermost frame and the Go line of the cgo
 * call (leaksite_go_line); the innermost frame alone, with its file and line, when there is no
 * Go line. What the growth table, the live table, the plot and `cgoscope diff` call a site. */
void leaksite_label(const struct report_frame *frames, size_t n, char *buf, size_t len);
/* A Go function's name without its package's path: "github.com/a/b.(*T).M" -> "b.(*T).M". */
const char *leaksite_short_go(const char *function);
#define LEAKSITE_ARROW "\xe2\x86\x90" /* U+2190, in UTF-8 */

/* The file's last path element. */
const char *leaksite_basename(const char *path);

#endif
