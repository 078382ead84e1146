package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// Lifetime errors (docs/lifetime.md): testprogs/lifetime makes one double or invalid free (or
// realloc) per run and states the kind, the function, the size and the Go lines of the
// allocation, the first free and the bad free; the report must name exactly those, and the
// program must end as it does untraced (the realloc cases die inside glibc's realloc, so their
// error comes from the record the shim commits before calling it).

type lifetimeError struct {
	Kind           string  `json:"kind"`
	Function       string  `json:"function"`
	Address        string  `json:"address"`
	Size           *int64  `json:"size"`
	Offset         int64   `json:"offset"`
	Stack          []frame `json:"stack"`
	AllocStack     []frame `json:"alloc_stack"`
	FirstFreeStack []frame `json:"first_free_stack"`
	Suppressed     bool    `json:"suppressed"`
}

type expectError struct {
	Kind      string  `json:"kind"`
	Function  string  `json:"function"`
	Size      int64   `json:"size"`
	Offset    int64   `json:"offset"`
	Free      []frame `json:"free"`
	Alloc     []frame `json:"alloc"`
	FirstFree []frame `json:"first_free"`
}

func init() {
	for _, c := range []string{"double", "owner", "gomem", "interior", "realloc", "regomem"} {
		c := c
		cases["lifetime-"+c] = func() { caseLifetime(c) }
	}
	cases["lifetime-clean"] = caseLifetimeClean
	cases["lifetime-gate"] = caseLifetimeGate
}

// checkErrors compares the lifetime errors of p with the expected ones, exactly: as many, each
// of its kind and size, each stack holding the expected frames.
func checkErrors(p process, want []expectError) {
	if p.Errors == nil {
		failf(`process %d: no "errors" in the JSON report`, p.Pid)
		return
	}
	got := *p.Errors
	if len(got) != len(want) {
		failf("process %d: %d lifetime errors, want %d: %+v", p.Pid, len(got), len(want), got)
		return
	}
	for i, w := range want {
		g := got[i]
		size := int64(0)
		if g.Size != nil {
			size = *g.Size
		}
		fn := w.Function
		if fn == "" {
			fn = "free"
		}
		if g.Kind != w.Kind || size != w.Size || g.Offset != w.Offset || g.Function != fn {
			failf("error %d: %s of %d bytes (offset %d) by %s, want %s of %d bytes (offset %d) by %s", i, g.Kind, size,
				g.Offset, g.Function, w.Kind, w.Size, w.Offset, fn)
		}
		for _, s := range []struct {
			name      string
			got, want []frame
		}{{"stack", g.Stack, w.Free}, {"alloc_stack", g.AllocStack, w.Alloc}, {"first_free_stack", g.FirstFreeStack, w.FirstFree}} {
			if len(s.want) == 0 && len(s.got) != 0 {
				failf("error %d: %s should be empty, is %s", i, s.name, describe(s.got))
			} else if !stackHas(s.got, s.want) {
				failf("error %d: %s is %s, want it to hold %s", i, s.name, describe(s.got), describe(s.want))
			}
		}
	}
}

func caseLifetime(c string) {
	plain := run(nil, filepath.Join(*progs, "lifetime"), c)
	trace := filepath.Join(*work, "lifetime-"+c+".cgs")
	sarif := filepath.Join(*work, "lifetime-"+c+".sarif")
	r, rep, e := traced("lifetime", []string{"-o", trace, "--sarif", sarif}, c)
	p := rep.Processes[0]
	if len(e.Errors) != 1 {
		failf("the program expects %d errors, want 1: this case could not fail", len(e.Errors))
	}
	checkErrors(p, e.Errors)
	checkErrorsSarif(sarif, e.Errors)
	if p.EventsLost != 0 {
		failf("events_lost is %d, want 0", p.EventsLost)
	}
	// It ends as it does untraced: glibc aborts, and Go turns the SIGABRT into exit status 2.
	if plain.code == 0 {
		failf("the plain run exited 0: the bad free did not abort")
	}
	if plain.code < 0 {
		wantExit(r, p, 0, -plain.code)
	} else {
		wantExit(r, p, plain.code, 0)
	}
	// The saved trace gives the same errors.
	again := filepath.Join(*work, "lifetime-"+c+".again.json")
	rr := run(nil, *cgoscope, "report", "--json", again, trace)
	if rr.code != 0 {
		failf("cgoscope report exited %d: %s", rr.code, rr.stderr)
	}
	if rep2 := readReport(again, rr); !reflect.DeepEqual(rep2.Processes[0].Errors, p.Errors) {
		failf("the errors from the saved trace differ from the live run's")
	}
}

// checkErrorsSarif: the SARIF file holds one result per expected error (and nothing else), of the
// kind's rule, located at the bad free: its innermost expected frame (a C function of the
// program, or the Go line of the cgo call), with a stack for each stack the error has.
func checkErrorsSarif(path string, want []expectError) {
	data, err := os.ReadFile(path)
	var raw any
	var log sarifLog
	if err != nil || json.Unmarshal(data, &raw) != nil || json.Unmarshal(data, &log) != nil || len(log.Runs) != 1 {
		failf("SARIF file %s: %v", path, err)
		return
	}
	checkSarif("log", "$", raw)
	res := log.Runs[0].Results
	if len(res) != len(want) {
		failf("SARIF: %d results, want %d (one per lifetime error)", len(res), len(want))
		return
	}
	for i, w := range want {
		g := res[i]
		rule := "cgo-" + strings.ReplaceAll(w.Kind, "_", "-")
		stacks := 1
		if w.Kind == "double_free" {
			stacks = 3
		} else if len(w.Alloc) > 0 {
			stacks = 2
		}
		if g.RuleID != rule || len(g.Stacks) != stacks || len(g.Suppressions) != 0 {
			failf("SARIF result %d: rule %q with %d stacks, %d suppressions; want %q with %d, none", i, g.RuleID,
				len(g.Stacks), len(g.Suppressions), rule, stacks)
		}
		// The Go line may be named after the closure cgo wraps the call in (main.f.funcN, same line).
		at := w.Free[0]
		if len(g.Locations) != 1 || len(g.Locations[0].Logical) == 0 ||
			(g.Locations[0].Logical[0].Name != at.Function && !strings.HasPrefix(g.Locations[0].Logical[0].Name, at.Function+".func")) ||
			(at.Line != 0 && g.Locations[0].Physical.Region.StartLine != at.Line) {
			failf("SARIF result %d: located at %+v, want %s line %d", i, g.Locations, at.Function, at.Line)
		}
	}
}

// caseLifetimeClean: programs that free what they allocate correctly, through every allocation
// function, across threads, report no lifetime error.
func caseLifetimeClean() {
	r, rep, e := traced("lifetime", nil, "clean")
	checkErrors(rep.Processes[0], e.Errors)
	wantExit(r, rep.Processes[0], 0, 0)
	for _, prog := range []string{"leaky", "handoff", "allocfns"} {
		_, rep, e := traced(prog, nil)
		if len(e.Errors) != 0 {
			failf("%s expects lifetime errors", prog)
		}
		for _, p := range rep.Processes {
			checkErrors(p, nil)
		}
	}
}

// caseLifetimeGate: --fail-on-error and --fail-on-leak fail on a lifetime error; a
// double_free: suppression takes it out of the gate.
func caseLifetimeGate() {
	plain := run(nil, filepath.Join(*progs, "lifetime"), "double")
	for _, opt := range []string{"--fail-on-error", "--fail-on-leak"} {
		r, rep, _ := traced("lifetime", []string{opt}, "double")
		if r.code != 23 {
			failf("with %s, cgoscope exited %d, want 23", opt, r.code)
		}
		if errs := rep.Processes[0].Errors; errs == nil || len(*errs) != 1 || (*errs)[0].Suppressed {
			failf("with %s: errors %v, want one, not suppressed", opt, errs)
		}
	}
	supp := filepath.Join(*work, "lifetime.supp")
	if err := os.WriteFile(supp, []byte("# the library frees it\ndouble_free:free_again\ninvalid_free:nothing_here\n"), 0o600); err != nil {
		failf("%v", err)
		return
	}
	r, rep, _ := traced("lifetime", []string{"--fail-on-error", "--suppressions", supp}, "double")
	if r.code != plain.code {
		failf("with the error suppressed, cgoscope exited %d, want the program's %d", r.code, plain.code)
	}
	if errs := rep.Processes[0].Errors; errs == nil || len(*errs) != 1 || !(*errs)[0].Suppressed {
		failf("with double_free:free_again: errors %v, want one, suppressed", errs)
	}
	// Without an error, --fail-on-error lets the program's status through.
	r, _, _ = traced("lifetime", []string{"--fail-on-error"}, "clean")
	if r.code != 0 {
		failf("clean run with --fail-on-error exited %d, want 0", r.code)
	}
}
