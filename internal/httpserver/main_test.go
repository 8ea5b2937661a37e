package httpserver_test

import (
	"os"
	"testing"

	"github.com/example/order-mcp/internal/dbtest"
)

var dsn string

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m, &dsn)) }
