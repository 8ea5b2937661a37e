//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup makes cmd the leader of a new process group and, when
// its context ends, kills the whole group: an interop client starts
// processes of its own (a stdio server, mcp-remote, the Inspector), and a
// client that timed out must not leave them running.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
