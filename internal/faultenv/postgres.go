package faultenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database is the name of the database Postgres creates; URL points at it.
const Database = "order_mcp"

// startTimeout bounds how long a start or a stop may take. Crash recovery
// after Kill replays the WAL written since the last checkpoint, which on a
// loaded two-core machine under the race detector can take a while.
const startTimeout = 60 * time.Second

// PG is a throwaway Postgres cluster on a free loopback port. Its methods
// fail the test on error; they are not safe for concurrent use.
type PG struct {
	t        testing.TB
	bin      string // the directory of initdb, pg_ctl and postgres
	runAs    string // the operating-system user the server runs as; "" for ourselves
	dir      string // owned by runAs: data, sockets and the log
	data     string
	sockets  string
	logFile  string
	port     int
	mu       sync.Mutex
	proc     *exec.Cmd     // the running postmaster (or runuser watching it); nil when stopped
	exited   chan struct{} // closed when proc has been reaped
	procErr  error         // proc's exit status: read only once exited is closed
	stopOnce sync.Once
}

// Postgres initialises a cluster, starts it, creates the database
// Database and returns it. The cluster is stopped and its directory
// removed when the test ends.
//
// The cluster listens on 127.0.0.1 only (trust authentication, superuser
// postgres) and on a private socket directory, runs with fsync and
// synchronous commit on, and has small shared buffers.
func Postgres(t testing.TB) *PG {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		t.Fatalf("faultenv: %v", err)
	}
	p := &PG{t: t, bin: bin}
	if os.Geteuid() == 0 {
		// Postgres refuses to run as root: run it as its own user.
		p.runAs = "postgres"
		if _, err := user.Lookup(p.runAs); err != nil {
			t.Fatalf("faultenv: running as root, Postgres must run as the %q user, which does not exist: %v", p.runAs, err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Fatalf("faultenv: running as root, Postgres is started with runuser, which is not installed: %v", err)
		}
	}
	// Not t.TempDir: its parent directories are private to the user running
	// the test, so the postgres user could not reach this one.
	p.dir, err = os.MkdirTemp("", "faultenv-pg-")
	if err != nil {
		t.Fatalf("faultenv: %v", err)
	}
	t.Cleanup(p.cleanup)
	p.data = filepath.Join(p.dir, "data")
	p.sockets = filepath.Join(p.dir, "sockets")
	p.logFile = filepath.Join(p.dir, "postgres.log")
	if err := os.Mkdir(p.sockets, 0o700); err != nil {
		t.Fatalf("faultenv: %v", err)
	}
	if err := p.chown(p.dir, p.sockets); err != nil {
		t.Fatalf("faultenv: give %s to %s: %v", p.dir, p.runAs, err)
	}
	if p.port, err = FreePort(); err != nil {
		t.Fatalf("faultenv: %v", err)
	}

	if out, err := p.command("initdb", "-D", p.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("faultenv: initdb: %v\n%s", err, out)
	}
	conf := fmt.Sprintf(`
# faultenv: a throwaway cluster for fault-injection tests.
listen_addresses = '127.0.0.1'
port = %d
unix_socket_directories = '%s'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 16MB
max_connections = 50
log_min_messages = warning
log_min_error_statement = panic
`, p.port, p.sockets)
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\n"
	if err := appendFile(filepath.Join(p.data, "postgresql.conf"), conf); err != nil {
		t.Fatalf("faultenv: %v", err)
	}
	if err := os.WriteFile(filepath.Join(p.data, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		t.Fatalf("faultenv: %v", err)
	}
	if err := p.chown(filepath.Join(p.data, "pg_hba.conf")); err != nil {
		t.Fatalf("faultenv: %v", err)
	}
	p.Start()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		t.Fatalf("faultenv: connect to the new cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{Database}.Sanitize()); err != nil {
		t.Fatalf("faultenv: create database: %v", err)
	}
	return p
}

// URL is a postgres:// URL for the database Database, as the superuser
// postgres, over TCP on 127.0.0.1.
func (p *PG) URL() string { return p.url(Database) }

func (p *PG) url(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, database)
}

// Port is the TCP port the cluster listens on.
func (p *PG) Port() int { return p.port }

// Start starts the stopped (or killed) cluster and returns once it accepts
// connections. After Kill that includes crash recovery.
//
// The postmaster is started as a child of this process (through runuser
// when the test runs as root), not by pg_ctl, which would leave it
// orphaned: on a machine whose init does not reap orphans, a killed
// postmaster would stay a zombie, and its lock file would keep the next
// start out ("is another postmaster running?").
func (p *PG) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc != nil {
		p.t.Fatal("faultenv: Postgres.Start: already running")
	}
	log, err := os.OpenFile(p.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("faultenv: %v", err)
	}
	defer log.Close() // the child holds its own copy
	cmd := p.command("postgres", "-D", p.data)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("faultenv: start postgres: %v", err)
	}
	exited := make(chan struct{})
	p.proc, p.exited = cmd, exited
	go func() {
		p.procErr = cmd.Wait() // read only after exited is closed
		close(exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		if p.acceptsConnections() {
			return
		}
		select {
		case <-exited:
			p.proc = nil
			p.t.Fatalf("faultenv: postgres exited while starting: %v\n%s", p.procErr, p.logTail())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("faultenv: postgres did not accept connections within %s\n%s", startTimeout, p.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// acceptsConnections reports whether a connection to the cluster succeeds.
func (p *PG) acceptsConnections() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}

// Stop shuts the cluster down with pg_ctl stop -m fast: open sessions are
// ended, their transactions rolled back, a checkpoint written. It returns
// once the postmaster has exited.
func (p *PG) Stop() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		p.t.Fatal("faultenv: Postgres.Stop: not running")
	}
	if out, err := p.command("pg_ctl", "stop", "-D", p.data, "-m", "fast", "-w",
		"-t", strconv.Itoa(int(startTimeout.Seconds()))).CombinedOutput(); err != nil {
		p.t.Fatalf("faultenv: pg_ctl stop: %v\n%s\n%s", err, out, p.logTail())
	}
	p.waitExited()
}

// Restart is Stop then Start.
func (p *PG) Restart() {
	p.t.Helper()
	p.Stop()
	p.Start()
}

// Kill crashes the cluster: SIGKILL to the postmaster and to every server
// process it had started, as when the machine's database process tree is
// lost at once. Nothing is shut down cleanly; Start runs crash recovery
// from the WAL, which holds every transaction that was acknowledged as
// committed (fsync is on).
func (p *PG) Kill() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		p.t.Fatal("faultenv: Postgres.Kill: not running")
	}
	pid, err := p.postmasterPID()
	if err != nil {
		p.t.Fatalf("faultenv: Postgres.Kill: %v", err)
	}
	// The children first noted, then killed after the postmaster, so that
	// the postmaster cannot start a replacement in between.
	children := childrenOf(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		p.t.Fatalf("faultenv: kill postmaster %d: %v", pid, err)
	}
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	p.waitExited()
	// The orphaned server processes are reparented to init; they must be
	// gone (or zombies, which hold no shared memory) before a new
	// postmaster will start.
	deadline := time.Now().Add(startTimeout)
	for _, c := range children {
		for alive(c) {
			if time.Now().After(deadline) {
				p.t.Fatalf("faultenv: server process %d survived SIGKILL", c)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// StallCommits makes every transaction that writes wait, once its commit
// is durable, for an acknowledgement that never comes: synchronous
// replication to a standby that does not exist. Its client is not told
// that the commit happened. A fault injected then (Stop, Kill) is the
// fault no retry can see through: the client's transaction committed and
// the client cannot know. Read-only transactions are not affected.
//
// The setting is kept across restarts (ALTER SYSTEM), so commits stall
// again after Start until ResumeCommits.
func (p *PG) StallCommits() {
	p.t.Helper()
	p.alterSystem("ALTER SYSTEM SET synchronous_standby_names = 'faultenv_no_such_standby'")
}

// ResumeCommits ends StallCommits: stalled commits are acknowledged, new
// ones are no longer held.
func (p *PG) ResumeCommits() {
	p.t.Helper()
	p.alterSystem("ALTER SYSTEM RESET synchronous_standby_names")
}

// StalledCommits is how many transactions wait for the acknowledgement
// StallCommits withholds.
func (p *PG) StalledCommits() int {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		p.t.Fatalf("faultenv: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&n); err != nil {
		p.t.Fatalf("faultenv: %v", err)
	}
	return n
}

func (p *PG) alterSystem(sql string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		p.t.Fatalf("faultenv: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		p.t.Fatalf("faultenv: %s: %v", sql, err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		p.t.Fatalf("faultenv: reload: %v", err)
	}
}

// waitExited waits for the postmaster (or runuser around it) to be reaped.
func (p *PG) waitExited() {
	p.t.Helper()
	select {
	case <-p.exited:
		p.proc = nil
	case <-time.After(startTimeout):
		p.t.Fatalf("faultenv: postgres did not exit\n%s", p.logTail())
	}
}

// postmasterPID reads the postmaster's pid from its lock file.
func (p *PG) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(p.data, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(first))
}

// cleanup stops the cluster if it runs and removes its directory.
func (p *PG) cleanup() {
	p.stopOnce.Do(func() {
		p.mu.Lock()
		running := p.proc != nil
		p.mu.Unlock()
		if running {
			out, err := p.command("pg_ctl", "stop", "-D", p.data, "-m", "immediate", "-w", "-t", "30").CombinedOutput()
			if err != nil {
				p.t.Errorf("faultenv: stop postgres at cleanup: %v\n%s", err, out)
			}
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				p.t.Errorf("faultenv: postgres did not exit at cleanup")
			}
		}
		if err := os.RemoveAll(p.dir); err != nil {
			p.t.Errorf("faultenv: remove %s: %v", p.dir, err)
		}
	})
}

// command runs one of the Postgres binaries as the server's user.
func (p *PG) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(p.bin, name)
	if p.runAs == "" {
		return exec.Command(path, args...)
	}
	return exec.Command("runuser", append([]string{"-u", p.runAs, "--", path}, args...)...)
}

// chown gives paths to the server's user, when it is not ourselves.
func (p *PG) chown(paths ...string) error {
	if p.runAs == "" {
		return nil
	}
	u, err := user.Lookup(p.runAs)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, path := range paths {
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// logTail is the end of the server log, for failure messages.
func (p *PG) logTail() string {
	b, _ := os.ReadFile(p.logFile)
	if len(b) > 4<<10 {
		b = b[len(b)-4<<10:]
	}
	return "postgres log (tail):\n" + string(b)
}

// postgresBinDir finds the installed Postgres binaries: pg_config
// --bindir, else the newest /usr/lib/postgresql/<version>/bin.
func postgresBinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if hasPostgresBinaries(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	for i := len(dirs) - 1; i >= 0; i-- {
		if hasPostgresBinaries(dirs[i]) {
			return dirs[i], nil
		}
	}
	return "", errors.New("the Postgres server binaries (initdb, pg_ctl, postgres) are not installed: " +
		"fault-injection tests start a throwaway cluster of their own (Debian: apt-get install postgresql)")
}

func hasPostgresBinaries(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, ok := procStat(child); ok && ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// alive reports whether pid runs: it exists and is not a zombie.
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// procStat reads a process's parent and state from /proc/<pid>/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0][0], err == nil
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
