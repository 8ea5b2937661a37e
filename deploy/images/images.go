// A tag is a name someone can move: `postgres:15` today need not be the
// image it was yesterday. A digest (`postgres:15@sha256:...`) names
// exactly one image, so what was reviewed is what runs. The tag stays in
// front of the digest for the reader; the digest is what is pulled.
//
// References are found in the text, line by line, because pinning must
// rewrite that text and nothing else (comments, order and layout stay as
// they are). The tests in the parent directory check that what is found
// here matches what the real parsers (compose-go, BuildKit, the Kubernetes
// API types) see, so a reference this scanner missed fails a test.

package images

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// Ref is one image reference, where it is written.
type Ref struct {
	File string // path relative to the repository root, with slashes
	Line int    // 1-based
	Ref  string // the reference as written, e.g. postgres:15 or caddy:2@sha256:...
}

func (r Ref) String() string { return fmt.Sprintf("%s:%d: %s", r.File, r.Line, r.Ref) }

// Files are the files that hold image references, relative to the root:
// compose.yaml, the Dockerfile and every YAML file in deploy/kubernetes.
func Files(root string) ([]string, error) {
	files := []string{"compose.yaml", "Dockerfile"}
	k8s, err := filepath.Glob(filepath.Join(root, "deploy", "kubernetes", "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(k8s)
	for _, f := range k8s {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			return nil, err
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files, nil
}

var (
	// yamlImage matches `image: ref` and `- image: ref`, quoted or not,
	// with an optional trailing comment.
	yamlImage = regexp.MustCompile(`^\s*(?:-\s+)?image:\s*["']?([^\s"'#]+)["']?\s*(?:#.*)?$`)
	// dockerSyntax is the BuildKit frontend directive; its value is an
	// image that parses the Dockerfile, and so part of the build.
	dockerSyntax = regexp.MustCompile(`^#\s*syntax\s*=\s*(\S+)\s*$`)
	dockerFrom   = regexp.MustCompile(`(?i)^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$`)
	dockerCopy   = regexp.MustCompile(`(?i)^\s*COPY\s.*--from=(\S+)`)
)

// Find returns every image reference in Files, in file and line order.
func Find(root string) ([]Ref, error) {
	files, err := Files(root)
	if err != nil {
		return nil, err
	}
	var refs []Ref
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		if f == "Dockerfile" {
			refs = append(refs, findDockerfile(f, b)...)
		} else {
			refs = append(refs, findYAML(f, b)...)
		}
	}
	return refs, nil
}

func findYAML(file string, b []byte) []Ref {
	var refs []Ref
	for i, line := range lines(b) {
		if m := yamlImage.FindStringSubmatch(line); m != nil {
			refs = append(refs, Ref{File: file, Line: i + 1, Ref: m[1]})
		}
	}
	return refs
}

// findDockerfile reads the syntax directive (only in the comments that
// open the file, where BuildKit looks for it), FROM lines and COPY --from,
// leaving out references to earlier stages and to scratch.
func findDockerfile(file string, b []byte) []Ref {
	var refs []Ref
	stages := map[string]bool{}
	header := true
	for i, line := range lines(b) {
		trimmed := strings.TrimSpace(line)
		if header {
			if m := dockerSyntax.FindStringSubmatch(trimmed); m != nil {
				refs = append(refs, Ref{File: file, Line: i + 1, Ref: m[1]})
				continue
			}
			header = trimmed == "" || strings.HasPrefix(trimmed, "#")
		}
		if m := dockerFrom.FindStringSubmatch(line); m != nil {
			if !stages[strings.ToLower(m[1])] && m[1] != "scratch" {
				refs = append(refs, Ref{File: file, Line: i + 1, Ref: m[1]})
			}
			if m[2] != "" {
				stages[strings.ToLower(m[2])] = true
			}
			continue
		}
		if m := dockerCopy.FindStringSubmatch(line); m != nil && !stages[strings.ToLower(m[1])] && !isStageIndex(m[1]) {
			refs = append(refs, Ref{File: file, Line: i + 1, Ref: m[1]})
		}
	}
	return refs
}

func isStageIndex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// digestPattern is the only digest form written or accepted: sha256, 64
// lowercase hex digits.
var digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// ValidDigest reports whether d is a sha256 digest in canonical form.
func ValidDigest(d string) bool { return digestPattern.MatchString(d) }

// Parsed is what a reference says: its repository, tag and digest.
type Parsed struct {
	Name   string // the repository as written, e.g. postgres or gcr.io/distroless/static-debian12
	Tag    string // empty when the reference has none (which means "latest")
	Digest string // empty when not pinned
}

// Parse splits a reference with the distribution project's own grammar,
// the one Docker and containerd use.
func Parse(ref string) (Parsed, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return Parsed{}, fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	var p Parsed
	if n, ok := r.(reference.Named); ok {
		p.Name = n.Name()
	}
	if t, ok := r.(reference.Tagged); ok {
		p.Tag = t.Tag()
	}
	if d, ok := r.(reference.Digested); ok {
		p.Digest = d.Digest().String()
	}
	if p.Name == "" {
		return Parsed{}, fmt.Errorf("%q names no repository", ref)
	}
	return p, nil
}

// Pinned reports whether ref carries a valid sha256 digest.
func Pinned(ref string) bool {
	p, err := Parse(ref)
	return err == nil && ValidDigest(p.Digest)
}

// Unpinned lists the references allowed without a digest, and why. It is
// a committed file (deploy/images-unpinned.txt); each line is
//
//	<reference> <class> # <reason>
//
// where class is "own" for images this repository builds (there is no
// registry digest to pin; pinning never touches them) or "pending" for
// public images whose digest could not be resolved yet (`make pin-images`
// resolves them and removes their lines).
type Unpinned map[string]Allowance

// Allowance is one entry of the list.
type Allowance struct {
	Class  string // "own" or "pending"
	Reason string
	Line   int
}

// Classes an allowance may have.
const (
	ClassOwn     = "own"
	ClassPending = "pending"
)

// ReadUnpinned reads the allowance list. Every entry must give a known
// class and a reason; a reference listed twice is an error.
func ReadUnpinned(path string) (Unpinned, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	list := Unpinned{}
	var errs []error
	for i, line := range lines(b) {
		body, reason, _ := strings.Cut(line, "#")
		fields := strings.Fields(body)
		if len(fields) == 0 {
			continue // a comment or a blank line
		}
		reason = strings.TrimSpace(reason)
		switch {
		case len(fields) != 2:
			errs = append(errs, fmt.Errorf("%s:%d: want `<reference> <own|pending> # <reason>`", path, i+1))
		case fields[1] != ClassOwn && fields[1] != ClassPending:
			errs = append(errs, fmt.Errorf("%s:%d: class %q: want own or pending", path, i+1, fields[1]))
		case reason == "":
			errs = append(errs, fmt.Errorf("%s:%d: %s has no reason: say after # why it is not pinned", path, i+1, fields[0]))
		case list[fields[0]] != (Allowance{}):
			errs = append(errs, fmt.Errorf("%s:%d: %s is listed twice", path, i+1, fields[0]))
		default:
			list[fields[0]] = Allowance{Class: fields[1], Reason: reason, Line: i + 1}
		}
	}
	return list, errors.Join(errs...)
}

// Resolver returns the digest a registry gives for ref (name:tag) now.
type Resolver func(ref string) (string, error)

// Result is what Pin did.
type Result struct {
	Pinned  map[string]string // reference as it was -> digest written after it
	Skipped []string          // own images, left as they are
	Failed  map[string]error  // references left unpinned, and why
}

// Pin resolves every reference in Files that has no digest (every
// reference, when refresh is set: a tag may have moved) and rewrites it in
// place as name:tag@digest. Images the allowance list marks as our own are
// never resolved: a registry might well hold someone else's image under
// the same name. A digest is written only when the resolver returned one
// in canonical form; a reference that failed stays exactly as it was.
// Entries of the allowance list whose references are now pinned everywhere
// are removed from it.
func Pin(root, unpinnedPath string, allow Unpinned, resolve Resolver, refresh bool) (Result, error) {
	res := Result{Pinned: map[string]string{}, Failed: map[string]error{}}
	refs, err := Find(root)
	if err != nil {
		return res, err
	}
	byFile := map[string][]Ref{}
	for _, r := range refs {
		byFile[r.File] = append(byFile[r.File], r)
	}
	resolved := map[string]string{} // name:tag -> digest, one lookup per reference
	for _, file := range sortedKeys(byFile) {
		path := filepath.Join(root, filepath.FromSlash(file))
		b, err := os.ReadFile(path)
		if err != nil {
			return res, err
		}
		ls := strings.SplitAfter(string(b), "\n")
		changed := false
		for _, r := range byFile[file] {
			if a, ok := allow[r.Ref]; ok && a.Class == ClassOwn {
				if !slices.Contains(res.Skipped, r.Ref) {
					res.Skipped = append(res.Skipped, r.Ref)
				}
				continue
			}
			p, err := Parse(r.Ref)
			if err != nil {
				res.Failed[r.Ref] = err
				continue
			}
			if p.Digest != "" && !refresh {
				continue
			}
			if p.Tag == "" {
				res.Failed[r.Ref] = fmt.Errorf("%s has no tag: give it one before pinning, so the reader sees which version the digest is", r)
				continue
			}
			// name:tag as written (docker.io/library/... or not), without
			// any old digest.
			tagged, _, _ := strings.Cut(r.Ref, "@")
			d, ok := resolved[tagged]
			if !ok {
				d, err = resolve(tagged)
				if err == nil && !ValidDigest(d) {
					err = fmt.Errorf("the resolver answered %q, which is not a sha256 digest", d)
				}
				if err != nil {
					res.Failed[r.Ref] = err
					continue
				}
				resolved[tagged] = d
			}
			pinned := tagged + "@" + d
			i := r.Line - 1
			if i >= len(ls) || !strings.Contains(ls[i], r.Ref) {
				res.Failed[r.Ref] = fmt.Errorf("%s: the line changed while pinning", r)
				continue
			}
			if pinned != r.Ref {
				ls[i] = strings.Replace(ls[i], r.Ref, pinned, 1)
				changed = true
			}
			res.Pinned[r.Ref] = d
		}
		if changed {
			if err := writeKeepingMode(path, []byte(strings.Join(ls, ""))); err != nil {
				return res, err
			}
		}
	}
	if err := prune(root, unpinnedPath, allow); err != nil {
		return res, err
	}
	return res, nil
}

// prune removes from the allowance list the pending entries that no
// unpinned reference needs any more.
func prune(root, path string, allow Unpinned) error {
	refs, err := Find(root)
	if err != nil {
		return err
	}
	stillUnpinned := map[string]bool{}
	for _, r := range refs {
		if !Pinned(r.Ref) {
			stillUnpinned[r.Ref] = true
		}
	}
	drop := map[int]bool{}
	for ref, a := range allow {
		if a.Class == ClassPending && !stillUnpinned[ref] {
			drop[a.Line] = true
		}
	}
	if len(drop) == 0 {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	ls := strings.SplitAfter(string(b), "\n")
	var out []string
	for i, l := range ls {
		if !drop[i+1] {
			out = append(out, l)
		}
	}
	return writeKeepingMode(path, []byte(strings.Join(out, "")))
}

func writeKeepingMode(path string, b []byte) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, fi.Mode().Perm())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
