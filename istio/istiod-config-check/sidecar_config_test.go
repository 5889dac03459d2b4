package istiodconfigcheck

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	extProcNetwork = "envoy.filters.network.ext_proc"
	extProcHTTP    = "envoy.filters.http.ext_proc"
	tcpProxy       = "envoy.filters.network.tcp_proxy"
	hcm            = "envoy.filters.network.http_connection_manager"
	router         = "envoy.filters.http.router"
	metadataMx     = "istio.metadata_exchange"
	dynamicModules = "envoy.filters.network.dynamic_modules"
)

// TestEveryOverlayHasALayout: an overlay this check does not know would go unchecked.
func TestEveryOverlayHasALayout(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "overlays", "*", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range dirs {
		name := filepath.Base(filepath.Dir(k))
		if !slices.ContainsFunc(layouts, func(l layout) bool { return l.overlay == name }) {
			t.Errorf("overlay %s has no layout in mesh_test.go: istiod's config for it is not checked", name)
		}
	}
}

// TestIstiodGeneratedSidecarConfig generates, per overlay, what istiod pushes to a labelled Kafka/HTTP
// client's sidecar, the filter-service's and a broker's, and checks it.
func TestIstiodGeneratedSidecarConfig(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.overlay, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join("..", "overlays", l.overlay)); err != nil {
				t.Fatalf("overlay %s: %v", l.overlay, err)
			}
			generated := generate(t, l)
			writeGenerated(t, generated)
			for _, client := range generated.clients {
				g := clientView{generated, client}
				t.Run(client.namespace, func(t *testing.T) {
					t.Run("GivenTheNamespacesEnvoyFilters_WhenIstiodConvertsThem_ThenItDiscardsNoPatch", g.noPatchDiscarded)
					t.Run("GivenEveryPatch_WhenIstiodBuildsTheClientSidecar_ThenEachAppearsWithEveryFieldItSets", g.everyPatchApplied)
					t.Run("GivenTheKafkaListener_WhenGenerated_ThenExtProcFailsClosedBeforeTcpProxyAndNothingElseReachesTheBrokers", g.kafkaListener)
					t.Run("GivenExtProc_WhenGenerated_ThenItCallsTheClusterIstiodGeneratedForTheFilterService", g.extProcCluster)
					t.Run("GivenTheBridgeModule_WhenGenerated_ThenItReachesTheFilterServiceOnlyThroughALoopbackListenerToItsMutualTlsCluster", g.bridgeLoopback)
					t.Run("GivenTheKafkaCluster_WhenTheBrokersSidecarIsGenerated_ThenTheirAlpnNegotiatesNoMetadataExchange", g.kafkaALPN)
					t.Run("GivenTheHttpEnvoyFilter_WhenGenerated_ThenExtProcSitsBeforeTheRouterOfEveryHcmItTargets", g.httpExtProc)
				})
			}
			g := clientView{generated, generated.clients[0]}
			t.Run("GivenTheFilterServicesSidecar_WhenGenerated_ThenOnlyMutualTlsFromTheClientNamespacesReachesIt", g.filterServiceInbound)
		})
	}
}

// clientView checks one labelled client's sidecar.
type clientView struct {
	*generated
	client *sidecarConfig
}

// ---- EnvoyFilter patches

type patch struct {
	filter           string
	index            int
	applyTo, context string
	operation        string
	value            map[string]any
	fields           map[string]any
}

func (g clientView) patches(t *testing.T) []patch {
	var out []patch
	for _, o := range g.objects {
		if o.kind != "EnvoyFilter" || o.namespace != g.client.namespace {
			continue
		}
		for i, p := range at(o.fields, "spec", "configPatches").([]any) {
			value, _ := at(p, "patch", "value").(map[string]any)
			out = append(out, patch{o.name, i, str(at(p, "applyTo")), str(at(p, "match", "context")),
				str(at(p, "patch", "operation")), value, p.(map[string]any)})
		}
	}
	if len(out) == 0 {
		t.Fatalf("the overlay has no EnvoyFilter patch in namespace %s", g.client.namespace)
	}
	return out
}

func (p patch) String() string {
	return fmt.Sprintf("EnvoyFilter %s configPatches[%d] (%s %s %s)", p.filter, p.index, p.operation, p.applyTo, p.context)
}

func (g clientView) noPatchDiscarded(t *testing.T) {
	if want := len(g.patches(t)); g.client.convertedPatches != want {
		t.Errorf("the manifests hold %d patches for the client sidecar, istiod kept %d after converting them to "+
			"Envoy protos (an unknown @type or field is logged above as \"failed to build envoy filter value\")",
			want, g.client.convertedPatches)
	}
}

func (g clientView) everyPatchApplied(t *testing.T) {
	patches := g.patches(t)
	applied := 0
	for _, p := range patches {
		if problems := g.applied(p); len(problems) > 0 {
			t.Errorf("NOT APPLIED: %s:\n  %s", p, strings.Join(problems, "\n  "))
			continue
		}
		applied++
	}
	t.Logf("%d of %d patches appear in the client sidecar's config as written", applied, len(patches))
}

// applied finds p's effect in the client sidecar's config; it returns what is missing or differs.
func (g clientView) applied(p patch) []string {
	switch {
	case p.operation == "ADD" && p.applyTo == "LISTENER":
		l := byName(g.client.listeners, str(p.value["name"]))
		if l == nil {
			return []string{"no listener " + str(p.value["name"])}
		}
		return subset(p.value, l, "")
	case p.operation == "ADD" && p.applyTo == "CLUSTER":
		c := byName(g.client.clusters, str(p.value["name"]))
		if c == nil {
			return []string{"no cluster " + str(p.value["name"])}
		}
		return subset(p.value, c, "")
	case p.operation == "INSERT_BEFORE" && p.applyTo == "HTTP_FILTER":
		if at(p.fields, "match", "listener", "filterChain", "filter", "name") != hcm {
			return []string{"this check only knows HTTP_FILTER patches matching " + hcm}
		}
		before := str(at(p.fields, "match", "listener", "filterChain", "filter", "subFilter", "name"))
		var problems []string
		hcms := 0
		for _, h := range g.hcms(g.client.listeners, direction(p.context)) {
			hcms++
			names := filterNames(at(h.config, "http_filters"))
			i := slices.Index(names, before)
			if i < 1 || names[i-1] != str(p.value["name"]) {
				problems = append(problems, fmt.Sprintf("%s: http_filters %v", h.where, names))
				continue
			}
			problems = append(problems, subset(p.value, at(h.config, "http_filters", i-1), h.where)...)
		}
		if hcms == 0 {
			problems = append(problems, "matched no HTTP connection manager of direction "+direction(p.context))
		}
		return problems
	}
	return []string{"this check does not know how to find the effect of " + p.operation + " " + p.applyTo + ": add it"}
}

// subset lists where got lacks or differs from a field want sets (every field of a patch must survive istiod).
func subset(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want an object, istiod generated %v", path, got)}
		}
		var out []string
		for k, v := range w {
			gv, present := g[k]
			if !present || gv == nil {
				out = append(out, fmt.Sprintf("%s.%s: set to %v in the patch, absent from istiod's output", path, k, v))
				continue
			}
			out = append(out, subset(v, gv, path+"."+k)...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %d items %v, istiod generated %v", path, len(w), want, got)}
		}
		var out []string
		for i := range w {
			out = append(out, subset(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return []string{fmt.Sprintf("%s: patch sets %v, istiod generated %v", path, want, got)}
		}
		return nil
	}
}

// ---- the Kafka path

func (g clientView) kafkaListener(t *testing.T) {
	name := fmt.Sprintf("meshcrypt-kafka-%d", g.brokerPort)
	l := byName(g.client.listeners, name)
	if l == nil {
		t.Fatalf("the client sidecar has no listener %s; listeners: %v", name, names(g.client.listeners))
	}
	if at(l, "bind_to_port") != false {
		t.Error("the Kafka listener binds a socket; it must only be handed connections by the virtual outbound listener")
	}
	if got := fmt.Sprint(at(l, "address", "socket_address", "port_value")); got != fmt.Sprint(g.brokerPort) {
		t.Errorf("the Kafka listener is on port %s, the brokers on %d", got, g.brokerPort)
	}
	chains := at(l, "filter_chains").([]any)
	if len(chains) != 1 || at(l, "default_filter_chain") != nil {
		t.Fatalf("the Kafka listener must have exactly one filter chain, got %d (default %v)", len(chains), at(l, "default_filter_chain"))
	}
	filters := at(chains[0], "filters").([]any)
	kafkaFilter := extProcNetwork
	if g.bridge {
		kafkaFilter = dynamicModules
	}
	if got := filterNames(filters); !slices.Equal(got, []string{kafkaFilter, tcpProxy}) {
		t.Fatalf("the Kafka listener's filters are %v, want exactly [%s %s]", got, kafkaFilter, tcpProxy)
	}
	extProc, proxy := at(filters[0], "typed_config"), at(filters[1], "typed_config")
	statPrefix := fmt.Sprintf("meshcrypt_kafka_%d", g.brokerPort)
	if g.bridge {
		// the module has no fail-open mode; its config is checked key by key in istio/manifests_test.go
		if at(extProc, "dynamic_module_config", "name") != "meshcrypt_ext_proc_bridge" || at(extProc, "filter_name") != "ext_proc_bridge" {
			t.Errorf("the bridge module is not named as its build names it: %s", mustJSON(extProc))
		}
	} else {
		if at(extProc, "failure_mode_allow") != false {
			t.Error("istiod generated network ext_proc with failure_mode_allow true: Kafka would flow in plaintext when the filter-service fails")
		}
		if got := at(extProc, "stat_prefix"); got != statPrefix {
			t.Errorf("ext_proc stat_prefix %q, want %q (Istio 1.26 dropped it)", got, statPrefix)
		}
	}
	if got := at(proxy, "stat_prefix"); got != statPrefix {
		t.Errorf("tcp_proxy stat_prefix %q, want %q", got, statPrefix)
	}
	if target := str(at(proxy, "cluster")); byName(g.client.clusters, target) == nil {
		t.Errorf("tcp_proxy forwards to %q, which is not in the client sidecar's clusters", target)
	}

	// the Sidecar resource hides the brokers: no Istio listener or cluster of its own reaches them
	for _, other := range g.client.listeners {
		if other["name"] != name && fmt.Sprint(at(other, "address", "socket_address", "port_value")) == fmt.Sprint(g.brokerPort) {
			t.Errorf("listener %s also takes port %d: Kafka could bypass ext_proc", other["name"], g.brokerPort)
		}
	}
	for _, c := range g.client.clusters {
		if strings.Contains(str(c["name"]), "."+g.brokers+".svc.") {
			t.Errorf("the client sidecar has cluster %s in the brokers' namespace: Kafka could bypass ext_proc", c["name"])
		}
	}
	virtual := byName(g.client.listeners, "virtualOutbound")
	if virtual == nil {
		t.Fatal("no virtualOutbound listener")
	}
	passthrough := str(at(virtual, "default_filter_chain", "filters", 0, "typed_config", "cluster"))
	for _, chain := range at(virtual, "filter_chains").([]any) {
		for _, f := range at(chain, "filters").([]any) {
			if at(f, "name") == tcpProxy && at(chain, "filter_chain_match", "destination_port") == nil {
				passthrough = str(at(f, "typed_config", "cluster"))
			}
		}
	}
	if passthrough != "BlackHoleCluster" {
		t.Errorf("the virtual outbound listener sends unknown destinations to %q, want BlackHoleCluster (REGISTRY_ONLY)", passthrough)
	}
}

// filterServiceCluster is the outbound cluster istiod generated for the built filter-service Service.
func (g clientView) filterServiceCluster(t *testing.T) (name, host string, cluster map[string]any) {
	var svc object
	for _, o := range g.objects {
		if o.kind == "Service" && o.name == "meshcrypt-filter-service" {
			svc = o
		}
	}
	port := fmt.Sprint(at(svc.fields, "spec", "ports", 0, "port"))
	var found []string
	for _, c := range g.client.clusters {
		n := str(c["name"])
		parts := strings.Split(n, "|")
		if len(parts) != 4 || parts[0] != "outbound" || parts[1] != port || parts[2] != "" {
			continue
		}
		for _, s := range asList(at(c, "metadata", "filter_metadata", "istio", "services")) {
			if at(s, "name") == svc.name && at(s, "namespace") == svc.namespace {
				found = append(found, n)
				name, host, cluster = n, str(at(s, "host")), c
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("istiod generated %d outbound clusters for Service %s/%s port %s in the client sidecar: %v",
			len(found), svc.namespace, svc.name, port, found)
	}
	return name, host, cluster
}

func (g clientView) extProcCluster(t *testing.T) {
	name, host, cluster := g.filterServiceCluster(t)
	t.Logf("istiod's cluster for the filter-service: %s", name)
	calls := 0
	for _, l := range g.client.listeners {
		for _, grpc := range findKey(l, "grpc_service") {
			calls++
			if got := str(at(grpc, "envoy_grpc", "cluster_name")); got != name {
				t.Errorf("listener %s: ext_proc calls cluster %q, istiod named the filter-service's %q", l["name"], got, name)
			}
			if got := str(at(grpc, "envoy_grpc", "authority")); got != host {
				t.Errorf("listener %s: ext_proc sends :authority %q, the filter-service's host is %q", l["name"], got, host)
			}
		}
	}
	if calls == 0 {
		t.Fatal("no ext_proc in the client sidecar calls a gRPC service")
	}
	if at(cluster, "typed_extension_protocol_options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
		"explicit_http_config", "http2_protocol_options") == nil {
		t.Errorf("cluster %s does not speak HTTP/2 upstream; gRPC needs it (name the Service port grpc-*)", name)
	}
	if !strings.Contains(mustJSON(at(cluster, "transport_socket_matches")), "tlsMode-istio") {
		t.Errorf("cluster %s has no Istio mTLS transport socket match", name)
	}
}

// bridgeLoopback: the bridge module dials the filter_service of its config itself (plaintext HTTP/2), so that must be a
// listener of the same sidecar, bound to loopback only, forwarding with tcp_proxy to exactly the outbound cluster istiod
// generated for the filter-service Service, whose Istio mTLS presents this pod's workload certificate (SDS "default"):
// the filter-service's sidecar then sees, and appends to XFCC, the client's identity, as for network ext_proc.
// Overlays without the bridge must not run the module.
func (g clientView) bridgeLoopback(t *testing.T) {
	var modules []any
	for _, l := range g.client.listeners {
		for _, chain := range append(asList(at(l, "filter_chains")), at(l, "default_filter_chain")) {
			for _, f := range asList(at(chain, "filters")) {
				if at(f, "name") == dynamicModules {
					modules = append(modules, at(f, "typed_config"))
				}
			}
		}
	}
	if !g.bridge {
		if len(modules) > 0 {
			t.Errorf("the overlay uses network ext_proc, yet the client sidecar runs %d dynamic module filters", len(modules))
		}
		return
	}
	if len(modules) != 1 {
		t.Fatalf("want the bridge module on the Kafka listener only, found %d", len(modules))
	}
	var config struct {
		FilterService string `json:"filter_service"`
	}
	if err := json.Unmarshal([]byte(str(at(modules[0], "filter_config", "value"))), &config); err != nil {
		t.Fatalf("the module's filter_config as istiod generated it: %v", err)
	}
	address, ok := strings.CutPrefix(config.FilterService, "http://")
	if !ok {
		t.Fatalf("the module calls %q, want http://127.0.0.1:<loopback listener>", config.FilterService)
	}
	var loopback []map[string]any
	for _, l := range g.client.listeners {
		sa := at(l, "address", "socket_address")
		if fmt.Sprintf("%v:%v", at(sa, "address"), at(sa, "port_value")) == address {
			loopback = append(loopback, l)
		}
	}
	if len(loopback) != 1 {
		t.Fatalf("%d listeners in the client sidecar on %s, the module's filter_service; want one", len(loopback), address)
	}
	l := loopback[0]
	t.Logf("the module calls %s: listener %s", address, l["name"])
	if !strings.HasPrefix(address, "127.0.0.1:") {
		t.Errorf("the module's listener is on %s: reachable from outside the pod", address)
	}
	if at(l, "bind_to_port") == false {
		t.Errorf("listener %s is not bound: the module could not connect to it", l["name"])
	}
	chains := asList(at(l, "filter_chains"))
	if len(chains) != 1 || at(l, "default_filter_chain") != nil || !slices.Equal(filterNames(at(chains[0], "filters")), []string{tcpProxy}) {
		t.Fatalf("listener %s must be one chain of tcp_proxy alone: %s", l["name"], mustJSON(chains))
	}
	name, _, cluster := g.filterServiceCluster(t)
	if got := str(at(chains[0], "filters", 0, "typed_config", "cluster")); got != name {
		t.Errorf("listener %s forwards to %q; only the filter-service's cluster %q may be reached through it", l["name"], got, name)
	}
	var mtls any
	for _, m := range asList(at(cluster, "transport_socket_matches")) {
		if at(m, "name") == "tlsMode-istio" {
			mtls = m
		}
	}
	if sds := findKey(mtls, "tls_certificate_sds_secret_configs"); len(sds) != 1 || at(sds[0], 0, "name") != "default" {
		t.Errorf("cluster %s does not present the pod's workload certificate (SDS default) over Istio mTLS: %s", name, mustJSON(mtls))
	}
}

// kafkaALPN: the ALPN the meshcrypt Kafka cluster offers, against what the broker's sidecar (in the
// mesh) answers with on the Kafka port. If they agree on istio-peer-exchange, the broker's
// metadata-exchange filter writes its preamble into the stream, which only Istio's upstream
// metadata-exchange cluster filter consumes; the filter-service would read it as a Kafka frame.
func (g clientView) kafkaALPN(t *testing.T) {
	name := fmt.Sprintf("meshcrypt-kafka-%d", g.brokerPort)
	c := byName(g.client.clusters, name)
	if c == nil {
		t.Fatalf("no cluster %s in the client sidecar", name)
	}
	offered := stringList(at(c, "transport_socket", "typed_config", "common_tls_context", "alpn_protocols"))
	upstreamMx := slices.Contains(filterNames(at(c, "filters")), metadataMx)
	t.Logf("cluster %s offers ALPN %v, upstream metadata exchange: %v", name, offered, upstreamMx)
	if g.broker == nil {
		// brokers without a sidecar answer no Istio mTLS: the overlay must not ask for it
		if sds := findKey(at(c, "transport_socket"), "tls_certificate_sds_secret_configs"); len(sds) > 0 {
			t.Errorf("cluster %s presents the Istio workload certificate to brokers outside the mesh, which do not speak Istio mTLS", name)
		}
		return
	}
	if !slices.Contains(offered, "istio") {
		t.Errorf("cluster %s offers ALPN %v without \"istio\": the broker's sidecar would not pick its mTLS chain", name, offered)
	}
	if san := mustJSON(at(c, "transport_socket", "typed_config", "common_tls_context", "combined_validation_context")); !strings.Contains(san, "/ns/"+g.brokers+"/") {
		t.Errorf("cluster %s accepts peers %s, not the brokers' namespace %s", name, san, g.brokers)
	}

	// Istio's own invariant, in the same sidecar: a cluster offering istio-peer-exchange carries the filter
	// that consumes the peer's preamble
	for _, other := range g.client.clusters {
		tls := mustJSON(at(other, "transport_socket")) + mustJSON(at(other, "transport_socket_matches"))
		if strings.Contains(tls, `"istio-peer-exchange"`) && !slices.Contains(filterNames(at(other, "filters")), metadataMx) {
			t.Errorf("cluster %s offers ALPN istio-peer-exchange without the %s cluster filter, unlike every cluster istiod builds",
				other["name"], metadataMx)
		}
	}

	// what the broker's sidecar does with that offer
	chains := 0
	for _, chain := range inboundChains(g.broker.listeners, g.brokerPort) {
		if at(chain, "filter_chain_match", "transport_protocol") != "tls" {
			continue
		}
		accepted := stringList(at(chain, "filter_chain_match", "application_protocols"))
		if len(accepted) > 0 && !slices.ContainsFunc(offered, func(p string) bool { return slices.Contains(accepted, p) }) {
			continue
		}
		chains++
		server := stringList(at(chain, "transport_socket", "typed_config", "common_tls_context", "alpn_protocols"))
		negotiated := ""
		for _, p := range server { // BoringSSL: the server's preference, among what the client offers
			if slices.Contains(offered, p) {
				negotiated = p
				break
			}
		}
		mx := slices.Contains(filterNames(at(chain, "filters")), metadataMx)
		t.Logf("broker sidecar chain %s: server ALPN %v, negotiated %q, metadata exchange filter: %v", at(chain, "name"), server, negotiated, mx)
		if negotiated == "istio-peer-exchange" && mx && !upstreamMx {
			t.Errorf("cluster %s offers ALPN %v; the broker's sidecar (chain %s) negotiates istio-peer-exchange and its %s "+
				"filter writes a metadata preamble into the Kafka stream, which nothing on the client side consumes: "+
				"offer [\"istio\"] only", name, offered, at(chain, "name"), metadataMx)
		}
	}
	if chains == 0 {
		t.Errorf("the broker's sidecar has no mTLS chain on port %d for ALPN %v", g.brokerPort, offered)
	}
}

// ---- HTTP ext_proc

type hcmAt struct {
	where  string
	config any
}

// hcms lists the HTTP connection managers of every listener of the given direction.
func (g clientView) hcms(listeners []map[string]any, dir string) []hcmAt {
	var out []hcmAt
	for _, l := range listeners {
		if at(l, "traffic_direction") != dir {
			continue
		}
		chains := asList(at(l, "filter_chains"))
		if d := at(l, "default_filter_chain"); d != nil {
			chains = append(chains, d)
		}
		for _, chain := range chains {
			for _, f := range asList(at(chain, "filters")) {
				if at(f, "name") == hcm {
					out = append(out, hcmAt{fmt.Sprintf("listener %s chain %s", l["name"], at(chain, "name")), at(f, "typed_config")})
				}
			}
		}
	}
	return out
}

func direction(context string) string {
	return map[string]string{"SIDECAR_INBOUND": "INBOUND", "SIDECAR_OUTBOUND": "OUTBOUND"}[context]
}

func (g clientView) httpExtProc(t *testing.T) {
	if len(inboundChains(g.client.listeners, clientHTTPPort)) == 0 {
		t.Fatalf("istiod generated no inbound chain for the client's HTTP port %d: the pod or Service of the test is wrong", clientHTTPPort)
	}
	for _, dir := range []string{"INBOUND", "OUTBOUND"} {
		hcms := g.hcms(g.client.listeners, dir)
		if len(hcms) == 0 {
			t.Fatalf("istiod generated no %s HTTP connection manager for the client: the check would see nothing", dir)
		}
		for _, h := range hcms {
			names := filterNames(at(h.config, "http_filters"))
			i := slices.Index(names, extProcHTTP)
			switch {
			case !g.http && i >= 0:
				t.Errorf("%s: the overlay drops HTTP ext_proc, yet it is there: %v", h.where, names)
			case g.http && (i < 0 || i+1 >= len(names) || names[i+1] != router):
				t.Errorf("%s: want %s right before %s, got %v", h.where, extProcHTTP, router, names)
			}
		}
		t.Logf("%d %s HTTP connection managers in the client sidecar", len(hcms), dir)
	}
	unlabelled := g.filterService.listeners
	if g.broker != nil {
		unlabelled = append(unlabelled, g.broker.listeners...)
	}
	for _, l := range unlabelled {
		if len(findKey(l, "grpc_service")) > 0 {
			t.Errorf("listener %s of an unlabelled sidecar calls ext_proc: the workload selectors leak", l["name"])
		}
	}
}

// ---- the filter-service's own sidecar

func (g clientView) filterServiceInbound(t *testing.T) {
	_, _, _ = g.filterServiceCluster(t)
	port := 0
	for _, o := range g.objects {
		if o.kind == "Deployment" && o.name == "meshcrypt-filter-service" {
			for _, p := range asList(at(o.fields, "spec", "template", "spec", "containers", 0, "ports")) {
				if at(p, "name") == "grpc-extproc" {
					port = int(at(p, "containerPort").(float64))
				}
			}
		}
	}
	if port == 0 {
		t.Fatal("the filter-service container has no port grpc-extproc")
	}
	chains := inboundChains(g.filterService.listeners, port)
	if len(chains) == 0 {
		t.Fatalf("the filter-service's sidecar has no inbound chain for port %d", port)
	}
	for _, chain := range chains {
		where := fmt.Sprintf("inbound chain %s", at(chain, "name"))
		if at(chain, "filter_chain_match", "transport_protocol") != "tls" ||
			at(chain, "transport_socket", "typed_config", "require_client_certificate") != true {
			t.Errorf("%s accepts connections without a client certificate (PeerAuthentication STRICT not applied)", where)
		}
		hcms := 0
		for _, f := range asList(at(chain, "filters")) {
			if at(f, "name") != hcm {
				continue
			}
			hcms++
			if c := at(f, "typed_config", "codec_type"); c != "HTTP2" && c != "AUTO" {
				t.Errorf("%s: codec %v, gRPC needs HTTP/2", where, c)
			}
			// the filter-service takes the caller's identity from the XFCC element its own sidecar appends (the peer
			// certificate's URI SAN): the client pod's, through network ext_proc and through the bridge's loopback hop alike
			if at(f, "typed_config", "forward_client_cert_details") != "APPEND_FORWARD" ||
				at(f, "typed_config", "set_current_client_cert_details", "uri") != true {
				t.Errorf("%s: XFCC %v %v; the filter-service needs the peer's URI appended (APPEND_FORWARD, uri)", where,
					at(f, "typed_config", "forward_client_cert_details"), at(f, "typed_config", "set_current_client_cert_details"))
			}
			var rbac any
			for _, h := range asList(at(f, "typed_config", "http_filters")) {
				if at(h, "name") == "envoy.filters.http.rbac" {
					rbac = h
				}
			}
			policy := mustJSON(rbac)
			if rbac == nil {
				t.Errorf("%s: no RBAC filter (AuthorizationPolicy not applied)", where)
			}
			for _, ns := range g.layout.clients {
				if !strings.Contains(policy, "/ns/"+ns+"/") {
					t.Errorf("%s: RBAC does not admit client namespace %s: %s", where, ns, policy)
				}
			}
			if n := strings.Count(policy, "/ns/"); n != len(g.layout.clients) {
				t.Errorf("%s: RBAC names %d namespaces, the overlay has %d client namespaces: %s", where, n, len(g.layout.clients), policy)
			}
		}
		if hcms == 0 {
			t.Errorf("%s: no HTTP connection manager; the filter-service's port is not treated as gRPC", where)
		}
	}
}

// inboundChains: the virtualInbound chains for a destination port.
func inboundChains(listeners []map[string]any, port int) []any {
	var out []any
	for _, chain := range asList(at(byName(listeners, "virtualInbound"), "filter_chains")) {
		if fmt.Sprint(at(chain, "filter_chain_match", "destination_port")) == fmt.Sprint(port) {
			out = append(out, chain)
		}
	}
	return out
}

// ---- JSON walking

// at walks map keys and list indexes; nil when the path is absent.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func stringList(v any) []string {
	var out []string
	for _, s := range asList(v) {
		out = append(out, str(s))
	}
	return out
}

func filterNames(v any) []string {
	var out []string
	for _, f := range asList(v) {
		out = append(out, str(at(f, "name")))
	}
	return out
}

func byName(resources []map[string]any, name string) map[string]any {
	for _, r := range resources {
		if r["name"] == name {
			return r
		}
	}
	return nil
}

func names(resources []map[string]any) []string {
	var out []string
	for _, r := range resources {
		out = append(out, str(r["name"]))
	}
	return out
}

// findKey returns every value stored under key anywhere below v.
func findKey(v any, key string) []any {
	var out []any
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			if k == key && child != nil {
				out = append(out, child)
				continue
			}
			out = append(out, findKey(child, key)...)
		}
	case []any:
		for _, child := range x {
			out = append(out, findKey(child, key)...)
		}
	}
	return out
}

func mustJSON(v any) string {
	js, _ := json.Marshal(v)
	return string(js)
}
