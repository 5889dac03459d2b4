#!/usr/bin/env bash
# The codec and crypto path per core, in-process (no gRPC, no Envoy, no broker): JMH benchmarks of the filter-service's
# Kafka connection handler (tests/bench/jmh, KafkaPathBenchmark), each operation one batch of 64 records of 1 KiB,
# against raw AES-256-GCM over the same value bytes, the physical limit. Builds the module, runs it briefly with the
# gc profiler and prints MB/s of values, the ratio to raw AES-GCM and the allocation per record.
#
#   tests/bench/jmh.sh [benchmark-regex]
#
# JMH_OPTS (default "-f 1 -wi 2 -w 2s -i 3 -r 2s") are JMH's own options: forks, warm-up and measured iterations.
# The raw JMH result is kept in tests/bench/jmh/target/jmh-result.json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODULE=$ROOT/tests/bench/jmh
# KafkaPathBenchmark.RECORDS and VALUE_BYTES: the value bytes of one operation
RECORDS_PER_OP=64
VALUE_BYTES=1024
# read -a: word-split JMH_OPTS into arguments on purpose
read -r -a JMH_OPTS <<<"${JMH_OPTS:--f 1 -wi 2 -w 2s -i 3 -r 2s}"

# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"
JAVA_HOME=$(dirname "$(dirname "$BENCH_JAVA")")
export JAVA_HOME

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# offline first: the dependencies are usually in the local repository already
if ! (cd "$ROOT" && ./mvnw -q -B -o -pl tests/bench/jmh -am package -DskipTests) >"$log" 2>&1 \
  && ! (cd "$ROOT" && ./mvnw -q -B -pl tests/bench/jmh -am package -DskipTests) >"$log" 2>&1; then
  cat "$log" >&2
  echo "building tests/bench/jmh failed" >&2
  exit 1
fi

result=$MODULE/target/jmh-result.json
"$BENCH_JAVA" -cp "$MODULE/target/classes:$(cat "$MODULE/target/jmh.classpath")" org.openjdk.jmh.Main \
  "${JMH_OPTS[@]}" -prof gc -rf json -rff "$result" "${1:-KafkaPathBenchmark}" >"$log" 2>&1 \
  || { cat "$log" >&2; exit 1; }

printf '# JMH, in-process, one operation = %s records of %s bytes (uncompressed batch, magic v2); %s\n' \
  "$RECORDS_PER_OP" "$VALUE_BYTES" "${JMH_OPTS[*]}"
jq -r --argjson n "$RECORDS_PER_OP" --argjson size "$VALUE_BYTES" '
  (map(select(.benchmark | endswith(".aesGcmBaseline"))) | first | .primaryMetric.score) as $aes
  | ["benchmark", "batches/s", "±", "MB/s", "x_aes_gcm", "alloc_B/op", "alloc_B/record", "cpu_us/record"],
    (.[] | ((.params.exchange // (.benchmark | split(".") | last))
              + (if .params.subjects then "/" + .params.subjects else "" end)
              + (if .params.metrics == "on" then "+metrics" else "" end)
              + (if .params.arena == "off" then "-arena" else "" end)) as $name
      | (.secondaryMetrics["gc.alloc.rate.norm"].score // null) as $alloc
      | (.secondaryMetrics.cpuNanos.score // null) as $cpu
      | [$name,
         (.primaryMetric.score | floor),
         (.primaryMetric.scoreError | if . == "NaN" or . == null then "-" else floor end),
         (.primaryMetric.score * $n * $size / 1e6 * 10 | floor / 10),
         (if $aes then (.primaryMetric.score / $aes * 1000 | floor / 1000) else "-" end),
         (if $alloc then ($alloc | floor) else "-" end),
         (if $alloc then ($alloc / $n | floor) else "-" end),
         (if $cpu then ($cpu / .primaryMetric.score / $n / 1000 * 100 | floor / 100) else "-" end)])
  | @tsv' "$result" | column -t -s $'\t'
echo "# x_aes_gcm: throughput over raw AES-256-GCM on the same values (issue 14 goal: produceEncrypted and fetchDecrypt >= 0.5)"
echo "# the rows but aesGcmBaseline are KafkaPathBenchmark.handler, one per value of its exchange parameter;"
echo "# cpu_us/record: the benchmark thread's CPU time per record (SubjectKeysBenchmark), steadier than batches/s on a busy machine"
echo "# +metrics: with the records-per-topic counters and rewrite-time histogram of the observability section (their cost)"
echo "# -arena: -p arena=off, rewritten records allocated per partition instead of kept in the thread's output arena"
