package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The text report groups sites by the Go line of the cgo call; labels name a site
// "C function ← Go function (file:line)" (docs/report.md).

func init() {
	cases["report-grouped"] = caseReportGrouped
	cases["growth-labels"] = caseGrowthLabels
}

type goLine struct {
	Function string `json:"function"`
	File     string `json:"file"`
	Line     int    `json:"line"`
}

type leakGroupJSON struct {
	GoLine *goLine `json:"go_line"`
	Origin string  `json:"origin"`
	Kind   string  `json:"kind"`
	Bytes  int64   `json:"bytes"`
	Blocks int64   `json:"blocks"`
	Leaks  []int   `json:"leaks"`
	Paths  []struct {
		Label  string `json:"label"`
		Bytes  int64  `json:"bytes"`
		Blocks int64  `json:"blocks"`
		Leaks  []int  `json:"leaks"`
	} `json:"paths"`
}

func groupsOf(path string) []leakGroupJSON {
	var rep struct {
		Processes []struct {
			Groups []leakGroupJSON `json:"groups"`
		} `json:"processes"`
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &rep)
	}
	if err != nil || len(rep.Processes) == 0 {
		failf("%s: no groups: %v", path, err)
		return nil
	}
	return rep.Processes[0].Groups
}

// testprogs/grouped: leakShared's one Go line, reached from three callers by two C paths, is one
// group of six sites and six paths; twelve more Go lines are a group each. The text report shows
// the top 10 groups and says how many more the JSON report has; --full-report shows them all;
// the JSON report's groups hold every site and every figure of the truth.
func caseReportGrouped() {
	jsonPath := filepath.Join(*work, "grouped.json")
	trace := filepath.Join(*work, "grouped.cgs")
	expPath := filepath.Join(*work, "grouped.expect.json")
	r := run([]string{"CGOSCOPE_EXPECT=" + expPath}, *cgoscope, "run", "--json", jsonPath, "-o", trace, "--",
		filepath.Join(*progs, "grouped"))
	wantCode("cgoscope run grouped", r, 0)
	e := readExpect(expPath)
	rep := readReport(jsonPath, r)
	p := rep.Processes[0]
	checkLeaks(p, e)
	groups := groupsOf(jsonPath)
	var user []leakGroupJSON
	for _, g := range groups {
		if g.Origin == "user" {
			user = append(user, g)
		}
	}
	if len(user) != len(e.Leaks) {
		failf("%d user groups in the JSON report, want %d (one per Go line the program states)", len(user), len(e.Leaks))
	}
	var shared expectSite
	var sizes []int64
	for _, s := range e.Leaks {
		sizes = append(sizes, s.Bytes)
		if s.Frames[0].Function == "main.leakShared" {
			shared = s
		}
		var g *leakGroupJSON
		for i := range user {
			if user[i].GoLine != nil && user[i].GoLine.Function == s.Frames[0].Function && user[i].GoLine.Line == s.Frames[0].Line {
				g = &user[i]
			}
		}
		if g == nil {
			failf("no group for the Go line %s:%d", s.Frames[0].Function, s.Frames[0].Line)
			continue
		}
		var bytes, blocks, pb, pk int64
		for _, i := range g.Leaks {
			bytes += p.Leaks[i].Bytes
			blocks += p.Leaks[i].Blocks
		}
		for _, path := range g.Paths {
			pb += path.Bytes
			pk += path.Blocks
		}
		if g.Bytes != s.Bytes || g.Blocks != s.Blocks || bytes != s.Bytes || blocks != s.Blocks || pb != s.Bytes || pk != s.Blocks {
			failf("group of %s:%d: %d bytes in %d blocks (its leaks %d/%d, its paths %d/%d), want %d in %d",
				s.Frames[0].Function, s.Frames[0].Line, g.Bytes, g.Blocks, bytes, blocks, pb, pk, s.Bytes, s.Blocks)
		}
		if s.Frames[0].Function == "main.leakShared" {
			// three callers, each by make_obj -> grab and make_obj -> wrap -> grab
			if len(g.Leaks) != 6 || len(g.Paths) != 6 {
				failf("leakShared's group: %d sites and %d paths, want 6 and 6", len(g.Leaks), len(g.Paths))
			}
			for _, caller := range []string{"main.testAlpha", "main.testBeta", "main.testGamma"} {
				n := 0
				for _, path := range g.Paths {
					if strings.Contains(path.Label, "\u2190 "+caller+" (main.go:") {
						n++
						want := fmt.Sprintf("\u2190 main.leakShared (main.go:%d) \u2190 ", s.Frames[0].Line)
						if !strings.HasPrefix(path.Label, "grab \u2190 ") || !strings.Contains(path.Label, want) {
							failf("path %q: want grab first and %q", path.Label, want)
						}
					}
				}
				if n != 2 {
					failf("leakShared's group: %d paths from %s, want 2", n, caller)
				}
			}
		}
	}
	// The text: 10 groups, then how many more and what they hold; the largest first.
	text := string(r.stderr)
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] > sizes[j] })
	var moreBytes int64
	for _, b := range sizes[10:] {
		moreBytes += b
	}
	more := len(sizes) - 10
	wants := []string{
		fmt.Sprintf("User leak 1: %d bytes in %d blocks (definitely lost) from the cgo call in main.leakShared (main.go:%d): 6 sites, 6 paths",
			shared.Bytes, shared.Blocks, shared.Frames[0].Line),
		fmt.Sprintf("== %d more groups (%d sites, %d bytes) in the JSON report (\"groups\"); --full-report prints them", more, more, moreBytes),
		fmt.Sprintf("(3 more paths: %d bytes in %d blocks; --full-report lists them)", shared.Bytes/2, shared.Blocks/2),
	}
	for _, w := range wants {
		if !strings.Contains(text, w) {
			failf("the text report does not say %q:\n%s", w, text)
		}
	}
	if n := strings.Count(text, "\nUser leak "); n != 10 {
		failf("the text report shows %d groups, want 10:\n%s", n, text)
	}
	// --full-report: every group, every path, every site's stack.
	f := run(nil, *cgoscope, "report", "--full-report", trace)
	wantCode("cgoscope report --full-report", f, 0)
	full := string(f.stderr) + string(f.stdout)
	if n := strings.Count(full, "\nUser leak "); n != len(e.Leaks) || strings.Contains(full, "more groups") ||
		strings.Contains(full, "more paths") || !strings.Contains(full, "  site 6: ") || !strings.Contains(full, "#0  grab") {
		failf("report --full-report: %d groups (want %d), every path and six sites' stacks:\n%s", n, len(e.Leaks), full)
	}
}

// testprogs/svcgrab: a steady cache and a leaking handler, both through the C helper grab. The
// growth table names the handler's series by its Go function, the plot legend and the live table
// tell the two apart.
func caseGrowthLabels() {
	jsonPath := filepath.Join(*work, "svcgrab.json")
	plot := filepath.Join(*work, "svcgrab.svg")
	expPath := filepath.Join(*work, "svcgrab.expect.json")
	r := run([]string{"CGOSCOPE_EXPECT=" + expPath}, *cgoscope, "run", "--duration", "3", "--interval", "1",
		"--json", jsonPath, "--plot", plot, "--", filepath.Join(*progs, "svcgrab"))
	wantCode("cgoscope run --duration 3 svcgrab", r, 0)
	e := readExpect(expPath)
	checkLeaks(readReport(jsonPath, r).Processes[0], e)
	label := map[string]string{}
	for _, s := range e.Leaks {
		label[s.Frames[0].Function] = fmt.Sprintf("grab \u2190 %s (main.go:%d)", s.Frames[0].Function, s.Frames[0].Line)
	}
	cache, handler := label["main.fillCache"], label["main.handle"]
	if cache == "" || handler == "" {
		failf("svcgrab's truth lacks fillCache or handle: %+v", e.Leaks)
		return
	}
	text := string(r.stderr)
	growing := text[max(0, strings.Index(text, "== Growing while the program ran")):]
	growing, _, _ = strings.Cut(growing, "\n==")
	if !strings.Contains(growing, "live at the end: ") || !strings.Contains(growing, handler) || strings.Contains(growing, "fillCache") {
		failf("the growth table should name %q and not the cache:\n%s", handler, text)
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		failf("no plot: %v", err)
		return
	}
	if !strings.Contains(string(svg), handler+": ") || !strings.Contains(string(svg), cache+": 25.0 KiB, steady") {
		failf("the plot legend should name %q (growing) and %q (steady):\n%s", handler, cache, svg)
	}
	if !strings.Contains(text, handler+"  <- growing") || !strings.Contains(text, cache) {
		failf("the live table should name %q (growing) and %q:\n%s", handler, cache, text)
	}
}
