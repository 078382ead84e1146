/*
 * vgexec: starts a valgrind tool on a program that runs under `cgoscope run`, for bench/profile.sh.
 *
 * Why it exists: up to commit e73bed1, `cgoscope run -- valgrind ... PROG` traced nothing, because
 * valgrind's launcher is an ordinary dynamic executable: the preloaded shim started in the
 * launcher, claimed the channel and closed its descriptor, and the program that valgrind then ran
 * found no channel (d4a384d changed that). With this helper the profile works on any commit.
 * The tool binary itself (e.g. callgrind-amd64-linux) is static, so LD_PRELOAD does not load into it, and
 * it passes LD_PRELOAD on to the program it runs. So this program, built static, starts the tool
 * directly, the way the launcher does (argv[0] and VALGRIND_LAUNCHER name the launcher).
 * cgoscope refuses to run a static binary, so vgexec is used as the interpreter of a two-line
 * script (`#!/path/to/vgexec`), which cgoscope runs without complaint.
 *
 *     vgexec SCRIPT PROGRAM [ARGS...]      (the kernel passes SCRIPT when it runs the script)
 *
 * BENCH_VG_ARGS holds the valgrind options, separated by spaces; it must include --tool=NAME.
 * VALGRIND_LIB, if set, is where the tool binaries are.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: vgexec SCRIPT PROGRAM [ARGS...] (BENCH_VG_ARGS=\"--tool=NAME ...\")\n");
        return 2;
    }
    const char *opts = getenv("BENCH_VG_ARGS");
    if (!opts || !*opts) {
        fprintf(stderr, "vgexec: BENCH_VG_ARGS is not set\n");
        return 2;
    }
    char *copy = strdup(opts);
    char **nargv = calloc((size_t)argc + strlen(opts) + 2, sizeof *nargv);
    if (!copy || !nargv)
        return 125;

    const char *launcher = access("/usr/bin/valgrind.bin", X_OK) == 0 ? "/usr/bin/valgrind.bin" : "/usr/bin/valgrind";
    size_t n = 0;
    nargv[n++] = (char *)launcher;
    const char *tool = NULL;
    for (char *save = NULL, *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (strncmp(tok, "--tool=", 7) == 0)
            tool = tok + 7;
        nargv[n++] = tok;
    }
    if (!tool) {
        fprintf(stderr, "vgexec: BENCH_VG_ARGS has no --tool=NAME\n");
        return 2;
    }
    for (int i = 2; i < argc; i++)
        nargv[n++] = argv[i];
    nargv[n] = NULL;

    static const char *const dirs[] = {"/usr/libexec/valgrind", "/usr/lib/x86_64-linux-gnu/valgrind",
                                       "/usr/lib/valgrind", "/usr/local/libexec/valgrind"};
    const char *env_lib = getenv("VALGRIND_LIB");
    char path[4096];
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0] + 1; d++) {
        const char *dir = d == 0 ? env_lib : dirs[d - 1];
        if (!dir)
            continue;
        snprintf(path, sizeof path, "%s/%s-amd64-linux", dir, tool);
        if (access(path, X_OK) != 0)
            continue;
        setenv("VALGRIND_LIB", dir, 1);
        setenv("VALGRIND_LAUNCHER", launcher, 1);
        execv(path, nargv);
        fprintf(stderr, "vgexec: %s: %s\n", path, strerror(errno));
        return 126;
    }
    fprintf(stderr, "vgexec: no %s-amd64-linux in the valgrind directories\n", tool);
    return 127;
}
