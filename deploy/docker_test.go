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

// imageEnv is the environment the runtime image sets (its ENV lines).
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	stages := parseDockerfile(t)
	out := map[string]string{}
	for _, c := range stages[len(stages)-1].Commands {
		if e, ok := c.(*instructions.EnvCommand); ok {
			for _, kv := range e.Env {
				out[kv.Key] = kv.Value
			}
		}
	}
	return out
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
	t.Run("RunsAsNumericNonRootUser", func(t *testing.T) {
		var user string
		for _, c := range runtime.Commands {
			if u, ok := c.(*instructions.UserCommand); ok {
				user = u.User
			}
		}
		// Numeric, so that Kubernetes' runAsNonRoot can verify it without
		// the image's /etc/passwd; 65532 is distroless' nonroot, the uid
		// the volumes below and deploy/kubernetes are owned by.
		if user != "65532:65532" {
			t.Fatalf("runtime USER %q: want 65532:65532", user)
		}
	})
	t.Run("AuditSpillDirectoryIsAWritableVolume", func(t *testing.T) {
		spill := imageEnv(t)["AUDIT_SPILL_DIR"]
		var volume, owned string
		for _, c := range runtime.Commands {
			switch c := c.(type) {
			case *instructions.VolumeCommand:
				for _, v := range c.Volumes {
					if within(spill, v) {
						volume = v
					}
				}
			case *instructions.CopyCommand:
				if c.Chown == "65532:65532" && within(spill, c.DestPath) {
					owned = c.DestPath
				}
			}
		}
		switch {
		case spill == "":
			t.Fatal("no ENV AUDIT_SPILL_DIR in the runtime image")
		case volume == "":
			t.Fatalf("AUDIT_SPILL_DIR %s is under no VOLUME: the root filesystem is read-only", spill)
		case owned != volume:
			t.Fatalf("VOLUME %s is not created owned by 65532 (COPY --chown=65532:65532 ... %s): the server could not write it", volume, volume)
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
