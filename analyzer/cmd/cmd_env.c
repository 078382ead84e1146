/* `cgoscope env`: shell exports that make the shim record by itself, without the launcher. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgoscope/record.h"
#include "cmd/commands.h"
#include "cmd/launch.h"

static void env_usage(FILE *out)
{
    fprintf(out,
            "Usage: eval \"$(cgoscope env [-o TRACE] [--timing MODE] [--no-follow])\"\n"
            "\n"
            "Prints `export` lines for a POSIX shell that preload the cgoscope shim and make it\n"
            "record into TRACE by itself (default ./cgoscope.cgs), for when wrapping the command in\n"
            "`cgoscope run` is awkward (container entry points, service managers, test runners).\n"
            "Every process started from that shell is then traced into TRACE, each in its own\n"
            "sections; `cgoscope report TRACE` reports them. TRACE is created afresh (mode 0600):\n"
            "an existing one is removed now. An LD_PRELOAD already set is kept, after the shim.\n"
            "`unset LD_PRELOAD CGOSCOPE_TRACE` stops tracing.\n"
            "\n"
            "Options:\n"
            "  -o, --output TRACE  the trace file\n"
            "  --timing MODE       as for `cgoscope run`: sampled:N (default), full, off\n"
            "  --no-follow         trace only the first process that starts\n"
            "  -h, --help          this help\n");
}

/* 'text' quoted for a POSIX shell. */
static void put_quoted(const char *s)
{
    putchar('\'');
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", stdout);
        else
            putchar(*s);
    }
    putchar('\'');
}

int cmd_env(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'}, {"timing", required_argument, NULL, 't'},
        {"no-follow", no_argument, NULL, 'N'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = "cgoscope.cgs", *timing = NULL;
    int follow = 1, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 't': timing = optarg; break;
        case 'N': follow = 0; break;
        case 'h': env_usage(stdout); return 0;
        default: env_usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        env_usage(stderr);
        return 2;
    }
    char shim[PATH_MAX];
    if (cgoscope_find_shim(shim, sizeof shim) != 0) {
        fprintf(stderr, "cgoscope: cannot find the shim libcgoscope.so; set CGOSCOPE_SHIM to its path\n");
        return 1;
    }
    char trace[PATH_MAX];
    if (out[0] == '/') {
        snprintf(trace, sizeof trace, "%s", out);
    } else {
        char cwd[PATH_MAX - 256];
        if (!getcwd(cwd, sizeof cwd)) {
            fprintf(stderr, "cgoscope: getcwd: %s\n", strerror(errno));
            return 1;
        }
        snprintf(trace, sizeof trace, "%s/%s", cwd, out);
    }
    if (unlink(trace) == 0)
        fprintf(stderr, "cgoscope: removed the old %s: the next program starts a fresh trace\n", trace);
    else if (errno != ENOENT) {
        fprintf(stderr, "cgoscope: cannot remove the old %s: %s\n", trace, strerror(errno));
        return 1;
    }
    printf("export LD_PRELOAD=");
    put_quoted(shim);
    printf("\"${LD_PRELOAD:+:$LD_PRELOAD}\"\n");
    printf("export %s=", CGS_ENV_TRACE);
    put_quoted(trace);
    printf("\n");
    printf("unset %s\n", CGS_ENV_CHANNEL);
    if (timing) {
        printf("export %s=", CGS_ENV_TIMING);
        put_quoted(timing);
        printf("\n");
    }
    if (!follow)
        printf("export %s=0\n", CGS_ENV_FOLLOW);
    return 0;
}
