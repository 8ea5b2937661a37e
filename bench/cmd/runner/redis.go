package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// The replicas section's Redis: the one make test uses on a development
// machine. The replicas get it as REDIS_URL; the runner itself speaks to it
// only to check it answers before the benchmark starts and, after the
// section, to count the keys the replicas wrote.
const (
	redisURL  = "redis://127.0.0.1:6379"
	redisAddr = "127.0.0.1:6379"
)

// redisConn is the little of the Redis protocol (RESP2) the runner needs,
// so that the bench module does not depend on a Redis client.
type redisConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialRedis connects to the Redis at addr (host:port).
func dialRedis(ctx context.Context, addr string) (*redisConn, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &redisConn{conn: c, r: bufio.NewReader(c)}, nil
}

func (c *redisConn) close() { c.conn.Close() }

// do sends one command and returns its reply: a string (simple or bulk),
// an int64, a []any, or nil; a Redis error reply is an error.
func (c *redisConn) do(args ...string) (any, error) {
	_ = c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.conn.Write(b.Bytes()); err != nil {
		return nil, err
	}
	return c.reply()
}

// reply reads one RESP2 reply.
func (c *redisConn) reply() (any, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty reply from redis")
	}
	switch head, rest := line[0], line[1:]; head {
	case '+':
		return rest, nil
	case '-':
		return nil, fmt.Errorf("redis answered %q", rest)
	case ':':
		return strconv.ParseInt(rest, 10, 64)
	case '$':
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return nil, err // $-1: a nil bulk string
		}
		buf := make([]byte, n+2) // the string and its \r\n
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			return nil, err // *-1: a nil array
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = c.reply(); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply from redis: %q", line)
}

// pingRedis checks that the Redis at addr answers PING with PONG.
func pingRedis(ctx context.Context, addr string) error {
	c, err := dialRedis(ctx, addr)
	if err != nil {
		return err
	}
	defer c.close()
	v, err := c.do("PING")
	if err != nil {
		return err
	}
	if v != "PONG" {
		return fmt.Errorf("PING answered %v", v)
	}
	return nil
}

// countRedisKeys counts the keys whose names start with prefix in the
// Redis at addr, with SCAN (which, unlike KEYS, does not block a Redis that
// others use too).
func countRedisKeys(ctx context.Context, addr, prefix string) (int, error) {
	c, err := dialRedis(ctx, addr)
	if err != nil {
		return 0, err
	}
	defer c.close()
	n, cursor := 0, "0"
	for {
		v, err := c.do("SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000")
		if err != nil {
			return 0, err
		}
		page, ok := v.([]any)
		if !ok || len(page) != 2 {
			return 0, fmt.Errorf("unexpected SCAN reply: %v", v)
		}
		keys, _ := page[1].([]any)
		n += len(keys)
		if cursor, _ = page[0].(string); cursor == "0" || cursor == "" {
			return n, nil
		}
	}
}
