package main

import (
	"encoding/json"
	"os"
	"path/filepath"
)

func init() {
	cases["calls-mix"] = caseCallsMix
	cases["calls-errno"] = func() { callsOnly("calls", nil, nil, "errno") }
	cases["calls-parallel"] = func() {
		for _, mode := range []string{"", "--timing=full", "--timing=off", "--timing=sampled:7"} {
			var opts []string
			if mode != "" {
				opts = []string{mode}
			}
			callsOnly("calls", nil, opts, "parallel")
		}
	}
	cases["callbacks-cgotraceback"] = func() { callsOnly("cgotraceback", nil, nil) }
	cases["callbacks-leak"] = func() { callsOnly("callback", nil, nil) }
	cases["calls-resolver"] = func() { callsOnly("resolver", []string{"GODEBUG=netdns=cgo"}, nil) }
	cases["calls-timeline"] = caseTimeline
	cases["storefree-child"] = caseStoreFreeChild
	// Where kcmp is not allowed (containers without CAP_SYS_PTRACE), the exit helper tells exec
	// and the end of the program by /proc/PID/stat instead: the cases that need it, that way.
	cases["storefree-nokcmp"] = func() {
		for _, mode := range []string{"kill", "exec", "switch"} {
			caseStoreFreeEnv(mode, []string{"CGOSCOPE_HELPER_NO_KCMP=1"})
		}
	}
	for _, mode := range []string{"late", "callback", "switch", "kill", "setgid", "exec", "random"} {
		mode := mode
		cases["storefree-"+mode] = func() { caseStoreFree(mode) }
	}
}

// caseStoreFree runs testprogs/storefree, whose sites are first counted with no store in the
// hook (lean.c) and then do what that way must survive (see the program): exact counts, leaks
// with their Go lines. The same run with the store-free way turned off must agree, so the case
// also shows that the way was taken at all.
func caseStoreFree(mode string) { caseStoreFreeEnv(mode, nil) }

func caseStoreFreeEnv(mode string, extra []string) {
	code, signal := 0, 0
	if mode == "kill" {
		signal = 9
	}
	for _, off := range []bool{false, true} {
		env := append([]string{}, extra...)
		if off {
			env = append(env, "CGOSCOPE_STORE_FREE_CALLS=0")
		}
		r, rep, e := tracedEnv(env, "storefree", nil, mode)
		p := rep.Processes[0]
		if mode == "exec" {
			// The program before its exec: its calls, counted after its address space was replaced.
			if len(rep.Processes) != 2 {
				failf("storefree exec: %d processes in the report, want 2 (before and after the exec)", len(rep.Processes))
				return
			}
			first := readExpect(filepath.Join(*work, "storefree.expect.json.first"))
			checkCalls(p, first)
			if !off && p.Crossing.StoreFree == 0 {
				failf("storefree exec: no call of the first program was counted store-free")
			}
			p = rep.Processes[1]
		}
		wantExit(r, p, code, signal)
		checkCalls(p, e)
		checkLeaks(p, e)
		switch {
		case !off && p.Crossing.StoreFree == 0:
			failf("storefree %s: no call was counted store-free, so the case tested nothing of it", mode)
		case off && p.Crossing.StoreFree != 0:
			failf("storefree %s with CGOSCOPE_STORE_FREE_CALLS=0: %d calls counted store-free, want 0", mode, p.Crossing.StoreFree)
		}
	}
}

func findCall(p process, pkg, fn string) *cgoCall {
	for i := range p.CgoCalls {
		if p.CgoCalls[i].Package == pkg && p.CgoCalls[i].Function == fn {
			return &p.CgoCalls[i]
		}
	}
	return nil
}

// checkCalls compares the call and callback counts with what the program says it made.
func checkCalls(p process, e expectation) {
	if len(e.Calls) == 0 && len(e.Callbacks) == 0 {
		failf("the program states no call counts: this case could not fail")
	}
	for _, want := range e.Calls {
		got := findCall(p, want.Package, want.Function)
		switch {
		case got == nil:
			failf("no cgo_calls entry for %s.%s (want %d calls)", want.Package, want.Function, want.Calls)
		case want.AtLeast && got.Calls < want.Calls:
			failf("%s.%s: %d calls, want at least %d", want.Package, want.Function, got.Calls, want.Calls)
		case !want.AtLeast && got.Calls != want.Calls:
			failf("%s.%s: %d calls, want exactly %d", want.Package, want.Function, got.Calls, want.Calls)
		}
	}
	for _, want := range e.Callbacks {
		found := false
		for _, cb := range p.Callbacks {
			if cb.Function == want.Function && cb.Package == want.Package {
				found = true
				if cb.Calls != want.Calls {
					failf("callback %s.%s: %d calls, want exactly %d", want.Package, want.Function, cb.Calls, want.Calls)
				}
			}
		}
		if !found {
			failf("no cgo_callbacks entry for %s.%s (want %d calls); got %+v", want.Package, want.Function, want.Calls, p.Callbacks)
		}
	}
}

func callsOnly(prog string, env, opts []string, args ...string) {
	r, rep, e := tracedEnv(env, prog, opts, args...)
	if r.code != 0 {
		failf("%s %v under cgoscope %v exited %d: %s", prog, args, opts, r.code, r.stderr)
	}
	checkCalls(rep.Processes[0], e)
}

func caseCallsMix() {
	r, rep, e := traced("calls", nil, "mix")
	if r.code != 0 {
		failf("calls mix exited %d", r.code)
	}
	p := rep.Processes[0]
	checkCalls(p, e)
	nap, add := findCall(p, "main", "nap"), findCall(p, "main", "add")
	if nap == nil || add == nil {
		return
	}
	if nap.CTimeNs < 100_000_000 {
		failf("nap: total C time %d ns, want >= 100 ms (200 calls of >= 500 us)", nap.CTimeNs)
	}
	if nap.P50 < 500_000 {
		failf("nap: C time p50 %d ns, want >= 500 us", nap.P50)
	}
	if !(add.P50*100 < nap.P50) {
		failf("add: C time p50 %d ns is not far below nap's %d ns", add.P50, nap.P50)
	}
	if add.TimedCalls == 0 || add.TimedCalls >= add.Calls {
		failf("add: %d of %d calls timed; the default must sample", add.TimedCalls, add.Calls)
	}
	if p.Crossing.PerCallNs == nil || p.Crossing.Gaps == 0 {
		failf("no crossing estimate: %+v", p.Crossing)
	} else if add.CrossingNs == nil || *add.CrossingNs != *p.Crossing.PerCallNs*add.Calls {
		failf("add: crossing_ns_estimate %v, want calls x per-call estimate %d", add.CrossingNs, *p.Crossing.PerCallNs)
	}
	// The flag is the documented rule applied to measured figures (per-call crossing estimate
	// above the C time's median): checked as a rule, since both figures are timings that a loaded
	// machine moves (an add() preempted in the timed calls made its p50 exceed the estimate).
	if p.Crossing.PerCallNs != nil {
		if want := *p.Crossing.PerCallNs > add.P50; add.CrossingDominates != want {
			failf("add: crossing_dominates %v with per-call crossing %d ns and C p50 %d ns, want %v",
				add.CrossingDominates, *p.Crossing.PerCallNs, add.P50, want)
		}
	}
	if nap.CrossingDominates {
		failf("nap: a 500 us C function is flagged as crossing-dominated")
	}
	if len(add.Callers) == 0 || add.Callers[0].Function != "main.mix" || add.Callers[0].Calls < 1_900_000 {
		failf("add: callers %+v, want main.mix making about 2M calls", add.Callers)
	}
	if len(nap.Callers) != 1 || nap.Callers[0].Function != "main.mix" || nap.Callers[0].Calls != 200 {
		failf("nap: callers %+v, want main.mix with exactly 200 calls (every slow call is timed)", nap.Callers)
	}
}

func caseTimeline() {
	path := filepath.Join(*work, "timeline.json")
	os.Remove(path)
	r, rep, e := traced("calls", []string{"--timeline", path, "--timing=full"}, "parallel")
	if r.code != 0 {
		failf("calls parallel exited %d", r.code)
	}
	checkCalls(rep.Processes[0], e)
	data, err := os.ReadFile(path)
	if err != nil {
		failf("no timeline: %v", err)
		return
	}
	var tl struct {
		TraceEvents []struct {
			Name string          `json:"name"`
			Ph   string          `json:"ph"`
			Ts   *float64        `json:"ts"`
			Dur  *float64        `json:"dur"`
			Pid  int             `json:"pid"`
			Tid  int             `json:"tid"`
			Args json.RawMessage `json:"args"`
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(data, &tl); err != nil {
		failf("the timeline is not JSON: %v", err)
		return
	}
	tracks := map[int]int{}
	named := map[int]bool{}
	for _, ev := range tl.TraceEvents {
		switch ev.Ph {
		case "X":
			if ev.Ts == nil || ev.Dur == nil || ev.Name != "C.mul" || ev.Pid != rep.Processes[0].Pid {
				failf("bad complete event: %+v", ev)
				return
			}
			tracks[ev.Tid]++
		case "M":
			if ev.Name == "thread_name" {
				named[ev.Tid] = true
			}
		}
	}
	if len(tracks) < 8 {
		failf("timeline has %d thread tracks with calls, want at least 8 (8 locked goroutines)", len(tracks))
	}
	for tid := range tracks {
		if !named[tid] {
			failf("thread %d has events but no thread_name", tid)
		}
	}
}

// caseStoreFreeChild: a Go program started by the program (here through sh -c) gets its layout
// read once it has attached, and counts store-free from then on.
func caseStoreFreeChild() {
	jsonPath := filepath.Join(*work, "child.json")
	expPath := filepath.Join(*work, "child.expect.json")
	os.Remove(jsonPath)
	os.Remove(expPath)
	prog := filepath.Join(*progs, "storefree")
	r := run([]string{"CGOSCOPE_EXPECT=" + expPath}, *cgoscope, "run", "--json", jsonPath, "--", "sh", "-c", prog+" long")
	if r.code != 0 {
		failf("sh -c 'storefree long' under cgoscope exited %d: %s", r.code, r.stderr)
	}
	rep := readReport(jsonPath, r)
	var child *process
	for i := range rep.Processes {
		if a := rep.Processes[i].Argv; len(a) > 0 && filepath.Base(a[0]) == "storefree" {
			child = &rep.Processes[i]
		}
	}
	if child == nil {
		failf("no process storefree in the report (%d processes)", len(rep.Processes))
		return
	}
	checkCalls(*child, readExpect(expPath))
	if child.Crossing.StoreFree == 0 {
		failf("storefree long, started through sh: no call was counted store-free")
	}
}
