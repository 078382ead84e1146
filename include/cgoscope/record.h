/*
 * The one contract between the shim (libcgoscope.so, inside the traced program) and the
 * analyzer (cgoscope). Everything that crosses from one to the other is defined here:
 * the layout of the shared-memory channel and the records written into it.
 * docs/record-format.md explains the why of each field.
 */
#ifndef CGOSCOPE_RECORD_H
#define CGOSCOPE_RECORD_H

#include <stdint.h>

#include "cgoscope/sites.h"

#define CGS_SHM_MAGIC 0x4d48535343474f43ull /* "COGCSSHM" little-endian */
/* 2: FREE records carry the free's stack, PROC's aux says whether the process is a fork() child.
 * A trace file of format 1 is still read (docs/record-format.md). */
#define CGS_FORMAT_VERSION 2u

/* Environment variables the launcher sets for the shim. */
/* "<fd>:<token hex>:<analyzer pid>:<analyzer's fd>": a process that did not inherit the fd
 * (a child the program started) opens /proc/<analyzer pid>/fd/<analyzer's fd>, which only the
 * same user can. */
#define CGS_ENV_CHANNEL "CGOSCOPE_CHANNEL"
#define CGS_ENV_FOLLOW "CGOSCOPE_FOLLOW"     /* "0": only the first process is traced */
/* Without the launcher: the shim records into this file itself (`cgoscope env -o FILE`). */
#define CGS_ENV_TRACE "CGOSCOPE_TRACE"
#define CGS_ENV_TIMING "CGOSCOPE_TIMING"     /* "full", "sampled:N" or "off" */
#define CGS_ENV_TIMELINE "CGOSCOPE_TIMELINE" /* "1": send a CALL record for each timed call */

/* ---- Shared-memory channel ------------------------------------------------------------ */

enum cgs_chunk_state {
    CGS_CHUNK_FREE = 0,    /* owned by nobody; a producer may claim it */
    CGS_CHUNK_CLAIMED = 1, /* a producer is setting it up; the analyzer skips it */
    CGS_CHUNK_WRITING = 2, /* a thread appends records; `committed` says how far */
    CGS_CHUNK_FULL = 3,    /* the thread moved on; once drained the analyzer frees it */
};

enum cgs_clock {
    CGS_CLOCK_TSC = 1,  /* rdtsc ticks; the analyzer converts to ns */
    CGS_CLOCK_MONO = 2, /* CLOCK_MONOTONIC nanoseconds */
};

#define CGS_GO_LAYOUTS 32

struct cgs_shm_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_size; /* bytes before the first chunk descriptor */
    uint64_t token;       /* random; the shim refuses a channel whose token differs */
    uint32_t nchunks;
    uint32_t chunk_size;
    uint64_t chunks_offset; /* from the start of the mapping */
    uint32_t analyzer_pid;
    uint32_t clock; /* enum cgs_clock, set by the shim at attach */
    _Atomic uint32_t owner_pid;     /* first process to attach; others stay untraced */
    _Atomic uint32_t analyzer_gone; /* set by the analyzer when it stops draining */
    _Atomic uint64_t events_lost;   /* records the shim could not deliver */
    _Atomic uint64_t producer_waits; /* times a producer waited for a free chunk */
    _Atomic uint64_t chunk_seq;      /* order in which chunks were claimed */
    _Atomic uint32_t attached;       /* processes that attached */
    uint32_t flags;                  /* CGS_HF_* */
    /* File mode (no analyzer): chunks are never freed; the next one is taken from here and
     * the file grows to hold it. */
    _Atomic uint32_t next_chunk;
    _Atomic uint32_t disk_full; /* the file could not grow: later records were lost */
    uint64_t start_ticks, start_ns; /* clock at creation, to relate ticks to time later */
    /* One more than the highest chunk index ever claimed: readers need look no further. */
    _Atomic uint32_t high_water;
    /* Times a thread found every chunk held by live writers for CGS_EXHAUSTED_WAIT_MS and went on
     * without one (its records until it got one are counted in events_lost). */
    _Atomic uint32_t exhausted;
    /* Chunks marked FULL and not yet drained. Past CGS_MAX_UNDRAINED a producer waits for the
     * analyzer (docs/architecture.md, invariant 1: wait, do not drop), so a program faster than
     * the analyzer cannot make the channel hold more than that much. */
    _Atomic uint32_t undrained;
    /* Launcher mode: where the Go runtime of each executable the run started keeps g.m,
     * m.ncgocall and m.procid (from its DWARF), for the shim's store-free cgo calls
     * (docs/crossings.md). The analyzer claims an entry (go_layouts_n), fills it, then sets
     * its ready; a process uses the entry whose file (exe_dev, exe_ino) is its executable. */
    _Atomic uint32_t go_layouts_n;
    struct cgs_go_layout {
        _Atomic uint32_t ready;
        uint32_t g_m, m_ncgocall, m_procid;
        uint64_t exe_dev, exe_ino;
    } go_layouts[CGS_GO_LAYOUTS];
    /* The analyzer's doorbell, a futex word (launcher mode): the analyzer sets it to 1 before it
     * sleeps waiting for work, and sleeps only while it stays 1. A producer that marks a chunk
     * FULL, or waits for a free one, and finds it 1 sets it to 0 and wakes the analyzer: one
     * system call per 64 KiB of records at most, and none while the analyzer is awake. */
    _Atomic uint32_t analyzer_sleeping;
};
_Static_assert(sizeof(struct cgs_shm_header) <= 4096, "the channel's header must fit its first page");

#define CGS_MAX_UNDRAINED 512u /* 32 MiB of records waiting */
/* A producer that fills a chunk wakes a sleeping analyzer only once this many wait: its sleep is
 * bounded anyway (a few ms), and each wake is a system call in the program and a context switch
 * in the analyzer (one per 64 KiB chunk was ~1,800 on the go-sqlite3 suite). */
#define CGS_WAKE_UNDRAINED 4u

#define CGS_HF_FILE 1u /* the channel is a trace file written by the shim alone */

/* Every channel, memfd or trace file, is laid out the same way: a header page, the chunk
 * descriptors (rounded up to whole pages), then the chunks, all of CGS_CHUNK_SIZE bytes. */
#define CGS_HEADER_SIZE 4096u
#define CGS_CHUNK_SIZE (64u * 1024u)
/* The launcher's channel: chunks of a memfd, which holds memory only for pages once touched, and
 * producers claim the lowest free chunk, so a large count costs nothing until threads need it. */
#define CGS_CHANNEL_CHUNKS 65536u
/* A trace file (`cgoscope env`) grows a chunk at a time up to this many: 4 GiB of records. */
#define CGS_FILE_MAX_CHUNKS 65536u
/* Readers take a larger chunk size as a sign of a damaged header. */
#define CGS_MAX_CHUNK_SIZE (16u << 20)
#define CGS_EXHAUSTED_WAIT_MS 2000u

enum cgs_chunk_kind {
    CGS_KIND_RECORDS = 0, /* a stream of records */
    CGS_KIND_STATS = 1,   /* a thread's call statistics (struct cgs_stats_chunk), never freed */
};

struct cgs_chunk_desc {
    _Atomic uint32_t state;     /* enum cgs_chunk_state */
    uint32_t tid;               /* writer thread, valid from WRITING on */
    _Atomic uint64_t seq;       /* claim order, valid from WRITING on */
    _Atomic uint32_t committed; /* bytes of whole records, stored with release */
    uint32_t kind;              /* enum cgs_chunk_kind, valid from WRITING on */
    uint32_t pid;               /* writer process, valid from WRITING on */
    uint32_t image; /* random, one per program image (exec starts a new one), valid from WRITING on */
};

/* ---- Call statistics ------------------------------------------------------------------ */
/* Counting every cgo call with a record would cost more than the call. Instead each thread
 * keeps its counters in a chunk of the channel (so they survive exit_group like records do),
 * updated in place by that thread alone; the analyzer reads them when the process ends. */

#define CGS_STATS_MAGIC 0x53544154u /* "TATS" */
#define CGS_HIST_BUCKETS 160        /* 4 per power of two of clock ticks, up to 2^40 */

enum cgs_stats_kind { CGS_STATS_CALL = 1, CGS_STATS_CALLBACK = 2 };

#define CGS_SF_ALWAYS 1u  /* slow site: every call is timed */
#define CGS_SF_SAMPLED 2u /* the next timed call is a random sample, not an exact one */
#define CGS_LEAN_OPEN 1u
#define CGS_LEAN_FLUSHED 2u
#define CGS_SF_CALLERS_SAMPLED 4u /* --timing=full: callers were noted on 1 call in 16 */

struct cgs_site_stats {
    uint32_t kind;      /* enum cgs_stats_kind; 0 = unused slot */
    uint32_t site;      /* CALL: the cgo site index */
    uint64_t key;       /* CALLBACK: return address in the C export wrapper */
    uint64_t calls;     /* exact */
    uint64_t timed;     /* calls whose time was measured */
    uint64_t ticks_sum; /* over timed calls */
    uint64_t ticks_max;
    uint64_t ticks_min;
    uint64_t exact_calls; /* calls made while every call of the site was timed (the rest are sampled) */
    uint64_t exact_ticks; /* their total */
    uint32_t countdown;   /* calls until the next timed one (the owner thread's bookkeeping) */
    uint32_t flags;       /* CGS_SF_* */
    uint32_t hist[CGS_HIST_BUCKETS]; /* timed calls by duration, see cgs_hist_bucket */
};

struct cgs_caller_stats {
    uint32_t site;
    uint32_t reserved;
    uint64_t pcs[4]; /* Go return addresses 2-5 frames out from the hook: the caller is among them */
    uint64_t count;  /* timed calls seen from here */
    uint64_t exact;  /* of which made while every call of the site was timed */
};

#define CGS_STATS_SITES 54
#define CGS_STATS_CALLERS 440

struct cgs_stats_chunk {
    uint32_t magic;
    uint32_t tid;
    uint32_t nsites;     /* slots used in sites[] */
    uint32_t ncallers;   /* slots used in callers[] (open addressing: any may be used) */
    uint64_t gap_min;    /* least ticks from a cgo call's return to the thread's next cgo call */
    uint64_t gap_count;  /* gaps measured */
    uint64_t callers_dropped; /* timed calls whose caller found no free slot */
    /* CGS_LEAN_*: 1 while calls of this thread may be counted by a store-free run that is still
     * open; the shim's exit helper sets 2 once it has added them (docs/crossings.md). */
    _Atomic uint64_t lean;
    uint64_t lean_calls; /* calls of this thread's sites counted without the hook storing anything */
    uint64_t reserved[1];
    struct cgs_site_stats sites[CGS_STATS_SITES];
    struct cgs_caller_stats callers[CGS_STATS_CALLERS];
};

/* A stats chunk must fit in one channel chunk (64 KiB): */
_Static_assert(sizeof(struct cgs_stats_chunk) <= CGS_CHUNK_SIZE, "stats chunk larger than a channel chunk");

/* Histogram bucket of a duration in ticks: 4 buckets per power of two. */
static inline unsigned cgs_hist_bucket(uint64_t ticks)
{
    if (ticks < 4)
        return (unsigned)ticks;
    unsigned lg = 63u - (unsigned)__builtin_clzll(ticks);
    unsigned sub = (unsigned)(ticks >> (lg - 2)) & 3u;
    unsigned b = lg * 4u + sub - 4u;
    return b < CGS_HIST_BUCKETS ? b : CGS_HIST_BUCKETS - 1;
}

/* Lowest duration in ticks that falls in bucket b (inverse of cgs_hist_bucket). */
static inline uint64_t cgs_hist_lower(unsigned b)
{
    if (b < 4)
        return b;
    unsigned lg = (b + 4u) / 4u, sub = (b + 4u) % 4u;
    return ((uint64_t)4 + sub) << (lg - 2);
}

/* ---- Setting up and checking a channel's header ------------------------------------------ */
/* One definition for both sides: the launcher (analyzer/ingest/channel.c) and the shim's trace file
 * (shim/channel.c) lay a header out with cgs_header_init; the shim, before writing into a channel,
 * and the analyzer, before reading a trace file, check it with cgs_header_check. */

/* Where the chunks of a channel of nchunks chunks begin: after the header page and the
 * descriptors, rounded up to a page. */
static inline uint64_t cgs_chunks_offset(uint32_t nchunks)
{
    uint64_t descs = ((uint64_t)nchunks * sizeof(struct cgs_chunk_desc) + 4095u) & ~(uint64_t)4095u;
    return CGS_HEADER_SIZE + descs;
}

/* Bytes of a whole channel of nchunks chunks. */
static inline uint64_t cgs_channel_size(uint32_t nchunks)
{
    return cgs_chunks_offset(nchunks) + (uint64_t)nchunks * CGS_CHUNK_SIZE;
}

/* Lays out the geometry of a new channel (flags: CGS_HF_*). The magic is left to the caller, who
 * stores it last when others may already be looking (a trace file). */
static inline void cgs_header_init(struct cgs_shm_header *h, uint32_t nchunks, uint32_t flags)
{
    h->version = CGS_FORMAT_VERSION;
    h->header_size = CGS_HEADER_SIZE;
    h->nchunks = nchunks;
    h->chunk_size = CGS_CHUNK_SIZE;
    h->chunks_offset = cgs_chunks_offset(nchunks);
    h->flags = flags;
}

/* How cgs_header_check is asked. */
#define CGS_CHECK_WRITE 1u /* the caller writes records into every chunk: the current format only,
                            * and the chunks must all lie within size */
#define CGS_CHECK_FILE 2u  /* a trace file's header (CGS_HF_FILE); without it, a launcher's memfd */
/* The oldest format a reader still reads (1: FREE records without a stack). */
#define CGS_FORMAT_VERSION_OLDEST 1u

enum cgs_header_verdict {
    CGS_HEADER_OK = 0,
    CGS_HEADER_CUT_SHORT, /* size does not hold the header, its descriptors or (CGS_CHECK_WRITE) its chunks */
    CGS_HEADER_NOT_OURS,  /* no cgoscope magic */
    CGS_HEADER_FORMAT,    /* another format version, or the other kind of channel */
    CGS_HEADER_CORRUPT,   /* sizes and offsets that do not fit together */
};

/* Checks a channel's header h, of a mapping or file of size bytes, before anything else of it
 * is used. Whatever is in it was written inside the traced program (docs/architecture.md,
 * invariant 7): nothing is taken on trust. */
static inline enum cgs_header_verdict cgs_header_check(const struct cgs_shm_header *h, uint64_t size,
                                                       unsigned how)
{
    if (size < sizeof *h)
        return CGS_HEADER_CUT_SHORT;
    if (h->magic != CGS_SHM_MAGIC)
        return CGS_HEADER_NOT_OURS;
    int file = (h->flags & CGS_HF_FILE) != 0;
    if ((how & CGS_CHECK_WRITE) ? h->version != CGS_FORMAT_VERSION
                                : h->version < CGS_FORMAT_VERSION_OLDEST || h->version > CGS_FORMAT_VERSION)
        return CGS_HEADER_FORMAT;
    if (file != ((how & CGS_CHECK_FILE) != 0))
        return CGS_HEADER_FORMAT;
    uint64_t desc_end = (uint64_t)h->header_size + (uint64_t)h->nchunks * sizeof(struct cgs_chunk_desc);
    if (h->header_size < sizeof *h || (h->header_size & 7) || h->chunk_size < sizeof(struct cgs_stats_chunk) ||
        h->chunk_size > CGS_MAX_CHUNK_SIZE || (h->chunk_size & 7) || (h->chunks_offset & 7) ||
        desc_end > h->chunks_offset)
        return CGS_HEADER_CORRUPT;
    if (desc_end > size)
        return CGS_HEADER_CUT_SHORT;
    if ((how & CGS_CHECK_WRITE) &&
        (h->chunks_offset > size || (uint64_t)h->nchunks * h->chunk_size > size - h->chunks_offset))
        return CGS_HEADER_CUT_SHORT;
    return CGS_HEADER_OK;
}

/* ---- Records -------------------------------------------------------------------------- */
/* Every record starts with this header; `size` covers the header and is a multiple of 8.
 * A reader skips records of unknown type by their size. */
struct cgs_rec_hdr {
    uint16_t type;
    uint16_t aux;
    uint32_t size;
};

enum cgs_rec_type {
    CGS_REC_PROC = 1,    /* the process attached: pid, ppid, exe */
    CGS_REC_MODULE = 2,  /* a loaded ELF object and its address range */
    CGS_REC_SITE = 3,    /* a hooked cgo wrapper pointer */
    CGS_REC_STACK = 4,   /* a distinct stack, sent once, named by its 64-bit id */
    CGS_REC_ALLOC = 5,   /* a block became live */
    CGS_REC_FREE = 6,    /* a block stopped being live */
    CGS_REC_REALLOC = 7, /* a block moved or changed size */
    CGS_REC_CALL = 8,    /* a timed cgo call, for --timeline */
    CGS_REC_REALLOC_BEGIN = 9, /* a realloc of a block begins: committed before the real realloc */
    CGS_REC_REALLOC_FAIL = 10, /* the realloc the thread began returned NULL: the block is unchanged */
    CGS_REC_TYPE_MAX = 10,
};

/* aux of CGS_REC_ALLOC and CGS_REC_REALLOC: which function made the block. */
enum cgs_alloc_fn {
    CGS_FN_MALLOC = 1,
    CGS_FN_CALLOC,
    CGS_FN_REALLOC,
    CGS_FN_REALLOCARRAY,
    CGS_FN_POSIX_MEMALIGN,
    CGS_FN_ALIGNED_ALLOC,
    CGS_FN_MEMALIGN,
    CGS_FN_VALLOC,
    CGS_FN_PVALLOC,
    CGS_FN_STRDUP,
    CGS_FN_STRNDUP,
    CGS_FN_MAX = CGS_FN_STRNDUP,
};

/* aux of CGS_REC_PROC: the clock (enum cgs_clock) in the low byte, and these flags. */
#define CGS_PROC_CLOCK_MASK 0xffu
#define CGS_PROC_FORKED 0x100u /* a child of fork() without exec: its heap began as its parent's */

struct cgs_rec_proc {
    struct cgs_rec_hdr h; /* aux: see CGS_PROC_* */
    uint32_t pid;
    uint32_t ppid;
    uint64_t ts;   /* clock at attach */
    uint64_t mono_ns; /* CLOCK_MONOTONIC at attach, to relate ticks to time */
    uint32_t argv_len; /* bytes of NUL-separated arguments after exe's NUL (from /proc/self/cmdline) */
    /* The exit helper (shim/lean.c), a process sharing this one's address space, which keeps it
     * readable after the process ends until the analyzer has scanned it for what still points
     * to each unfreed block (docs/reachability.md); 0: none. */
    uint32_t helper_pid;
    char exe[];    /* NUL-terminated, then the arguments, padded to 8 */
};

struct cgs_rec_module {
    struct cgs_rec_hdr h; /* aux: 1 for the main executable */
    uint64_t bias;        /* load bias (dlpi_addr) */
    uint64_t lo, hi;      /* lowest and highest address of its PT_LOAD segments */
    char path[];          /* NUL-terminated, padded to 8 */
};

/* aux of CGS_REC_SITE */
enum cgs_site_kind { CGS_SITE_CFUNC = 1, CGS_SITE_C2FUNC = 2, CGS_SITE_CMACRO = 3 };

struct cgs_rec_site {
    struct cgs_rec_hdr h; /* aux: enum cgs_site_kind */
    uint32_t site;        /* index used in stacks */
    uint32_t reserved;
    uint64_t wrapper; /* address of the C wrapper */
    char symbol[];    /* the Go variable, "<pkgpath>._cgo_<hash>_Cfunc_<name>"; stripped: the Go stub,
                         "<pkgpath>._Cfunc_<name>" or "<pkgpath>._cgo_cmalloc" */
};

#define CGS_NO_SITE 0xffffffffu
#define CGS_MAX_FRAMES 128
/* In a stack's pcs: Go frames were left out here (a very deep stack keeps its innermost and
 * outermost frames). */
#define CGS_PC_OMITTED 1u

struct cgs_rec_stack {
    struct cgs_rec_hdr h; /* aux: number of C frames; the rest are Go frames */
    uint64_t id;
    uint32_t site; /* innermost cgo call in progress, or CGS_NO_SITE */
    uint32_t nframes;
    uint64_t pcs[]; /* return addresses, innermost first */
};

struct cgs_rec_alloc {
    struct cgs_rec_hdr h; /* aux: enum cgs_alloc_fn */
    uint64_t ts;          /* read after the block was obtained */
    uint64_t addr;
    uint64_t size;
    uint64_t stack;
};

struct cgs_rec_free {
    struct cgs_rec_hdr h;
    uint64_t ts; /* read before the block was released */
    uint64_t addr;
    /* The free's stack, as for an allocation (C frames, then the Go frames of the cgo call in
     * progress); 0 when not recorded. Format 1 had no such field: its FREE records are
     * CGS_REC_FREE_V1_SIZE bytes, and readers take the stack as 0. */
    uint64_t stack;
};
#define CGS_REC_FREE_V1_SIZE 24u
/* aux of a FREE record of CGS_REC_FREE_V1_SIZE bytes (format 2 on): its stack is the one of the
 * previous FREE record (of either size) of the same thread, so that a run of frees from one place
 * costs no more bytes than before (docs/lifetime.md, "What it costs"). Without it, a short record's
 * stack is 0. */
#define CGS_FREE_SAME_STACK 1u

struct cgs_rec_realloc {
    struct cgs_rec_hdr h; /* aux: enum cgs_alloc_fn */
    uint64_t ts_free;     /* before: when the old block stopped being ours */
    uint64_t ts;          /* after: when the new block became live */
    uint64_t old_addr;
    uint64_t addr;
    uint64_t size;
    uint64_t stack;
};

/* A realloc of a block writes REALLOC_BEGIN and commits it before it calls the real realloc, which
 * may abort on an address that is not a live block ("realloc(): invalid pointer", "double free or
 * corruption"): the record is the evidence that survives (docs/lifetime.md). The same thread's
 * next allocation event ends it, written when the real realloc returns: the REALLOC record (moved
 * or resized; its ts_free and stack are this record's), a FREE of old_addr (realloc(p, 0) freed
 * it), or REALLOC_FAIL (NULL returned, nothing changed). A BEGIN still open when the process ends
 * is a realloc the process died in. A reader that knows neither type skips both by their size and
 * sees the REALLOC record as before. */
struct cgs_rec_realloc_begin {
    struct cgs_rec_hdr h; /* aux: enum cgs_alloc_fn */
    uint64_t ts_free;     /* read before the real realloc: the REALLOC record's ts_free */
    uint64_t old_addr;
    uint64_t stack;
};

struct cgs_rec_realloc_fail {
    struct cgs_rec_hdr h;
    uint64_t old_addr;
};

struct cgs_rec_call {
    struct cgs_rec_hdr h;
    uint32_t site;
    uint32_t reserved;
    uint64_t t0, t1; /* clock at entry and return */
};

#define CGS_ALIGN8(n) (((n) + 7u) & ~7u)

#endif
