package main

import (
	"bytes"
	"os"
	"path/filepath"
)

// cases maps a case name (the CTest test runs `itest ... NAME`) to its check. Each file of
// cases adds its own in an init function.
var cases = map[string]func(){}

func init() {
	for _, c := range []string{"leaky", "goroutines", "handoff", "cthread", "allocfns", "callback"} {
		c := c
		cases[c] = func() { simple(c, 0, 0) }
	}
	cases["sigkill"] = func() { simple("sigkill", 0, 9) }
	cases["exitcode"] = caseExitCode
	cases["report-from-trace"] = caseReportFromTrace
}

func caseExitCode() {
	c := "exitcode"
	plain := run(nil, filepath.Join(*progs, c))
	r, rep, e := traced(c, nil)
	checkLeaks(rep.Processes[0], e)
	wantExit(r, rep.Processes[0], 3, 0)
	if plain.code != 3 {
		failf("the plain run exited %d, want 3", plain.code)
	}
	if !bytes.Equal(plain.stdout, r.stdout) {
		failf("stdout differs under cgoscope:\nplain:  %q\ntraced: %q", plain.stdout, r.stdout)
	}
	// The program's stderr comes first, byte for byte; the report follows it.
	if !bytes.HasPrefix(r.stderr, plain.stderr) {
		failf("stderr under cgoscope does not start with the program's own stderr:\nplain:  %q\ntraced: %q", plain.stderr, r.stderr)
	}
	rest := r.stderr[len(plain.stderr):]
	if !bytes.Contains(rest, []byte("== cgoscope: process")) {
		failf("no text report after the program's stderr: %q", rest)
	}
	// With --quiet the program's stderr is all there is.
	q, _, _ := traced(c, []string{"--quiet"})
	if !bytes.Equal(plain.stderr, q.stderr) || !bytes.Equal(plain.stdout, q.stdout) {
		failf("with --quiet, stdout/stderr differ from the plain run:\nplain:  %q %q\ntraced: %q %q",
			plain.stdout, plain.stderr, q.stdout, q.stderr)
	}
}

func caseReportFromTrace() {
	trace := filepath.Join(*work, "leaky.cgs")
	r, live, e := traced("leaky", []string{"-o", trace})
	checkLeaks(live.Processes[0], e)
	wantExit(r, live.Processes[0], 0, 0)
	if st, err := os.Stat(trace); err != nil || st.Mode().Perm() != 0o600 {
		failf("trace file %s: %v, want mode 0600", trace, err)
	}
	again := filepath.Join(*work, "leaky.again.json")
	rr := run(nil, *cgoscope, "report", "--json", again, trace)
	if rr.code != 0 {
		failf("cgoscope report exited %d: %s", rr.code, rr.stderr)
	}
	later := readReport(again, rr)
	if !sameLeaks(live.Processes[0], later.Processes[0]) {
		failf("cgoscope report on the saved trace differs from the live run")
	}
	if !bytes.Contains(rr.stderr, []byte("User leak 1:")) {
		failf("cgoscope report printed no text report: %s", rr.stderr)
	}
}
