package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/order-mcp/bench/loadgen"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen: "+err.Error())
		os.Exit(1)
	}
}

// run is the whole program: main only calls it.
func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "the server's MCP endpoint (required)")
	key := fs.String("key", "", "API key sent as a bearer token (none when empty)")
	ids := fs.String("ids", "", "comma-separated order ids")
	dsn := fs.String("database", "", "read the order ids from this database instead")
	clients := fs.Int("clients", 16, "concurrent clients")
	duration := fs.Duration("duration", 10*time.Second, "measured window")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured warm-up")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *url == "" || (*ids == "") == (*dsn == "") || fs.NArg() != 0 {
		return errors.New("usage: loadgen -url URL [-key KEY] (-ids a,b | -database URL) [-clients N] [-duration D] [-warmup D]")
	}
	orderIDs := strings.Split(*ids, ",")
	if *dsn != "" {
		var err error
		if orderIDs, err = readOrderIDs(ctx, *dsn); err != nil {
			return err
		}
	}
	res, err := loadgen.Run(ctx, loadgen.Config{
		Target:   loadgen.Target{URL: *url, Key: *key},
		OrderIDs: orderIDs,
		Clients:  *clients,
		Warmup:   *warmup,
		Duration: *duration,
	})
	if err != nil {
		return err
	}
	h := res.Latency
	fmt.Fprintf(stdout, "%d clients, %v: %.1f calls/s, p50 %v, p99 %v, max %v, %.0f bytes/call\n",
		res.Clients, res.Window.Round(time.Millisecond), res.Throughput(),
		h.Quantile(0.5).Round(time.Microsecond), h.Quantile(0.99).Round(time.Microsecond), h.Max().Round(time.Microsecond),
		float64(res.Bytes)/float64(max(res.Calls, 1)))
	if !res.Valid() {
		return fmt.Errorf("INVALID: failures: %s; first: %s", res.FailureSummary(), res.FirstFailure)
	}
	fmt.Fprintln(stdout, "valid: every answer was a successful tool call")
	return nil
}

func readOrderIDs(ctx context.Context, dsn string) ([]string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT id FROM orders ORDER BY id")
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err == nil && len(ids) == 0 {
		err = errors.New("no orders in that database")
	}
	return ids, err
}
