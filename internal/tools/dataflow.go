package tools

import (
	"encoding/json"
	"strings"
)

// DataFlowMetaKey is the key, in each tool definition's _meta, of the
// tool's data-flow labels. It is namespaced as the MCP specification asks
// of _meta keys (a reverse-DNS prefix of this project's own, then a name).
const DataFlowMetaKey = "io.github.example.order-mcp/data-flow"

// DataFlow says what a tool does with data, so that a host can decide
// which tools may share one context. The "lethal trifecta" is an agent
// that reads private data, is exposed to untrusted content, and can
// communicate externally: an instruction hidden in the untrusted content
// can then send the private data away. A host that knows these labels can
// refuse that combination (or ask the user first) across every server it
// has connected, which no single server can do on its own.
//
// Every label is derived from what the tool already declares, so it
// cannot drift from the behaviour the gate enforces; only what no
// declaration says (whether the tool reads private data) is an option of
// its own (ReadsPrivateData, ReadsNoPrivateData). Where a tool declares
// nothing, the label says the riskier thing, as the MCP annotations'
// defaults do.
type DataFlow struct {
	// ReadsPrivateData: the tool reads data that is not public (here,
	// customers' orders and contact data, masked or not). Declared with
	// ReadsPrivateData or ReadsNoPrivateData; true when undeclared.
	ReadsPrivateData bool `json:"reads_private_data"`
	// ReturnsUntrustedContent: the result carries text from outside the
	// trust boundary. True when the output schema has a field named
	// untrusted_* (this server's convention for such text, which only
	// internal/sanitize fills) or the tool is open-world (what it
	// returns comes from outside).
	ReturnsUntrustedContent bool `json:"returns_untrusted_content"`
	// ChangesState: the tool is not declared read-only (readOnlyHint).
	ChangesState bool `json:"changes_state"`
	// CommunicatesExternally: the tool reaches entities outside this
	// server and its database (openWorldHint true, or not declared).
	CommunicatesExternally bool `json:"communicates_externally"`
}

// ReadsPrivateData declares that the tool reads data that is not public.
func ReadsPrivateData() Option { return func(t *Tool) { t.privateData = ptr(true) } }

// ReadsNoPrivateData declares that the tool reads only public data (a
// carrier list, say). Without either declaration a tool is labelled as
// reading private data, and a test asks every tool to say which.
func ReadsNoPrivateData() Option { return func(t *Tool) { t.privateData = ptr(false) } }

// DataFlow returns the tool's data-flow labels, as its definition's _meta
// carries them.
func (t Tool) DataFlow() DataFlow { return t.flow }

// dataFlow derives the labels of a tool from its definition and options.
func dataFlow(t *Tool) DataFlow {
	a := t.def.Annotations
	external := a == nil || a.OpenWorldHint == nil || *a.OpenWorldHint
	return DataFlow{
		ReadsPrivateData:        t.privateData == nil || *t.privateData,
		ReturnsUntrustedContent: external || hasUntrustedField(t.def.OutputSchema),
		ChangesState:            a == nil || !a.ReadOnlyHint,
		CommunicatesExternally:  external,
	}
}

// hasUntrustedField reports whether a JSON schema declares, at any depth,
// a property whose name starts with untrusted_. A schema that cannot be
// read counts as having one: the label then says the riskier thing.
func hasUntrustedField(schema any) bool {
	if schema == nil {
		return false
	}
	b, err := json.Marshal(schema)
	if err != nil {
		return true
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return true
	}
	return untrustedIn(v)
}

func untrustedIn(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		if props, ok := v["properties"].(map[string]any); ok {
			for name := range props {
				if strings.HasPrefix(name, "untrusted_") {
					return true
				}
			}
		}
		for _, sub := range v {
			if untrustedIn(sub) {
				return true
			}
		}
	case []any:
		for _, sub := range v {
			if untrustedIn(sub) {
				return true
			}
		}
	}
	return false
}
