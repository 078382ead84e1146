package main

// The shim's own C unwinder (shim/unwind.c) against libunwind, and the analyzer's fallback when
// it cannot have a pidfd of the program (issue 14).

import (
	"bytes"
	"fmt"
)

func init() {
	cases["robust-unwind-check"] = caseUnwindCheck
	cases["robust-nopidfd"] = caseNoPidfd
}

// caseUnwindCheck: with CGOSCOPE_UNWIND=check the shim unwinds every stack both ways and prints
// each difference; there must be none. The leaks must hold with either unwinder alone.
func caseUnwindCheck() {
	for _, prog := range []string{"leaky", "cthread", "callback", "allocfns", "goroutines"} {
		r, rep, e := tracedEnv([]string{"CGOSCOPE_UNWIND=check"}, prog, nil)
		if bytes.Contains(r.stderr, []byte("unwind check: DIFFERENT")) {
			failf("%s: the shim's unwinder and libunwind differ:\n%s", prog, r.stderr)
		}
		checkLeaks(rep.Processes[0], e)
		for _, mode := range []string{"libunwind", "fast"} {
			_, rep2, e2 := tracedEnv([]string{"CGOSCOPE_UNWIND=" + mode}, prog, nil)
			checkLeaks(rep2.Processes[0], e2)
		}
	}
	fmt.Println("unwind check: no difference")
}

// caseNoPidfd: without a pidfd the analyzer asks waitpid after each sleep; the program's status
// and its leaks are the same.
func caseNoPidfd() {
	for _, c := range []struct {
		prog         string
		code, signal int
	}{{"sigkill", 0, 9}, {"leaky", 0, 0}} {
		r, rep, e := tracedEnv([]string{"CGOSCOPE_NO_PIDFD=1"}, c.prog, nil)
		checkLeaks(rep.Processes[0], e)
		wantExit(r, rep.Processes[0], c.code, c.signal)
	}
}
