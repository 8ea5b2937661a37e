package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/example/order-mcp/internal/config"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/tools"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

// run regenerates every generated document under the repository root
// given by -root and names each file it changed.
func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("gendocs", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	root := fs.String("root", ".", "the repository root")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return errors.New("usage: gendocs [-root DIR]")
	}
	at := func(path string) string { return filepath.Join(*root, filepath.FromSlash(path)) }

	if err := write(at(config.DocPath), config.Markdown(), stdout); err != nil {
		return err
	}
	// Tables generated into hand-written pages, between markers.
	for _, t := range []struct {
		path, begin, end, table string
	}{
		{"README.md", tools.TableBegin, tools.TableEnd, tools.Table()},
		{"docs/ERRORS.md", refusal.TableBegin, refusal.TableEnd, refusal.Table()},
	} {
		old, err := os.ReadFile(at(t.path))
		if err != nil {
			return err
		}
		body, err := splice(old, t.begin, t.end, t.table)
		if err != nil {
			return fmt.Errorf("%s: %w", t.path, err)
		}
		if err := write(at(t.path), body, stdout); err != nil {
			return err
		}
	}
	return nil
}

// splice returns doc with the text between the begin and end markers
// replaced by table.
func splice(doc []byte, begin, end, table string) ([]byte, error) {
	b := bytes.Index(doc, []byte(begin))
	e := bytes.Index(doc, []byte(end))
	if b < 0 || e < b {
		return nil, fmt.Errorf("the markers %q and %q are missing or out of order", begin, end)
	}
	var out bytes.Buffer
	out.Write(doc[:b+len(begin)])
	out.WriteString("\n" + table)
	out.Write(doc[e:])
	return out.Bytes(), nil
}

// write replaces path's content with body unless it already holds it, and
// names the file when it wrote.
func write(path string, body []byte, stdout io.Writer) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, body) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "wrote "+path)
	return nil
}
