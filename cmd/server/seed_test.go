package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestSeedCanaryPlantsOnce: `seed --canary` plants canary records beside
// the demo data, with ids of this database's own (random, never the
// demo's), prints them once so the operator can try the alarm, records
// the planting in the audit trail, and plants nothing more when run again.
func TestSeedCanaryPlantsOnce(t *testing.T) {
	env := prodEnv()
	cli(t, env, "migrate")
	out := cli(t, env, "seed", "--canary")
	ids := regexp.MustCompile(`(?m)^  ((?:cus|ord)_[0-9A-HJKMNP-TV-Z]{16})$`).FindAllStringSubmatch(out, -1)
	if !strings.Contains(out, "planted") || len(ids) < 8 {
		// 6 demo customers, then the canary customer and its orders.
		t.Fatalf("seed --canary printed:\n%s", out)
	}
	canaries := ids[len(ids)-5:]
	if !strings.HasPrefix(canaries[0][1], "cus_") {
		t.Fatalf("the canary customer is not listed first: %v", canaries)
	}
	for _, id := range canaries {
		if strings.Contains(out[:strings.Index(out, "planted")], id[1]) {
			t.Errorf("canary %s is one of the demo's ids", id[1])
		}
	}
	again := cli(t, env, "seed", "--canary")
	if !strings.Contains(again, "already planted, none added") {
		t.Errorf("a second seed --canary printed:\n%s", again)
	}
	tail := cli(t, env, "audit", "tail", "-n", "50")
	if !strings.Contains(tail, "seed canary") || !strings.Contains(tail, canaries[0][1]) {
		t.Errorf("the planting is not in the audit trail:\n%s", tail)
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
