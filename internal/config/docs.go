package config

import (
	"bytes"
	"fmt"
	"strings"
)

// DocPath is where the generated configuration reference lives, relative
// to the repository root.
const DocPath = "docs/CONFIGURATION.md"

// docIntro opens docs/CONFIGURATION.md. Everything in it is a rule Load
// and WithDotEnv apply to every variable alike.
const docIntro = `# Configuration

<!-- Generated from internal/config/vars.go by ` + "`make docs`" + `. Do not edit: change Vars there and run make docs. -->

Every environment variable the server reads, generated from the table the
loader itself reads names and defaults from (` + "`config.Vars`" + ` in
[internal/config/vars.go](../internal/config/vars.go)): a variable cannot be
read without appearing here, and the defaults below are the defaults in force.
[.env.example](../.env.example) shows them in use.

How every variable is read:

- From the process environment. A ` + "`.env`" + ` file in the working directory is
  read too, but only when ` + "`MCP_ENV=development`" + ` is set in the real
  environment, and variables already in the environment win over it. Quote
  secrets in ` + "`.env`" + ` with single quotes: godotenv expands ` + "`$VAR`" + ` inside
  unquoted and double-quoted values.
- A variable marked *secret* may instead be given as ` + "`NAME_FILE`" + `, the
  path of a file holding it (Docker and Kubernetes secrets, vault agents);
  trailing newlines are dropped. Setting both ` + "`NAME`" + ` and ` + "`NAME_FILE`" + ` is
  an error.
- Rates are ` + "`<count>-<S|M|H|D>`" + `, e.g. ` + "`120-M`" + `; durations are Go durations
  (` + "`30s`" + `, ` + "`5m`" + `, ` + "`24h`" + `) and must be positive; booleans are ` + "`true`" + ` or
  ` + "`false`" + `; lists are comma-separated.
- A number, duration, rate, boolean, address or URL that does not parse, or
  is out of range, stops the command with an error naming the variable,
  never a silent fallback to the default; every problem is reported in the
  same run.
- Outside development, a known-weak or example secret (every value in
  .env.example contains ` + "`change-me`" + `) is refused.
- ` + "`serve`" + ` and ` + "`stdio`" + ` log one ` + "`security posture`" + ` line at start-up with the
  effective configuration, secrets masked.

Read elsewhere: ` + "`server healthcheck`" + ` reads only ` + "`MCP_HTTP_ADDR`" + ` and
` + "`MCP_TLS_CERT_FILE`" + `, to find the local port; ` + "`server keys create`" + ` reads
` + "`AUDIT_HMAC_KEY_FILE`" + ` to repeat it in the Claude Desktop snippet it prints;
the go-sdk reads ` + "`MCPGODEBUG`" + ` itself; and the Go runtime's own variables
(` + "`GOMEMLIMIT`" + `, ` + "`GOMAXPROCS`" + `) apply as usual.
`

// Markdown renders docs/CONFIGURATION.md from Vars. `make docs` writes it;
// a test compares it with the committed file.
func Markdown() []byte {
	var b bytes.Buffer
	b.WriteString(docIntro)
	group := ""
	for _, v := range Vars() {
		if v.Group != group {
			group = v.Group
			fmt.Fprintf(&b, "\n## %s\n\n| variable | default | meaning |\n|---|---|---|\n", group)
		}
		name := "`" + v.Name + "`"
		if v.Secret {
			name += " (secret: or `" + v.Name + "_FILE`)"
		}
		def := v.DefaultDoc
		if def == "" && v.Default != "" {
			def = "`" + v.Default + "`"
		}
		doc := v.Doc
		if v.Max != 0 {
			doc += fmt.Sprintf(" An integer from %d to %d.", v.Min, v.Max)
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, cell(def), cell(doc))
	}
	return b.Bytes()
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
