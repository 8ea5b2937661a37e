// Command pin-images rewrites every image reference in compose.yaml, the
// Dockerfile and deploy/kubernetes as name:tag@sha256:<digest>, with the
// digest the registry gives for name:tag now. Run it with `make
// pin-images` on a machine where Docker (with buildx) or crane reaches
// the registries, review the diff, and commit it.
//
// It never invents a digest: one is written only when a tool returned it,
// in canonical form. References it cannot resolve stay as they are and are
// reported (exit status 1). Images marked "own" in
// deploy/images-unpinned.txt are never looked up: they are built here, and
// a registry may hold someone else's image under the same name.
//
// With -refresh it also re-resolves references that are already pinned,
// to pick up a tag that has moved (a base image's security release).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/example/order-mcp/deploy/images"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pin-images:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pin-images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "..", "the repository root")
	refresh := fs.Bool("refresh", false, "re-resolve references that already have a digest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	listPath := filepath.Join(*root, "deploy", "images-unpinned.txt")
	allow, err := images.ReadUnpinned(listPath)
	if err != nil {
		return err
	}
	resolve, tool, err := pickResolver()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "resolving digests with %s\n", tool)
	res, err := images.Pin(*root, listPath, allow, resolve, *refresh)
	if err != nil {
		return err
	}
	for _, ref := range sortedKeys(res.Pinned) {
		fmt.Fprintf(stdout, "pinned   %s -> @%s\n", ref, res.Pinned[ref])
	}
	for _, ref := range res.Skipped {
		fmt.Fprintf(stdout, "own      %s (built here; not looked up)\n", ref)
	}
	if len(res.Failed) > 0 {
		for _, ref := range sortedKeys(res.Failed) {
			fmt.Fprintf(stderr, "FAILED   %s: %v\n", ref, res.Failed[ref])
		}
		return fmt.Errorf("%d reference(s) left unpinned", len(res.Failed))
	}
	return nil
}

// pickResolver chooses the first tool available that can name the digest
// of a multi-platform image index: `docker buildx imagetools`, then
// crane, then `docker manifest inspect`, which can only pin
// single-platform images (for an index it lists each platform's manifest,
// and pinning one of those would break the others).
func pickResolver() (images.Resolver, string, error) {
	if exec.Command("docker", "buildx", "version").Run() == nil {
		return buildx, "docker buildx imagetools inspect", nil
	}
	if _, err := exec.LookPath("crane"); err == nil {
		return crane, "crane digest", nil
	}
	if exec.Command("docker", "manifest", "--help").Run() == nil {
		return dockerManifest, "docker manifest inspect (single-platform images only)", nil
	}
	return nil, "", errors.New("needs `docker buildx`, `crane` or `docker manifest`, and access to the registries")
}

func buildx(ref string) (string, error) {
	out, err := output("docker", "buildx", "imagetools", "inspect", "--format", "{{json .Manifest}}", ref)
	if err != nil {
		return "", err
	}
	var m struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("docker buildx imagetools inspect: unexpected output: %w", err)
	}
	return m.Digest, nil
}

func crane(ref string) (string, error) {
	out, err := output("crane", "digest", ref)
	return strings.TrimSpace(string(out)), err
}

func dockerManifest(ref string) (string, error) {
	out, err := output("docker", "manifest", "inspect", "--verbose", ref)
	if err != nil {
		return "", err
	}
	if t := bytes.TrimSpace(out); len(t) > 0 && t[0] == '[' {
		return "", errors.New("a multi-platform image: its index digest needs `docker buildx` or crane")
	}
	var m struct {
		Descriptor struct {
			Digest string `json:"digest"`
		}
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", fmt.Errorf("docker manifest inspect: unexpected output: %w", err)
	}
	return m.Descriptor.Digest, nil
}

func output(name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
