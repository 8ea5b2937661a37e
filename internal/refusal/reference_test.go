package refusal_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/refusal"
)

// TestErrorsDocIsCurrent: docs/ERRORS.md carries the catalogue as
// generated from the table. A kind added or reworded without regenerating
// the page fails here.
func TestErrorsDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "ERRORS.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), refusal.TableBegin+"\n"+refusal.Table()+refusal.TableEnd) {
		t.Errorf("docs/ERRORS.md's catalogue is not what internal/refusal generates: run make docs and commit the result")
	}
}
