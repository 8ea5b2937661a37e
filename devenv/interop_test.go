package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseBaseline(t *testing.T) {
	tests := []struct {
		name, file string
		want       []baselineEntry
		wantErr    string
	}{
		{"ReasonAboveARunOfEntries", "server:\n  # needs the suite's tool.\n  # Second line.\n  - s:a\n  - s:b\n",
			[]baselineEntry{{"s", "a", "needs the suite's tool. Second line."}, {"s", "b", "needs the suite's tool. Second line."}}, ""},
		{"BlankLineEndsAReason", "server:\n  # why a\n  - s:a\n\n  - s:b\n", nil, "s:b has no reason"},
		{"CommentAfterAnEntryStartsANewReason", "server:\n  # why a\n  - s:a\n  # why b\n  - s:b\n",
			[]baselineEntry{{"s", "a", "why a"}, {"s", "b", "why b"}}, ""},
		{"ReasonOnTheEntryLine", "server:\n  - whole # all of it\n", []baselineEntry{{"whole", "", "all of it"}}, ""},
		{"ClientSectionIsNotOurs", "# header\n\nclient:\n  - c:x\nserver:\n  # r\n  - s:a\n", []baselineEntry{{"s", "a", "r"}}, ""},
		{"UnknownLineIsRefused", "server:\n  s:a\n", nil, "not a section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBaseline(strings.NewReader(tt.file), "baseline.yml")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// The committed baseline parses, every entry has a reason, and every entry
// names a scenario the driver runs (an entry for a scenario that never runs
// could never go stale).
func TestCommittedBaselineNamesScenariosThatRun(t *testing.T) {
	entries, err := readBaseline(filepath.Join("..", "interop", conformanceBaseline))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no entries: remove the file's use or this test")
	}
	for _, e := range entries {
		if !slices.ContainsFunc(conformanceRuns, func(r conformanceRun) bool { return r.scenario == e.scenario }) {
			t.Errorf("%s:%s names a scenario not in conformanceRuns", e.scenario, e.check)
		}
	}
}

func TestJudge(t *testing.T) {
	baseline := []baselineEntry{{"s", "untestable", "no diagnostic tool"}, {"s", "fixed", "was broken"}, {"other", "", "all"}}
	checks := []check{
		{ID: "ok", Status: "SUCCESS"},
		{ID: "untestable", Status: "FAILURE"},
		{ID: "untestable", Status: "FAILURE"}, // reported once
		{ID: "fixed", Status: "SUCCESS"},
		{ID: "bug", Status: "FAILURE", ErrorMessage: "wrong"},
		{ID: "soft", Status: "WARNING"},
		{ID: "n/a", Status: "SKIPPED"},
	}
	v := judge("s", checks, baseline)
	if v.ok() {
		t.Fatal("a failure outside the baseline and a stale entry judged ok")
	}
	if len(v.expected) != 1 || !strings.HasPrefix(v.expected[0], "untestable: ") {
		t.Errorf("expected = %q", v.expected)
	}
	var unexpected []string
	for _, c := range v.unexpected {
		unexpected = append(unexpected, c.ID)
	}
	if !slices.Equal(unexpected, []string{"bug", "soft"}) {
		t.Errorf("unexpected = %q (a WARNING counts as a failure, as in the suite)", unexpected)
	}
	if len(v.stale) != 1 || v.stale[0].check != "fixed" {
		t.Errorf("stale = %+v", v.stale)
	}
	if v := judge("other", []check{{ID: "x", Status: "FAILURE"}}, baseline); !v.ok() {
		t.Errorf("a whole-scenario entry did not excuse its checks: %+v", v)
	}
}

func TestSelectSuites(t *testing.T) {
	all := []suite{{name: "sdk-v1/http"}, {name: "sdk-v1/stdio"}, {name: "sdk-v2/http"},
		{name: "conformance/2025-11-25/ping"}, {name: "conformance/2026-07-28/tools-list"}}
	names := func(s []suite) (out []string) {
		for _, x := range s {
			out = append(out, x.name)
		}
		return out
	}
	tests := []struct {
		only string
		want []string
	}{
		{"conformance", []string{"conformance/2025-11-25/ping", "conformance/2026-07-28/tools-list"}},
		{"sdk-v1, conformance/2026-07-28/", []string{"sdk-v1/http", "sdk-v1/stdio", "conformance/2026-07-28/tools-list"}},
		{"sdk", nil}, // a prefix ends at a slash
	}
	for _, tt := range tests {
		if got := names(selectSuites(all, strings.Split(tt.only, ","))); !slices.Equal(got, tt.want) {
			t.Errorf("-only %s = %q, want %q", tt.only, got, tt.want)
		}
	}
}

func TestParseNodeVersion(t *testing.T) {
	for in, want := range map[string][2]int{"v20.20.2\n": {20, 20}, "v22.23.5": {22, 23}} {
		major, minor, ok := parseNodeVersion(in)
		if !ok || major != want[0] || minor != want[1] {
			t.Errorf("parseNodeVersion(%q) = %d, %d, %v", in, major, minor, ok)
		}
	}
	if _, _, ok := parseNodeVersion("node"); ok {
		t.Error("parsed a non-version")
	}
}

func TestHTTPStatusSummary(t *testing.T) {
	log := filepath.Join(t.TempDir(), "server.log")
	lines := `{"msg":"security posture"}
{"msg":"http request","status":200}
{"msg":"http request","status":403,"refused":"foreign_host"}
{"msg":"http request","status":200}
not json
`
	if err := os.WriteFile(log, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(httpStatusSummary(log), "\n")
	want := "the server answered 3 HTTP requests:\n  200 ×2\n  403 ×1 (foreign_host ×1)"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// A client that hangs is stopped at its timeout together with what it
// started (a stdio server, mcp-remote...), not left running.
func TestRunProgramKillsWhatTheClientStartedAtItsTimeout(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("process groups are Unix")
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "grandchild.pid")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err := runProgram(ctx, dir, filepath.Join(dir, "log"), []string{"PATH=" + os.Getenv("PATH")},
		"sh", "-c", "sleep 60 & echo $! > "+pidFile+"; wait")
	if err == nil || time.Since(start) > 10*time.Second {
		t.Fatalf("runProgram = %v after %s", err, time.Since(start))
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Signal 0 checks that the process exists; the killed sleep is
		// reaped by init once its parent is gone.
		if p, _ := os.FindProcess(pid); p.Signal(syscall.Signal(0)) != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client's child %d is still running", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
