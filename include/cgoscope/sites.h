/*
 * Limits shared by the shim's C code, its assembly stubs (shim/stubs_x86_64.S) and the analyzer.
 * Plain numbers only: this header is read by the assembler too.
 */
#ifndef CGOSCOPE_SITES_H
#define CGOSCOPE_SITES_H

/* cgo sites the shim can hook: one stub each (shim/stubs_x86_64.S), so site indexes are below
 * this, and a record or statistics entry naming a higher one is corrupt. */
#define CGS_NSTUBS 4096

#endif
