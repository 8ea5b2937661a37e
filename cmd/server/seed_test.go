package main

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/example/order-mcp/internal/demo"
)

// TestSeedCanaryPlantsOnce: `seed --canary` plants canary records, and
// only them (a production database gets no demo data, whose ids are
// published), with ids of this database's own (random, never the demo's);
// prints them once so the operator can try the alarm; records the
// planting in the audit trail without naming the ids; and plants nothing
// more when run again.
func TestSeedCanaryPlantsOnce(t *testing.T) {
	database := emptyDatabase(t)
	env := prodEnv("DATABASE_URL=" + database)
	cli(t, env, "migrate")
	out := cli(t, env, "seed", "--canary")
	ids := regexp.MustCompile(`(?m)^  ((?:cus|ord)_[0-9A-HJKMNP-TV-Z]{16})$`).FindAllStringSubmatch(out, -1)
	if !strings.Contains(out, "planted") || len(ids) != 5 || !strings.HasPrefix(ids[0][1], "cus_") {
		t.Fatalf("seed --canary printed (want the canary customer, then its four orders):\n%s", out)
	}
	for _, c := range demo.Customers() {
		if strings.Contains(out, c.ID) {
			t.Errorf("seed --canary printed the demo customer %s", c.ID)
		}
	}
	db := ownerConn(t, database)
	var customers, orders, canaries int
	if err := db.QueryRow(context.Background(),
		"SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), (SELECT count(*) FROM canaries)").
		Scan(&customers, &orders, &canaries); err != nil {
		t.Fatal(err)
	}
	if customers != 1 || orders != 4 || canaries != 5 {
		t.Errorf("after seed --canary: %d customers, %d orders, %d canary ids; want the canaries alone (1, 4, 5)",
			customers, orders, canaries)
	}
	again := cli(t, env, "seed", "--canary")
	if !strings.Contains(again, "already planted, none added") {
		t.Errorf("a second seed --canary printed:\n%s", again)
	}
	tail := cli(t, env, "audit", "tail", "-n", "50")
	if !strings.Contains(tail, "seed canary") {
		t.Errorf("the planting is not in the audit trail:\n%s", tail)
	}
	for _, id := range ids {
		if strings.Contains(tail, id[1]) {
			t.Errorf("the audit trail names the canary %s", id[1])
		}
	}
	for _, bad := range [][]string{{"seed", "--canary=maybe"}, {"seed", "extra"}} {
		cmd := exec.Command(serverBinary(t), bad...)
		cmd.Env = env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "usage: server seed [--canary]") {
			t.Errorf("server %v: %v %s, want the usage", bad, err, stderr.String())
		}
	}
}
