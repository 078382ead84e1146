/* cgoscope: finds the C memory a Go program leaks, and names the Go line behind it. */
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "util/version.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: cgoscope COMMAND [options] ...\n"
                 "\n"
                 "Finds the C allocations a Go program (built with cgo) never frees, with the Go\n"
                 "function and line behind each, without rebuilding the program.\n"
                 "\n"
                 "Commands:\n"
                 "  run [options] -- PROGRAM [ARGS...]   run PROGRAM under cgoscope and report its leaks\n"
                 "  test [options] [go test args...]     go test with every test binary traced: one report\n"
                 "  report [options] TRACE               report from a trace saved with `run -o TRACE`\n"
                 "  env [-o TRACE]                       shell exports that trace without the launcher\n"
                 "  inspect [--json FILE|-] PROGRAM      what cgoscope can do with PROGRAM, before running it\n"
                 "  diff [options] BASE HEAD             compare two runs' leaks and cgo calls (docs/ci.md)\n"
                 "\n"
                 "  cgoscope COMMAND --help   options of a command\n"
                 "  cgoscope --version        version\n"
                 "\n"
                 "Example:\n"
                 "  cgoscope run --json leaks.json -- ./myprog -flag\n"
                 "  cgoscope test --fail-on-leak ./...\n"
                 "  go test -exec 'cgoscope run --' ./...\n"
                 "  go test -ldflags='-s=false -w=false' -exec 'cgoscope run --fail-on-leak --' ./...\n");
}

/* The shim checks for this symbol and stays out of cgoscope itself. */
__attribute__((visibility("default"), used)) const int cgoscope_analyzer_marker = 1;

/* jemalloc's options, read at its start (MALLOC_CONF still overrides them). The analyzer's memory
 * is a few large, busy heaps (live set, stacks, reports); in this guest every 4 KiB page fault is
 * dear (~1 us, a hypervisor exit), and faults were ~18% of the analyzer's CPU on the go-sqlite3
 * suite: transparent huge pages for jemalloc's extents and metadata (THP is "madvise" on Debian,
 * so only asked-for mappings get them). */
const char *malloc_conf = "thp:always,metadata_thp:always";

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "test") == 0)
        return cmd_test(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(cmd, "env") == 0)
        return cmd_env(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "diff") == 0)
        return cmd_diff(argc - 1, argv + 1);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("cgoscope %s\n", CGOSCOPE_VERSION);
        return 0;
    }
    fprintf(stderr, "cgoscope: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
