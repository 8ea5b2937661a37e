package archtest

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/example/order-mcp/"

// thirdParty names, for each module the server uses, the words a doc.go
// may use for it.
var thirdParty = map[string][]string{
	"github.com/modelcontextprotocol/go-sdk": {"go-sdk"},
	"github.com/jackc/pgx/v5":                {"pgx"},
	"github.com/golang-jwt/jwt/v5":           {"golang-jwt"},
	"github.com/MicahParks/keyfunc/v3":       {"keyfunc"},
	"github.com/ulule/limiter/v3":            {"ulule/limiter"},
	"github.com/redis/go-redis/v9":           {"go-redis"},
	"github.com/google/jsonschema-go":        {"jsonschema-go"},
	"github.com/samber/slog-multi":           {"slog-multi"},
	"github.com/joho/godotenv":               {"godotenv"},
	"github.com/pressly/goose/v3":            {"goose"},
	"github.com/prometheus/client_golang":    {"prometheus"},
	"golang.org/x/text":                      {"x/text"},
}

var internalRE = regexp.MustCompile(`\b(internal/[a-z]+|migrations)\b`)

// TestEveryPackageImportsWhatItsDocSays reads each package's doc.go
// "Imports:" paragraph: its first sentence lists every package of this
// module and every third-party module the package may import (by the names
// above); a later sentence starting "Never" names packages it must not. The
// package's non-test files must import exactly the listed internal
// packages, every third-party module they use must be named, and nothing
// named "Never" may be imported. A new import, or a stale claim, fails here.
func TestEveryPackageImportsWhatItsDocSays(t *testing.T) {
	root := filepath.Join("..", "..")
	var dirs []string
	for _, base := range []string{"cmd", "internal", "migrations"} {
		_ = filepath.WalkDir(filepath.Join(root, base), func(path string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && d.Name() != "testdata" {
				if files, _ := filepath.Glob(filepath.Join(path, "*.go")); len(files) > 0 {
					dirs = append(dirs, path)
				}
			}
			return nil
		})
	}
	if len(dirs) < 15 {
		t.Fatalf("found only %d packages: the walk is wrong", len(dirs))
	}
	for _, dir := range dirs {
		rel, _ := filepath.Rel(root, dir)
		t.Run(rel, func(t *testing.T) {
			allowed, never, names := declared(t, dir)
			internal, external := imports(t, dir)
			for _, p := range internal {
				if slices.Contains(never, p) {
					t.Errorf("imports %s, which its doc.go says it must never import", p)
				} else if !slices.Contains(allowed, p) {
					t.Errorf("imports %s, which its doc.go's Imports sentence does not list", p)
				}
			}
			for _, p := range allowed {
				if !slices.Contains(internal, p) && p != "internal/archtest" {
					t.Errorf("its doc.go lists %s, which it does not import (a stale claim)", p)
				}
			}
			for _, m := range external {
				if !slices.ContainsFunc(thirdParty[m], func(n string) bool { return strings.Contains(names, n) }) {
					t.Errorf("imports %s, which its doc.go's Imports sentence does not name (as one of %v)", m, thirdParty[m])
				}
			}
		})
	}
}

// declared reads dir's doc.go: the internal packages its Imports sentence
// allows, those a Never sentence forbids, and the sentence itself.
func declared(t *testing.T, dir string) (allowed, never []string, sentence string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "doc.go"))
	if err != nil {
		t.Fatalf("no doc.go: every package states its role and what it may import")
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "//"); ok {
			lines = append(lines, strings.TrimSpace(rest))
		}
	}
	text := strings.Join(lines, " ")
	_, after, ok := strings.Cut(text, "Imports:")
	if !ok {
		t.Fatal(`doc.go has no "Imports:" paragraph`)
	}
	first, rest, _ := strings.Cut(after, ". ")
	allowed = append(allowed, internalRE.FindAllString(first, -1)...)
	for _, s := range strings.Split(rest, ". ") {
		if strings.HasPrefix(strings.TrimSpace(s), "Never") {
			never = append(never, internalRE.FindAllString(s, -1)...)
		}
	}
	return allowed, never, first
}

// imports returns the packages of this module and the third-party modules
// dir's non-test files import.
func imports(t *testing.T, dir string) (internal, external []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if seen[path] {
				continue
			}
			seen[path] = true
			switch {
			case strings.HasPrefix(path, module):
				internal = append(internal, strings.TrimPrefix(path, module))
			case strings.Contains(strings.Split(path, "/")[0], "."):
				external = append(external, moduleOf(t, path))
			}
		}
	}
	sort.Strings(internal)
	return internal, slices.Compact(external)
}

func moduleOf(t *testing.T, path string) string {
	t.Helper()
	for m := range thirdParty {
		if path == m || strings.HasPrefix(path, m+"/") {
			return m
		}
	}
	t.Fatalf("%s is not a module this test knows: add it to thirdParty with the names a doc.go may use", path)
	return ""
}
