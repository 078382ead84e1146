/*
 * Leak suppressions in LeakSanitizer's format: `leak:PATTERN` lines, `#` comments; also
 * `double_free:PATTERN` and `invalid_free:PATTERN` for lifetime errors (docs/lifetime.md). A pattern
 * matches a leak when it matches the function, the source file or the object (ELF file) of any
 * frame of its stack. `*` matches any run of characters; a pattern matches anywhere in the name
 * unless it starts with `^` (anchored at the start) or ends with `$` (anchored at the end).
 * Built-in defaults cover the Go runtime's C code, the dynamic loader and the C library's
 * process-wide caches (docs/ci.md).
 */
#ifndef CGOSCOPE_SUPPRESS_H
#define CGOSCOPE_SUPPRESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "output/report.h"
#include "util/u64map.h"

/* What a rule suppresses: the word before its colon. */
enum suppression_type {
    SUPP_LEAK = 0,        /* leak: */
    SUPP_DOUBLE_FREE = 1, /* double_free: (docs/lifetime.md) */
    SUPP_INVALID_FREE = 2, /* invalid_free: */
};

struct suppression {
    int type;      /* enum suppression_type */
    char *pattern; /* as written, after "leak:" (or the type's colon) */
    char *glob;    /* the pattern as a whole-string glob: anchors resolved into '*' or not */
    char *source;  /* "FILE:LINE", or "default" */
    uint64_t hits; /* leak sites matched */
};

struct suppressions {
    struct suppression *v;
    size_t n, cap;
    /* Between suppressions_memo_begin and _end: string address -> the rules it matches. */
    struct u64map *memo;
};

void suppressions_init(struct suppressions *s);
void suppressions_free(struct suppressions *s);
/* Adds the rules of a suppression file. Returns 0, or -1 with a message naming the file and
 * line in err. */
int suppressions_load(struct suppressions *s, const char *path, char *err, size_t errlen);
/* Adds the rules of text (the same format); origin names it in messages and rule sources. */
int suppressions_parse(struct suppressions *s, const char *text, const char *origin, char *err, size_t errlen);
int suppressions_add_defaults(struct suppressions *s);
/* The built-in defaults, in the file format. */
const char *suppressions_default_text(void);
/* The first leak rule matching any of these frames, or NULL. */
struct suppression *suppressions_match(struct suppressions *s, const struct report_frame *frames, size_t n);
/* While the strings of the frames to be matched stay where they are (one report's symbolizer),
 * each distinct string is matched against the rules once: a report's groups share most frames
 * (the go-sqlite3 suite's ~1,700 groups: 21 ms of matching without it, after the program ended). */
void suppressions_memo_begin(struct suppressions *s);
void suppressions_memo_end(struct suppressions *s);
/* The same for rules of one type (enum suppression_type). */
struct suppression *suppressions_match_type(struct suppressions *s, int type, const struct report_frame *frames,
                                            size_t n);
/* Whether pattern (a LeakSanitizer template: ^, $, *) matches name. */
int suppression_pattern_matches(const char *pattern, const char *name);

#endif
