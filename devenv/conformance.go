package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// The official MCP conformance suite (@modelcontextprotocol/conformance,
// pinned in interop/node22/package.json) runs as part of `make interop`;
// `make conformance` runs only this part.
//
// The suite runs each scenario at one protocol version, chosen with
// --spec-version: 2025-11-25 (the initialize handshake) or 2026-07-28
// (sessionless, with per-request _meta). A scenario that applies to both
// must be run under each, since passing on one wire says nothing about the
// other; one that does not apply at a version is skipped there by the suite
// itself, so it is not listed for it.

// conformanceRun is one scenario at one protocol version.
type conformanceRun struct{ version, scenario string }

// conformanceRuns are the suite's server scenarios this server is held to.
// The suite's others exercise features it deliberately does not offer
// (prompts, resources, completions, logging, sampling, elicitation,
// subscriptions, tasks...).
var conformanceRuns = []conformanceRun{
	{"2025-11-25", "server-initialize"},
	{"2025-11-25", "ping"},
	{"2025-11-25", "tools-list"},
	{"2025-11-25", "dns-rebinding-protection"},
	{"2026-07-28", "tools-list"},
	{"2026-07-28", "dns-rebinding-protection"},
	{"2026-07-28", "server-stateless"},
	{"2026-07-28", "http-header-validation"},
}

// conformanceBaseline is the suite's own expected-failures file, inside
// interop/: the checks that fail only because this server does not offer
// what they need, each with its reason.
const conformanceBaseline = "conformance-baseline.yml"

// conformance is the suite that runs scenario r.
//
// The suite sends its requests without credentials (its scenarios are
// written for servers without authentication) and this server
// authenticates every request. So the suite talks to a small proxy that
// adds the scenario's API key and changes nothing else: Host and Origin
// reach the server exactly as the suite sent them, which is what
// dns-rebinding-protection tests. Each run has a proxy and a key of its
// own.
func (e *interop) conformance(r conformanceRun) suite {
	return suite{name: "conformance/" + r.version + "/" + r.scenario, node22: true, timeout: time.Minute,
		run: func(ctx context.Context, key, logPath string) ([]string, error) {
			proxyURL, stop, err := credentialProxy(e.url, key)
			if err != nil {
				return nil, err
			}
			defer stop()
			cli, err := packageBin(filepath.Join(e.dir, "node22"), "@modelcontextprotocol/conformance", "conformance")
			if err != nil {
				return nil, err
			}
			baselinePath := filepath.Join(e.dir, conformanceBaseline)
			baseline, err := readBaseline(baselinePath)
			if err != nil {
				return nil, err
			}
			outDir := filepath.Join(e.results, "conformance", r.version, r.scenario)
			env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.home, "NODE_COMPILE_CACHE=" + e.compileCache()}
			_, runErr := runProgram(ctx, e.results, logPath, env, e.node22, cli, "server",
				"--url", proxyURL, "--scenario", r.scenario, "--spec-version", r.version,
				"--expected-failures", baselinePath, "--output-dir", outDir)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			checks, err := readChecks(outDir)
			if err != nil {
				return nil, fmt.Errorf("%v (suite: %v)", err, runErr)
			}
			v := judge(r.scenario, checks, baseline)
			lines := v.report()
			if runErr != nil || !v.ok() {
				// The suite's exit status (its own baseline verdict) and ours
				// agree unless the suite failed for another reason, which
				// its log tells.
				switch {
				case v.ok():
					return lines, fmt.Errorf("the suite failed: %v; see %s", runErr, logPath)
				case len(v.unexpected) == 0:
					return lines, errors.New("the baseline is stale (" + conformanceBaseline + ")")
				}
				return lines, errors.New("failures not in the baseline (" + conformanceBaseline + ")")
			}
			return lines, nil
		}}
}

// credentialProxy serves a reverse proxy to the server at serverURL, on a
// loopback port of its own, that sets `Authorization: Bearer key` and
// changes nothing else. It returns the proxy's MCP URL, on the host name
// localhost, and a function that stops it.
func credentialProxy(serverURL, key string) (string, func(), error) {
	target, err := url.Parse(serverURL)
	if err != nil {
		return "", nil, err
	}
	target.Path = "" // the proxy keeps the request's own path
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = r.In.Host // the suite's Host, untouched (SetURL would put the server's)
		r.Out.Header.Set("Authorization", "Bearer "+key)
		// No X-Forwarded-* headers: Rewrite adds none unless asked.
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return fmt.Sprintf("http://localhost:%d%s", ln.Addr().(*net.TCPAddr).Port, strings.TrimPrefix(serverURL, target.String())),
		func() { _ = srv.Close() }, nil
}

// packageBin returns the path of the command name of package pkg
// installed in dir, as its package.json declares it.
func packageBin(dir, pkg, name string) (string, error) {
	root := filepath.Join(dir, "node_modules", filepath.FromSlash(pkg))
	raw, err := os.ReadFile(filepath.Join(root, "package.json"))
	if err != nil {
		return "", err
	}
	var manifest struct {
		Bin map[string]string `json:"bin"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return "", fmt.Errorf("%s/package.json: %w", pkg, err)
	}
	bin, ok := manifest.Bin[name]
	if !ok {
		return "", fmt.Errorf("%s declares no command %s", pkg, name)
	}
	return filepath.Join(root, filepath.FromSlash(bin)), nil
}

// baselineEntry is one expected failure: a whole scenario, or one check of
// it, and why it is expected.
type baselineEntry struct {
	scenario, check, reason string
}

var (
	baselineSection = regexp.MustCompile(`^([A-Za-z_]+):\s*$`)
	baselineItem    = regexp.MustCompile(`^\s+-\s+([^\s#]+)\s*(?:#\s*(.*))?$`)
	baselineComment = regexp.MustCompile(`^\s*#\s?(.*)$`)
)

// readBaseline reads the server section of the suite's expected-failures
// file. The suite reads the same file (it is YAML); this reads only the
// plain form the file keeps to, so that each entry's reason can be shown
// next to the failure it excuses: the comment block just above an entry
// (or above a run of entries with no blank line between them), or a
// comment on its own line. An entry without a reason is an error.
func readBaseline(path string) ([]baselineEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseBaseline(f, path)
}

func parseBaseline(r io.Reader, name string) ([]baselineEntry, error) {
	var (
		out     []baselineEntry
		section string
		reason  []string
		fresh   bool // the next comment line starts a new reason
	)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch m := baselineSection.FindStringSubmatch(line); {
		case strings.TrimSpace(line) == "":
			reason, fresh = nil, true
		case m != nil:
			section, reason, fresh = m[1], nil, true
		case baselineComment.MatchString(line):
			if fresh {
				reason, fresh = nil, false
			}
			reason = append(reason, strings.TrimSpace(baselineComment.FindStringSubmatch(line)[1]))
		case baselineItem.MatchString(line):
			item := baselineItem.FindStringSubmatch(line)
			why := strings.Join(reason, " ")
			if item[2] != "" {
				why = strings.TrimSpace(item[2])
			}
			fresh = true
			if section != "server" {
				continue
			}
			if why == "" {
				return nil, fmt.Errorf("%s:%d: %s has no reason: say in a comment above it why it is expected to fail", name, n, item[1])
			}
			scenario, check, _ := strings.Cut(item[1], ":")
			out = append(out, baselineEntry{scenario: scenario, check: check, reason: why})
		default:
			return nil, fmt.Errorf("%s:%d: not a section, an entry or a comment: %q", name, n, line)
		}
	}
	return out, sc.Err()
}

// check is one result in the suite's checks.json.
type check struct {
	ID           string          `json:"id"`
	Description  string          `json:"description"`
	Status       string          `json:"status"` // SUCCESS, FAILURE, WARNING, SKIPPED, INFO
	ErrorMessage string          `json:"errorMessage"`
	Details      json.RawMessage `json:"details"`
}

// readChecks reads the checks.json the suite wrote under outDir (in a
// folder named for the scenario and the time). None means the suite ran
// nothing, e.g. a scenario that does not apply at the version asked for.
func readChecks(outDir string) ([]check, error) {
	files, _ := filepath.Glob(filepath.Join(outDir, "*", "checks.json"))
	if len(files) == 0 {
		return nil, fmt.Errorf("the suite wrote no checks.json under %s: the scenario did not run", outDir)
	}
	raw, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		return nil, err
	}
	var checks []check
	if err := json.Unmarshal(raw, &checks); err != nil {
		return nil, fmt.Errorf("%s: %w", files[len(files)-1], err)
	}
	if len(checks) == 0 {
		return nil, fmt.Errorf("%s holds no checks", files[len(files)-1])
	}
	return checks, nil
}

// verdict is one scenario's checks measured against the baseline, the
// way the suite does it: a FAILURE or WARNING is expected when the
// baseline names the scenario or the check, and a baseline entry whose
// check now passes is stale (and fails the run, so the baseline shrinks as
// the server improves).
type verdict struct {
	counts     map[string]int
	expected   []string // check: reason
	unexpected []check
	stale      []baselineEntry
}

func judge(scenario string, checks []check, baseline []baselineEntry) verdict {
	v := verdict{counts: map[string]int{}}
	reasons := map[string]string{} // check id ("" for the whole scenario) -> reason
	for _, b := range baseline {
		if b.scenario == scenario {
			reasons[b.check] = b.reason
		}
	}
	passed := map[string]bool{}
	seen := map[string]bool{}
	for _, c := range checks {
		v.counts[c.Status]++
		if c.Status == "SUCCESS" {
			passed[c.ID] = true
		}
		if c.Status != "FAILURE" && c.Status != "WARNING" {
			continue
		}
		passed[c.ID] = false
		why, ok := reasons[c.ID]
		if !ok {
			why, ok = reasons[""]
		}
		switch {
		case !ok:
			v.unexpected = append(v.unexpected, c)
		case !seen[c.ID]:
			v.expected = append(v.expected, c.ID+": "+firstSentence(why))
		}
		seen[c.ID] = true
	}
	for _, b := range baseline {
		if b.scenario == scenario && b.check != "" && passed[b.check] {
			v.stale = append(v.stale, b)
		}
	}
	return v
}

// firstSentence shortens a baseline reason for the run's output (the file
// has the whole of it).
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

func (v verdict) ok() bool { return len(v.unexpected) == 0 && len(v.stale) == 0 }

// report describes the verdict: the counts, then each expected failure
// with its reason, each unexpected one with the suite's message and what
// the server answered, and each stale baseline entry.
func (v verdict) report() []string {
	var counts []string
	for _, s := range []string{"SUCCESS", "FAILURE", "WARNING", "SKIPPED", "INFO"} {
		if n := v.counts[s]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, strings.ToLower(s)))
		}
	}
	lines := []string{"checks: " + strings.Join(counts, ", ")}
	for _, e := range v.expected {
		lines = append(lines, "expected failure (baseline) "+e)
	}
	for _, c := range v.unexpected {
		lines = append(lines, fmt.Sprintf("%s %s: %s", c.Status, c.ID, c.ErrorMessage))
		lines = append(lines, "  check: "+c.Description)
		if answer := serverAnswer(c.Details); answer != "" {
			lines = append(lines, "  server answered: "+answer)
		}
	}
	for _, b := range v.stale {
		lines = append(lines, fmt.Sprintf("STALE baseline entry %s:%s now passes: remove it from %s", b.scenario, b.check, conformanceBaseline))
	}
	return lines
}

// serverAnswer picks, from a check's details, what the server answered
// (the HTTP status and the JSON-RPC response the suite recorded), compacted.
func serverAnswer(details json.RawMessage) string {
	var d map[string]json.RawMessage
	if json.Unmarshal(details, &d) != nil {
		return ""
	}
	var parts []string
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !strings.Contains(strings.ToLower(k), "status") && !strings.Contains(strings.ToLower(k), "response") && k != "error" {
			continue
		}
		var compact bytes.Buffer
		if json.Compact(&compact, d[k]) != nil {
			continue
		}
		s := compact.String()
		if len(s) > 600 {
			s = s[:600] + "…"
		}
		parts = append(parts, k+"="+s)
	}
	return strings.Join(parts, " ")
}

// runConformanceOnly is `make conformance`: `make interop` with only the
// conformance suite.
func runConformanceOnly(ctx context.Context, binary string) error {
	return runInterop(ctx, []string{"-only", "conformance", binary})
}
