// Command gendocs writes the documentation that is generated from code:
// docs/CONFIGURATION.md from the configuration table (config.Vars), the
// table of tools in README.md from the tool list (tools.All), and the
// refusal catalogue in docs/ERRORS.md from internal/refusal's table. The
// tables inside hand-written pages sit between marker comments; the text
// around them is left alone. `make docs` runs it from the repository
// root; tests in internal/config, internal/tools and internal/refusal
// fail, saying "run make docs", when a committed file no longer matches.
// It is a development tool, not part of the server.
//
// Imports: internal/config, internal/refusal and internal/tools, whose
// tables it renders.
package main
