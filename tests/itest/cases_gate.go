package main

// The CI gate (docs/ci.md): `go test -exec 'cgoscope run --fail-on-leak --'` on real packages,
// suppressions, the pprof and SARIF exports, and `cgoscope diff` on a program before and after
// a fix. Ground truth comes from the programs (truth.Write) and from marker comments in their
// source, never from cgoscope.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

var (
	gateGo      = flag.String("gate-go", "", "the go command (go test, go tool pprof)")
	gateSrc     = flag.String("gate-src", "", "the repository root (testprogs/ is under it)")
	gateGocache = flag.String("gate-gocache", "", "GOCACHE for the go command")
	gatePie     = flag.String("gate-pie", "", "directory of the PIE builds of the test programs")
)

func init() {
	cases["gate-gotest"] = caseGateGoTest
	cases["gate-suppress"] = caseGateSuppress
	cases["gate-pprof"] = caseGatePprof
	cases["gate-sarif"] = caseGateSarif
	cases["gate-diff"] = caseGateDiff
}

func needGateFlags(names ...string) {
	vals := map[string]string{"gate-go": *gateGo, "gate-src": *gateSrc, "gate-gocache": *gateGocache, "gate-pie": *gatePie}
	for _, n := range names {
		if vals[n] == "" {
			fmt.Fprintf(os.Stderr, "itest: this case needs -%s\n", n)
			os.Exit(2)
		}
	}
}

func gateGoEnv() []string {
	return []string{"GOCACHE=" + *gateGocache, "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false", "CGO_ENABLED=1"}
}

// markerLine is the line of path holding marker: where the source says a leak is.
func markerLine(path, marker string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "itest: %v\n", err)
		os.Exit(2)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), marker) {
			return n
		}
	}
	fmt.Fprintf(os.Stderr, "itest: no %q in %s\n", marker, path)
	os.Exit(2)
	return 0
}

func mustMkdir(dir string) string {
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return dir
}

// reportsIn reads every JSON report of dir (one per process, from --json DIR/%p.json).
func reportsIn(dir string) []process {
	var all []process
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		all = append(all, readReport(f, result{}).Processes...)
	}
	return all
}

// The report as the gate's cases read it: the fields of leaks and totals that suppressions add.
type gateLeak struct {
	leak
	Suppression *struct {
		Pattern string `json:"pattern"`
		Source  string `json:"source"`
	} `json:"suppression"`
}

type gateProcess struct {
	Totals struct {
		LeakedBlocks     int64 `json:"leaked_blocks"`
		LeakedBytes      int64 `json:"leaked_bytes"`
		SuppressedBlocks int64 `json:"suppressed_blocks"`
		SuppressedBytes  int64 `json:"suppressed_bytes"`
	} `json:"totals"`
	Leaks []gateLeak `json:"leaks"`
}

func readGateReport(path string) gateProcess {
	var doc struct {
		Processes []gateProcess `json:"processes"`
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &doc)
	}
	if err != nil || len(doc.Processes) != 1 {
		fmt.Fprintf(os.Stderr, "itest: %s: %v (%d processes)\n", path, err, len(doc.Processes))
		os.Exit(1)
	}
	return doc.Processes[0]
}

// splitUserLeaks: the user leaks of all, split by whether a suppression matched them.
func splitUserLeaks[L any](all []L, base func(L) leak) (unsuppressed, suppressed []L) {
	for _, l := range all {
		if b := base(l); b.Origin != "user" {
			continue
		} else if b.Suppressed {
			suppressed = append(suppressed, l)
		} else {
			unsuppressed = append(unsuppressed, l)
		}
	}
	return
}

func gateUserLeaks(p gateProcess) (unsuppressed, suppressed []gateLeak) {
	return splitUserLeaks(p.Leaks, func(l gateLeak) leak { return l.leak })
}

func userLeaks(p process) (unsuppressed, suppressed []leak) {
	return splitUserLeaks(p.Leaks, func(l leak) leak { return l })
}

// ---- 1. go test -exec -------------------------------------------------------------------------

func caseGateGoTest() {
	needGateFlags("gate-go", "gate-src", "gate-gocache")
	mod := filepath.Join(*gateSrc, "testprogs")
	leaksGo := filepath.Join(mod, "gotest", "leaks", "leaks.go")
	leakLine := markerLine(leaksGo, "cgoscope:leak-go")
	testLine := markerLine(filepath.Join(mod, "gotest", "leaks", "leaks_test.go"), "cgoscope:leak-test")
	jsonDir := mustMkdir(filepath.Join(*work, "gotest-json"))
	exec := fmt.Sprintf("'%s' run --fail-on-leak --json '%s' --", *cgoscope, filepath.Join(jsonDir, "%p.json"))
	symbols := "-ldflags=-s=false -w=false"
	goTest := func(args ...string) result {
		cmd := append([]string{"-C", mod, "test", "-count=1"}, args...)
		return run(gateGoEnv(), *gateGo, cmd...)
	}

	// A package whose test leaks: go test fails, through cgoscope's status, naming the Go line.
	r := goTest(symbols, "-exec", exec, "./gotest/leaks")
	out := string(r.stdout) + string(r.stderr)
	if r.code == 0 {
		failf("go test -exec '%s' ./gotest/leaks passed; its test leaks", exec)
	}
	if !strings.Contains(out, "exit status 23") {
		failf("go test output does not show cgoscope's exit status 23:\n%s", out)
	}
	where := fmt.Sprintf("leaks.go:%d", leakLine)
	if !strings.Contains(out, "gotest/leaks.Name") || !strings.Contains(out, where) {
		failf("the report in the go test output does not name gotest/leaks.Name at %s:\n%s", where, out)
	}
	procs := reportsIn(jsonDir)
	if len(procs) != 1 {
		failf("%d JSON reports in %s, want 1 (the leaks test binary)", len(procs), jsonDir)
	} else {
		user, _ := userLeaks(procs[0])
		want := []frame{{Function: "cgoscope.test/testprogs/gotest/leaks.Name", File: leaksGo, Line: leakLine},
			{Function: "cgoscope.test/testprogs/gotest/leaks.TestNameLeaks", Line: testLine}}
		if len(user) != 1 || user[0].Blocks != 1 || user[0].Bytes != int64(len("forgotten")+1) || !stackHas(user[0].Stack, want) {
			failf("user leaks of the leaks test: %+v; want one block of 10 bytes at %s", user, describe(want))
		}
	}

	// The same binary run directly: exactly 23, or --leak-exitcode; a test that frees
	// everything passes.
	bin := filepath.Join(*work, "leaks.test")
	if c := goTest(symbols, "-c", "-o", bin, "./gotest/leaks"); c.code != 0 {
		failf("go test -c failed: %s", c.stderr)
		return
	}
	if c := run(nil, *cgoscope, "run", "-q", "--fail-on-leak", "--", bin); c.code != 23 {
		failf("cgoscope run --fail-on-leak -- leaks.test exited %d, want 23", c.code)
	}
	if c := run(nil, *cgoscope, "run", "-q", "--fail-on-leak", "--leak-exitcode", "7", "--", bin); c.code != 7 {
		failf("with --leak-exitcode 7: exited %d, want 7", c.code)
	}
	if c := run(nil, *cgoscope, "run", "-q", "--", bin); c.code != 0 {
		failf("without --fail-on-leak: exited %d, want the tests' own 0", c.code)
	}
	if c := run(nil, *cgoscope, "run", "-q", "--fail-on-leak", "--", bin, "-test.run", "TestLabelFreed"); c.code != 0 {
		failf("only the test that frees everything: exited %d, want 0: %s", c.code, c.stderr)
	}
	if c := run(nil, *cgoscope, "run", "-q", "--fail-on-leak", "--", bin, "-test.run", "TestNoSuchTest"); c.code != 0 {
		failf("no test at all (only the runtime's allocations): exited %d, want 0: %s", c.code, c.stderr)
	}

	// A package that frees everything passes, from parallel tests and setenv too; -v shows that
	// cgoscope did run and report.
	r = goTest(symbols, "-v", "-exec", exec, "./gotest/clean")
	out = string(r.stdout) + string(r.stderr)
	if r.code != 0 || !strings.Contains(out, "ok  \tcgoscope.test/testprogs/gotest/clean") {
		failf("go test -exec on gotest/clean exited %d, want 0:\n%s", r.code, out)
	}
	if !strings.Contains(out, "== cgoscope: process") || !strings.Contains(out, "== Summary: 0 bytes in 0 blocks") {
		failf("go test -v on gotest/clean shows no cgoscope report with 0 bytes leaked:\n%s", out)
	}

	// The whole tree: the leaking package fails, the clean one and the one without cgo (a
	// static test binary) pass.
	r = goTest(symbols, "-exec", exec, "./gotest/...")
	out = string(r.stdout) + string(r.stderr)
	for _, want := range []string{"FAIL\tcgoscope.test/testprogs/gotest/leaks", "ok  \tcgoscope.test/testprogs/gotest/clean",
		"ok  \tcgoscope.test/testprogs/gotest/purego"} {
		if !strings.Contains(out, want) {
			failf("go test -exec ./gotest/... : no %q in:\n%s", want, out)
		}
	}
	if r.code == 0 {
		failf("go test -exec ./gotest/... passed; one package leaks")
	}

	// Without the linker flags go test strips its test binaries: the gate still fails, with the
	// same leak at the same Go line, and no advice to add -ldflags is needed (gate-gotest-stripped
	// checks such a binary's calls and C names).
	r = goTest("-exec", exec, "./gotest/leaks")
	out = string(r.stdout) + string(r.stderr)
	if !strings.Contains(out, "exit status 23") || !strings.Contains(out, where) || strings.Contains(out, "-ldflags='-s=false") {
		failf("go test without -ldflags: want exit status 23, the leak at %s and no hint about -ldflags:\n%s", where, out)
	}
}

// ---- 2. suppressions ----------------------------------------------------------------------

func writeFile(name, text string) string {
	path := filepath.Join(*work, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return path
}

func caseGateSuppress() {
	supp := writeFile("greeting.supp", "# the greeting is kept on purpose\nleak:main.leakGreeting\n")
	leakyJSON := filepath.Join(*work, "leaky.json")
	r, _, e := traced("leaky", []string{"--suppressions", supp, "--fail-on-leak"})
	p := readGateReport(leakyJSON)
	if r.code != 23 {
		failf("leaky with one site suppressed and --fail-on-leak exited %d, want 23", r.code)
	}
	var wantBlocks, wantBytes int64
	var greeting *expectSite
	for i, s := range e.Leaks {
		if s.Frames[0].Function == "main.leakGreeting" {
			greeting = &e.Leaks[i]
			continue
		}
		if s.Kind == "lost" { /* the rest is held, not leaked */
			wantBlocks += s.Blocks
			wantBytes += s.Bytes
		}
	}
	if greeting == nil {
		failf("leaky's truth has no main.leakGreeting leak")
		return
	}
	user, suppressed := gateUserLeaks(p)
	if len(suppressed) != 1 || !stackHas(suppressed[0].Stack, greeting.Frames) || suppressed[0].Bytes != greeting.Bytes {
		failf("suppressed user leaks: %+v; want exactly the one at %s", suppressed, describe(greeting.Frames))
	} else if suppressed[0].Suppression == nil || suppressed[0].Suppression.Source != supp+":2" ||
		suppressed[0].Suppression.Pattern != "main.leakGreeting" {
		failf(`the suppressed leak's "suppression" is %+v, want pattern main.leakGreeting from %s:2`, suppressed[0].Suppression, supp)
	}
	for _, l := range user {
		if stackHas(l.Stack, greeting.Frames) {
			failf("the greeting leak is also reported unsuppressed")
		}
	}
	if len(user) != len(e.Leaks)-1 {
		failf("%d unsuppressed user leak sites, want %d", len(user), len(e.Leaks)-1)
	}
	if p.Totals.LeakedBlocks != wantBlocks || p.Totals.LeakedBytes != wantBytes ||
		p.Totals.SuppressedBlocks != greeting.Blocks || p.Totals.SuppressedBytes != greeting.Bytes {
		failf("totals %+v: want leaked %d/%d and suppressed %d/%d", p.Totals, wantBlocks, wantBytes, greeting.Blocks, greeting.Bytes)
	}
	if !strings.Contains(string(r.stderr), "(suppressed by leak:main.leakGreeting, "+supp+":2)") {
		failf("the text report does not mark the suppressed leak:\n%s", r.stderr)
	}

	// Every user site suppressed (a glob on the file): the gate passes. Runtime leaks never
	// fail it, even with the defaults off.
	all := writeFile("all.supp", "leak:*/leaky/main.go\n")
	r, _, _ = traced("leaky", []string{"--suppressions", all, "--fail-on-leak", "--no-default-suppressions"})
	p = readGateReport(leakyJSON)
	user, suppressed = gateUserLeaks(p)
	if r.code != 0 || len(user) != 0 || len(suppressed) != len(e.Leaks) || p.Totals.LeakedBytes != 0 {
		failf("all user sites suppressed: exit %d, %d unsuppressed, %d suppressed (want 0, 0, %d)", r.code, len(user), len(suppressed), len(e.Leaks))
	}
	runtimeSuppressed := func(p gateProcess) (n, of int) {
		for _, l := range p.Leaks {
			if l.Origin == "runtime" {
				of++
				if l.Suppressed {
					n++
				}
			}
		}
		return
	}
	if n, of := runtimeSuppressed(p); of == 0 || n != 0 {
		failf("--no-default-suppressions: %d of %d runtime leaks still suppressed, want 0 of at least 1", n, of)
	}
	traced("leaky", nil)
	p = readGateReport(leakyJSON)
	if n, of := runtimeSuppressed(p); of == 0 || n != of {
		failf("default suppressions: %d of %d runtime leaks suppressed, want all (thread start, ld.so)", n, of)
	}
	if u, s := gateUserLeaks(p); len(u) != len(e.Leaks) || len(s) != 0 {
		failf("default suppressions touched user leaks: %d unsuppressed, %d suppressed", len(u), len(s))
	}

	// The defaults can be listed, in the file format.
	l := run(nil, *cgoscope, "run", "--list-default-suppressions")
	if l.code != 0 || !bytes.Contains(l.stdout, []byte("\nleak:^x_cgo_\n")) {
		failf("--list-default-suppressions exited %d: %s", l.code, l.stdout)
	}

	// A bad suppression file stops cgoscope before the program runs, naming file and line.
	bad := writeFile("bad.supp", "leak:ok\nrace:main.leakNames\n")
	b := run(nil, *cgoscope, "run", "--suppressions", bad, "--", filepath.Join(*progs, "leaky"))
	if b.code != 2 || !strings.Contains(string(b.stderr), bad+":2") || len(b.stdout) != 0 {
		failf("bad suppression file: exit %d, stdout %q, stderr %q; want 2, nothing run, and %s:2 named", b.code, b.stdout, b.stderr, bad)
	}
	if m := run(nil, *cgoscope, "run", "--suppressions", filepath.Join(*work, "missing.supp"), "--", "true"); m.code != 2 ||
		!strings.Contains(string(m.stderr), "missing.supp") {
		failf("missing suppression file: exit %d, stderr %q", m.code, m.stderr)
	}

	// `report` applies suppressions and the gate to a saved trace the same way.
	trace := filepath.Join(*work, "leaky.cgs")
	traced("leaky", []string{"-o", trace})
	again := filepath.Join(*work, "leaky.report.json")
	rr := run(nil, *cgoscope, "report", "-q", "--fail-on-leak", "--suppressions", supp, "--json", again, trace)
	readReport(again, rr)
	if later := readGateReport(again); rr.code != 23 || later.Totals.SuppressedBytes != greeting.Bytes {
		failf("cgoscope report --fail-on-leak --suppressions: exit %d, totals %+v", rr.code, later.Totals)
	}
	if rr = run(nil, *cgoscope, "report", "-q", "--fail-on-leak", "--suppressions", all, trace); rr.code != 0 {
		failf("cgoscope report with every site suppressed exited %d, want 0", rr.code)
	}
}

// ---- 3. pprof -----------------------------------------------------------------------------

func pprofTop(path string, args ...string) (string, bool) {
	a := append([]string{"tool", "pprof", "-top", "-nodefraction=0", "-nodecount=10000"}, args...)
	r := run(gateGoEnv(), *gateGo, append(a, path)...)
	if r.code != 0 {
		failf("go tool pprof %v exited %d: %s", args, r.code, r.stderr)
		return "", false
	}
	return string(r.stdout), true
}

// flat is the flat value pprof -top shows for fn, or -1.
func flat(top, fn string) int64 {
	re := regexp.MustCompile(`(?m)^\s*([0-9.]+)([a-zA-Z]*)\s+[0-9.]+%\s+[0-9.]+%\s+[0-9.]+[a-zA-Z]*\s+[0-9.]+%\s+` + regexp.QuoteMeta(fn) + `( \(inline\))?$`)
	m := re.FindStringSubmatch(top)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return int64(v)
}

func caseGatePprof() {
	needGateFlags("gate-go", "gate-gocache")
	// A copy of the program, removed before pprof runs: the profile must stand on its own.
	bin := filepath.Join(*work, "leaky-copy")
	if err := copyFile(filepath.Join(*progs, "leaky"), bin); err != nil {
		failf("copy leaky: %v", err)
		return
	}
	prof := filepath.Join(*work, "leaky.pb.gz")
	jsonPath := filepath.Join(*work, "leaky-copy.json")
	expPath := filepath.Join(*work, "leaky-copy.expect.json")
	r := run([]string{"CGOSCOPE_EXPECT=" + expPath}, *cgoscope, "run", "-q", "--json", jsonPath, "--pprof", prof, "--", bin)
	p := readReport(jsonPath, r).Processes[0]
	e := readExpect(expPath)
	checkLeaks(p, e)
	os.Remove(bin)

	top, ok := pprofTop(prof, "-unit=B", "-tagfocus=origin=user")
	if !ok {
		return
	}
	if !strings.Contains(top, "Type: leaked_bytes") {
		failf("pprof's default sample type is not leaked_bytes:\n%s", top)
	}
	held, _ := pprofTop(prof, "-unit=B", "-sample_index=reachable_bytes", "-tagfocus=origin=user")
	for _, s := range e.Leaks {
		in, what := top, "leaked_bytes"
		if s.Kind != "lost" { /* held blocks are not leaked: they have a sample type of their own */
			in, what = held, "reachable_bytes"
		}
		if !strings.Contains(in, " "+s.Frames[0].Function+"\n") {
			failf("go tool pprof -top (%s) does not show %s:\n%s", what, s.Frames[0].Function, in)
		}
	}
	if want := fmt.Sprintf("Showing nodes accounting for %dB, ", p.Totals.ReachableBytes); !strings.Contains(held, want) {
		failf("pprof's held user blocks do not add up to %d bytes (%q):\n%s", p.Totals.ReachableBytes, want, held)
	}
	if want := fmt.Sprintf("Showing nodes accounting for %dB, ", p.Totals.LeakedBytes); !strings.Contains(top, want) {
		failf("pprof's user leaks do not add up to %d bytes (%q):\n%s", p.Totals.LeakedBytes, want, top)
	}
	objs, _ := pprofTop(prof, "-sample_index=leaked_objects", "-tagfocus=origin=user")
	if v := flat(objs, "make_buffer"); v != 4 {
		failf("pprof leaked_objects in make_buffer: %d, want 4:\n%s", v, objs)
	}
	// The cgo calls, by call site: the counts of the JSON report.
	calls, _ := pprofTop(prof, "-sample_index=cgo_calls")
	for _, c := range p.CgoCalls {
		fn := c.Package + "._Cfunc_" + c.Function
		if v := flat(calls, fn); v != c.Calls {
			failf("pprof cgo_calls of %s: %d, want %d (the JSON report's):\n%s", fn, v, c.Calls, calls)
		}
	}
	if !strings.Contains(calls, "main.churn") {
		failf("pprof's cgo calls do not show their caller main.churn:\n%s", calls)
	}
	if ct, _ := pprofTop(prof, "-sample_index=c_time"); !strings.Contains(ct, "Type: c_time") {
		failf("no c_time sample type:\n%s", ct)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ---- 4. SARIF -----------------------------------------------------------------------------

// The SARIF 2.1.0 schema's required and allowed properties, for the objects cgoscope writes.
type sarifType struct {
	required, allowed []string
	children          map[string]string // property -> type of its value (or of its items)
}

var sarifSchema = map[string]sarifType{
	"log":                      {[]string{"version", "runs"}, []string{"$schema", "version", "runs", "inlineExternalProperties", "properties"}, map[string]string{"runs": "run"}},
	"run":                      {[]string{"tool"}, []string{"tool", "results", "originalUriBaseIds", "invocations", "artifacts", "properties"}, map[string]string{"tool": "tool", "results": "result", "originalUriBaseIds": "artifactLocationMap"}},
	"tool":                     {[]string{"driver"}, []string{"driver", "extensions", "properties"}, map[string]string{"driver": "toolComponent"}},
	"toolComponent":            {[]string{"name"}, []string{"name", "version", "semanticVersion", "informationUri", "rules", "fullName", "properties"}, map[string]string{"rules": "reportingDescriptor"}},
	"reportingDescriptor":      {[]string{"id"}, []string{"id", "name", "shortDescription", "fullDescription", "help", "helpUri", "defaultConfiguration", "properties"}, map[string]string{"shortDescription": "multiformatMessageString", "fullDescription": "multiformatMessageString", "help": "multiformatMessageString", "defaultConfiguration": "reportingConfiguration"}},
	"reportingConfiguration":   {nil, []string{"enabled", "level", "rank", "parameters", "properties"}, nil},
	"multiformatMessageString": {[]string{"text"}, []string{"text", "markdown", "properties"}, nil},
	"result":                   {[]string{"message"}, []string{"ruleId", "ruleIndex", "rule", "kind", "level", "message", "locations", "relatedLocations", "partialFingerprints", "fingerprints", "stacks", "codeFlows", "suppressions", "properties"}, map[string]string{"message": "message", "locations": "location", "relatedLocations": "location", "stacks": "stack", "codeFlows": "codeFlow", "suppressions": "suppression"}},
	"message":                  {nil, []string{"text", "markdown", "id", "arguments", "properties"}, nil},
	"location":                 {nil, []string{"id", "physicalLocation", "logicalLocations", "message", "annotations", "relationships", "properties"}, map[string]string{"physicalLocation": "physicalLocation", "logicalLocations": "logicalLocation", "message": "message"}},
	"physicalLocation":         {nil, []string{"address", "artifactLocation", "region", "contextRegion", "properties"}, map[string]string{"artifactLocation": "artifactLocation", "region": "region"}},
	"artifactLocation":         {nil, []string{"uri", "uriBaseId", "index", "description", "properties"}, nil},
	"region":                   {nil, []string{"startLine", "startColumn", "endLine", "endColumn", "charOffset", "charLength", "byteOffset", "byteLength", "snippet", "message", "sourceLanguage", "properties"}, nil},
	"logicalLocation":          {nil, []string{"name", "index", "fullyQualifiedName", "decoratedName", "parentIndex", "kind", "properties"}, nil},
	"stack":                    {[]string{"frames"}, []string{"message", "frames", "properties"}, map[string]string{"message": "message", "frames": "stackFrame"}},
	"stackFrame":               {nil, []string{"location", "module", "threadId", "parameters", "properties"}, map[string]string{"location": "location"}},
	"codeFlow":                 {[]string{"threadFlows"}, []string{"message", "threadFlows", "properties"}, map[string]string{"threadFlows": "threadFlow"}},
	"threadFlow":               {[]string{"locations"}, []string{"id", "message", "initialState", "immutableState", "locations", "properties"}, map[string]string{"locations": "threadFlowLocation"}},
	"threadFlowLocation":       {nil, []string{"index", "location", "stack", "kinds", "taxa", "module", "state", "nestingLevel", "executionOrder", "executionTimeUtc", "importance", "webRequest", "webResponse", "properties"}, map[string]string{"location": "location"}},
	"suppression":              {[]string{"kind"}, []string{"guid", "kind", "status", "justification", "location", "properties"}, nil},
}

func checkSarif(typ, path string, v any) {
	if typ == "artifactLocationMap" {
		m, _ := v.(map[string]any)
		for k, x := range m {
			checkSarif("artifactLocation", path+"."+k, x)
		}
		return
	}
	if arr, ok := v.([]any); ok {
		for i, x := range arr {
			checkSarif(typ, fmt.Sprintf("%s[%d]", path, i), x)
		}
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		failf("SARIF %s: a %s must be an object, got %T", path, typ, v)
		return
	}
	t := sarifSchema[typ]
	for _, r := range t.required {
		if _, ok := obj[r]; !ok {
			failf("SARIF %s: the %s lacks the required %q", path, typ, r)
		}
	}
	for k, x := range obj {
		allowed := false
		for _, a := range t.allowed {
			allowed = allowed || a == k
		}
		if !allowed {
			failf("SARIF %s: %q is not a property of %s", path, k, typ)
		}
		if c, ok := t.children[k]; ok {
			checkSarif(c, path+"."+k, x)
		}
	}
	switch typ {
	case "message":
		if _, ok := obj["text"]; !ok {
			if _, ok := obj["id"]; !ok {
				failf("SARIF %s: a message needs text or id", path)
			}
		}
	case "region":
		if l, ok := obj["startLine"].(float64); ok && l < 1 {
			failf("SARIF %s: startLine %v < 1", path, l)
		}
	case "suppression":
		if k := obj["kind"]; k != "inSource" && k != "external" {
			failf("SARIF %s: suppression kind %v", path, k)
		}
	}
}

type sarifLocation struct {
	Physical struct {
		Artifact struct {
			URI       string `json:"uri"`
			URIBaseID string `json:"uriBaseId"`
		} `json:"artifactLocation"`
		Region struct {
			StartLine int `json:"startLine"`
		} `json:"region"`
	} `json:"physicalLocation"`
	Logical []struct {
		Name string `json:"fullyQualifiedName"`
	} `json:"logicalLocations"`
}

type sarifLog struct {
	Version string `json:"version"`
	Runs    []struct {
		Bases map[string]struct {
			URI string `json:"uri"`
		} `json:"originalUriBaseIds"`
		Results []struct {
			RuleID    string          `json:"ruleId"`
			Locations []sarifLocation `json:"locations"`
			Stacks    []struct {
				Frames []struct {
					Location sarifLocation `json:"location"`
				} `json:"frames"`
			} `json:"stacks"`
			CodeFlows []struct {
				ThreadFlows []struct {
					Locations []struct {
						Location sarifLocation `json:"location"`
					} `json:"locations"`
				} `json:"threadFlows"`
			} `json:"codeFlows"`
			Suppressions []struct {
				Kind string `json:"kind"`
			} `json:"suppressions"`
		} `json:"results"`
	} `json:"runs"`
}

func caseGateSarif() {
	needGateFlags("gate-src")
	sarif := filepath.Join(*work, "leaky.sarif")
	supp := writeFile("greeting.supp", "leak:main.leakGreeting\n")
	_, rep, e := traced("leaky", []string{"--sarif", sarif, "--source-root", *gateSrc, "--suppressions", supp})
	data, err := os.ReadFile(sarif)
	if err != nil {
		failf("no SARIF file: %v", err)
		return
	}
	var raw any
	var log sarifLog
	if err := json.Unmarshal(data, &raw); err != nil || json.Unmarshal(data, &log) != nil {
		failf("the SARIF file is not JSON: %v", err)
		return
	}
	checkSarif("log", "$", raw)
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		failf("SARIF version %q with %d runs, want 2.1.0 and 1", log.Version, len(log.Runs))
		return
	}
	run := log.Runs[0]
	if base := run.Bases["%SRCROOT%"].URI; base != "file://"+filepath.Clean(*gateSrc)+"/" {
		failf("%%SRCROOT%% is %q, want file://%s/", base, *gateSrc)
	}
	// One result per site of lost blocks: held blocks are not findings.
	var lost []expectSite
	for _, site := range e.Leaks {
		if site.Kind == "lost" {
			lost = append(lost, site)
		}
	}
	user, suppressed := userLeaks(rep.Processes[0])
	if len(run.Results) != len(lost) || len(user)+len(suppressed) != len(e.Leaks) {
		failf("%d SARIF results, want one per user leak site of lost blocks (%d of %d sites)", len(run.Results), len(lost), len(user)+len(suppressed))
	}
	// Where each site must point: the Go line of the cgo call for C.CString, the line of the
	// allocation for C code (found in the source, not asked of cgoscope).
	src := filepath.Join(*gateSrc, "testprogs", "leaky", "main.go")
	cLines := map[string]int{"make_buffer": markerLine(src, "= malloc(n);"), "copy_label": markerLine(src, "return strdup(s);")}
	for _, site := range lost {
		wantLine, wantFn := site.Frames[0].Line, site.Frames[0].Function
		if len(site.Frames) > 1 {
			wantFn = site.Frames[1].Function
			wantLine = cLines[wantFn]
		}
		found := false
		for _, res := range run.Results {
			if len(res.Locations) != 1 {
				continue
			}
			loc := res.Locations[0]
			if loc.Physical.Region.StartLine != wantLine || len(loc.Logical) == 0 || loc.Logical[0].Name != wantFn {
				continue
			}
			found = true
			if loc.Physical.Artifact.URI != "testprogs/leaky/main.go" || loc.Physical.Artifact.URIBaseID != "%SRCROOT%" {
				failf("SARIF result for %s: artifact %+v, want testprogs/leaky/main.go under %%SRCROOT%%", wantFn, loc.Physical.Artifact)
			}
			if res.RuleID != "cgo-leak" || len(res.Stacks) != 1 || len(res.Stacks[0].Frames) < 3 {
				failf("SARIF result for %s: rule %q, %d stacks", wantFn, res.RuleID, len(res.Stacks))
			}
			if len(res.CodeFlows) != 1 || len(res.CodeFlows[0].ThreadFlows) != 1 {
				failf("SARIF result for %s: no code flow", wantFn)
			} else {
				fl := res.CodeFlows[0].ThreadFlows[0].Locations
				first, last := fl[0].Location, fl[len(fl)-1].Location
				// leaky leaks on a goroutine of its own: the flow starts where it does, in
				// main.leakAll, or in the wrapper of the go statement (Go 1.22 and later).
				start := first.Logical[0].Name
				if (start != "main.leakAll" && !strings.HasPrefix(start, "main.main.gowrap") && !strings.HasPrefix(start, "main.main.func")) || last.Logical[0].Name != wantFn || last.Physical.Region.StartLine != wantLine {
					failf("SARIF code flow for %s runs from %s to %s:%d, want the goroutine's start (main.leakAll) to the site", wantFn,
						first.Logical[0].Name, last.Logical[0].Name, last.Physical.Region.StartLine)
				}
			}
			isSupp := wantFn == "main.leakGreeting"
			if (len(res.Suppressions) == 1 && res.Suppressions[0].Kind == "external") != isSupp {
				failf("SARIF result for %s: suppressions %+v (suppressed: %v)", wantFn, res.Suppressions, isSupp)
			}
		}
		if !found {
			failf("no SARIF result located at %s, main.go:%d", wantFn, wantLine)
		}
	}
}

// ---- 5. diff ------------------------------------------------------------------------------

func caseGateDiff() {
	needGateFlags("gate-pie")
	side := func(name, dir, variant string) (string, string, expectation) {
		jsonPath := filepath.Join(*work, name+".json")
		trace := filepath.Join(*work, name+".cgs")
		expPath := filepath.Join(*work, name+".expect.json")
		r := run([]string{"CGOSCOPE_EXPECT=" + expPath}, *cgoscope, "run", "-q", "--json", jsonPath, "-o", trace, "--",
			filepath.Join(dir, "leakfix"), variant)
		if r.code != 0 {
			failf("leakfix %s exited %d: %s", variant, r.code, r.stderr)
		}
		e := readExpect(expPath)
		checkLeaks(readReport(jsonPath, r).Processes[0], e)
		return jsonPath, trace, e
	}
	before, beforeTrace, eb := side("before", *progs, "before")
	after, afterTrace, _ := side("after", *progs, "after")
	var names expectSite
	for _, s := range eb.Leaks {
		if s.Frames[0].Function == "main.makeNames" {
			names = s
		}
	}
	if names.Blocks == 0 {
		failf("leakfix's truth has no main.makeNames leak")
		return
	}
	fixedLine := regexp.MustCompile(fmt.Sprintf(`(?m)^  fixed +-%d B +-%d blocks  C\.malloc ← main\.makeNames \(main\.go:%d\)`, names.Bytes, names.Blocks, names.Frames[0].Line))
	newLine := regexp.MustCompile(fmt.Sprintf(`(?m)^  new +\+%d B +\+%d blocks  C\.malloc ← main\.makeNames \(main\.go:%d\).*REGRESSION$`, names.Bytes, names.Blocks, names.Frames[0].Line))

	d := run(nil, *cgoscope, "diff", before, after)
	if d.code != 0 || !fixedLine.Match(d.stdout) || !bytes.Contains(d.stdout, []byte("  shrunk ")) ||
		!bytes.Contains(d.stdout, []byte("== No regression.")) {
		failf("diff before after: exit %d, want 0 with main.makeNames fixed and make_scratch shrunk:\n%s%s", d.code, d.stdout, d.stderr)
	}
	d = run(nil, *cgoscope, "diff", after, before)
	if d.code != 1 || !newLine.Match(d.stdout) || !bytes.Contains(d.stdout, []byte("  grown ")) {
		failf("diff after before: exit %d, want 1 with main.makeNames new and make_scratch grown:\n%s%s", d.code, d.stdout, d.stderr)
	}
	// The thresholds: leak growth allowed, then crossing time growth (main.step: 100 times the calls,
	// the same cost per call). The line says the calls grew, shows the cost per call, and judges the
	// total crossing time, whose growth is that of the reports' crossing_ns_estimate.
	if d = run(nil, *cgoscope, "diff", "--max-leak-increase", "100000", after, before); d.code != 0 {
		failf("diff after before --max-leak-increase 100000: exit %d, want 0:\n%s", d.code, d.stdout)
	}
	d = run(nil, *cgoscope, "diff", "--max-leak-increase", "100000", "--max-crossing-increase", "50", after, before)
	stepBase, stepHead := callOf(readReport(after, d).Processes[0], "step"), callOf(readReport(before, d).Processes[0], "step")
	if stepBase.CrossingNs == nil || stepHead.CrossingNs == nil || *stepBase.CrossingNs == 0 {
		failf("leakfix's main.step: no crossing estimate in the reports")
		return
	}
	stepLine := `(?m)^  main\.step  calls 200 -> 20000 \(calls grew\)  C per call \S+ \S+ -> \S+ \S+ \([+-]\d+%\)  ` +
		`crossing per call \S+ \S+ -> \S+ \S+  crossing total \S+ \S+ -> \S+ \S+ \(` +
		regexp.QuoteMeta(fmt.Sprintf("%+.0f%%", float64(*stepHead.CrossingNs-*stepBase.CrossingNs)/float64(*stepBase.CrossingNs)*100)) +
		`\)  REGRESSION$`
	if stepBase.Calls != 200 || stepHead.Calls != 20000 {
		failf("leakfix's main.step: %d and %d calls in the reports, want 200 and 20000", stepBase.Calls, stepHead.Calls)
	}
	if d.code != 1 || !regexp.MustCompile(stepLine).Match(d.stdout) ||
		!bytes.Contains(d.stdout, []byte("whose total crossing time grew by more than 50% (--max-crossing-increase)")) {
		failf("diff with --max-crossing-increase 50: exit %d, want 1 with main.step a regression (%s):\n%s", d.code, stepLine, d.stdout)
	}
	if d = run(nil, *cgoscope, "diff", "--max-crossing-increase", "50", before, after); d.code != 0 {
		failf("diff before after --max-crossing-increase 50: exit %d, want 0:\n%s", d.code, d.stdout)
	}
	// Markdown, for a pull-request comment.
	d = run(nil, *cgoscope, "diff", "--format", "markdown", after, before)
	md := string(d.stdout)
	if d.code != 1 || !strings.Contains(md, "| change | leak site | bytes | blocks |") ||
		!strings.Contains(md, fmt.Sprintf("| **new** | `C.malloc ← main.makeNames (main.go:%d)`", names.Frames[0].Line)) ||
		!strings.Contains(md, "| `main.step` | 200 -> 20000 |") || !strings.Contains(md, "**Regression:**") {
		failf("diff --format markdown: exit %d:\n%s", d.code, md)
	}
	// Traces instead of JSON reports (told apart by content), and directories of reports.
	if d = run(nil, *cgoscope, "diff", beforeTrace, afterTrace); d.code != 0 || !fixedLine.Match(d.stdout) {
		failf("diff on traces: exit %d:\n%s%s", d.code, d.stdout, d.stderr)
	}
	dir := mustMkdir(filepath.Join(*work, "after-dir"))
	copyFile(after, filepath.Join(dir, "1.json"))
	os.WriteFile(filepath.Join(dir, "1.sarif"), []byte(`{"version": "2.1.0", "runs": []}`), 0o600)
	os.WriteFile(filepath.Join(dir, "1.folded"), []byte("main.main 1\n"), 0o600)
	if d = run(nil, *cgoscope, "diff", dir, before); d.code != 1 || !newLine.Match(d.stdout) {
		failf("diff on a directory of reports: exit %d:\n%s%s", d.code, d.stdout, d.stderr)
	}
	// Matched by symbols, never by address: the PIE build loads elsewhere, and nothing changed.
	pie, _, _ := side("before-pie", *gatePie, "before")
	if d = run(nil, *cgoscope, "diff", before, pie); d.code != 0 || !bytes.Contains(d.stdout, []byte("  no change\n")) {
		failf("diff of the same run, normal and PIE build: exit %d, want 0 and no change:\n%s", d.code, d.stdout)
	}
	// Bad usage and unreadable input: 2, with a reason.
	notReport := writeFile("not-a-report.json", `{"hello": 1}`)
	for _, args := range [][]string{{before}, {before, filepath.Join(*work, "missing.json")}, {before, notReport},
		{"--format", "html", before, after}, {"--max-leak-increase", "-1", before, after}} {
		d = run(nil, *cgoscope, append([]string{"diff"}, args...)...)
		if d.code != 2 || len(d.stderr) == 0 {
			failf("diff %v: exit %d, stderr %q; want 2 and a reason", args, d.code, d.stderr)
		}
	}
}

// The cgo call site of C function fn in a report (a zero one when absent).
func callOf(p process, fn string) cgoCall {
	for _, c := range p.CgoCalls {
		if c.Function == fn {
			return c
		}
	}
	failf("no cgo call site %s in the report", fn)
	return cgoCall{CrossingNs: new(int64)}
}
