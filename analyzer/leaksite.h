/* Where a leak "is" for a person reading a review: the innermost frame in the program's own
 * source (not the cgo glue, the shim, the Go standard library or a system library). Shared by
 * the SARIF export and `cgoscope diff`. */
#ifndef CGOSCOPE_LEAKSITE_H
#define CGOSCOPE_LEAKSITE_H

#include <stddef.h>

#include "report.h"

/* Index of the frame a leak is reported at, or -1 when no frame has a source line in the
 * program's own code (a binary without debug info). */
long leaksite_location(const struct report_frame *frames, size_t n);
/* Frames that come and go with how a program was built or traced (the cgo stubs and runtime
 * call machinery, cgoscope's own shim): they are no part of a site's identity. */
int leaksite_frame_is_noise(const struct report_frame *f);
/* The file's last path element. */
const char *leaksite_basename(const char *path);

#endif
