#!/usr/bin/env bash
# Envoy settings vs CPU per record (issue 14, docs/envoy-tuning.md). Brings a mesh up, copies the shared Kafka sidecar's
# configuration from its /config_dump into a static bootstrap, stops that sidecar and, per variant, runs Envoy on the
# same ports with one setting changed. After a warm-up, each round runs every variant in turn (a fresh Envoy, a short
# warm-up, one produce and one consume run), each run reporting
# Envoy's and the filter-service's CPU µs per record (/proc/<pid>/stat), the ext_proc messages Envoy sent per Kafka
# request (Produce) or response (Fetch), and the bytes per message (Envoy's socket reads, as ext_proc forwards
# each read whole).
#
#   tests/bench/envoy-settings.sh [records=100000] [rounds=2] [variant ...]
#
# A variant is name:key=value,... with keys concurrency (Envoy's --concurrency), listener_buf (the Kafka listeners'
# per_connection_buffer_limit_bytes), broker_buf (the broker clusters'), fs_buf (the filter-service cluster's),
# stream_window / conn_window (its HTTP/2 windows), oghttp2=true|false (its HTTP/2 codec), h2_frame (the
# SETTINGS_MAX_FRAME_SIZE Envoy announces to the filter-service), grpc=google (google_grpc instead of envoy_grpc),
# path=direct (no Envoy: the client on the broker, for ratios; only records/s). Envoy without ext_proc, or with a
# processor that does nothing, is tests/bench/floor.sh: here the filter-service rewrites Metadata, and without it a
# client would leave Envoy after its bootstrap. Default: base and
# concurrency=1. Mesh: MESHCRYPT_HOME (default tests/target/bench-envoy), MESHCRYPT_PORT_BASE (default 26000); it is
# stopped at the end. The hop to the filter-service is the launcher's: MESHCRYPT_EXT_PROC=tcp (default; mutual TLS
# unless MESHCRYPT_TLS=off) or unix (a Unix socket, no TLS: the filter_service cluster is a pipe).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RECORDS=${1:-100000}
ROUNDS=${2:-2}
shift 2 || shift $#
VARIANTS=("$@")
((${#VARIANTS[@]})) || VARIANTS=(base: c1:concurrency=1)
SIZE=1024
export MESHCRYPT_HOME=${MESHCRYPT_HOME:-$ROOT/tests/target/bench-envoy}
export MESHCRYPT_PORT_BASE=${MESHCRYPT_PORT_BASE:-26000}
WORK=$MESHCRYPT_HOME/envoy-settings
mkdir -p "$WORK"

"$ROOT/meshcrypt" up >/dev/null
ENVOY_PID=
stop_own_envoy() {
  if [[ -n $ENVOY_PID ]]; then
    kill "$ENVOY_PID" 2>/dev/null || true
    wait "$ENVOY_PID" 2>/dev/null || true
    ENVOY_PID=
  fi
}
trap 'stop_own_envoy; "$ROOT/meshcrypt" down >/dev/null' EXIT
# shellcheck disable=SC1091
source "$MESHCRYPT_HOME/endpoints.env"
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"
FILTER_PID=$(cat "$MESHCRYPT_HOME/pids/filter-service.pid")
ENVOY_BIN=$(tr '\0' '\n' <"/proc/$(cat "$MESHCRYPT_HOME/pids/envoy.pid")/cmdline" | head -1)
curl -fsS "http://$ENVOY_ADMIN/config_dump?include_eds" >"$WORK/config_dump.json"
"$ROOT/meshcrypt" stop envoy >/dev/null

# The static bootstrap of one variant: the dumped listeners and clusters, the client certificate as files (the dump
# redacts the key), then the variant's change.
static_config() { # variant settings, output file
  python3 - "$WORK/config_dump.json" "$MESHCRYPT_HOME/pki" "$1" "$2" <<'EOF'
import json, sys
dump, pki, variant, out = sys.argv[1:5]
cfg = {c['@type'].split('.')[-1]: c for c in json.load(open(dump))['configs']}
boot = cfg['BootstrapConfigDump']['bootstrap']
clusters = [c['cluster'] for c in cfg['ClustersConfigDump']['dynamic_active_clusters']]
listeners = [l['active_state']['listener'] for l in cfg['ListenersConfigDump']['dynamic_listeners']]
for r in clusters + listeners:
    r.pop('@type', None)
for c in clusters:
    for s in c.get('transport_socket', {}).get('typed_config', {}).get('common_tls_context', {}).get('tls_certificate_sds_secret_configs', []):
        s.pop('sds_config', None)
cert, key = pki + '/sidecar-kafka-apps/cert.pem', pki + '/sidecar-kafka-apps/key.pem'
kv = dict(p.split('=', 1) for p in variant.split(',') if '=' in p)
fs = next(c for c in clusters if c['name'] == 'filter_service')
# MESHCRYPT_TLS=off or MESHCRYPT_EXT_PROC=unix: no TLS to the filter-service, no certificate to load
tls = 'transport_socket' in fs
secrets = [{'name': 'sidecar_client_certificate',
            'tls_certificate': {'certificate_chain': {'filename': cert}, 'private_key': {'filename': key}}}] if tls else []
fs_address = fs['load_assignment']['endpoints'][0]['lb_endpoints'][0]['endpoint']['address']
h2 = fs['typed_extension_protocol_options']['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']['explicit_http_config']['http2_protocol_options']
if 'listener_buf' in kv:
    for l in listeners:
        l['per_connection_buffer_limit_bytes'] = int(kv['listener_buf'])
if 'broker_buf' in kv:
    for c in clusters:
        if c['name'].startswith('kafka_'):
            c['per_connection_buffer_limit_bytes'] = int(kv['broker_buf'])
if 'fs_buf' in kv:
    fs['per_connection_buffer_limit_bytes'] = int(kv['fs_buf'])
if 'stream_window' in kv:
    h2['initial_stream_window_size'] = int(kv['stream_window'])
if 'conn_window' in kv:
    h2['initial_connection_window_size'] = int(kv['conn_window'])
if 'oghttp2' in kv:
    h2['use_oghttp2_codec'] = kv['oghttp2'] == 'true'
if 'h2_frame' in kv:
    h2['custom_settings_parameters'] = [{'identifier': 5, 'value': int(kv['h2_frame'])}]
if kv.get('grpc') == 'google':
    target = ('unix:' + fs_address['pipe']['path'] if 'pipe' in fs_address
              else '127.0.0.1:%d' % fs_address['socket_address']['port_value'])
    for l in listeners:
        for chain in l['filter_chains']:
            for f in chain['filters']:
                if f['name'] == 'envoy.filters.network.ext_proc':
                    g = f['typed_config']['value']['grpc_service']
                    g.pop('envoy_grpc')
                    g['google_grpc'] = {'target_uri': target, 'stat_prefix': 'filter_service'}
                    if tls:
                        g['google_grpc']['channel_credentials'] = {'ssl_credentials': {'root_certs': {'filename': pki + '/ca.pem'},
                            'private_key': {'filename': key}, 'cert_chain': {'filename': cert}}}
json.dump({'node': boot['node'], 'admin': boot['admin'],
           'static_resources': {'listeners': listeners, 'clusters': clusters, 'secrets': secrets}}, open(out, 'w'), indent=1)
EOF
}

envoy_stat_sum() { # regex of stat names: the sum of their values
  curl -fsS "http://$ENVOY_ADMIN/stats?filter=$1" | awk -F': ' '$2 ~ /^[0-9]+$/ {s += $2} END {print s + 0}'
}
filter_count() { # api, direction: requests the filter-service rewrote
  curl -fsS "$FILTER_METRICS" | awk -v k="meshcrypt_rewrite_seconds_count{api=\"$1\",direction=\"$2\"}" '$1 == k {n = int($2)} END {print n + 0}'
}
snapshot() { # direction read|write, Kafka api, its direction: "envoy_ticks filter_ticks messages kafka_count bytes"
  local bytes=downstream_cx_rx_bytes_total
  [[ $1 == write ]] && bytes=downstream_cx_tx_bytes_total
  echo "$(bench_cpu_ticks "$ENVOY_PID") $(bench_cpu_ticks "$FILTER_PID") $(envoy_stat_sum "network_ext_proc\..*\.$1_data_sent") \
$(filter_count "$2" "$3") $(envoy_stat_sum "^tcp\..*\.$bytes")"
}
report() { # variant, round, kind, records, before, after, records/s
  local -a b a
  read -r -a b <<<"$5"
  read -r -a a <<<"$6"
  local msgs=$((a[2] - b[2])) kafka=$((a[3] - b[3])) bytes=$((a[4] - b[4]))
  printf '%-14s %-5s %-7s %10s %10s %10s %8s %8s %10s\n' "$1" "$2" "$3" "${7%%.*}" \
    "$(bench_us_per_record $((a[0] - b[0])) "$4")" "$(bench_us_per_record $((a[1] - b[1])) "$4")" "$msgs" \
    "$(awk -v m="$msgs" -v k="$kafka" 'BEGIN{printf "%.2f", k ? m / k : 0}')" \
    "$(awk -v m="$msgs" -v b="$bytes" 'BEGIN{printf "%.0f", m ? b / m : 0}')"
}

printf '# %s records of %s bytes per run, acks=all, linger.ms=5, batch.size=65536, 3 partitions, %s rounds, hop to the filter-service: %s (MESHCRYPT_TLS=%s)\n' \
  "$RECORDS" "$SIZE" "$ROUNDS" "${MESHCRYPT_EXT_PROC:-tcp}" "${MESHCRYPT_TLS:-on}"
printf '%-14s %-5s %-7s %10s %10s %10s %8s %8s %10s\n' variant round kind rec/s envoy_us filter_us messages msg/kafka bytes/msg
start_envoy() { # variant name:settings
  local name=${1%%:*} settings=${1#*:} concurrency
  static_config "$settings" "$WORK/$name.json"
  concurrency=$(sed -n 's/.*concurrency=\([0-9]*\).*/\1/p' <<<"$settings")
  "$ENVOY_BIN" -c "$WORK/$name.json" --disable-hot-restart --log-level warn ${concurrency:+--concurrency "$concurrency"} \
    >>"$WORK/$name.log" 2>&1 &
  ENVOY_PID=$!
  bench_envoy_ready "$ENVOY_ADMIN" "$1" "$WORK/$name.log"
}
warm_up() { # records
  local topic=bench-warm-$RANDOM-$$
  bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic"
  bench_produce "$MESHCRYPT_HOME" "$KAFKA_BOOTSTRAP" "$topic" "$1" "$SIZE" >/dev/null
  bench_consume "$MESHCRYPT_HOME" "$KAFKA_BOOTSTRAP" "$topic" "$1" >/dev/null
}

# the filter-service's JIT first, then rounds that run every variant in turn, so drift hits all alike
start_envoy "${VARIANTS[0]}"
warm_up $((RECORDS * 2))
stop_own_envoy
for round in $(seq 1 "$ROUNDS"); do
  for v in "${VARIANTS[@]}"; do
    name=${v%%:*}
    topic=bench-$name-$round-$$
    bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic"
    if [[ $v == *path=direct* ]]; then # the broker without Envoy, for the ratios
      rate=$(bench_produce "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic" "$RECORDS" "$SIZE")
      printf '%-14s %-5s %-7s %10s\n' "$name" "$round" produce "${rate%%.*}"
      rate=$(bench_consume "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic" "$RECORDS")
      printf '%-14s %-5s %-7s %10s\n' "$name" "$round" consume "${rate%%.*}"
      continue
    fi
    start_envoy "$v"
    warm_up 10000
    before=$(snapshot read produce request)
    rate=$(bench_produce "$MESHCRYPT_HOME" "$KAFKA_BOOTSTRAP" "$topic" "$RECORDS" "$SIZE")
    report "$name" "$round" produce "$RECORDS" "$before" "$(snapshot read produce request)" "${rate%% *}"
    before=$(snapshot write fetch response)
    rate=$(bench_consume "$MESHCRYPT_HOME" "$KAFKA_BOOTSTRAP" "$topic" "$RECORDS")
    report "$name" "$round" consume "$RECORDS" "$before" "$(snapshot write fetch response)" "${rate%% *}"
    stop_own_envoy
  done
done
