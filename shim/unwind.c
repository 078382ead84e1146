/*
 * The C unwinder of the allocation path: per return address, the rule that gives its caller's
 * frame (CFA = RSP or RBP + offset, the return address at CFA - 8, RBP saved at CFA + k or left
 * as it is), read once from the module's .eh_frame through its .eh_frame_hdr search table and
 * kept in one table shared by every thread. A walk is then a lookup and two loads per frame, as
 * a frame-pointer walk is, warm or cold, with no system call.
 *
 * Why not libunwind alone: Debian's libunwind 1.6.2 takes a lock around every unw_step (its
 * register-state cache is global: sigprocmask, mutex, sigprocmask), and on a miss of that cache
 * masks signals around dl_iterate_phdr; the mempool behind its CIE parsing locks the same way.
 * On a KVM guest each sigprocmask costs microseconds: a cold 16-frame unwind took ~200 us
 * (bench/README.md, "Issue 14"). libunwind stays for what this does not handle (a frame
 * whose rule uses a DWARF expression, such as a signal trampoline; code outside the modules loaded
 * at start-up): the caller falls back to it for the whole stack.
 *
 * Nothing here allocates (docs/architecture.md, invariant 2): the module list is static, the rule
 * table is mmap'ed, and the table is insert-only, so a reader never sees a rule half written.
 */
#define _GNU_SOURCE
#include <link.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "shim.h"

#define MAX_MODULES 512
#define RULE_BITS 15 /* 32,768 return addresses (512 KiB); the suite of go-sqlite3 meets a few thousand */
#define RULE_PROBES 16

struct module {
    uintptr_t lo, hi;      /* executable segments */
    const uint8_t *hdr;    /* .eh_frame_hdr: the base of the table's data-relative values */
    const int32_t *table;  /* (initial location, FDE) pairs, sorted, relative to hdr */
    uint32_t count;
};

static struct module modules[MAX_MODULES];
static uint32_t nmodules;

/* Rules by return address: key 0 = empty, 1 = being written; the value is stored before the key. */
struct rule_slot {
    _Atomic uint64_t key;
    uint64_t rule;
};
static struct rule_slot *rules;

/* A rule in 64 bits. */
#define R_KIND(r) ((unsigned)((r) & 3u))
#define K_UNKNOWN 0u /* no rule this walker can use: libunwind unwinds the stack */
#define K_FRAME 1u
#define K_END 2u /* the return address is undefined: the outermost frame (_start, clone) */
#define R_CFA_RBP 4u
#define R_RBP_SAVED 8u
#define R_CFA_OFF(r) ((uint32_t)((r) >> 32))
#define R_RBP_OFF(r) ((int32_t)(int16_t)(uint16_t)((r) >> 16)) /* from the CFA, in bytes */

static int add_module(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (nmodules == MAX_MODULES)
        return 1;
    const ElfW(Phdr) *eh = NULL;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_EH_FRAME)
            eh = ph;
        else if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            if (a < lo)
                lo = a;
            if (a + ph->p_memsz > hi)
                hi = a + ph->p_memsz;
        }
    }
    if (!eh || lo >= hi)
        return 0;
    const uint8_t *h = (const uint8_t *)(info->dlpi_addr + eh->p_vaddr);
    /* version 1; eh_frame_ptr pcrel|sdata4; fde_count udata4; table datarel|sdata4: what every
     * binutils and lld write. Anything else is left to libunwind. */
    if (eh->p_memsz < 12 || h[0] != 1 || h[1] != 0x1b || h[2] != 0x03 || h[3] != 0x3b)
        return 0;
    uint32_t count;
    memcpy(&count, h + 8, 4);
    if (!count || 12 + (uint64_t)count * 8 > eh->p_memsz)
        return 0;
    struct module *m = &modules[nmodules++];
    m->lo = lo;
    m->hi = hi;
    m->hdr = h;
    m->table = (const int32_t *)(h + 12);
    m->count = count;
    return 0;
}

int cgs_unwind_init(void)
{
    void *t = mmap(NULL, sizeof(struct rule_slot) << RULE_BITS, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED)
        return -1;
    rules = t;
    dl_iterate_phdr(add_module, NULL);
    return 0;
}

/* ---- Reading .eh_frame ------------------------------------------------------------------ */

struct reader {
    const uint8_t *p, *end;
    int bad;
};

static uint64_t uleb(struct reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t sleb(struct reader *r)
{
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b = 0x80;
    while (r->p < r->end && (b & 0x80)) {
        b = *r->p++;
        if (shift < 64)
            v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
    }
    if (b & 0x80)
        r->bad = 1;
    else if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    return v;
}

static uint64_t fixed(struct reader *r, unsigned n)
{
    if ((size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    memcpy(&v, r->p, n);
    r->p += n;
    return v;
}

/* A pointer in DW_EH_PE encoding enc (no indirection: the FDE's own fields never use it). */
static uint64_t encoded(struct reader *r, uint8_t enc)
{
    const uint8_t *at = r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: v = fixed(r, 8); break;
    case 0x01: v = uleb(r); break;
    case 0x02: v = fixed(r, 2); break;
    case 0x03: v = fixed(r, 4); break;
    case 0x04: v = fixed(r, 8); break;
    case 0x09: v = (uint64_t)sleb(r); break;
    case 0x0a: v = (uint64_t)(int64_t)(int16_t)fixed(r, 2); break;
    case 0x0b: v = (uint64_t)(int64_t)(int32_t)fixed(r, 4); break;
    case 0x0c: v = fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0x00: break;
    case 0x10: v += (uintptr_t)at; break;
    default: r->bad = 1; /* datarel, textrel, funcrel: not in FDE headers on x86-64 */
    }
    if (enc & 0x80)
        r->bad = 1;
    return v;
}

/* The CFI state this walker can express. */
struct cfi_state {
    uint32_t cfa_reg; /* DWARF register: 7 rsp, 6 rbp */
    int64_t cfa_off;
    int rbp_saved;    /* RBP at CFA + rbp_off */
    int64_t rbp_off;
    int ra_undefined;
    int unsupported;
};

#define REG_RBP 6u
#define REG_RSP 7u

static void set_offset(struct cfi_state *s, uint64_t reg, int64_t off, uint64_t ra_reg)
{
    if (reg == REG_RBP) {
        s->rbp_saved = 1;
        s->rbp_off = off;
    } else if (reg == ra_reg && off != -8) {
        s->unsupported = 1; /* the return address anywhere but just below the CFA */
    }
}

/* Runs CFI instructions [p, end) up to the row that holds target (an address inside the call
 * instruction, so that a call ending a function finds that function's row). */
static void run_cfi(struct cfi_state *s, const struct cfi_state *initial, const uint8_t *p, const uint8_t *end,
                    uint64_t loc, uint64_t target, uint64_t code_align, int64_t data_align, uint64_t ra_reg,
                    uint8_t fde_enc)
{
    struct cfi_state saved[4];
    int nsaved = 0;
    struct reader r = {p, end, 0};
    while (r.p < r.end && !r.bad && !s->unsupported) {
        uint8_t op = *r.p++, low = op & 0x3f;
        uint64_t reg, next = loc;
        switch (op & 0xc0) {
        case 0x40: next = loc + low * code_align; break;
        case 0x80: set_offset(s, low, (int64_t)uleb(&r) * data_align, ra_reg); continue;
        case 0xc0:
            if (low == REG_RBP && initial) {
                s->rbp_saved = initial->rbp_saved;
                s->rbp_off = initial->rbp_off;
            }
            continue;
        default:
            switch (op) {
            case 0x00: continue;                                        /* nop */
            case 0x01: next = encoded(&r, fde_enc); break;              /* set_loc */
            case 0x02: next = loc + fixed(&r, 1) * code_align; break;   /* advance_loc1 */
            case 0x03: next = loc + fixed(&r, 2) * code_align; break;   /* advance_loc2 */
            case 0x04: next = loc + fixed(&r, 4) * code_align; break;   /* advance_loc4 */
            case 0x05:                                                  /* offset_extended */
                reg = uleb(&r);
                set_offset(s, reg, (int64_t)uleb(&r) * data_align, ra_reg);
                continue;
            case 0x11:                                                  /* offset_extended_sf */
                reg = uleb(&r);
                set_offset(s, reg, sleb(&r) * data_align, ra_reg);
                continue;
            case 0x06:                                                  /* restore_extended */
                reg = uleb(&r);
                if (reg == REG_RBP && initial) {
                    s->rbp_saved = initial->rbp_saved;
                    s->rbp_off = initial->rbp_off;
                }
                continue;
            case 0x07:                                                  /* undefined */
                reg = uleb(&r);
                if (reg == ra_reg)
                    s->ra_undefined = 1;
                else if (reg == REG_RBP)
                    s->unsupported = 1;
                continue;
            case 0x08:                                                  /* same_value */
                if (uleb(&r) == REG_RBP)
                    s->rbp_saved = 0;
                continue;
            case 0x09:                                                  /* register */
                reg = uleb(&r);
                (void)uleb(&r);
                if (reg == REG_RBP || reg == ra_reg)
                    s->unsupported = 1;
                continue;
            case 0x0a:                                                  /* remember_state */
                if (nsaved == 4)
                    s->unsupported = 1;
                else
                    saved[nsaved++] = *s;
                continue;
            case 0x0b:                                                  /* restore_state */
                if (!nsaved) {
                    s->unsupported = 1;
                } else {
                    *s = saved[--nsaved]; /* the whole row, CFA rule included (as libunwind) */
                }
                continue;
            case 0x0c:                                                  /* def_cfa */
                s->cfa_reg = (uint32_t)uleb(&r);
                s->cfa_off = (int64_t)uleb(&r);
                continue;
            case 0x12:                                                  /* def_cfa_sf */
                s->cfa_reg = (uint32_t)uleb(&r);
                s->cfa_off = sleb(&r) * data_align;
                continue;
            case 0x0d: s->cfa_reg = (uint32_t)uleb(&r); continue;       /* def_cfa_register */
            case 0x0e: s->cfa_off = (int64_t)uleb(&r); continue;        /* def_cfa_offset */
            case 0x13: s->cfa_off = sleb(&r) * data_align; continue;    /* def_cfa_offset_sf */
            case 0x10:                                                  /* expression */
            case 0x16:                                                  /* val_expression */
                reg = uleb(&r);
                if (reg == REG_RBP || reg == ra_reg) {
                    s->unsupported = 1;
                    continue;
                }
                reg = uleb(&r);
                if ((uint64_t)(r.end - r.p) < reg)
                    r.bad = 1;
                else
                    r.p += reg;
                continue;
            case 0x14:                                                  /* val_offset */
            case 0x15:                                                  /* val_offset_sf */
                reg = uleb(&r);
                if (op == 0x14)
                    (void)uleb(&r);
                else
                    (void)sleb(&r);
                if (reg == REG_RBP || reg == ra_reg)
                    s->unsupported = 1;
                continue;
            case 0x2e: (void)uleb(&r); continue;                        /* GNU_args_size */
            case 0x2f:                                                  /* GNU_negative_offset_extended */
                reg = uleb(&r);
                set_offset(s, reg, -(int64_t)uleb(&r) * data_align, ra_reg);
                continue;
            default: s->unsupported = 1; continue; /* def_cfa_expression and the unknown */
            }
        }
        if (next > target)
            return; /* the row for target is the current one */
        loc = next;
    }
    if (r.bad)
        s->unsupported = 1;
}

/* The rule for return address ra, read from .eh_frame. */
static uint64_t compute_rule(uintptr_t ra)
{
    uintptr_t target = ra - 1;
    const struct module *m = NULL;
    for (uint32_t i = 0; i < nmodules; i++)
        if (target >= modules[i].lo && target < modules[i].hi) {
            m = &modules[i];
            break;
        }
    if (!m)
        return K_UNKNOWN;
    /* The last table entry whose initial location is at or below target. */
    intptr_t rel = (intptr_t)target - (intptr_t)m->hdr;
    uint32_t lo = 0, hi = m->count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if ((intptr_t)m->table[2 * mid] <= rel)
            lo = mid;
        else
            hi = mid;
    }
    if ((intptr_t)m->table[2 * lo] > rel)
        return K_UNKNOWN;
    const uint8_t *fde = m->hdr + m->table[2 * lo + 1];
    /* FDE: length, CIE pointer, pc_begin, pc_range, [augmentation data], instructions */
    uint32_t len32;
    memcpy(&len32, fde, 4);
    if (len32 == 0 || len32 == 0xffffffffu)
        return K_UNKNOWN;
    const uint8_t *fde_end = fde + 4 + len32;
    int32_t cie_ptr;
    memcpy(&cie_ptr, fde + 4, 4);
    if (cie_ptr <= 0)
        return K_UNKNOWN;
    const uint8_t *cie = fde + 4 - cie_ptr;
    uint32_t cie_len;
    memcpy(&cie_len, cie, 4);
    if (cie_len == 0 || cie_len == 0xffffffffu)
        return K_UNKNOWN;
    struct reader r = {cie + 8, cie + 4 + cie_len, 0};
    uint32_t cie_id;
    memcpy(&cie_id, cie + 4, 4);
    uint8_t version = (uint8_t)fixed(&r, 1);
    if (cie_id != 0 || (version != 1 && version != 3))
        return K_UNKNOWN;
    const char *aug = (const char *)r.p;
    size_t auglen = strnlen(aug, (size_t)(r.end - r.p));
    r.p += auglen + 1;
    if (r.p > r.end || (auglen && aug[0] != 'z') || strchr(aug, 'S'))
        return K_UNKNOWN; /* no 'z': cannot skip what it holds; 'S': a signal frame */
    uint64_t code_align = uleb(&r);
    int64_t data_align = sleb(&r);
    uint64_t ra_reg = version == 1 ? fixed(&r, 1) : uleb(&r);
    uint8_t fde_enc = 0;
    if (auglen) {
        uint64_t alen = uleb(&r);
        const uint8_t *adata_end = r.p + alen;
        for (size_t i = 1; i < auglen && !r.bad; i++) {
            if (aug[i] == 'R') {
                fde_enc = (uint8_t)fixed(&r, 1);
            } else if (aug[i] == 'L') {
                (void)fixed(&r, 1);
            } else if (aug[i] == 'P') {
                uint8_t penc = (uint8_t)fixed(&r, 1);
                (void)encoded(&r, (uint8_t)(penc & 0x7f)); /* skipped: only its size matters */
            } else {
                break; /* unknown letters: the length says where the data ends */
            }
        }
        r.p = adata_end;
    }
    if (r.bad || r.p > r.end || ra_reg != 16 || code_align == 0)
        return K_UNKNOWN;
    /* the FDE's own fields */
    struct reader f = {fde + 8, fde_end, 0};
    uint64_t pc_begin = encoded(&f, fde_enc);
    uint64_t pc_range = encoded(&f, (uint8_t)(fde_enc & 0x0f));
    if (auglen)
        f.p += uleb(&f);
    if (f.bad || f.p > f.end || target < pc_begin || target - pc_begin >= pc_range)
        return K_UNKNOWN;
    struct cfi_state init = {REG_RSP, 8, 0, 0, 0, 0}, s;
    run_cfi(&init, NULL, r.p, r.end, 0, UINT64_MAX, code_align, data_align, ra_reg, fde_enc);
    s = init;
    run_cfi(&s, &init, f.p, f.end, pc_begin, target, code_align, data_align, ra_reg, fde_enc);
    if (s.unsupported)
        return K_UNKNOWN;
    if (s.ra_undefined)
        return K_END;
    if ((s.cfa_reg != REG_RSP && s.cfa_reg != REG_RBP) || s.cfa_off < 8 || s.cfa_off > (1 << 24) ||
        (s.rbp_saved && (s.rbp_off < -32768 || s.rbp_off > 32767)))
        return K_UNKNOWN;
    uint64_t rule = K_FRAME | ((uint64_t)s.cfa_off << 32);
    if (s.cfa_reg == REG_RBP)
        rule |= R_CFA_RBP;
    if (s.rbp_saved)
        rule |= R_RBP_SAVED | ((uint64_t)(uint16_t)(int16_t)s.rbp_off << 16);
    return rule;
}

static inline uint64_t rule_of(uintptr_t ra)
{
    uint64_t mask = ((uint64_t)1 << RULE_BITS) - 1;
    uint64_t h = (uint64_t)ra * 0x9e3779b97f4a7c15ull >> (64 - RULE_BITS);
    for (uint64_t i = 0; i < RULE_PROBES; i++) {
        struct rule_slot *sl = &rules[(h + i) & mask];
        uint64_t k = atomic_load_explicit(&sl->key, memory_order_acquire);
        if (k == ra)
            return sl->rule;
        if (k == 0) {
            uint64_t rule = compute_rule(ra), expect = 0;
            if (atomic_compare_exchange_strong(&sl->key, &expect, 1)) {
                sl->rule = rule;
                atomic_store_explicit(&sl->key, ra, memory_order_release);
            }
            return rule;
        }
    }
    return compute_rule(ra); /* crowded here: no caching */
}

int cgs_unwind_fast(uintptr_t cfa, uint64_t *pcs, uintptr_t *slots, uint32_t max, uint32_t *nout,
                    int (*stop)(uintptr_t), uintptr_t stopped[3])
{
    if (!rules || !cfa || (cfa & 7))
        return -1;
    /* The caller of the allocation function: its return address just below cfa, and its RBP
     * saved by the shim's interposer (built with frame pointers) below that. */
    uintptr_t ip = ((const uintptr_t *)cfa)[-1], bp = ((const uintptr_t *)cfa)[-2], sp = cfa, slot = cfa - 8;
    uint32_t n = 0;
    while (ip && n < max) {
        if (stop(ip)) {
            stopped[0] = ip;
            stopped[1] = bp;
            stopped[2] = slot;
            break;
        }
        uint64_t rule = rule_of(ip);
        if (R_KIND(rule) == K_UNKNOWN)
            return -1;
        pcs[n] = ip;
        slots[n] = slot;
        n++;
        if (R_KIND(rule) == K_END)
            break;
        uintptr_t next = ((rule & R_CFA_RBP) ? bp : sp) + R_CFA_OFF(rule);
        if (next <= sp || next - sp > (1u << 24) || (next & 7))
            return -1; /* not a frame of this stack: let libunwind judge */
        if (rule & R_RBP_SAVED) {
            uintptr_t at = next + (uintptr_t)(intptr_t)R_RBP_OFF(rule);
            if (at < sp || at + 8 > next - 8)
                return -1; /* RBP saved outside the frame: not what compilers write */
            bp = *(const uintptr_t *)at;
        }
        ip = ((const uintptr_t *)next)[-1];
        slot = next - 8;
        sp = next;
    }
    *nout = n;
    return 0;
}
