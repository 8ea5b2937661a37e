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
	"github.com/modelcontextprotocol/go-sdk/mcp"
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
		// A tool taking an order id is a lookup a caller could use to guess
		// ids: it must be under the enumeration throttle.
		b, err := json.Marshal(tool.Def.InputSchema)
		if err != nil {
			t.Fatal(err)
		}
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(b, &schema); err != nil {
			t.Fatal(err)
		}
		if _, ok := schema.Properties["order_id"]; ok && !tool.LooksUpByID {
			t.Errorf("%s takes an order_id but is not marked LooksUpByID", tool.Def.Name)
		}
	}
}

// TestDestructiveFollowsTheAnnotations: the small budget for destructive
// calls is applied by what a tool declares, and a tool that declares
// nothing counts as destructive (the MCP default), never as a free read.
func TestDestructiveFollowsTheAnnotations(t *testing.T) {
	for _, tool := range tools.All() {
		if want := tool.Def.Name == "cancel_order"; tool.Destructive() != want {
			t.Errorf("%s: Destructive() = %v, want %v", tool.Def.Name, tool.Destructive(), want)
		}
	}
	bare := tools.Tool{Def: &mcp.Tool{Name: "refund_order"}}
	if !bare.Destructive() {
		t.Error("a tool without annotations escapes the destructive budget")
	}
	writes := tools.Tool{Def: &mcp.Tool{Name: "refund_order", Annotations: &mcp.ToolAnnotations{}}}
	if !writes.Destructive() {
		t.Error("a tool that is not read-only and says nothing of destruction escapes the destructive budget")
	}
}
