package deploy

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		cli.WithWorkingDirectory(root), cli.WithName("order-mcp"), cli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompose(t *testing.T) {
	p := loadCompose(t)

	t.Run("PublishedPortsAreLoopbackOnly", func(t *testing.T) {
		for name, s := range p.Services {
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes %s on %q: bind published ports to 127.0.0.1", name, port.Published, port.HostIP)
				}
			}
		}
	})
	t.Run("SecretsComeFromFilesNeverFromEnvironmentValues", func(t *testing.T) {
		for name, s := range p.Services {
			for k, v := range s.Environment {
				if secretName.MatchString(k) && !strings.HasSuffix(k, "_FILE") && v != nil {
					t.Errorf("%s sets %s inline: pass it as %s_FILE from a compose secret", name, k, k)
				}
			}
		}
		for name, sec := range p.Secrets {
			if !strings.Contains(filepath.ToSlash(sec.File), "/.secrets/") {
				t.Errorf("secret %s comes from %q, not from the git-ignored .secrets/ directory", name, sec.File)
			}
		}
	})
	t.Run("ServerContainersAreLockedDown", func(t *testing.T) {
		for name, s := range p.Services {
			if s.Image != "order-mcp:local" {
				continue
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("%s: want read_only, cap_drop ALL and no-new-privileges (got %v, %v, %v)",
					name, s.ReadOnly, s.CapDrop, s.SecurityOpt)
			}
			if s.User == "root" || s.User == "0" {
				t.Errorf("%s runs as root", name)
			}
		}
	})
	t.Run("ServerAnswersOnlyItsOwnHosts", func(t *testing.T) {
		s, ok := p.Services["server"]
		if !ok {
			t.Fatal("no server service")
		}
		hosts := s.Environment["MCP_ALLOWED_HOSTS"]
		if hosts == nil || *hosts == "" {
			t.Fatal("server listens on 0.0.0.0 in its container: MCP_ALLOWED_HOSTS must replace the loopback Host check")
		}
	})
}
