package tools_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/example/order-mcp/internal/security"
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
	key, _ := env.Key(t, "", security.ScopeRead, security.ScopeReadAny, security.ScopeCancel)
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
			got = append(got, '\n')
			path := filepath.Join("testdata", tool.Name+".json")
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
		})
	}
}

// TestEveryToolDeclaresScopesAndAnnotations keeps every tool, present and
// future, in the shape the MCP layer relies on: scopes to enforce, explicit
// annotations (writes marked destructive), and an argument check.
func TestEveryToolDeclaresScopesAndAnnotations(t *testing.T) {
	for _, tool := range tools.All() {
		if len(tool.Scopes) == 0 {
			t.Errorf("%s declares no scope", tool.Def.Name)
		}
		if tool.Def.Annotations == nil || tool.Def.Annotations.OpenWorldHint == nil || *tool.Def.Annotations.OpenWorldHint {
			t.Errorf("%s must declare its annotations explicitly (closed world)", tool.Def.Name)
		}
		if tool.Def.Annotations != nil && !tool.Def.Annotations.ReadOnlyHint &&
			(tool.Def.Annotations.DestructiveHint == nil || !*tool.Def.Annotations.DestructiveHint) {
			t.Errorf("%s writes but is not marked destructive", tool.Def.Name)
		}
		if tool.Check == nil {
			t.Errorf("%s has no argument check", tool.Def.Name)
		}
	}
}
