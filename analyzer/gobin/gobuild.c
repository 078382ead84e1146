#include "gobin/gobuild.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const uint8_t buildinfo_magic[14] = "\xff Go buildinf:";

static int read_varint(const uint8_t *p, size_t n, size_t *used, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *used = i + 1;
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int add_module(struct gobuild *b, const char *start, size_t len)
{
    char **nv = realloc(b->modules, (b->nmodules + 1) * sizeof *nv);
    if (!nv)
        return -1;
    b->modules = nv;
    nv[b->nmodules] = strndup(start, len);
    if (!nv[b->nmodules])
        return -1;
    b->nmodules++;
    return 0;
}

/* modinfo lines: "path\tP", "mod\tM\tV\tSUM", "dep\tM\tV\tSUM", "=>\t...", "build\t..." */
static void parse_modinfo(struct gobuild *b, const char *s, size_t n)
{
    const char *end = s + n;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            nl = end;
        const char *tab = memchr(s, '\t', (size_t)(nl - s));
        if (tab) {
            const char *f = tab + 1;
            const char *fe = memchr(f, '\t', (size_t)(nl - f));
            if (!fe)
                fe = nl;
            size_t klen = (size_t)(tab - s);
            if (klen == 4 && memcmp(s, "path", 4) == 0) {
                size_t l = (size_t)(fe - f);
                if (l >= sizeof b->main_path)
                    l = sizeof b->main_path - 1;
                memcpy(b->main_path, f, l);
                b->main_path[l] = 0;
            } else if ((klen == 3 && (memcmp(s, "mod", 3) == 0 || memcmp(s, "dep", 3) == 0)) && fe > f) {
                add_module(b, f, (size_t)(fe - f));
            }
        }
        s = nl + 1;
    }
}

int gobuild_read(const char *path, struct gobuild *b)
{
    memset(b, 0, sizeof *b);
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = -1;
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    size_t shstrndx;
    if (!e || elf_getshdrstrndx(e, &shstrndx) != 0)
        goto out;
    for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        const char *name = elf_strptr(e, shstrndx, sh.sh_name);
        if (!name || strcmp(name, ".go.buildinfo") != 0)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf || d->d_size < 32)
            break;
        const uint8_t *p = d->d_buf;
        if (memcmp(p, buildinfo_magic, sizeof buildinfo_magic) != 0 || !(p[15] & 2))
            break; /* before Go 1.18 the strings were pointers: not supported */
        size_t off = 32, used;
        uint64_t len;
        if (read_varint(p + off, d->d_size - off, &used, &len) != 0 || len > d->d_size - off - used)
            break;
        size_t vl = len < sizeof b->go_version - 1 ? len : sizeof b->go_version - 1;
        memcpy(b->go_version, p + off + used, vl);
        off += used + len;
        if (read_varint(p + off, d->d_size - off, &used, &len) == 0 && len <= d->d_size - off - used) {
            const char *mi = (const char *)p + off + used;
            /* modinfo is wrapped in 16-byte sentinels */
            if (len >= 32)
                parse_modinfo(b, mi + 16, len - 32);
        }
        rc = 0;
        break;
    }
out:
    if (e)
        elf_end(e);
    close(fd);
    return rc;
}

int gobuild_minor(const char *v)
{
    if (!v || strncmp(v, "go1.", 4) != 0)
        return -1;
    char *end;
    long m = strtol(v + 4, &end, 10);
    return end != v + 4 && (*end == '.' || *end == 0 || *end == 'r' || *end == 'b') ? (int)m : -1;
}

void gobuild_free(struct gobuild *b)
{
    for (size_t i = 0; i < b->nmodules; i++)
        free(b->modules[i]);
    free(b->modules);
    memset(b, 0, sizeof *b);
}

static int has_prefix_pkg(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    return n && strncmp(s, prefix, n) == 0 && (s[n] == 0 || s[n] == '/' || s[n] == '.');
}

int gobuild_is_user_package(const struct gobuild *b, const char *s)
{
    if (has_prefix_pkg(s, "main") || has_prefix_pkg(s, "command-line-arguments"))
        return 1;
    if (b && b->nmodules) {
        for (size_t i = 0; i < b->nmodules; i++)
            if (has_prefix_pkg(s, b->modules[i]))
                return 1;
        return 0;
    }
    const char *slash = strchr(s, '/');
    if (!slash)
        return 0;
    const char *dot = memchr(s, '.', (size_t)(slash - s));
    return dot != NULL;
}
