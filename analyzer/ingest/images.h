/* One pid, several programs: exec replaces the program a process runs, and a pid can be used
 * again by another process. Each program image gets an entry of its own in the procset. */
#ifndef CGOSCOPE_IMAGES_H
#define CGOSCOPE_IMAGES_H

#include <stddef.h>
#include <stdint.h>

#include "analysis/process.h"

/* Feeds a run of records that process pid wrote to its entry in ps. A PROC record for a pid
 * whose entry already has one starts a new program image: from there on the records go to a
 * new entry, and the previous one ends with EXIT_EXEC. Returns process_feed's result (-1 also
 * when memory runs out). */
int procset_feed(struct procset *ps, uint32_t pid, uint32_t tid, const uint8_t *data, size_t len);

#endif
