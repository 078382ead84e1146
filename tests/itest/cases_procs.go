package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func init() {
	cases["children-exec"] = func() { caseChildren("exec", true) }
	cases["children-fork"] = func() { caseChildren("fork", true) }
	cases["children-no-follow"] = func() { caseChildren("exec", false) }
	cases["env-exit"] = func() { caseEnv("exitcode", 3, 0) }
	cases["env-sigkill"] = func() { caseEnv("sigkill", 0, 9) }
	cases["private-channel"] = casePrivate
}

// caseChildren: every process the program starts is reported on its own, with its own leaks.
func caseChildren(mode string, follow bool) {
	var opts []string
	if !follow {
		opts = []string{"--no-follow"}
	}
	r, rep, e := traced("children", opts, mode)
	if r.code != 0 {
		failf("children %s exited %d: %s", mode, r.code, r.stderr)
	}
	if !follow {
		if len(rep.Processes) != 1 {
			failf("--no-follow: %d processes in the report, want 1", len(rep.Processes))
		}
		checkLeaks(rep.Processes[0], e)
		return
	}
	if len(rep.Processes) != 2 {
		failf("%d processes in the report, want 2 (the program and its child)", len(rep.Processes))
		return
	}
	parent, child := rep.Processes[0], rep.Processes[1]
	checkLeaks(parent, e)
	wantExit(r, parent, 0, 0)
	childExp := readExpect(filepath.Join(*work, "children.expect.json.child"))
	checkLeaks(child, childExp)
	if child.Pid == parent.Pid || child.Pid == 0 {
		failf("child pid %d, parent pid %d", child.Pid, parent.Pid)
	}
	if mode == "exec" && (len(child.Argv) < 2 || child.Argv[1] != "child") {
		failf("child argv %q, want [... child]", child.Argv)
	}
}

// caseEnv: without the launcher, `eval "$(cgoscope env -o F)"` then the program, then
// `cgoscope report F`, gives the same leaks as `cgoscope run`.
func caseEnv(prog string, code, signal int) {
	trace := filepath.Join(*work, prog+".env.cgs")
	expPath := filepath.Join(*work, prog+".env.expect.json")
	os.Remove(expPath)
	script := `eval "$("$1" env -o "$2")" && exec "$3"`
	cmd := exec.Command("sh", "-c", script, "sh", *cgoscope, trace, filepath.Join(*progs, prog))
	cmd.Env = append(os.Environ(), "CGOSCOPE_EXPECT="+expPath)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	got := 0
	if ee, ok := err.(*exec.ExitError); ok {
		got = ee.ExitCode()
		if signal != 0 && !strings.Contains(ee.String(), "killed") {
			failf("the program was not killed as it should be: %v", ee)
		}
	}
	if signal == 0 && got != code {
		failf("the program exited %d under the env shim, want %d: %s", got, code, errb.Bytes())
	}
	if st, err := os.Stat(trace); err != nil || st.Mode().Perm() != 0o600 {
		failf("trace file %s: %v, want mode 0600", trace, err)
		return
	}
	jsonPath := filepath.Join(*work, prog+".env.json")
	rr := run(nil, *cgoscope, "report", "--json", jsonPath, trace)
	if rr.code != 0 {
		failf("cgoscope report %s exited %d: %s", trace, rr.code, rr.stderr)
	}
	envRep := readReport(jsonPath, rr)
	checkLeaks(envRep.Processes[0], readExpect(expPath))
	if st, err := os.Stat(jsonPath); err != nil || st.Mode().Perm() != 0o600 {
		failf("JSON report %s: %v, want mode 0600", jsonPath, err)
	}
	// And the same leaks as the launcher finds.
	_, runRep, _ := traced(prog, nil)
	a, b := envRep.Processes[0], runRep.Processes[0]
	a.Exit, b.Exit = nil, nil // no launcher saw how the env run ended
	if !sameLeaks(a, b, true) {
		failf("user leaks under `cgoscope env` differ from `cgoscope run`")
	}
}

// casePrivate: files are 0600, and another user cannot open the live channel.
func casePrivate() {
	timeline := filepath.Join(*work, "tl.json")
	trace := filepath.Join(*work, "private.cgs")
	_, _, _ = traced("leaky", []string{"--timeline", timeline, "-o", trace})
	for _, f := range []string{timeline, trace, filepath.Join(*work, "leaky.json")} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			failf("%s: %v, want mode 0600", f, err)
		}
	}
	if os.Geteuid() != 0 {
		failf("this case needs root to try the channel as a second user (setpriv)")
		return
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		failf("setpriv (util-linux) is needed to run as a second user: %v", err)
		return
	}
	// A program that waits, so the channel stays open while we try it.
	cmd := exec.Command(*cgoscope, "run", "-q", "--", "sleep", "30")
	if err := cmd.Start(); err != nil {
		failf("cannot start cgoscope: %v", err)
		return
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	fdPath := ""
	for i := 0; i < 100 && fdPath == ""; i++ {
		time.Sleep(20 * time.Millisecond)
		ents, _ := os.ReadDir("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/fd")
		for _, e := range ents {
			p := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/fd/" + e.Name()
			if t, err := os.Readlink(p); err == nil && strings.Contains(t, "cgoscope-channel") {
				fdPath = p
			}
		}
	}
	if fdPath == "" {
		failf("no memfd channel found in cgoscope's descriptors")
		return
	}
	// The same user (root here) can open it; uid 65534 must not.
	try := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		"sh", "-c", `exec 3<>"$1" && echo OPENED`, "sh", fdPath)
	var out bytes.Buffer
	try.Stdout, try.Stderr = &out, &out
	err = try.Run()
	if err == nil || strings.Contains(out.String(), "OPENED") {
		failf("user 65534 opened the live channel %s: %s", fdPath, out.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), "ermission denied") && !strings.Contains(sc.Text(), "Operation not permitted") {
			continue
		}
		return
	}
	failf("opening the channel as user 65534 failed, but not for lack of permission: %s", out.String())
}
