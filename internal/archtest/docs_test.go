package archtest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// docs are the Markdown pages a reader navigates between, relative to the
// repository root.
func docs(t *testing.T, root string) []string {
	t.Helper()
	pages := []string{"README.md", "SECURITY.md", "CHANGELOG.md"}
	more, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range more {
		rel, _ := filepath.Rel(root, p)
		pages = append(pages, rel)
	}
	if len(pages) < 8 {
		t.Fatalf("found only %d pages: the walk is wrong", len(pages))
	}
	return pages
}

var (
	// mdLink is an inline Markdown link or image: its target, up to a
	// space (a title) or the closing parenthesis.
	mdLink = regexp.MustCompile(`\]\(([^)\s]+)[^)]*\)`)
	// fence opens or closes a code block, whose text is not Markdown.
	fence = regexp.MustCompile("(?m)^\\s*```")
	// testName is a test, fuzz test or benchmark named in backticks.
	testName = regexp.MustCompile("`((?:Test|Fuzz|Benchmark)[A-Z][A-Za-z0-9_]*)(?:/[A-Za-z0-9_/]*)?`")
)

// TestDocLinksResolve: every relative link in the README and the docs
// pages names a file or directory of the repository, and every #anchor a
// heading of the page it points to, so that moving or renaming a page or a
// section cannot leave a reader at a dead end.
func TestDocLinksResolve(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, page := range docs(t, root) {
		t.Run(page, func(t *testing.T) {
			text := prose(t, filepath.Join(root, page))
			for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, anchor, _ := strings.Cut(target, "#")
				file := filepath.Join(root, page) // a bare #anchor is on this page
				if path != "" {
					file = filepath.Join(root, filepath.Dir(page), filepath.FromSlash(path))
				}
				if _, err := os.Stat(file); err != nil {
					t.Errorf("link %q: %s does not exist", target, path)
					continue
				}
				if anchor != "" && !hasHeading(t, file, anchor) {
					t.Errorf("link %q: %s has no heading #%s", target, path, anchor)
				}
			}
		})
	}
}

// TestDocTestNamesExist: every test, fuzz test or benchmark a page names in
// backticks (the checklist table names the tests that attack each
// control) exists in some _test.go file, so a renamed or deleted test
// cannot leave the documentation claiming an attack nobody runs.
func TestDocTestNamesExist(t *testing.T) {
	root := filepath.Join("..", "..")
	defined := map[string]bool{}
	def := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)\(`)
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err == nil {
				for _, m := range def.FindAllStringSubmatch(string(b), -1) {
					defined[m[1]] = true
				}
			}
		}
		return nil
	})
	if len(defined) < 50 {
		t.Fatalf("found only %d tests: the walk is wrong", len(defined))
	}
	for _, page := range docs(t, root) {
		b, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range testName.FindAllStringSubmatch(string(b), -1) {
			if !defined[m[1]] {
				t.Errorf("%s names %s, which no _test.go file defines", page, m[1])
			}
		}
	}
}

// prose returns a Markdown file's text without its code blocks.
func prose(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parts := fence.Split(string(b), -1)
	var out []string
	for i, p := range parts {
		if i%2 == 0 {
			out = append(out, p)
		}
	}
	return strings.Join(out, "\n")
}

// hasHeading reports whether the Markdown file at path has a heading whose
// GitHub anchor is anchor.
func hasHeading(t *testing.T, path, anchor string) bool {
	t.Helper()
	if !strings.HasSuffix(path, ".md") {
		return false
	}
	for _, line := range strings.Split(prose(t, path), "\n") {
		if h, ok := strings.CutPrefix(line, "#"); ok && slug(strings.TrimLeft(h, "#")) == anchor {
			return true
		}
	}
	return false
}

// slug is GitHub's anchor for a heading: lower case, punctuation dropped
// (hyphens and underscores kept), spaces made hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
