// Package istio holds the Kubernetes and Istio manifests of meshcrypt. This test builds every
// kustomize overlay with the kustomize library itself, decodes every resulting object strictly into
// the Kubernetes and Istio API types (an unknown or misspelt field fails, as with kubeconform
// -strict), and checks the references between objects that no schema can see.
package istio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1 "istio.io/api/networking/v1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1 "istio.io/api/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// object is one built manifest: its identity and its JSON form.
type object struct {
	apiVersion, kind, name, namespace string
	json                              []byte
	fields                            map[string]any
}

// istioSpecs maps each Istio kind the manifests may use to its API message; any other kind fails.
var istioSpecs = map[string]func() proto.Message{
	"networking.istio.io/v1alpha3/EnvoyFilter": func() proto.Message { return &networkingv1alpha3.EnvoyFilter{} },
	"networking.istio.io/v1/Sidecar":           func() proto.Message { return &networkingv1.Sidecar{} },
	"security.istio.io/v1/PeerAuthentication":  func() proto.Message { return &securityv1.PeerAuthentication{} },
	"security.istio.io/v1/AuthorizationPolicy": func() proto.Message { return &securityv1.AuthorizationPolicy{} },
}

var kubeTypes = map[string]func() any{
	"v1/Namespace":                  func() any { return &corev1.Namespace{} },
	"v1/ServiceAccount":             func() any { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":                  func() any { return &corev1.ConfigMap{} },
	"v1/Service":                    func() any { return &corev1.Service{} },
	"apps/v1/Deployment":            func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
}

func kustomizations(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, pattern := range []string{"base/*/kustomization.yaml", "overlays/*/kustomization.yaml"} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			dirs = append(dirs, filepath.Dir(m))
		}
	}
	if len(dirs) < 4 {
		t.Fatalf("expected the two bases and at least two overlays, found %v", dirs)
	}
	return dirs
}

func overlays(t *testing.T) []string {
	var out []string
	for _, d := range kustomizations(t) {
		if strings.HasPrefix(d, "overlays"+string(filepath.Separator)) {
			out = append(out, d)
		}
	}
	return out
}

// build runs kustomize exactly as `kubectl apply -k` / `kustomize build` does (root-only loading).
func build(t *testing.T, dir string) []object {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []object
	for _, r := range resources.Resources() {
		js, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("%s: %s: %v", dir, r.CurId(), err)
		}
		var fields map[string]any
		if err := json.Unmarshal(js, &fields); err != nil {
			t.Fatal(err)
		}
		out = append(out, object{r.GetApiVersion(), r.GetKind(), r.GetName(), r.GetNamespace(), js, fields})
	}
	return out
}

func TestEveryKustomizationBuilds(t *testing.T) {
	for _, dir := range kustomizations(t) {
		t.Run(dir, func(t *testing.T) {
			if objs := build(t, dir); len(objs) == 0 {
				t.Fatalf("kustomize build %s produced nothing", dir)
			}
		})
	}
}

func TestEveryManifestDecodesStrictlyIntoItsApiType(t *testing.T) {
	for _, dir := range kustomizations(t) {
		t.Run(dir, func(t *testing.T) {
			for _, o := range build(t, dir) {
				if err := validate(o); err != nil {
					t.Errorf("%s %s/%s: %v", o.kind, o.namespace, o.name, err)
				}
			}
		})
	}
}

func validate(o object) error {
	key := o.apiVersion + "/" + o.kind
	if newType, ok := kubeTypes[key]; ok {
		return yaml.UnmarshalStrict(o.json, newType())
	}
	newSpec, ok := istioSpecs[key]
	if !ok {
		return fmt.Errorf("no schema for %s: add the kind to the test or fix apiVersion/kind", key)
	}
	var parts struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       json.RawMessage   `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(o.json, &parts); err != nil {
		return err
	}
	if len(parts.Spec) == 0 {
		return fmt.Errorf("no spec")
	}
	// protojson rejects unknown fields and wrong enum names, unlike the lenient decoder of client-go
	return protojson.Unmarshal(parts.Spec, newSpec())
}

// ---- references between objects

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the build", kind, name)
	return object{}
}

// at walks a path of map keys and list indexes through decoded JSON.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("expected a map at %v of %v", k, path)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("expected a list of more than %d items on %v", k, path)
			}
			v = l[k]
		}
	}
	return v
}

func TestEveryOverlayWiresTheFilterServiceClusterNameNamespacesAndKafkaPort(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			svc := find(t, objs, "Service", "meshcrypt-filter-service")
			port := at(t, svc.fields, "spec", "ports", 0)
			if name := at(t, port, "name").(string); !strings.HasPrefix(name, "grpc-") {
				t.Errorf("the filter-service port must be named grpc-* for Istio to speak HTTP/2 to it, got %q", name)
			}
			want := fmt.Sprintf("outbound|%v||%s.%s.svc.cluster.local", at(t, port, "port"), svc.name, svc.namespace)

			clusters := 0
			for _, o := range objs {
				if o.kind != "EnvoyFilter" {
					continue
				}
				if o.namespace == svc.namespace {
					t.Errorf("EnvoyFilter %s is in the filter-service namespace; it belongs with the workloads", o.name)
				}
				for _, cluster := range grpcClusterNames(o.fields) {
					clusters++
					if cluster != want {
						t.Errorf("EnvoyFilter %s calls cluster %q, Istio names the filter-service's %q", o.name, cluster, want)
					}
				}
			}
			if clusters == 0 {
				t.Fatal("no EnvoyFilter references the filter-service")
			}

			// every client namespace has its Kafka EnvoyFilter and Sidecar, and only those namespaces may call
			clients := map[string]bool{}
			for _, o := range objs {
				if o.kind == "EnvoyFilter" && o.name == "meshcrypt-kafka" {
					clients[o.namespace] = true
					checkKafkaListener(t, o, want)
				}
			}
			sidecars := map[string]bool{}
			for _, o := range objs {
				if o.kind != "Sidecar" || o.name != "meshcrypt-kafka-clients" {
					continue
				}
				sidecars[o.namespace] = true
				hosts := fmt.Sprint(at(t, o.fields, "spec", "egress", 0, "hosts"))
				if !strings.Contains(hosts, svc.namespace+"/*") {
					t.Errorf("Sidecar %s/%s egress %s does not reach the filter-service namespace %s", o.namespace, o.name, hosts, svc.namespace)
				}
				if mode := at(t, o.fields, "spec", "outboundTrafficPolicy", "mode"); mode != "REGISTRY_ONLY" {
					t.Errorf("Sidecar outboundTrafficPolicy %v: unknown destinations (a Kafka broker) would pass through", mode)
				}
			}
			if fmt.Sprint(sidecars) != fmt.Sprint(clients) {
				t.Errorf("Sidecars in %v but Kafka EnvoyFilters in %v: a namespace without the Sidecar fails open", sidecars, clients)
			}
			policy := find(t, objs, "AuthorizationPolicy", "meshcrypt-filter-service")
			allowed := map[string]bool{}
			for _, ns := range at(t, policy.fields, "spec", "rules", 0, "from", 0, "source", "namespaces").([]any) {
				allowed[ns.(string)] = true
			}
			if fmt.Sprint(allowed) != fmt.Sprint(clients) {
				t.Errorf("AuthorizationPolicy allows %v, the client namespaces are %v", allowed, clients)
			}
		})
	}
}

// checkKafkaListener: the added listener forwards only to the cluster the same EnvoyFilter adds, its
// names carry its port, the Kafka filter (network ext_proc, or the bridge module on stock istio-proxy) comes
// first and fails closed. filterCluster is Istio's name for the filter-service's outbound cluster.
func checkKafkaListener(t *testing.T, kafka object, filterCluster string) {
	patches := at(t, kafka.fields, "spec", "configPatches").([]any)
	var clusterNames []string
	var listener any
	var loopback []any
	for _, p := range patches {
		if at(t, p, "patch", "operation") != "ADD" {
			t.Errorf("Kafka EnvoyFilter patch %v is not an ADD: a rejected merge into Istio's listener fails open", at(t, p, "applyTo"))
		}
		switch at(t, p, "applyTo") {
		case "CLUSTER":
			clusterNames = append(clusterNames, at(t, p, "patch", "value", "name").(string))
		case "LISTENER":
			if at(t, p, "patch", "value", "address", "socket_address", "address") == "127.0.0.1" {
				loopback = append(loopback, at(t, p, "patch", "value"))
			} else if listener != nil {
				t.Errorf("the Kafka EnvoyFilter adds a second Kafka listener %v", at(t, p, "patch", "value", "name"))
			} else {
				listener = at(t, p, "patch", "value")
			}
		}
	}
	if listener == nil {
		t.Fatal("the Kafka EnvoyFilter adds no listener")
	}
	port := fmt.Sprint(at(t, listener, "address", "socket_address", "port_value"))
	if name := at(t, listener, "name").(string); !strings.HasSuffix(name, "-"+port) {
		t.Errorf("listener %s does not listen on the port its name says (%s)", name, port)
	}
	filters := at(t, listener, "filter_chains", 0, "filters").([]any)
	if len(filters) != 2 || (at(t, filters[0], "name") != extProcNetwork && at(t, filters[0], "name") != dynamicModules) ||
		at(t, filters[1], "name") != "envoy.filters.network.tcp_proxy" {
		t.Fatalf("the Kafka listener must be exactly ext_proc (or the bridge module) then tcp_proxy, got %v", filters)
	}
	if at(t, filters[0], "name") == dynamicModules {
		checkBridge(t, at(t, filters[0], "typed_config"), loopback, filterCluster)
	} else {
		if at(t, filters[0], "typed_config", "failure_mode_allow") != false {
			t.Error("network ext_proc must not fail open")
		}
		if len(loopback) > 0 {
			t.Errorf("the Kafka EnvoyFilter binds loopback listeners %v that nothing uses", loopback)
		}
	}
	for _, p := range patches {
		if at(t, p, "applyTo") != "CLUSTER" {
			continue
		}
		if _, mtls := at(t, p, "patch", "value").(map[string]any)["transport_socket"]; !mtls {
			continue // brokers outside the mesh: TestOnlyTheBrokersOutsideTheMeshOverlaySpeaksPlaintextToBrokers
		}
		alpn := fmt.Sprint(at(t, p, "patch", "value", "transport_socket", "typed_config", "common_tls_context", "alpn_protocols"))
		if alpn != "[istio]" {
			t.Errorf("the Kafka cluster offers ALPN %s: a broker sidecar that negotiates istio-peer-exchange writes"+
				" Istio's metadata-exchange preamble into the Kafka stream", alpn)
		}
	}
	target := at(t, filters[1], "typed_config", "cluster").(string)
	if len(clusterNames) != 1 || clusterNames[0] != target || !strings.HasSuffix(target, "-"+port) {
		t.Errorf("tcp_proxy forwards to %q; the EnvoyFilter adds clusters %v (port %s)", target, clusterNames, port)
	}
}

const (
	extProcNetwork = "envoy.filters.network.ext_proc"
	dynamicModules = "envoy.filters.network.dynamic_modules"
	// the bridge's lib<name>.so and the filter it implements (ExtProcSettings.BRIDGE_MODULE, BRIDGE_FILTER_NAME)
	bridgeModule = "meshcrypt_ext_proc_bridge"
	bridgeFilter = "ext_proc_bridge"
)

// bridgeConfig is the module's filter_config (docs/dynamic-module.md): every key it accepts, none that fails open.
type bridgeConfig struct {
	FilterService    string `json:"filter_service"`
	MessageTimeoutMs int64  `json:"message_timeout_ms"`
	InitialMetadata  []struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	} `json:"initial_metadata"`
	ReadPauseBytes   int64 `json:"read_pause_bytes"`
	MaxInFlightBytes int64 `json:"max_in_flight_bytes"`
}

// checkBridge: the module is named as its build names it, its JSON config has only keys the module knows (it has no
// fail-open switch, so every accepted key keeps it fail-closed) and calls the filter-service through exactly one
// loopback listener of the same EnvoyFilter, bound to 127.0.0.1 and forwarding only to the filter-service's Istio
// cluster (which Istio dials with the pod's mTLS identity).
func checkBridge(t *testing.T, module any, loopback []any, filterCluster string) {
	if got := at(t, module, "@type"); got != "type.googleapis.com/envoy.extensions.filters.network.dynamic_modules.v3.DynamicModuleNetworkFilter" {
		t.Errorf("the bridge's typed_config is %v", got)
	}
	if got := at(t, module, "dynamic_module_config", "name"); got != bridgeModule {
		t.Errorf("the module is named %v; Envoy loads lib%s.so", got, bridgeModule)
	}
	if got := at(t, module, "filter_name"); got != bridgeFilter {
		t.Errorf("filter_name %v, the module implements %s", got, bridgeFilter)
	}
	if got := at(t, module, "filter_config", "@type"); got != "type.googleapis.com/google.protobuf.StringValue" {
		t.Errorf("filter_config is %v; the module takes its JSON in a StringValue", got)
	}
	var config bridgeConfig
	decoder := json.NewDecoder(strings.NewReader(at(t, module, "filter_config", "value").(string)))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&config); err != nil {
		t.Fatalf("the module's filter_config: %v (the module refuses it, Envoy rejects the listener)", err)
	}
	// the xDS server's bridge config has one owner, ExtProcSettings: the same module, filter and chunk deadline here
	settings := "../envoy/xds-server/src/main/java/io/meshcrypt/xds/snapshot/ExtProcSettings.java"
	if want := javaConstant(t, settings, "KAFKA_MESSAGE_TIMEOUT_MILLIS"); fmt.Sprint(config.MessageTimeoutMs) != strings.ReplaceAll(want, "_", "") {
		t.Errorf("message_timeout_ms %d, ExtProcSettings.KAFKA_MESSAGE_TIMEOUT_MILLIS is %s", config.MessageTimeoutMs, want)
	}
	if want := javaConstant(t, settings, "BRIDGE_MODULE"); want != `"`+bridgeModule+`"` {
		t.Errorf("ExtProcSettings.BRIDGE_MODULE is %s, this test knows %q", want, bridgeModule)
	}
	if want := javaConstant(t, settings, "BRIDGE_FILTER_NAME"); want != `"`+bridgeFilter+`"` {
		t.Errorf("ExtProcSettings.BRIDGE_FILTER_NAME is %s, this test knows %q", want, bridgeFilter)
	}
	if len(loopback) != 1 {
		t.Fatalf("the bridge needs exactly one loopback listener to the filter-service, the EnvoyFilter adds %d", len(loopback))
	}
	l := loopback[0]
	if want := fmt.Sprintf("http://127.0.0.1:%v", at(t, l, "address", "socket_address", "port_value")); config.FilterService != want {
		t.Errorf("the module calls %s, the loopback listener is %s", config.FilterService, want)
	}
	if bind, set := l.(map[string]any)["bind_to_port"]; set && bind != true {
		t.Errorf("the loopback listener is not bound (bind_to_port %v): the module could not connect", bind)
	}
	filters := at(t, l, "filter_chains").([]any)
	if len(filters) != 1 || len(at(t, filters[0], "filters").([]any)) != 1 ||
		at(t, filters[0], "filters", 0, "name") != "envoy.filters.network.tcp_proxy" {
		t.Fatalf("the loopback listener must be one chain of tcp_proxy alone, got %v", filters)
	}
	if got := at(t, filters[0], "filters", 0, "typed_config", "cluster"); got != filterCluster {
		t.Errorf("the loopback listener forwards to %v; only the filter-service's Istio cluster %s may be reached through it", got, filterCluster)
	}
}

// grpcClusterNames finds the cluster of every grpc_service below v (an ext_proc's processor).
func grpcClusterNames(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if k == "grpc_service" {
				grpc, _ := child.(map[string]any)
				envoyGrpc, _ := grpc["envoy_grpc"].(map[string]any)
				name, _ := envoyGrpc["cluster_name"].(string)
				out = append(out, name)
				continue
			}
			out = append(out, grpcClusterNames(child)...)
		}
	case []any:
		for _, child := range x {
			out = append(out, grpcClusterNames(child)...)
		}
	}
	return out
}

func TestEveryOverlayRunsTheFilterServiceHardenedWithItsConfigAndKeyset(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			pod := filterServicePod(t, objs)
			c := pod.Containers[0]
			// the image's entrypoint (Jib: java and the main class) runs, with the service's arguments
			if len(c.Command) != 0 || strings.Join(c.Args, " ") != "serve --config /etc/meshcrypt/config/filter.yaml" {
				t.Errorf("unexpected command %v and args %v", c.Command, c.Args)
			}
			for _, m := range c.VolumeMounts {
				if m.SubPath != "" {
					t.Errorf("volume %s is mounted with subPath %s, which the kubelet never updates", m.Name, m.SubPath)
				}
			}
			sc := c.SecurityContext
			if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Error("the filter-service must run as non-root with a read-only root filesystem")
			}
			if c.ReadinessProbe == nil || c.LivenessProbe == nil || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Error("probes and memory requests/limits are required")
			}
			var configMap, secret string
			for _, v := range pod.Volumes {
				if v.ConfigMap != nil {
					configMap = v.ConfigMap.Name
				}
				if v.Secret != nil {
					secret = v.Secret.SecretName
				}
			}
			if configMap != "meshcrypt-filter-config" {
				t.Errorf("ConfigMap %s: a content hash in its name would roll the Deployment on every policy change", configMap)
			}
			cm := find(t, objs, "ConfigMap", configMap)
			if _, ok := at(t, cm.fields, "data").(map[string]any)["filter.yaml"]; !ok {
				t.Errorf("ConfigMap %s has no filter.yaml", configMap)
			}
			if secret == "" {
				t.Error("the keyset must come from a Secret")
			}
		})
	}
}

// TestEveryOverlayProbesAndScrapesTheFilterServicesObservabilityEndpoint: the probes ask /healthz and /readyz of
// the port filter.yaml's observability: listens on (loopback, so pilot-agent must send them to localhost), and the
// Prometheus annotations Istio's metrics merging reads name that same port and /metrics.
func TestEveryOverlayProbesAndScrapesTheFilterServicesObservabilityEndpoint(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			var config struct {
				Observability struct {
					Listen string `json:"listen"`
				} `json:"observability"`
			}
			for _, o := range objs {
				if o.kind == "ConfigMap" && strings.HasPrefix(o.name, "meshcrypt-filter-config") {
					if err := yaml.Unmarshal([]byte(at(t, o.fields, "data", "filter.yaml").(string)), &config); err != nil {
						t.Fatal(err)
					}
				}
			}
			listen := config.Observability.Listen
			if !strings.HasPrefix(listen, "127.0.0.1:") {
				t.Fatalf("filter.yaml's observability.listen is %q, want a 127.0.0.1 address", listen)
			}
			port := strings.TrimPrefix(listen, "127.0.0.1:")
			c := filterServicePod(t, objs).Containers[0]
			for _, probe := range []struct {
				name string
				p    *corev1.Probe
				path string
			}{{"startup", c.StartupProbe, "/healthz"}, {"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
				if probe.p == nil || probe.p.HTTPGet == nil {
					t.Errorf("the %s probe must be an httpGet of the observability endpoint", probe.name)
					continue
				}
				if got := probe.p.HTTPGet.Port.String(); got != port || probe.p.HTTPGet.Path != probe.path {
					t.Errorf("the %s probe asks %s%s, want %s%s", probe.name, got, probe.p.HTTPGet.Path, port, probe.path)
				}
			}
			var deployment appsv1.Deployment
			if err := yaml.UnmarshalStrict(find(t, objs, "Deployment", "meshcrypt-filter-service").json, &deployment); err != nil {
				t.Fatal(err)
			}
			annotations := deployment.Spec.Template.Annotations
			if annotations["prometheus.io/scrape"] != "true" || annotations["prometheus.io/port"] != port || annotations["prometheus.io/path"] != "/metrics" {
				t.Errorf("prometheus.io annotations %v do not name :%s/metrics", annotations, port)
			}
			var proxyConfig struct {
				ProxyMetadata map[string]string `json:"proxyMetadata"`
			}
			if err := yaml.Unmarshal([]byte(annotations["proxy.istio.io/config"]), &proxyConfig); err != nil {
				t.Fatal(err)
			}
			if proxyConfig.ProxyMetadata["REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION"] != "true" {
				t.Error("pilot-agent sends rewritten probes to the pod IP, where a loopback endpoint does not answer: " +
					"set proxyMetadata REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION: \"true\"")
			}
		})
	}
}

// filterServicePod decodes the filter-service Deployment of a build strictly and returns its pod spec.
func filterServicePod(t *testing.T, objs []object) corev1.PodSpec {
	t.Helper()
	var deployment appsv1.Deployment
	if err := yaml.UnmarshalStrict(find(t, objs, "Deployment", "meshcrypt-filter-service").json, &deployment); err != nil {
		t.Fatal(err)
	}
	return deployment.Spec.Template.Spec
}

// TestEveryOverlayBindsTheWildcardOnlyWhereItIsMeantForOtherHosts: nothing binds the node's interfaces (no
// hostNetwork, no hostPort); a listener an EnvoyFilter adds on 0.0.0.0 is not bound (bind_to_port: false, it only
// matches destinations); the filter-service binds the pod's interfaces only behind the sidecar's STRICT mTLS.
func TestEveryOverlayBindsTheWildcardOnlyWhereItIsMeantForOtherHosts(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			pod := filterServicePod(t, objs)
			if pod.HostNetwork {
				t.Error("the filter-service must not use the node's network")
			}
			for _, c := range pod.Containers {
				for _, p := range c.Ports {
					if p.HostPort != 0 || p.HostIP != "" {
						t.Errorf("container %s publishes port %d on the node", c.Name, p.ContainerPort)
					}
				}
			}
			for _, o := range objs {
				if o.kind == "EnvoyFilter" {
					for _, l := range wildcardListeners(o.fields) {
						if l["bind_to_port"] != false {
							t.Errorf("EnvoyFilter %s binds %v on every interface of the pod", o.name, l["name"])
						}
					}
				}
			}
			var config map[string]any
			for _, o := range objs {
				if o.kind == "ConfigMap" && strings.HasPrefix(o.name, "meshcrypt-filter-config") {
					if err := yaml.Unmarshal([]byte(at(t, o.fields, "data", "filter.yaml").(string)), &config); err != nil {
						t.Fatal(err)
					}
				}
			}
			if listen, _ := config["listen"].(string); strings.HasPrefix(listen, "0.0.0.0:") || strings.HasPrefix(listen, "[::]:") {
				if config["tls"] != "mesh-sidecar" {
					t.Errorf("filter.yaml listens on %s without the sidecar's mTLS in front (tls: mesh-sidecar)", listen)
				}
				peer := find(t, objs, "PeerAuthentication", "meshcrypt-filter-service")
				if mode := at(t, peer.fields, "spec", "mtls", "mode"); mode != "STRICT" {
					t.Errorf("filter.yaml listens on %s but PeerAuthentication admits plaintext (mode %v)", listen, mode)
				}
			}
		})
	}
}

// wildcardListeners finds every map below v whose address is a socket_address on 0.0.0.0 or ::.
func wildcardListeners(v any) []map[string]any {
	var out []map[string]any
	switch x := v.(type) {
	case map[string]any:
		if addr, ok := x["address"].(map[string]any); ok {
			if sa, ok := addr["socket_address"].(map[string]any); ok && (sa["address"] == "0.0.0.0" || sa["address"] == "::") {
				out = append(out, x)
			}
		}
		for _, child := range x {
			out = append(out, wildcardListeners(child)...)
		}
	case []any:
		for _, child := range x {
			out = append(out, wildcardListeners(child)...)
		}
	}
	return out
}

// TestMain writes each overlay's build to target/ so the Java tests (and a reader) can use exactly
// what `kubectl apply -k` would send.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if out := os.Getenv("MESHCRYPT_ISTIO_BUILD_DIR"); out != "" {
			code = writeBuilds(out)
		}
	}
	os.Exit(code)
}

func writeBuilds(out string) int {
	dirs, _ := filepath.Glob("overlays/*/kustomization.yaml")
	for _, k := range dirs {
		dir := filepath.Dir(k)
		resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		y, err := resources.AsYaml()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.MkdirAll(out, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.WriteFile(filepath.Join(out, filepath.Base(dir)+".yaml"), bytes.TrimSpace(y), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// pomValue returns the text of the first element named tag in the Maven file at path.
func pomValue(t *testing.T, path, tag string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("<" + tag + ">([^<]+)</" + tag + ">").FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no <%s>", path, tag)
	}
	return string(m[1])
}

// TestEveryOverlayRunsTheImageThisRepoBuilds: the Deployment's image is the one Jib builds from filter-service/pom.xml
// (name and the project's version as tag), run as the image's own user.
func TestEveryOverlayRunsTheImageThisRepoBuilds(t *testing.T) {
	version := pomValue(t, "../pom.xml", "version")
	to := regexp.MustCompile(`<to><image>([^<]+)</image></to>`).FindStringSubmatch(readFile(t, "../filter-service/pom.xml"))
	user := pomValue(t, "../filter-service/pom.xml", "user")
	if to == nil {
		t.Fatal("filter-service/pom.xml: no Jib <to><image>")
	}
	want := strings.ReplaceAll(to[1], "${project.version}", version)
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			pod := filterServicePod(t, build(t, dir))
			if got := pod.Containers[0].Image; got != want {
				t.Errorf("image %s, but the build makes %s", got, want)
			}
			if got := fmt.Sprintf("%d:%d", *pod.SecurityContext.RunAsUser, *pod.SecurityContext.RunAsGroup); got != user {
				t.Errorf("runs as %s, the image's user is %s", got, user)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEveryOverlaySizesTheFilterServicesMemoryFromItsFrameLimits: the heap leaves half of itself (the default
// limits.maxHeldBytesTotal, unless filter.yaml sets one) for rewriting three frames of maxFrameBytes at once, and heap,
// direct memory and the JVM's own 300 MiB fit the container's limit, which equals its request (no overcommit).
func TestEveryOverlaySizesTheFilterServicesMemoryFromItsFrameLimits(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			c := filterServicePod(t, objs).Containers[0]
			limit := c.Resources.Limits.Memory().Value()
			if c.Resources.Requests.Memory().Value() != limit {
				t.Errorf("memory request %v differs from the limit %v", c.Resources.Requests.Memory(), c.Resources.Limits.Memory())
			}
			var options string
			for _, e := range c.Env {
				if e.Name == "JDK_JAVA_OPTIONS" {
					options = e.Value
				}
			}
			percent := regexp.MustCompile(`-XX:MaxRAMPercentage=(\d+)`).FindStringSubmatch(options)
			direct := regexp.MustCompile(`-XX:MaxDirectMemorySize=(\d+[kmg]?)`).FindStringSubmatch(options)
			if percent == nil || direct == nil {
				t.Fatalf("JDK_JAVA_OPTIONS %q must set MaxRAMPercentage and MaxDirectMemorySize", options)
			}
			var pct int64
			fmt.Sscan(percent[1], &pct)
			heap := limit * pct / 100
			directBytes := jvmSize(t, direct[1])

			var filter struct {
				MaxFrameBytes int64 `json:"maxFrameBytes"`
				Limits        struct {
					MaxFrameBytes     int64 `json:"maxFrameBytes"`
					MaxHeldBytesTotal int64 `json:"maxHeldBytesTotal"`
				} `json:"limits"`
			}
			cm := find(t, objs, "ConfigMap", "meshcrypt-filter-config")
			if err := yaml.Unmarshal([]byte(at(t, cm.fields, "data", "filter.yaml").(string)), &filter); err != nil {
				t.Fatal(err)
			}
			frame := int64(104857600)
			for _, v := range []int64{filter.MaxFrameBytes, filter.Limits.MaxFrameBytes} {
				if v > 0 {
					frame = v
				}
			}
			held := heap / 2
			if filter.Limits.MaxHeldBytesTotal > 0 {
				held = filter.Limits.MaxHeldBytesTotal
			}
			const jvmOwn = 300 << 20
			if held < 3*(frame+4) {
				t.Errorf("held bytes %d MiB cannot rewrite one frame of %d MiB (3x its size)", held>>20, frame>>20)
			}
			if held > heap/2 {
				t.Errorf("maxHeldBytesTotal %d MiB is more than half the %d MiB heap", held>>20, heap>>20)
			}
			if heap+directBytes+jvmOwn > limit {
				t.Errorf("heap %d MiB + direct %d MiB + %d MiB for the JVM exceed the %d MiB limit",
					heap>>20, directBytes>>20, jvmOwn>>20, limit>>20)
			}
		})
	}
}

// TestEveryOverlayKeepsAFilterServiceThroughDisruptions: with one replica left a voluntary disruption (a node drain)
// waits, and the replicas prefer different nodes.
func TestEveryOverlayKeepsAFilterServiceThroughDisruptions(t *testing.T) {
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			objs := build(t, dir)
			var deployment appsv1.Deployment
			if err := yaml.UnmarshalStrict(find(t, objs, "Deployment", "meshcrypt-filter-service").json, &deployment); err != nil {
				t.Fatal(err)
			}
			var pdb policyv1.PodDisruptionBudget
			if err := yaml.UnmarshalStrict(find(t, objs, "PodDisruptionBudget", "meshcrypt-filter-service").json, &pdb); err != nil {
				t.Fatal(err)
			}
			labels := deployment.Spec.Template.Labels
			for k, v := range pdb.Spec.Selector.MatchLabels {
				if labels[k] != v {
					t.Errorf("the PodDisruptionBudget selects %s=%s, the pods are labelled %v", k, v, labels)
				}
			}
			if pdb.Namespace != deployment.Namespace {
				t.Errorf("PodDisruptionBudget in %s, Deployment in %s", pdb.Namespace, deployment.Namespace)
			}
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 ||
				int(*deployment.Spec.Replicas) <= pdb.Spec.MinAvailable.IntValue() {
				t.Errorf("replicas %d and minAvailable %v: a drain must keep one and be able to move one",
					*deployment.Spec.Replicas, pdb.Spec.MinAvailable)
			}
			a := deployment.Spec.Template.Spec.Affinity
			if a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 ||
				a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
				t.Error("the replicas must prefer different nodes")
			}
		})
	}
}

// TestTheMeshSettingsNameTheClusterDomainAndTrustDomainEverywhere: an overlay whose mesh has another DNS domain and
// trust domain gets them in every Istio cluster name, :authority and the brokers' accepted SPIFFE ids, and the
// settings object itself is never applied.
func TestTheMeshSettingsNameTheClusterDomainAndTrustDomainEverywhere(t *testing.T) {
	dir, root := scratchKustomization(t)
	settings := strings.NewReplacer("clusterDomain: cluster.local", "clusterDomain: corp.example",
		"trustDomain: cluster.local", "trustDomain: prod.example").Replace(readFile(t, "overlays/sample/mesh-settings.yaml"))
	kustomization := fmt.Sprintf("resources:\n- mesh-settings.yaml\n- %[1]s/overlays/sample/filter-service\n"+
		"- %[1]s/overlays/sample/workloads\ncomponents:\n- %[1]s/components/wiring\n", root)
	for name, content := range map[string]string{"mesh-settings.yaml": settings, "kustomization.yaml": kustomization} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs := build(t, dir)
	for _, o := range objs {
		if o.name == "meshcrypt-mesh-settings" {
			t.Errorf("the settings are local-config and must not be applied")
		}
	}
	for _, o := range objs {
		if o.kind != "EnvoyFilter" {
			continue
		}
		for _, cluster := range grpcClusterNames(o.fields) {
			if !strings.HasSuffix(cluster, ".svc.corp.example") {
				t.Errorf("EnvoyFilter %s: cluster %s is not in the cluster's domain", o.name, cluster)
			}
		}
		if text := string(o.json); strings.Contains(text, "cluster.local") {
			t.Errorf("EnvoyFilter %s still names cluster.local", o.name)
		}
	}
	kafka := find(t, objs, "EnvoyFilter", "meshcrypt-kafka")
	san := at(t, kafka.fields, "spec", "configPatches", 0, "patch", "value", "transport_socket", "typed_config",
		"common_tls_context", "combined_validation_context", "default_validation_context", "match_typed_subject_alt_names", 0,
		"matcher", "prefix")
	if san != "spiffe://prod.example/ns/kafka/" {
		t.Errorf("brokers accepted as %v", san)
	}
}

// javaConstant returns the initialiser of the Java constant name (`NAME = value;`) in the file at path.
func javaConstant(t *testing.T, path, name string) string {
	t.Helper()
	m := regexp.MustCompile(`\b` + name + `\s*=\s*([^;]+);`).FindStringSubmatch(readFile(t, path))
	if m == nil {
		t.Fatalf("%s has no constant %s", path, name)
	}
	return strings.TrimSpace(m[1])
}

// scratchKustomization is an empty folder for a test's own kustomization, and the path from it to istio/ (kustomize
// takes relative paths only).
func scratchKustomization(t *testing.T) (dir, istioDir string) {
	t.Helper()
	root, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if istioDir, err = filepath.Rel(dir, root); err != nil {
		t.Fatal(err)
	}
	return dir, istioDir
}

// jvmSize reads a JVM size option's value (bytes, or with a k, m or g suffix).
func jvmSize(t *testing.T, v string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(strings.TrimRight(v, "kmg"), &n); err != nil {
		t.Fatalf("size %q: %v", v, err)
	}
	switch v[len(v)-1] {
	case 'k':
		n <<= 10
	case 'm':
		n <<= 20
	case 'g':
		n <<= 30
	}
	return n
}

// TestOnlyTheBrokersOutsideTheMeshOverlaySpeaksPlaintextToBrokers: every overlay reaches the brokers over Istio mTLS
// except the one whose brokers have no sidecar, which gets no transport socket (and so no ALPN to get wrong).
func TestOnlyTheBrokersOutsideTheMeshOverlaySpeaksPlaintextToBrokers(t *testing.T) {
	seen := false
	for _, dir := range overlays(t) {
		t.Run(dir, func(t *testing.T) {
			kafka := find(t, build(t, dir), "EnvoyFilter", "meshcrypt-kafka")
			_, mtls := at(t, kafka.fields, "spec", "configPatches", 0, "patch", "value").(map[string]any)["transport_socket"]
			outside := filepath.Base(dir) == "brokers-outside-mesh"
			seen = seen || outside
			if mtls == outside {
				t.Errorf("brokers outside the mesh: %v, but Istio mTLS to the brokers: %v", outside, mtls)
			}
		})
	}
	if !seen {
		t.Error("no brokers-outside-mesh overlay")
	}
}

// TestTheDynamicModuleWorkloadComponentMountsTheModuleIntoIstioProxy: components/dynamic-module-workload, added to a
// workload kustomization, gives every labelled workload's pod template the annotations Istio's injector reads (JSON,
// parsed by its template's fromJSON, which drops invalid JSON with a warning only): an image volume with the module
// image of this version, mounted read-only into istio-proxy where ENVOY_DYNAMIC_MODULES_SEARCH_PATH (proxyMetadata,
// which becomes istio-proxy's and so Envoy's environment) points; unlabelled workloads are left alone.
func TestTheDynamicModuleWorkloadComponentMountsTheModuleIntoIstioProxy(t *testing.T) {
	dir, root := scratchKustomization(t)
	workload := func(kind, name string, labelled bool) string {
		labels := "{app: " + name + "}"
		if labelled {
			labels = "{app: " + name + ", meshcrypt.io/kafka: enabled}"
		}
		return fmt.Sprintf("apiVersion: apps/v1\nkind: %s\nmetadata: {name: %s, labels: %s}\nspec:\n  selector: {matchLabels: {app: %[2]s}}\n"+
			"  template:\n    metadata: {labels: %[3]s}\n    spec: {containers: [{name: app, image: app}]}\n", kind, name, labels)
	}
	files := map[string]string{
		"workloads.yaml": workload("Deployment", "orders", true) + "---\n" + workload("StatefulSet", "ledger", true) +
			"---\n" + workload("Deployment", "web", false),
		"kustomization.yaml": fmt.Sprintf("resources:\n- workloads.yaml\ncomponents:\n- %s/components/dynamic-module-workload\n", root),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	version := pomValue(t, "../pom.xml", "version")
	patched := 0
	for _, o := range build(t, dir) {
		var d appsv1.Deployment // the pod template is all that is read; StatefulSet's decodes the same way
		if err := yaml.Unmarshal(o.json, &d); err != nil {
			t.Fatal(err)
		}
		annotations := d.Spec.Template.Annotations
		if o.name == "web" {
			if len(annotations) != 0 {
				t.Errorf("the unlabelled workload web got %v", annotations)
			}
			continue
		}
		patched++
		volumes := map[string]corev1.VolumeSource{}
		strictJSON(t, annotations["sidecar.istio.io/userVolume"], &volumes)
		mounts := map[string]corev1.VolumeMount{}
		strictJSON(t, annotations["sidecar.istio.io/userVolumeMount"], &mounts)
		proxyConfig := &meshv1alpha1.ProxyConfig{}
		if err := protojson.Unmarshal([]byte(annotations["proxy.istio.io/config"]), proxyConfig); err != nil {
			t.Fatalf("%s: proxy.istio.io/config: %v", o.name, err)
		}
		if len(volumes) != 1 || len(mounts) != 1 {
			t.Fatalf("%s: want one volume and its mount, got %v and %v", o.name, volumes, mounts)
		}
		for name, volume := range volumes {
			mount, ok := mounts[name]
			if !ok {
				t.Errorf("%s: volume %s is mounted nowhere (mounts %v)", o.name, name, mounts)
			}
			if volume.Image == nil || volume.Image.Reference != "meshcrypt/ext-proc-bridge:"+version {
				t.Errorf("%s: volume %s is %+v, want the image meshcrypt/ext-proc-bridge:%s", o.name, name, volume, version)
			}
			if !mount.ReadOnly {
				t.Errorf("%s: the module's volume is mounted writable", o.name)
			}
			if prefixes := proxyConfig.GetProxyStatsMatcher().GetInclusionPrefixes(); !slices.Contains(prefixes,
				"dynamicmodulescustom.meshcrypt_bridge.") {
				t.Errorf("%s: proxyStatsMatcher keeps %v, not the bridge's stats (dynamicmodulescustom.meshcrypt_bridge.)",
					o.name, prefixes)
			}
			if got := proxyConfig.GetProxyMetadata()["ENVOY_DYNAMIC_MODULES_SEARCH_PATH"]; got != mount.MountPath || got == "" {
				t.Errorf("%s: ENVOY_DYNAMIC_MODULES_SEARCH_PATH %q, the module is mounted at %q", o.name, got, mount.MountPath)
			}
		}
	}
	if patched != 2 {
		t.Errorf("patched %d labelled workloads, want 2", patched)
	}
}

// strictJSON decodes an annotation's JSON into v, refusing unknown fields (a misspelt volume field would be dropped).
func strictJSON(t *testing.T, text string, v any) {
	t.Helper()
	decoder := json.NewDecoder(strings.NewReader(text))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(v); err != nil {
		t.Fatalf("%q: %v", text, err)
	}
}
