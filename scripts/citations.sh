#!/usr/bin/env bash
# Checks that the documents the code cites exist (docs/architecture.md, "Citations"). In the
# source files of shim/, analyzer/, include/, bench/, scripts/ and tests/ (not the .md files):
#   - every path ending in .md names a file: from the repository's root, from the citing file's
#     folder when it starts with ../, from docs/ when it is a bare name; paths of generated
#     output (a .out/ folder, or one made from a shell variable) are skipped;
#   - every "invariant N" (or "invariants N and M") is a numbered invariant of
#     docs/architecture.md ("### N. ...");
#   - every "§N" is a section of docs/cgo-facts.md ("## §N. ...");
#   - a cited document followed on the same line by a comma and a quoted section name has a
#     heading that contains that name.
#   scripts/citations.sh [ROOT]
set -uo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root" || exit 2
bad=0
fail() { echo "$*"; bad=$((bad + 1)); }

mapfile -t files < <(find shim analyzer include bench scripts tests -type f \
  \( -name '*.c' -o -name '*.h' -o -name '*.S' -o -name '*.sh' -o -name '*.go' -o -name '*.py' \
     -o -name 'CMakeLists.txt' \) -not -path '*/.out/*' -not -path '*/.build/*' | LC_ALL=C sort)
files+=(CMakeLists.txt)

resolve() { # FILE CITED -> the path it names
  local dir
  dir=$(dirname "$1")
  case $2 in
    ../*) echo "$dir/$2" ;;
    */*) echo "$2" ;;
    *) echo "docs/$2" ;;
  esac
}

# Paths.
while IFS=: read -r file line cited; do
  case $cited in *\$*|*.out/*|.md) continue ;; esac
  [ -f "$(resolve "$file" "$cited")" ] || fail "$file:$line: cites $cited, which does not exist"
done < <(grep -noE '[$A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\b' "${files[@]}")

# Invariants.
invariants=" $(grep -oE '^### [0-9]+\.' docs/architecture.md | grep -oE '[0-9]+' | tr '\n' ' ')"
while IFS=: read -r file line text; do
  for n in $(echo "$text" | grep -oE '[0-9]+'); do
    case $invariants in *" $n "*) ;; *) fail "$file:$line: cites invariant $n, which docs/architecture.md does not have" ;; esac
  done
done < <(grep -noiE 'invariants? [0-9]+(,? (and|or) [0-9]+|, [0-9]+)*' "${files[@]}")

# Sections of docs/cgo-facts.md.
sections=" $(grep -oE '^## §[0-9]+\.' docs/cgo-facts.md | grep -oE '[0-9]+' | tr '\n' ' ')"
while IFS=: read -r file line text; do
  n=${text#§}
  case $sections in *" $n "*) ;; *) fail "$file:$line: cites §$n, which docs/cgo-facts.md does not have" ;; esac
done < <(grep -noE '§[0-9]+' "${files[@]}")

# Named sections.
while IFS=: read -r file line text; do
  cited=${text%%.md*}.md
  section=${text#*\"}
  section=${section%\"}
  case $cited in *\$*|*.out/*) continue ;; esac
  doc=$(resolve "$file" "$cited")
  [ -f "$doc" ] || continue # told above
  grep -E '^#+ ' "$doc" | grep -qF -- "$section" ||
    fail "$file:$line: cites \"$section\" of $cited, which has no heading with those words"
done < <(grep -noE '[A-Za-z0-9_./-]*[A-Za-z0-9_-]\.md\)?, "[^"]+"' "${files[@]}")

if [ "$bad" -gt 0 ]; then
  echo "citations: $bad citation(s) name no document or section (docs/architecture.md, \"Citations\")"
  exit 1
fi
