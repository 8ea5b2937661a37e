package images

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeDigest is plainly not a real image's: these tests never touch the
// repository's own files, only copies in a temporary directory.
func fakeDigest(c string) string { return "sha256:" + strings.Repeat(c, 64) }

// tree writes a small repository: a compose file, a Dockerfile and one
// Kubernetes manifest, plus an allowance list.
func tree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"compose.yaml": `services:
  app:
    build: .
    image: app:local
  db:
    image: postgres:15   # the database
  cache:
    image: "redis:7-alpine"
`,
		"Dockerfile": `# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
RUN true
FROM build AS test
FROM gcr.io/distroless/static:nonroot
COPY --from=build /out /out
COPY --from=busybox:1.37 /bin/busybox /busybox
`,
		"deploy/kubernetes/deployment.yaml": `spec:
  containers:
    - name: x
      image: registry.example.com/app:1.0.0
    - image: nginx:1.27@` + fakeDigest("e") + `
`,
		"deploy/images-unpinned.txt": `# comment
app:local                        own      # built here
registry.example.com/app:1.0.0   own      # placeholder
postgres:15                      pending  # not resolvable here
redis:7-alpine                   pending  # not resolvable here
`,
	}
	for name, body := range files {
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

func TestFindSeesEveryKindOfReference(t *testing.T) {
	root := tree(t)
	refs, err := Find(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.String())
	}
	want := []string{
		"compose.yaml:4: app:local",
		"compose.yaml:6: postgres:15",
		"compose.yaml:8: redis:7-alpine",
		"Dockerfile:1: docker/dockerfile:1",
		"Dockerfile:2: golang:1.26",
		"Dockerfile:5: gcr.io/distroless/static:nonroot",
		"Dockerfile:7: busybox:1.37",
		"deploy/kubernetes/deployment.yaml:4: registry.example.com/app:1.0.0",
		"deploy/kubernetes/deployment.yaml:5: nginx:1.27@" + fakeDigest("e"),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPinRewritesOnlyWhatItResolved(t *testing.T) {
	root := tree(t)
	list := filepath.Join(root, "deploy", "images-unpinned.txt")
	allow, err := ReadUnpinned(list)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	resolve := func(ref string) (string, error) {
		asked = append(asked, ref)
		switch ref {
		case "postgres:15":
			return fakeDigest("a"), nil
		case "golang:1.26":
			return "sha256:short", nil // garbage from the tool: never written
		case "busybox:1.37":
			return "", errors.New("registry unreachable")
		}
		return fakeDigest("b"), nil
	}
	res, err := Pin(root, list, allow, resolve, false)
	if err != nil {
		t.Fatal(err)
	}

	for _, own := range []string{"app:local", "registry.example.com/app:1.0.0"} {
		for _, a := range asked {
			if a == own {
				t.Errorf("own image %s was looked up in a registry", own)
			}
		}
	}
	for _, ref := range []string{"golang:1.26", "busybox:1.37"} {
		if res.Failed[ref] == nil {
			t.Errorf("%s: want a failure, got %v", ref, res.Pinned[ref])
		}
	}

	compose := read(t, root, "compose.yaml")
	if !strings.Contains(compose, "image: postgres:15@"+fakeDigest("a")+"   # the database\n") {
		t.Errorf("postgres not pinned in place, comment kept:\n%s", compose)
	}
	if !strings.Contains(compose, `image: "redis:7-alpine@`+fakeDigest("b")+`"`) {
		t.Errorf("quoted redis not pinned inside its quotes:\n%s", compose)
	}
	if !strings.Contains(compose, "image: app:local\n") {
		t.Errorf("own image changed:\n%s", compose)
	}
	docker := read(t, root, "Dockerfile")
	for _, want := range []string{
		"# syntax=docker/dockerfile:1@" + fakeDigest("b") + "\n",
		"FROM golang:1.26 AS build\n", // the resolver's garbage was not written
		"FROM build AS test\n",        // a stage, not an image
		"FROM gcr.io/distroless/static:nonroot@" + fakeDigest("b") + "\n",
		"COPY --from=build /out /out\n",
		"COPY --from=busybox:1.37 /bin/busybox /busybox\n", // unresolved: unchanged
	} {
		if !strings.Contains(docker, want) {
			t.Errorf("Dockerfile lacks %q:\n%s", want, docker)
		}
	}
	k8s := read(t, root, "deploy/kubernetes/deployment.yaml")
	if !strings.Contains(k8s, "nginx:1.27@"+fakeDigest("e")) {
		t.Errorf("an already pinned reference changed without -refresh:\n%s", k8s)
	}

	// The pending entries that are now pinned leave the list; own ones stay.
	after, err := ReadUnpinned(list)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := after["postgres:15"]; ok {
		t.Error("postgres:15 is pinned but still on the allowance list")
	}
	if _, ok := after["app:local"]; !ok {
		t.Error("the own image's entry was removed")
	}
}

func TestPinRefreshReresolvesPinnedReferences(t *testing.T) {
	root := tree(t)
	list := filepath.Join(root, "deploy", "images-unpinned.txt")
	allow, err := ReadUnpinned(list)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Pin(root, list, allow, func(string) (string, error) { return fakeDigest("c"), nil }, true); err != nil {
		t.Fatal(err)
	}
	k8s := read(t, root, "deploy/kubernetes/deployment.yaml")
	if !strings.Contains(k8s, "image: nginx:1.27@"+fakeDigest("c")+"\n") {
		t.Errorf("refresh did not replace the old digest:\n%s", k8s)
	}
}

func TestAllowanceListNeedsClassAndReason(t *testing.T) {
	for name, line := range map[string]string{
		"NoReason":     "postgres:15 pending",
		"EmptyReason":  "postgres:15 pending #   ",
		"UnknownClass": "postgres:15 later # soon",
		"NoClass":      "postgres:15 # why",
		"ListedTwice":  "postgres:15 pending # a\npostgres:15 pending # b",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "list.txt")
			if err := os.WriteFile(p, []byte(line+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadUnpinned(p); err == nil {
				t.Fatalf("%q accepted", line)
			}
		})
	}
}

func read(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
