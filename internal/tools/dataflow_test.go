package tools

import (
	"context"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
)

// untrustedOutput has untrusted text one level down, as a result with a
// list of items carrying customer text would.
type untrustedOutput struct {
	Items []struct {
		Note UntrustedText `json:"untrusted_note"`
	} `json:"items"`
}

// TestDataFlowIsDerivedFromTheDeclarations: each label follows what the
// tool declares, and a tool that declares nothing is labelled with the
// riskier value, so a forgotten declaration can only make a host more
// careful, never less.
func TestDataFlowIsDerivedFromTheDeclarations(t *testing.T) {
	schema := &jsonschema.Schema{Type: "object"}
	scopes := []auth.Scope{auth.ScopeRead}
	plain := func(context.Context, *Call, noInput) (struct{}, error) { return struct{}{}, nil }
	untrusted := func(context.Context, *Call, noInput) (untrustedOutput, error) { return untrustedOutput{}, nil }
	closedRead := &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(false)}
	tests := []struct {
		name string
		tool Tool
		want DataFlow
	}{
		{"NothingDeclaredIsEverything",
			Define(&mcp.Tool{Name: "x", InputSchema: schema}, scopes, plain),
			DataFlow{ReadsPrivateData: true, ReturnsUntrustedContent: true, ChangesState: true, CommunicatesExternally: true}},
		{"ClosedWorldReadOfPublicData",
			Define(&mcp.Tool{Name: "x", InputSchema: schema, Annotations: closedRead}, scopes, plain, ReadsNoPrivateData()),
			DataFlow{}},
		{"UndeclaredPrivateDataIsPrivate",
			Define(&mcp.Tool{Name: "x", InputSchema: schema, Annotations: closedRead}, scopes, plain),
			DataFlow{ReadsPrivateData: true}},
		{"UntrustedFieldAtAnyDepth",
			Define(&mcp.Tool{Name: "x", InputSchema: schema, Annotations: closedRead}, scopes, untrusted, ReadsPrivateData()),
			DataFlow{ReadsPrivateData: true, ReturnsUntrustedContent: true}},
		{"OpenWorldReturnsUntrustedContent",
			Define(&mcp.Tool{Name: "x", InputSchema: schema, Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}}, scopes, plain, ReadsNoPrivateData()),
			DataFlow{ReturnsUntrustedContent: true, CommunicatesExternally: true}},
		{"WriteChangesState",
			Define(&mcp.Tool{Name: "x", InputSchema: schema, Annotations: &mcp.ToolAnnotations{OpenWorldHint: ptr(false)}}, scopes, plain, ReadsPrivateData()),
			DataFlow{ReadsPrivateData: true, ChangesState: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tool.DataFlow(); got != tt.want {
				t.Errorf("labels %+v, want %+v", got, tt.want)
			}
			if got := tt.tool.Def().Meta[DataFlowMetaKey]; got != tt.want {
				t.Errorf("_meta[%s] = %+v, want %+v", DataFlowMetaKey, got, tt.want)
			}
		})
	}
}

// TestEveryToolDeclaresWhetherItReadsPrivateData: the one label no other
// declaration can give is said explicitly by every tool, present and
// future.
func TestEveryToolDeclaresWhetherItReadsPrivateData(t *testing.T) {
	for _, tool := range All() {
		if tool.privateData == nil {
			t.Errorf("%s: declare ReadsPrivateData() or ReadsNoPrivateData() in its Define", tool.Name())
		}
	}
}

// TestDefineLeavesTheCallersMetaAlone: the labels are added to a copy of
// the definition's _meta, never to a map the caller still holds.
func TestDefineLeavesTheCallersMetaAlone(t *testing.T) {
	meta := mcp.Meta{"x": 1}
	plain := func(context.Context, *Call, noInput) (struct{}, error) { return struct{}{}, nil }
	tool := Define(&mcp.Tool{Name: "x", InputSchema: &jsonschema.Schema{Type: "object"}, Meta: meta}, []auth.Scope{auth.ScopeRead}, plain)
	if _, ok := meta[DataFlowMetaKey]; ok {
		t.Error("Define wrote into the caller's _meta")
	}
	if tool.Def().Meta["x"] != 1 {
		t.Error("Define dropped the definition's own _meta")
	}
}
