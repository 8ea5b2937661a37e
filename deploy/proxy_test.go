package deploy

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// The scale profile's proxy is Caddy, configured by deploy/compose/Caddyfile.
// What the replicas' client-address logic relies on is checked here:
//
//   - X-Forwarded-For is SET by the proxy to the peer it saw, never kept or
//     appended: `header_up X-Forwarded-For {http.request.remote.host}`.
//     Caddy applies header_up operations after adding its own forwarding
//     headers (reverseproxy.Handler: prepareRequest, then the user's
//     header ops per upstream attempt), so this is the final value.
//   - No trusted_proxies: with it, Caddy would keep the client's
//     X-Forwarded-For and append to it.
//   - The other forwarding headers are removed, Host passes through.
//
// The file is read with a small Caddyfile reader below (tokens, lines,
// blocks), not with Caddy itself: linking Caddy into this module would
// more than double what it compiles.

// caddyDirective is one line of a Caddyfile, with the block it opens.
type caddyDirective struct {
	Line  int
	Args  []string
	Block []caddyDirective
}

func (d caddyDirective) String() string {
	return fmt.Sprintf("line %d: %s", d.Line, strings.Join(d.Args, " "))
}

// find returns the directives in ds named name (their first token).
func find(ds []caddyDirective, name string) []caddyDirective {
	var out []caddyDirective
	for _, d := range ds {
		if len(d.Args) > 0 && d.Args[0] == name {
			out = append(out, d)
		}
	}
	return out
}

type caddyToken struct {
	text   string
	line   int
	quoted bool
}

// caddyTokens splits a Caddyfile into tokens the way Caddy's lexer does:
// whitespace separates, "double quotes" and `backticks` quote, and # starts
// a comment only at the start of a token.
func caddyTokens(src string) ([]caddyToken, error) {
	var (
		toks []caddyToken
		cur  strings.Builder
		line = 1
		in   rune // the open quote, or 0
		have bool
	)
	flush := func() {
		if have {
			toks = append(toks, caddyToken{text: cur.String(), line: line})
			cur.Reset()
			have = false
		}
	}
	rs := []rune(src)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case in != 0:
			if r == '\\' && in == '"' && i+1 < len(rs) && rs[i+1] == '"' {
				cur.WriteRune('"')
				i++
				continue
			}
			if r == in {
				toks = append(toks, caddyToken{text: cur.String(), line: line, quoted: true})
				cur.Reset()
				in, have = 0, false
				continue
			}
			if r == '\n' {
				line++
			}
			cur.WriteRune(r)
		case r == '\n':
			flush()
			line++
		case unicode.IsSpace(r):
			flush()
		case r == '#' && !have:
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			i--
		case (r == '"' || r == '`') && !have:
			in = r
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if in != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	flush()
	return toks, nil
}

// parseCaddyfile returns the Caddyfile's top-level directives: the global
// options block (no arguments) and the site blocks.
func parseCaddyfile(src string) ([]caddyDirective, error) {
	toks, err := caddyTokens(src)
	if err != nil {
		return nil, err
	}
	ds, rest, err := parseBlock(toks, false)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("line %d: unexpected }", rest[0].line)
	}
	return ds, nil
}

func parseBlock(toks []caddyToken, nested bool) ([]caddyDirective, []caddyToken, error) {
	var ds []caddyDirective
	for len(toks) > 0 {
		line := toks[0].line
		if toks[0].text == "}" && !toks[0].quoted {
			if !nested {
				return ds, toks, nil
			}
			return ds, toks[1:], nil
		}
		var d caddyDirective
		d.Line = line
		for len(toks) > 0 && toks[0].line == line {
			t := toks[0]
			toks = toks[1:]
			if t.text == "{" && !t.quoted && (len(toks) == 0 || toks[0].line != line) {
				block, rest, err := parseBlock(toks, true)
				if err != nil {
					return nil, nil, err
				}
				d.Block, toks = block, rest
				break
			}
			d.Args = append(d.Args, t.text)
		}
		ds = append(ds, d)
	}
	if nested {
		return nil, nil, fmt.Errorf("a block is not closed")
	}
	return ds, nil, nil
}

func TestCaddyfileReader(t *testing.T) {
	ds, err := parseCaddyfile("{\n\tadmin off # no API\n}\n:80 {\n\trespond \"a # b\" 200\n\tx `q` {\n\t\ty\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || len(ds[0].Args) != 0 || !slices.Equal(ds[0].Block[0].Args, []string{"admin", "off"}) ||
		!slices.Equal(ds[1].Args, []string{":80"}) || !slices.Equal(ds[1].Block[0].Args, []string{"respond", "a # b", "200"}) ||
		!slices.Equal(ds[1].Block[1].Block[0].Args, []string{"y"}) {
		t.Fatalf("parsed %+v", ds)
	}
	if _, err := parseCaddyfile(":80 {\n\tx\n"); err == nil {
		t.Fatal("an unclosed block was accepted")
	}
}

// forwardingHeaders are request headers that claim who the client is or
// how it connected. The replicas read only X-Forwarded-For, which the proxy
// sets; the rest must not reach them at all, whatever a client sends.
var forwardingHeaders = []string{
	"Forwarded", "X-Real-IP", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Forwarded-Port", "X-Forwarded-Server", "X-Client-IP", "True-Client-IP", "CF-Connecting-IP",
}

func TestCaddyfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "compose", "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := parseCaddyfile(string(b))
	if err != nil {
		t.Fatalf("Caddyfile: %v", err)
	}
	scale := loadCompose(t, "scale")
	proxy := scale.Services["proxy"]

	var global *caddyDirective
	var sites []caddyDirective
	for i, d := range ds {
		if len(d.Args) == 0 {
			global = &ds[i]
		} else {
			sites = append(sites, d)
		}
	}

	t.Run("NoAdminAPINoStateNoAutomaticHTTPS", func(t *testing.T) {
		if global == nil {
			t.Fatal("no global options block")
		}
		for _, want := range [][]string{{"admin", "off"}, {"persist_config", "off"}, {"auto_https", "off"}} {
			if got := find(global.Block, want[0]); len(got) != 1 || !slices.Equal(got[0].Args, want) {
				t.Errorf("global options: want %q, got %v", strings.Join(want, " "), got)
			}
		}
		// A server-wide trusted_proxies would make Caddy believe a client's
		// own forwarding headers.
		for _, s := range find(global.Block, "servers") {
			if len(find(s.Block, "trusted_proxies")) > 0 {
				t.Errorf("%s: trusted_proxies makes Caddy keep client-sent X-Forwarded-For", s)
			}
		}
	})

	if len(sites) != 1 {
		t.Fatalf("want one site block, got %d", len(sites))
	}
	site := sites[0]
	rps := find(site.Block, "reverse_proxy")
	if len(rps) != 1 || len(site.Block) != 1 {
		t.Fatalf("the site block must hold one reverse_proxy and nothing else, got %v", site.Block)
	}
	rp := rps[0]

	t.Run("ListensWhereComposePublishes", func(t *testing.T) {
		_, p, err := net.SplitHostPort(site.Args[0])
		if err != nil || len(proxy.Ports) != 1 || fmt.Sprint(proxy.Ports[0].Target) != p {
			t.Errorf("site %q, proxy ports %+v: want the port compose publishes", site.Args[0], proxy.Ports)
		}
	})

	t.Run("ProxiesToEveryReplica", func(t *testing.T) {
		var want []string
		def := loadCompose(t)
		for name, s := range scale.Services {
			if _, ok := def.Services[name]; !ok && serving(s) {
				_, port, _ := net.SplitHostPort(env(s, "MCP_HTTP_ADDR"))
				want = append(want, name+":"+port)
			}
		}
		slices.Sort(want)
		got := slices.Sorted(slices.Values(rp.Args[1:]))
		if !slices.Equal(got, want) {
			t.Errorf("reverse_proxy upstreams %v, want the replicas %v", got, want)
		}
		if h := find(rp.Block, "health_uri"); len(h) != 1 || h[0].Args[1] != "/healthz" {
			t.Errorf("no active health check on /healthz: %v", h)
		}
	})

	t.Run("SetsXForwardedForToThePeerItSaw", func(t *testing.T) {
		var sets []caddyDirective
		for _, h := range find(rp.Block, "header_up") {
			name := strings.TrimLeft(h.Args[1], "+-")
			if !strings.EqualFold(name, "X-Forwarded-For") {
				continue
			}
			sets = append(sets, h)
			// "+X-Forwarded-For" appends (the client's value survives);
			// a replacement (three arguments) could keep part of it.
			if len(h.Args) != 3 || strings.HasPrefix(h.Args[1], "+") || strings.HasPrefix(h.Args[1], "-") ||
				(h.Args[2] != "{http.request.remote.host}" && h.Args[2] != "{remote_host}") {
				t.Errorf("%s: want `header_up X-Forwarded-For {http.request.remote.host}`", h)
			}
		}
		if len(sets) != 1 {
			t.Errorf("X-Forwarded-For is set by %d header_up lines, want 1", len(sets))
		}
		if tp := find(rp.Block, "trusted_proxies"); len(tp) > 0 {
			t.Errorf("%s: with trusted_proxies Caddy keeps and appends to a client's X-Forwarded-For", tp[0])
		}
	})

	t.Run("RemovesEveryOtherForwardingHeader", func(t *testing.T) {
		removed := map[string]bool{}
		for _, h := range find(rp.Block, "header_up") {
			if len(h.Args) == 2 && strings.HasPrefix(h.Args[1], "-") {
				removed[strings.ToLower(h.Args[1][1:])] = true
			}
		}
		for _, name := range forwardingHeaders {
			if !removed[strings.ToLower(name)] {
				t.Errorf("a client's %s reaches the replicas: add `header_up -%s`", name, name)
			}
		}
	})

	t.Run("PassesHostThrough", func(t *testing.T) {
		// The replicas check Host against MCP_ALLOWED_HOSTS; a rewritten
		// Host would make that check see the proxy, not the client.
		for _, h := range find(rp.Block, "header_up") {
			if strings.EqualFold(strings.TrimLeft(h.Args[1], "+-"), "Host") {
				t.Errorf("%s rewrites Host", h)
			}
		}
	})
}
