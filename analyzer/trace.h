/*
 * The saved trace (`run -o FILE`): the records exactly as the shim wrote them, in the order
 * the analyzer read them, plus what only the launcher knows (argv, how the program ended).
 *
 *   header: "CGSTRACE" u32 version u32 header_size
 *   blocks: u32 kind, u32 tid, u64 length, then length bytes padded to 8
 */
#ifndef CGOSCOPE_TRACE_H
#define CGOSCOPE_TRACE_H

#include <stdint.h>
#include <stdio.h>

#include "process.h"

#define TRACE_VERSION 1u

enum trace_block { TRACE_RECORDS = 1, TRACE_ARGV = 2, TRACE_END = 3, TRACE_STATS = 4 };

struct trace_writer {
    FILE *f;
    char *path;
    int failed; /* a write failed; errno_saved says why */
    int errno_saved;
};

int trace_writer_open(struct trace_writer *w, const char *path);
void trace_write_block(struct trace_writer *w, uint32_t kind, uint32_t tid, const void *data, uint64_t len);
void trace_write_end(struct trace_writer *w, const struct process *p);
/* Closes the file; returns 0, or -1 when anything failed (message in err). */
int trace_writer_close(struct trace_writer *w, char *err, size_t errlen);

/* Reads a whole trace into p. Returns 0 when the trace was complete, 1 when it ends early
 * (p holds what was there), -1 when it is not a trace at all. err says what is wrong. */
int trace_read(const char *path, struct process *p, char *err, size_t errlen);

#endif
