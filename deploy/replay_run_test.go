package deploy

// How the compose replay runs a service: the container's environment
// rebuilt from the image and compose.yaml, its paths mapped to this run's
// files, its command run with the built binary.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// image is what the Dockerfile's runtime stage gives every container.
type image struct {
	env        map[string]string
	entrypoint []string
	cmd        []string
	volumes    []string
}

func readImage(t *testing.T) image {
	t.Helper()
	stages := parseDockerfile(t)
	img := image{env: imageEnv(t)}
	for _, c := range stages[len(stages)-1].Commands {
		switch c := c.(type) {
		case *instructions.EntrypointCommand:
			img.entrypoint = c.CmdLine
		case *instructions.CmdCommand:
			img.cmd = c.CmdLine
		case *instructions.VolumeCommand:
			img.volumes = append(img.volumes, c.Volumes...)
		}
	}
	return img
}

// replay holds what every replayed service shares: the binary, the
// secrets and volumes directories, the names made for this run.
type replay struct {
	t       *testing.T
	ctx     context.Context
	img     image
	bin     string
	dir     string
	secrets map[string]string // compose secret name -> file
	db      string
	role    string
	prefix  string
	runs    int
}

func newReplay(t *testing.T, ctx context.Context, img image) *replay {
	t.Helper()
	suffix := randomHex(t, 6)
	r := &replay{
		t: t, ctx: ctx, img: img, dir: t.TempDir(),
		role:   "order_mcp_login_replay_" + suffix,
		prefix: "ordermcp-replay-" + suffix,
	}
	if len(img.entrypoint) != 1 || img.entrypoint[0] != "/server" {
		t.Fatalf("image ENTRYPOINT %v: the replay maps [/server] to the built binary", img.entrypoint)
	}
	useRedis(t, r.prefix)
	dbName := createDatabase(t, ctx, "order_mcp_replay_"+suffix, r.role)
	r.db = dbName
	r.bin = buildServer(t)

	password := randomHex(t, 16)
	key := make([]byte, 48)
	_, _ = rand.Read(key)
	values := map[string]string{
		"database_url":      fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable", pgHostPort, dbName),
		"app_database_url":  fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", r.role, password, pgHostPort, dbName),
		"db_login_password": password,
		"redis_url":         "redis://" + redisAddr + "/0",
		"audit_hmac_key":    base64.StdEncoding.EncodeToString(key),
		// Read only by the db and redis services, which do not run.
		"db_password":    "unused-by-the-stand-in",
		"redis_password": "unused-by-the-stand-in",
	}
	p := loadCompose(t)
	r.secrets = map[string]string{}
	sdir := filepath.Join(r.dir, "secrets")
	if err := os.Mkdir(sdir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name := range p.Secrets {
		v, ok := values[name]
		if !ok {
			t.Fatalf("compose secret %s: the replay does not know what it holds; add it to the values above", name)
		}
		f := filepath.Join(sdir, name)
		if err := os.WriteFile(f, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r.secrets[name] = f
	}
	return r
}

// environment is what compose gives service s's container: the image's
// ENV, then the service's environment; container paths (secrets, volumes)
// mapped to this run's files, and the overrides the test comment lists.
// ports maps each container port compose publishes to the free port used
// instead.
func (r *replay) environment(name string, s types.ServiceConfig, ports map[uint32]int) []string {
	t := r.t
	r.runs++
	env := map[string]string{}
	for k, v := range r.img.env {
		env[k] = v
	}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}

	// Container path -> host path: secrets, named volumes (shared by name),
	// and the image's VOLUMEs no compose volume covers (anonymous, one per
	// container).
	mounts := map[string]string{}
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		mounts[target] = r.secrets[sec.Source]
	}
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeVolume {
			t.Fatalf("%s mounts a %s volume: the replay maps named volumes only", name, v.Type)
		}
		mounts[v.Target] = r.mkdir("volumes", v.Source)
	}
	for _, v := range r.img.volumes {
		if _, covered := mounts[v]; !covered {
			mounts[v] = r.mkdir("anonymous", fmt.Sprintf("%s-%d", name, r.runs))
		}
	}
	targets := slices.Collect(func(yield func(string) bool) {
		for target := range mounts {
			if !yield(target) {
				return
			}
		}
	})
	slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) }) // the deepest mount wins
	for k, v := range env {
		for _, target := range targets {
			if within(v, target) {
				env[k] = mounts[target] + strings.TrimPrefix(path.Clean(v), path.Clean(target))
				break
			}
		}
	}

	// Published ports: the container listens on 0.0.0.0:<target>, clients
	// use 127.0.0.1:<published>; both become the free port.
	for _, pc := range s.Ports {
		free := ports[pc.Target]
		for k, v := range env {
			v = strings.ReplaceAll(v, fmt.Sprintf("0.0.0.0:%d", pc.Target), fmt.Sprintf("0.0.0.0:%d", free))
			v = strings.ReplaceAll(v, "127.0.0.1:"+pc.Published, fmt.Sprintf("127.0.0.1:%d", free))
			v = strings.ReplaceAll(v, "localhost:"+pc.Published, fmt.Sprintf("localhost:%d", free))
			env[k] = v
		}
	}

	if _, ok := env["DB_LOGIN_ROLE"]; ok {
		env["DB_LOGIN_ROLE"] = r.role
	}
	if _, ok := env["REDIS_URL_FILE"]; ok {
		env["REDIS_PREFIX"] = r.prefix
	}

	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func (r *replay) mkdir(kind, name string) string {
	d := filepath.Join(r.dir, kind, name)
	if err := os.MkdirAll(d, 0o700); err != nil {
		r.t.Fatal(err)
	}
	return d
}

// command builds the process for a service's command line (or the image's
// CMD), with the image's ENTRYPOINT as the built binary. It runs in an
// empty directory: the container's working directory holds no .env.
func (r *replay) command(ctx context.Context, name string, args []string) *exec.Cmd {
	if len(args) > 0 && args[0] == r.img.entrypoint[0] {
		args = args[1:] // a healthcheck names the binary itself
	}
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Dir = r.mkdir("cwd", name)
	return cmd
}

func (r *replay) args(s types.ServiceConfig) []string {
	if len(s.Entrypoint) > 0 {
		r.t.Fatalf("%s overrides the entrypoint: the replay does not", s.Name)
	}
	if len(s.Command) > 0 {
		return s.Command
	}
	return r.img.cmd
}

// oneShot runs a one-shot service to completion and returns its stdout.
func (r *replay) oneShot(name string, s types.ServiceConfig) string {
	t := r.t
	t.Helper()
	args := r.args(s)
	cmd := r.command(r.ctx, name, args)
	cmd.Env = r.environment(name, s, nil)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("one-shot %s (server %s) failed: %v\nstderr:\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	t.Logf("%s: server %s: done in %v", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return stdout.String()
}

// replayed is a running long-running service.
type replayed struct {
	name    string
	env     []string
	base    string // http://127.0.0.1:<port>
	metrics string // host:port of MCP_METRICS_ADDR, reached over loopback
	stderr  *syncBuffer
	done    chan struct{}
	code    int
	cmd     *exec.Cmd
}

// start starts a long-running service and waits until /healthz answers,
// failing at once if the process exits first (as the server did at the
// first compose start, before demo-key).
func (r *replay) start(name string, s types.ServiceConfig) *replayed {
	t := r.t
	t.Helper()
	ports := map[uint32]int{}
	for _, pc := range s.Ports {
		ports[pc.Target] = freePort(t)
	}
	sv := &replayed{name: name, stderr: &syncBuffer{}, done: make(chan struct{})}
	sv.env = r.environment(name, s, ports)
	for _, kv := range sv.env {
		k, v, _ := strings.Cut(kv, "=")
		if _, port, err := net.SplitHostPort(v); err == nil {
			switch k {
			case "MCP_HTTP_ADDR":
				sv.base = "http://127.0.0.1:" + port
			case "MCP_METRICS_ADDR":
				sv.metrics = "127.0.0.1:" + port
			}
		}
	}
	if sv.base == "" {
		t.Fatalf("%s sets no MCP_HTTP_ADDR", name)
	}
	args := r.args(s)
	// Not bound to the test's context: it is stopped by SIGTERM, and
	// killed by the cleanup if it is still running.
	sv.cmd = r.command(context.Background(), name, args)
	sv.cmd.Env = sv.env
	sv.cmd.Stdout = io.Discard
	sv.cmd.Stderr = sv.stderr
	if err := sv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = sv.cmd.Wait()
		sv.code = sv.cmd.ProcessState.ExitCode()
		close(sv.done)
	}()
	t.Cleanup(func() {
		select {
		case <-sv.done:
		default:
			_ = sv.cmd.Process.Kill()
			<-sv.done
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-sv.done:
			t.Fatalf("%s (server %s) exited with status %d before it was healthy\nstderr:\n%s",
				name, strings.Join(args, " "), sv.code, sv.stderr.String())
		default:
		}
		if sv.healthy(r.ctx) == nil {
			t.Logf("%s: server %s: healthy on %s", name, strings.Join(args, " "), sv.base)
			return sv
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /healthz did not answer within 30s\nstderr:\n%s", name, sv.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// healthy reports whether the process runs and /healthz answers 200.
func (sv *replayed) healthy(ctx context.Context) error {
	select {
	case <-sv.done:
		return fmt.Errorf("%s exited with status %d", sv.name, sv.code)
	default:
	}
	if code := get(ctx, sv.base+"/healthz"); code != http.StatusOK {
		return fmt.Errorf("GET /healthz: %d", code)
	}
	return nil
}

// stop sends SIGTERM and returns the exit status (-1 if it had to be
// killed after 20 seconds).
func (sv *replayed) stop() int {
	_ = sv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-sv.done:
		return sv.code
	case <-time.After(20 * time.Second):
		_ = sv.cmd.Process.Kill()
		return -1
	}
}
