package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// redisPort is where a Redis started by devenv listens.
const redisPort = 63790

// ensureRedis makes a Redis available to the tests: TEST_REDIS_URL when
// set, else the one on 127.0.0.1:6379, else a redis-server started here
// (when the binary is installed), which stop ends. With none of these the
// tests that need Redis fail, saying so: they never skip.
func ensureRedis(log io.Writer) (url string, stop func()) {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u, func() {}
	}
	if answers("127.0.0.1:6379") {
		return "", func() {}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		fmt.Fprintln(log, "devenv: no Redis on 127.0.0.1:6379 and no redis-server to start: the Redis tests will fail (install redis-server, or set TEST_REDIS_URL)")
		return "", func() {}
	}
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(redisPort), "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(log, "devenv: could not start redis-server: %v\n", err)
		return "", func() {}
	}
	addr := "127.0.0.1:" + strconv.Itoa(redisPort)
	for range 50 {
		if answers(addr) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(log, "devenv: started redis-server on %s\n", addr)
	return "redis://" + addr + "/0", func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
}
