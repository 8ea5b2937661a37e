package config_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/config"
)

// TestConfigurationDocIsCurrent: docs/CONFIGURATION.md is generated from
// Vars. A variable added, removed or changed there without regenerating
// the page fails here.
func TestConfigurationDocIsCurrent(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join("..", "..", config.DocPath))
	if err != nil {
		t.Fatalf("%v: run make docs", err)
	}
	if got := config.Markdown(); string(got) != string(committed) {
		t.Errorf("%s is not what Vars generates: run make docs and commit the result", config.DocPath)
	}
}

// borrowed are variables of the operating system that this package reads
// without documenting them as the server's own, and why.
var borrowed = map[string]string{
	"HOME":           "only to place AUDIT_SPILL_DIR's default, which its entry in Vars describes",
	"XDG_STATE_HOME": "only to place AUDIT_SPILL_DIR's default, which its entry in Vars describes",
}

// envName is what an environment variable's name looks like.
var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

// TestEveryVariableReadIsDocumented holds the loader and the documentation
// to one list, both ways: every name the package's code passes to a call
// (getenv, or the reader's str, secret, rate...) is in Vars, every entry of
// Vars is read somewhere, and a Load of a full environment asks for no
// name Vars lacks.
func TestEveryVariableReadIsDocumented(t *testing.T) {
	documented := map[string]config.Var{}
	for _, v := range config.Vars() {
		if _, twice := documented[v.Name]; twice {
			t.Errorf("%s is in Vars twice", v.Name)
		}
		documented[v.Name] = v
	}
	for name := range borrowed {
		if !strings.Contains(documented["AUDIT_SPILL_DIR"].DefaultDoc, name) {
			t.Errorf("%s is read for AUDIT_SPILL_DIR's default, which does not mention it", name)
		}
	}

	t.Run("InTheSource", func(t *testing.T) {
		read := namesPassedToCalls(t)
		for name, where := range read {
			if _, ok := documented[name]; !ok && borrowed[name] == "" {
				t.Errorf("%s (%s) is read but not in Vars: document it in vars.go", name, where)
			}
		}
		for name := range documented {
			if _, ok := read[name]; !ok {
				t.Errorf("%s is in Vars but nothing reads it", name)
			}
		}
	})

	t.Run("AtRunTime", func(t *testing.T) {
		asked := map[string]bool{}
		e := production(t)
		getenv := func(k string) string { asked[k] = true; return e[k] }
		if _, err := config.Load(getenv, os.ReadFile); err != nil {
			t.Fatal(err)
		}
		for name := range asked {
			base := name
			if _, own := documented[name]; !own {
				base, _ = strings.CutSuffix(name, "_FILE") // the file form of a secret
			}
			v, ok := documented[base]
			switch {
			case borrowed[name] != "":
			case !ok:
				t.Errorf("Load asked for %s, which Vars does not document", name)
			case base != name && !v.Secret:
				t.Errorf("Load asked for %s, but Vars does not mark %s secret", name, base)
			}
		}
		for name, v := range documented {
			if !asked[name] || v.Secret && !asked[name+"_FILE"] {
				t.Errorf("Load did not ask for %s (or, for a secret, its _FILE form)", name)
			}
		}
	})
}

// namesPassedToCalls returns every string literal shaped like a variable
// name that this package's non-test code passes to a function, with where.
func namesPassedToCalls(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(parsed, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			for _, arg := range call.Args {
				lit, ok := arg.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				if s, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(s) {
					out[s] = fset.Position(lit.Pos()).String()
				}
			}
			return true
		})
	}
	if len(out) < 10 {
		t.Fatalf("found only %d names: the scan is wrong", len(out))
	}
	return out
}

// TestVarsAreComplete: every entry says what it does and where it belongs,
// and an integer's default lies within its bounds.
func TestVarsAreComplete(t *testing.T) {
	for _, v := range config.Vars() {
		if !envName.MatchString(v.Name) || v.Doc == "" || v.Group == "" {
			t.Errorf("%q: needs a name, a Doc and a Group", v.Name)
		}
		if v.Max != 0 {
			n, err := strconv.Atoi(v.Default)
			if err != nil || n < v.Min || n > v.Max {
				t.Errorf("%s: default %q is not an integer from %d to %d", v.Name, v.Default, v.Min, v.Max)
			}
		}
		if v.Secret && v.Default != "" {
			t.Errorf("%s: a secret has no default", v.Name)
		}
	}
}

// TestEnvExampleNamesEveryVariable: .env.example, the file operators copy,
// shows every variable (set, or commented out with its default).
func TestEnvExampleNamesEveryVariable(t *testing.T) {
	raw, err := os.ReadFile(envExample)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if name, _, ok := strings.Cut(line, "="); ok && envName.MatchString(name) {
			names = append(names, name, strings.TrimSuffix(name, "_FILE"))
		}
	}
	for _, v := range config.Vars() {
		if !slices.Contains(names, v.Name) {
			t.Errorf(".env.example does not show %s", v.Name)
		}
	}
}
