#include "ingest/images.h"

#include <stdlib.h>
#include <string.h>

#include "cgoscope/record.h"

/* The entry of a new program image in the pid of old, after old's. */
static struct process *next_image(struct procset *ps, struct process *old)
{
    if (old->exit_kind == EXIT_UNKNOWN)
        old->exit_kind = EXIT_EXEC;
    return procset_add(ps, old->pid);
}

int procset_feed(struct procset *ps, uint32_t pid, uint32_t tid, const uint8_t *data, size_t len)
{
    struct process *p = procset_get(ps, pid, NULL);
    if (!p)
        return -1;
    size_t off = 0, start = 0;
    int has_proc = p->attached; /* p has its PROC, fed or in the run before off */
    while (len - off >= sizeof(struct cgs_rec_hdr)) {
        struct cgs_rec_hdr h;
        memcpy(&h, data + off, sizeof h);
        if (h.size < sizeof h || (h.size & 7) || h.size > len - off)
            break; /* process_feed says what is wrong with it */
        if (h.type == CGS_REC_PROC && has_proc) {
            if (off > start)
                process_feed(p, tid, data + start, off - start);
            p = next_image(ps, p);
            if (!p)
                return -1;
            start = off;
        }
        has_proc |= h.type == CGS_REC_PROC;
        off += h.size;
    }
    return process_feed(p, tid, data + start, len - start);
}
