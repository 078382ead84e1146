#!/usr/bin/env bash
# Lists the functions of shim/ and analyzer/ longer than 120 lines, and fails when one of them
# has no comment directly above it that says why it is long (docs/architecture.md, "Long
# functions"). A function runs from its signature (the last line at column 0 with a "(" before
# a "{" alone at column 0) to the first "}" at column 0 after it. The comment is the block of
# comment lines that ends on the line just above the signature; it must contain the word "long"
# (any case), as in "/* Long: one case per record type, kept together. */".
#   scripts/long-functions.sh [-v] [ROOT]   -v: list the excused ones too; ROOT: the repository
set -euo pipefail
verbose=0
if [ "${1:-}" = -v ]; then verbose=1; shift; fi
root=${1:-$(dirname "$0")/..}
cd "$root"
limit=${CGOSCOPE_LONG_LIMIT:-120}
files=$(find shim analyzer -name '*.c' | LC_ALL=C sort)
# shellcheck disable=SC2086
awk -v limit="$limit" -v verbose="$verbose" '
function flush_file() { delete text; nlines = 0 }
function excused(start,   i, l) {
    for (i = start - 1; i >= 1; i--) {
        l = text[i]
        if (l !~ /^[ \t]*(\/\*|\*|\/\/)/ && l !~ /\*\/[ \t]*$/)
            break
        if (tolower(l) ~ /(^|[^a-z])long([^a-z]|$)/)
            return 1
    }
    return 0
}
FNR == 1 { flush_file(); sig = 0; infn = 0 }
{
    text[FNR] = $0
    if (!infn && $0 ~ /^[A-Za-z_]/ && $0 ~ /\(/ && $0 !~ /;[ \t]*$/) {
        sig = FNR; sigtext = $0
    } else if (!infn && $0 ~ /^\{[ \t]*$/ && sig) {
        infn = 1
    } else if (infn && $0 ~ /^\}/) {
        infn = 0
        n = FNR - sig + 1
        if (n > limit) {
            name = sigtext
            gsub(/__attribute__[ \t]*\(\([^)]*\)\)/, "", name)
            sub(/[ \t]*\(.*/, "", name)
            sub(/.*[^A-Za-z0-9_]/, "", name)
            if (excused(sig)) {
                if (verbose)
                    printf "%s:%d: %s: %d lines (the comment above says why)\n", FILENAME, sig, name, n
            } else {
                printf "%s:%d: %s: %d lines, and no comment above it says why it is long\n", FILENAME, sig, name, n
                bad++
            }
        }
        sig = 0
    } else if (!infn && $0 ~ /^[}#;]|^$/) {
        sig = 0
    }
}
END {
    if (bad) {
        printf "long-functions: %d function(s) over %d lines without a why-comment: split them, or put a comment saying why (with the word \"long\") directly above (docs/architecture.md, \"Long functions\")\n", bad, limit
        exit 1
    }
}' $files
