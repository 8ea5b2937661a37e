package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/example/order-mcp/bench/loadgen"
)

// options are the command line.
type options struct {
	server          string
	toolDef         string
	goCmd           string
	duration        time.Duration
	warmup          time.Duration
	runs            int
	clients         int
	scalingClients  []int
	scalingDuration time.Duration
	memoryCallers   int
	memoryWorkers   int
	memoryTimeout   time.Duration
	smoke           bool
	skipMemory      bool
	skipScaling     bool
	skipReplicas    bool
	replicas        int
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "", "the real server's binary, built by make build (required)")
	fs.StringVar(&o.toolDef, "tool-def", "", "golden definition of get_order_status (default: ../internal/tools/testdata/get_order_status.json from the bench module)")
	fs.StringVar(&o.goCmd, "go", "go", "the go command, to build the bare server")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured window of each A/B run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured warm-up before each A/B run")
	fs.IntVar(&o.runs, "runs", 3, "A/B runs per side")
	fs.IntVar(&o.clients, "clients", 16, "concurrent clients in the A/B runs")
	scaling := fs.String("scaling-clients", "1,4,16,64", "client counts of the scaling section")
	fs.DurationVar(&o.scalingDuration, "scaling-duration", 4*time.Second, "measured window of each scaling run (after a 1 s warm-up)")
	fs.IntVar(&o.memoryCallers, "memory-callers", 100_000, "distinct callers and addresses of the memory section")
	fs.IntVar(&o.memoryWorkers, "memory-workers", 32, "requests in flight at once in the memory section")
	fs.DurationVar(&o.memoryTimeout, "memory-timeout", 2*time.Minute, "stop the memory section's requests after this long")
	fs.BoolVar(&o.smoke, "smoke", false, "one 2 s run per side at 4 clients and the revocation check; no scaling or memory (CI)")
	fs.BoolVar(&o.skipMemory, "skip-memory", false, "skip the memory section")
	fs.BoolVar(&o.skipScaling, "skip-scaling", false, "skip the scaling section")
	fs.BoolVar(&o.skipReplicas, "skip-replicas", false, "skip the replicas section (which needs Redis at "+redisURL+")")
	fs.IntVar(&o.replicas, "replicas", 2, "serve processes of the replicas section, compared with one")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	if fs.NArg() != 0 || o.server == "" {
		return o, errors.New("usage: runner -server ../bin/server [flags]; see -h")
	}
	for _, f := range strings.Split(*scaling, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return o, fmt.Errorf("-scaling-clients: %q is not a positive number", f)
		}
		o.scalingClients = append(o.scalingClients, n)
	}
	if o.smoke {
		o.runs, o.clients, o.duration, o.warmup = 1, 4, 2*time.Second, time.Second
		o.skipMemory, o.skipScaling, o.skipReplicas = true, true, true
	}
	if o.runs <= 0 || o.clients <= 0 || o.duration <= 0 || o.warmup < 0 || o.memoryCallers <= 0 || o.memoryWorkers <= 0 || o.memoryTimeout <= 0 {
		return o, errors.New("-runs, -clients, -duration and the -memory-* flags must be positive")
	}
	if !o.skipReplicas && o.replicas < 2 {
		return o, errors.New("-replicas must be at least 2 (the section compares them with one), or use -skip-replicas")
	}
	return o, nil
}

// bench is one benchmark session: the database, the two servers and what
// has been measured.
type bench struct {
	opts    options
	out     io.Writer
	selfPID int
	db      *database
	server  string // absolute path of the real server's binary
	bareBin string
	toolDef string
	// baseEnv is all of the runner's environment that reaches a server:
	// PATH, HOME and the Go runtime's knobs, if set (on both sides alike).
	// adminEnv adds what every command of the real server needs.
	baseEnv, adminEnv []string
	key               string // the staff key the load runs with
	ids               []string
	real, bare        *side
	invalid           []string
	info              environment
	batching          string // how the audit writer grouped its records
}

// environment describes the machine and the software measured.
type environment struct {
	date, cpu, kernel, goVersion, postgres, serverVersion string
	cores                                                 int
}

// run is the whole program: main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Registered first, so it runs last, after the clean-up below.
	defer func() {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
	}()
	opts, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if !opts.skipReplicas {
		// Checked first, so that a missing Redis fails in a second rather
		// than after the A/B section.
		if err := pingRedis(ctx, redisAddr); err != nil {
			return fmt.Errorf("the replicas section needs Redis at %s (its replicas share their counters there, as a multi-replica deployment does): %w; start redis-server, or pass -skip-replicas", redisURL, err)
		}
	}
	b := &bench{opts: opts, out: stdout, selfPID: os.Getpid()}
	b.baseEnv = passEnv(getenv, "PATH", "HOME", "TMPDIR", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "ORDER_MCP_CPUPROFILE")
	b.info.date = time.Now().UTC().Format("2006-01-02 15:04 UTC")
	b.info.cores, b.info.goVersion = runtime.NumCPU(), runtime.Version()
	b.info.cpu, b.info.kernel = cpuModel(), kernelRelease()

	tmp, err := os.MkdirTemp("", "order-mcp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := b.locate(ctx, tmp, getenv); err != nil {
		return err
	}

	b.db, err = createDatabase(ctx, adminURL(getenv))
	if err != nil {
		return err
	}
	b.printf("database: %s (fresh; dropped at the end)\n", b.db.name)
	defer func() {
		if derr := b.db.drop(); derr != nil {
			b.printf("could not drop database %s: %v\n", b.db.name, derr)
			err = errors.Join(err, derr)
		} else {
			b.printf("dropped database %s\n", b.db.name)
		}
	}()
	b.info.postgres = b.db.version(ctx)

	if err := b.prepare(ctx); err != nil {
		return err
	}
	b.real, err = b.startReal(ctx, "server")
	if err != nil {
		return err
	}
	defer b.real.proc.stop()
	b.bare, err = b.startBare(ctx)
	if err != nil {
		return err
	}
	defer b.bare.proc.stop()
	if err := b.checkBothAnswer(ctx); err != nil {
		return err
	}
	b.printHeader()

	ab, err := b.abSection(ctx)
	if err != nil {
		return err
	}
	var scaling []scalingRow
	if !opts.skipScaling {
		if scaling, err = b.scalingSection(ctx); err != nil {
			return err
		}
	}
	var replicas *replicasResult
	if !opts.skipReplicas {
		if replicas, err = b.replicasSection(ctx); err != nil {
			return err
		}
	}
	revocations, err := b.revocationSection(ctx)
	if err != nil {
		return err
	}
	fallback := b.auditFallback(ctx)
	b.batching = b.auditBatching(ctx)
	var mem *memoryResult
	if !opts.skipMemory {
		// The load is over: stop both servers so the memory section's
		// fresh server has the machine to itself.
		b.real.proc.stop()
		b.bare.proc.stop()
		if mem, err = b.memorySection(ctx); err != nil {
			return err
		}
	}
	b.printSummary(args, ab, scaling, replicas, revocations, fallback, mem)

	if len(b.invalid) > 0 {
		return fmt.Errorf("%w: %d run(s) had failed calls, so their numbers mean nothing:\n%s",
			errInvalid, len(b.invalid), strings.Join(b.invalid, "\n"))
	}
	return nil
}

func (b *bench) printf(format string, args ...any) { fmt.Fprintf(b.out, format, args...) }

// passEnv copies the named variables that are set.
func passEnv(getenv func(string) string, names ...string) []string {
	var env []string
	for _, n := range names {
		if v := getenv(n); v != "" {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// locate finds the real server's binary and the golden tool definition,
// and builds the bare server from this module into dir.
func (b *bench) locate(ctx context.Context, dir string, getenv func(string) string) error {
	var err error
	if b.server, err = filepath.Abs(b.opts.server); err != nil {
		return err
	}
	if _, err := os.Stat(b.server); err != nil {
		return fmt.Errorf("the real server's binary: %w (run make build)", err)
	}
	v, err := command(ctx, "", b.server, []string{"version"}, b.baseEnv)
	if err != nil {
		return fmt.Errorf("the real server's binary does not run: %w", err)
	}
	b.info.serverVersion = strings.TrimSpace(v)

	// The bare server is built from the bench module the runner runs in
	// (make bench runs it from bench/).
	goEnv := append(slices.Clone(b.baseEnv), passEnv(getenv, "GOPATH", "GOCACHE", "GOMODCACHE", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN", "XDG_CACHE_HOME")...)
	gomod, err := command(ctx, "", b.opts.goCmd, []string{"env", "GOMOD"}, goEnv)
	if err != nil {
		return err
	}
	gomod = strings.TrimSpace(gomod)
	if filepath.Base(filepath.Dir(gomod)) != "bench" {
		return fmt.Errorf("run the runner from the bench module (cd bench); the current module is %q", gomod)
	}
	module := filepath.Dir(gomod)
	b.toolDef = b.opts.toolDef
	if b.toolDef == "" {
		b.toolDef = filepath.Join(module, "..", "internal", "tools", "testdata", "get_order_status.json")
	}
	if _, err := os.Stat(b.toolDef); err != nil {
		return fmt.Errorf("the golden tool definition: %w", err)
	}
	b.bareBin = filepath.Join(dir, "bare")
	b.printf("building the bare server...\n")
	if _, err := command(ctx, module, b.opts.goCmd, []string{"build", "-trimpath", "-o", b.bareBin, "./cmd/bare"}, goEnv); err != nil {
		return err
	}
	return nil
}

// prepare migrates and seeds the fresh database and mints the staff key
// the load runs with, using the real server's own commands in production
// mode, as an operator would.
func (b *bench) prepare(ctx context.Context) error {
	var hmac, confirm [48]byte
	var digestSeed [32]byte
	_, _ = rand.Read(hmac[:])
	_, _ = rand.Read(confirm[:])
	_, _ = rand.Read(digestSeed[:])
	b.adminEnv = append(slices.Clone(b.baseEnv),
		"MCP_ENV=production",
		"DATABASE_URL="+b.db.url,
		"AUDIT_HMAC_KEY="+base64.StdEncoding.EncodeToString(hmac[:]),
		"CONFIRMATION_SECRET="+base64.StdEncoding.EncodeToString(confirm[:]),
		"TOOL_DIGEST_SIGNING_KEY="+base64.StdEncoding.EncodeToString(digestSeed[:]),
	)
	for _, c := range [][]string{{"migrate"}, {"seed"}} {
		if _, err := command(ctx, "", b.server, c, b.adminEnv); err != nil {
			return err
		}
	}
	var err error
	if b.key, err = b.mintKey(ctx, "bench"); err != nil {
		return err
	}
	b.ids, err = b.db.orderIDs(ctx)
	return err
}

// mintKey creates a staff key (orders:read with orders:read:any) and
// returns it: the last line of the command's stdout.
func (b *bench) mintKey(ctx context.Context, name string) (string, error) {
	out, err := command(ctx, "", b.server, []string{"keys", "create", "--name", name, "--scopes", "orders:read,orders:read:any"}, b.adminEnv)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(key, "osmcp_") {
		return "", errors.New("keys create printed no key on its last line")
	}
	return key, nil
}

// startReal starts `server serve` in production mode with every control
// on. Only the limits are raised, far out of the way, because the load
// comes from one key and one address: a refusal would make the run
// invalid, and the limiters still do all their bookkeeping on every call.
// No REDIS_URL: counters are in memory, the default for one replica.
// extraEnv is added last (the replicas section's REDIS_URL).
func (b *bench) startReal(ctx context.Context, name string, extraEnv ...string) (*side, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	metricsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	env := append(slices.Clone(b.adminEnv),
		"MCP_HTTP_ADDR="+addr,
		"MCP_METRICS_ADDR="+metricsAddr,
		"RATE_LIMIT_PER_PRINCIPAL=100000000-M",
		"RATE_LIMIT_PER_IP=100000000-M",
		"RATE_LIMIT_NOT_FOUND=100000000-M",
		"CONCURRENCY_PER_PRINCIPAL=1000",
	)
	env = append(env, extraEnv...)
	p, err := startProcess(name, b.server, []string{"serve"}, env)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, "http://"+addr+"/readyz", 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	s := &side{name: "this", proc: p, target: loadgen.Target{URL: "http://" + addr + "/mcp", Key: b.key}}
	// MCP_METRICS_ADDR is new: if /metrics does not answer, allocations
	// are reported as n/a rather than guessed.
	client := metricsClient()
	url := "http://" + metricsAddr + "/metrics"
	if m, err := scrapeMetrics(ctx, client, url); err == nil {
		if _, ok := m["go_memstats_mallocs_total"]; ok {
			s.metricsURL = url
		}
	}
	s.allocs = func(ctx context.Context) (uint64, bool) {
		if s.metricsURL == "" {
			return 0, false
		}
		m, err := scrapeMetrics(ctx, client, s.metricsURL)
		v, ok := m["go_memstats_mallocs_total"]
		return uint64(v), err == nil && ok
	}
	return s, nil
}

// startBare starts the bare server on the same database, as the
// superuser the runner was given.
func (b *bench) startBare(ctx context.Context) (*side, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	env := append(slices.Clone(b.baseEnv), "DATABASE_URL="+b.db.url)
	p, err := startProcess("bare", b.bareBin, []string{"-addr", addr, "-tool", b.toolDef}, env)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, "http://"+addr+"/readyz", 30*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	client := metricsClient()
	return &side{name: "bare", proc: p, target: loadgen.Target{URL: "http://" + addr + "/mcp"},
		allocs: func(ctx context.Context) (uint64, bool) {
			v, err := bareAllocs(ctx, client, "http://"+addr+"/debug/allocs")
			return v, err == nil
		}}, nil
}

// checkBothAnswer makes one call to each server for every order id and
// compares the answers' sizes: a server that cannot answer is a start-up
// failure, and answers of very different sizes would make the comparison
// unfair.
func (b *bench) checkBothAnswer(ctx context.Context) error {
	var sizes [2]int
	for i, s := range []*side{b.real, b.bare} {
		c := loadgen.NewCaller(s.target, 1)
		var buf bytes.Buffer
		for _, id := range b.ids {
			out := c.Call(ctx, loadgen.CallBody(id), &buf)
			if out.Kind != loadgen.OK {
				c.Close()
				return fmt.Errorf("%s cannot answer get_order_status(%s): %s", s.name, id, out.Detail)
			}
			sizes[i] += out.Bytes
		}
		c.Close()
	}
	b.printf("both servers answer all %d orders; mean answer size: this %d bytes, bare %d bytes\n",
		len(b.ids), sizes[0]/len(b.ids), sizes[1]/len(b.ids))
	return nil
}

// cpuModel is the first processor's model name.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
