/* The reachability scan's classes (analyzer/analysis/reach.c), on a memory image made here: memcheck's
 * rules, cycles, pointers into the middle, chains through possibly lost blocks, and malloc's own
 * pointers to the next chunk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis/process.h"
#include "analysis/reach.h"
#include "suites.h"

#define HEAP 0x10000000ull
#define ROOTS 0x20001000ull

static void put64(uint8_t *page, uint64_t base, uint64_t at, uint64_t v) { memcpy(page + (at - base), &v, 8); }

/* Writes an image of a [heap] page and an anonymous page of roots; returns its path. */
static void write_image(const char *path, const uint8_t *heap, const uint8_t *roots)
{
    const char maps[] = "10000000-10001000 rw-p 00000000 00:00 0 [heap]\n"
                        "20001000-20002000 rw-p 00000000 00:00 0 \n";
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t len = sizeof maps - 1, zero = 0;
    fwrite("CGSMEM01", 1, 8, f);
    fwrite(&len, 8, 1, f);
    fwrite(maps, 1, len, f);
    fwrite(&zero, 1, (8 - len % 8) % 8, f);
    uint64_t run[2] = {HEAP, 4096};
    fwrite(run, 8, 2, f);
    fwrite(heap, 1, 4096, f);
    run[0] = ROOTS;
    fwrite(run, 8, 2, f);
    fwrite(roots, 1, 4096, f);
    uint64_t end[2] = {0, 0};
    fwrite(end, 8, 2, f);
    fclose(f);
}

static int kind_of(const struct process *p, uint64_t addr)
{
    const struct reach_entry *e = reach_find(&p->reach, addr);
    return e ? e->kind : -1;
}

START_TEST(memcheck_classes)
{
    enum { A = 0x10, B = 0x100, C = 0x200, D = 0x300, E = 0x400, F = 0x500, G = 0x600, H = 0x700, I = 0x800 };
    static uint8_t heap[4096], roots[4096];
    memset(heap, 0, sizeof heap);
    memset(roots, 0, sizeof roots);
    put64(heap, HEAP, HEAP + A, HEAP + B);      /* A -> B */
    put64(heap, HEAP, HEAP + C + 8, HEAP + D);  /* C -> D */
    put64(heap, HEAP, HEAP + E, HEAP + F);      /* E -> F */
    put64(heap, HEAP, HEAP + G, HEAP + H);      /* G <-> H */
    put64(heap, HEAP, HEAP + H + 8, HEAP + G);
    put64(roots, ROOTS, ROOTS, HEAP + A);             /* a root to A's start */
    put64(roots, ROOTS, ROOTS + 16, HEAP + C + 16);   /* a root into C's middle */
    put64(roots, ROOTS, ROOTS + 32, HEAP + I + 32);   /* malloc's pointer to the chunk after I */
    char path[] = "/tmp/cgoscope-reach-XXXXXX";
    close(mkstemp(path));
    write_image(path, heap, roots);

    struct process p;
    process_init(&p);
    const uint64_t blocks[][2] = {{A, 32}, {B, 32}, {C, 64}, {D, 32}, {E, 32}, {F, 32}, {G, 32}, {H, 32}, {I, 40}};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        ck_assert_int_eq(liveset_alloc(&p.live, HEAP + blocks[i][0], blocks[i][1], 1, i + 1), 0);
    ck_assert_int_eq(reach_scan_image(&p, path), 0);
    ck_assert_int_eq(p.reach.state, REACH_SCANNED);
    ck_assert_int_eq(kind_of(&p, HEAP + A), REACH_REACHABLE);
    ck_assert_int_eq(kind_of(&p, HEAP + B), REACH_REACHABLE);
    ck_assert_int_eq(kind_of(&p, HEAP + C), REACH_POSSIBLE);
    ck_assert_int_eq(kind_of(&p, HEAP + D), REACH_POSSIBLE); /* a start pointer, but from a possibly lost block */
    ck_assert_int_eq(kind_of(&p, HEAP + E), REACH_DEFINITE);
    ck_assert_int_eq(kind_of(&p, HEAP + F), REACH_INDIRECT);
    ck_assert_int_eq(kind_of(&p, HEAP + G), REACH_DEFINITE); /* a cycle: its first block leads */
    ck_assert_int_eq(kind_of(&p, HEAP + H), REACH_INDIRECT);
    ck_assert_int_eq(kind_of(&p, HEAP + I), REACH_DEFINITE);
    const struct reach_entry *a = reach_find(&p.reach, HEAP + A), *b = reach_find(&p.reach, HEAP + B);
    ck_assert_uint_eq(a->root_addr, ROOTS); /* held: by the root word, and B through A */
    ck_assert_uint_eq(b->root_addr, ROOTS);
    ck_assert_int_eq(a->root, ROOT_C_HEAP);

    /* What a trace keeps of it reads back the same. */
    size_t len;
    void *saved = reach_serialize(&p.reach, &len);
    struct reach again;
    reach_init(&again);
    void *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, saved, len);
    ck_assert_int_eq(reach_take_saved(&again, copy, len), 1); /* taken over: not freed here */
    ck_assert_uint_eq(again.n, p.reach.n);
    ck_assert_int_eq(memcmp(again.v, p.reach.v, again.n * sizeof *again.v), 0);
    ((uint8_t *)saved)[len - 8] = 9; /* a kind out of range: refused */
    copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, saved, len);
    ck_assert_int_eq(reach_take_saved(&again, copy, len), -1);
    free(copy);
    free(saved);
    reach_free(&again);
    process_free(&p);
    unlink(path);
}
END_TEST

/* memcheck's length64 heuristic: a pointer to block+8 holds the block when its first word is its
 * size less 8 (SQLite's allocator), and only then. */
START_TEST(length_prefixed_blocks)
{
    enum { J = 0x10, K = 0x100, L = 0x200, M = 0x300 };
    static uint8_t heap[4096], roots[4096];
    memset(heap, 0, sizeof heap);
    memset(roots, 0, sizeof roots);
    put64(heap, HEAP, HEAP + J, 40);           /* J: 48 bytes, its length 40 first */
    put64(heap, HEAP, HEAP + J + 16, HEAP + M); /* J -> M */
    put64(heap, HEAP, HEAP + K, 7);            /* K: a first word that is not its length */
    put64(heap, HEAP, HEAP + L, 40);           /* L: its length first, but held by L+16 */
    put64(roots, ROOTS, ROOTS, HEAP + J + 8);
    put64(roots, ROOTS, ROOTS + 8, HEAP + K + 8);
    put64(roots, ROOTS, ROOTS + 16, HEAP + L + 16);
    char path[] = "/tmp/cgoscope-reach-XXXXXX";
    close(mkstemp(path));
    write_image(path, heap, roots);

    struct process p;
    process_init(&p);
    const uint64_t blocks[][2] = {{J, 48}, {K, 48}, {L, 48}, {M, 32}};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        ck_assert_int_eq(liveset_alloc(&p.live, HEAP + blocks[i][0], blocks[i][1], 1, i + 1), 0);
    ck_assert_int_eq(reach_scan_image(&p, path), 0);
    ck_assert_int_eq(kind_of(&p, HEAP + J), REACH_REACHABLE);
    ck_assert_int_eq(kind_of(&p, HEAP + M), REACH_REACHABLE);
    ck_assert_int_eq(kind_of(&p, HEAP + K), REACH_POSSIBLE);
    ck_assert_int_eq(kind_of(&p, HEAP + L), REACH_POSSIBLE);
    process_free(&p);
    unlink(path);
}
END_TEST

START_TEST(damaged_image)
{
    char path[] = "/tmp/cgoscope-reach-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_eq(write(fd, "CGSMEM01\xff\xff\xff\xff\xff\xff\xff\x7f", 16), 16);
    close(fd);
    struct process p;
    process_init(&p);
    ck_assert_int_eq(liveset_alloc(&p.live, HEAP, 16, 1, 1), 0);
    ck_assert_int_ne(reach_scan_image(&p, path), 0);
    ck_assert_int_eq(p.reach.state, REACH_NOT_SCANNED);
    ck_assert_ptr_nonnull(strstr(p.reach.why, "damaged"));
    process_free(&p);
    unlink(path);
}
END_TEST

Suite *reach_suite(void)
{
    Suite *s = suite_create("reach");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, memcheck_classes);
    tcase_add_test(tc, length_prefixed_blocks);
    tcase_add_test(tc, damaged_image);
    suite_add_tcase(s, tc);
    return s;
}
