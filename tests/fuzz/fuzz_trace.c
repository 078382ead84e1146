/*
 * libFuzzer entry for the trace reader: both kinds of trace (the launcher's `run -o` file and
 * the shim's own file), and through them every record parser of the analyzer (process.c,
 * liveset.c, the statistics chunks). The report is not built: it would open the files the
 * records name. Built with -DCGOSCOPE_FUZZ=ON by clang; scripts/test.sh runs it for a bounded
 * time on seeds from tests/fuzz/make_seeds.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The reader wants its input 8-byte aligned, as a mapped file is. */
    uint64_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    struct procset ps;
    procset_init(&ps);
    char err[512] = "";
    trace_read_mem((const uint8_t *)copy, size, "input", &ps, err, sizeof err);
    procset_free(&ps);
    free(copy);
    return 0;
}
