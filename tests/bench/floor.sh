#!/usr/bin/env bash
# The floor of the shape (issue 14, docs/envoy-tuning.md): what Envoy costs per Kafka record as a plain TCP proxy, and
# what Envoy plus the smallest possible Java processor cost with network ext_proc in the path, against the broker
# directly, interleaved in one run. No filter-service and no mesh, so that nothing of meshcrypt's own work is in it:
#  - its own KRaft broker with two client listeners, one advertising itself (direct) and one advertising Envoy's port,
#    so that a client stays on the path it bootstrapped through without any Metadata rewriting;
#  - per run a fresh Envoy from a static bootstrap: tcp_proxy alone, or network ext_proc (envoy_grpc, the generated
#    configuration's HTTP/2 windows, buffer limits and timeout) + tcp_proxy;
#  - tests/bench/echo/EchoProcessor.java on a Unix socket: answers every chunk at once with its own bytes.
# Per round and path: Kafka's ProducerPerformance (acks=all, linger.ms=5, batch.size=65536, unthrottled) then
# ConsumerPerformance, one partition; records/s, and Envoy's and the echo processor's CPU per record (/proc/<pid>/stat).
# Round 1 is a warm-up; the summary is the median of the others.
#
#   tests/bench/floor.sh [records=300000] [rounds=5] [record size=1024]
#
# Uses the broker classpath and Envoy of MESHCRYPT_HOME (default .meshcrypt; `./meshcrypt setup` makes them) and the
# filter-service jar (its gRPC and Envoy API classes run the echo processor). Ports FLOOR_PORT_BASE (default 28500) to
# +12 on 127.0.0.1; state in tests/target/bench-floor.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RECORDS=${1:-300000}
ROUNDS=${2:-5}
SIZE=${3:-1024}
HOME_DIR=${MESHCRYPT_HOME:-$ROOT/.meshcrypt}
BASE=${FLOOR_PORT_BASE:-28500}
DIRECT=127.0.0.1:$BASE VIA_PORT=$((BASE + 1)) CONTROLLER=$((BASE + 2)) ENVOY_PORT=$((BASE + 10)) ADMIN_PORT=$((BASE + 11))
WORK=$ROOT/tests/target/bench-floor
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"
ENVOY_BIN=$HOME_DIR/venv/bin/envoy
JAR=$ROOT/filter-service/target/meshcrypt-filter-service.jar
for f in "$HOME_DIR/kafka.classpath" "$ENVOY_BIN" "$JAR"; do
  [[ -e $f ]] || { echo "$f is missing: run ./meshcrypt setup (and build the filter-service) first" >&2; exit 1; }
done
rm -rf "$WORK"
mkdir -p "$WORK/broker"

BROKER_PID= ECHO_PID= ENVOY_PID=
stop() { [[ -z ${1:-} ]] || { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }; }
trap 'stop "$ENVOY_PID"; stop "$ECHO_PID"; stop "$BROKER_PID"' EXIT

# --- the broker: DIRECT advertises itself, VIA advertises Envoy's listener
cat >"$WORK/broker/server.properties" <<PROPS
node.id=1
process.roles=broker,controller
listeners=DIRECT://$DIRECT,VIA://127.0.0.1:$VIA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER
advertised.listeners=DIRECT://$DIRECT,VIA://127.0.0.1:$ENVOY_PORT
listener.security.protocol.map=DIRECT:PLAINTEXT,VIA:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=DIRECT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER
log.dirs=$WORK/broker/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
CP=$(cat "$HOME_DIR/kafka.classpath")
"$BENCH_JAVA" -cp "$CP" kafka.tools.StorageTool format --standalone -t "$("$BENCH_JAVA" -cp "$CP" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
  -c "$WORK/broker/server.properties" >"$WORK/broker/format.log" 2>&1
"$BENCH_JAVA" -Xms1g -Xmx1g -cp "$CP" kafka.Kafka "$WORK/broker/server.properties" >"$WORK/broker/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 120); do
  bench_tool "$HOME_DIR" org.apache.kafka.tools.TopicCommand --bootstrap-server "$DIRECT" --list >/dev/null 2>&1 && break
  sleep 1
done

# --- the echo processor
ECHO_SOCKET=$WORK/echo.sock
"$BENCH_JAVA" -cp "$JAR" "$ROOT/tests/bench/echo/EchoProcessor.java" "$ECHO_SOCKET" >"$WORK/echo.log" 2>&1 &
ECHO_PID=$!
for _ in $(seq 100); do [[ -S $ECHO_SOCKET ]] && break; sleep 0.2; done
[[ -S $ECHO_SOCKET ]] || { echo "the echo processor did not start; see $WORK/echo.log" >&2; exit 1; }

# --- Envoy, per path
envoy_config() { # with_ext_proc (0|1), output file
  python3 - "$1" "$2" "$ENVOY_PORT" "$VIA_PORT" "$ADMIN_PORT" "$ECHO_SOCKET" <<'PY'
import json, sys
ext_proc, out, port, via, admin, echo = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
def address(p): return {'socket_address': {'address': '127.0.0.1', 'port_value': p}}
filters = [{'name': 'envoy.filters.network.tcp_proxy', 'typed_config': {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
    'stat_prefix': 'kafka', 'cluster': 'broker'}}]
clusters = [{'name': 'broker', 'type': 'STATIC', 'connect_timeout': '1s', 'per_connection_buffer_limit_bytes': 1048576,
             'load_assignment': {'cluster_name': 'broker', 'endpoints': [{'lb_endpoints': [{'endpoint': {'address': address(via)}}]}]}}]
if ext_proc == '1':
    # as the xDS server generates it, minus meshcrypt's metadata
    filters.insert(0, {'name': 'envoy.filters.network.ext_proc', 'typed_config': {
        '@type': 'type.googleapis.com/xds.type.v3.TypedStruct',
        'type_url': 'type.googleapis.com/envoy.extensions.filters.network.ext_proc.v3.NetworkExternalProcessor',
        'value': {'grpc_service': {'envoy_grpc': {'cluster_name': 'processor'}}, 'processing_mode': {},
                  'message_timeout': '5s', 'stat_prefix': 'kafka'}}})
    clusters.append({'name': 'processor', 'type': 'STATIC', 'connect_timeout': '1s',
        'load_assignment': {'cluster_name': 'processor', 'endpoints': [{'lb_endpoints': [{'endpoint': {'address': {'pipe': {'path': echo}}}}]}]},
        'typed_extension_protocol_options': {'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            'explicit_http_config': {'http2_protocol_options': {'initial_stream_window_size': 67108864,
                                                                'initial_connection_window_size': 268435456}}}}})
json.dump({'node': {'id': 'floor', 'cluster': 'floor'},
           'admin': {'address': address(admin)},
           'static_resources': {'listeners': [{'name': 'kafka', 'address': address(port),
                                               'per_connection_buffer_limit_bytes': 1048576,
                                               'filter_chains': [{'filters': filters}]}],
                                'clusters': clusters}}, open(out, 'w'), indent=1)
PY
}
envoy_config 0 "$WORK/tcp_proxy.json"
envoy_config 1 "$WORK/ext_proc.json"
start_envoy() { # config
  "$ENVOY_BIN" -c "$1" --disable-hot-restart --log-level warn >>"$WORK/envoy.log" 2>&1 &
  ENVOY_PID=$!
  bench_envoy_ready "127.0.0.1:$ADMIN_PORT" "$1" "$WORK/envoy.log"
}
ext_proc_messages() { curl -fsS "http://127.0.0.1:$ADMIN_PORT/stats?filter=network_ext_proc" | awk -F': ' '/_data_sent/ {s += $2} END {print s + 0}'; }

# one path, one round: "produce_rate consume_rate envoy_p envoy_c echo_p echo_c messages"
run_path() { # path, round
  local path=$1 topic=bench-floor-$1-$2-$$ bootstrap=127.0.0.1:$ENVOY_PORT p c e0 e1 e2 x0 x1 x2 m=0
  bench_topic "$HOME_DIR" "$DIRECT" "$topic" 1
  case $path in
    direct) bootstrap=$DIRECT ;;
    tcp_proxy) start_envoy "$WORK/tcp_proxy.json" ;;
    ext_proc) start_envoy "$WORK/ext_proc.json" ;;
  esac
  e0=$(bench_cpu_ticks "${ENVOY_PID:-$$}") x0=$(bench_cpu_ticks "$ECHO_PID")
  p=$(bench_produce "$HOME_DIR" "$bootstrap" "$topic" "$RECORDS" "$SIZE")
  e1=$(bench_cpu_ticks "${ENVOY_PID:-$$}") x1=$(bench_cpu_ticks "$ECHO_PID")
  c=$(bench_consume "$HOME_DIR" "$bootstrap" "$topic" "$RECORDS")
  e2=$(bench_cpu_ticks "${ENVOY_PID:-$$}") x2=$(bench_cpu_ticks "$ECHO_PID")
  [[ $path == ext_proc ]] && m=$(ext_proc_messages)
  stop "$ENVOY_PID"
  ENVOY_PID=
  bench_delete_topic "$HOME_DIR" "$DIRECT" "$topic" || true
  if [[ $path == direct ]]; then
    echo "${p%% *} ${c%% *} - - - - -"
  elif [[ $path == tcp_proxy ]]; then
    echo "${p%% *} ${c%% *} $(bench_us_per_record $((e1 - e0)) "$RECORDS") $(bench_us_per_record $((e2 - e1)) "$RECORDS") - - $m"
  else
    echo "${p%% *} ${c%% *} $(bench_us_per_record $((e1 - e0)) "$RECORDS") $(bench_us_per_record $((e2 - e1)) "$RECORDS")" \
      "$(bench_us_per_record $((x1 - x0)) "$RECORDS") $(bench_us_per_record $((x2 - x1)) "$RECORDS") $m"
  fi
}

PATHS=(direct tcp_proxy ext_proc)
declare -A ROWS
printf '# %s records of %s bytes, acks=all, linger.ms=5, batch.size=65536, 1 partition, %s rounds (round 1 a warm-up)\n' "$RECORDS" "$SIZE" "$ROUNDS"
printf '%-10s %-5s %10s %10s %12s %12s %12s %12s %9s\n' path round produce/s consume/s envoy_us_p envoy_us_c echo_us_p echo_us_c messages
for round in $(seq 1 "$ROUNDS"); do
  order=("${PATHS[@]:$((round % 3))}" "${PATHS[@]:0:$((round % 3))}") # rotate, so that drift hits every path alike
  for path in "${order[@]}"; do
    row=$(run_path "$path" "$round")
    read -r -a f <<<"$row"
    printf '%-10s %-5s %10.0f %10.0f %12s %12s %12s %12s %9s\n' "$path" "$round" "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}" "${f[4]}" "${f[5]}" "${f[6]}"
    ((round > 1)) && ROWS[$path]+="$row"$'\n'
  done
done

((ROUNDS > 1)) || exit 0
col() { awk -v i="$2" 'NF {print $i}' <<<"${ROWS[$1]}" | grep -v '^-$' || true; }
med() { local -a v; mapfile -t v < <(col "$1" "$2"); ((${#v[@]})) && bench_median "${v[@]}" || echo -; }
ratio() { # path, column: median over rounds of path / direct, round by round
  local -a a d r=()
  mapfile -t a < <(col "$1" "$2")
  mapfile -t d < <(col direct "$2")
  for i in "${!a[@]}"; do r+=("$(awk -v x="${a[$i]}" -v y="${d[$i]}" 'BEGIN{printf "%.2f", x / y}')"); done
  bench_median "${r[@]}"
}
echo
echo "| path | produce × direct | consume × direct | Envoy CPU µs/record (produce / consume) | echo processor CPU µs/record (produce / consume) |"
echo "|---|---:|---:|---:|---:|"
printf '| direct (%.0f / %.0f records/s) | 1 | 1 | – | – |\n' "$(med direct 1)" "$(med direct 2)"
echo "| Envoy tcp_proxy | $(ratio tcp_proxy 1) | $(ratio tcp_proxy 2) | $(med tcp_proxy 3) / $(med tcp_proxy 4) | – |"
echo "| Envoy network ext_proc + echo processor | $(ratio ext_proc 1) | $(ratio ext_proc 2) | $(med ext_proc 3) / $(med ext_proc 4) | $(med ext_proc 5) / $(med ext_proc 6) |"
