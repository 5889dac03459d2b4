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

"$ROOT/meshcrypt" up >/dev/null
trap '"$ROOT/meshcrypt" down >/dev/null' EXIT
# shellcheck disable=SC1091
source "$MESHCRYPT_HOME/endpoints.env"
JAVA=$(ls -d /usr/lib/jvm/*/bin/java | while read -r j; do v=$("$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); ((v >= 21)) && echo "$j"; done | tail -1)
CP=$(cat "$MESHCRYPT_HOME/kafka.classpath")
FILTER_PID=$(cat "$MESHCRYPT_HOME/pids/filter-service.pid")
tool() { "$JAVA" -Xmx1g -cp "$CP" -Dlog4j2.level=warn "$@" 2>/dev/null; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$FILTER_PID/stat"; }
TICK=$(getconf CLK_TCK)

printf '# %s records of %s bytes, acks=all, linger.ms=5, batch.size=65536, %s rounds\n' "$RECORDS" "$SIZE" "$ROUNDS"
printf '%-6s %-6s %-7s %14s %10s %10s %10s %16s\n' round path kind records/s MB/s avg_ms p99_ms filter_us/record
for round in $(seq 1 "$ROUNDS"); do
  for path in direct mesh; do
    topic=bench-$path-$round-$$
    tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$BROKER_DIRECT" --create --topic "$topic" \
      --partitions 3 --replication-factor 1 >/dev/null
    bootstrap=$BROKER_DIRECT
    [[ $path == mesh ]] && bootstrap=$KAFKA_BOOTSTRAP

    before=$(cpu_ticks)
    line=$(tool org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$RECORDS" \
      --record-size "$SIZE" --throughput -1 --producer-props bootstrap.servers="$bootstrap" acks=all \
      linger.ms=5 batch.size=65536 | tail -1)
    cpu=$(( $(cpu_ticks) - before ))
    # "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, p50, p95, p99, p99.9"
    rps=$(sed -E 's/.*sent, ([0-9.]+) records\/sec.*/\1/' <<<"$line")
    mbs=$(sed -E 's/.*\(([0-9.]+) MB\/sec\).*/\1/' <<<"$line")
    avg=$(sed -E 's/.*MB\/sec\), ([0-9.]+) ms avg.*/\1/' <<<"$line")
    p99=$(sed -E 's/.* ([0-9]+) ms 99th,.*/\1/' <<<"$line")
    us=$(awk -v c="$cpu" -v t="$TICK" -v n="$RECORDS" -v p="$path" 'BEGIN{ if (p=="direct") print "-"; else printf "%.1f", c / t * 1e6 / n }')
    printf '%-6s %-6s %-7s %14s %10s %10s %10s %16s\n' "$round" "$path" produce "$rps" "$mbs" "$avg" "$p99" "$us"

    before=$(cpu_ticks)
    # ConsumerPerformance: start, end, MB, MB/s, records, records/s, rebalance ms, fetch ms, fetch MB/s, fetch records/s
    line=$(tool org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$bootstrap" --topic "$topic" \
      --messages "$RECORDS" --timeout 60000 | tail -1)
    cpu=$(( $(cpu_ticks) - before ))
    IFS=', ' read -r -a f <<<"$line"
    us=$(awk -v c="$cpu" -v t="$TICK" -v n="$RECORDS" -v p="$path" 'BEGIN{ if (p=="direct") print "-"; else printf "%.1f", c / t * 1e6 / n }')
    printf '%-6s %-6s %-7s %14s %10s %10s %10s %16s\n' "$round" "$path" consume "${f[-1]}" "${f[-2]}" - - "$us"
  done
done
