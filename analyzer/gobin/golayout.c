/*
 * The layout of runtime.g and runtime.m, read from the executable's DWARF (docs/cgo-facts.md §3:
 * offsets move between Go versions; read them from the binary, never from a table). Only the
 * compilation unit named "runtime" is searched, and only its top-level structure types.
 */
#include "gobin/golayout.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int member_offset(Dwarf_Die *type, const char *name, uint32_t *out)
{
    Dwarf_Die m;
    if (dwarf_child(type, &m) != 0)
        return -1;
    do {
        if (dwarf_tag(&m) != DW_TAG_member)
            continue;
        const char *n = dwarf_diename(&m);
        if (!n || strcmp(n, name) != 0)
            continue;
        Dwarf_Attribute a;
        Dwarf_Word off;
        if (!dwarf_attr(&m, DW_AT_data_member_location, &a) || dwarf_formudata(&a, &off) != 0 || off > 1u << 20)
            return -1;
        *out = (uint32_t)off;
        return 0;
    } while (dwarf_siblingof(&m, &m) == 0);
    return -1;
}

static struct {
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
    int fd, tried;
    Dwarf *dw;
} kept = {.fd = -1};

Dwarf *go_dwarf_open(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    if (kept.tried && kept.dev == st.st_dev && kept.ino == st.st_ino && kept.size == st.st_size &&
        kept.mtime.tv_sec == st.st_mtim.tv_sec && kept.mtime.tv_nsec == st.st_mtim.tv_nsec)
        return kept.dw;
    if (kept.dw)
        dwarf_end(kept.dw);
    if (kept.fd >= 0)
        close(kept.fd);
    kept.dw = NULL;
    kept.fd = open(path, O_RDONLY | O_CLOEXEC);
    kept.tried = 1;
    kept.dev = st.st_dev;
    kept.ino = st.st_ino;
    kept.size = st.st_size;
    kept.mtime = st.st_mtim;
    if (kept.fd >= 0)
        kept.dw = dwarf_begin(kept.fd, DWARF_C_READ);
    return kept.dw;
}

int go_layout_read(const char *path, struct go_layout *out)
{
    Dwarf *dw = go_dwarf_open(path);
    int found = 0; /* bit 0: g.m; bit 1: m.ncgocall and m.procid */
    if (dw) {
        Dwarf_Off off = 0, next;
        size_t hsize;
        while (found != 3 && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
            Dwarf_Die cu, d;
            if (dwarf_offdie(dw, off + hsize, &cu)) {
                const char *cn = dwarf_diename(&cu);
                if (cn && strcmp(cn, "runtime") == 0 && dwarf_child(&cu, &d) == 0) {
                    do {
                        if (dwarf_tag(&d) != DW_TAG_structure_type)
                            continue;
                        const char *n = dwarf_diename(&d);
                        if (!n)
                            continue;
                        if (strcmp(n, "runtime.g") == 0 && member_offset(&d, "m", &out->g_m) == 0)
                            found |= 1;
                        else if (strcmp(n, "runtime.m") == 0 && member_offset(&d, "ncgocall", &out->m_ncgocall) == 0 &&
                                 member_offset(&d, "procid", &out->m_procid) == 0)
                            found |= 2;
                    } while (found != 3 && dwarf_siblingof(&d, &d) == 0);
                }
            }
            off = next;
        }
    }
    return found == 3 ? 0 : -1;
}
