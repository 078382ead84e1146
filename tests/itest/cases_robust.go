package main

// Never break, never lose (docs/robustness.md): programs that do unkind things to their own
// process (testprogs/robust, jemalloc, dlopen), binaries without symbols, the analyzer killed
// under the program, bad traces, full disks, and valgrind as a second opinion. Every command
// runs under a deadline, so a hang fails the case with a message instead of the suite.

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var dltestLib = flag.String("dltest", "", "the shared library testprogs/dlopen loads (tests/dltest)")

func init() {
	cases["robust-threads-1000"] = func() { caseThreads("threads", 1000) }
	cases["robust-threads-3000"] = func() { caseThreads("threads", 3000) }
	cases["robust-gothreads-3000"] = func() { caseThreads("gothreads", 3000) }
	cases["robust-threads-exhausted"] = caseThreadsExhausted
	cases["robust-closefds"] = caseCloseFds
	cases["robust-closefds-env"] = caseCloseFdsEnv
	cases["robust-reexec"] = func() { caseReexec(nil) }
	cases["robust-reexec-no-follow"] = func() { caseReexec([]string{"--no-follow"}) }
	cases["robust-daemon"] = caseDaemon
	cases["robust-unsetpreload"] = func() { caseUntraced("unsetpreload", "has no LD_PRELOAD") }
	cases["robust-otherpreload"] = func() { caseUntraced("otherpreload", `"libm.so.6"`) }
	cases["robust-many-processes"] = caseManyProcesses
	cases["robust-analyzer-killed"] = caseAnalyzerKilled
	cases["robust-static"] = caseStatic
	cases["robust-stripped"] = caseStripped
	cases["robust-jemalloc"] = func() { simple("jemalloc", 0, 0) }
	cases["robust-dlopen"] = caseDlopen
	cases["robust-badinput-run"] = caseBadInputRun
	cases["robust-badinput-env"] = caseBadInputEnv
	cases["robust-diskfull-devfull"] = caseDiskFullDevFull
	cases["robust-diskfull-tmpfs"] = caseDiskFullTmpfs
	cases["robust-valgrind"] = caseValgrind
}

// within runs name under a deadline; timedOut says the deadline passed (the command was killed).
func within(d time.Duration, env []string, name string, args ...string) (r result, timedOut bool) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r = result{stdout: out.Bytes(), stderr: errb.Bytes()}
	if ctx.Err() != nil {
		return r, true
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			r.code = -int(ws.Signal())
		} else {
			r.code = ws.ExitStatus()
		}
	} else if err != nil {
		fmt.Fprintf(os.Stderr, "itest: cannot run %s: %v\n", name, err)
		os.Exit(2)
	}
	return r, false
}

// robustRun is `cgoscope run --json` on the program at path under a deadline. It returns the
// result, the report, the program's truth and the JSON file; ok is false (and the case has
// failed) when the run did not end in time.
func robustRun(d time.Duration, env []string, path string, opts []string, args ...string) (result, report, expectation, string, bool) {
	base := filepath.Base(path)
	jsonPath := filepath.Join(*work, base+".json")
	expPath := filepath.Join(*work, base+".expect.json")
	os.Remove(jsonPath)
	os.Remove(expPath)
	cargs := append([]string{"run", "--json", jsonPath}, opts...)
	cargs = append(append(cargs, "--", path), args...)
	r, late := within(d, append([]string{"CGOSCOPE_EXPECT=" + expPath}, env...), *cgoscope, cargs...)
	if late {
		failf("cgoscope run -- %s %s did not end within %v: stderr:\n%s", base, strings.Join(args, " "), d, r.stderr)
		return r, report{}, expectation{}, jsonPath, false
	}
	return r, readReport(jsonPath, r), readExpect(expPath), jsonPath, true
}

// extra is what the cases read from the JSON report beyond the shared process type.
type extra struct {
	Processes []struct {
		Pid            int    `json:"pid"`
		Traced         bool   `json:"traced"`
		UntracedReason string `json:"untraced_reason"`
		ReplacedByExec bool   `json:"replaced_by_exec"`
	} `json:"processes"`
}

func readExtra(path string) extra {
	var x extra
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &x)
	}
	if err != nil {
		failf("cannot read %s: %v", path, err)
	}
	return x
}

func callsOf(p process, fn string) int64 {
	var n int64
	for _, c := range p.CgoCalls {
		if c.Function == fn {
			n += c.Calls
		}
	}
	return n
}

// caseThreads: thousands of threads alive at once, more than the channel had chunks before
// (2,048): exact leaks, exact call counts, nothing lost.
func caseThreads(mode string, n int) {
	r, rep, e, _, ok := robustRun(90*time.Second, nil, filepath.Join(*progs, "robust"), nil, mode, strconv.Itoa(n))
	if !ok {
		return
	}
	p := rep.Processes[0]
	checkLeaks(p, e)
	wantExit(r, p, 0, 0)
	if mode == "gothreads" {
		if got := callsOf(p, "_Cmalloc"); got != int64(2*n) {
			failf("C.CString calls: %d, want %d", got, 2*n)
		}
		if got := callsOf(p, "free"); got != int64(n) {
			failf("C.free calls: %d, want %d", got, n)
		}
	}
}

// caseThreadsExhausted: more threads alive at once than a (deliberately small) channel has
// chunks, all holding theirs: the ones left without go on, their records counted as lost.
func caseThreadsExhausted() {
	start := time.Now()
	r, rep, _, _, ok := robustRun(60*time.Second, []string{"CGOSCOPE_CHANNEL_CHUNKS=512"}, filepath.Join(*progs, "robust"),
		nil, "threads", "1000")
	if !ok {
		return
	}
	p := rep.Processes[0]
	wantExit(r, p, 0, 0)
	if !bytes.Contains(r.stdout, []byte("threads joined: 1000")) {
		failf("the program did not finish its work: %q", r.stdout)
	}
	if p.EventsLost == 0 || !bytes.Contains(r.stderr, []byte(fmt.Sprintf("%d events lost", p.EventsLost))) {
		failf("events_lost is %d; want the records of the threads left without a chunk, in the text report too", p.EventsLost)
	}
	if el := time.Since(start); el > 30*time.Second {
		failf("took %v: a thread without a chunk should give up waiting after 2 s", el)
	}
}

// caseCloseFds: a program that closes every descriptor it did not open.
func caseCloseFds() {
	r, rep, e, _, ok := robustRun(30*time.Second, nil, filepath.Join(*progs, "robust"), nil, "closefds")
	if ok {
		checkLeaks(rep.Processes[0], e)
		wantExit(r, rep.Processes[0], 0, 0)
	}
}

// caseCloseFdsEnv: the same without the launcher, where the shim keeps a descriptor of its own
// (the trace file, to grow it) and must open the file again once the program has closed it.
func caseCloseFdsEnv() {
	trace := filepath.Join(*work, "closefds.env.cgs")
	expPath := filepath.Join(*work, "closefds.env.expect.json")
	os.Remove(trace)
	os.Remove(expPath)
	script := `eval "$("$1" env -o "$2")" && exec "$3" closefds`
	r, late := within(30*time.Second, []string{"CGOSCOPE_EXPECT=" + expPath}, "sh", "-c", script, "sh", *cgoscope, trace,
		filepath.Join(*progs, "robust"))
	if late || r.code != 0 {
		failf("robust closefds under `cgoscope env` exited %d (timed out: %v): %s", r.code, late, r.stderr)
		return
	}
	jsonPath := filepath.Join(*work, "closefds.env.json")
	rr, late := within(30*time.Second, nil, *cgoscope, "report", "--json", jsonPath, trace)
	if late || rr.code != 0 {
		failf("cgoscope report exited %d (timed out: %v): %s", rr.code, late, rr.stderr)
		return
	}
	checkLeaks(readReport(jsonPath, rr).Processes[0], readExpect(expPath))
}

// caseReexec: one pid, two programs (syscall.Exec): two entries, each with its own leaks.
func caseReexec(opts []string) {
	r, rep, e, jsonPath, ok := robustRun(30*time.Second, nil, filepath.Join(*progs, "robust"), opts, "reexec")
	if !ok {
		return
	}
	if len(rep.Processes) != 2 {
		failf("%d processes in the report, want 2 (the program before and after its exec)", len(rep.Processes))
		return
	}
	first, second := rep.Processes[0], rep.Processes[1]
	x := readExtra(jsonPath)
	if first.Pid != second.Pid || !x.Processes[0].ReplacedByExec || x.Processes[1].ReplacedByExec {
		failf("pids %d and %d, replaced_by_exec %v and %v: want one pid, the first replaced", first.Pid, second.Pid,
			x.Processes[0].ReplacedByExec, x.Processes[1].ReplacedByExec)
	}
	if len(first.Exit) != 0 {
		failf("the program that exec replaced has exit %v, want {}", first.Exit)
	}
	checkLeaks(first, readExpect(filepath.Join(*work, "robust.expect.json.first")))
	checkLeaks(second, e)
	wantExit(r, second, 0, 0)
	if len(second.Argv) != 2 || second.Argv[1] != "reexec-second" {
		failf("the second program's argv is %q, want [... reexec-second]", second.Argv)
	}
	if !bytes.Contains(r.stderr, []byte("replaced itself with another program (exec)")) {
		failf("the text report does not say the first program was replaced: %s", r.stderr)
	}
}

// caseDaemon: the program returns at once, its daemon leaks later: cgoscope waits for it.
func caseDaemon() {
	start := time.Now()
	r, rep, e, _, ok := robustRun(30*time.Second, nil, filepath.Join(*progs, "robust"), nil, "daemon")
	if !ok {
		return
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		failf("cgoscope returned after %v: it cannot have waited for the daemon (300 ms)", el)
	}
	if len(rep.Processes) != 3 {
		failf("%d processes in the report, want 3 (program, intermediate child, daemon)", len(rep.Processes))
		return
	}
	checkLeaks(rep.Processes[0], e)
	wantExit(r, rep.Processes[0], 0, 0)
	mid, d := rep.Processes[1], rep.Processes[2]
	if mid.Totals.LeakedBlocks != 0 {
		mid, d = d, mid
	}
	checkLeaks(mid, expectation{})
	checkLeaks(d, readExpect(filepath.Join(*work, "robust.expect.json.daemon")))
	if d.Exit["code"] != 0 || len(d.Exit) != 1 {
		failf("the daemon's exit is %v, want {\"code\": 0} (cgoscope, its subreaper, reaped it)", d.Exit)
	}
	if !bytes.Contains(r.stderr, []byte("waiting for the processes it left running")) {
		failf("cgoscope did not say it waits for the daemon: %s", r.stderr)
	}
}

// caseUntraced: the program starts a child with LD_PRELOAD removed or changed: the child runs
// untraced, and the report says so and why.
func caseUntraced(mode, why string) {
	r, rep, e, jsonPath, ok := robustRun(30*time.Second, nil, filepath.Join(*progs, "robust"), nil, mode)
	if !ok {
		return
	}
	checkLeaks(rep.Processes[0], e)
	wantExit(r, rep.Processes[0], 0, 0)
	if len(rep.Processes) != 2 {
		failf("%d processes in the report, want 2 (the program and its untraced child)", len(rep.Processes))
		return
	}
	x := readExtra(jsonPath).Processes[1]
	if x.Traced || !strings.Contains(x.UntracedReason, why) || rep.Processes[1].Totals.Allocations != 0 {
		failf("the child: traced %v, %d allocations, untraced_reason %q; want untraced, none, a reason with %s",
			x.Traced, rep.Processes[1].Totals.Allocations, x.UntracedReason, why)
	}
	if argv := rep.Processes[1].Argv; len(argv) != 2 || argv[1] != "untraced-child" {
		failf("the untraced child's argv is %q, want [... untraced-child] (read from /proc)", argv)
	}
	if !bytes.Contains(r.stderr, []byte("Not traced: ")) {
		failf("the text report does not say which process was not traced, and why: %s", r.stderr)
	}
}

// caseManyProcesses: more short processes than the channel has chunks for at once; each ends
// without freeing its chunks (exit_group), so the analyzer must take them back.
func caseManyProcesses() {
	jsonPath := filepath.Join(*work, "many.json")
	r, late := within(90*time.Second, nil, *cgoscope, "run", "-q", "--json", jsonPath, "--", "sh", "-c",
		`i=0; while [ $i -lt 2500 ]; do /bin/true; i=$((i+1)); done; echo loop-done`)
	if late || r.code != 0 || !bytes.Contains(r.stdout, []byte("loop-done")) {
		failf("a loop of 2,500 processes under cgoscope: exit %d, timed out %v: %s", r.code, late, r.stderr)
		return
	}
	rep := readReport(jsonPath, r)
	if len(rep.Processes) != 2501 {
		failf("%d processes in the report, want 2,501 (the shell and every /bin/true)", len(rep.Processes))
	}
	x := readExtra(jsonPath)
	for i, p := range rep.Processes {
		if p.EventsLost != 0 || !x.Processes[i].Traced {
			failf("process %d: %d events lost, traced %v", p.Pid, p.EventsLost, x.Processes[i].Traced)
			return
		}
	}
}

// setSubreaper makes the processes this one's children leave behind its own, so it can wait
// for a program whose parent (cgoscope) was killed.
func setSubreaper() {
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, 36 /* PR_SET_CHILD_SUBREAPER */, 1, 0); e != 0 {
		fmt.Fprintf(os.Stderr, "itest: prctl(PR_SET_CHILD_SUBREAPER): %v\n", e)
		os.Exit(2)
	}
}

// childOf is the pid of a child of parent, or 0.
func childOf(parent int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(parent) {
			return pid
		}
	}
	return 0
}

// caseAnalyzerKilled: SIGKILL cgoscope while the program allocates, and leave it a zombie (no
// one reaps it): the program must neither hang nor die, and end with its own status.
func caseAnalyzerKilled() {
	setSubreaper()
	cmd := exec.Command(*cgoscope, "run", "-q", "--", filepath.Join(*progs, "robust"), "churn", "3000", "7")
	if err := cmd.Start(); err != nil {
		failf("cannot start cgoscope: %v", err)
		return
	}
	prog := 0
	for i := 0; i < 200 && prog == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		prog = childOf(cmd.Process.Pid)
	}
	if prog == 0 {
		failf("the program never started")
		cmd.Process.Kill()
		cmd.Wait()
		return
	}
	time.Sleep(500 * time.Millisecond)
	syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	killed := time.Now()
	done := make(chan syscall.WaitStatus, 1)
	go func() {
		var ws syscall.WaitStatus
		for {
			// The program becomes our child once cgoscope has died (we are the subreaper).
			_, err := syscall.Wait4(prog, &ws, 0, nil)
			if err == syscall.ECHILD && time.Since(killed) < 10*time.Second {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err != syscall.EINTR {
				break
			}
		}
		done <- ws
	}()
	select {
	case ws := <-done:
		el := time.Since(killed)
		if !ws.Exited() || ws.ExitStatus() != 7 {
			failf("the program ended with %v after its analyzer was killed, want exit status 7", ws)
		}
		if el > 20*time.Second {
			failf("the program took %v to end after its analyzer was killed (it churns for 3 s)", el)
		}
	case <-time.After(30 * time.Second):
		failf("the program still runs 30 s after its analyzer was killed: it hangs")
		syscall.Kill(prog, syscall.SIGKILL)
	}
	cmd.Wait()
}

// caseStatic: a static binary is refused at once, with a reason, and never run.
func caseStatic() {
	r, late := within(30*time.Second, nil, *cgoscope, "run", "--", filepath.Join(*progs+"-static", "leaky"))
	if late || r.code != 120 {
		failf("cgoscope run on a static binary exited %d (timed out: %v), want 120: %s", r.code, late, r.stderr)
	}
	if !bytes.Contains(r.stderr, []byte("is a static binary")) || !bytes.Contains(r.stderr, []byte("LD_PRELOAD cannot load")) {
		failf("no clear message for a static binary: %s", r.stderr)
	}
	if len(r.stdout) != 0 {
		failf("the static program ran: %q", r.stdout)
	}
}

// caseStripped: leaky without .symtab and DWARF (-ldflags=-s -w, strip(1), a stripped PIE): the
// same leaks, blocks and bytes, at the same Go lines (from .gopclntab), of the same kinds (the Go
// heap read with the runtime layout of the binary's Go release and addresses found in its code),
// with the truth's C functions named (the frames inside their cgo wrappers, hooked through the
// Go stubs: docs/cgo-facts.md §10). A note says what was missing. A stripped binary of a Go
// release cgoscope does not know is left unclassified.
func caseStripped() {
	stripped := filepath.Join(*progs+"-stripped", "leaky")
	variants := map[string]string{"go build -ldflags='-s -w'": stripped}
	for name, from := range map[string]string{"strip": filepath.Join(*progs, "leaky"), "strip, PIE": filepath.Join(*progs+"-pie", "leaky")} {
		to := filepath.Join(*work, "leaky-"+strings.NewReplacer(", ", "-", " ", "").Replace(name))
		if out, err := exec.Command("strip", "-o", to, from).CombinedOutput(); err != nil {
			failf("strip %s: %v: %s", from, err, out)
			continue
		}
		variants[name] = to
	}
	unknown := filepath.Join(*work, "leaky-go1.99")
	if err := renameGoRelease(stripped, unknown, "go1.99"); err != nil {
		failf("%v", err)
	} else {
		variants["a Go release cgoscope does not know"] = unknown
	}
	for name, path := range variants {
		r, rep, e, _, ok := robustRun(30*time.Second, nil, path, nil)
		if !ok {
			continue
		}
		before := len(failures)
		if path == unknown {
			checkUnclassified(rep.Processes[0], e)
		} else {
			checkLeaks(rep.Processes[0], e)
		}
		wantExit(r, rep.Processes[0], 0, 0)
		for _, want := range []string{"is stripped (no symbol table)", "its cgo calls were found from the Go stubs",
			"come from its .gopclntab"} {
			if !bytes.Contains(r.stderr, []byte(want)) {
				failf("no note %q about the stripped binary", want)
			}
		}
		if len(failures) > before {
			failf("(the failures above are for %s)", name)
		}
	}
}

// renameGoRelease copies the Go executable from to to with every copy of its Go release's name
// ("go1.26", in the build info and the runtime's version string) replaced by release, as if
// another release had built it.
func renameGoRelease(from, to, release string) error {
	info, err := buildinfo.ReadFile(from)
	if err != nil {
		return fmt.Errorf("build info of %s: %v", from, err)
	}
	v := info.GoVersion // go1.26.8
	if i := strings.Index(v[len("go1."):], "."); i >= 0 {
		v = v[:len("go1.")+i]
	}
	if len(v) != len(release) {
		return fmt.Errorf("cannot rename %s to %s: not the same length", v, release)
	}
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, bytes.ReplaceAll(data, []byte(v), []byte(release)), 0o755)
}

// caseDlopen: libraries loaded while the program runs: their allocations are seen, their frames
// named, also after dlclose.
func caseDlopen() {
	if *dltestLib == "" {
		fmt.Fprintln(os.Stderr, "itest: this case needs -dltest")
		os.Exit(2)
	}
	r, rep, e, _, ok := robustRun(30*time.Second, nil, filepath.Join(*progs, "dlopen"), nil, *dltestLib)
	if !ok {
		return
	}
	p := rep.Processes[0]
	checkLeaks(p, e)
	wantExit(r, p, 0, 0)
	named := false
	for _, l := range p.Leaks {
		for _, f := range l.Stack {
			if f.Function == "dltest_leak" && filepath.Base(f.File) == "dltest.c" && f.Line > 0 {
				named = true
			}
			if f.Function == "deflateInit2_" && filepath.Base(f.Object) != "libz.so.1" {
				failf("deflateInit2_ in %s, want libz.so.1", f.Object)
			}
		}
	}
	if !named {
		failf("no frame dltest_leak (dltest.c) after the library was closed")
	}
	if p.Totals.Allocations < 500 || p.Totals.Frees < 500 {
		failf("%d allocations and %d frees, want at least the library's 500 of each", p.Totals.Allocations, p.Totals.Frees)
	}
}

// reportOn runs `cgoscope report` on a trace under a deadline: never a crash (a signal), never
// a hang.
func reportOn(what, trace string) (result, bool) {
	jsonPath := trace + ".json"
	r, late := within(30*time.Second, nil, *cgoscope, "report", "--json", jsonPath, trace)
	switch {
	case late:
		failf("%s: cgoscope report did not end within 30 s", what)
	case r.code < 0 || r.code > 2:
		failf("%s: cgoscope report ended with %d: %s", what, r.code, r.stderr)
	default:
		return r, true
	}
	return r, false
}

// badInputs checks cgoscope report on damaged copies of a real trace: empty, cut at many
// places, bits flipped, a future version. versionAt is the offset of the format version.
func badInputs(kind, trace string, versionAt int, readsFormat uint32) {
	data, err := os.ReadFile(trace)
	if err != nil {
		failf("%v", err)
		return
	}
	bad := filepath.Join(*work, "bad-"+kind+".cgs")
	write := func(b []byte) {
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			failf("%v", err)
		}
	}
	write(nil)
	if r, ok := reportOn(kind+" empty", bad); ok && (r.code != 1 || !bytes.Contains(r.stderr, []byte("empty"))) {
		failf("%s empty: exit %d, want 1 and a message saying it is empty: %s", kind, r.code, r.stderr)
	}
	partial := 0
	for _, frac := range []int{1, 5, 10, 25, 50, 75, 90, 99} {
		cut := len(data) * frac / 100
		write(data[:cut])
		r, ok := reportOn(fmt.Sprintf("%s cut to %d%%", kind, frac), bad)
		if !ok {
			continue
		}
		if r.code != 1 || !bytes.Contains(r.stderr, []byte("cgoscope: ")) {
			failf("%s cut to %d%% (%d bytes): exit %d, want 1 with a message: %s", kind, frac, cut, r.code, r.stderr)
		}
		if bytes.Contains(r.stderr, []byte("== cgoscope: process")) {
			partial++
		}
	}
	if partial == 0 {
		failf("%s: no cut trace gave the partial report it holds", kind)
	}
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 40; i++ {
		b := append([]byte(nil), data...)
		for k := 0; k <= i%8; k++ {
			off := rng.Intn(len(b))
			if i%4 == 0 {
				off = rng.Intn(256) % len(b) /* the header and the first block or descriptors */
			}
			b[off] ^= byte(1 << rng.Intn(8))
		}
		write(b)
		reportOn(fmt.Sprintf("%s with bits flipped (seed 7, round %d)", kind, i), bad)
	}
	b := append([]byte(nil), data...)
	copy(b[versionAt:], []byte{99, 0, 0, 0})
	write(b)
	want := fmt.Sprintf("format 99; this cgoscope reads format %d", readsFormat)
	if r, ok := reportOn(kind+" of a future version", bad); ok && (r.code != 1 || !bytes.Contains(r.stderr, []byte(want))) {
		failf("%s of format 99: exit %d, want 1 and %q: %s", kind, r.code, want, r.stderr)
	}
}

// traceVersion: the format version at bytes 8-11 of a trace of either kind, or 0.
func traceVersion(path string) uint32 {
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 12 {
		return 0
	}
	return uint32(data[8]) | uint32(data[9])<<8 | uint32(data[10])<<16 | uint32(data[11])<<24
}

// caseBadInputRun: damaged copies of a launcher trace (`run -o`) of a program that leaks early
// and then allocates for a while, so that a cut trace still holds a report.
func caseBadInputRun() {
	trace := filepath.Join(*work, "churn.cgs")
	r, late := within(60*time.Second, nil, *cgoscope, "run", "-q", "-o", trace, "--", filepath.Join(*progs, "robust"), "churn", "300", "0")
	if late || r.code != 0 {
		failf("recording the trace: exit %d, timed out %v: %s", r.code, late, r.stderr)
		return
	}
	badInputs("launcher trace", trace, 8, traceVersion(trace))
}

// caseBadInputEnv: damaged copies of the shim's own trace file (`cgoscope env -o`).
func caseBadInputEnv() {
	trace := filepath.Join(*work, "leaky.env.cgs")
	os.Remove(trace)
	r, late := within(60*time.Second, nil, "sh", "-c", `eval "$("$1" env -o "$2")" && exec "$3"`, "sh", *cgoscope, trace,
		filepath.Join(*progs, "leaky"))
	if late || r.code != 0 {
		failf("recording the trace: exit %d, timed out %v: %s", r.code, late, r.stderr)
		return
	}
	badInputs("shim trace file", trace, 8, traceVersion(trace))
}

func mentionsFull(stderr []byte, path string) bool {
	return bytes.Contains(stderr, []byte(path)) && bytes.Contains(stderr, []byte("No space left on device"))
}

// caseDiskFullDevFull: the JSON report and the trace written to /dev/full (every write fails
// with ENOSPC): each error says so, and the text report still prints.
func caseDiskFullDevFull() {
	for _, opt := range []string{"--json", "-o"} {
		r, late := within(30*time.Second, nil, *cgoscope, "run", opt, "/dev/full", "--", filepath.Join(*progs, "leaky"))
		if late || r.code != 0 {
			failf("run %s /dev/full: exit %d (want the program's 0), timed out %v: %s", opt, r.code, late, r.stderr)
			continue
		}
		if !mentionsFull(r.stderr, "/dev/full") || !bytes.Contains(r.stderr, []byte("disk")) {
			failf("run %s /dev/full: no message about the full disk: %s", opt, r.stderr)
		}
		if !bytes.Contains(r.stderr, []byte("User leak 1:")) {
			failf("run %s /dev/full: no text report: %s", opt, r.stderr)
		}
	}
}

// tmpfs mounts a tmpfs of the given size on a new directory of the work dir.
func tmpfs(name, size string) (string, func(), bool) {
	dir := filepath.Join(*work, name)
	exec.Command("umount", dir).Run()
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		failf("%v", err)
		return "", nil, false
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		failf("this case needs a tiny tmpfs (root, or CAP_SYS_ADMIN): mount: %v: %s", err, out)
		return "", nil, false
	}
	return dir, func() { exec.Command("umount", dir).Run() }, true
}

// caseDiskFullTmpfs: a real full disk. The launcher's trace and JSON report on a 4 KiB tmpfs;
// the shim's own trace file on one too small to start recording, and on one that fills up
// while the program runs: the program is never hurt (no SIGBUS), the report says what happened.
func caseDiskFullTmpfs() {
	leaky := filepath.Join(*progs, "leaky")
	if dir, done, ok := tmpfs("full-4k", "4k"); ok {
		trace, js := filepath.Join(dir, "t.cgs"), filepath.Join(dir, "r.json")
		r, late := within(30*time.Second, nil, *cgoscope, "run", "-o", trace, "--json", js, "--", leaky)
		if late || r.code != 0 {
			failf("run on a full tmpfs: exit %d, timed out %v: %s", r.code, late, r.stderr)
		}
		if !mentionsFull(r.stderr, trace) || !mentionsFull(r.stderr, js) || !bytes.Contains(r.stderr, []byte("User leak 1:")) {
			failf("run on a full tmpfs: want both errors and the text report: %s", r.stderr)
		}
		reportOn("the trace cut by the full disk", trace)
		done()
	}
	for _, c := range []struct{ size, want string }{
		{"1m", "there was no room to record anything"},
		{"2200k", "the disk filled up while the program ran"},
	} {
		dir, done, ok := tmpfs("full-"+c.size, c.size)
		if !ok {
			continue
		}
		trace := filepath.Join(dir, "s.cgs")
		r, late := within(30*time.Second, nil, "sh", "-c", `eval "$("$1" env -o "$2")" && exec "$3"`, "sh", *cgoscope, trace, leaky)
		if late || r.code != 0 || !bytes.Contains(r.stdout, []byte("leaky: done")) {
			failf("leaky recording into a %s tmpfs: exit %d, timed out %v: %s", c.size, r.code, late, r.stderr)
		}
		if rr, ok := reportOn("the shim's file on a "+c.size+" tmpfs", trace); ok &&
			(rr.code != 1 || !bytes.Contains(rr.stderr, []byte(c.want))) {
			failf("report on the shim's file on a %s tmpfs: exit %d, want 1 and %q: %s", c.size, rr.code, c.want, rr.stderr)
		}
		done()
	}
}

type vgReport struct {
	Errors []struct {
		Kind  string `xml:"kind"`
		XWhat struct {
			Text   string `xml:"text"`
			Bytes  int64  `xml:"leakedbytes"`
			Blocks int64  `xml:"leakedblocks"`
		} `xml:"xwhat"`
		Frames []struct {
			Fn string `xml:"fn"`
		} `xml:"stack>frame"`
	} `xml:"error"`
}

// vgEnv: Go's runtime reads the clock with rdtscp where the CPU has it, which valgrind 3.19
// cannot decode (the program dies of SIGILL); Go's GODEBUG turns the feature off.
var vgEnv = []string{"GODEBUG=cpu.rdtscp=off"}

// siteKey is the innermost frame that is not the allocator itself.
func siteKey(fns []string) string {
	for _, fn := range fns {
		switch fn {
		case "malloc", "calloc", "realloc", "strdup", "strndup", "posix_memalign", "aligned_alloc", "memalign", "valloc", "":
			continue
		}
		return fn
	}
	return "?"
}

// caseValgrind: on a program whose leaked blocks nothing points to, valgrind's "definitely
// lost" and cgoscope's user leaks agree, site by site, in blocks and bytes.
func caseValgrind() {
	prog := filepath.Join(*progs, "lost")
	xmlPath := filepath.Join(*work, "lost.vg.xml")
	vr, late := within(120*time.Second, vgEnv, "valgrind", "--leak-check=full", "--xml=yes", "--xml-file="+xmlPath, prog)
	if strings.Contains(string(vr.stderr), "unhandled instruction") {
		skipf("valgrind cannot run binaries of this Go version (it does not decode an instruction its runtime uses); " +
			"the same case runs on the Go 1.21 build")
	}
	if late || vr.code != 0 {
		failf("valgrind: exit %d, timed out %v: %s", vr.code, late, vr.stderr)
		return
	}
	var vg vgReport
	data, err := os.ReadFile(xmlPath)
	if err == nil {
		err = xml.Unmarshal(data, &vg)
	}
	if err != nil {
		failf("valgrind's XML: %v", err)
		return
	}
	want := map[string][2]int64{}
	for _, e := range vg.Errors {
		if e.Kind != "Leak_DefinitelyLost" {
			continue
		}
		var fns []string
		for _, f := range e.Frames {
			fns = append(fns, f.Fn)
		}
		k := siteKey(fns)
		want[k] = [2]int64{want[k][0] + e.XWhat.Blocks, want[k][1] + e.XWhat.Bytes}
	}
	r, rep, e, _, ok := robustRun(30*time.Second, nil, prog, nil)
	if !ok {
		return
	}
	checkLeaks(rep.Processes[0], e)
	wantExit(r, rep.Processes[0], 0, 0)
	got := map[string][2]int64{}
	for _, l := range rep.Processes[0].Leaks {
		if l.Origin != "user" || l.Kind != "definitely_lost" {
			continue
		}
		var fns []string
		for _, f := range l.Stack {
			fns = append(fns, f.Function)
		}
		k := siteKey(fns)
		got[k] = [2]int64{got[k][0] + l.Blocks, got[k][1] + l.Bytes}
	}
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
			failf("site %s: valgrind says %d blocks / %d bytes definitely lost, cgoscope %d / %d", k, want[k][0], want[k][1],
				got[k][0], got[k][1])
		}
	}
	if len(want) < 4 {
		failf("valgrind found %d definitely lost sites, want the program's 4: this case could not fail", len(want))
	}
}
