package tools_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/tools"
)

// TestReadmeToolTableIsCurrent: the README's table of tools is generated
// from All. A tool added, renamed, re-scoped or re-described without
// regenerating the README fails here.
func TestReadmeToolTableIsCurrent(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), tools.TableBegin+"\n"+tools.Table()+tools.TableEnd) {
		t.Errorf("README.md's tool table is not what tools.All generates: run make docs and commit the result")
	}
	for _, tool := range tools.All() {
		if !strings.Contains(tools.Table(), "| `"+tool.Name()+"` |") {
			t.Errorf("the table has no row for %s", tool.Name())
		}
	}
}
