package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/example/order-mcp/deploy/images"
)

var unpinnedList = filepath.Join(root, "deploy", "images-unpinned.txt")

// TestImagesArePinned: every image reference is pinned to a digest, or is
// on the allowance list with a reason. `make pin-images` pins them.
func TestImagesArePinned(t *testing.T) {
	refs, err := images.Find(root)
	if err != nil {
		t.Fatal(err)
	}
	allow, err := images.ReadUnpinned(unpinnedList)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, r := range refs {
		p, err := images.Parse(r.Ref)
		if err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		// The tag says which version the digest is, to the reader and to
		// `make pin-images -refresh`; without one it means "latest".
		if p.Tag == "" {
			t.Errorf("%s has no tag: name the version (name:tag, then pin it)", r)
		}
		if p.Digest != "" {
			if !images.ValidDigest(p.Digest) {
				t.Errorf("%s: digest %q is not sha256:<64 hex>", r, p.Digest)
			}
			if _, listed := allow[r.Ref]; listed {
				t.Errorf("%s is pinned but still on the allowance list", r)
			}
			continue
		}
		if _, ok := allow[r.Ref]; !ok {
			t.Errorf("%s has no digest: run `make pin-images` where Docker runs, or list it in deploy/images-unpinned.txt with the reason", r)
			continue
		}
		used[r.Ref] = true
	}
	for ref, a := range allow {
		if !used[ref] {
			t.Errorf("deploy/images-unpinned.txt:%d allows %s, which nothing uses unpinned: remove the line", a.Line, ref)
		}
	}
}

// TestImageScannerSeesWhatTheParsersSee keeps the text scanner that
// pinning relies on honest: the references it finds in each file are
// exactly the images compose-go, BuildKit and the Kubernetes types find.
func TestImageScannerSeesWhatTheParsersSee(t *testing.T) {
	refs, err := images.Find(root)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string][]string{}
	for _, r := range refs {
		kind := r.File
		if strings.HasPrefix(r.File, "deploy/kubernetes/") {
			kind = "kubernetes"
		}
		found[kind] = append(found[kind], r.Ref)
	}

	var compose []string
	for _, s := range loadCompose(t, "*").Services {
		compose = append(compose, s.Image)
	}
	same(t, "compose.yaml", found["compose.yaml"], compose)

	var docker []string
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if syntax, _, _, ok := parser.DetectSyntax(b); ok {
		docker = append(docker, syntax)
	}
	stages := parseDockerfile(t)
	names := map[string]bool{}
	for _, st := range stages {
		if !names[strings.ToLower(st.BaseName)] && st.BaseName != "scratch" {
			docker = append(docker, st.BaseName)
		}
		names[strings.ToLower(st.Name)] = true
	}
	same(t, "Dockerfile", found["Dockerfile"], docker)

	var k8s []string
	m := loadKubernetes(t)
	pods := []*corev1.PodSpec{}
	for _, d := range all[*appsv1.Deployment](m) {
		pods = append(pods, &d.Spec.Template.Spec)
	}
	for _, j := range all[*batchv1.Job](m) {
		pods = append(pods, &j.Spec.Template.Spec)
	}
	for _, ps := range pods {
		for _, c := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
			k8s = append(k8s, c.Image)
		}
	}
	same(t, "deploy/kubernetes", found["kubernetes"], k8s)
}

func same(t *testing.T, where string, scanned, parsed []string) {
	t.Helper()
	a := slices.Compact(slices.Sorted(slices.Values(scanned)))
	b := slices.Compact(slices.Sorted(slices.Values(parsed)))
	if !slices.Equal(a, b) {
		t.Errorf("%s: the image scanner finds %v, the parser %v", where, a, b)
	}
}
