package tools_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestToolDefinitionsMatchGolden compares what a client sees of each tool
// (name, title, description, annotations, input and output schema) with
// testdata/<tool>.json. Any change to what the model can see or send is an
// API change and shows up in review as a diff of these files. Regenerate
// with: go test ./internal/tools -run Golden -update
func TestToolDefinitionsMatchGolden(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{})
	key, _ := env.Key(t, "", auth.ScopeRead, auth.ScopeReadAny, auth.ScopeCancel)
	cs := env.Connect(t, key, "")
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != len(tools.All()) {
		t.Fatalf("tools/list has %d tools, the registry %d", len(res.Tools), len(tools.All()))
	}
	for _, tool := range res.Tools {
		t.Run(tool.Name, func(t *testing.T) {
			got, err := json.MarshalIndent(tool, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tool.Name+".json"), append(got, '\n'))
		})
	}
}

// declarations is what the MCP layer applies to a tool, pinned beside its
// schema in testdata/<tool>.security.json: a change to who may call a tool
// or how it is throttled is a reviewable diff, like a change to its
// schema.
type declarations struct {
	Scopes      []auth.Scope `json:"scopes"`
	Destructive bool         `json:"destructive"`
	LooksUpByID bool         `json:"looks_up_by_id"`
}

// TestToolDeclarationsMatchGolden compares each tool's security
// declarations with testdata/<tool>.security.json. Regenerate with:
// go test ./internal/tools -run Golden -update
func TestToolDeclarationsMatchGolden(t *testing.T) {
	for _, tool := range tools.All() {
		t.Run(tool.Name(), func(t *testing.T) {
			got, err := json.MarshalIndent(declarations{tool.Scopes(), tool.Destructive(), tool.LooksUpByID()}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tool.Name()+".security.json"), append(got, '\n'))
		})
	}
}

// golden compares got with the file at path, or writes it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s changed; if intended, run go test ./internal/tools -run Golden -update and review the diff.\ngot:\n%s", path, got)
	}
}

// TestEveryToolDeclaresScopesAndAnnotations keeps every tool, present and
// future, in the shape the MCP layer relies on: scopes to enforce, explicit
// annotations (writes marked destructive), and an argument check.
func TestEveryToolDeclaresScopesAndAnnotations(t *testing.T) {
	for _, tool := range tools.All() {
		def := tool.Def()
		if len(tool.Scopes()) == 0 {
			t.Errorf("%s declares no scope", def.Name)
		}
		if def.Annotations == nil || def.Annotations.OpenWorldHint == nil || *def.Annotations.OpenWorldHint {
			t.Errorf("%s must declare its annotations explicitly (closed world)", def.Name)
		}
		if def.Annotations != nil && !def.Annotations.ReadOnlyHint &&
			(def.Annotations.DestructiveHint == nil || !*def.Annotations.DestructiveHint) {
			t.Errorf("%s writes but is not marked destructive", def.Name)
		}
		// A tool taking an object id is a lookup a caller could use to
		// guess ids: it must be under the enumeration throttle.
		b, err := json.Marshal(def.InputSchema)
		if err != nil {
			t.Fatal(err)
		}
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(b, &schema); err != nil {
			t.Fatal(err)
		}
		for name := range schema.Properties {
			if strings.HasSuffix(name, "order_id") && !tool.LooksUpByID() {
				t.Errorf("%s takes %s but is not marked LooksUpByID", def.Name, name)
			}
		}
	}
}
