package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// root is the repository root, relative to this package.
const root = ".."

func parseDockerfile(t *testing.T) []instructions.Stage {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build (build, runtime), got %d stage(s)", len(stages))
	}
	return stages
}

var secretName = regexp.MustCompile(`(?i)(password|secret|token|api_?key|hmac|database_url|redis_url|private)`)

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	runtime := stages[len(stages)-1]

	t.Run("RuntimeImageIsDistrolessNonRoot", func(t *testing.T) {
		if !strings.HasPrefix(runtime.BaseName, "gcr.io/distroless/") || !strings.HasSuffix(runtime.BaseName, ":nonroot") {
			t.Fatalf("runtime base %q: want a distroless :nonroot image (no shell, no package manager)", runtime.BaseName)
		}
	})
	t.Run("RunsAsNonRootUser", func(t *testing.T) {
		var user string
		for _, c := range runtime.Commands {
			if u, ok := c.(*instructions.UserCommand); ok {
				user = u.User
			}
		}
		if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
			t.Fatalf("runtime USER %q: want a non-root user", user)
		}
	})
	t.Run("NoSecretInImageConfiguration", func(t *testing.T) {
		for _, st := range stages {
			for _, c := range st.Commands {
				switch c := c.(type) {
				case *instructions.EnvCommand:
					for _, kv := range c.Env {
						if secretName.MatchString(kv.Key) && !strings.HasSuffix(kv.Key, "_FILE") {
							t.Errorf("stage %q sets %s in the image: secrets belong in run-time files", st.Name, kv.Key)
						}
					}
				case *instructions.ArgCommand:
					for _, a := range c.Args {
						if secretName.MatchString(a.Key) {
							t.Errorf("stage %q takes build arg %s: build args end up in the image history", st.Name, a.Key)
						}
					}
				}
			}
		}
	})
	t.Run("CopiesOnlySourceNeverTheWholeContext", func(t *testing.T) {
		for _, st := range stages {
			for _, c := range st.Commands {
				if cp, ok := c.(*instructions.CopyCommand); ok && cp.From == "" {
					for _, src := range cp.SourcePaths {
						if src == "." || src == "./" || strings.Contains(src, ".env") || strings.Contains(src, ".secrets") {
							t.Errorf("COPY %s: copy named source directories only", src)
						}
					}
				}
			}
		}
	})
	t.Run("StaticBinaryExecFormEntrypointAndHealthcheck", func(t *testing.T) {
		var cgoOff, entry, health bool
		for _, c := range stages[0].Commands {
			if r, ok := c.(*instructions.RunCommand); ok && strings.Contains(strings.Join(r.CmdLine, " "), "CGO_ENABLED=0") {
				cgoOff = true
			}
		}
		for _, c := range runtime.Commands {
			switch c := c.(type) {
			case *instructions.EntrypointCommand:
				entry = !c.PrependShell
			case *instructions.HealthCheckCommand:
				health = c.Health != nil && len(c.Health.Test) > 0
			}
		}
		if !cgoOff || !entry || !health {
			t.Fatalf("CGO_ENABLED=0 build %v, exec-form ENTRYPOINT %v, HEALTHCHECK %v", cgoOff, entry, health)
		}
	})
}

func TestDockerignoreKeepsSecretsOutOfTheBuildContext(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var rules []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, l)
		}
	}
	if len(rules) == 0 || rules[0] != "*" {
		t.Fatal(".dockerignore must start by excluding everything (*) and re-include only what the build copies")
	}
	for _, r := range rules {
		if strings.HasPrefix(r, "!") && (strings.Contains(r, ".env") || strings.Contains(r, ".secrets") || strings.Contains(r, ".git")) {
			t.Errorf(".dockerignore re-includes %s", r)
		}
	}
}
