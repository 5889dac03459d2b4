#!/usr/bin/env bash
# Tells whether a running sidecar can run meshcrypt's Kafka path, and whether it does.
#   istio/check-sidecar.sh NAMESPACE POD [KAFKA_PORT]     (default port 9092)
# Exit 0: the sidecar can run a Kafka filter (network ext_proc, or the ext_proc bridge module of
# istio/overlays/dynamic-module through dynamic_modules), accepted the meshcrypt listener with it, and nothing
# else serves the Kafka port. Exit 1: a check failed (printed). Exit 2: usage or kubectl errors.
set -euo pipefail

usage() { echo "usage: $0 NAMESPACE POD [KAFKA_PORT]" >&2; exit 2; }
[[ $# -ge 2 && $# -le 3 ]] || usage
ns=$1 pod=$2 port=${3:-9092}
[[ $port =~ ^[0-9]+$ ]] || usage
listener="meshcrypt-kafka-$port"
failed=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; failed=1; }

admin() { # GET on the sidecar's Envoy admin API, through pilot-agent (no curl needed in the image)
  kubectl exec -n "$ns" "$pod" -c istio-proxy -- pilot-agent request GET "$1" \
    || { echo "cannot reach the istio-proxy admin API of $ns/$pod" >&2; exit 2; }
}

# 1. Is a Kafka filter compiled into this proxy? Stock istio-proxy images lack network ext_proc; from Istio 1.31
# they have dynamic_modules, which runs the ext_proc bridge module (istio/overlays/dynamic-module).
server_info=$(admin server_info)
if grep -q '"envoy.filters.network.ext_proc"' <<<"$server_info"; then
  ok "proxy has envoy.filters.network.ext_proc"
elif grep -q '"envoy.filters.network.dynamic_modules"' <<<"$server_info"; then
  ok "proxy has envoy.filters.network.dynamic_modules, not network ext_proc: only the ext_proc bridge (istio/overlays/dynamic-module) can run here"
else
  bad "proxy image lacks envoy.filters.network.ext_proc and envoy.filters.network.dynamic_modules: every meshcrypt Kafka listener is rejected (see docs/istio.md, "Requirement first")"
fi

# 2. Did the proxy reject configuration? Rejected listeners show up in the LDS counters and, in the
# config dump, as error_state on the listener.
stats=$(admin "stats?filter=listener_manager.lds.update_rejected")
rejected=$(sed -n 's/^listener_manager\.lds\.update_rejected: //p' <<<"$stats")
if [[ ${rejected:-0} == 0 ]]; then
  ok "no LDS update rejected"
else
  bad "$rejected LDS update(s) rejected (NACK); istioctl proxy-status shows which, the proxy log says why"
fi
dump=$(admin "config_dump?resource=dynamic_listeners&include_eds=false")
if grep -q '"error_state"' <<<"$dump"; then
  bad "a listener is in error_state: $(grep -o '"details": "[^"]*"' <<<"$dump" | head -n 3 | tr '\n' ' ')"
fi

# 3. The fail-closed invariant: the meshcrypt listener is active (a rejected first version exists
# only as error_state) with ext_proc or the bridge module in its active state, and no other active listener serves
# the Kafka port (Istio's own listener for a visible Kafka service would bypass meshcrypt).
active_listeners=$(admin listeners)   # one "name::address" line per active listener
active=$(admin "config_dump?resource=dynamic_listeners&name_regex=%5E$listener%24&mask=active_state")
if ! grep -qx "$listener::.*" <<<"$active_listeners"; then
  bad "listener $listener is not active: Kafka connections on port $port hit the BlackHoleCluster (closed, not plaintext) until it is"
elif grep -q '"name": "envoy.filters.network.ext_proc"' <<<"$active"; then
  ok "listener $listener is active with network ext_proc"
elif grep -q '"filter_name": "ext_proc_bridge"' <<<"$active"; then
  ok "listener $listener is active with the ext_proc bridge module"
  # the module reaches the filter-service through a loopback listener of the same EnvoyFilter (in the dump its
  # JSON config is a string, so its quotes are escaped)
  loopback=$(grep -o 'filter_service\\": *\\"http://127\.0\.0\.1:[0-9]*' <<<"$active" | grep -o '127\.0\.0\.1:[0-9]*$' | head -n 1 || true)
  if [[ -n $loopback ]] && grep -q "::$loopback\$" <<<"$active_listeners"; then
    ok "the bridge's loopback listener $loopback to the filter-service is active"
  else
    bad "the bridge calls ${loopback:-an address that is not 127.0.0.1}, where no listener is active: every Kafka connection is closed"
  fi
else
  bad "listener $listener is active without network ext_proc or the bridge module"
fi
others=$(grep -E ":$port\$" <<<"$active_listeners" | grep -v "^$listener::" || true)
if [[ -z $others ]]; then
  ok "no other listener serves port $port"
else
  bad "other listeners serve port $port and bypass meshcrypt: $(tr '\n' ' ' <<<"$others")(is the Kafka namespace in the Sidecar egress hosts?)"
fi

# 4. What istiod thinks: SYNCED for every xDS type, no STALE/NACK for this proxy.
if command -v istioctl >/dev/null; then
  status=$(istioctl proxy-status "$pod.$ns" 2>&1 || true)
  if grep -qE 'STALE|NACK' <<<"$status"; then
    bad "istioctl proxy-status: $(tail -n 1 <<<"$status")"
  else
    ok "istioctl proxy-status reports no STALE/NACK"
  fi
fi

exit "$failed"
