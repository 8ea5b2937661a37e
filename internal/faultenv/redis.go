package faultenv

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RedisServer is a throwaway redis-server on a free loopback port, with no
// persistence: a Kill loses every key, as a cache restarted from scratch
// does. Its methods fail the test on error.
type RedisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	proc   *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// Redis starts a redis-server and returns it. It is killed when the test
// ends.
func Redis(t testing.TB) *RedisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("faultenv: redis-server is not installed: fault-injection tests start a throwaway Redis of their own (Debian: apt-get install redis-server): %v", err)
	}
	r := &RedisServer{t: t, bin: bin, dir: t.TempDir()}
	if r.port, err = FreePort(); err != nil {
		t.Fatalf("faultenv: %v", err)
	}
	if r.log, err = os.Create(r.dir + "/redis.log"); err != nil {
		t.Fatalf("faultenv: %v", err)
	}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.proc != nil {
			r.kill()
		}
		_ = r.log.Close()
	})
	r.Start()
	return r
}

// URL is the redis:// URL of the server.
func (r *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// Start starts the killed server again, on the same port, and returns once
// it answers PING. It starts empty.
func (r *RedisServer) Start() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		r.t.Fatal("faultenv: Redis.Start: already running")
	}
	cmd := exec.Command(r.bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(r.port), "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = r.log, r.log
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("faultenv: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	r.proc, r.exited = cmd, exited
	deadline := time.Now().Add(30 * time.Second)
	for !r.answersPing() {
		select {
		case <-exited:
			r.proc = nil
			r.t.Fatalf("faultenv: redis-server exited while starting (port %d taken?); see %s", r.port, r.log.Name())
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("faultenv: redis-server did not answer within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill kills the server with SIGKILL and returns once it has exited: its
// port refuses connections from then on.
func (r *RedisServer) Kill() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		r.t.Fatal("faultenv: Redis.Kill: not running")
	}
	r.kill()
}

func (r *RedisServer) kill() {
	_ = r.proc.Process.Kill()
	select {
	case <-r.exited:
	case <-time.After(30 * time.Second):
		r.t.Errorf("faultenv: redis-server did not exit after SIGKILL")
	}
	r.proc = nil
}

// answersPing speaks just enough RESP to ask PING.
func (r *RedisServer) answersPing() bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && line == "+PONG\r\n"
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a
// moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
