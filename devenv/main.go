package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "devenv: "+err.Error())
		var exit *exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errors.New("usage: devenv run <server binary> | devenv exec -- <command...> | " +
			"devenv interop [-only suite,...] <server binary> | devenv conformance <server binary>")
	}
	switch args[0] {
	case "run":
		return runServer(ctx, args[1])
	case "interop":
		return runInterop(ctx, args[1:])
	case "conformance":
		return runConformanceOnly(ctx, args[1])
	case "exec":
		if args[1] == "--" {
			args = args[1:]
		}
		return execWithDatabase(ctx, args[1:])
	}
	return fmt.Errorf("unknown command %q", args[0])
}
