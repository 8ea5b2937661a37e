package main

import (
	"strings"
	"testing"
	"time"
)

// TestFaultSIGTERMUnderLoad: SIGTERM arrives while clients are calling
// tools. Graceful shutdown must not cut an answer short or make one up:
//
//   - every HTTP 200 carries one complete JSON-RPC response to the request
//     it answers, never an empty or truncated body;
//   - every other outcome is a clean refusal: 503 with Retry-After, or a
//     connection refused or closed before any response began;
//   - the calls in flight when the signal came are answered with their
//     results;
//   - every result a client got has its audit record: the writer drained
//     before the process exited;
//   - the process exits 0.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	// The package's database: nothing here breaks it, and the callers'
	// keys are new, so their records are theirs alone.
	env := faultEnv(dsn, t.TempDir())
	callers := newFaultCallers(t, env, ownerConn(t, dsn))
	url, stderr, stop := startServe(t, env)
	base := strings.TrimSuffix(url, "/mcp")

	load := startFaultLoad(t, url, callers, 2)
	load.waitForResults(t, callers, 5, "results before SIGTERM")

	// Calls in flight when the signal comes, for certain: the chain lock,
	// held from outside, keeps the server's next audit commit waiting, so
	// calls are between their result and their answer. Once the server
	// refuses new work (it is draining), the lock is let go and those
	// calls must finish.
	release := holdAuditChainLock(t, dsn)
	waitForAuditCommitInFlight(t, dsn)
	load.phase.Store(1) // calls sent before this and answered after straddle the signal
	exited := make(chan int, 1)
	go func() { exited <- stop() }()
	waitFor(t, time.Minute, "the server refusing new requests once SIGTERM arrived", func() bool {
		return httpStatus(base+"/healthz") != 200 // 503 while draining, no answer once the listener is closed
	})
	release()
	var code int
	select {
	case code = <-exited:
	case <-time.After(2 * time.Minute):
		t.Fatal("serve did not exit after SIGTERM")
	}
	load.stop()

	answers := load.snapshot()
	t.Logf("answers: %v", tally(answers))
	checkProblems(t, answers)
	if n := tally(answers)[answerInternal]; n != 0 {
		t.Errorf("%d calls got an internal error: shutdown must answer or refuse, not fail", n)
	}
	straddled := 0
	for _, a := range answers {
		if a.sentIn == 0 && a.answeredIn == 1 && a.kind == answerResult {
			straddled++
		}
	}
	if straddled == 0 {
		t.Error("no call in flight when SIGTERM came was answered with its result")
	}
	if code != 0 {
		t.Fatalf("serve exited %d after SIGTERM\n%s", code, stderr.String())
	}
	// The process is gone: whatever it answered is in the trail now.
	checkEveryAnswerAudited(t, ownerConn(t, dsn), callers, answers)
}
