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
