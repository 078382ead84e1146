#include "gobin/preflight.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int resolve(const char *prog, char *out, size_t outlen)
{
    if (strchr(prog, '/')) {
        snprintf(out, outlen, "%s", prog);
        return access(out, F_OK) == 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        snprintf(out, outlen, "%.*s/%s", (int)len, len ? path : ".", prog);
        if (access(out, X_OK) == 0)
            return 1;
        path += len + (colon ? 1 : 0);
    }
    out[0] = 0;
    return 0;
}

void preflight_check(const char *prog, struct preflight *pf)
{
    memset(pf, 0, sizeof *pf);
    pf->found = resolve(prog, pf->path, sizeof pf->path);
    if (!pf->found)
        return;
    struct stat st;
    if (stat(pf->path, &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)))
        pf->is_setid = 1;
    int fd = open(pf->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    if (e && elf_kind(e) == ELF_K_ELF) {
        pf->is_elf = 1;
        size_t n = 0;
        int interp = 0, dynamic = 0;
        if (elf_getphdrnum(e, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                GElf_Phdr ph;
                if (!gelf_getphdr(e, (int)i, &ph))
                    continue;
                interp |= ph.p_type == PT_INTERP;
                dynamic |= ph.p_type == PT_DYNAMIC;
            }
        }
        GElf_Ehdr eh;
        /* A static executable has no interpreter; a static-pie has PT_DYNAMIC but no PT_INTERP
         * either. Shared objects run directly (ld.so itself) are left alone. */
        if (gelf_getehdr(e, &eh) && (eh.e_type == ET_EXEC || (eh.e_type == ET_DYN && dynamic)) && !interp)
            pf->is_static = eh.e_type == ET_EXEC || !strstr(pf->path, "ld-linux");
    }
    if (e)
        elf_end(e);
    close(fd);
}
