/*
 * The layout of runtime.g and runtime.m, read from the executable's DWARF (docs/cgo-facts.md §3:
 * offsets move between Go versions; read them from the binary, never from a table). Only the
 * compilation unit named "runtime" is searched, and only its top-level structure types.
 */
#include "gobin/golayout.h"
#include "gobin/gobuild.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
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

/* The files opened, each inflated once. A file is let go (least recently asked for first) only
 * when more than KEPT_MAX are kept and nobody holds it (go_dwarf_hold). */
#define KEPT_MAX 8
struct kept {
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
    int fd;
    unsigned holds;
    unsigned long used;
    Dwarf *dw;
};
static struct kept **kept;
static size_t nkept;
static unsigned long kept_clock;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static void kept_drop(size_t i)
{
    struct kept *k = kept[i];
    if (k->dw)
        dwarf_end(k->dw);
    if (k->fd >= 0)
        close(k->fd);
    free(k);
    kept[i] = kept[--nkept];
}

/* With kept_lock held. NULL only when out of memory. */
static struct kept *kept_get(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return NULL;
    for (size_t i = 0; i < nkept; i++) {
        struct kept *k = kept[i];
        if (k->dev == st.st_dev && k->ino == st.st_ino && k->size == st.st_size &&
            k->mtime.tv_sec == st.st_mtim.tv_sec && k->mtime.tv_nsec == st.st_mtim.tv_nsec) {
            k->used = ++kept_clock;
            return k;
        }
    }
    if (nkept >= KEPT_MAX) { /* the least recently used that nobody holds */
        size_t victim = nkept;
        for (size_t i = 0; i < nkept; i++)
            if (!kept[i]->holds && (victim == nkept || kept[i]->used < kept[victim]->used))
                victim = i;
        if (victim < nkept)
            kept_drop(victim);
    }
    struct kept **nv = realloc(kept, (nkept + 1) * sizeof *nv);
    struct kept *k = nv ? calloc(1, sizeof *k) : NULL;
    if (nv)
        kept = nv;
    if (!k)
        return NULL;
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    k->size = st.st_size;
    k->mtime = st.st_mtim;
    k->used = ++kept_clock;
    k->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (k->fd >= 0)
        k->dw = dwarf_begin(k->fd, DWARF_C_READ);
    kept[nkept++] = k;
    return k;
}

Dwarf *go_dwarf_open(const char *path)
{
    pthread_mutex_lock(&kept_lock);
    struct kept *k = kept_get(path);
    Dwarf *dw = k ? k->dw : NULL;
    pthread_mutex_unlock(&kept_lock);
    return dw;
}

Dwarf *go_dwarf_hold(const char *path)
{
    pthread_mutex_lock(&kept_lock);
    struct kept *k = kept_get(path);
    Dwarf *dw = k ? k->dw : NULL;
    if (dw)
        k->holds++;
    pthread_mutex_unlock(&kept_lock);
    return dw;
}

void go_dwarf_release(Dwarf *dw)
{
    if (!dw)
        return;
    pthread_mutex_lock(&kept_lock);
    for (size_t i = 0; i < nkept; i++)
        if (kept[i]->dw == dw && kept[i]->holds) {
            kept[i]->holds--;
            break;
        }
    pthread_mutex_unlock(&kept_lock);
}

/* Each row read from the DWARF of a cgo program built by that release's toolchain (go_layout_read;
 * tests/unit/test_gobuild.c checks the row of the toolchain that builds the test programs). */
static const struct {
    int minor; /* Go 1.minor */
    struct go_layout l;
} release_layouts[] = {
    {21, {48, 304, 72}}, {22, {48, 296, 72}}, {23, {48, 296, 72}},
    {24, {48, 296, 72}}, {25, {48, 312, 64}}, {26, {48, 320, 64}},
};

int go_layout_of_release(const char *v, struct go_layout *out)
{
    if (!v || strchr(v, ' '))
        return -1; /* a GOEXPERIMENT (" X:..."), which may move fields */
    int minor = gobuild_minor(v);
    for (size_t i = 0; i < sizeof release_layouts / sizeof release_layouts[0]; i++)
        if (release_layouts[i].minor == minor) {
            *out = release_layouts[i].l;
            return 0;
        }
    return -1;
}

static pthread_mutex_t use_lock = PTHREAD_MUTEX_INITIALIZER;

void go_dwarf_lock(void) { pthread_mutex_lock(&use_lock); }

void go_dwarf_unlock(void) { pthread_mutex_unlock(&use_lock); }

int go_layout_read(const char *path, struct go_layout *out)
{
    go_dwarf_lock();
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
    go_dwarf_unlock();
    return found == 3 ? 0 : -1;
}
