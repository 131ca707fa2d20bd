package isolated

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dora-go/dora/internal/osthread"
	"github.com/hashicorp/go-plugin/runner"
	"golang.org/x/sys/unix"
)

// process is the go-plugin runner of one operator host: it starts the
// child with its extra descriptors, records how it ended, and kills it
// with everything it started.
//
//   - The child gets SIGKILL when the host dies (Pdeathsig). Linux sends
//     it when the *thread* that forked the child ends, not the process,
//     and Go ends the thread of a goroutine that exits while locked to it
//     (the runtime locks every operator goroutine). So every child is
//     forked from one thread that lives as long as the process (spawn).
//   - The child leads a process group of its own: whatever the operator
//     spawns is killed with it, and after it exits.
//   - The child is reaped as soon as it exits; the pid is never signalled
//     after that (the group is signalled only while the leader is a
//     zombie or alive, so the pgid cannot have been reused).
type process struct {
	cmd *exec.Cmd
	// stdout (go-plugin's handshake) and stderr (the child's JSON logs)
	// are the read ends go-plugin consumes.
	stdout, stderr *eofReader
	// childFiles are the child's ends, closed here once it started.
	childFiles []*os.File

	mu     sync.Mutex
	pid    int
	exited bool // the child is a zombie or reaped: do not signal it
	killed bool // the host killed it (it did not end by itself)
	done   chan struct{}
	// released is closed once stdout and stderr are closed too.
	released chan struct{}
	state    *os.ProcessState
	werr     error
}

var _ runner.Runner = (*process)(nil)

// eofReader reports when its reader reached the end (or failed).
type eofReader struct {
	f    *os.File
	once sync.Once
	eof  chan struct{}
}

func newEOFReader(f *os.File) *eofReader { return &eofReader{f: f, eof: make(chan struct{})} }

func (r *eofReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if err != nil {
		r.once.Do(func() { close(r.eof) })
	}
	return n, err
}

func (r *eofReader) Close() error { return r.f.Close() }

func newProcess(cmd *exec.Cmd, extra []*os.File) (*process, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return &process{
		cmd:        cmd,
		stdout:     newEOFReader(outR),
		stderr:     newEOFReader(errR),
		childFiles: append([]*os.File{outW, errW}, extra...),
		done:       make(chan struct{}),
		released:   make(chan struct{}),
	}, nil
}

// Start implements runner.Runner.
func (p *process) Start(context.Context) error {
	err := spawn(p.cmd.Start)
	for _, f := range p.childFiles {
		f.Close()
	}
	if err != nil {
		p.stdout.Close()
		p.stderr.Close()
		p.exited = true
		close(p.done)
		close(p.released)
		return err
	}
	p.mu.Lock()
	p.pid = p.cmd.Process.Pid
	p.mu.Unlock()
	go p.wait()
	return nil
}

// wait waits for the child to exit without reaping it, kills what is left
// of its process group, then reaps it.
func (p *process) wait() {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
	p.mu.Lock()
	// The leader is a zombie: its pgid cannot be reused yet.
	unix.Kill(-p.pid, unix.SIGKILL)
	p.exited = true
	p.mu.Unlock()
	err := p.cmd.Wait()
	p.mu.Lock()
	p.state, p.werr = p.cmd.ProcessState, err
	p.mu.Unlock()
	close(p.done)
	// go-plugin reads both pipes to their end, which comes once every
	// writer is gone; a descendant that left the group could keep one
	// open, so stop waiting after a while. Then close them.
	go func() {
		defer close(p.released)
		t := time.NewTimer(time.Second)
		defer t.Stop()
		for _, r := range []*eofReader{p.stdout, p.stderr} {
			select {
			case <-r.eof:
			case <-t.C:
			}
			r.Close()
		}
	}()
}

// Wait implements runner.Runner.
func (p *process) Wait(context.Context) error {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.werr
}

// Kill implements runner.Runner: SIGKILL to the child's process group.
func (p *process) Kill(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid > 0 && !p.exited {
		p.killed = true
		unix.Kill(-p.pid, unix.SIGKILL)
	}
	return nil
}

// killedByHost reports whether the child ended because the host killed
// it (a child that exited just before the host's SIGKILL was not).
func (p *process) killedByHost() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.killed || p.state == nil {
		return false
	}
	ws, ok := p.state.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// exitedWithin waits up to d for the child to be reaped.
func (p *process) exitedWithin(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

// Stdout implements runner.Runner.
func (p *process) Stdout() io.ReadCloser { return p.stdout }

// Stderr implements runner.Runner.
func (p *process) Stderr() io.ReadCloser { return p.stderr }

// Name implements runner.Runner.
func (p *process) Name() string { return "dora operator-host" }

// ID implements runner.Runner.
func (p *process) ID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pid == 0 {
		return ""
	}
	return strconv.Itoa(p.pid)
}

// Diagnose implements runner.Runner; the loader adds the exit status and
// stderr itself.
func (p *process) Diagnose(context.Context) string {
	return "the operator host (" + p.cmd.Path + ") did not complete the go-plugin handshake on its stdout"
}

// PluginToHost implements runner.AddrTranslator.
func (p *process) PluginToHost(n, a string) (string, string, error) { return n, a, nil }

// HostToPlugin implements runner.AddrTranslator.
func (p *process) HostToPlugin(n, a string) (string, string, error) { return n, a, nil }

// describe says how the child ended, for people: "exited with status 3",
// "was killed by signal SIGSEGV (segmentation fault)".
func (p *process) describe() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == nil {
		return "is still running"
	}
	ws, ok := p.state.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return p.state.String()
	case ws.Signaled():
		s := fmt.Sprintf("was killed by signal %s (%s)", unix.SignalName(ws.Signal()), ws.Signal())
		if ws.CoreDump() {
			s += ", core dumped"
		}
		return s
	default:
		return fmt.Sprintf("exited with status %d", ws.ExitStatus())
	}
}

// spawner is the thread every child is forked from (see process).
// It is never stopped: the thread lives as long as the process.
var spawner struct {
	once   sync.Once
	thread *osthread.Thread
}

func spawn(start func() error) (err error) {
	spawner.once.Do(func() { spawner.thread = osthread.Start() })
	spawner.thread.Run(func() { err = start() })
	return err
}

// tail keeps the last lines a child wrote to stderr, for crash reports.
//
// A fatal signal in C code of the child (SIGSEGV, SIGABRT from abort())
// is caught by the Go runtime, which prints a report ("SIGSEGV:
// segmentation violation", "PC=... addr=0x0", "signal arrived during cgo
// execution"), then the stack of every goroutine of the operator host and
// its registers, whatever GOTRACEBACK says, and exits with status 2. The
// report's first lines are kept apart, and the rest of the dump, which
// says nothing about the operator, is neither kept nor forwarded unless
// the runtime node runs with GOTRACEBACK set: a crash reads as the signal
// plus what the operator printed before it.
type tail struct {
	mu       sync.Mutex
	lines    []string
	report   []string // the Go runtime's crash report, when there is one
	inReport bool
	elided   bool
}

const (
	tailLines   = 20
	tailLineMax = 400
)

var (
	goCrashStart  = regexp.MustCompile(`^(SIG[A-Z0-9]+: |fatal error: )`)
	goCrashDetail = regexp.MustCompile(`^(PC=|\[signal |signal arrived )`)
	fullDumps     = os.Getenv("GOTRACEBACK") != ""
)

// add keeps a line and says whether to forward it, and what to forward
// instead when not.
func (t *tail) add(line string) (forward bool, instead string) {
	if len(line) > tailLineMax {
		line = line[:tailLineMax] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case !t.inReport && goCrashStart.MatchString(line):
		t.inReport = true
		t.report = append(t.report, line)
		return true, ""
	case t.inReport:
		if len(t.report) < 4 && goCrashDetail.MatchString(line) {
			t.report = append(t.report, line)
			return true, ""
		}
		if fullDumps || t.elided {
			return fullDumps, ""
		}
		t.elided = true
		return false, "(the operator host's goroutine stacks and registers are left out; set GOTRACEBACK=all to see them)"
	}
	if len(t.lines) == tailLines {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, line)
	return true, ""
}

// goReport is the Go runtime's crash report on one line, or "".
func (t *tail) goReport() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.report, "; ")
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return ""
	}
	return "\n\t| " + strings.Join(t.lines, "\n\t| ")
}
