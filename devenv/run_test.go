package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests of `make run` (runServer) use this test binary as a stand-in
// for the server: run with fakeServerLog set, it appends its command line
// to that file, warns on stderr as every real command does in development,
// and answers migrate, seed and keys create the way the server does.
// fakeServerFail names a command it fails instead.
const (
	fakeServerLog  = "DEVENV_FAKE_SERVER_LOG"
	fakeServerFail = "DEVENV_FAKE_SERVER_FAIL"
	fakeWarning    = `time=12:00:00.000 level=WARN msg="development: AUDIT_HMAC_KEY not set; using a public development key"`
	fakeKey        = "osmcp_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestMain(m *testing.M) {
	if log := os.Getenv(fakeServerLog); log != "" {
		os.Exit(fakeServer(log, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeServer(logPath string, args []string) int {
	before, _ := os.ReadFile(logPath)
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 2
	}
	fmt.Fprintln(f, strings.Join(args, " "))
	f.Close()
	fmt.Fprintln(os.Stderr, fakeWarning)
	if len(args) > 0 && args[0] == os.Getenv(fakeServerFail) {
		fmt.Fprintln(os.Stderr, "server: "+args[0]+" failed on purpose")
		return 1
	}
	switch args[0] {
	case "migrate":
		fmt.Println("migrations applied: 0")
	case "seed":
		fmt.Println("seeded 6 customers and 48 orders (existing rows left as they were)\ndemo customers:\n  cus_RJ9WY4J6SWDG2W01")
	case "keys":
		if strings.Contains(string(before), "keys create") {
			fmt.Fprintln(os.Stderr, `revoked aaaaaaaaaaaa, the earlier key named "make run demo"`)
		}
		fmt.Fprintln(os.Stderr, "Claude Desktop over stdio (Settings > Developer > Edit Config, claude_desktop_config.json):")
		fmt.Println(fakeKey)
	}
	return 0
}

// fakeServerEnv points the stand-in's log at a file of the test's and
// returns it; fail names a command to fail ("" for none).
func fakeServerEnv(t *testing.T, fail string) (env []string, logPath string) {
	logPath = filepath.Join(t.TempDir(), "calls")
	return append(os.Environ(), fakeServerLog+"="+logPath, fakeServerFail+"="+fail), logPath
}

func calls(t *testing.T, logPath string) []string {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestMakeRunReplacesItsDemoKey: every run mints its demo key under the
// same name with --replace, so the earlier run's key is revoked instead of
// piling up active keys that never expire, and says which key it revoked.
func TestMakeRunReplacesItsDemoKey(t *testing.T) {
	env, logPath := fakeServerEnv(t, "")
	var out bytes.Buffer
	for run := range 2 {
		customer, key, err := prepare(context.Background(), os.Args[0], env, &out)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out.String())
		}
		if customer != "cus_RJ9WY4J6SWDG2W01" || key != fakeKey {
			t.Fatalf("run %d: customer %q, key %q", run, customer, key)
		}
	}
	want := "keys create --name " + demoKeyName + " --scopes orders:read,orders:cancel --customer cus_RJ9WY4J6SWDG2W01 --replace"
	var mints int
	for _, c := range calls(t, logPath) {
		if strings.HasPrefix(c, "keys create") {
			mints++
			if c != want {
				t.Errorf("minted with %q, want %q", c, want)
			}
		}
	}
	if mints != 2 {
		t.Fatalf("%d keys minted in two runs", mints)
	}
	if n := strings.Count(out.String(), "devenv: revoked aaaaaaaaaaaa"); n != 1 {
		t.Fatalf("the second run's revocation reported %d times:\n%s", n, out.String())
	}
}

// TestMakeRunWarnsOnceThroughTheServer: the set-up commands would each
// give the development warnings the server gives when it starts, and print
// client snippets the welcome already holds. Their stderr is shown only
// when one fails, so each warning reaches the developer once; a failing
// command's own words are shown in full.
func TestMakeRunWarnsOnceThroughTheServer(t *testing.T) {
	t.Run("SuccessShowsNoSetUpWarning", func(t *testing.T) {
		env, _ := fakeServerEnv(t, "")
		var out bytes.Buffer
		if _, _, err := prepare(context.Background(), os.Args[0], env, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "level=WARN") || strings.Contains(out.String(), "Claude Desktop") {
			t.Fatalf("set-up output shown:\n%s", out.String())
		}
	})
	t.Run("FailureShowsTheCommandsOutput", func(t *testing.T) {
		env, logPath := fakeServerEnv(t, "seed")
		var out bytes.Buffer
		_, _, err := prepare(context.Background(), os.Args[0], env, &out)
		if err == nil || !strings.Contains(err.Error(), "server seed") {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(out.String(), "seed failed on purpose") || !strings.Contains(out.String(), fakeWarning) {
			t.Fatalf("the failing command's stderr is not shown:\n%s", out.String())
		}
		for _, c := range calls(t, logPath) {
			if strings.HasPrefix(c, "keys") {
				t.Fatal("a key was minted after seed failed")
			}
		}
	})
}

// TestMakeRunChecksThePortBeforeMintingAKey: with the HTTP port taken,
// make run stops before it runs any command (no key minted, none
// revoked), with a message naming the port and how to choose another.
func TestMakeRunChecksThePortBeforeMintingAKey(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	env, logPath := fakeServerEnv(t, "")
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "DEVENV_FAKE_") {
			t.Setenv(k, v)
		}
	}
	t.Setenv("MCP_HTTP_ADDR", addr)
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/never_reached")
	err = runServer(context.Background(), os.Args[0])
	if err == nil {
		t.Fatal("make run went on with its port taken")
	}
	msg := err.Error()
	if !strings.Contains(msg, "port "+port) || !strings.Contains(msg, "already in use") || !strings.Contains(msg, "MCP_HTTP_ADDR=127.0.0.1:") {
		t.Fatalf("message does not name the port and the way out: %q", msg)
	}
	if c := calls(t, logPath); len(c) != 0 {
		t.Fatalf("commands ran before the port check: %q", c)
	}

	t.Run("AFreePortPasses", func(t *testing.T) {
		free, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := free.Addr().String()
		free.Close()
		if err := checkPortFree(addr); err != nil {
			t.Fatalf("free port %s refused: %v", addr, err)
		}
	})
	t.Run("ABadAddressIsNamed", func(t *testing.T) {
		if err := checkPortFree("8080"); err == nil || !strings.Contains(err.Error(), "MCP_HTTP_ADDR=8080 is not host:port") {
			t.Fatalf("err = %v", err)
		}
	})
}
