package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCountsFieldsFromTheLastParenthesis(t *testing.T) {
	// A command name may contain spaces and parentheses; utime and stime
	// are then still the 14th and 15th fields.
	line := []byte("4242 (post gres) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 12 30 0 0 20 0 1 0 100 1000 10 18446744073709551615")
	comm, ticks, err := parseStat(line)
	if err != nil || comm != "post gres) (x)" || ticks != 42 {
		t.Fatalf("got %q %d %v, want \"post gres) (x)\" 42", comm, ticks, err)
	}
	if _, _, err := parseStat([]byte("4242 (short) S 1")); err == nil {
		t.Fatal("a short line was accepted")
	}
}

func TestOwnProcessIsMeasured(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
	}
	after, err := CPU(os.Getpid())
	if err != nil || after <= before {
		t.Fatalf("CPU did not grow while spinning: %v -> %v (%v)", before, after, err)
	}
	m, err := ReadMemory(os.Getpid())
	if err != nil || m.RSS <= 0 || m.Peak < m.RSS {
		t.Fatalf("memory %+v, %v", m, err)
	}
	if err := ResetPeak(os.Getpid()); err != nil {
		t.Logf("peak cannot be reset here (%v); the runner reports the lifetime peak then", err)
	}
	if busy, err := MachineCPU(); err != nil || busy <= 0 {
		t.Fatalf("machine CPU %v, %v", busy, err)
	}
	if _, err := Postgres("no_such_database"); err != nil {
		t.Fatal(err)
	}
}
