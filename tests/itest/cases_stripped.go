// Cases of stripped executables (docs/cgo-facts.md §10): no .symtab and no DWARF, as
// `-ldflags='-s -w'`, strip(1) and `go test` make them. The shim finds the cgo call sites from
// the Go stubs in .gopclntab; the counts must be exact, and leaks must name the C function.
package main

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

func init() {
	cases["stripped-calls"] = caseStrippedCalls
	cases["stripped-callbacks"] = caseStrippedCallbacks
	cases["gate-gotest-stripped"] = caseGateGoTestStripped
}

// strippedBuilds: prog linked with -ldflags='-s -w' (in -progs + "-stripped"), and the normal
// and PIE builds put through strip(1). Each is checked to have no symbol table, so that a case
// cannot pass on symbols.
func strippedBuilds(prog string) map[string]string {
	builds := map[string]string{"go build -ldflags='-s -w'": filepath.Join(*progs+"-stripped", prog)}
	for name, from := range map[string]string{"strip": filepath.Join(*progs, prog), "strip, PIE": filepath.Join(*progs+"-pie", prog)} {
		to := filepath.Join(*work, prog+"-"+strings.NewReplacer(", ", "-", " ", "").Replace(name))
		if out, err := exec.Command("strip", "-o", to, from).CombinedOutput(); err != nil {
			failf("strip %s: %v: %s", from, err, out)
			continue
		}
		builds[name] = to
	}
	for name, path := range builds {
		if hasSymtab(path) {
			failf("%s (%s) has a symbol table: the case would test nothing", path, name)
			delete(builds, name)
		}
	}
	return builds
}

func hasSymtab(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		failf("%s: %v", path, err)
		return true
	}
	defer f.Close()
	return f.Section(".symtab") != nil
}

// caseStrippedCalls: testprogs/calls stripped three ways; 2,000,000 calls of one site and 200
// of another (mix), and r, err := C.f() sites (_C2func_, errno): the program's exact counts.
func caseStrippedCalls() {
	for name, path := range strippedBuilds("calls") {
		before := len(failures)
		for _, mode := range []string{"mix", "errno"} {
			r, rep, e, _, ok := robustRun(120*time.Second, nil, path, nil, mode)
			if !ok {
				continue
			}
			if r.code != 0 {
				failf("calls %s exited %d: %s", mode, r.code, r.stderr)
			}
			checkCalls(rep.Processes[0], e)
			if !strings.Contains(string(r.stderr), "its cgo calls were found from the Go stubs") {
				failf("no note that the cgo calls were found from the Go stubs:\n%s", r.stderr)
			}
		}
		if len(failures) > before {
			failf("(the failures above are for %s)", name)
		}
	}
}

// caseStrippedCallbacks: the two ways the shim installs its context function without symbols.
// testprogs/cgotraceback links runtime.SetCgoTraceback, whose setter the shim calls: exact calls
// and callbacks, and the program's own context function still called. testprogs/callback does
// not: the context variable is found through its export's C wrapper; exact calls and callbacks,
// and leaks named by C function (run_with_callback, in a C file of its own: the frame inside its
// wrapper) and Go line.
func caseStrippedCallbacks() {
	for name, path := range strippedBuilds("cgotraceback") {
		before := len(failures)
		r, rep, e, _, ok := robustRun(60*time.Second, nil, path, nil)
		if ok {
			if r.code != 0 {
				failf("cgotraceback exited %d: %s", r.code, r.stderr)
			}
			checkCalls(rep.Processes[0], e)
		}
		if len(failures) > before {
			failf("(the failures above are for cgotraceback, %s)", name)
		}
	}
	for name, path := range strippedBuilds("callback") {
		before := len(failures)
		r, rep, e, _, ok := robustRun(60*time.Second, nil, path, nil)
		if ok {
			wantExit(r, rep.Processes[0], 0, 0)
			checkCalls(rep.Processes[0], e)
			checkLeaks(rep.Processes[0], e)
		}
		if len(failures) > before {
			failf("(the failures above are for callback, %s)", name)
		}
	}
}

// caseGateGoTestStripped: `go test` as people run it, with no -ldflags: the test binary is
// stripped, and cgoscope still counts testprogs/gotest/stripped's calls exactly (Names of
// make_name, Names-1 of free) and names its leak after the C function, which a suppression by
// that name then matches. The same with -ldflags='-s -w' and as a PIE.
func caseGateGoTestStripped() {
	needGateFlags("gate-go", "gate-src", "gate-gocache")
	mod := filepath.Join(*gateSrc, "testprogs")
	src := filepath.Join(mod, "gotest", "stripped", "stripped.go")
	const names = 50 // stripped.Names
	if markerLine(src, "const Names = 50") == 0 {
		return
	}
	pkg := "cgoscope.test/testprogs/gotest/stripped"
	wantStack := []frame{{Function: "make_name"},
		{Function: pkg + ".Make", File: src, Line: markerLine(src, "cgoscope:leak-go")},
		{Function: pkg + ".TestNames", Line: markerLine(filepath.Join(mod, "gotest", "stripped", "stripped_test.go"), "cgoscope:leak-test")}}
	supp := writeFile("make_name.supp", "leak:make_name\n")
	for _, flags := range [][]string{nil, {"-ldflags=-s -w"}, {"-buildmode=pie"}} {
		what := "go test " + strings.Join(flags, " ")
		jsonDir := mustMkdir(filepath.Join(*work, "gotest-stripped-json"))
		execCmd := fmt.Sprintf("'%s' run --fail-on-leak --json '%s' --", *cgoscope, filepath.Join(jsonDir, "%p.json"))
		args := append(append([]string{"-C", mod, "test", "-count=1"}, flags...), "-exec", execCmd, "./gotest/stripped")
		r := run(gateGoEnv(), *gateGo, args...)
		out := string(r.stdout) + string(r.stderr)
		if r.code == 0 || !strings.Contains(out, "exit status 23") {
			failf("%s -exec '%s': exited %d, want the leak to fail it with status 23:\n%s", what, execCmd, r.code, out)
		}
		if !strings.Contains(out, "is stripped (no symbol table)") {
			failf("%s: the test binary was not stripped (no note in the report), so this tests nothing:\n%s", what, out)
		}
		if !strings.Contains(out, "make_name \u2190 ") { // the text report names a site "C function ← Go line"
			failf("%s: the text report does not name make_name as the leak site's C function:\n%s", what, out)
		}
		procs := reportsIn(jsonDir)
		if len(procs) != 1 {
			failf("%s: %d JSON reports, want 1", what, len(procs))
			continue
		}
		p := procs[0]
		for fn, want := range map[string]int64{"make_name": names, "free": names - 1} {
			if c := findCall(p, pkg, fn); c == nil || c.Calls != want {
				failf("%s: cgo_calls of %s.%s: %+v, want exactly %d calls", what, pkg, fn, c, want)
			}
		}
		if len(p.CgoCalls) != 2 {
			failf("%s: %d cgo_calls entries, want 2 (make_name, free): %+v", what, len(p.CgoCalls), p.CgoCalls)
		}
		user, _ := userLeaks(p)
		if len(user) != 1 || user[0].Blocks != 1 || user[0].Bytes != 16 || !stackHas(user[0].Stack, wantStack) ||
			user[0].Stack[0].Function != "make_name" {
			failf("%s: user leaks %+v; want one block of 16 bytes at %s, make_name first", what, user, describe(wantStack))
		}

		// Suppressed by the C function's name, the leak no longer fails the test.
		execCmd = fmt.Sprintf("'%s' run -q --fail-on-leak --suppressions '%s' --", *cgoscope, supp)
		args = append(append([]string{"-C", mod, "test", "-count=1"}, flags...), "-exec", execCmd, "./gotest/stripped")
		if r := run(gateGoEnv(), *gateGo, args...); r.code != 0 {
			failf("%s with leak:make_name suppressed: exited %d, want 0:\n%s%s", what, r.code, r.stdout, r.stderr)
		}
	}
	os.Remove(supp)
}
