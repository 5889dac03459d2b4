#!/usr/bin/env bash
# Kafka throughput and latency, direct to the broker vs through the mesh (Envoy + filter-service,
# every value encrypted), with the stock Kafka perf tools. Also reports the filter-service's CPU time
# per record, read from /proc. Rounds alternate direct/mesh so machine drift hits both alike.
#
#   tests/bench/kafka-throughput.sh [records=200000] [record-size=1024] [rounds=3]
#
# Runs its own mesh (MESHCRYPT_HOME=tests/target/bench, port base 26000) and stops it at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RECORDS=${1:-200000}
SIZE=${2:-1024}
ROUNDS=${3:-3}
export MESHCRYPT_HOME=${MESHCRYPT_HOME:-$ROOT/tests/target/bench}
export MESHCRYPT_PORT_BASE=${MESHCRYPT_PORT_BASE:-26000}

# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"
bench_mesh_up
cpu_ticks() { bench_cpu_ticks "$FILTER_PID"; }
envoy_ticks() { bench_cpu_ticks "$ENVOY_PID"; }

printf '# %s records of %s bytes, acks=all, linger.ms=5, batch.size=65536, %s rounds\n' "$RECORDS" "$SIZE" "$ROUNDS"
printf '%-6s %-6s %-7s %14s %10s %10s %10s %16s %16s\n' round path kind records/s MB/s avg_ms p99_ms filter_us/record envoy_us/record
for round in $(seq 1 "$ROUNDS"); do
  for path in direct mesh; do
    topic=bench-$path-$round-$$
    bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic"
    bootstrap=$BROKER_DIRECT
    [[ $path == mesh ]] && bootstrap=$KAFKA_BOOTSTRAP

    before=$(cpu_ticks); envoy_before=$(envoy_ticks)
    read -r rps mbs avg p99 _ < <(bench_produce "$MESHCRYPT_HOME" "$bootstrap" "$topic" "$RECORDS" "$SIZE")
    cpu=$(( $(cpu_ticks) - before )); envoy_cpu=$(( $(envoy_ticks) - envoy_before ))
    us=-; envoy_us=-
    [[ $path == mesh ]] && us=$(bench_us_per_record "$cpu" "$RECORDS") && envoy_us=$(bench_us_per_record "$envoy_cpu" "$RECORDS")
    printf '%-6s %-6s %-7s %14s %10s %10s %10s %16s %16s\n' "$round" "$path" produce "$rps" "$mbs" "$avg" "$p99" "$us" "$envoy_us"

    before=$(cpu_ticks); envoy_before=$(envoy_ticks)
    read -r rps mbs < <(bench_consume "$MESHCRYPT_HOME" "$bootstrap" "$topic" "$RECORDS")
    cpu=$(( $(cpu_ticks) - before )); envoy_cpu=$(( $(envoy_ticks) - envoy_before ))
    us=-; envoy_us=-
    [[ $path == mesh ]] && us=$(bench_us_per_record "$cpu" "$RECORDS") && envoy_us=$(bench_us_per_record "$envoy_cpu" "$RECORDS")
    printf '%-6s %-6s %-7s %14s %10s %10s %10s %16s %16s\n' "$round" "$path" consume "$rps" "$mbs" - - "$us" "$envoy_us"
  done
done
