package main

// `cgoscope test` (README, docs/ci.md): go test with every test binary traced and one report
// of them all, on the module testprogs/testcmd: a package that leaks (its tests state what they
// leak, in CGOSCOPE_EXPECT, so -run, -count and -ldflags change the truth with them), one that
// frees everything, one without cgo (a static test binary, run untraced). The lines come from
// marker comments in the sources, never from cgoscope.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

func init() {
	cases["testcmd-tree"] = caseTestcmdTree
	cases["testcmd-flags"] = caseTestcmdFlags
}

const testcmdPkg = "cgoscope.test/testcmd/"

// A process of the report, with what says whether it was traced.
type testcmdProc struct {
	process
	Traced         bool   `json:"traced"`
	UntracedReason string `json:"untraced_reason"`
}

type testcmdExpect struct {
	Test     string `json:"test"`
	Function string `json:"function"`
	Blocks   int64  `json:"blocks"`
	Bytes    int64  `json:"bytes"`
}

type testcmdRun struct {
	r      result
	procs  map[string]testcmdProc // by test binary: "leaky.test"
	nprocs int
	expect map[string]testcmdExpect // by Go function, summed over the tests that ran
}

func testcmdDir() string { return filepath.Join(*gateSrc, "testprogs", "testcmd") }

// runIn is run in directory dir.
func runIn(dir string, env []string, name string, args ...string) result {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.Bytes(), stderr: errb.Bytes()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			fmt.Fprintf(os.Stderr, "itest: cannot run %s: %v\n", name, err)
			os.Exit(2)
		}
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			r.code = -int(ws.Signal())
		} else {
			r.code = ws.ExitStatus()
		}
	}
	return r
}

func testcmdEnv() []string {
	return append(gateGoEnv(), "CGOSCOPE_GO="+*gateGo)
}

// cgoscopeTest runs `cgoscope test --json FILE args...` in testprogs/testcmd and reads the report
// and what the tests said they leaked.
func cgoscopeTest(name string, args ...string) testcmdRun {
	jsonPath := filepath.Join(*work, name+".json")
	expPath := filepath.Join(*work, name+".expect")
	os.Remove(jsonPath)
	os.Remove(expPath)
	args = append([]string{"test", "--json", jsonPath}, args...)
	t := testcmdRun{procs: map[string]testcmdProc{}, expect: map[string]testcmdExpect{}}
	t.r = runIn(testcmdDir(), append(testcmdEnv(), "CGOSCOPE_EXPECT="+expPath), *cgoscope, args...)
	var doc struct {
		Processes []testcmdProc `json:"processes"`
	}
	data, err := os.ReadFile(jsonPath)
	if err == nil {
		err = json.Unmarshal(data, &doc)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "itest: cgoscope %s: no usable JSON report (%v); exit %d\nstdout:\n%s\nstderr:\n%s\n",
			strings.Join(args, " "), err, t.r.code, t.r.stdout, t.r.stderr)
		os.Exit(1)
	}
	t.nprocs = len(doc.Processes)
	for _, p := range doc.Processes {
		if len(p.Argv) > 0 {
			t.procs[filepath.Base(p.Argv[0])] = p
		}
	}
	if f, err := os.Open(expPath); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e testcmdExpect
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				fmt.Fprintf(os.Stderr, "itest: %s: %v\n", expPath, err)
				os.Exit(2)
			}
			s := t.expect[e.Function]
			s.Function = e.Function
			s.Blocks += e.Blocks
			s.Bytes += e.Bytes
			t.expect[e.Function] = s
		}
		f.Close()
	}
	return t
}

// The frames every leak of leaky names, from the marker comments of its sources.
func leakyFrames() map[string][]frame {
	dir := filepath.Join(testcmdDir(), "leaky")
	src, test := filepath.Join(dir, "leaky.go"), filepath.Join(dir, "leaky_test.go")
	return map[string][]frame{
		testcmdPkg + "leaky.Block": {
			{Function: "make_block", File: src, Line: markerLine(src, "cgoscope:testcmd-c")},
			{Function: testcmdPkg + "leaky.Block", File: src, Line: markerLine(src, "cgoscope:testcmd-block")},
			{Function: testcmdPkg + "leaky.TestBlocks", File: test, Line: markerLine(test, "cgoscope:testcmd-test-blocks")},
		},
		testcmdPkg + "leaky.Name": {
			{Function: testcmdPkg + "leaky.Name", File: src, Line: markerLine(src, "cgoscope:testcmd-name")},
			{Function: testcmdPkg + "leaky.TestName", File: test, Line: markerLine(test, "cgoscope:testcmd-test-name")},
		},
	}
}

// checkLeaky: the leaky test binary's user leaks are exactly what its tests said, at their lines.
func checkLeaky(what string, t testcmdRun, wantCode int) {
	p, ok := t.procs["leaky.test"]
	if !ok {
		failf("%s: no leaky.test process in the report (%d processes)", what, t.nprocs)
		return
	}
	if !p.Traced || p.EventsLost != 0 || !p.Reachability.Scanned {
		failf("%s: leaky.test traced=%v, events lost %d, scanned %v: want traced, 0 lost, scanned",
			what, p.Traced, p.EventsLost, p.Reachability.Scanned)
	}
	if c, ok := p.Exit["code"]; !ok || c != wantCode {
		failf(`%s: leaky.test's JSON exit is %v, want {"code": %d}`, what, p.Exit, wantCode)
	}
	frames := leakyFrames()
	user, _ := userLeaks(p.process)
	matched := make([]bool, len(user))
	var blocks, bytes int64
	for fn, e := range t.expect {
		var gb, gy int64
		for i, l := range user {
			if stackHas(l.Stack, frames[fn]) {
				if !kindMatches("lost", l.Kind) {
					failf("%s: the leak at %s is %s, want definitely lost", what, describe(frames[fn]), l.Kind)
				}
				gb += l.Blocks
				gy += l.Bytes
				matched[i] = true
			}
		}
		if gb != e.Blocks || gy != e.Bytes {
			failf("%s: %s: got %d blocks / %d bytes, want %d / %d", what, describe(frames[fn]), gb, gy, e.Blocks, e.Bytes)
		}
		blocks += e.Blocks
		bytes += e.Bytes
	}
	for i, l := range user {
		if !matched[i] {
			failf("%s: unexpected user leak: %d blocks / %d bytes at %s", what, l.Blocks, l.Bytes, describe(l.Stack))
		}
	}
	if p.Totals.LeakedBlocks != blocks || p.Totals.LeakedBytes != bytes {
		failf("%s: leaky.test totals %d blocks / %d bytes leaked, want %d / %d", what,
			p.Totals.LeakedBlocks, p.Totals.LeakedBytes, blocks, bytes)
	}
}

// checkClean: the clean test binary was traced and leaked nothing of its own.
func checkClean(what string, t testcmdRun) {
	p, ok := t.procs["clean.test"]
	if !ok {
		failf("%s: no clean.test process in the report (%d processes)", what, t.nprocs)
		return
	}
	user, _ := userLeaks(p.process)
	if !p.Traced || len(user) != 0 || p.Totals.LeakedBlocks != 0 || p.Totals.Allocations < 200 {
		failf("%s: clean.test traced=%v, %d user leaks, %d blocks leaked, %d allocations: want traced, none, 0, >= 200",
			what, p.Traced, len(user), p.Totals.LeakedBlocks, p.Totals.Allocations)
	}
	if c, ok := p.Exit["code"]; !ok || c != 0 {
		failf(`%s: clean.test's JSON exit is %v, want {"code": 0}`, what, p.Exit)
	}
}

func wantCode(what string, r result, code int) {
	if r.code != code {
		failf("%s: exited %d, want %d\nstdout:\n%s\nstderr:\n%s", what, r.code, code, r.stdout, r.stderr)
	}
}

func wantOut(what string, r result, wants ...string) {
	for _, w := range wants {
		if !strings.Contains(string(r.stdout)+string(r.stderr), w) {
			failf("%s: no %q in the output:\nstdout:\n%s\nstderr:\n%s", what, w, r.stdout, r.stderr)
		}
	}
}

var goTimes = regexp.MustCompile(`[0-9]+\.[0-9]+s`)

// ---- the whole module: one report of every package, exit statuses ----------------------------

func caseTestcmdTree() {
	needGateFlags("gate-go", "gate-src", "gate-gocache")
	okLines := []string{"ok  \t" + testcmdPkg + "clean", "ok  \t" + testcmdPkg + "leaky", "ok  \t" + testcmdPkg + "nocgo"}

	// ./... with every export: go test passes (exit 0 without --fail-on-leak), and one report
	// holds the three test binaries, the leaks exactly as the tests stated them.
	pprof, sarif, folded := filepath.Join(*work, "tree.pb.gz"), filepath.Join(*work, "tree.sarif"), filepath.Join(*work, "tree.folded")
	for _, f := range []string{pprof, sarif, folded} {
		os.Remove(f)
	}
	t := cgoscopeTest("tree", "--pprof", pprof, "--sarif", sarif, "--folded", folded, "./...")
	wantCode("cgoscope test ./...", t.r, 0)
	for _, w := range okLines {
		if !strings.Contains(string(t.r.stdout), w) {
			failf("cgoscope test ./...: no %q in go test's output (stdout):\n%s", w, t.r.stdout)
		}
	}
	wantOut("cgoscope test ./...", t.r, "== cgoscope test: 3 test binaries run by go test, 2 processes traced",
		"User leak 1:", "leaky.go:")
	if t.nprocs != 3 {
		failf("cgoscope test ./...: %d processes in the JSON report, want 3 (clean, leaky, nocgo)", t.nprocs)
	}
	if len(t.expect) != 2 {
		failf("the leaky tests stated %d leak sites, want 2 (did they run?)", len(t.expect))
	}
	checkLeaky("./...", t, 0)
	checkClean("./...", t)
	if p, ok := t.procs["nocgo.test"]; !ok || p.Traced || !strings.Contains(p.UntracedReason, "static") {
		failf("./...: nocgo.test %+v: want it listed, not traced, as a static test binary", p)
	}

	// The exports cover the same leaks.
	if data, err := os.ReadFile(pprof); err != nil || len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		failf("--pprof %s: not a gzipped profile (%v)", pprof, err)
	}
	var sdoc struct {
		Runs []struct {
			Results []struct {
				RuleID string `json:"ruleId"`
			} `json:"results"`
		} `json:"runs"`
	}
	if data, err := os.ReadFile(sarif); err != nil || json.Unmarshal(data, &sdoc) != nil || len(sdoc.Runs) != 1 {
		failf("--sarif %s: unreadable (%v)", sarif, err)
	} else if n := len(sdoc.Runs[0].Results); n != 2 {
		failf("--sarif: %d results, want 2 (the two leak sites of leaky)", n)
	}
	if data, err := os.ReadFile(folded); err != nil {
		failf("--folded: %v", err)
	} else {
		want := map[string]string{"make_block": fmt.Sprint(" ", t.expect[testcmdPkg+"leaky.Block"].Bytes),
			"leaky.Name": fmt.Sprint(" ", t.expect[testcmdPkg+"leaky.Name"].Bytes)}
		for fn, size := range want {
			found := false
			for _, line := range strings.Split(string(data), "\n") {
				if strings.Contains(line, fn) && strings.HasSuffix(line, size) {
					found = true
				}
			}
			if !found {
				failf("--folded: no line with %s ending in%s:\n%s", fn, size, data)
			}
		}
	}

	// --fail-on-leak: 23, go test's own output unchanged (every package passed).
	t = cgoscopeTest("tree-gate", "-q", "--fail-on-leak", "./...")
	wantCode("cgoscope test -q --fail-on-leak ./...", t.r, 23)
	for _, w := range okLines {
		if !strings.Contains(string(t.r.stdout), w) {
			failf("--fail-on-leak ./...: no %q in go test's output:\n%s", w, t.r.stdout)
		}
	}
	if strings.Contains(string(t.r.stderr), "== cgoscope: process") {
		failf("-q: the text report is printed:\n%s", t.r.stderr)
	}
	checkLeaky("--fail-on-leak ./...", t, 0)

	// The clean package alone passes the gate.
	t = cgoscopeTest("clean-gate", "--fail-on-leak", "./clean")
	wantCode("cgoscope test --fail-on-leak ./clean", t.r, 0)
	checkClean("--fail-on-leak ./clean", t)
	if t.nprocs != 1 {
		failf("./clean: %d processes, want 1", t.nprocs)
	}

	// go test's output passes through as it is: the same as a plain go test -v, but for times.
	plain := runIn(testcmdDir(), testcmdEnv(), *gateGo, "test", "-count=1", "-v", "./leaky")
	t = cgoscopeTest("verbose", "-q", "--", "-v", "./leaky")
	a, b := goTimes.ReplaceAllString(string(plain.stdout), "T"), goTimes.ReplaceAllString(string(t.r.stdout), "T")
	if plain.code != 0 || a != b {
		failf("go test -v ./leaky (exit %d) and cgoscope test -- -v ./leaky differ on stdout:\n%s\n---\n%s", plain.code, a, b)
	}
}

// ---- go test's flags: -run, -count, the user's -ldflags, build tags, a failing test ------------

func caseTestcmdFlags() {
	needGateFlags("gate-go", "gate-src", "gate-gocache")
	name := testcmdPkg + "leaky.Name"
	block := testcmdPkg + "leaky.Block"

	// -run and -count: only TestName, twice in one test binary; --full-report (cgoscope's) shows
	// each site's stack under its group.
	t := cgoscopeTest("run-count", "--full-report", "-run", "TestName", "-count=2", "./leaky")
	wantCode("-run TestName -count=2", t.r, 0)
	if !strings.Contains(string(t.r.stderr), "\n  site 1: ") || !strings.Contains(string(t.r.stderr), "    #0  ") {
		failf("cgoscope test --full-report: no site with its stack in the report:\n%s", t.r.stderr)
	}
	if e := t.expect[name]; e.Blocks != 2 || len(t.expect) != 1 {
		failf("-run TestName -count=2: the tests stated %+v, want TestName's leak twice and nothing else", t.expect)
	}
	checkLeaky("-run TestName -count=2", t, 0)

	// The user's own -ldflags reach the test binary (-X sets how many blocks leak), and the
	// symbols are still kept: the C function is named, with its line.
	t = cgoscopeTest("ldflags", "--fail-on-leak", "-ldflags", "-X "+testcmdPkg+"leaky.Blocks=5", "-run", "TestBlocks$", "./leaky")
	wantCode("-ldflags -X ...Blocks=5 --fail-on-leak", t.r, 23)
	if e := t.expect[block]; e.Blocks != 5 || e.Bytes != 500 || len(t.expect) != 1 {
		failf("-ldflags=-X ...Blocks=5: the tests stated %+v, want 5 blocks of 100 bytes from Block only", t.expect)
	}
	checkLeaky("-ldflags -X", t, 0)

	// -ldflags=... in one argument, and -count=1 given after `--`.
	t = cgoscopeTest("ldflags-eq", "--", "-count=1", "-ldflags=-X="+testcmdPkg+"leaky.Blocks=2", "-run=TestBlocks", "./leaky")
	wantCode("-- -count=1 -ldflags=-X=...Blocks=2", t.r, 0)
	if e := t.expect[block]; e.Blocks != 2 {
		failf("-ldflags=-X=...Blocks=2: the tests stated %+v, want 2 blocks", t.expect)
	}
	checkLeaky("-ldflags=-X=", t, 0)

	// The user's -ldflags may strip the test binary (go test's default does too): the gate
	// still works, with the Go lines from .gopclntab.
	t = cgoscopeTest("stripped", "--fail-on-leak", "-ldflags=-s -w", "-run", "TestName", "./leaky")
	wantCode("-ldflags='-s -w' --fail-on-leak", t.r, 23)
	if p, ok := t.procs["leaky.test"]; !ok || p.Totals.LeakedBlocks != t.expect[name].Blocks ||
		p.Totals.LeakedBytes != t.expect[name].Bytes || t.expect[name].Blocks != 1 {
		failf("-ldflags='-s -w': leaky.test totals %+v, want what TestName stated: %+v", p.Totals, t.expect)
	} else if user, _ := userLeaks(p.process); len(user) != 1 || !stackHas(user[0].Stack, leakyFrames()[name][:1]) {
		failf("-ldflags='-s -w': user leaks %+v, want one at %s", user, describe(leakyFrames()[name][:1]))
	}

	// A build tag adds a failing test: go test's status (1) wins over the gate's, and the
	// report is still made.
	t = cgoscopeTest("failing", "--fail-on-leak", "-tags", "failing", "./leaky", "./clean")
	wantCode("--fail-on-leak -tags failing", t.r, 1)
	wantOut("-tags failing", t.r, "--- FAIL: TestFailing", "FAIL\t"+testcmdPkg+"leaky", "ok  \t"+testcmdPkg+"clean")
	checkLeaky("-tags failing", t, 1)
	checkClean("-tags failing", t)

	// Messages that say what to do.
	r := runIn(testcmdDir(), append(testcmdEnv(), "CGOSCOPE_GO=/nonexistent/go"), *cgoscope, "test", "./clean")
	wantCode("CGOSCOPE_GO=/nonexistent/go", r, 127)
	wantOut("CGOSCOPE_GO=/nonexistent/go", r, "CGOSCOPE_GO", "/usr/local/go/bin/go")
	r = runIn(testcmdDir(), testcmdEnv(), *cgoscope, "test", "-exec", "env", "./clean")
	wantCode("cgoscope test -exec env", r, 2)
	wantOut("cgoscope test -exec env", r, "-exec is cgoscope's")
	r = runIn(testcmdDir(), testcmdEnv(), *cgoscope, "test", "--duration", "5", "./clean")
	wantCode("cgoscope test --duration 5", r, 2)
	wantOut("cgoscope test --duration 5", r, "-timeout")
	r = runIn(testcmdDir(), testcmdEnv(), *cgoscope, "test", "--help")
	wantCode("cgoscope test --help", r, 0)
	wantOut("cgoscope test --help", r, "Usage: cgoscope test", "--fail-on-leak", "Exit status")
}
