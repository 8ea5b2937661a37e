package main

import (
	"context"
	"fmt"
	"os"
	"strings"
)

func main() {
	err := run(context.Background(), os.Args, os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "server: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}
