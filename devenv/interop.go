package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// runInterop is `make interop`: the real server, built by `make build`,
// driven by MCP clients and test suites that nobody here wrote, so that
// "works with the official SDKs, the Inspector, mcp-remote and the
// conformance suite" is something CI checks rather than something the
// README claims. Our own tests use the go-sdk client, which shares the
// server's assumptions; these clients do not.
//
// It installs the clients from the committed lockfiles (npm.go), makes a
// fresh database, migrates and seeds it, and starts `server serve` in
// production mode (the default mode, with a random audit key) on a free
// loopback port, with authentication on and the default rate limits and
// lockout thresholds. Then it runs each suite as a subprocess with a
// timeout (see suites below), each with an API key of its own, so that one
// suite's deliberate failures (bad headers, unknown versions...) cannot
// lock out the next; prints one PASS or FAIL line per suite; checks the
// audit chain the run wrote; and drops the database. Everything a run
// wrote (client logs, the server's log, the conformance suite's results)
// stays in interop/.results for a look afterwards.
//
// It fails when any suite fails. The conformance suite's failures that
// are expected, because they need diagnostic tools or features this server
// deliberately does not offer, are listed in interop/conformance-baseline.yml,
// each with its reason (conformance.go).
func runInterop(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("interop", flag.ContinueOnError)
	only := fs.String("only", "", "run only these suites: comma-separated names or name prefixes (e.g. conformance,sdk-v1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: devenv interop [-only suite,...] <server binary>")
	}
	binary, err := filepath.Abs(fs.Arg(0))
	if err != nil {
		return err
	}
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("%w (run make build first)", err)
	}
	dir, err := findInteropDir()
	if err != nil {
		return err
	}
	e := &interop{binary: binary, dir: dir, out: os.Stdout}
	suites := e.suites()
	if *only != "" {
		suites = selectSuites(suites, strings.Split(*only, ","))
		if len(suites) == 0 {
			return fmt.Errorf("-only %s names no suite", *only)
		}
	}
	return e.run(ctx, suites)
}

// interopBudget bounds the time all suites together may take (a normal
// run takes about a minute), so that a hanging server or client fails CI
// quickly instead of using up its time.
const interopBudget = 5 * time.Minute

// interop is one run: where things are, and the server under test.
type interop struct {
	binary  string    // the server binary
	dir     string    // interop/
	results string    // interop/.results: this run's logs
	home    string    // HOME for the server and the clients, inside results
	node    string    // the Node for interop/ (20 or later)
	node22  string    // the Node for interop/node22/ (22.19 or later)
	out     io.Writer // where PASS and FAIL lines go

	serverEnv []string // the server's whole environment, without MCP_HTTP_ADDR
	customer  string   // the demo customer every key is bound to
	url       string   // the server's MCP endpoint
}

// suite is one client, or one conformance scenario at one protocol
// version, run against the server with a key of its own.
type suite struct {
	name    string // shown in its PASS/FAIL line; the key is named interop-<name>
	node22  bool   // needs interop/node22 rather than interop/
	timeout time.Duration
	run     func(ctx context.Context, key, logPath string) ([]string, error)
}

// suites lists everything `make interop` runs, in order.
func (e *interop) suites() []suite {
	s := []suite{
		e.client("sdk-v1/http", false, "sdk-v1-http.mjs"),
		e.client("sdk-v1/stdio", false, "sdk-v1-stdio.mjs"),
		e.client("sdk-v2/http", false, "sdk-v2-http.mjs"),
		e.client("mcp-remote/legacy", false, "mcp-remote.mjs", "legacy"),
		e.client("mcp-remote/auto", false, "mcp-remote.mjs", "auto"),
		e.client("inspector/cli", true, "inspector.mjs"),
	}
	for _, r := range conformanceRuns {
		s = append(s, e.conformance(r))
	}
	return s
}

// selectSuites keeps the suites named by one of names, as a whole name or
// as a prefix ending at a slash ("conformance" selects every conformance
// scenario, "conformance/2026-07-28" those of one version).
func selectSuites(all []suite, names []string) []suite {
	var out []suite
	for _, s := range all {
		for _, n := range names {
			n = strings.TrimSuffix(strings.TrimSpace(n), "/")
			if n != "" && (s.name == n || strings.HasPrefix(s.name, n+"/")) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// findInteropDir finds interop/ beside devenv/, from the working directory
// up (make runs devenv from devenv/).
func findInteropDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "interop", "package.json")); err == nil {
			return filepath.Join(d, "interop"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no interop/package.json in %s or above", wd)
		}
	}
}

func (e *interop) run(ctx context.Context, suites []suite) error {
	started := time.Now()
	e.results = filepath.Join(e.dir, ".results")
	e.home = filepath.Join(e.results, "home")
	if err := os.RemoveAll(e.results); err != nil {
		return err
	}
	if err := os.MkdirAll(e.home, 0o700); err != nil {
		return err
	}
	if err := e.install(ctx, suites); err != nil {
		return err
	}

	// Clean-up runs even when the run is interrupted, so it gets a context
	// of its own.
	cleanup := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	}
	db, err := findDatabase(ctx, os.Getenv("DATABASE_URL"), e.out)
	if err != nil {
		return err
	}
	defer db.stop()
	name := "order_mcp_interop_" + randomHex(4)
	dsn, err := ensureDatabase(ctx, db.adminURL, name)
	if err != nil {
		return err
	}
	defer func() {
		c, cancel := cleanup()
		defer cancel()
		if err := dropDatabase(c, db.adminURL, name); err != nil {
			fmt.Fprintf(e.out, "interop: %v\n", err)
		}
	}()
	if err := e.prepareServer(ctx, dsn); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	serverLog := filepath.Join(e.results, "server.log")
	logFile, err := os.Create(serverLog)
	if err != nil {
		return err
	}
	defer logFile.Close()
	srv, err := startServe(ctx, e.binary, append(slices.Clip(e.serverEnv), fmt.Sprintf("MCP_HTTP_ADDR=127.0.0.1:%d", port)), logFile)
	if err != nil {
		return fmt.Errorf("%w; see %s", err, serverLog)
	}
	defer srv.stop()
	e.url = srv.url
	fmt.Fprintf(e.out, "interop: server serve (production mode, database %s) on %s\n", name, srv.url)

	passed, failed := 0, 0
	suitesCtx, cancel := context.WithTimeout(ctx, interopBudget)
	defer cancel()
	for _, s := range suites {
		if e.runSuite(suitesCtx, s) {
			passed++
		} else {
			failed++
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if suitesCtx.Err() != nil {
			return fmt.Errorf("the suites took longer than %s in all; the ones after %s did not run", interopBudget, s.name)
		}
		select {
		case <-srv.exited:
			return fmt.Errorf("server serve exited during %s (a crash is a finding: see %s)", s.name, serverLog)
		default:
		}
	}
	if e.auditVerify(ctx) {
		passed++
	} else {
		failed++
	}
	srv.stop()
	for _, line := range httpStatusSummary(serverLog) {
		fmt.Fprintln(e.out, "interop: "+line)
	}
	fmt.Fprintf(e.out, "interop: logs and conformance results in %s (%s in all)\n", e.results, time.Since(started).Round(time.Second))
	fmt.Fprintf(e.out, "interop: %d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return fmt.Errorf("%d interop suite(s) failed", failed)
	}
	return nil
}

// install runs npm ci where the suites need it and finds the two Nodes.
func (e *interop) install(ctx context.Context, suites []suite) error {
	if _, err := exec.LookPath("npm"); err != nil {
		return errors.New("npm is not installed; `make interop` needs Node 20 or later and npm")
	}
	needs := map[string]bool{} // package folder -> some suite runs from it
	for _, s := range suites {
		if s.node22 {
			needs[filepath.Join(e.dir, "node22")] = true
		} else {
			needs[e.dir] = true
		}
	}
	for _, dir := range []string{e.dir, filepath.Join(e.dir, "node22")} {
		if !needs[dir] {
			continue
		}
		rel, _ := filepath.Rel(filepath.Dir(e.dir), dir)
		start := time.Now()
		installed, err := npmCI(ctx, dir, filepath.Join(e.results, "npm-ci-"+filepath.Base(dir)+".log"))
		if err != nil {
			return err
		}
		if installed {
			fmt.Fprintf(e.out, "interop: npm ci in %s/ (%s)\n", rel, time.Since(start).Round(100*time.Millisecond))
		} else {
			fmt.Fprintf(e.out, "interop: npm ci in %s/ skipped: node_modules matches package-lock.json\n", rel)
		}
	}
	var err error
	if e.node, e.node22, err = findNodes(ctx, filepath.Join(e.dir, "node22")); err != nil {
		return err
	}
	for _, n := range []struct{ node, dir string }{{e.node, e.dir}, {e.node22, filepath.Join(e.dir, "node22")}} {
		if !needs[n.dir] {
			continue
		}
		v, _ := exec.CommandContext(ctx, n.node, "--version").Output()
		rel, _ := filepath.Rel(filepath.Dir(e.dir), n.dir)
		fmt.Fprintf(e.out, "interop: %s/ on Node %s (%s): %s\n", rel, strings.TrimSpace(string(v)), n.node, strings.Join(installedVersions(n.dir), ", "))
	}
	return nil
}

// installedVersions lists the versions of dir's direct dependencies as
// installed.
func installedVersions(dir string) []string {
	var pkg struct {
		Dependencies         map[string]string `json:"dependencies"`
		OptionalDependencies map[string]string `json:"optionalDependencies"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil || json.Unmarshal(raw, &pkg) != nil {
		return nil
	}
	var out []string
	for _, deps := range []map[string]string{pkg.Dependencies, pkg.OptionalDependencies} {
		for name := range deps {
			var installed struct{ Version string }
			raw, err := os.ReadFile(filepath.Join(dir, "node_modules", name, "package.json"))
			if err != nil || json.Unmarshal(raw, &installed) != nil {
				installed.Version = "not installed"
			}
			out = append(out, name+" "+installed.Version)
		}
	}
	sort.Strings(out)
	return out
}

// prepareServer sets the server's environment and migrates and seeds its
// database. The environment is the server's own variables and little else
// (PATH, and a HOME inside the results), so that a variable set in the
// developer's shell cannot change what is tested.
func (e *interop) prepareServer(ctx context.Context, dsn string) error {
	auditKey, confirmationSecret := make([]byte, 48), make([]byte, 48)
	if _, err := rand.Read(auditKey); err != nil {
		return err
	}
	if _, err := rand.Read(confirmationSecret); err != nil {
		return err
	}
	digestSeed := make([]byte, 32)
	if _, err := rand.Read(digestSeed); err != nil {
		return err
	}
	e.serverEnv = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + e.home,
		"MCP_ENV=production",
		"DATABASE_URL=" + dsn,
		"AUDIT_HMAC_KEY=" + base64.StdEncoding.EncodeToString(auditKey),
		"CONFIRMATION_SECRET=" + base64.StdEncoding.EncodeToString(confirmationSecret),
		"TOOL_DIGEST_SIGNING_KEY=" + base64.StdEncoding.EncodeToString(digestSeed),
	}
	if _, err := e.server(ctx, "migrate"); err != nil {
		return err
	}
	seeded, err := e.server(ctx, "seed")
	if err != nil {
		return err
	}
	if e.customer = firstCustomer(seeded); e.customer == "" {
		return errors.New("server seed printed no demo customer")
	}
	return nil
}

// server runs an admin command of the server and returns its stdout.
func (e *interop) server(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.binary, args...)
	cmd.Env = e.serverEnv
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("server %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// mintKey makes the API key a suite runs as: orders:read, bound to the
// demo customer, named after the suite.
func (e *interop) mintKey(ctx context.Context, suiteName string) (string, error) {
	out, err := e.server(ctx, "keys", "create", "--name", "interop-"+strings.ReplaceAll(suiteName, "/", "-"),
		"--scopes", "orders:read", "--customer", e.customer)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

// runSuite runs one suite and prints its PASS or FAIL line, followed by
// what it reported, indented.
func (e *interop) runSuite(ctx context.Context, s suite) bool {
	start := time.Now()
	logPath := filepath.Join(e.results, strings.ReplaceAll(s.name, "/", "_")+".log")
	lines, err := func() ([]string, error) {
		key, err := e.mintKey(ctx, s.name)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		lines, err := s.run(ctx, key, logPath)
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s", s.timeout)
		}
		return lines, err
	}()
	verdict := "PASS"
	if err != nil {
		verdict = "FAIL"
	}
	fmt.Fprintf(e.out, "%s  %-50s %6s\n", verdict, s.name, time.Since(start).Round(100*time.Millisecond))
	for _, l := range lines {
		fmt.Fprintln(e.out, "      "+l)
	}
	if err != nil {
		for _, l := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
			fmt.Fprintln(e.out, "      "+l)
		}
		fmt.Fprintf(e.out, "      (full log: %s)\n", logPath)
	}
	return err == nil
}

// client is a suite that runs one of the programs in interop/clients: on
// the Node 22 when node22 is set, else on the machine's Node.
func (e *interop) client(name string, node22 bool, script string, args ...string) suite {
	timeout := time.Minute
	if node22 {
		timeout = 2 * time.Minute // the Inspector starts six times
	}
	return suite{name: name, node22: node22, timeout: timeout,
		run: func(ctx context.Context, key, logPath string) ([]string, error) {
			node := e.node
			if node22 {
				node = e.node22
			}
			serverEnv, err := json.Marshal(envMap(e.serverEnv, "DATABASE_URL", "AUDIT_HMAC_KEY"))
			if err != nil {
				return nil, err
			}
			// Like a desktop host, the client starts with little in its
			// environment: what it inherits, its server inherits.
			env := []string{
				"PATH=" + os.Getenv("PATH"),
				"HOME=" + e.home,
				"NODE_COMPILE_CACHE=" + e.compileCache(),
				"INTEROP_URL=" + e.url,
				"INTEROP_API_KEY=" + key,
				"INTEROP_CUSTOMER=" + e.customer,
				"INTEROP_SERVER=" + e.binary,
				"INTEROP_SERVER_ENV=" + string(serverEnv),
			}
			argv := append([]string{node, filepath.Join(e.dir, "clients", script)}, args...)
			return runProgram(ctx, e.dir, logPath, env, argv...)
		}}
}

// compileCache is where Node 22 keeps the code it compiled, between runs
// (NODE_COMPILE_CACHE; Node 20 ignores it): the Inspector and the
// conformance suite load over a thousand modules at every start. It lives
// in node_modules, so npm ci clears it with the code it caches.
func (e *interop) compileCache() string {
	return filepath.Join(e.dir, "node22", "node_modules", ".compile-cache")
}

// runProgram runs argv in dir with env, its stdout and stderr going to
// logPath, and returns its stdout lines (the clients' summary, or the
// reason they failed). When it fails without saying why on stdout, the
// error carries the end of its stderr.
func runProgram(ctx context.Context, dir, logPath string, env []string, argv ...string) ([]string, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "$ %s\n", strings.Join(argv, " "))
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout = io.MultiWriter(&stdout, logFile)
	cmd.Stderr = io.MultiWriter(&stderr, logFile)
	cmd.WaitDelay = 5 * time.Second
	ownProcessGroup(cmd)
	err = cmd.Run()
	lines := nonEmptyLines(stdout.String())
	if err != nil && len(lines) == 0 {
		return nil, fmt.Errorf("%v:\n%s", err, tail(stderr.String(), 12))
	}
	return lines, err
}

// auditVerify checks the audit chain the run wrote, with the server's own
// verifier: every tool call of every suite, allowed or refused, is a link.
func (e *interop) auditVerify(ctx context.Context) bool {
	start := time.Now()
	out, err := e.server(ctx, "audit", "verify")
	verdict := "PASS"
	if err != nil {
		verdict = "FAIL"
	}
	fmt.Fprintf(e.out, "%s  %-50s %6s\n", verdict, "server audit verify", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		fmt.Fprintln(e.out, "      "+err.Error())
	} else if lines := nonEmptyLines(out); len(lines) > 0 {
		fmt.Fprintln(e.out, "      "+lines[len(lines)-1])
	}
	return err == nil
}

// servingServer is a running `server serve`.
type servingServer struct {
	url    string        // its MCP endpoint
	exited chan struct{} // closed when the process has exited
	stop   func()        // interrupts it and waits; safe to call more than once
}

// startServe runs `server serve` with env, its log going to stderr, and
// returns once it listens.
func startServe(ctx context.Context, binary string, env []string, stderr io.Writer) (*servingServer, error) {
	cmd := exec.CommandContext(ctx, binary, "serve")
	cmd.Env, cmd.Stderr = env, stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &servingServer{exited: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				select {
				case found <- u:
				default: // said twice: the first one counts
				}
			}
		}
		_ = cmd.Wait()
		close(s.exited)
	}()
	s.stop = func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-s.exited
		}
	}
	select {
	case s.url = <-found:
		return s, nil
	case <-s.exited:
		return nil, errors.New("server serve exited before listening")
	case <-time.After(20 * time.Second):
		s.stop()
		return nil, errors.New("server serve did not start")
	}
}

// httpStatusSummary counts the server's answers from its request log: the
// statuses, and for refusals the reason the server logged.
func httpStatusSummary(logPath string) []string {
	f, err := os.Open(logPath)
	if err != nil {
		return nil
	}
	defer f.Close()
	counts := map[int]map[string]int{}
	total := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg     string `json:"msg"`
			Status  int    `json:"status"`
			Refused string `json:"refused"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Msg != "http request" {
			continue
		}
		if counts[rec.Status] == nil {
			counts[rec.Status] = map[string]int{}
		}
		counts[rec.Status][rec.Refused]++
		total++
	}
	statuses := make([]int, 0, len(counts))
	for s := range counts {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	out := []string{fmt.Sprintf("the server answered %d HTTP requests:", total)}
	for _, s := range statuses {
		n, reasons := 0, []string{}
		for r, c := range counts[s] {
			n += c
			if r != "" {
				reasons = append(reasons, fmt.Sprintf("%s ×%d", r, c))
			}
		}
		sort.Strings(reasons)
		line := fmt.Sprintf("  %d ×%d", s, n)
		if len(reasons) > 0 {
			line += " (" + strings.Join(reasons, ", ") + ")"
		}
		out = append(out, line)
	}
	return out
}

// envMap picks names out of a KEY=VALUE environment.
func envMap(env []string, names ...string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if slices.Contains(names, k) {
			m[k] = v
		}
	}
	return m
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, "\r"))
		}
	}
	return out
}

// tail returns the last n non-empty lines of s.
func tail(s string, n int) string {
	lines := nonEmptyLines(s)
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
