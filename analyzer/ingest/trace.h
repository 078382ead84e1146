/*
 * Traces on disk. Two kinds, told apart by their first bytes:
 *
 *  - the launcher's trace (`run -o FILE`): the records exactly as the analyzer read them, in
 *    the order it read them, plus what only the launcher knows (argv, how the program ended):
 *      header: "CGSTRACE" u32 version u32 header_size
 *      then one zstd stream of blocks:
 *        u32 kind, u32 tid, u32 pid, u32 reserved, u64 length, then length bytes padded to 8
 *  - the shim's own trace file (`cgoscope env -o FILE`): the channel itself, laid out in a file
 *    (include/cgoscope/record.h): header, chunk descriptors, chunks.
 */
#ifndef CGOSCOPE_TRACE_H
#define CGOSCOPE_TRACE_H

#include <stdint.h>
#include <stdio.h>

#include "analysis/process.h"

/* 5: FREE records carry a stack (record format 2); 4: CUT blocks; 3 (no cuts, events applied
 * as read). 3 and 4 are still read: their FREE records are shorter (stack 0). */
#define TRACE_VERSION 5u

enum trace_block { TRACE_RECORDS = 1, TRACE_ARGV = 2, TRACE_END = 3, TRACE_STATS = 4, TRACE_RATE = 5, TRACE_CUT = 6,
                  TRACE_REACH = 7 /* the reachability scan's result (reach.h), before END */ };

struct trace_writer {
    FILE *f;
    struct ZSTD_CCtx_s *zc;
    void *zbuf;
    size_t zcap;
    char *path;
    int failed; /* a write failed; errno_saved says why */
    int errno_saved;
};

int trace_writer_open(struct trace_writer *w, const char *path);
void trace_write_block(struct trace_writer *w, uint32_t kind, uint32_t pid, uint32_t tid, const void *data,
                       uint64_t len);
/* Pushes what is buffered to the file (the rest of a stopped run stays readable). */
void trace_flush(struct trace_writer *w);
/* argv and how the process ended. */
void trace_write_end(struct trace_writer *w, const struct process *p);
/* Closes the file; returns 0, or -1 when anything failed (message in err). */
int trace_writer_close(struct trace_writer *w, char *err, size_t errlen);

/* Reads a whole trace of either kind into ps. Returns 0 when the trace was complete, 1 when it
 * ends early or lost records (ps holds what was there, err says what), -1 when it is not a
 * trace at all. err must start empty. */
int trace_read(const char *path, struct procset *ps, char *err, size_t errlen);
/* The same from memory: data (8-byte aligned) holds a whole trace of either kind; name is what
 * the messages call it. trace_read maps the file and calls this; so does the fuzz target. */
int trace_read_mem(const uint8_t *data, size_t size, const char *name, struct procset *ps, char *err, size_t errlen);

#endif
