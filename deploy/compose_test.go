package deploy

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// ourImage is the image compose builds from the Dockerfile.
const ourImage = "order-mcp:local"

// loadCompose parses compose.yaml as `docker compose` would, with the
// given profiles enabled ("*" enables all of them).
func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "compose.yaml")},
		cli.WithWorkingDirectory(root), cli.WithName("order-mcp"), cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// oneShots are the services that others wait on to exit 0
// (service_completed_successfully): migrate, seed, demo-key. Everything
// else is long-running.
func oneShots(p *types.Project) map[string]bool {
	out := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				out[dep] = true
			}
		}
	}
	return out
}

// serving reports whether s runs `serve` from our image.
func serving(s types.ServiceConfig) bool {
	return s.Image == ourImage && len(s.Command) > 0 && s.Command[0] == "serve"
}

// env returns the value of k in s's environment, "" if unset.
func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

// secretFile returns the compose secret a /run/secrets/<name> path names,
// and whether s mounts it there.
func secretFile(s types.ServiceConfig, p string) (string, bool) {
	for _, sec := range s.Secrets {
		target := sec.Target
		if target == "" {
			target = sec.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		if target == p {
			return sec.Source, true
		}
	}
	return "", false
}

func mounts(s types.ServiceConfig, secret string) bool {
	return slices.ContainsFunc(s.Secrets, func(sec types.ServiceSecretConfig) bool { return sec.Source == secret })
}

func TestCompose(t *testing.T) {
	all := loadCompose(t, "*")

	t.Run("PublishedPortsAreLoopbackOnly", func(t *testing.T) {
		for name, s := range all.Services {
			for _, port := range s.Ports {
				if port.HostIP != "127.0.0.1" {
					t.Errorf("%s publishes %s on %q: bind published ports to 127.0.0.1", name, port.Published, port.HostIP)
				}
			}
		}
	})
	t.Run("SecretsComeFromFilesNeverFromEnvironmentValues", func(t *testing.T) {
		for name, s := range all.Services {
			for k, v := range s.Environment {
				if secretName.MatchString(k) && !strings.HasSuffix(k, "_FILE") && v != nil {
					t.Errorf("%s sets %s inline: pass it as %s_FILE from a compose secret", name, k, k)
				}
				if strings.HasSuffix(k, "_FILE") && v != nil && strings.HasPrefix(*v, "/run/secrets/") {
					if _, ok := secretFile(s, *v); !ok {
						t.Errorf("%s: %s=%s, but the service does not mount that secret", name, k, *v)
					}
				}
			}
		}
		for name, sec := range all.Secrets {
			if !strings.Contains(filepath.ToSlash(sec.File), "/.secrets/") {
				t.Errorf("secret %s comes from %q, not from the git-ignored .secrets/ directory", name, sec.File)
			}
		}
	})
	t.Run("OurContainersAreLockedDown", func(t *testing.T) {
		for name, s := range all.Services {
			if s.Image != ourImage {
				continue
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || len(s.CapAdd) > 0 || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("%s: want read_only, cap_drop ALL, no cap_add and no-new-privileges (got %v, %v, %v, %v)",
					name, s.ReadOnly, s.CapDrop, s.CapAdd, s.SecurityOpt)
			}
			if s.User == "root" || s.User == "0" || strings.HasPrefix(s.User, "0:") {
				t.Errorf("%s runs as root", name)
			}
			if s.Build == nil {
				t.Errorf("%s uses %s without build: compose would try to pull it from a registry", name, ourImage)
			}
		}
	})
	t.Run("ProxyIsLockedDown", func(t *testing.T) {
		s, ok := all.Services["proxy"]
		if !ok {
			t.Fatal("no proxy service")
		}
		// NET_BIND_SERVICE stays in the bounding set only so that the
		// image's binary (which carries it as a file capability) can be
		// executed at all; compose.yaml says why. Nothing else.
		if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Equal(s.CapAdd, []string{"NET_BIND_SERVICE"}) ||
			!slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("proxy: want read_only, cap_drop ALL, only NET_BIND_SERVICE kept, no-new-privileges (got %v, %v, %v, %v)",
				s.ReadOnly, s.CapDrop, s.CapAdd, s.SecurityOpt)
		}
		if s.User == "" || s.User == "root" || s.User == "0" || strings.HasPrefix(s.User, "0:") {
			t.Errorf("proxy runs as %q: want a non-root uid", s.User)
		}
	})
	t.Run("ServersAnswerOnlyTheirOwnHosts", func(t *testing.T) {
		for name, s := range all.Services {
			if serving(s) && env(s, "MCP_ALLOWED_HOSTS") == "" {
				t.Errorf("%s listens on 0.0.0.0 in its container: MCP_ALLOWED_HOSTS must replace the loopback Host check", name)
			}
		}
	})

	t.Run("LongRunningServicesHaveHealthchecksAndRestartPolicies", func(t *testing.T) {
		once := oneShots(all)
		for name, s := range all.Services {
			if once[name] {
				// A one-shot restarted "always" would run again and again;
				// its dependants already judged its first exit.
				if s.Restart != types.RestartPolicyNo && !strings.HasPrefix(s.Restart, types.RestartPolicyOnFailure) {
					t.Errorf("one-shot %s: restart %q, want \"no\" or on-failure", name, s.Restart)
				}
				continue
			}
			if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[0] == "NONE" {
				t.Errorf("long-running %s has no healthcheck", name)
			}
			if s.Restart != types.RestartPolicyUnlessStopped && s.Restart != types.RestartPolicyAlways {
				t.Errorf("long-running %s: restart %q, want unless-stopped", name, s.Restart)
			}
		}
		if len(once) == 0 {
			t.Error("no one-shot services found: the migrate, seed and demo-key steps are gone")
		}
	})
	t.Run("ServersUseTheImagesOwnHealthcheck", func(t *testing.T) {
		for name, s := range all.Services {
			if serving(s) && (s.HealthCheck == nil || !slices.Equal(s.HealthCheck.Test, types.HealthCheckTest{"CMD", "/server", "healthcheck"})) {
				t.Errorf("%s: healthcheck %v, want [CMD /server healthcheck] (the image has no shell)", name, s.HealthCheck)
			}
		}
	})

	t.Run("ServersConnectAsTheLoginRoleNeverTheOwner", func(t *testing.T) {
		migrate, ok := all.Services["migrate"]
		if !ok {
			t.Fatal("no migrate service")
		}
		owner, ok := secretFile(migrate, env(migrate, "DATABASE_URL_FILE"))
		if !ok {
			t.Fatal("migrate has no DATABASE_URL_FILE from a secret")
		}
		if env(migrate, "DB_LOGIN_ROLE") == "" {
			t.Error("migrate does not create the login role: set DB_LOGIN_ROLE")
		}
		if _, ok := secretFile(migrate, env(migrate, "DB_LOGIN_PASSWORD_FILE")); !ok {
			t.Error("migrate has no DB_LOGIN_PASSWORD_FILE from a secret")
		}
		n := 0
		for name, s := range all.Services {
			if !serving(s) {
				continue
			}
			n++
			app, ok := secretFile(s, env(s, "DATABASE_URL_FILE"))
			switch {
			case !ok:
				t.Errorf("%s: DATABASE_URL_FILE is not a mounted secret", name)
			case app == owner:
				t.Errorf("%s connects with the owner's URL (secret %s): give it the login role's", name, owner)
			case !strings.HasSuffix(all.Secrets[app].File, "/.secrets/app_database_url"):
				t.Errorf("%s: DATABASE_URL from %s, want .secrets/app_database_url (make compose-secrets)", name, all.Secrets[app].File)
			}
			if mounts(s, owner) {
				t.Errorf("%s mounts the owner's URL (%s): it must not be able to read it", name, owner)
			}
		}
		if n == 0 {
			t.Fatal("no service runs serve")
		}
	})

	t.Run("TheServerStartsAfterItsKey", func(t *testing.T) {
		key, ok := all.Services["demo-key"]
		if !ok {
			t.Fatal("no demo-key service")
		}
		if !slices.Equal(key.Command[:2], []string{"keys", "create"}) || !slices.Contains(key.Command, "--replace") {
			t.Errorf("demo-key runs %v: want keys create ... --replace (one key per name, however often compose starts)", key.Command)
		}
		// serve refuses a non-loopback listener while no key is active, so
		// every serving service must wait for the key.
		for name, s := range all.Services {
			if serving(s) && s.DependsOn["demo-key"].Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s does not wait for demo-key to complete", name)
			}
		}
	})

	t.Run("AuditSpillDirectoryIsAVolumePerServer", func(t *testing.T) {
		spill := imageEnv(t)["AUDIT_SPILL_DIR"]
		if spill == "" {
			t.Fatal("the image sets no AUDIT_SPILL_DIR")
		}
		sources := map[string]string{}
		for name, s := range all.Services {
			if s.Image != ourImage {
				continue
			}
			dir := spill
			if v := env(s, "AUDIT_SPILL_DIR"); v != "" {
				dir = v
			}
			var found bool
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume && v.Source != "" && !v.ReadOnly && within(dir, v.Target) {
					found = true
					if other, dup := sources[v.Source]; dup {
						t.Errorf("%s and %s share the spill volume %s: each writer needs its own", name, other, v.Source)
					}
					sources[v.Source] = name
				}
			}
			if serving(s) && !found {
				t.Errorf("%s: %s is on the read-only root filesystem: mount a named volume over it", name, dir)
			}
		}
	})

	t.Run("MetricsArePublishedOnLoopbackOnlyAndApartFromMCP", func(t *testing.T) {
		server, ok := all.Services["server"]
		if !ok {
			t.Fatal("no server service")
		}
		for name, s := range all.Services {
			addr := env(s, "MCP_METRICS_ADDR")
			if !serving(s) || addr == "" {
				continue
			}
			_, mport, err := net.SplitHostPort(addr)
			_, hport, herr := net.SplitHostPort(env(s, "MCP_HTTP_ADDR"))
			if err != nil || herr != nil || mport == hport {
				t.Errorf("%s: metrics on %q and MCP on %q: want two ports", name, addr, env(s, "MCP_HTTP_ADDR"))
			}
		}
		_, mport, _ := net.SplitHostPort(env(server, "MCP_METRICS_ADDR"))
		var published bool
		for _, p := range server.Ports {
			if p.Target == mustAtoi(t, mport) {
				published = p.HostIP == "127.0.0.1"
			}
		}
		if !published {
			t.Errorf("server: metrics port %s is not published on 127.0.0.1", mport)
		}
	})
}

// TestComposeScaleProfile checks the three replicas behind the proxy: the
// proxy's fixed address is the only one the replicas trust, only the proxy
// is published, and the replicas share Redis.
func TestComposeScaleProfile(t *testing.T) {
	def := loadCompose(t)
	scale := loadCompose(t, "scale")

	var replicas []string
	for name, s := range scale.Services {
		if _, inDefault := def.Services[name]; !inDefault && serving(s) {
			replicas = append(replicas, name)
		}
	}
	slices.Sort(replicas)
	if len(replicas) != 3 {
		t.Fatalf("profile scale adds %d serving replicas %v, want 3", len(replicas), replicas)
	}
	proxy, ok := scale.Services["proxy"]
	if !ok {
		t.Fatal("profile scale has no proxy service")
	}
	if _, ok := def.Services["proxy"]; ok {
		t.Fatal("the proxy runs without --profile scale")
	}

	t.Run("OnlyTheProxyIsPublished", func(t *testing.T) {
		for _, name := range replicas {
			if len(scale.Services[name].Ports) > 0 {
				t.Errorf("%s publishes ports: only the proxy may", name)
			}
		}
		if len(proxy.Ports) != 1 || proxy.Ports[0].HostIP != "127.0.0.1" {
			t.Errorf("proxy ports %+v: want one, on 127.0.0.1", proxy.Ports)
		}
	})

	t.Run("ReplicasTrustExactlyTheProxysFixedAddress", func(t *testing.T) {
		if len(proxy.Networks) != 1 {
			t.Fatalf("proxy is on networks %v: want one, the edge network", keys(proxy.Networks))
		}
		var netName string
		var cfg *types.ServiceNetworkConfig
		for netName, cfg = range proxy.Networks {
		}
		if cfg == nil || cfg.Ipv4Address == "" {
			t.Fatalf("proxy has no fixed ipv4_address on %s", netName)
		}
		addr := netip.MustParseAddr(cfg.Ipv4Address)
		ipam := scale.Networks[netName].Ipam
		if len(ipam.Config) != 1 {
			t.Fatalf("network %s: want one fixed subnet", netName)
		}
		subnet, err := netip.ParsePrefix(ipam.Config[0].Subnet)
		if err != nil || !subnet.Contains(addr) {
			t.Fatalf("proxy address %s is not in %s's subnet %q", addr, netName, ipam.Config[0].Subnet)
		}
		// Docker hands out addresses from ip_range to everything else, so
		// a fixed address outside it cannot be taken by another container.
		dyn, err := netip.ParsePrefix(ipam.Config[0].IPRange)
		if err != nil || dyn.Contains(addr) || !subnet.Contains(dyn.Addr()) {
			t.Errorf("ip_range %q: want a part of %s that excludes the proxy's %s", ipam.Config[0].IPRange, subnet, addr)
		}
		for _, name := range replicas {
			s := scale.Services[name]
			if got := env(s, "TRUSTED_PROXIES"); got != addr.String() && got != addr.String()+"/32" {
				t.Errorf("%s: TRUSTED_PROXIES=%q, want exactly the proxy's %s", name, got, addr)
			}
			if _, ok := s.Networks[netName]; !ok {
				t.Errorf("%s is not on %s, where the proxy reaches it", name, netName)
			}
		}
		// The server in the default profile is reached directly: it must
		// trust nobody to speak for its clients.
		if v := env(def.Services["server"], "TRUSTED_PROXIES"); v != "" {
			t.Errorf("server (no proxy in front) trusts %q", v)
		}
	})

	t.Run("ReplicasShareRedisAndNameTheProxysAddress", func(t *testing.T) {
		host := "127.0.0.1:" + proxy.Ports[0].Published
		for _, name := range replicas {
			s := scale.Services[name]
			if env(s, "REDIS_URL_FILE") == "" {
				t.Errorf("%s has no REDIS_URL_FILE: limits and lockouts would be per replica", name)
			}
			if got := env(s, "MCP_RESOURCE_URL"); got != "http://"+host+"/mcp" {
				t.Errorf("%s: MCP_RESOURCE_URL=%q, want the proxy's published http://%s/mcp", name, got, host)
			}
			if !slices.Contains(strings.Split(env(s, "MCP_ALLOWED_HOSTS"), ","), host) {
				t.Errorf("%s: MCP_ALLOWED_HOSTS=%q lacks %s, the Host clients of the proxy send", name, env(s, "MCP_ALLOWED_HOSTS"), host)
			}
		}
	})

	t.Run("ProxyMountsItsConfigurationReadOnly", func(t *testing.T) {
		var ok bool
		for _, v := range proxy.Volumes {
			if v.Type == types.VolumeTypeBind && v.ReadOnly && filepath.ToSlash(v.Source) == filepath.ToSlash(mustAbs(t, filepath.Join(root, "deploy", "compose", "Caddyfile"))) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("proxy does not mount deploy/compose/Caddyfile read-only: %+v", proxy.Volumes)
		}
	})
}

// TestComposeSecretsTargetWritesEverySecret runs `make compose-secrets` in
// a scratch directory and checks that it writes every file compose.yaml
// reads, private to the user, and that the server's URL names the role
// migrate creates, with the password migrate gives it.
func TestComposeSecretsTargetWritesEverySecret(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatal("make is needed to run the compose-secrets target")
	}
	dir := t.TempDir()
	out, err := exec.Command("make", "-s", "-C", dir, "-f", mustAbs(t, filepath.Join(root, "Makefile")), "compose-secrets").CombinedOutput()
	if err != nil {
		t.Fatalf("make compose-secrets: %v\n%s", err, out)
	}
	p := loadCompose(t, "*")
	secrets := filepath.Join(dir, ".secrets")
	if fi, err := os.Stat(secrets); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf(".secrets: %v %v, want a directory with mode 700", fi.Mode(), err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(secrets, name))
		if err != nil {
			t.Fatalf("make compose-secrets did not write %s: %v", name, err)
		}
		return strings.TrimSpace(string(b))
	}
	for name, sec := range p.Secrets {
		read(path.Base(filepath.ToSlash(sec.File)))
		if fi, _ := os.Stat(filepath.Join(secrets, path.Base(filepath.ToSlash(sec.File)))); fi.Mode().Perm()&0o044 == 0 {
			t.Errorf("secret %s is not readable by the containers' non-root users", name)
		}
	}
	role := env(p.Services["migrate"], "DB_LOGIN_ROLE")
	appURL := read("app_database_url")
	if want := "postgres://" + role + ":" + read("db_login_password") + "@db:5432/"; !strings.HasPrefix(appURL, want) {
		t.Errorf("app_database_url does not name the login role %s with its password from db_login_password", role)
	}
	if !strings.HasPrefix(read("database_url"), "postgres://postgres:"+read("db_password")+"@db:5432/") {
		t.Error("database_url does not name the owner (postgres) with db_password")
	}
	if read("database_url") == appURL {
		t.Error("the owner's and the server's URLs are the same")
	}
}

// within reports whether dir is target or below it.
func within(dir, target string) bool {
	dir, target = path.Clean(dir), path.Clean(target)
	return dir == target || strings.HasPrefix(dir, target+"/")
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustAtoi(t *testing.T, s string) uint32 {
	t.Helper()
	var n uint32
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("%q is not a port", s)
		}
		n = n*10 + uint32(c-'0')
	}
	return n
}
