// sqlite-leak: a known leak next to a real C library's live memory, for bench/real/run.sh.
//
// It opens an in-memory SQLite database (github.com/mattn/go-sqlite3), keeps the *sql.DB in a
// Go global, runs N queries, and in each iteration leaks one C.CString of leakSize bytes (the
// string and its NUL) by passing it to a C function that keeps nothing. It then runs the same
// number of queries again, leaking nothing, so that stale copies of the last leaked pointers on
// the stacks are overwritten, and exits with the database still open.
//
// Ground truth: exactly N blocks of leakSize bytes are lost, all at the C.CString line in
// leakOne; SQLite's memory is still held through db (SQLite hands out malloc's pointer + 8 in
// this build, so a conservative scan sees only pointers into its blocks' middles).
package main

/*
#include <string.h>

// Looks at the string and keeps nothing: the caller's C.CString is lost when it returns.
static size_t name_len(const char *s) { return strlen(s); }
*/
import "C"

import (
	"database/sql"
	"flag"
	"fmt"
	"os"

	_ "github.com/mattn/go-sqlite3"
)

const leakSize = 32 // bytes of each leaked C.CString: 31 characters and the NUL

var db *sql.DB // held until exit: SQLite's memory stays reachable from here

//go:noinline
func leakOne(i int) int {
	cs := C.CString(fmt.Sprintf("cgoscope-leak-%017d", i)) // the leak: never freed
	return int(C.name_len(cs))
}

func query(i int) int {
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t WHERE v <= ?", i).Scan(&n); err != nil {
		fmt.Fprintln(os.Stderr, "sqlite-leak:", err)
		os.Exit(1)
	}
	return n
}

func main() {
	n := flag.Int("n", 1000, "queries, each leaking one C.CString")
	flag.Parse()
	var err error
	if db, err = sql.Open("sqlite3", "file:leak?mode=memory&cache=shared"); err != nil {
		fmt.Fprintln(os.Stderr, "sqlite-leak:", err)
		os.Exit(1)
	}
	db.SetMaxOpenConns(1)
	if _, err = db.Exec("CREATE TABLE t (v INTEGER); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100) INSERT INTO t SELECT x FROM c"); err != nil {
		fmt.Fprintln(os.Stderr, "sqlite-leak:", err)
		os.Exit(1)
	}
	sum := 0
	for i := 0; i < *n; i++ {
		sum += query(i % 100)
		if leakOne(i) != leakSize-1 {
			panic("leakOne: wrong length")
		}
	}
	for i := 0; i < *n; i++ { // the same work, no leak: overwrites stale pointers on the stacks
		sum += query(i % 100)
	}
	fmt.Printf("sqlite-leak: %d queries, %d C.CString of %d bytes leaked, sum %d\n", 2**n, *n, leakSize, sum)
}
