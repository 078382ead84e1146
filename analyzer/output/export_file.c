#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "output/exports.h"

FILE *export_create(const char *path, const char *what)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, "cgoscope: cannot write the %s to %s: %s\n", what, path, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    return f;
}

int export_finish(FILE *f, const char *path, const char *what)
{
    int bad = ferror(f);
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        fprintf(stderr, "cgoscope: writing the %s to %s failed: %s%s\n", what, path, strerror(e),
                e == ENOSPC ? " (disk full)" : "");
        return -1;
    }
    return 0;
}
