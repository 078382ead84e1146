/* What a Go executable says about itself: its build info (Go version, module paths). */
#ifndef CGOSCOPE_GOBUILD_H
#define CGOSCOPE_GOBUILD_H

#include <stddef.h>

struct gobuild {
    char go_version[64];
    char main_path[512]; /* "path" line: the main package's import path */
    char **modules;      /* the main module and every dependency */
    size_t nmodules;
};

/* Reads .go.buildinfo of the ELF file at path. Returns 0 when found, -1 otherwise (not a Go
 * binary, or a format older than Go 1.18). */
int gobuild_read(const char *path, struct gobuild *b);
void gobuild_free(struct gobuild *b);
/* The minor release of a Go version string: "go1.23.5" -> 23 (also "go1.23rc1", "go1.23beta2",
 * "go1.23.5 X:..." with a GOEXPERIMENT); -1 for anything else (a devel build, Go 2). */
int gobuild_minor(const char *go_version);
/* Is this Go package (or symbol "<pkg>.<name>") the user's code, rather than the standard
 * library or runtime? With build info: it belongs to the main module or a dependency, or is
 * package main. Without: the first path element holds a dot (a module path), or it is main. */
int gobuild_is_user_package(const struct gobuild *b, const char *pkg_or_symbol);

#endif
