/*
 * Where the Go code of a stripped executable lies, and its function table. Without .symtab
 * there is no runtime.text to look up, but Go's own function table (.gopclntab) survives
 * stripping, and the runtime's module data (runtime.firstmoduledata) points to it and holds
 * text and etext. Everything is read from memory, where the loader has applied the relocations
 * (PIE included). cgo_hooks.c then finds the cgo call sites in the table (docs/cgo-facts.md §10).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <string.h>

#include "cgoscope/gostubs.h"
#include "shim.h"

CGS_HIDDEN int cgs_unhooked_go_frames;

/* runtime.moduledata in pointer-sized words: pcHeader, six slices, findfunctab, minpc, maxpc,
 * text, etext (Go 1.16 to 1.26). */
#define MD_MINPC 20
#define MD_TEXT 22
#define MD_ETEXT 23

static const Elf64_Shdr *section(const uint8_t *img, size_t fsize, const Elf64_Ehdr *eh, const char *want)
{
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    if (eh->e_shstrndx >= eh->e_shnum)
        return NULL;
    const Elf64_Shdr *strs = &sh[eh->e_shstrndx];
    if (strs->sh_offset > fsize || strs->sh_size > fsize - strs->sh_offset)
        return NULL;
    size_t wlen = strlen(want) + 1;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_name < strs->sh_size && strs->sh_size - sh[i].sh_name >= wlen &&
            memcmp(img + strs->sh_offset + sh[i].sh_name, want, wlen) == 0)
            return &sh[i];
    return NULL;
}

static int header_ok(uintptr_t tab) { return cgs_pcln_header_ok((const uint8_t *)tab); }

/* The module data that points to the table at tab says where Go code lies. */
static int from_moduledata(const uint8_t *img, const Elf64_Ehdr *eh, uintptr_t bias, uintptr_t tab, uintptr_t text_lo,
                           uintptr_t text_hi, struct cgs_gotab *out)
{
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff);
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_PROGBITS || !(sh[i].sh_flags & SHF_WRITE) || !(sh[i].sh_flags & SHF_ALLOC))
            continue;
        const uintptr_t *w = (const uintptr_t *)(bias + sh[i].sh_addr);
        size_t nw = sh[i].sh_size / sizeof *w;
        for (size_t k = 0; k + MD_ETEXT < nw; k++) {
            if (w[k] != tab)
                continue;
            uintptr_t lo = w[k + MD_TEXT], hi = w[k + MD_ETEXT];
            if (lo >= text_lo && hi <= text_hi && lo < hi && w[k + MD_MINPC] >= lo) {
                out->text = lo;
                out->etext = hi;
                return 0;
            }
        }
    }
    return -1;
}

const Elf64_Shdr *cgs_elf_section(const uint8_t *img, size_t fsize, const char *name)
{
    return section(img, fsize, (const Elf64_Ehdr *)img, name);
}

int cgs_go_text_from_pclntab(const uint8_t *img, size_t fsize, uintptr_t bias, struct cgs_gotab *out)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)img;
    const Elf64_Shdr *pcln = section(img, fsize, eh, ".gopclntab");
    const Elf64_Shdr *text = section(img, fsize, eh, ".text");
    if (!text)
        return -1;
    uintptr_t text_lo = bias + text->sh_addr, text_hi = text_lo + text->sh_size;
    out->c_lo = text_lo;
    out->c_hi = text_hi;
    if (pcln) {
        out->tab = (const uint8_t *)(bias + pcln->sh_addr);
        out->tab_size = pcln->sh_size;
        return pcln->sh_size >= 72 && header_ok(bias + pcln->sh_addr) &&
                       from_moduledata(img, eh, bias, bias + pcln->sh_addr, text_lo, text_hi, out) == 0
                   ? 0
                   : -1;
    }
    /* Go 1.25 and older put the table of a position-independent executable in .data.rel.ro. */
    const Elf64_Shdr *relro = section(img, fsize, eh, ".data.rel.ro");
    if (!relro)
        return -1;
    uintptr_t end = bias + relro->sh_addr + relro->sh_size;
    for (uintptr_t a = bias + relro->sh_addr; a + 72 <= end; a += 8)
        if (header_ok(a) && from_moduledata(img, eh, bias, a, text_lo, text_hi, out) == 0) {
            out->tab = (const uint8_t *)a;
            out->tab_size = end - a;
            return 0;
        }
    return -1;
}
