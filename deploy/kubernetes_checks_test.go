package deploy

// The hardening checks TestKubernetes applies to the decoded manifests:
// pods, secrets, network policies.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// checkHardenedPod checks what the restricted Pod Security Standard asks
// and more: never root (uid 65532), no privilege escalation, no
// capabilities, the runtime's seccomp profile, a read-only root
// filesystem, no service account token.
func checkHardenedPod(t *testing.T, name string, ps *corev1.PodSpec) {
	t.Helper()
	sc := ps.SecurityContext
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false", name)
	}
	if ps.HostNetwork || ps.HostPID || ps.HostIPC {
		t.Errorf("%s shares a host namespace", name)
	}
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		sc.FSGroup == nil || *sc.FSGroup != 65532 || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s pod securityContext %+v: want runAsNonRoot, runAsUser 65532, fsGroup 65532, seccomp RuntimeDefault", name, sc)
	}
	containers := append(slices.Clone(ps.InitContainers), ps.Containers...)
	for _, c := range containers {
		csc := c.SecurityContext
		if csc == nil {
			t.Errorf("%s/%s has no securityContext", name, c.Name)
			continue
		}
		if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: readOnlyRootFilesystem must be true", name, c.Name)
		}
		if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation must be false", name, c.Name)
		}
		if csc.Privileged != nil && *csc.Privileged {
			t.Errorf("%s/%s is privileged", name, c.Name)
		}
		if csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) > 0 {
			t.Errorf("%s/%s capabilities %+v: want drop [ALL] and nothing added", name, c.Name, csc.Capabilities)
		}
		if csc.RunAsUser != nil && *csc.RunAsUser != 65532 || csc.RunAsNonRoot != nil && !*csc.RunAsNonRoot {
			t.Errorf("%s/%s overrides the pod's non-root user", name, c.Name)
		}
		if csc.SeccompProfile != nil && csc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s/%s overrides the seccomp profile", name, c.Name)
		}
	}
}

// checkSecretsAreFiles checks that no secret reaches a container as an
// environment value (visible in `kubectl describe`, crash dumps, child
// processes), that every X_FILE variable points into a read-only mounted
// Secret, and returns the name of that Secret.
func checkSecretsAreFiles(t *testing.T, name string, ps *corev1.PodSpec) string {
	t.Helper()
	var secretName string
	for _, c := range ps.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("%s/%s: %s comes from a Secret as an environment value: mount it and use %s_FILE", name, c.Name, e.Name, e.Name)
			}
			if secretNameRe(e.Name) && !strings.HasSuffix(e.Name, "_FILE") {
				t.Errorf("%s/%s sets %s: secrets belong in files (X_FILE)", name, c.Name, e.Name)
			}
			if !strings.HasSuffix(e.Name, "_FILE") {
				continue
			}
			vm, ok := mountFor(c, e.Value)
			v := volume(ps, vm.Name)
			if !ok || !vm.ReadOnly || v == nil || v.Secret == nil {
				t.Errorf("%s/%s: %s=%s is not in a read-only mounted Secret", name, c.Name, e.Name, e.Value)
				continue
			}
			if secretName != "" && secretName != v.Secret.SecretName {
				t.Errorf("%s: secrets from both %s and %s", name, secretName, v.Secret.SecretName)
			}
			secretName = v.Secret.SecretName
			if m := v.Secret.DefaultMode; m == nil || *m&0o007 != 0 {
				t.Errorf("%s: Secret %s is mounted readable by others (defaultMode %v)", name, secretName, m)
			}
		}
	}
	if ps.Containers[0].EnvFrom != nil {
		t.Errorf("%s: envFrom would turn a whole ConfigMap or Secret into environment values", name)
	}
	return secretName
}

func secretNameRe(k string) bool { return secretName.MatchString(k) }

// checkNetworkPolicies checks default deny, then exactly the openings each
// pod needs: the server takes MCP from the ingress controller and metrics
// from monitoring, and reaches DNS, Postgres, Redis and the OAuth issuer;
// the migration reaches DNS and Postgres.
func checkNetworkPolicies(t *testing.T, nps []*networkingv1.NetworkPolicy, dep *appsv1.Deployment, job *batchv1.Job) {
	t.Helper()
	var deny bool
	for _, np := range nps {
		if len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
			len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0 &&
			slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) && slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			deny = true
		}
	}
	if !deny {
		t.Error("no default-deny NetworkPolicy (empty podSelector, Ingress and Egress, no rules)")
	}
	policyFor := func(what string, podLabels map[string]string) *networkingv1.NetworkPolicy {
		var found *networkingv1.NetworkPolicy
		for _, np := range nps {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(podLabels)) {
				if found != nil {
					t.Errorf("%s pods are selected by %s and %s: keep one policy per pod kind", what, found.Name, np.Name)
				}
				found = np
			}
		}
		if found == nil {
			t.Fatalf("no NetworkPolicy selects the %s pods", what)
		}
		return found
	}

	server := policyFor("server", dep.Spec.Template.Labels)
	ingress := map[int32][]networkingv1.NetworkPolicyPeer{}
	for _, r := range server.Spec.Ingress {
		if len(r.From) == 0 || len(r.Ports) == 0 {
			t.Errorf("%s: an ingress rule without from or ports admits everyone or everything", server.Name)
			continue
		}
		for _, p := range r.Ports {
			ingress[p.Port.IntVal] = append(ingress[p.Port.IntVal], r.From...)
		}
	}
	if keysOf(ingress) != "8080 9464" {
		t.Errorf("%s admits ports %s: want exactly 8080 (MCP) and 9464 (metrics)", server.Name, keysOf(ingress))
	}
	for _, p := range ingress[8080] {
		if p.PodSelector == nil || p.NamespaceSelector == nil || len(p.PodSelector.MatchLabels) == 0 || len(p.NamespaceSelector.MatchLabels) == 0 {
			t.Errorf("%s: MCP must come from the ingress controller's pods only (namespaceSelector and podSelector), got %+v", server.Name, p)
		}
	}
	for _, p := range ingress[9464] {
		if p.NamespaceSelector == nil || len(p.NamespaceSelector.MatchLabels) == 0 || p.IPBlock != nil {
			t.Errorf("%s: metrics must come from the monitoring namespace only, got %+v", server.Name, p)
		}
	}
	checkEgress(t, server, "53/TCP 53/UDP 443/TCP 5432/TCP 6379/TCP")

	migrate := policyFor("migrate", job.Spec.Template.Labels)
	if len(migrate.Spec.Ingress) != 0 || !slices.Contains(migrate.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		t.Errorf("%s: nothing may connect to the migration", migrate.Name)
	}
	checkEgress(t, migrate, "53/TCP 53/UDP 5432/TCP")
}

// checkEgress checks that every egress rule names its peers and ports, that
// together they open exactly want, and that DNS goes to kube-dns only.
func checkEgress(t *testing.T, np *networkingv1.NetworkPolicy, want string) {
	t.Helper()
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("%s does not restrict egress", np.Name)
	}
	var ports []string
	for _, r := range np.Spec.Egress {
		if len(r.To) == 0 || len(r.Ports) == 0 {
			t.Errorf("%s: an egress rule without to or ports lets the pods reach anything", np.Name)
			continue
		}
		for _, p := range r.Ports {
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			ports = append(ports, fmt.Sprintf("%d/%s", p.Port.IntVal, proto))
			if p.Port.IntVal == 53 {
				for _, peer := range r.To {
					if peer.PodSelector == nil || peer.PodSelector.MatchLabels["k8s-app"] != "kube-dns" || peer.NamespaceSelector == nil {
						t.Errorf("%s: DNS must go to the cluster's kube-dns pods only, got %+v", np.Name, peer)
					}
				}
			}
		}
		for _, peer := range r.To {
			if peer.IPBlock != nil {
				if p, err := netip.ParsePrefix(peer.IPBlock.CIDR); err != nil || p.Bits() == 0 {
					t.Errorf("%s: egress to %q: want a specific CIDR, never everything", np.Name, peer.IPBlock.CIDR)
				}
			}
		}
	}
	slices.Sort(ports)
	wantPorts := strings.Fields(want)
	slices.Sort(wantPorts)
	if got := strings.Join(slices.Compact(ports), " "); got != strings.Join(wantPorts, " ") {
		t.Errorf("%s opens egress %s, want %s", np.Name, got, want)
	}
}
