package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// process is a server the runner started: the real one or the bare one.
// Its stdout and stderr are read continuously (a server blocks when its
// log pipe is full, so they must be), counted line by line, and the last
// lines kept for the report when it fails.
type process struct {
	name string
	cmd  *exec.Cmd
	// Log lines written so far, and how many of them are warnings or
	// errors (slog's JSON "level" field).
	lines, warnings, errorLines atomic.Int64
	tail                        tailBuffer
	// notable keeps the first warning and error lines, for the report.
	notableMu sync.Mutex
	notable   []string
	readers   sync.WaitGroup
	exited    chan struct{} // closed when the process has exited
	waitErr   error         // set before exited is closed
}

// startProcess starts path with args and exactly env (nothing of the
// runner's own environment leaks in). The child gets its own process
// group, so a Ctrl-C in the terminal reaches only the runner, which then
// stops its children in order; and it gets SIGTERM if the runner dies
// without doing so.
func startProcess(name, path string, args, env []string) (*process, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, exited: make(chan struct{})}
	p.readers.Add(2)
	go p.read(stdout)
	go p.read(stderr)
	go func() {
		p.readers.Wait() // Wait must not be called before the pipes are drained
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid is the server's process id, for /proc.
func (p *process) pid() int { return p.cmd.Process.Pid }

// read counts r's lines until it ends. ReadSlice does not copy: only the
// tail keeps (a copy of) the last few lines.
func (p *process) read(r io.Reader) {
	defer p.readers.Done()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && err != bufio.ErrBufferFull {
			p.lines.Add(1)
			switch {
			case bytes.Contains(line, []byte(`"level":"ERROR"`)):
				p.errorLines.Add(1)
				p.keepNotable(line)
			case bytes.Contains(line, []byte(`"level":"WARN"`)):
				p.warnings.Add(1)
				p.keepNotable(line)
			}
			p.tail.add(line)
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// keepNotable keeps a copy of the first few warning and error lines.
func (p *process) keepNotable(line []byte) {
	p.notableMu.Lock()
	defer p.notableMu.Unlock()
	if len(p.notable) < 8 {
		p.notable = append(p.notable, string(bytes.TrimRight(line, "\n")))
	}
}

// notableLines returns the warning and error lines kept.
func (p *process) notableLines() []string {
	p.notableMu.Lock()
	defer p.notableMu.Unlock()
	return append([]string(nil), p.notable...)
}

// alive reports whether the process is still running.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the server to shut down gracefully (SIGTERM: the real server
// drains its audit writer) and kills it if it has not exited in 20 s.
func (p *process) stop() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// failure describes why the process is unusable, with its last log lines.
func (p *process) failure(what string) error {
	msg := fmt.Sprintf("%s %s", p.name, what)
	if !p.alive() {
		msg += fmt.Sprintf(" (exited: %v)", p.waitErr)
	}
	return fmt.Errorf("%s; its last output:\n%s", msg, indent(p.tail.String(), "    "))
}

// waitReady polls url until it answers 200, the process exits, or timeout.
func (p *process) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !p.alive() {
			return p.failure("did not start")
		}
		if time.Now().After(deadline) {
			return p.failure(fmt.Sprintf("did not answer %s within %v", url, timeout))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tailBuffer keeps the last few lines written to it.
type tailBuffer struct {
	mu    sync.Mutex
	lines [20][]byte
	next  int
	n     int
}

func (t *tailBuffer) add(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	const maxLine = 2 << 10
	if len(line) > maxLine {
		line = line[:maxLine]
	}
	t.lines[t.next] = append(t.lines[t.next][:0], line...)
	t.next = (t.next + 1) % len(t.lines)
	t.n = min(t.n+1, len(t.lines))
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for i := range t.n {
		l := t.lines[(t.next-t.n+i+len(t.lines))%len(t.lines)]
		b.Write(bytes.TrimRight(l, "\n"))
		b.WriteByte('\n')
	}
	if b.Len() == 0 {
		return "(nothing)"
	}
	return strings.TrimRight(b.String(), "\n")
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// freePort returns a loopback port nobody listens on right now. Another
// process could take it before the server binds it; the server's start-up
// would then fail visibly, never silently measure the wrong thing.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), nil
}

// command runs a short command (an admin command of the server, go build)
// and returns its stdout; on failure, the error carries its stderr's end.
func command(ctx context.Context, dir, path string, args, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		tail := strings.TrimSpace(stderr.String())
		if len(tail) > 4000 {
			tail = "..." + tail[len(tail)-4000:]
		}
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", path, strings.Join(args, " "), err, indent(tail, "    "))
	}
	return stdout.String(), nil
}

// errInvalid marks a benchmark whose numbers cannot be trusted.
var errInvalid = errors.New("INVALID")
