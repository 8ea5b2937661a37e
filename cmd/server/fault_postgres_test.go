package main

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/faultenv"
)

// TestFaultPostgresRestartedUnderLoad: the database goes away under a
// serving process, twice, while clients call tools continuously: once a
// restart, once an outage long enough that the audit writer gives up on
// Postgres and spills records to local disk. The server rides both out
// without being restarted itself, and the promises hold:
//
//   - every result a client got has exactly one audit record, and every
//     "Internal error, reference <id>" a client got names exactly one
//     record, which says the call failed or its result was withheld (once
//     the spill has been replayed into the chain);
//   - no client ever sees what went wrong inside (driver, network or
//     file-system errors, Go type names);
//   - /readyz says 503 while Postgres is down and 200 once it is back;
//   - `server audit verify` finds the chain intact, replayed records
//     included;
//   - the same process serves throughout and exits 0 on SIGTERM.
func TestFaultPostgresRestartedUnderLoad(t *testing.T) {
	pg := faultenv.Postgres(t)
	spill := t.TempDir()
	env := faultEnv(pg.URL(), spill)
	cli(t, env, "migrate")
	cli(t, env, "seed")
	callers := newFaultCallers(t, env, ownerConn(t, pg.URL()))
	url, stderr, stop := startServe(t, env)
	base := strings.TrimSuffix(url, "/mcp")

	load := startFaultLoad(t, url, callers, 2)
	load.waitForResults(t, callers, 5, "results before any fault")

	// A restart: connections in the pool die, new ones succeed.
	pg.Restart()
	load.waitForResults(t, callers, 5, "results after Postgres restarted")

	// An outage with commits in flight. The chain lock, held from outside,
	// makes the server's next audit commit wait in Postgres, so the stop
	// is certain to catch tool calls whose results are computed and whose
	// records are not yet committed: the writer retries, gives up, spills
	// them, and their clients get an internal error instead of the result.
	release := holdAuditChainLock(t, pg.URL())
	waitForAuditCommitInFlight(t, pg.URL())
	pg.Stop()
	release()
	waitFor(t, time.Minute, "/readyz answering 503 while Postgres is down", func() bool {
		return httpStatus(base+"/readyz") == 503
	})
	waitFor(t, time.Minute, "a spill file for the records Postgres could not take", func() bool {
		return spillFiles(t, spill) > 0
	})
	pg.Start()
	waitFor(t, time.Minute, "/readyz answering 200 once Postgres is back", func() bool {
		return httpStatus(base+"/readyz") == 200
	})
	waitFor(t, time.Minute, "the spill directory replayed into the trail", func() bool {
		return spillFiles(t, spill) == 0
	})
	load.waitForResults(t, callers, 5, "results after the outage")
	load.stop()

	answers := load.snapshot()
	t.Logf("answers: %v", tally(answers))
	checkProblems(t, answers)
	db := ownerConn(t, pg.URL()) // the connections made before the faults died with them
	if n := tally(answers)[answerUnreached]; n != 0 {
		t.Errorf("%d calls got no answer at all; the server was up throughout", n)
	}
	if tally(answers)[answerInternal] == 0 {
		t.Error("no client got an internal error, yet commits were in flight when Postgres stopped")
	}
	checkEveryAnswerAudited(t, db, callers, answers)
	if left, _ := os.ReadDir(spill); len(left) != 0 {
		t.Errorf("the spill directory still holds %d files after the replay", len(left))
	}

	// The replayed records are in the chain, which verifies.
	var replayed int
	if err := db.QueryRow(context.Background(), "SELECT count(*) FROM audit_log WHERE replayed").Scan(&replayed); err != nil {
		t.Fatal(err)
	}
	if replayed == 0 {
		t.Error("no record in the trail is marked replayed")
	}
	out := cli(t, env, "audit", "verify")
	if !strings.Contains(out, "audit trail intact") {
		t.Errorf("audit verify printed %q", out)
	}
	m := regexp.MustCompile(`(\d+) records were spilled during an outage and appended afterwards \(replayed\)`).FindStringSubmatch(out)
	if m == nil || m[1] != strconv.Itoa(replayed) {
		t.Errorf("audit verify does not report the %d replayed records: %q", replayed, out)
	}

	// Still the process started above: nothing restarted it, it answers on
	// its port, and it exits cleanly.
	if code := httpStatus(base + "/healthz"); code != 200 {
		t.Errorf("/healthz after the faults: %d", code)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM\n%s", code, stderr.String())
	}
}

// TestFaultLostCommitAcknowledgementIsAuditedAsWithheld: Postgres goes
// away after a tool call's audit record is durable and before the server
// hears that it is. The server cannot know the record is in the trail: it
// retries, spills the record marked "withheld", and withholds the result,
// so the client gets an internal error. Once the spill is replayed, the
// trail must say what the client got: the call's one record must not say
// "ok", and the principal's ok records must match the results its client
// got.
//
// The fault is placed deterministically: commits are made to wait for a
// synchronous standby that does not exist (faultenv's StallCommits), so
// the record is durable and unacknowledged for as long as the test needs,
// and Postgres is stopped then. A restart under load hits the same window
// by chance, often.
func TestFaultLostCommitAcknowledgementIsAuditedAsWithheld(t *testing.T) {
	pg := faultenv.Postgres(t)
	spill := t.TempDir()
	env := faultEnv(pg.URL(), spill)
	cli(t, env, "migrate")
	cli(t, env, "seed")
	caller := newFaultCallers(t, env, ownerConn(t, pg.URL()))[0]
	url, stderr, stop := startServe(t, env)
	client := newFaultClient(url, 1)

	// A first call, committed and answered as usual (it also records the
	// key's use, the one write authentication makes, once a minute).
	answers := []faultAnswer{client.call(caller, caller.calls[0])}
	if answers[0].kind != answerResult {
		t.Fatalf("first call: %+v", answers[0])
	}

	pg.StallCommits()
	answered := make(chan faultAnswer, 1)
	go func() { answered <- client.call(caller, caller.calls[0]) }()
	waitFor(t, time.Minute, "the call's audit commit durable and not yet acknowledged", func() bool {
		return pg.StalledCommits() > 0
	})
	pg.Stop()
	var a faultAnswer
	select {
	case a = <-answered:
	case <-time.After(2 * time.Minute):
		t.Fatal("no answer after Postgres stopped")
	}
	if a.kind != answerInternal {
		t.Fatalf("the call whose record could not be confirmed: %+v, want an internal error", a)
	}
	answers = append(answers, a)
	if spillFiles(t, spill) == 0 {
		t.Fatal("the result was withheld, and its record is not in the spill directory")
	}

	pg.Start()
	pg.ResumeCommits()
	waitFor(t, time.Minute, "the spill directory replayed into the trail", func() bool {
		return spillFiles(t, spill) == 0
	})
	checkEveryAnswerAudited(t, ownerConn(t, pg.URL()), []*faultCaller{caller}, answers)
	if out := cli(t, env, "audit", "verify"); !strings.Contains(out, "audit trail intact") {
		t.Errorf("audit verify printed %q", out)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exited %d after SIGTERM\n%s", code, stderr.String())
	}
}

// spillFiles counts the spill files waiting to be replayed (claimed ones
// and ones set aside as unreadable included).
func spillFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.Contains(e.Name(), ".audit.json") {
			n++
		}
	}
	return n
}
