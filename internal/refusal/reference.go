package refusal

import (
	"fmt"
	"strings"
)

// The catalogue's table in docs/ERRORS.md is generated from the table
// above by `make docs`, between these two markers, and a test fails when it
// drifts: a kind added or reworded here is documented without anyone
// editing the page.
const (
	TableBegin = "<!-- refusals:begin (generated from internal/refusal by make docs; do not edit) -->"
	TableEnd   = "<!-- refusals:end -->"
)

// Table renders the catalogue as a Markdown table: each kind's stable
// name (the audit outcome and the access log's reason), its JSON-RPC code
// ("none" for the kinds answered as a tool result), its HTTP status when
// the HTTP layer refuses with it, whether it is an access decision (the
// audit trail's "denied") rather than a failure, and its fixed text, in
// which %s and %d stand for the server's own words.
func Table() string {
	var b strings.Builder
	b.WriteString("| name | JSON-RPC code | HTTP status | access decision | text |\n|---|---|---|---|---|\n")
	text := strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;")
	for _, k := range Kinds() {
		code := "none"
		if k.Code() != 0 {
			code = fmt.Sprintf("`%d`", k.Code())
		}
		status := "-"
		if k.HTTPStatus() != 0 {
			status = fmt.Sprint(k.HTTPStatus())
		}
		decision := "no"
		if k.Denied() {
			decision = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", k.Name(), code, status, decision, text.Replace(table[k].message))
	}
	return b.String()
}
