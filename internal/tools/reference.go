package tools

import (
	"fmt"
	"strings"

	"github.com/example/order-mcp/internal/auth"
)

// The README's table of tools is generated from All by `make docs`,
// between these two markers, and a test fails when it drifts: a tool
// added to All appears in the README without anyone editing it.
const (
	TableBegin = "<!-- tools:begin (generated from tools.All by make docs; do not edit) -->"
	TableEnd   = "<!-- tools:end -->"
)

// Table renders the tool surface as a Markdown table: each tool's name,
// the scopes a caller needs, whether it only reads or is destructive,
// whether it is under the enumeration throttle, its data-flow labels (see
// DataFlow), and the first sentence of the description the model sees.
func Table() string {
	var b strings.Builder
	b.WriteString("| tool | scopes | kind | looks up by id | data flow | what it does |\n|---|---|---|---|---|---|\n")
	for _, t := range All() {
		scopes := make([]string, 0, len(t.Scopes()))
		for _, s := range auth.ScopeNames(t.Scopes()) {
			scopes = append(scopes, "`"+s+"`")
		}
		kind := "writes"
		switch {
		case t.def.Annotations != nil && t.def.Annotations.ReadOnlyHint:
			kind = "read-only"
		case t.Destructive():
			kind = "destructive"
		}
		byID := "no"
		if t.LooksUpByID() {
			byID = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", t.Name(), strings.Join(scopes, " "), kind, byID,
			flowText(t.flow), cellText.Replace(firstSentence(t.def.Description)))
	}
	return b.String()
}

// flowText names the data-flow labels that are set, in the table's words.
func flowText(f DataFlow) string {
	var labels []string
	for _, l := range []struct {
		set  bool
		name string
	}{
		{f.ReadsPrivateData, "private data"},
		{f.ReturnsUntrustedContent, "untrusted content"},
		{f.ChangesState, "changes state"},
		{f.CommunicatesExternally, "external"},
	} {
		if l.set {
			labels = append(labels, l.name)
		}
	}
	if len(labels) == 0 {
		return "none"
	}
	return strings.Join(labels, ", ")
}

// cellText makes text safe in a Markdown table cell.
var cellText = strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "\n", " ")

// firstSentence is s up to and including its first full stop followed by
// a space (or all of s).
func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return strings.TrimSpace(s)
}
