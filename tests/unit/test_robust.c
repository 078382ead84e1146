/* What "never break, never lose" rests on in the analyzer: a pid that runs several programs
 * (exec), the shim's trace file with program images and bad headers, and Go's own function
 * table (.gopclntab) read without symbols. */
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgoscope/gostubs.h"
#include "gobin/goheap.h"
#include "gobin/gopclntab.h"
#include "ingest/images.h"
#include "recbuf.h"
#include "suites.h"
#include "output/symbolize.h"
#include "ingest/trace.h"

static void one_image(struct recbuf *b, uint32_t pid, const char *exe, uint64_t addr, uint64_t size)
{
    rb_proc(b, pid, exe);
    rb_alloc(b, addr, size, 1, 1);
}

/* exec: a second PROC record in a traced pid starts a new entry; the old one ends as EXIT_EXEC
 * and keeps what it had not freed, even at addresses the new program uses again. */
START_TEST(exec_starts_a_new_entry)
{
    static struct recbuf b;
    struct procset ps;
    procset_init(&ps);
    b.len = 0;
    one_image(&b, 5, "/bin/first", 0x1000, 10);
    ck_assert_int_eq(procset_feed(&ps, 5, 5, b.data, b.len), 0);
    b.len = 0;
    one_image(&b, 5, "/bin/second", 0x1000, 20);
    rb_free(&b, 0x1000, 2);
    one_image(&b, 5, "/bin/third", 0x1000, 30); /* inside one run, too */
    ck_assert_int_eq(procset_feed(&ps, 5, 5, b.data, b.len), 0);
    ck_assert_uint_eq(ps.n, 3);
    ck_assert_str_eq(ps.v[0]->exe, "/bin/first");
    ck_assert_int_eq(ps.v[0]->exit_kind, EXIT_EXEC);
    ck_assert_uint_eq(ps.v[0]->live.live_bytes, 10);
    ck_assert_uint_eq(ps.v[1]->live.live_count, 0);
    ck_assert_int_eq(ps.v[1]->exit_kind, EXIT_EXEC);
    ck_assert_uint_eq(ps.v[2]->live.live_bytes, 30);
    ck_assert_int_eq(ps.v[2]->exit_kind, EXIT_UNKNOWN);
    ck_assert_ptr_eq(procset_get(&ps, 5, NULL), ps.v[2]);
    /* An entry made before the first PROC (the launcher's) takes that PROC itself. */
    struct process *pre = procset_get(&ps, 6, NULL);
    b.len = 0;
    one_image(&b, 6, "/bin/child", 0x2000, 5);
    ck_assert_int_eq(procset_feed(&ps, 6, 6, b.data, b.len), 0);
    ck_assert_uint_eq(ps.n, 4);
    ck_assert_ptr_eq(ps.v[3], pre);
    ck_assert_int_eq(pre->attached, 1);
    procset_free(&ps);
}
END_TEST

#define CHUNK CGS_CHUNK_SIZE
#define NCHUNKS 4u

/* A shim trace file: two program images of pid 9 (records in chunks 0 and 1) and the first
 * image's statistics (chunk 2). */
static uint8_t *shim_file(size_t *size)
{
    *size = (size_t)cgs_channel_size(NCHUNKS);
    uint8_t *m = aligned_alloc(4096, *size);
    memset(m, 0, *size);
    struct cgs_shm_header *h = (struct cgs_shm_header *)m;
    h->magic = CGS_SHM_MAGIC;
    cgs_header_init(h, NCHUNKS, CGS_HF_FILE);
    h->clock = CGS_CLOCK_MONO;
    h->next_chunk = 3;
    struct cgs_chunk_desc *d = (struct cgs_chunk_desc *)(m + 4096);
    static struct recbuf b;
    for (uint32_t i = 0; i < 2; i++) {
        b.len = 0;
        one_image(&b, 9, i ? "/bin/second" : "/bin/first", 0x1000, 10 + i);
        memcpy(m + h->chunks_offset + (size_t)i * CHUNK, b.data, b.len);
        d[i] = (struct cgs_chunk_desc){.state = CGS_CHUNK_WRITING, .tid = 9, .seq = i + 1, .committed = (uint32_t)b.len,
                                       .kind = CGS_KIND_RECORDS, .pid = 9, .image = 100 + i};
    }
    struct cgs_stats_chunk *s = (struct cgs_stats_chunk *)(m + h->chunks_offset + 2 * (size_t)CHUNK);
    s->magic = CGS_STATS_MAGIC;
    s->nsites = 1;
    s->sites[0].kind = CGS_STATS_CALL;
    s->sites[0].calls = 42;
    d[2] = (struct cgs_chunk_desc){.state = CGS_CHUNK_WRITING, .tid = 9, .seq = 3, .kind = CGS_KIND_STATS, .pid = 9,
                                   .image = 100};
    return m;
}

START_TEST(shim_file_images_and_statistics)
{
    size_t size;
    uint8_t *m = shim_file(&size);
    struct procset ps;
    procset_init(&ps);
    char err[512] = "";
    ck_assert_int_eq(trace_read_mem(m, size, "t", &ps, err, sizeof err), 0);
    ck_assert_uint_eq(ps.n, 2);
    ck_assert_int_eq(ps.v[0]->exit_kind, EXIT_EXEC);
    ck_assert_uint_eq(ps.v[0]->live.live_bytes, 10);
    ck_assert_uint_eq(ps.v[1]->live.live_bytes, 11);
    /* The statistics belong to the program that wrote them, not to the one that replaced it. */
    ck_assert_uint_ge(ps.v[0]->cx.ncalls, 1);
    ck_assert_uint_eq(ps.v[0]->cx.calls[0].calls, 42);
    ck_assert_uint_eq(ps.v[1]->cx.ncalls, 0);
    procset_free(&ps);
    free(m);
}
END_TEST

/* Header fields that would send the reader out of the file, and every cut: an error or what
 * could be read, never a crash. */
START_TEST(shim_file_bad_headers)
{
    size_t size;
    uint8_t *m = shim_file(&size);
    struct cgs_shm_header *h = (struct cgs_shm_header *)m;
    struct cgs_shm_header saved = *h;
    static const struct {
        size_t off, width;
        uint64_t value;
    } bad[] = {
        {offsetof(struct cgs_shm_header, chunks_offset), 8, 0xfffffffffff00000ull},
        {offsetof(struct cgs_shm_header, chunks_offset), 8, 4097},
        {offsetof(struct cgs_shm_header, chunk_size), 4, 0xfffffff8u},
        {offsetof(struct cgs_shm_header, chunk_size), 4, 8},
        {offsetof(struct cgs_shm_header, nchunks), 4, 0xffffffffu},
        {offsetof(struct cgs_shm_header, next_chunk), 4, 0xffffffffu},
        {offsetof(struct cgs_shm_header, header_size), 4, 4095},
        {offsetof(struct cgs_shm_header, header_size), 4, 0xfffffff0u},
        {offsetof(struct cgs_shm_header, version), 4, 99},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        *h = saved;
        memcpy(m + bad[i].off, &bad[i].value, bad[i].width);
        struct procset ps;
        procset_init(&ps);
        char err[512] = "";
        int rc = trace_read_mem(m, size, "t", &ps, err, sizeof err);
        ck_assert_msg(rc != 0 || bad[i].off == offsetof(struct cgs_shm_header, next_chunk), "case %zu read as good: %s",
                      i, err);
        if (bad[i].off == offsetof(struct cgs_shm_header, version))
            ck_assert_ptr_nonnull(strstr(err, "format 99"));
        procset_free(&ps);
    }
    *h = saved;
    for (size_t cut = 0; cut < size; cut += cut < 8192 ? 8 : 4093) {
        struct procset ps;
        procset_init(&ps);
        char err[512] = "";
        int rc = trace_read_mem(m, cut, "t", &ps, err, sizeof err);
        if (cut < h->chunks_offset + 3 * (size_t)CHUNK) { /* the fourth chunk was never used */
            ck_assert_int_ne(rc, 0);
            ck_assert_str_ne(err, "");
        }
        procset_free(&ps);
    }
    free(m);
}
END_TEST

/* The one check both sides make of a channel's header (record.h): the shim before writing into
 * it, the analyzer before reading a trace file. */
START_TEST(header_check_verdicts)
{
    size_t size;
    uint8_t *m = shim_file(&size);
    struct cgs_shm_header *h = (struct cgs_shm_header *)m;
    struct cgs_shm_header saved = *h;
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_FILE), CGS_HEADER_OK);
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_FILE | CGS_CHECK_WRITE), CGS_HEADER_OK);
    /* A launcher's channel is not a trace file, and the other way round. */
    ck_assert_int_eq(cgs_header_check(h, size, 0), CGS_HEADER_FORMAT);
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_WRITE), CGS_HEADER_FORMAT);
    /* A reader takes the older format; a writer only the current one. */
    h->version = 1;
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_FILE), CGS_HEADER_OK);
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_FILE | CGS_CHECK_WRITE), CGS_HEADER_FORMAT);
    h->version = CGS_FORMAT_VERSION + 1;
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_FILE), CGS_HEADER_FORMAT);
    *h = saved;
    h->magic ^= 1;
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_FILE), CGS_HEADER_NOT_OURS);
    *h = saved;
    h->chunk_size = 4096; /* smaller than a statistics chunk */
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_FILE), CGS_HEADER_CORRUPT);
    *h = saved;
    h->chunks_offset = CGS_HEADER_SIZE; /* the descriptors would overlap the chunks */
    ck_assert_int_eq(cgs_header_check(h, size, CGS_CHECK_FILE), CGS_HEADER_CORRUPT);
    *h = saved;
    /* Cut inside the descriptors: short for both; after them, short only for a writer. */
    ck_assert_int_eq(cgs_header_check(h, sizeof *h - 1, CGS_CHECK_FILE), CGS_HEADER_CUT_SHORT);
    ck_assert_int_eq(cgs_header_check(h, CGS_HEADER_SIZE + 8, CGS_CHECK_FILE), CGS_HEADER_CUT_SHORT);
    ck_assert_int_eq(cgs_header_check(h, size - 1, CGS_CHECK_FILE), CGS_HEADER_OK);
    ck_assert_int_eq(cgs_header_check(h, size - 1, CGS_CHECK_FILE | CGS_CHECK_WRITE), CGS_HEADER_CUT_SHORT);
    /* An offset that would wrap around when added to the chunks' size. */
    h->chunks_offset = 0xfffffffffff00000ull;
    ck_assert_int_ne(cgs_header_check(h, size, CGS_CHECK_FILE | CGS_CHECK_WRITE), CGS_HEADER_OK);
    /* The launcher's own layout passes the shim's check. */
    memset(h, 0, sizeof *h);
    h->magic = CGS_SHM_MAGIC;
    cgs_header_init(h, NCHUNKS, 0);
    ck_assert_uint_eq(h->chunks_offset, 2 * CGS_HEADER_SIZE);
    ck_assert_int_eq(cgs_header_check(h, cgs_channel_size(NCHUNKS), CGS_CHECK_WRITE), CGS_HEADER_OK);
    free(m);
}
END_TEST

static const char *base(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : path ? path : "";
}

/* .gopclntab names every Go function of a real binary as its symbol table does, and gives the
 * file and line (and inlined calls) its DWARF gives. */
START_TEST(gopclntab_agrees_with_symbols_and_dwarf)
{
    const char *dir = getenv("CGOSCOPE_TESTPROGS");
    if (!dir)
        return; /* built without the Go test programs */
    char path[4096];
    snprintf(path, sizeof path, "%s/leaky", dir);
    elf_version(EV_CURRENT);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    struct gopclntab *t = gopclntab_open(elf);
    ck_assert_ptr_nonnull(t);
    uint64_t lo, hi;
    gopclntab_text(t, &lo, &hi);

    struct process p;
    process_init(&p);
    struct module_info mod = {path, 0, 0x400000, hi, 1};
    p.modules = &mod;
    p.nmodules = 1;
    struct symbolizer *s = symbolizer_new(&p);
    ck_assert_ptr_nonnull(s);

    Elf_Scn *scn = NULL;
    GElf_Shdr sh;
    size_t functions = 0, main_pcs = 0;
    while ((scn = elf_nextscn(elf, scn)) != NULL)
        if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_SYMTAB)
            break;
    ck_assert_ptr_nonnull(scn);
    Elf_Data *d = elf_getdata(scn, NULL);
    for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
        GElf_Sym sym;
        gelf_getsym(d, (int)i, &sym);
        const char *name = elf_strptr(elf, sh.sh_link, sym.st_name);
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || !sym.st_size || sym.st_value < lo || sym.st_value >= hi || !name)
            continue;
        struct go_frame fr[16];
        size_t n = gopclntab_lookup(t, sym.st_value, fr, 16);
        ck_assert_msg(n >= 1, "no frame for %s", name);
        char want[512]; /* the table spells some generated names with a middle dot, .symtab with '.' */
        size_t len = 0;
        for (const char *c = fr[n - 1].function; *c && len < sizeof want - 1; c++) {
            if ((unsigned char)c[0] == 0xc2 && (unsigned char)c[1] == 0xb7) {
                want[len++] = '.';
                c++;
            } else {
                want[len++] = *c;
            }
        }
        want[len] = 0;
        ck_assert_msg(strncmp(name, want, len) == 0 && (!name[len] || strcmp(name + len, ".abi0") == 0),
                      "%s named %s", name, fr[n - 1].function);
        functions++;
        if (strncmp(name, "main.", 5) != 0)
            continue;
        for (uint64_t a = sym.st_value; a < sym.st_value + sym.st_size; a++) {
            size_t nd;
            const struct frame *df = symbolize(s, a + 1, &nd); /* symbolize takes return addresses */
            n = gopclntab_lookup(t, a, fr, 16);
            if (!nd || !df[0].line)
                continue;
            /* Go's DWARF leaves out some inlined closures (cgo's argument-checking main.f.func1)
             * that its table keeps: the innermost line is the same either way. */
            struct go_frame *tf = fr;
            while (n > nd && strstr(tf[0].function, ".func") && tf[0].line == df[0].line) {
                tf++;
                n--;
            }
            ck_assert_msg(n == nd, "%s+%#lx: %zu frames from the table (%s %s:%d), %zu from DWARF (%s %s:%d)", name,
                          (unsigned long)(a - sym.st_value), n, tf[0].function, tf[0].file, tf[0].line, nd,
                          df[0].function, df[0].file, df[0].line);
            for (size_t k = 0; k < n; k++) {
                ck_assert_str_eq(tf[k].function, df[k].function);
                ck_assert_int_eq(tf[k].line, df[k].line);
                ck_assert_str_eq(base(tf[k].file), base(df[k].file));
            }
            main_pcs++;
        }
    }
    ck_assert_uint_gt(functions, 1000);
    ck_assert_uint_gt(main_pcs, 100);
    ck_assert_uint_eq(gopclntab_lookup(t, lo - 1, (struct go_frame[1]){0}, 1), 0);
    symbolizer_free(s);
    p.modules = NULL;
    p.nmodules = 0;
    process_free(&p);
    gopclntab_free(t);
    elf_end(elf);
    close(fd);
}
END_TEST

/* Without DWARF (strip(1) of the same binary), the Go heap's layout comes from the table of Go
 * releases and the runtime's code: it must be what DWARF says, field by field. */
START_TEST(stripped_heap_layout_agrees_with_dwarf)
{
    const char *dir = getenv("CGOSCOPE_TESTPROGS");
    if (!dir)
        return; /* built without the Go test programs */
    char path[4096], cmd[8400], stripped[] = "/tmp/cgoscope-stripped-XXXXXX";
    snprintf(path, sizeof path, "%s/leaky", dir);
    close(mkstemp(stripped));
    snprintf(cmd, sizeof cmd, "strip -o '%s' '%s'", stripped, path);
    ck_assert_int_eq(system(cmd), 0);
    struct go_heap_layout d, c;
    ck_assert_int_eq(go_heap_layout_read(path, 0x1000, &d), 0);
    ck_assert_int_eq(d.from_code, 0);
    ck_assert_int_eq(go_heap_layout_read(stripped, 0x1000, &c), 0);
    ck_assert_int_eq(c.from_code, 1);
    ck_assert_uint_eq(c.mheap, d.mheap);
    ck_assert_uint_eq(c.allgs, d.allgs);
    ck_assert_uint_eq(c.allm, d.allm);
    ck_assert_uint_eq(c.m_g0, d.m_g0);
    ck_assert_uint_eq(c.m_curg, d.m_curg);
    ck_assert_uint_eq(c.m_alllink, d.m_alllink);
    ck_assert_uint_eq(c.mheap_allspans, d.mheap_allspans);
    ck_assert_uint_eq(c.span_start, d.span_start);
    ck_assert_uint_eq(c.span_npages, d.span_npages);
    ck_assert_uint_eq(c.span_state, d.span_state);
    ck_assert_uint_eq(c.g_stack_lo, d.g_stack_lo);
    ck_assert_uint_eq(c.g_stack_hi, d.g_stack_hi);
    ck_assert_uint_eq(c.g_sched_sp, d.g_sched_sp);
    ck_assert_uint_eq(c.g_syscallsp, d.g_syscallsp);
    ck_assert_uint_eq(c.g_status, d.g_status);
    ck_assert(d.threadentry >= c.text_lo && d.threadentry < c.text_hi); /* C code in .text, */
    ck_assert(d.threadentry < c.gotext_lo || d.threadentry >= c.gotext_hi); /* not Go code */
    unlink(stripped);
}
END_TEST

/* ---- cgo call sites of a stripped binary (docs/cgo-facts.md §10) ---- */

START_TEST(stub_names_give_sites)
{
    size_t pl, cl;
    const char *c;
    ck_assert_int_eq(cgs_stub_site("main._Cfunc_make_buffer", &pl, &c, &cl), CGS_SITE_CFUNC);
    ck_assert_uint_eq(pl, 4);
    ck_assert_uint_eq(cl, 11);
    ck_assert_int_eq(strncmp(c, "make_buffer", cl), 0);
    ck_assert_int_eq(cgs_stub_site("example.com/a.b/pkg._C2func_getaddrinfo", &pl, &c, &cl), CGS_SITE_C2FUNC);
    ck_assert_uint_eq(pl, strlen("example.com/a.b/pkg"));
    ck_assert_int_eq(cgs_stub_site("x/y._Cmacro_M", &pl, &c, &cl), CGS_SITE_CMACRO);
    ck_assert_int_eq(cgs_stub_site("main._cgo_cmalloc", &pl, &c, &cl), CGS_SITE_CFUNC);
    ck_assert_int_eq(strncmp(c, "_Cmalloc", cl), 0);
    /* cgo's Go-side helpers call no wrapper of their own; other names are no stubs */
    ck_assert_int_eq(cgs_stub_site("main._Cfunc_CString", &pl, &c, &cl), 0);
    ck_assert_int_eq(cgs_stub_site("main._Cfunc_GoStringN", &pl, &c, &cl), 0);
    ck_assert_int_eq(cgs_stub_site("main._Cfunc__CMalloc", &pl, &c, &cl), 0);
    ck_assert_int_eq(cgs_stub_site("main._Cfunc_", &pl, &c, &cl), 0);
    ck_assert_int_eq(cgs_stub_site("main._Cfunc_f.func1", &pl, &c, &cl), 0);
    ck_assert_int_eq(cgs_stub_site("_Cfunc_f", &pl, &c, &cl), 0);
    ck_assert_int_eq(cgs_stub_site("main.main", &pl, &c, &cl), 0);
}
END_TEST

/* The stub of Go 1.21 (exe) as objdump shows it, at 0x49a8a0: the load at +0x2a, the call to
 * runtime.cgocall (0x405e60) 18 bytes after it. */
START_TEST(stub_load_is_decoded)
{
    static const uint8_t stub[] = {
        0x64, 0x4c, 0x8b, 0x34, 0x25, 0xf8, 0xff, 0xff, 0xff,       /* mov %fs:-8,%r14 */
        0x49, 0x3b, 0x66, 0x10,                                     /* cmp 0x10(%r14),%rsp */
        0x76, 0x7c,                                                 /* jbe */
        0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x18,             /* push; mov; sub */
        0x48, 0xc7, 0x44, 0x24, 0x30, 0x00, 0x00, 0x00, 0x00,       /* movq $0,0x30(%rsp) */
        0x48, 0x8d, 0x4c, 0x24, 0x28, 0x48, 0x89, 0x4c, 0x24, 0x10, /* lea; mov */
        0x48, 0x8b, 0x05, 0xef, 0xa8, 0x0b, 0x00,                   /* mov 0xba8ef(%rip),%rax */
        0x48, 0x8b, 0x5c, 0x24, 0x10,                               /* mov 0x10(%rsp),%rbx */
        0x44, 0x0f, 0x57, 0xff,                                     /* xorps %xmm15,%xmm15 */
        0x64, 0x4c, 0x8b, 0x34, 0x25, 0xf8, 0xff, 0xff, 0xff,       /* mov %fs:-8,%r14 */
        0xe8, 0x78, 0xb5, 0xf6, 0xff,                               /* call runtime.cgocall */
    };
    uint64_t pc = 0x49a8a0;
    ck_assert_uint_eq(cgs_stub_pointer(stub, sizeof stub, pc, 0x405e60), 0x5551c0);
    ck_assert_uint_eq(cgs_stub_pointer(stub, sizeof stub, pc, 0x405e61), 0); /* no call to cgocall */
    ck_assert_uint_eq(cgs_stub_pointer(stub, sizeof stub - 1, pc, 0x405e60), 0); /* call cut off */
    int64_t off = 0;
    ck_assert_int_eq(cgs_stub_tlsg(stub, sizeof stub, &off), 1);
    ck_assert_int_eq(off, -8);
    static const uint8_t pie[] = {0x49, 0xc7, 0xc6, 0xf8, 0xff, 0xff, 0xff, 0x64, 0x4d, 0x8b, 0x36};
    off = 0;
    ck_assert_int_eq(cgs_stub_tlsg(pie, sizeof pie, &off), 1);
    ck_assert_int_eq(off, -8);
    ck_assert_int_eq(cgs_stub_tlsg(pie, sizeof pie - 1, &off), 0);
}
END_TEST

START_TEST(buildinfo_gives_release)
{
    uint8_t b[64] = "\xff Go buildinf:";
    b[14] = 8;
    b[15] = 2;
    b[32] = 8;
    memcpy(b + 33, "go1.26.8", 8);
    ck_assert_int_eq(cgs_buildinfo_minor(b, sizeof b), 26);
    b[32] = 9;
    memcpy(b + 33, "go1.21.13", 9);
    ck_assert_int_eq(cgs_buildinfo_minor(b, sizeof b), 21);
    ck_assert_int_eq(cgs_buildinfo_minor(b, 40), 0); /* cut short */
    b[15] = 0;                                     /* pointers, not inline strings (Go < 1.18) */
    ck_assert_int_eq(cgs_buildinfo_minor(b, sizeof b), 0);
}
END_TEST

/* The fast path of runtime/cgo's _cgo_wait_runtime_init_done (Go 1.26, gcc, at 0x4c92e0): it
 * loads cgo_context_function (0x5faa58) into %rbp and calls through it; the load of
 * runtime_init_done into %eax is no candidate. */
START_TEST(context_variable_is_decoded)
{
    static const uint8_t wait[] = {
        0x55, 0x53, 0x48, 0x83, 0xec, 0x18, 0x48, 0x8b, 0x2d, 0x6b, 0x17, 0x13, 0x00, 0x8b, 0x05, 0x79, 0x17, 0x13, 0x00, 0x83,
        0xf8, 0x02, 0x75, 0x28, 0x31, 0xc0, 0x48, 0x85, 0xed, 0x74, 0x15, 0x48, 0xc7, 0x44, 0x24, 0x08, 0x00, 0x00, 0x00, 0x00,
        0x48, 0x8d, 0x7c, 0x24, 0x08, 0xff, 0xd5, 0x48, 0x8b, 0x44, 0x24, 0x08, 0x48, 0x83, 0xc4, 0x18, 0x5b, 0x5d, 0xc3};
    uint64_t vars[4];
    ck_assert_uint_eq(cgs_called_pointers(wait, sizeof wait, 0x4c92e0, vars, 4), 1);
    ck_assert_uint_eq(vars[0], 0x5faa58);
    ck_assert_uint_eq(cgs_called_pointers(wait, 46, 0x4c92e0, vars, 4), 0); /* the call cut off */
    /* an export's wrapper: its first call (to the function above), then crosscall2 */
    static const uint8_t wrapper[] = {0x55, 0x89, 0xfd, 0x53, 0x48, 0x83, 0xec, 0x18, 0xe8, 0x43, 0x02, 0x00, 0x00,
                                      0xe8, 0xb3, 0x53, 0xfc, 0xff};
    ck_assert_uint_eq(cgs_first_call(wrapper, sizeof wrapper, 0xf8fc0), 0xf9210);
    ck_assert_int_eq(cgs_calls(wrapper, sizeof wrapper, 0xf8fc0, 0xf8fd2 + (uint64_t)(int64_t)(int32_t)0xfffc53b3), 1);
    ck_assert_int_eq(cgs_calls(wrapper, sizeof wrapper, 0xf8fc0, 0x1234), 0);
}
END_TEST

struct stub_check {
    Elf *elf;
    Elf_Data *syms;
    GElf_Shdr sh;
    size_t n;
};

/* Each decoded site must be what the symbol table says: the pointer is the variable
 * "<pkg>._cgo_<hash>_Cfunc_<f>" of the stub's package and function, and its value the wrapper
 * "_cgo_<hash>_Cfunc_<f>". */
static void check_stub_site(void *arg, const char *stub, uint64_t var, uint64_t wrapper)
{
    struct stub_check *c = arg;
    size_t pl, cl;
    const char *cname;
    int kind = cgs_stub_site(stub, &pl, &cname, &cl);
    ck_assert_int_ne(kind, 0);
    const char *want = kind == CGS_SITE_C2FUNC ? "_C2func_" : kind == CGS_SITE_CMACRO ? "_Cmacro_" : "_Cfunc_";
    int var_ok = 0, wrapper_ok = 0;
    for (size_t i = 0; i < c->sh.sh_size / c->sh.sh_entsize; i++) {
        GElf_Sym sym;
        gelf_getsym(c->syms, (int)i, &sym);
        const char *name = elf_strptr(c->elf, c->sh.sh_link, sym.st_name);
        if (!name)
            continue;
        size_t len = strlen(name);
        int ends = len > cl + strlen(want) && strncmp(name + len - cl, cname, cl) == 0 &&
                   strncmp(name + len - cl - strlen(want), want, strlen(want)) == 0;
        if (sym.st_value == var && GELF_ST_TYPE(sym.st_info) == STT_OBJECT && ends && strncmp(name, stub, pl) == 0 &&
            strncmp(name + pl, "._cgo_", 6) == 0)
            var_ok = 1;
        if (sym.st_value == wrapper && GELF_ST_TYPE(sym.st_info) == STT_FUNC && ends && strncmp(name, "_cgo_", 5) == 0)
            wrapper_ok = 1;
    }
    ck_assert_msg(var_ok, "%s: the decoded pointer 0x%llx is not its variable", stub, (unsigned long long)var);
    ck_assert_msg(wrapper_ok, "%s: the pointer holds 0x%llx, not its wrapper", stub, (unsigned long long)wrapper);
    c->n++;
}

START_TEST(stub_sites_agree_with_symbols)
{
    const char *dir = getenv("CGOSCOPE_TESTPROGS");
    if (!dir)
        return; /* built without the Go test programs */
    for (int pie = 0; pie < 2; pie++) {
        char path[4096];
        snprintf(path, sizeof path, "%s%s/leaky", dir, pie ? "-pie" : "");
        elf_version(EV_CURRENT);
        int fd = open(path, O_RDONLY);
        ck_assert_int_ge(fd, 0);
        struct stub_check c = {.elf = elf_begin(fd, ELF_C_READ, NULL)};
        struct gopclntab *t = gopclntab_open(c.elf);
        ck_assert_ptr_nonnull(t);
        Elf_Scn *scn = NULL;
        while ((scn = elf_nextscn(c.elf, scn)) != NULL)
            if (gelf_getshdr(scn, &c.sh) && c.sh.sh_type == SHT_SYMTAB)
                break;
        ck_assert_ptr_nonnull(scn);
        c.syms = elf_getdata(scn, NULL);
        int callbacks = -1;
        /* leaky calls _Cmalloc, churn_once, copy_label, free and make_buffer */
        ck_assert_uint_eq(gopclntab_cgo_sites(c.elf, t, &callbacks, check_stub_site, &c), 5);
        ck_assert_uint_eq(c.n, 5);
        ck_assert_int_eq(callbacks, 0); /* leaky does not link runtime.SetCgoTraceback */
        gopclntab_free(t);
        elf_end(c.elf);
        close(fd);
    }
}
END_TEST

Suite *robust_suite(void)
{
    Suite *s = suite_create("robust");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, exec_starts_a_new_entry);
    tcase_add_test(tc, shim_file_images_and_statistics);
    tcase_add_test(tc, shim_file_bad_headers);
    tcase_add_test(tc, header_check_verdicts);
    tcase_add_test(tc, gopclntab_agrees_with_symbols_and_dwarf);
    tcase_add_test(tc, stub_names_give_sites);
    tcase_add_test(tc, stub_load_is_decoded);
    tcase_add_test(tc, buildinfo_gives_release);
    tcase_add_test(tc, context_variable_is_decoded);
    tcase_add_test(tc, stub_sites_agree_with_symbols);
    tcase_add_test(tc, stripped_heap_layout_agrees_with_dwarf);
    suite_add_tcase(s, tc);
    return s;
}
