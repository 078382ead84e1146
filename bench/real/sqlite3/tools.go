// Package sqlite3 only pins github.com/mattn/go-sqlite3 for bench/real/run.sh, which builds that
// module's own test suite with `go test -c github.com/mattn/go-sqlite3`.
package sqlite3

import _ "github.com/mattn/go-sqlite3"
