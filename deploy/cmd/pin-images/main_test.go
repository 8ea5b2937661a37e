package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDigest is plainly not a real image's; it only ever lands in a
// temporary copy.
var fakeDigest = "sha256:" + strings.Repeat("0", 64)

// fakeTool puts a `docker` on PATH that answers like the real one for the
// commands pin-images runs, with the given manifest output.
func fakeTool(t *testing.T, buildx bool, manifestOut string) {
	t.Helper()
	dir := t.TempDir()
	buildxStatus := "1"
	if buildx {
		buildxStatus = "0"
	}
	script := `#!/bin/sh
case "$1 $2" in
"buildx version") exit ` + buildxStatus + `;;
"buildx imagetools") echo '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + fakeDigest + `","size":1}';;
"manifest --help") exit 0;;
"manifest inspect") /bin/cat <<'EOF'
` + manifestOut + `
EOF
;;
*) echo "unexpected: $*" >&2; exit 2;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	// Only this docker: a real one (or crane) must not be found instead.
	t.Setenv("PATH", dir)
}

func repo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range map[string]string{
		"compose.yaml":                "services:\n  db:\n    image: postgres:15\n",
		"Dockerfile":                  "FROM golang:1.26 AS build\n",
		"deploy/images-unpinned.txt":  "postgres:15 pending # not resolvable here\ngolang:1.26 pending # not resolvable here\n",
		"deploy/kubernetes/.keep.txt": "",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestPinsWithBuildxAndEmptiesTheList(t *testing.T) {
	fakeTool(t, true, "")
	root := repo(t)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-root", root}, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	compose, _ := os.ReadFile(filepath.Join(root, "compose.yaml"))
	docker, _ := os.ReadFile(filepath.Join(root, "Dockerfile"))
	list, _ := os.ReadFile(filepath.Join(root, "deploy", "images-unpinned.txt"))
	if !strings.Contains(string(compose), "postgres:15@"+fakeDigest) || !strings.Contains(string(docker), "FROM golang:1.26@"+fakeDigest+" AS build") {
		t.Fatalf("not pinned:\n%s\n%s", compose, docker)
	}
	if strings.TrimSpace(string(list)) != "" {
		t.Fatalf("pinned references are still on the list:\n%s", list)
	}
}

func TestRefusesToPinOnePlatformOfAMultiPlatformImage(t *testing.T) {
	// Without buildx, `docker manifest inspect --verbose` lists an index's
	// platform manifests; pinning one would break the other platforms.
	fakeTool(t, false, `[{"Ref":"x","Descriptor":{"digest":"`+fakeDigest+`"}}]`)
	root := repo(t)
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-root", root}, &stdout, &stderr); err == nil || !strings.Contains(stderr.String(), "multi-platform") {
		t.Fatalf("pinned a multi-platform image to one platform's manifest, or failed otherwise: %v\n%s", err, stderr.String())
	}
	compose, _ := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if strings.Contains(string(compose), "@sha256") {
		t.Fatalf("wrote a digest after failing:\n%s", compose)
	}
}
