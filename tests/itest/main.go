// itest runs one integration case: a program from testprogs/ under the real cgoscope and shim,
// compared with the ground truth the program wrote about itself (CGOSCOPE_EXPECT) and with a
// plain run of the same program. It prints what differs and exits 1 on any difference.
//
//	itest -cgoscope BIN -progs DIR -work DIR CASE
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

var (
	cgoscope = flag.String("cgoscope", "", "path of the cgoscope binary")
	progs    = flag.String("progs", "", "directory of the built test programs")
	work     = flag.String("work", "", "scratch directory for this case")
)

type frame struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
	Language string `json:"language"`
	Object   string `json:"object"`
}

type heldBy struct {
	Root    string `json:"root"`
	Symbol  string `json:"symbol"`
	Address string `json:"address"`
}

type leak struct {
	Blocks     int64    `json:"blocks"`
	Bytes      int64    `json:"bytes"`
	Origin     string   `json:"origin"`
	Kind       string   `json:"kind"`
	HeldBy     []heldBy `json:"held_by"`
	Suppressed bool     `json:"suppressed"`
	Stack      []frame  `json:"stack"`
}

type process struct {
	Pid        int            `json:"pid"`
	Exe        string         `json:"exe"`
	Argv       []string       `json:"argv"`
	Exit       map[string]int `json:"exit"`
	EventsLost int64          `json:"events_lost"`
	Totals     struct {
		Allocations     int64 `json:"allocations"`
		Frees           int64 `json:"frees"`
		LeakedBlocks    int64 `json:"leaked_blocks"`
		LeakedBytes     int64 `json:"leaked_bytes"`
		PossiblyBlocks  int64 `json:"possibly_lost_blocks"`
		PossiblyBytes   int64 `json:"possibly_lost_bytes"`
		ReachableBlocks int64 `json:"reachable_blocks"`
		ReachableBytes  int64 `json:"reachable_bytes"`
	} `json:"totals"`
	Reachability struct {
		Scanned bool   `json:"scanned"`
		WhyNot  string `json:"why_not"`
	} `json:"reachability"`
	Leaks     []leak     `json:"leaks"`
	CgoCalls  []cgoCall  `json:"cgo_calls"`
	Callbacks []callback `json:"cgo_callbacks"`
	Crossing  struct {
		PerCallNs *int64 `json:"per_call_ns_estimate"`
		Gaps      int64  `json:"gaps_measured"`
		StoreFree int64  `json:"calls_counted_store_free"`
	} `json:"cgo_crossing"`

	Errors *[]lifetimeError `json:"errors"` // double and invalid frees (cases_lifetime.go)
}

type cgoCall struct {
	Function          string `json:"function"`
	Package           string `json:"package"`
	Kind              string `json:"kind"`
	Calls             int64  `json:"calls"`
	TimedCalls        int64  `json:"timed_calls"`
	CTimeNs           int64  `json:"c_time_ns"`
	P50               int64  `json:"c_time_ns_p50"`
	P90               int64  `json:"c_time_ns_p90"`
	P99               int64  `json:"c_time_ns_p99"`
	Max               int64  `json:"c_time_ns_max"`
	CrossingNs        *int64 `json:"crossing_ns_estimate"`
	CrossingDominates bool   `json:"crossing_dominates"`
	Callers           []struct {
		Function string `json:"function"`
		File     string `json:"file"`
		Line     int    `json:"line"`
		Calls    int64  `json:"calls"`
	} `json:"callers"`
}

type callback struct {
	Function string `json:"function"`
	Package  string `json:"package"`
	Calls    int64  `json:"calls"`
	TimeNs   int64  `json:"time_ns"`
}

type report struct {
	Tool struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"tool"`
	Processes []process `json:"processes"`
}

type expectSite struct {
	Frames []frame `json:"frames"`
	Kind   string  `json:"kind"` // "lost" or "still_reachable" (testprogs/internal/truth)
	Blocks int64   `json:"blocks"`
	Bytes  int64   `json:"bytes"`
}

type expectCall struct {
	Package  string `json:"package"`
	Function string `json:"function"`
	Calls    int64  `json:"calls"`
	AtLeast  bool   `json:"at_least"`
}

type expectation struct {
	Leaks     []expectSite `json:"leaks"`
	Absent    []string     `json:"absent"`
	Calls     []expectCall `json:"calls"`
	Callbacks []expectCall `json:"callbacks"`

	Errors []expectError `json:"errors"` // testprogs/internal/truth LifetimeError
}

var failures []string

func failf(format string, args ...any) {
	failures = append(failures, fmt.Sprintf(format, args...))
}

// skipf ends a case that cannot run here, with CTest's "skipped" status (77, tests/CMakeLists.txt),
// unless something failed already.
func skipf(format string, args ...any) {
	if len(failures) > 0 {
		return
	}
	fmt.Printf("skipped: "+format+"\n", args...)
	os.Exit(77)
}

type result struct {
	stdout, stderr []byte
	code           int // exit code, or -signal
}

func run(env []string, name string, args ...string) result {
	cmd := exec.Command(name, args...)
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
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			r.code = -int(ws.Signal())
		} else {
			r.code = ws.ExitStatus()
		}
	}
	return r
}

// traced runs prog under `cgoscope run` with extra options; returns the result, the parsed
// JSON report and the expectations the program wrote.
func traced(prog string, opts []string, args ...string) (result, report, expectation) {
	return tracedEnv(nil, prog, opts, args...)
}

func tracedEnv(env []string, prog string, opts []string, args ...string) (result, report, expectation) {
	jsonPath := filepath.Join(*work, prog+".json")
	expPath := filepath.Join(*work, prog+".expect.json")
	os.Remove(jsonPath)
	os.Remove(expPath)
	cargs := append([]string{"run", "--json", jsonPath}, opts...)
	cargs = append(cargs, "--", filepath.Join(*progs, prog))
	cargs = append(cargs, args...)
	r := run(append([]string{"CGOSCOPE_EXPECT=" + expPath}, env...), *cgoscope, cargs...)
	return r, readReport(jsonPath, r), readExpect(expPath)
}

func readReport(path string, r result) report {
	var rep report
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &rep)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "itest: no usable JSON report %s: %v\ncgoscope stderr:\n%s\n", path, err, r.stderr)
		os.Exit(1)
	}
	if len(rep.Processes) == 0 {
		fmt.Fprintf(os.Stderr, "itest: report %s has no process\n", path)
		os.Exit(1)
	}
	return rep
}

func readExpect(path string) expectation {
	var e expectation
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &e)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "itest: the program wrote no expectations (%s): %v\n", path, err)
		os.Exit(1)
	}
	return e
}

func frameMatches(want, got frame) bool {
	if want.Function != got.Function {
		return false
	}
	if want.Line != 0 && want.Line != got.Line {
		return false
	}
	if want.File != "" && filepath.Base(want.File) != filepath.Base(got.File) {
		return false
	}
	return true
}

func stackHas(st []frame, want []frame) bool {
	for _, w := range want {
		found := false
		for _, g := range st {
			if frameMatches(w, g) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func describe(fs []frame) string {
	var parts []string
	for _, f := range fs {
		if f.Line != 0 {
			parts = append(parts, fmt.Sprintf("%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line))
		} else {
			parts = append(parts, f.Function)
		}
	}
	return strings.Join(parts, " + ")
}

// kindMatches: a group of kind got (the report's) is of the expected kind want (the truth's:
// "lost" covers definitely and indirectly lost).
func kindMatches(want, got string) bool {
	if want == "lost" {
		return got == "definitely_lost" || got == "indirectly_lost"
	}
	return want == got
}

// checkLeaks compares the user leaks of p with the expectations, exactly, kind by kind, and its
// lifetime errors too (none, unless the program expects some).
func checkLeaks(p process, e expectation) {
	checkErrors(p, e.Errors)
	if p.EventsLost != 0 {
		failf("events_lost is %d, want 0", p.EventsLost)
	}
	if !p.Reachability.Scanned {
		failf("the process's memory was not scanned for reachability: %s", p.Reachability.WhyNot)
	}
	var user []leak
	for _, l := range p.Leaks {
		if l.Origin == "user" {
			user = append(user, l)
		}
	}
	matched := make([]bool, len(user))
	var lostBlocks, lostBytes, heldBlocks, heldBytes int64
	for _, site := range e.Leaks {
		var blocks, bytes int64
		for i, l := range user {
			if stackHas(l.Stack, site.Frames) && kindMatches(site.Kind, l.Kind) {
				blocks += l.Blocks
				bytes += l.Bytes
				matched[i] = true
			}
		}
		if blocks != site.Blocks || bytes != site.Bytes {
			failf("%s at %s: got %d blocks / %d bytes, want %d / %d", site.Kind,
				describe(site.Frames), blocks, bytes, site.Blocks, site.Bytes)
		}
		switch site.Kind {
		case "lost", "definitely_lost", "indirectly_lost":
			lostBlocks += site.Blocks
			lostBytes += site.Bytes
		case "still_reachable":
			heldBlocks += site.Blocks
			heldBytes += site.Bytes
		}
	}
	for i, l := range user {
		if !matched[i] {
			failf("unexpected user leak: %d blocks / %d bytes, %s, at %s", l.Blocks, l.Bytes, l.Kind, describe(l.Stack))
		}
	}
	if p.Totals.LeakedBlocks != lostBlocks || p.Totals.LeakedBytes != lostBytes {
		failf("totals: %d blocks / %d bytes leaked, want %d / %d",
			p.Totals.LeakedBlocks, p.Totals.LeakedBytes, lostBlocks, lostBytes)
	}
	if p.Totals.ReachableBlocks != heldBlocks || p.Totals.ReachableBytes != heldBytes {
		failf("totals: %d blocks / %d bytes still reachable, want %d / %d",
			p.Totals.ReachableBlocks, p.Totals.ReachableBytes, heldBlocks, heldBytes)
	}
	for _, fn := range e.Absent {
		for _, l := range p.Leaks {
			for _, f := range l.Stack {
				if f.Function == fn {
					failf("%s appears in a %s leak of %d bytes, but frees all it allocates", fn, l.Origin, l.Bytes)
				}
			}
		}
	}
}

// checkUnclassified: a Go program without DWARF cannot be scanned (docs/reachability.md): the
// report says why, and every unfreed block of the truth, lost or held, counts as leaked.
func checkUnclassified(p process, e expectation) {
	if p.Reachability.Scanned || !strings.Contains(p.Reachability.WhyNot, "no DWARF") {
		failf("reachability %+v, want not scanned for want of DWARF", p.Reachability)
	}
	for i := range e.Leaks {
		e.Leaks[i].Kind = "unclassified"
	}
	var blocks, bytes int64
	for _, site := range e.Leaks {
		blocks += site.Blocks
		bytes += site.Bytes
	}
	for _, l := range p.Leaks {
		if l.Origin == "user" && l.Kind != "unclassified" {
			failf("a user group of kind %q where nothing could be classified", l.Kind)
		}
	}
	if p.Totals.LeakedBlocks != blocks || p.Totals.LeakedBytes != bytes {
		failf("totals: %d blocks / %d bytes leaked, want every unfreed user block: %d / %d",
			p.Totals.LeakedBlocks, p.Totals.LeakedBytes, blocks, bytes)
	}
	for _, site := range e.Leaks {
		var got int64
		for _, l := range p.Leaks {
			if l.Origin == "user" && stackHas(l.Stack, site.Frames) {
				got += l.Bytes
			}
		}
		if got < site.Bytes {
			failf("%s: %d bytes reported, want at least %d", describe(site.Frames), got, site.Bytes)
		}
	}
}

func wantExit(r result, p process, code, signal int) {
	want := code
	if signal != 0 {
		want = 128 + signal
	}
	if r.code != want {
		failf("cgoscope exited with %d, want %d", r.code, want)
	}
	if signal != 0 {
		if p.Exit["signal"] != signal {
			failf(`JSON exit is %v, want {"signal": %d}`, p.Exit, signal)
		}
	} else if c, ok := p.Exit["code"]; !ok || c != code {
		failf(`JSON exit is %v, want {"code": %d}`, p.Exit, code)
	}
}

// simple: the program's leaks match its truth, and it ends as it says.
func simple(prog string, code, signal int, opts ...string) {
	r, rep, e := traced(prog, opts)
	checkLeaks(rep.Processes[0], e)
	wantExit(r, rep.Processes[0], code, signal)
	if len(e.Leaks) == 0 {
		failf("the program expects no leak at all: this case could not fail")
	}
}

// sameLeaks compares the leaks of two reports. With userOnly, only the user's leaks and
// headline totals count: the runtime's own blocks at the moment of a SIGKILL depend on timing.
func sameLeaks(a, b process, userOnly ...bool) bool {
	only := len(userOnly) > 0 && userOnly[0]
	norm := func(p process) string {
		var ls []leak
		for _, l := range p.Leaks {
			if !only || l.Origin == "user" {
				l2 := l
				l2.Stack = nil
				l2.HeldBy = nil
				for _, h := range l.HeldBy { // what holds it, not where: addresses differ run to run
					l2.HeldBy = append(l2.HeldBy, heldBy{Root: h.Root, Symbol: h.Symbol})
				}
				for _, f := range l.Stack {
					f.Object = filepath.Base(f.Object)
					l2.Stack = append(l2.Stack, f)
				}
				ls = append(ls, l2)
			}
		}
		sort.Slice(ls, func(i, j int) bool {
			return fmt.Sprint(ls[i]) < fmt.Sprint(ls[j])
		})
		var t any = p.Totals
		if only {
			t = [2]int64{p.Totals.LeakedBlocks, p.Totals.LeakedBytes}
		}
		data, _ := json.Marshal(struct {
			L []leak
			T any
			E map[string]int
		}{ls, t, p.Exit})
		return string(data)
	}
	return norm(a) == norm(b)
}

func main() {
	flag.Parse()
	if flag.NArg() != 1 || *cgoscope == "" || *progs == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "usage: itest -cgoscope BIN -progs DIR -work DIR CASE")
		os.Exit(2)
	}
	if err := os.MkdirAll(*work, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	c := flag.Arg(0)
	fn, ok := cases[c]
	if !ok {
		fmt.Fprintf(os.Stderr, "itest: unknown case %q\n", c)
		os.Exit(2)
	}
	fn()
	if len(failures) > 0 {
		for _, f := range failures {
			fmt.Println("FAIL:", f)
		}
		os.Exit(1)
	}
	fmt.Println("ok")
}
