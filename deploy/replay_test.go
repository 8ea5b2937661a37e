package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
)

// TestComposeReplay runs compose.yaml's default profile without Docker:
// each service's command, in dependency order, with the environment
// compose would give its container, against the Postgres and Redis of this
// machine, using the server binary built from this repository. It is the
// first `docker compose up`, minus the containers: it fails where the
// stack would fail to start, or start and then exit.
//
// What differs from the containers, and why:
//   - db and redis are not run: the local Postgres (127.0.0.1:5432, user
//     postgres, trust) and Redis (127.0.0.1:6379, no password) stand in.
//     The secrets compose would mount are written by this test, with URLs
//     that point at them and at a database created for this run.
//   - The login role has a name of its own for this run (DB_LOGIN_ROLE):
//     roles are shared by every database of the cluster, and two runs
//     must not share one. The Redis key prefix likewise (REDIS_PREFIX).
//   - Ports: the server still listens on 0.0.0.0, as in its container
//     (beyond loopback, serve refuses to start until an API key exists,
//     which is what demo-key is for and what this test must see), but on
//     a free port instead of 8080, which may be taken here. The URL and
//     Host allow-list that name the published port are rewritten to match.
//   - Volumes (named, and the image's own VOLUME) are temporary directories.
func TestComposeReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("replays compose.yaml against the local Postgres and Redis; -short runs the static checks only")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	p := loadCompose(t)
	img := readImage(t)
	run := newReplay(t, ctx, img)

	order := dependencyOrder(t, p)
	once := oneShots(p)
	var (
		server   *replayed
		keyLines []string
	)
	for _, name := range order {
		s := p.Services[name]
		if stand, ok := standIns[name]; ok {
			t.Logf("%s: not run; %s stands in", name, stand)
			continue
		}
		if s.Image != ourImage {
			t.Fatalf("%s runs image %s: the replay only knows ours and the stand-ins", name, s.Image)
		}
		if once[name] {
			out := run.oneShot(name, s)
			if name == "demo-key" {
				keyLines = append(keyLines, lastLine(out))
			}
			continue
		}
		if server != nil {
			t.Fatalf("%s: a second long-running service; the replay starts one", name)
		}
		server = run.start(name, s)
	}
	if server == nil || len(keyLines) == 0 {
		t.Fatal("the default profile has no server or no demo-key")
	}
	key := keyLines[0]
	if !strings.HasPrefix(key, "osmcp_") {
		t.Fatalf("demo-key's last line of stdout is not a key: %q", key)
	}

	t.Run("ToolCallWithTheDemoKey", func(t *testing.T) {
		status, body := server.callTool(ctx, key)
		if status != http.StatusOK {
			t.Fatalf("tools/call: HTTP %d\n%s", status, body)
		}
		checkToolResult(t, body)
	})

	t.Run("ServerConnectsAsTheLoginRole", func(t *testing.T) {
		// Postgres itself says who the server's connections are: the role
		// migrate created, never the owner.
		conn, err := pgx.Connect(ctx, pgAdminURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var users []string
		rows, err := conn.Query(ctx, `SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, run.db)
		if err == nil {
			users, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(users, []string{run.role}) {
			t.Fatalf("the server's connections log in as %v, want only %s", users, run.role)
		}
	})

	t.Run("ServerStaysUp", func(t *testing.T) {
		for range 5 {
			if err := server.healthy(ctx); err != nil {
				t.Fatalf("after the call: %v\nstderr:\n%s", err, server.stderr.String())
			}
			time.Sleep(200 * time.Millisecond) // spacing between probes, not an assertion
		}
	})

	t.Run("ComposeHealthcheckPasses", func(t *testing.T) {
		test := p.Services[server.name].HealthCheck.Test
		if len(test) < 2 || test[0] != "CMD" {
			t.Fatalf("healthcheck %v: want the exec form [CMD ...] (the image has no shell)", test)
		}
		cmd := run.command(ctx, server.name, test[1:])
		cmd.Env = server.env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", test, err, out)
		}
	})

	t.Run("MetricsOnTheirOwnPortOnly", func(t *testing.T) {
		if server.metrics == "" {
			t.Skip("the server service sets no MCP_METRICS_ADDR")
		}
		if code := get(ctx, "http://"+server.metrics+"/metrics"); code != http.StatusOK {
			t.Errorf("GET /metrics on the metrics port: %d, want 200", code)
		}
		if code := get(ctx, server.base+"/metrics"); code == http.StatusOK {
			t.Error("the MCP port serves /metrics too")
		}
	})

	t.Run("RepeatedUpReplacesTheDemoKey", func(t *testing.T) {
		again := lastLine(run.oneShot("demo-key", p.Services["demo-key"]))
		if again == key || !strings.HasPrefix(again, "osmcp_") {
			t.Fatalf("second demo-key printed %q", again)
		}
		if status, body := server.callTool(ctx, again); status != http.StatusOK {
			t.Fatalf("the new key: HTTP %d\n%s", status, body)
		}
		if status, _ := server.callTool(ctx, key); status != http.StatusUnauthorized {
			t.Fatalf("the replaced key still works (HTTP %d): keys would pile up with every `compose up`", status)
		}
	})

	t.Run("SecretsStayOutOfTheLogs", func(t *testing.T) {
		for _, k := range keyLines {
			if strings.Contains(server.stderr.String(), k) {
				t.Fatal("the server's log contains the API key")
			}
		}
	})

	t.Run("SIGTERMExitsCleanly", func(t *testing.T) {
		if code := server.stop(); code != 0 {
			t.Fatalf("exit status %d after SIGTERM\nstderr:\n%s", code, server.stderr.String())
		}
	})
}

// standIns are the services the machine's own servers replace.
var standIns = map[string]string{
	"db":    "the Postgres on 127.0.0.1:5432",
	"redis": "the Redis on 127.0.0.1:6379",
}

// callTool makes one MCP tool call the way the README's curl line does: a
// raw JSON-RPC POST, no session, the key as bearer token.
func (sv *replayed) callTool(ctx context.Context, key string) (int, []byte) {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_recent_orders","arguments":{"limit":3}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sv.base+"/mcp", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b = sseData(b)
	}
	return resp.StatusCode, b
}

// sseData returns the data of the first event of an event stream.
func sseData(b []byte) []byte {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data:"); ok {
			return []byte(strings.TrimSpace(d))
		}
	}
	return b
}

func checkToolResult(t *testing.T, body []byte) {
	t.Helper()
	var rpc struct {
		Result *struct {
			IsError           bool            `json:"isError"`
			StructuredContent json.RawMessage `json:"structuredContent"`
			Content           []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &rpc); err != nil {
		t.Fatalf("not a JSON-RPC response: %v\n%s", err, body)
	}
	switch {
	case rpc.Error != nil:
		t.Fatalf("JSON-RPC error %d: %s", rpc.Error.Code, rpc.Error.Message)
	case rpc.Result == nil:
		t.Fatalf("no result: %s", body)
	case rpc.Result.IsError:
		t.Fatalf("the tool failed: %s", body)
	case !bytes.Contains(body, []byte(`"ord_`)) && !bytes.Contains(body, []byte("orders")):
		t.Fatalf("the result lists no orders of the demo customer: %s", body)
	}
}

// dependencyOrder sorts the services so each comes after what it depends
// on (ties by name, so the order is the same on every run), and checks the
// conditions compose would wait for.
func dependencyOrder(t *testing.T, p *types.Project) []string {
	t.Helper()
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string)
	visit = func(name string) {
		switch state[name] {
		case 1:
			t.Fatalf("dependency cycle through %s", name)
		case 2:
			return
		}
		state[name] = 1
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("a service depends on %s, which is not in the default profile", name)
		}
		for _, dep := range slices.Sorted(func(yield func(string) bool) {
			for d := range s.DependsOn {
				if !yield(d) {
					return
				}
			}
		}) {
			cond := s.DependsOn[dep].Condition
			if _, stand := standIns[dep]; stand && cond != types.ServiceConditionHealthy {
				t.Errorf("%s depends on %s with %q: wait for it to be healthy", name, dep, cond)
			}
			visit(dep)
		}
		state[name] = 2
		order = append(order, name)
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range p.Services {
			if !yield(n) {
				return
			}
		}
	}) {
		visit(name)
	}
	return order
}
