package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

var chromium = flag.String("chromium", "chromium", "headless browser that renders the SVG plot")

func init() {
	cases["growth-service"] = caseGrowthService
	cases["growth-interval"] = caseGrowthInterval
}

func hasFrame(st []frame, fn string) bool {
	for _, f := range st {
		if f.Function == fn {
			return true
		}
	}
	return false
}

type growthEntry struct {
	Stack          []frame `json:"stack"`
	LiveBytes      int64   `json:"live_bytes"`
	LiveBlocks     int64   `json:"live_blocks"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	BlocksPerSec   float64 `json:"blocks_per_second"`
}

// A service with a cache filled at start and a handler that leaks 1 KiB every 10 ms, stopped
// by --duration: the handler grows at ~100 KiB/s, the cache does not, the exit is 0 and the
// service's shutdown output is intact. Its SVG plot names the handler and renders.
func caseGrowthService() {
	jsonPath := filepath.Join(*work, "service.json")
	plot := filepath.Join(*work, "service.svg")
	r := run(nil, *cgoscope, "run", "-q", "--duration", "3", "--json", jsonPath, "--plot", plot, "--",
		filepath.Join(*progs, "service"))
	if r.code != 0 {
		failf("cgoscope exited %d after --duration, want 0: %s", r.code, r.stderr)
	}
	if !bytes.Contains(r.stdout, []byte("service: cache filled, serving\n")) ||
		!bytes.Contains(r.stdout, []byte("received, shutting down after")) {
		failf("the service's own output is not intact: %q", r.stdout)
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		failf("no JSON: %v", err)
		return
	}
	var rep struct {
		Processes []struct {
			Growth []growthEntry `json:"growth"`
		} `json:"processes"`
	}
	if err := jsonUnmarshal(data, &rep); err != nil || len(rep.Processes) == 0 {
		failf("bad JSON: %v", err)
		return
	}
	var handler *growthEntry
	for i, g := range rep.Processes[0].Growth {
		if hasFrame(g.Stack, "fill_cache") {
			failf("the cache (filled at start and held) is listed as growing: %+v", g)
		}
		if hasFrame(g.Stack, "handle_request") {
			handler = &rep.Processes[0].Growth[i]
		}
	}
	if handler == nil {
		failf("the handler's site is not under growth: %+v", rep.Processes[0].Growth)
		return
	}
	const want = 100 * 1024.0
	if handler.BytesPerSecond < want*0.5 || handler.BytesPerSecond > want*1.5 {
		failf("handler grows at %.0f B/s, want about %.0f (within 50%%)", handler.BytesPerSecond, want)
	}
	svg, err := os.ReadFile(plot)
	if err != nil {
		failf("no plot: %v", err)
		return
	}
	if !bytes.Contains(svg, []byte("handle_request \u2190 main.main (main.go:")) || !bytes.Contains(svg, []byte("<svg")) {
		failf("the plot does not name the handler's site")
	}
	png := filepath.Join(*work, "service.png")
	os.Remove(png)
	shot := exec.Command(*chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+filepath.Join(*work, "chromium-profile"), "--window-size=1000,600",
		"--screenshot="+png, "file://"+plot)
	if out, err := shot.CombinedOutput(); err != nil {
		failf("headless %s could not render the plot: %v\n%s", *chromium, err, out)
		return
	}
	if st, err := os.Stat(png); err != nil || st.Size() < 10000 {
		failf("the rendered plot %s is missing or blank: %v", png, err)
	}
}

// --interval 1 prints at least two live tables during a 3-second run.
func caseGrowthInterval() {
	r := run(nil, *cgoscope, "run", "-q", "--duration", "3", "--interval", "1", "--",
		filepath.Join(*progs, "service"))
	if r.code != 0 {
		failf("cgoscope exited %d", r.code)
	}
	tables := strings.Count(string(r.stderr), "live C memory")
	if tables < 2 {
		failf("%d live tables on stderr during 3 s with --interval 1, want at least 2:\n%s", tables, r.stderr)
	}
	if !strings.Contains(string(r.stderr), "handle_request \u2190 main.main (main.go:") {
		failf("the live table does not name the handler's site:\n%s", r.stderr)
	}
}

func jsonUnmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }
