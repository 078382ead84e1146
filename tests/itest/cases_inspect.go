package main

// Cases of `cgoscope inspect`, on four builds of testprogs/leaky: normal, PIE, stripped
// (-ldflags="-s -w") and static (-extldflags=-static). The call sites it must find are read
// here with `go tool nm` from a build that still has its symbols, and checked against what the
// source of leaky calls; the Go version comes from `go version`.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var (
	inspectGo  = flag.String("inspect-go", "go", "the Go command, for `go tool nm` and `go version`")
	inspectRef = flag.String("inspect-ref", "", "leaky built normally (symbols kept): ground truth for stripped builds; default: leaky in -progs")
	// `go tool nm` is built on first use (Go >= 1.25): a shared cache builds it once.
	inspectCache = flag.String("inspect-gocache", "", "GOCACHE for the Go command; default: a cache in -work")
)

func goEnv() []string {
	cache := *inspectCache
	if cache == "" {
		cache = filepath.Join(*work, "go-cache")
	}
	return []string{"GOTOOLCHAIN=local", "GOCACHE=" + cache}
}

type inspectPackage struct {
	Package   string   `json:"package"`
	CallSites int      `json:"call_sites"`
	Functions []string `json:"functions"`
}

type inspectDoc struct {
	GoVersion         *string          `json:"go_version"`
	Static            *bool            `json:"static"`
	PIE               *bool            `json:"pie"`
	Stripped          *bool            `json:"stripped"`
	DWARF             *bool            `json:"dwarf"`
	Traceable         bool             `json:"traceable"`
	CgoCallSites      *int             `json:"cgo_call_sites"`
	HookableCallSites int              `json:"hookable_call_sites"`
	Packages          []inspectPackage `json:"packages"`
	Warnings          []string         `json:"warnings"`
}

// What leaky's source calls through cgo, in package main: C.CString (the _Cmalloc wrapper),
// C.free, C.make_buffer, C.copy_label, C.churn_once.
var leakySourceSites = map[string][]string{
	"main": {"_Cmalloc", "churn_once", "copy_label", "free", "make_buffer"},
}

type inspectVariant struct {
	static, pie, stripped, dwarf bool
	warnings                     []string // each must appear in one warning, fix included
	textLines                    []string // each must appear in the text output
}

func init() {
	variants := map[string]inspectVariant{
		"dynamic": {dwarf: true, textLines: []string{"dynamic, not PIE", "can trace it fully"}},
		"pie":     {pie: true, dwarf: true, textLines: []string{"dynamic, PIE", "can trace it fully"}},
		"stripped": {stripped: true,
			warnings:  []string{"stripped (no .symtab): the cgo call sites are found from their Go stubs", "rebuild without -ldflags=-s", "no DWARF"},
			textLines: []string{"fix: rebuild without -ldflags=-s", "stripped (no .symtab)", "5 will be hooked"}},
		"static": {static: true, dwarf: true,
			warnings:  []string{"static binary", "rebuild without -extldflags=-static"},
			textLines: []string{"fix: rebuild without -extldflags=-static", "cannot trace it"}},
	}
	for name, v := range variants {
		name, v := name, v
		cases["inspect-"+name] = func() { caseInspect(name, v) }
	}
	cases["inspect-errors"] = caseInspectErrors
}

var nmSiteRe = regexp.MustCompile(`^(.+)\._cgo_[0-9a-f]{12}_(?:Cfunc|C2func|Cmacro)_([A-Za-z0-9_]+)$`)

// nmSites: the cgo wrapper-pointer variables (D/d symbols) of bin, per package, and their count.
func nmSites(bin string) (map[string][]string, int) {
	r := run(goEnv(), *inspectGo, "tool", "nm", bin)
	if r.code != 0 {
		fmt.Fprintf(os.Stderr, "itest: go tool nm %s failed (%d): %s\n", bin, r.code, r.stderr)
		os.Exit(1)
	}
	sites := map[string][]string{}
	n := 0
	for _, line := range strings.Split(string(r.stdout), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || (f[1] != "D" && f[1] != "d") {
			continue
		}
		m := nmSiteRe.FindStringSubmatch(f[2])
		if m == nil {
			continue
		}
		pkg := strings.ReplaceAll(m[1], "%2e", ".")
		sites[pkg] = append(sites[pkg], m[2])
		n++
	}
	for pkg := range sites {
		sort.Strings(sites[pkg])
	}
	return sites, n
}

func goVersionOf(bin string) string {
	r := run(goEnv(), *inspectGo, "version", bin)
	f := strings.Fields(string(r.stdout))
	if r.code != 0 || len(f) != 2 || !strings.HasPrefix(f[1], "go1.") {
		fmt.Fprintf(os.Stderr, "itest: go version %s: %q %s\n", bin, r.stdout, r.stderr)
		os.Exit(1)
	}
	return f[1]
}

// inspectJSON runs `cgoscope inspect --json FILE prog`; returns its result and the document.
func inspectJSON(prog string) (result, inspectDoc) {
	path := filepath.Join(*work, filepath.Base(prog)+".inspect.json")
	os.Remove(path)
	r := run(nil, *cgoscope, "inspect", "--json", path, prog)
	var doc inspectDoc
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &doc)
	}
	if err != nil {
		failf("inspect %s (exit %d): no usable JSON %s: %v\nstderr: %s", prog, r.code, path, err, r.stderr)
	} else if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		failf("JSON file %s: %v, want mode 0600", path, err)
	}
	return r, doc
}

// show prints a field that may be absent (null) from the JSON.
func show[T any](p *T) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%#v", *p)
}

func checkFlag(name string, got *bool, want bool) {
	if got == nil {
		failf("JSON has no %q", name)
	} else if *got != want {
		failf("JSON %q is %v, want %v", name, *got, want)
	}
}

func caseInspect(variant string, v inspectVariant) {
	prog := filepath.Join(*progs, "leaky")
	ref := *inspectRef
	if ref == "" {
		ref = prog
	}
	truthSites, truthN := nmSites(ref)
	if !v.stripped {
		// This build has its own symbols: they are the truth, and must agree with the reference.
		own, n := nmSites(prog)
		if fmt.Sprint(own) != fmt.Sprint(truthSites) || n != truthN {
			failf("go tool nm: %s has %d sites %v, the reference %s %d %v", prog, n, own, ref, truthN, truthSites)
		}
	}
	if fmt.Sprint(truthSites) != fmt.Sprint(leakySourceSites) {
		failf("ground truth from go tool nm %v is not what leaky's source calls %v: fix the test", truthSites, leakySourceSites)
	}
	wantVersion := goVersionOf(prog)

	r, doc := inspectJSON(prog)
	if r.code != 0 {
		failf("cgoscope inspect %s exited %d, want 0: %s", prog, r.code, r.stderr)
	}
	checkFlag("static", doc.Static, v.static)
	checkFlag("pie", doc.PIE, v.pie)
	checkFlag("stripped", doc.Stripped, v.stripped)
	checkFlag("dwarf", doc.DWARF, v.dwarf)
	if doc.GoVersion == nil || *doc.GoVersion != wantVersion {
		failf("JSON go_version is %s, want %q", show(doc.GoVersion), wantVersion)
	}
	if doc.CgoCallSites == nil || *doc.CgoCallSites != truthN {
		failf("JSON cgo_call_sites is %s, want %d", show(doc.CgoCallSites), truthN)
	}
	checkPackages(doc.Packages, truthSites)
	// A stripped build's sites are found from its Go stubs (docs/cgo-facts.md §10): all of them,
	// as go tool nm lists them for the unstripped reference.
	wantHookable := truthN
	if v.static {
		wantHookable = 0
	}
	if doc.HookableCallSites != wantHookable {
		failf("JSON hookable_call_sites is %d, want %d", doc.HookableCallSites, wantHookable)
	}
	if doc.Traceable == v.static {
		failf("JSON traceable is %v for a %s build", doc.Traceable, variant)
	}
	checkWarnings(doc.Warnings, v.warnings)

	// The text: the Go version, the sites, and a fix line for each problem.
	t := run(nil, *cgoscope, "inspect", prog)
	if t.code != 0 {
		failf("cgoscope inspect (text) exited %d: %s", t.code, t.stderr)
	}
	want := append([]string{wantVersion, "cgo call sites  " + strconv.Itoa(truthN) + " in 1 package",
		"main: _Cmalloc, churn_once, copy_label, free, make_buffer"}, v.textLines...)
	for _, w := range want {
		if !bytes.Contains(t.stdout, []byte(w)) {
			failf("text output lacks %q:\n%s", w, t.stdout)
		}
	}
}

func checkPackages(got []inspectPackage, want map[string][]string) {
	m := map[string][]string{}
	for _, p := range got {
		m[p.Package] = p.Functions
		if p.CallSites != len(want[p.Package]) {
			failf("package %s: call_sites %d, want %d", p.Package, p.CallSites, len(want[p.Package]))
		}
	}
	if len(m) != len(got) {
		failf("a package is listed twice: %v", got)
	}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		failf("JSON packages %v, want %v", m, want)
	}
}

func checkWarnings(got, want []string) {
	if len(want) == 0 && len(got) != 0 {
		failf("warnings for a build with nothing wrong: %q", got)
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.Contains(g, w)
		}
		if !found {
			failf("no warning mentions %q: %q", w, got)
		}
	}
}

func caseInspectErrors() {
	leaky := filepath.Join(*progs, "leaky")
	text := filepath.Join(*work, "notes.txt")
	if err := os.WriteFile(text, []byte("not a program\n"), 0o755); err != nil {
		failf("%v", err)
	}
	for _, c := range []struct {
		args []string
		code int
		what string
	}{
		{[]string{"inspect"}, 2, "no program"},
		{[]string{"inspect", leaky, leaky}, 2, "two programs"},
		{[]string{"inspect", "--bogus", leaky}, 2, "unknown option"},
		{[]string{"inspect", filepath.Join(*work, "missing")}, 1, "a missing file"},
		{[]string{"inspect", text}, 1, "a text file"},
		{[]string{"inspect", *work}, 1, "a directory"},
	} {
		r := run(nil, *cgoscope, c.args...)
		if r.code != c.code {
			failf("inspect on %s exited %d, want %d: %s", c.what, r.code, c.code, r.stderr)
		}
		if c.code == 1 && len(r.stderr) == 0 {
			failf("inspect on %s said nothing on stderr", c.what)
		}
	}

	// An ELF file that Go did not build: cgoscope itself.
	r, doc := inspectJSON(*cgoscope)
	if r.code != 0 || doc.GoVersion != nil || doc.CgoCallSites == nil || *doc.CgoCallSites != 0 {
		failf("inspect on a C program: exit %d, go_version %s, cgo_call_sites %s; want 0, null, 0",
			r.code, show(doc.GoVersion), show(doc.CgoCallSites))
	}
	checkWarnings(doc.Warnings, []string{"not a Go binary"})

	// setuid: the loader would ignore LD_PRELOAD.
	suid := filepath.Join(*work, "leaky-suid")
	data, err := os.ReadFile(leaky)
	if err == nil {
		os.Remove(suid)
		err = os.WriteFile(suid, data, 0o755)
	}
	if err == nil {
		err = os.Chmod(suid, 0o755|os.ModeSetuid)
	}
	if err != nil {
		failf("cannot make a setuid copy: %v", err)
		return
	}
	r, doc = inspectJSON(suid)
	if r.code != 0 || doc.Traceable {
		failf("inspect on a setuid program: exit %d, traceable %v; want 0, false", r.code, doc.Traceable)
	}
	checkWarnings(doc.Warnings, []string{"setuid", "copy without the setuid"})

	// --json -: the document alone on stdout.
	r = run(nil, *cgoscope, "inspect", "--json", "-", leaky)
	var d inspectDoc
	if err := json.Unmarshal(r.stdout, &d); err != nil || r.code != 0 || d.CgoCallSites == nil {
		failf("inspect --json - : exit %d, stdout is not the JSON document (%v): %q", r.code, err, r.stdout)
	}
}
