// Command server is the order-status MCP server. See run.go for the
// commands and README.md for how to use them.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}
