package tools

import (
	"context"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
)

type noInput struct{}

func (noInput) validate() error { return nil }

// TestDestructiveFollowsTheAnnotations: the small budget for destructive
// calls is applied by what a tool declares, and a tool that declares
// nothing counts as destructive (the MCP default), never as a free read.
func TestDestructiveFollowsTheAnnotations(t *testing.T) {
	for _, tool := range All() {
		if want := tool.Name() == "cancel_order"; tool.Destructive() != want {
			t.Errorf("%s: Destructive() = %v, want %v", tool.Name(), tool.Destructive(), want)
		}
	}
	handler := func(context.Context, *Call, noInput) (struct{}, error) { return struct{}{}, nil }
	schema := &jsonschema.Schema{Type: "object"}
	bare := Define(&mcp.Tool{Name: "refund_order", InputSchema: schema}, []auth.Scope{auth.ScopeCancel}, handler)
	if !bare.Destructive() {
		t.Error("a tool without annotations escapes the destructive budget")
	}
	writes := Define(&mcp.Tool{Name: "refund_order", InputSchema: schema, Annotations: &mcp.ToolAnnotations{}},
		[]auth.Scope{auth.ScopeCancel}, handler)
	if !writes.Destructive() {
		t.Error("a tool that is not read-only and says nothing of destruction escapes the destructive budget")
	}
}

// TestDefineRefusesAToolWithoutScopesOrSchema: a declaration that would
// leave a control with nothing to enforce does not build.
func TestDefineRefusesAToolWithoutScopesOrSchema(t *testing.T) {
	handler := func(context.Context, *Call, noInput) (struct{}, error) { return struct{}{}, nil }
	for name, build := range map[string]func(){
		"NoScopes": func() {
			Define(&mcp.Tool{Name: "x", InputSchema: &jsonschema.Schema{Type: "object"}}, nil, handler)
		},
		"NoInputSchema": func() { Define(&mcp.Tool{Name: "x"}, []auth.Scope{auth.ScopeRead}, handler) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("Define accepted it")
				}
			}()
			build()
		})
	}
}
