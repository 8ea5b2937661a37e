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
	"github.com/example/order-mcp/internal/surface"
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
	Scopes      []auth.Scope   `json:"scopes"`
	Destructive bool           `json:"destructive"`
	LooksUpByID bool           `json:"looks_up_by_id"`
	DataFlow    tools.DataFlow `json:"data_flow"`
}

// TestToolDeclarationsMatchGolden compares each tool's security
// declarations, its data-flow labels among them, with
// testdata/<tool>.security.json. Regenerate with:
// go test ./internal/tools -run Golden -update
func TestToolDeclarationsMatchGolden(t *testing.T) {
	for _, tool := range tools.All() {
		t.Run(tool.Name(), func(t *testing.T) {
			got, err := json.MarshalIndent(declarations{tool.Scopes(), tool.Destructive(), tool.LooksUpByID(), tool.DataFlow()}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tool.Name()+".security.json"), append(got, '\n'))
		})
	}
}

// TestToolDigestsMatchGolden pins, in testdata/tool-digest.json, the
// digest of what each scope set sees (internal/surface), with the names
// of the tools it sees: the values clients pin and the server signs. A
// change to any definition changes one of them here, beside the diff of
// the definition itself. Regenerate with:
// go test ./internal/tools -run Golden -update
func TestToolDigestsMatchGolden(t *testing.T) {
	pin, err := surface.New(tools.All(), nil)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		Scopes []string `json:"scopes"`
		Tools  []string `json:"tools"`
		Digest string   `json:"digest"`
	}
	var pinned struct {
		Canonicalization string  `json:"canonicalization"`
		Surfaces         []entry `json:"surfaces"`
	}
	pinned.Canonicalization = surface.Canonicalization
	for _, s := range pin.Surfaces() {
		e := entry{Scopes: s.Scopes, Tools: []string{}, Digest: s.Digest}
		for _, tool := range surface.Visible(tools.All(), auth.ParseScopes(s.Scopes)) {
			e.Tools = append(e.Tools, tool.Name())
		}
		pinned.Surfaces = append(pinned.Surfaces, e)
	}
	got, err := json.MarshalIndent(pinned, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "tool-digest.json"), append(got, '\n'))
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

// TestToolsListCarriesTheDataFlowLabels: what a host reads in tools/list
// is each tool's labels, as derived from its declarations, under the
// namespaced _meta key. A host enforcing a "lethal trifecta" policy has
// nothing to go on without them.
func TestToolsListCarriesTheDataFlowLabels(t *testing.T) {
	env := testenv.New(t, dsn, testenv.Options{})
	key, _ := env.Key(t, "", auth.ScopeRead, auth.ScopeReadAny, auth.ScopeCancel)
	res, err := env.Connect(t, key, "").ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]tools.Tool{}
	for _, tool := range tools.All() {
		byName[tool.Name()] = tool
	}
	for _, listed := range res.Tools {
		b, err := json.Marshal(listed.Meta[tools.DataFlowMetaKey])
		if err != nil {
			t.Fatal(err)
		}
		var got tools.DataFlow
		if err := json.Unmarshal(b, &got); err != nil || string(b) == "null" {
			t.Errorf("%s: no data-flow labels under %s in tools/list (%s)", listed.Name, tools.DataFlowMetaKey, b)
			continue
		}
		if want := byName[listed.Name].DataFlow(); got != want {
			t.Errorf("%s: tools/list says %+v, the declarations %+v", listed.Name, got, want)
		}
	}
	// The labels that matter to a host, said plainly: the one tool that
	// returns customer-typed text says so, the one that writes says so,
	// and none of them talks to the outside world.
	flow := func(name string) tools.DataFlow { return byName[name].DataFlow() }
	if !flow("get_order_status").ReturnsUntrustedContent || flow("list_recent_orders").ReturnsUntrustedContent {
		t.Error("only get_order_status returns untrusted text (untrusted_customer_delivery_instructions)")
	}
	if !flow("cancel_order").ChangesState || flow("get_order_status").ChangesState {
		t.Error("only cancel_order changes state")
	}
	for name := range byName {
		if flow(name).CommunicatesExternally || !flow(name).ReadsPrivateData {
			t.Errorf("%s: every tool here reads customers' orders and nothing outside the server", name)
		}
	}
}
