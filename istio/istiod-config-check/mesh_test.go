// Package istiodconfigcheck runs istiod's own config generation (istio.io/istio, in-process, no cluster) on
// the built kustomize overlays and checks what a sidecar would really receive. Its own module, so the
// manifests' `go test` in istio/ stays fast; see docs/istio-config-check.md.
package istiodconfigcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/constants"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// istioVersion is the sidecar version the proxies announce; it matches the istio.io/istio in go.mod (VERSION 1.31).
const istioVersion = "1.31.0"

// layout is where an overlay puts things, as its kustomization.yaml documents it. The Services, pods and
// broker are this test's; everything Istio-specific comes from the overlay's build.
type layout struct {
	overlay                string
	clients                []string // namespaces of the labelled client workloads
	filterService, brokers string   // namespaces
	brokerPort             int
	brokersInMesh          bool // the brokers have a sidecar (else they are plain pods, as outside the mesh)
	http                   bool // the overlay keeps the HTTP EnvoyFilter
	// the Kafka listener runs the ext_proc bridge module (stock istio-proxy) in place of network ext_proc
	bridge bool
}

var layouts = []layout{
	{overlay: "sample", clients: []string{"apps"}, filterService: "meshcrypt", brokers: "kafka", brokerPort: 9092,
		brokersInMesh: true, http: true},
	{overlay: "kafka-only", clients: []string{"payments"}, filterService: "meshcrypt-system", brokers: "streaming",
		brokerPort: 9093, brokersInMesh: true},
	{overlay: "two-client-namespaces", clients: []string{"apps", "batch"}, filterService: "meshcrypt", brokers: "kafka",
		brokerPort: 9092, brokersInMesh: true, http: true},
	{overlay: "brokers-outside-mesh", clients: []string{"apps"}, filterService: "meshcrypt", brokers: "kafka",
		brokerPort: 9092, http: true},
	{overlay: "dynamic-module", clients: []string{"apps"}, filterService: "meshcrypt", brokers: "kafka", brokerPort: 9092,
		brokersInMesh: true, http: true, bridge: true},
}

// Pod addresses of the three workloads.
const (
	clientIPs       = "10.0.0.%d"
	filterServiceIP = "10.0.0.9"
	brokerIP        = "10.0.1.10"
	clientHTTPPort  = 8080
	// Service addresses
	clientServiceIPs = "172.21.0.%d"
	brokerServiceIP  = "172.21.1.10"
)

// object is one object of an overlay's build.
type object struct {
	kind, name, namespace string
	json                  []byte
	fields                map[string]any
}

// buildOverlay runs kustomize as `kubectl apply -k` does (root-only loading).
func buildOverlay(t *testing.T, overlay string) []object {
	t.Helper()
	dir := filepath.Join("..", "overlays", overlay)
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out []object
	for _, r := range resources.Resources() {
		js, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(js, &fields); err != nil {
			t.Fatal(err)
		}
		out = append(out, object{r.GetKind(), r.GetName(), r.GetNamespace(), js, fields})
	}
	return out
}

// generated is what istiod would push to each sidecar, as protojson (Envoy's own field names).
type generated struct {
	layout
	objects       []object
	clients       []*sidecarConfig // one labelled client per client namespace
	filterService sidecarConfig
	broker        *sidecarConfig // nil when the brokers are outside the mesh
}

type sidecarConfig struct {
	name, namespace string
	// the EnvoyFilter patches istiod kept for this sidecar after converting them to Envoy protos
	convertedPatches    int
	listeners, clusters []map[string]any
	rawListeners        []proto.Message
	rawClusters         []proto.Message
}

// generate feeds the overlay's Istio objects and Services, plus this test's pods and broker, to istiod's
// discovery server (its real Kubernetes registry over a fake API server) and builds LDS/CDS per sidecar.
func generate(t *testing.T, l layout) *generated {
	t.Helper()
	objs := buildOverlay(t, l.overlay)
	var istioConfig []string
	var kube []runtime.Object
	namespaces := map[string]bool{}
	var filterDeployment *appsv1.Deployment
	for _, o := range objs {
		namespaces[o.namespace] = true
		switch {
		case strings.Contains(fmt.Sprint(o.fields["apiVersion"]), "istio.io/"):
			y, err := yaml.JSONToYAML(o.json)
			if err != nil {
				t.Fatal(err)
			}
			istioConfig = append(istioConfig, string(y))
		case o.kind == "Service":
			svc := &corev1.Service{}
			if err := yaml.UnmarshalStrict(o.json, svc); err != nil {
				t.Fatal(err)
			}
			kube = append(kube, svc)
		case o.kind == "Deployment" && o.name == "meshcrypt-filter-service":
			filterDeployment = &appsv1.Deployment{}
			if err := yaml.UnmarshalStrict(o.json, filterDeployment); err != nil {
				t.Fatal(err)
			}
		}
	}
	if filterDeployment == nil {
		t.Fatal("the build has no Deployment meshcrypt-filter-service")
	}
	namespaces[l.brokers], namespaces["istio-system"] = true, true

	// the filter-service pod is the Deployment's own template, so named target ports resolve as in a cluster
	filterPod := pod(l.filterService, "meshcrypt-filter-service-0", filterServiceIP, filterDeployment.Spec.Template.Labels)
	filterPod.Spec = filterDeployment.Spec.Template.Spec
	clientLabels := map[string]string{"app": "kafka-client", "meshcrypt.io/kafka": "enabled"}
	if l.http {
		clientLabels["meshcrypt.io/http"] = "enabled"
	}
	var clientPods []*corev1.Pod
	for i, ns := range l.clients {
		namespaces[ns] = true
		p := pod(ns, "kafka-client-0", fmt.Sprintf(clientIPs, i+5), clientLabels)
		p.Spec.Containers = []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: clientHTTPPort, Protocol: corev1.ProtocolTCP}}}}
		clientPods = append(clientPods, p)
		kube = append(kube, p, service(ns, "kafka-client", fmt.Sprintf(clientServiceIPs, i+5), "http", clientHTTPPort, clientLabels))
	}
	brokerPod := pod(l.brokers, "kafka-0", brokerIP, map[string]string{"app": "kafka"})
	brokerPod.Spec.Containers = []corev1.Container{{Name: "kafka", Ports: []corev1.ContainerPort{
		{Name: "tcp-kafka", ContainerPort: int32(l.brokerPort), Protocol: corev1.ProtocolTCP}}}}
	kube = append(kube, filterPod, brokerPod, service(l.brokers, "kafka", brokerServiceIP, "tcp-kafka", l.brokerPort, map[string]string{"app": "kafka"}))
	for ns := range namespaces {
		if ns != "" {
			kube = append(kube, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
	}

	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		KubernetesObjects: kube,
		ConfigString:      strings.Join(istioConfig, "\n---\n"),
	})
	out := &generated{layout: l, objects: objs}
	type sidecar struct {
		pod  *corev1.Pod
		into *sidecarConfig
	}
	var proxies []sidecar
	for _, p := range clientPods {
		c := &sidecarConfig{name: "client-" + p.Namespace}
		out.clients = append(out.clients, c)
		proxies = append(proxies, sidecar{p, c})
	}
	out.filterService.name = "filter-service"
	proxies = append(proxies, sidecar{filterPod, &out.filterService})
	if l.brokersInMesh {
		out.broker = &sidecarConfig{name: "broker"}
		proxies = append(proxies, sidecar{brokerPod, out.broker})
	}
	for _, p := range proxies {
		p.into.namespace = p.pod.Namespace
		proxy := s.SetupProxy(&model.Proxy{
			ID:              p.pod.Name + "." + p.pod.Namespace,
			ConfigNamespace: p.pod.Namespace,
			Labels:          p.pod.Labels,
			IPAddresses:     []string{p.pod.Status.PodIP},
			Metadata: &model.NodeMetadata{
				Namespace:    p.pod.Namespace,
				Labels:       p.pod.Labels,
				ClusterID:    constants.DefaultClusterName,
				IstioVersion: istioVersion,
			},
		})
		if merged := s.PushContext().EnvoyFilters(proxy); merged != nil {
			for _, patches := range merged.Patches {
				p.into.convertedPatches += len(patches)
			}
		}
		for _, l := range s.Listeners(proxy) {
			p.into.rawListeners = append(p.into.rawListeners, l)
			p.into.listeners = append(p.into.listeners, asJSON(t, l))
		}
		for _, c := range s.Clusters(proxy) {
			p.into.rawClusters = append(p.into.rawClusters, c)
			p.into.clusters = append(p.into.clusters, asJSON(t, c))
		}
	}
	return out
}

func pod(namespace, name, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}

func service(namespace, name, clusterIP, portName string, port int, selector map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.ServiceSpec{
			Selector:  map[string]string{"app": selector["app"]},
			ClusterIP: clusterIP,
			Ports: []corev1.ServicePort{{
				Name: portName, Port: int32(port), TargetPort: intstr.FromString(portName), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

// asJSON is the protojson form with Envoy's proto field names, zero values included (so a `false` the
// manifest sets is visible); every typed_config must resolve, as it must for Envoy.
func asJSON(t *testing.T, m proto.Message) map[string]any {
	t.Helper()
	js, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		t.Fatalf("cannot print a generated resource as JSON: %v", err)
	}
	var out map[string]any
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeGenerated writes each sidecar's listeners and clusters (plain protojson, as Envoy reads them) to
// $MESHCRYPT_ISTIOD_CONFIG_DIR/<overlay>/, for a reader or a test that starts Envoy with them.
func writeGenerated(t *testing.T, g *generated) {
	dir := os.Getenv("MESHCRYPT_ISTIOD_CONFIG_DIR")
	if dir == "" {
		return
	}
	dir = filepath.Join(dir, g.overlay)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	all := append([]*sidecarConfig{&g.filterService}, g.clients...)
	if g.broker != nil {
		all = append(all, g.broker)
	}
	for _, c := range all {
		for kind, resources := range map[string][]proto.Message{"listeners": c.rawListeners, "clusters": c.rawClusters} {
			var docs []json.RawMessage
			for _, r := range resources {
				js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
				if err != nil {
					t.Fatal(err)
				}
				docs = append(docs, js)
			}
			js, err := json.MarshalIndent(docs, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, c.name+"-"+kind+".json"), js, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
