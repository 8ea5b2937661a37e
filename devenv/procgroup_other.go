//go:build !unix

package main

import "os/exec"

// ownProcessGroup is a no-op where there are no Unix process groups: a
// client that times out is killed, and the processes it started end when
// their pipes close.
func ownProcessGroup(*exec.Cmd) {}
