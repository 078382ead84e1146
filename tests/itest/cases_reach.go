package main

// Lost or held (docs/reachability.md): testprogs/reach leaves blocks of every memcheck class;
// cgoscope must classify them as its truth says, name what holds the held ones, keep the
// classification in a saved trace and under `cgoscope env`, and agree with valgrind class by
// class.

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() {
	cases["reach"] = caseReach
	cases["reach-valgrind"] = caseReachValgrind
}

// heldBy: the held_by entries of the user groups whose stack holds function fn.
func heldByOf(p process, fn string) []heldBy {
	var out []heldBy
	for _, l := range p.Leaks {
		if l.Origin == "user" && l.Kind == "still_reachable" && stackHas(l.Stack, []frame{{Function: fn}}) {
			out = append(out, l.HeldBy...)
		}
	}
	return out
}

func caseReach() {
	trace := filepath.Join(*work, "reach.cgs")
	r, rep, e := traced("reach", []string{"-o", trace, "--show-reachable"})
	p := rep.Processes[0]
	checkLeaks(p, e)
	wantExit(r, p, 0, 0)
	var possibly int64
	for _, s := range e.Leaks {
		if s.Kind == "possibly_lost" {
			possibly += s.Bytes
		}
	}
	if p.Totals.PossiblyBytes != possibly || possibly == 0 {
		failf("possibly lost: %d bytes, want %d", p.Totals.PossiblyBytes, possibly)
	}
	// What holds each held block: the C global, the Go global, the Go heap (the map's buckets).
	want := map[string]heldBy{"reach_for_c": {Root: "c_global", Symbol: "c_root"},
		"reach_for_go": {Root: "go_global", Symbol: "main.goHeld"}, "reach_for_map": {Root: "go_heap"}}
	for fn, w := range want {
		hb := heldByOf(p, fn)
		if len(hb) == 0 || hb[0].Root != w.Root || hb[0].Symbol != w.Symbol || !strings.HasPrefix(hb[0].Address, "0x") {
			failf("blocks of %s held by %+v, want %s %s", fn, hb, w.Root, w.Symbol)
		}
	}
	text := string(r.stderr)
	for _, s := range []string{"(definitely lost)", "(indirectly lost", "User possibly lost 1: 64 bytes in 1 block",
		"held by c_root (c_global at 0x", "held by main.goHeld (go_global at 0x"} {
		if !strings.Contains(text, s) {
			failf("the text report (--show-reachable) does not say %q:\n%s", s, text)
		}
	}
	// The same from the saved trace, and --fail-on possibly widens the gate.
	js := filepath.Join(*work, "reach.report.json")
	rr := run(nil, *cgoscope, "report", "-q", "--json", js, trace)
	again := readReport(js, rr).Processes[0]
	again.Exit, p.Exit = nil, nil
	if !sameLeaks(again, p) {
		failf("cgoscope report on the saved trace classifies differently from the run")
	}
	if g := run(nil, *cgoscope, "report", "-q", "--fail-on-leak", trace); g.code != 23 {
		failf("report --fail-on-leak: exit %d, want 23 (lost blocks)", g.code)
	}
	if g := run(nil, *cgoscope, "report", "-q", "--fail-on", "lost,possibly", "--suppressions",
		writeReachSupp("leak:reach_drop\nleak:reach_head\nleak:reach_child\n"), trace); g.code != 23 {
		failf("report --fail-on lost,possibly with the lost sites suppressed: exit %d, want 23 (possibly lost)", g.code)
	}
	if g := run(nil, *cgoscope, "report", "-q", "--fail-on-leak", "--suppressions",
		writeReachSupp("leak:reach_drop\nleak:reach_head\nleak:reach_child\n"), trace); g.code != 0 {
		failf("report --fail-on-leak with the lost sites suppressed: exit %d, want 0 (held and possibly lost do not fail it)", g.code)
	}
}

func writeReachSupp(text string) string {
	path := filepath.Join(*work, "reach.supp")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		failf("%v", err)
	}
	return path
}

var directRE = regexp.MustCompile(`\(([0-9,]+) direct, [0-9,]+ indirect\)`)

// vgKinds: valgrind's XML kinds, as cgoscope names them.
var vgKinds = map[string]string{"Leak_DefinitelyLost": "definitely_lost", "Leak_IndirectlyLost": "indirectly_lost",
	"Leak_PossiblyLost": "possibly_lost", "Leak_StillReachable": "still_reachable"}

// valgrindSites runs prog under memcheck and returns its unfreed blocks by "kind site" (site:
// siteKey of the stack), for the sites keep accepts. skipped: valgrind cannot run this binary.
func valgrindSites(prog string, keep func(site string) bool) (sites map[string][2]int64, skipped bool) {
	xmlPath := filepath.Join(*work, filepath.Base(prog)+".vg.xml")
	vr, late := within(180*time.Second, vgEnv, "valgrind", "--leak-check=full", "--show-leak-kinds=all", "--xml=yes",
		"--xml-file="+xmlPath, prog)
	if strings.Contains(string(vr.stderr), "unhandled instruction") {
		return nil, true
	}
	if late || vr.code != 0 {
		failf("valgrind: exit %d, timed out %v: %s", vr.code, late, vr.stderr)
		return nil, false
	}
	var vg vgReport
	data, err := os.ReadFile(xmlPath)
	if err == nil {
		err = xml.Unmarshal(data, &vg)
	}
	if err != nil {
		failf("valgrind's XML: %v", err)
		return nil, false
	}
	sites = map[string][2]int64{}
	for _, e := range vg.Errors {
		kind, ok := vgKinds[e.Kind]
		if !ok {
			continue
		}
		var fns []string
		for _, f := range e.Frames {
			fns = append(fns, f.Fn)
		}
		// A record of lost blocks that others hang from counts both: "64 (32 direct, 32
		// indirect) bytes in 1 blocks"; the indirect ones have records of their own.
		bytes := e.XWhat.Bytes
		if m := directRE.FindStringSubmatch(e.XWhat.Text); m != nil {
			bytes, _ = strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
		}
		if k := siteKey(fns); keep(k) {
			sites[kind+" "+k] = [2]int64{sites[kind+" "+k][0] + e.XWhat.Blocks, sites[kind+" "+k][1] + bytes}
		}
	}
	return sites, false
}

// cgoscopeSites: the same for a cgoscope report.
func cgoscopeSites(p process, keep func(site string) bool) map[string][2]int64 {
	got := map[string][2]int64{}
	for _, l := range p.Leaks {
		var fns []string
		for _, f := range l.Stack {
			fns = append(fns, f.Function)
		}
		if k := siteKey(fns); keep(k) {
			got[l.Kind+" "+k] = [2]int64{got[l.Kind+" "+k][0] + l.Blocks, got[l.Kind+" "+k][1] + l.Bytes}
		}
	}
	return got
}

// sameSites fails on every site and kind where the two differ.
func sameSites(want, got map[string][2]int64) {
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if want[k] != got[k] {
			failf("%s: valgrind says %d blocks / %d bytes, cgoscope %d / %d", k, want[k][0], want[k][1], got[k][0], got[k][1])
		}
	}
}

func caseReachValgrind() {
	prog := filepath.Join(*progs, "reach")
	keep := func(site string) bool { return strings.HasPrefix(site, "reach_") }
	want, skipped := valgrindSites(prog, keep)
	if skipped {
		skipf("valgrind cannot run binaries of this Go version (it does not decode an instruction its runtime uses); " +
			"the same case runs on the Go 1.21 build")
	}
	_, rep, e := traced("reach", nil)
	checkLeaks(rep.Processes[0], e)
	got := cgoscopeSites(rep.Processes[0], keep)
	sameSites(want, got)
	kinds := map[string]bool{}
	for k := range want {
		kinds[strings.Fields(k)[0]] = true
	}
	if len(kinds) != 4 {
		failf("valgrind found the kinds %v in reach, want all four: this case could not fail", kinds)
	}
}
