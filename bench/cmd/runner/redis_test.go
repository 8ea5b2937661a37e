package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// fakeRedis serves RESP2 on a loopback port: answer gets each command's
// arguments and returns the raw reply to write. It returns the address.
func fakeRedis(t *testing.T, answer func(args []string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					args, err := readCommand(r)
					if err != nil {
						return
					}
					if _, err := conn.Write([]byte(answer(args))); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// readCommand reads one command as clients send them: an array of bulk
// strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	var n int
	if _, err := fmt.Fscanf(r, "*%d\r\n", &n); err != nil {
		return nil, err
	}
	args := make([]string, n)
	for i := range args {
		var size int
		if _, err := fmt.Fscanf(r, "$%d\r\n", &size); err != nil {
			return nil, err
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

func TestPingRedis(t *testing.T) {
	ctx := context.Background()
	ok := fakeRedis(t, func([]string) string { return "+PONG\r\n" })
	if err := pingRedis(ctx, ok); err != nil {
		t.Errorf("a Redis answering PONG: %v", err)
	}
	auth := fakeRedis(t, func([]string) string { return "-NOAUTH Authentication required.\r\n" })
	if err := pingRedis(ctx, auth); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("a Redis wanting a password: %v, want its NOAUTH", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if err := pingRedis(ctx, closed); err == nil {
		t.Error("nothing listening: no error")
	}
}

// TestCountRedisKeysFollowsTheCursor: SCAN pages until the cursor is 0
// again, and the pattern is the prefix.
func TestCountRedisKeysFollowsTheCursor(t *testing.T) {
	addr := fakeRedis(t, func(args []string) string {
		if len(args) != 6 || args[0] != "SCAN" || args[2] != "MATCH" || args[3] != "bench_x*" {
			return "-ERR unexpected " + strings.Join(args, " ") + "\r\n"
		}
		switch args[1] {
		case "0":
			return "*2\r\n$2\r\n17\r\n*2\r\n$8\r\nbench_x1\r\n$8\r\nbench_x2\r\n"
		case "17":
			return "*2\r\n$1\r\n0\r\n*1\r\n$8\r\nbench_x3\r\n"
		}
		return "-ERR bad cursor\r\n"
	})
	n, err := countRedisKeys(context.Background(), addr, "bench_x")
	if err != nil || n != 3 {
		t.Fatalf("got %d, %v; want 3 keys", n, err)
	}
}

// TestReplicasSectionOptions: on by default with two replicas, off with
// -smoke (CI has no need of Redis) or -skip-replicas, and one replica
// alone is not a comparison.
func TestReplicasSectionOptions(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		skip     bool
		replicas int
		wantErr  bool
	}{
		{args: nil, replicas: 2},
		{args: []string{"-replicas", "3"}, replicas: 3},
		{args: []string{"-smoke"}, skip: true, replicas: 2},
		{args: []string{"-skip-replicas"}, skip: true, replicas: 2},
		{args: []string{"-replicas", "1"}, wantErr: true},
		{args: []string{"-replicas", "1", "-skip-replicas"}, skip: true, replicas: 1},
	} {
		o, err := parseOptions(append([]string{"runner", "-server", "server"}, tt.args...), io.Discard)
		if (err != nil) != tt.wantErr {
			t.Errorf("%v: error %v, want error %v", tt.args, err, tt.wantErr)
			continue
		}
		if err == nil && (o.skipReplicas != tt.skip || o.replicas != tt.replicas) {
			t.Errorf("%v: skip %v, replicas %d; want %v, %d", tt.args, o.skipReplicas, o.replicas, tt.skip, tt.replicas)
		}
	}
}
