// Package truth lets a test program state its own ground truth: which C blocks it leaks, from
// which Go line, and which functions must appear in no leak. When CGOSCOPE_EXPECT names a file,
// Write puts the expectations there as JSON for the integration tests to compare with
// cgoscope's report. Without it nothing is written, so the program behaves the same either way.
package truth

import (
	"encoding/json"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"unsafe"
)

// Frame is a frame that must appear in the leak's stack.
type Frame struct {
	Function string `json:"function"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
}

// Site is one expected group of unfreed blocks: all blocks whose stacks hold every frame in
// Frames, of one kind: "lost" (nothing reachable points to them: definitely or indirectly lost)
// or "still_reachable" (a root still points to them when the program ends).
type Site struct {
	Frames []Frame `json:"frames"`
	Kind   string  `json:"kind"`
	Blocks int64   `json:"blocks"`
	Bytes  int64   `json:"bytes"`
}

type key struct {
	fn, file string
	line     int
	cfn      string
	kind     string
}

// Kinds of Site. Lost stands for definitely or indirectly lost; the finer kinds are memcheck's.
const (
	Lost           = "lost"
	Reachable      = "still_reachable"
	DefinitelyLost = "definitely_lost"
	IndirectlyLost = "indirectly_lost"
	PossiblyLost   = "possibly_lost"
)

// CallSite is an expected cgo call count: exactly Calls calls of C function Function from Go
// package Package (AtLeast: Calls or more).
type CallSite struct {
	Package  string `json:"package"`
	Function string `json:"function"`
	Calls    int64  `json:"calls"`
	AtLeast  bool   `json:"at_least,omitempty"`
}

// LifetimeError is an expected double or invalid free (docs/lifetime.md): its kind
// ("double_free", "invalid_free"), the block's size (0: unknown, as for Go memory), for an
// interior pointer its offset into the block, and frames that must appear in the bad free's
// stack, the allocation's and the first free's. Function is what was called on the address:
// "free" (also when empty) or "realloc".
type LifetimeError struct {
	Kind      string  `json:"kind"`
	Function  string  `json:"function,omitempty"`
	Size      int64   `json:"size"`
	Offset    int64   `json:"offset,omitempty"`
	Free      []Frame `json:"free"`
	Alloc     []Frame `json:"alloc,omitempty"`
	FirstFree []Frame `json:"first_free,omitempty"`
}

// Kinds of LifetimeError.
const (
	DoubleFree  = "double_free"
	InvalidFree = "invalid_free"
)

var (
	mu        sync.Mutex
	lifetime  []LifetimeError
	sites     = map[key]*Site{}
	absent    []string
	calls     = map[string]*CallSite{}
	callbacks = map[string]*CallSite{}
)

func countIn(m map[string]*CallSite, pkg, fn string, n int64, atLeast bool) {
	mu.Lock()
	defer mu.Unlock()
	k := pkg + "." + fn
	c := m[k]
	if c == nil {
		c = &CallSite{Package: pkg, Function: fn}
		m[k] = c
	}
	c.Calls += n
	c.AtLeast = c.AtLeast || atLeast
}

// Calls records that the program made n more calls of C function fn from package pkg.
func Calls(pkg, fn string, n int64) { countIn(calls, pkg, fn, n, false) }

// CallsAtLeast records that the program made at least n calls of fn (the exact number is the
// library's business, as for the net package's resolver).
func CallsAtLeast(pkg, fn string, n int64) { countIn(calls, pkg, fn, n, true) }

// Callbacks records that C called the exported Go function fn of package pkg n more times.
func Callbacks(pkg, fn string, n int64) { countIn(callbacks, pkg, fn, n, false) }

func add(k key, frames []Frame, bytes int64) {
	mu.Lock()
	defer mu.Unlock()
	s := sites[k]
	if s == nil {
		s = &Site{Frames: frames, Kind: k.kind}
		sites[k] = s
	}
	s.Blocks++
	s.Bytes += bytes
}

func caller(skip int) Frame {
	pc, file, line, _ := runtime.Caller(skip + 1)
	// runtime.Caller's pc belongs to the logical (possibly inlined) frame; CallersFrames names it.
	frames := runtime.CallersFrames([]uintptr{pc + 1})
	f, _ := frames.Next()
	return Frame{Function: f.Function, File: file, Line: line}
}

// Leak records that p, a block of size bytes allocated on the caller's line by a cgo call
// (C.CString, C.malloc, or a C function that allocates), is never freed and that the program
// lets go of it: nothing will point to it when the program ends. cFunc, if given, is a C
// function that must appear in the leak's stack. It returns p so it can wrap the call.
func Leak(p unsafe.Pointer, bytes int64, cFunc ...string) unsafe.Pointer {
	note(Lost, bytes, cFunc)
	return p
}

// Held records that p, allocated on the caller's line as for Leak, is never freed but is still
// pointed to when the program ends (a Go global, a Go map, a C global holds it): still
// reachable, not a leak.
func Held(p unsafe.Pointer, bytes int64, cFunc ...string) unsafe.Pointer {
	note(Reachable, bytes, cFunc)
	return p
}

func note(kind string, bytes int64, cFunc []string) {
	g := caller(2)
	frames := []Frame{g}
	k := key{fn: g.Function, file: g.File, line: g.Line, kind: kind}
	for _, c := range cFunc {
		frames = append(frames, Frame{Function: c})
		k.cfn += c + ","
	}
	add(k, frames, bytes)
}

func init() {
	// The runtime starts some goroutines of its own lazily: the background mark workers with
	// the first collection, the finalizer goroutine with the first finalizer (the first file
	// Write opens sets one). Started later, they would reuse the stack of a goroutine that has
	// ended (see Go), and unused slots of their frames would keep what it left there: a
	// conservative scan takes such a slot for a live pointer. Started now, they have their own.
	x := new(int)
	runtime.SetFinalizer(x, func(*int) {})
	runtime.GC()
	runtime.KeepAlive(x)
}

// Go runs f on a goroutine of its own and waits for it to end. A program that loses blocks does
// it there: a copy of a lost pointer left on a goroutine's stack (a conservative scan cannot tell
// a dead slot from a live one) goes with the stack when the goroutine ends.
func Go(f func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f()
	}()
	wg.Wait()
}

// Scrubbed runs f, then overwrites the dead part of the calling goroutine's stack that f's
// calls used, as later, deeper calls of a real program would: a copy of a pointer f dropped
// left there would look live to a conservative scan (cgoscope's, valgrind's). For the scrub to
// reach the memory f ran on, the stack must not move in between: it is grown beforehand, and
// the collector, which shrinks stacks, is off meanwhile.
func Scrubbed(f func()) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	growStack()
	f()
	scrubStack()
}

//go:noinline
func growStack() {
	var buf [16384]byte
	sink ^= readStack(buf[:])
}

//go:noinline
func scrubStack() {
	var buf [4096]byte // zeroed on entry, as it is read
	sink ^= readStack(buf[:])
}

//go:noinline
func readStack(b []byte) uintptr {
	var s uintptr
	for i := 0; i < len(b); i += 512 {
		s += uintptr(b[i])
	}
	return s
}

// sink is where Drop leaves a trace of the pointers it is given, so that the compiler keeps
// them, without keeping the pointers themselves.
var sink uintptr

// Drop lets go of p: only a hash of it stays, so the block it points to is lost.
func Drop(p unsafe.Pointer) {
	sink ^= uintptr(p) * 0x9e3779b97f4a7c15
}

// LeakC records a leak made by C code that no Go frame leads to (a thread C created), named
// by a C function in its stack.
func LeakC(cFunc string, bytes int64) {
	add(key{cfn: cFunc, kind: Lost}, []Frame{{Function: cFunc}}, bytes)
}

// LeakCKind records a block made by C code that no Go frame leads to, of the given kind.
func LeakCKind(kind, cFunc string, bytes int64) {
	add(key{cfn: cFunc, kind: kind}, []Frame{{Function: cFunc}}, bytes)
}

// HeldC records a block made by C code that no Go frame leads to, still pointed to at the end
// (by a C global, say).
func HeldC(cFunc string, bytes int64) {
	add(key{cfn: cFunc, kind: Reachable}, []Frame{{Function: cFunc}}, bytes)
}

// Next is the caller's function, file and the line after the caller's: put it on the line
// before a call whose Go line the report must name.
func Next() Frame {
	f := caller(1)
	f.Line++
	return f
}

// Lifetime records an expected double or invalid free. A program that makes one usually dies
// in it (glibc aborts): call Write before.
func Lifetime(e LifetimeError) {
	mu.Lock()
	lifetime = append(lifetime, e)
	mu.Unlock()
}

// LifetimeNext records e, with the caller's next line added to the frames of the bad free's
// stack, and writes the expectations: put it, on one line, on the line before the bad free,
// which usually kills the program.
func LifetimeNext(e LifetimeError) {
	f := caller(1)
	f.Line++
	e.Free = append(e.Free, f)
	Lifetime(e)
	Write()
}

// Absent names a function that must appear in no leak's stack.
func Absent(function string) {
	mu.Lock()
	absent = append(absent, function)
	mu.Unlock()
}

// Write saves the expectations where CGOSCOPE_EXPECT says, if it says.
func Write() {
	if path := os.Getenv("CGOSCOPE_EXPECT"); path != "" {
		WriteTo(path)
	}
}

// WriteTo saves the expectations in path (a program that becomes another, by exec, states the
// truth of each of its lives in a file of its own).
func WriteTo(path string) {
	mu.Lock()
	defer mu.Unlock()
	out := struct {
		Leaks     []*Site         `json:"leaks"`
		Absent    []string        `json:"absent"`
		Calls     []*CallSite     `json:"calls"`
		Callbacks []*CallSite     `json:"callbacks"`
		Errors    []LifetimeError `json:"errors"`
	}{Absent: absent, Errors: lifetime}
	for _, s := range sites {
		out.Leaks = append(out.Leaks, s)
	}
	for _, c := range calls {
		out.Calls = append(out.Calls, c)
	}
	for _, c := range callbacks {
		out.Callbacks = append(out.Callbacks, c)
	}
	sort.Slice(out.Leaks, func(i, j int) bool {
		a, b := out.Leaks[i].Frames[0], out.Leaks[j].Frames[0]
		if a.Function != b.Function {
			return a.Function < b.Function
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return out.Leaks[i].Kind < out.Leaks[j].Kind
	})
	data, err := json.MarshalIndent(out, "", "  ")
	if err == nil {
		err = os.WriteFile(path, data, 0o600)
	}
	if err != nil {
		panic("truth: " + err.Error())
	}
}
