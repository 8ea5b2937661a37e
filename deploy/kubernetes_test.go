package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

var k8sDir = filepath.Join(root, "deploy", "kubernetes")

// kinds maps each apiVersion/kind the manifests may use to the upstream
// type it is decoded into. Anything else is refused: a kind nobody checks
// is a kind nobody reviewed.
var kinds = map[string]func() any{
	"v1/Namespace":                           func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":                      func() any { return &corev1.ServiceAccount{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"batch/v1/Job":                           func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
}

// kustomization is the part of kustomize's schema this directory uses,
// decoded strictly: a field kustomize knows but this test does not is
// refused too, so that nobody adds a transformation (patches, images,
// labels) the checks below would not see.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
}

// manifests is everything in deploy/kubernetes, decoded.
type manifests struct {
	kustomization kustomization
	objects       []any // pointers to the upstream types in kinds
	files         map[any]string
}

// strictDecode decodes one YAML document into v the way the API server's
// strict field validation does: YAML to JSON refusing duplicate keys, then
// sigs.k8s.io/json, which refuses unknown fields and, unlike
// encoding/json, matches field names case-sensitively. (encoding/json would
// take `readonlyRootFilesystem` for readOnlyRootFilesystem; the API server
// drops it, and the container runs with a writable root.)
func strictDecode(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func loadKubernetes(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{files: map[any]string{}}
	b, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := strictDecode(b, &m.kustomization); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	for _, res := range m.kustomization.Resources {
		docs, err := yamlDocuments(filepath.Join(k8sDir, res))
		if err != nil {
			t.Fatalf("%s: %v", res, err)
		}
		for i, doc := range docs {
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s document %d: %v", res, i+1, err)
			}
			newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
			if !ok {
				t.Fatalf("%s document %d: %s %s is not a kind this test knows; add it to kinds, with checks", res, i+1, tm.APIVersion, tm.Kind)
			}
			obj := newObj()
			if err := strictDecode(doc, obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", res, i+1, tm.Kind, err)
			}
			m.objects = append(m.objects, obj)
			m.files[obj] = res
		}
	}
	return m
}

func yamlDocuments(p string) ([][]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := k8syaml.NewYAMLReader(bufio.NewReader(f))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(append(out, l...), '\n')
		}
	}
	return out
}

// only returns the one object of type T, failing unless there is exactly one.
func only[T any](t *testing.T, m *manifests) T {
	t.Helper()
	all := all[T](m)
	if len(all) != 1 {
		var zero T
		t.Fatalf("want one %T, found %d", zero, len(all))
	}
	return all[0]
}

func all[T any](m *manifests) []T {
	var out []T
	for _, o := range m.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestStrictDecodingRefusesWhatTheAPIServerWouldDrop(t *testing.T) {
	// Each of these would leave the root filesystem writable without a
	// word: the API server drops a field it does not know.
	for name, field := range map[string]string{
		"UnknownField":    "readOnlyRoot: true",
		"WrongCase":       "readonlyRootFilesystem: true",
		"DuplicatedField": "readOnlyRootFilesystem: true\n            readOnlyRootFilesystem: false",
	} {
		t.Run(name, func(t *testing.T) {
			doc := "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n" +
				"        - name: x\n          securityContext:\n            " + field + "\n"
			if err := strictDecode([]byte(doc), &appsv1.Deployment{}); err == nil {
				t.Fatalf("accepted %q", field)
			}
		})
	}
}

func TestKubernetes(t *testing.T) {
	m := loadKubernetes(t)

	t.Run("KustomizationListsEveryManifest", func(t *testing.T) {
		k := m.kustomization
		if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
			t.Errorf("kustomization.yaml is %s %s", k.APIVersion, k.Kind)
		}
		files, _ := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
		for _, f := range files {
			if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(k.Resources, b) {
				t.Errorf("%s is not listed in kustomization.yaml's resources: it would never be applied", b)
			}
		}
		ns := only[*corev1.Namespace](t, m)
		if k.Namespace == "" || k.Namespace != ns.Name {
			t.Errorf("kustomization namespace %q, Namespace object %q: want the same", k.Namespace, ns.Name)
		}
		for _, o := range m.objects {
			if meta := objectMeta(o); meta.Namespace != "" && meta.Namespace != k.Namespace {
				t.Errorf("%s %s sets namespace %q", m.files[o], meta.Name, meta.Namespace)
			}
		}
	})

	t.Run("NamespaceEnforcesRestrictedPodSecurity", func(t *testing.T) {
		ns := only[*corev1.Namespace](t, m)
		if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("namespace %s does not enforce the restricted Pod Security Standard", ns.Name)
		}
	})

	dep := only[*appsv1.Deployment](t, m)
	job := only[*batchv1.Job](t, m)
	pods := map[string]*corev1.PodTemplateSpec{"Deployment " + dep.Name: &dep.Spec.Template, "Job " + job.Name: &job.Spec.Template}

	t.Run("PodsAreHardened", func(t *testing.T) {
		for name, pt := range pods {
			checkHardenedPod(t, name, &pt.Spec)
		}
		if sa := only[*corev1.ServiceAccount](t, m); sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s mounts its token by default", sa.Name)
		}
	})

	t.Run("SecretsAreFilesReferencedByFileVariables", func(t *testing.T) {
		secretsOf := map[string]string{}
		for name, pt := range pods {
			secretsOf[name] = checkSecretsAreFiles(t, name, &pt.Spec)
		}
		app, owner := secretsOf["Deployment "+dep.Name], secretsOf["Job "+job.Name]
		if app == "" || owner == "" || app == owner {
			t.Errorf("the server reads secret %q and migrate %q: want two secrets, the owner's URL out of the server's reach", app, owner)
		}
	})

	t.Run("AuditSpillDirectoryIsAWritableVolume", func(t *testing.T) {
		def := imageEnv(t)["AUDIT_SPILL_DIR"]
		for name, pt := range pods {
			for _, c := range pt.Spec.Containers {
				dir := envValue(c, "AUDIT_SPILL_DIR", def)
				vm, ok := mountFor(c, dir)
				if !ok || vm.ReadOnly {
					t.Errorf("%s/%s: %s is on the read-only root filesystem: mount an emptyDir or a volume claim there", name, c.Name, dir)
					continue
				}
				v := volume(&pt.Spec, vm.Name)
				if v == nil || (v.EmptyDir == nil && v.PersistentVolumeClaim == nil && v.Ephemeral == nil) {
					t.Errorf("%s/%s: %s is mounted from %+v: want an emptyDir or a volume claim", name, c.Name, dir, v)
				}
				if v != nil && v.EmptyDir != nil && v.EmptyDir.SizeLimit == nil {
					t.Errorf("%s/%s: the spill emptyDir has no sizeLimit: a long database outage could fill the node's disk", name, c.Name)
				}
			}
		}
	})

	t.Run("ServerRunsInProductionBehindTheProxy", func(t *testing.T) {
		c := dep.Spec.Template.Spec.Containers[0]
		want := map[string]string{
			"MCP_ENV":                     "production",
			"MCP_HTTP_ADDR":               "0.0.0.0:8080",
			"MCP_TLS_TERMINATED_BY_PROXY": "true",
			"MCP_RESOURCE_URL":            "https://mcp.example.com/mcp",
			"MCP_METRICS_ADDR":            "0.0.0.0:9464",
		}
		for k, v := range want {
			if got := envValue(c, k, ""); got != v {
				t.Errorf("%s=%q, want %q", k, got, v)
			}
		}
		if !slices.Equal(c.Args, []string{"serve"}) {
			t.Errorf("server args %v, want [serve]", c.Args)
		}
		proxies := envValue(c, "TRUSTED_PROXIES", "")
		if proxies == "" {
			t.Error("TRUSTED_PROXIES is unset: behind the ingress controller every client would share its address")
		}
		for _, p := range strings.Split(proxies, ",") {
			if pf, err := netip.ParsePrefix(strings.TrimSpace(p)); err != nil || pf.Bits() == 0 {
				t.Errorf("TRUSTED_PROXIES entry %q: want a CIDR, never everything", p)
			}
		}
		if u, err := url.Parse(envValue(c, "MCP_RESOURCE_URL", "")); err != nil || u.Scheme != "https" {
			t.Errorf("MCP_RESOURCE_URL must be https in production")
		}
		if envValue(c, "MCP_OAUTH_ISSUER", "") == "" {
			t.Error("no MCP_OAUTH_ISSUER: serve refuses to start beyond loopback while nobody could authenticate")
		}
	})

	t.Run("PortsAndProbes", func(t *testing.T) {
		c := dep.Spec.Template.Spec.Containers[0]
		if port(t, c, intstr.FromString("http")) != 8080 || port(t, c, intstr.FromString("metrics")) != 9464 {
			t.Errorf("container ports %+v: want http 8080 and metrics 9464", c.Ports)
		}
		for _, p := range []struct {
			what  string
			probe *corev1.Probe
			path  string
		}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
			if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || port(t, c, p.probe.HTTPGet.Port) != 8080 {
				t.Errorf("%s probe %+v: want GET %s on 8080", p.what, p.probe, p.path)
			}
		}
	})

	t.Run("ResourcesAreBounded", func(t *testing.T) {
		for name, pt := range pods {
			for _, c := range pt.Spec.Containers {
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, hasReq := c.Resources.Requests[r]
					lim, hasLim := c.Resources.Limits[r]
					if !hasReq || !hasLim || req.Cmp(lim) > 0 {
						t.Errorf("%s/%s %s: request %v limit %v, want both, request <= limit", name, c.Name, r, req.String(), lim.String())
					}
				}
				if v := envValue(c, "GOMEMLIMIT", ""); v != "" {
					lim := c.Resources.Limits[corev1.ResourceMemory]
					q, err := resource.ParseQuantity(strings.TrimSuffix(v, "B"))
					if err != nil || q.Cmp(lim) >= 0 {
						t.Errorf("%s/%s: GOMEMLIMIT %s must be below the memory limit %s", name, c.Name, v, lim.String())
					}
				}
			}
		}
	})

	t.Run("ServiceReachesTheServerPorts", func(t *testing.T) {
		svc := only[*corev1.Service](t, m)
		if !selects(svc.Spec.Selector, dep.Spec.Template.Labels) || selects(svc.Spec.Selector, job.Spec.Template.Labels) {
			t.Errorf("Service selector %v: want the server pods only", svc.Spec.Selector)
		}
		for _, p := range svc.Spec.Ports {
			port(t, dep.Spec.Template.Spec.Containers[0], p.TargetPort)
		}
	})

	t.Run("DisruptionBudgetAndAutoscalerFitTogether", func(t *testing.T) {
		pdb := only[*policyv1.PodDisruptionBudget](t, m)
		hpa := only[*autoscalingv2.HorizontalPodAutoscaler](t, m)
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
			t.Errorf("PodDisruptionBudget selector %v does not select the server pods", pdb.Spec.Selector)
		}
		if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
			t.Error("PodDisruptionBudget allows anything")
		}
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != dep.Name || ref.APIVersion != "apps/v1" {
			t.Errorf("HPA scales %+v, want Deployment %s", ref, dep.Name)
		}
		// One replica may be drained while another serves.
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas || len(hpa.Spec.Metrics) == 0 {
			t.Errorf("HPA min %v max %d metrics %d: want min >= 2, max >= min, a metric", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, len(hpa.Spec.Metrics))
		}
		// A replicas field would reset the autoscaler's count on every apply.
		if dep.Spec.Replicas != nil {
			t.Error("the Deployment sets replicas, which the HPA owns")
		}
	})

	t.Run("MigrationJob", func(t *testing.T) {
		c := job.Spec.Template.Spec.Containers[0]
		if !slices.Equal(c.Args, []string{"migrate"}) {
			t.Errorf("Job args %v, want [migrate]", c.Args)
		}
		if envValue(c, "DB_LOGIN_ROLE", "") == "" || envValue(c, "DB_LOGIN_PASSWORD_FILE", "") == "" {
			t.Error("the Job does not create the login role (DB_LOGIN_ROLE, DB_LOGIN_PASSWORD_FILE)")
		}
		if p := job.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyNever && p != corev1.RestartPolicyOnFailure {
			t.Errorf("Job restartPolicy %q", p)
		}
		if job.Spec.BackoffLimit == nil || job.Spec.ActiveDeadlineSeconds == nil {
			t.Error("the Job needs a backoffLimit and an activeDeadlineSeconds: a broken migration must not retry forever")
		}
		if c.Image != dep.Spec.Template.Spec.Containers[0].Image {
			t.Errorf("the Job runs %s and the server %s: migrate with the image that serves", c.Image, dep.Spec.Template.Spec.Containers[0].Image)
		}
	})

	t.Run("NetworkPolicies", func(t *testing.T) {
		checkNetworkPolicies(t, all[*networkingv1.NetworkPolicy](m), dep, job)
	})
}

func objectMeta(o any) metav1.ObjectMeta {
	switch o := o.(type) {
	case *corev1.Namespace:
		return o.ObjectMeta
	case *corev1.ServiceAccount:
		return o.ObjectMeta
	case *corev1.Service:
		return o.ObjectMeta
	case *appsv1.Deployment:
		return o.ObjectMeta
	case *batchv1.Job:
		return o.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return o.ObjectMeta
	case *autoscalingv2.HorizontalPodAutoscaler:
		return o.ObjectMeta
	case *networkingv1.NetworkPolicy:
		return o.ObjectMeta
	}
	panic(fmt.Sprintf("objectMeta: %T", o))
}

func envValue(c corev1.Container, k, def string) string {
	for _, e := range c.Env {
		if e.Name == k {
			return e.Value
		}
	}
	return def
}

// mountFor returns the volume mount that holds the path p.
func mountFor(c corev1.Container, p string) (corev1.VolumeMount, bool) {
	for _, vm := range c.VolumeMounts {
		if within(p, vm.MountPath) {
			return vm, true
		}
	}
	return corev1.VolumeMount{}, false
}

func volume(ps *corev1.PodSpec, name string) *corev1.Volume {
	for i := range ps.Volumes {
		if ps.Volumes[i].Name == name {
			return &ps.Volumes[i]
		}
	}
	return nil
}

// port resolves a probe's or Service's target port (a number or a named
// container port) to its number.
func port(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Errorf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

func selects(selector, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

func keysOf[V any](m map[int32]V) string {
	var ks []int
	for k := range m {
		ks = append(ks, int(k))
	}
	slices.Sort(ks)
	var s []string
	for _, k := range ks {
		s = append(s, fmt.Sprint(k))
	}
	return strings.Join(s, " ")
}
