package main

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// TestVersionIsTheOneSetAtBuildTime builds the binary with the linker
// flags of `make build` (-ldflags "-s -w -X main.version=..."; its
// -trimpath is left out, which changes nothing the linker sets and would
// recompile every package), and asks it for its version in every
// spelling: the answer is that version alone on stdout, with no
// environment at all (no database, no configuration), so it works on any
// image and in any bug report.
func TestVersionIsTheOneSetAtBuildTime(t *testing.T) {
	const want = "v9.8.7-test+abc1234"
	bin := filepath.Join(t.TempDir(), "server")
	build := exec.Command("go", "build", "-ldflags", "-s -w -X main.version="+want, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, arg := range []string{"--version", "version", "-version"} {
		t.Run(arg, func(t *testing.T) {
			cmd := exec.Command(bin, arg)
			cmd.Env = []string{} // nothing configured
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("server %s: %v", arg, err)
			}
			if string(out) != want+"\n" {
				t.Fatalf("server %s printed %q, want %q", arg, out, want+"\n")
			}
		})
	}
}
