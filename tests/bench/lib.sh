# shellcheck shell=bash
# What the Kafka benchmarks share: a JDK >= 21, Kafka's own perf tools on the broker's classpath, and the parsing of
# their last line, the mesh's endpoints and processes. Source it with ROOT (the repository) set.

bench_java() {
  ls -d /usr/lib/jvm/*/bin/java | while read -r j; do
    v=$("$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
    ((v >= 21)) && echo "$j"
  done | tail -1
}
BENCH_JAVA=$(bench_java)

# Starts the mesh of MESHCRYPT_HOME, stopped when the script exits, and reads its endpoints.env (KAFKA_BOOTSTRAP,
# BROKER_DIRECT, FILTER_METRICS, XDS_STATUS, ...) and the pids of its filter-service and Envoy (FILTER_PID, ENVOY_PID).
bench_mesh_up() {
  "$ROOT/meshcrypt" up >/dev/null
  trap '"$ROOT/meshcrypt" down >/dev/null' EXIT
  # shellcheck disable=SC1091
  source "$MESHCRYPT_HOME/endpoints.env"
  FILTER_PID=$(cat "$MESHCRYPT_HOME/pids/filter-service.pid")
  ENVOY_PID=$(cat "$MESHCRYPT_HOME/pids/envoy.pid")
}

# $1 = MESHCRYPT_HOME of the mesh whose broker classpath runs the tool; then the tool's class and arguments
bench_tool() {
  local home=$1
  shift
  "$BENCH_JAVA" -Xmx1g -cp "$(cat "$home/kafka.classpath")" -Dlog4j2.level=warn "$@" 2>/dev/null
}

# home, broker (direct), topic[, partitions=3]: a new topic
bench_topic() {
  bench_tool "$1" org.apache.kafka.tools.TopicCommand --bootstrap-server "$2" --create --topic "$3" \
    --partitions "${4:-3}" --replication-factor 1 >/dev/null
}

# home, broker (direct), topic: deletes the topic (its log files go shortly after), so runs do not fill the disk
bench_delete_topic() {
  bench_tool "$1" org.apache.kafka.tools.TopicCommand --bootstrap-server "$2" --delete --topic "$3" >/dev/null
}

# home, bootstrap, topic: the first value of the topic as ConsoleConsumer prints it (NUL bytes of envelopes left out)
bench_first_value() {
  { bench_tool "$1" org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$2" \
    --topic "$3" --from-beginning --max-messages 1 --timeout-ms 30000 || true; } | tr -d '\0'
}

# home, bootstrap, topic, records, size[, records/s=-1: unthrottled]: prints "records/s MB/s avg_ms p99_ms p50_ms" of
# one ProducerPerformance run
bench_produce() {
  local line
  line=$(bench_tool "$1" org.apache.kafka.tools.ProducerPerformance --topic "$3" --num-records "$4" \
    --record-size "$5" --throughput "${6:--1}" --producer-props bootstrap.servers="$2" acks=all \
    linger.ms=5 batch.size=65536 | tail -1)
  # "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, p50, p95, p99, p99.9"
  sed -E 's/.*sent, ([0-9.]+) records\/sec \(([0-9.]+) MB\/sec\), ([0-9.]+) ms avg.* ([0-9]+) ms 50th,.* ([0-9]+) ms 99th,.*/\1 \2 \3 \5 \4/' <<<"$line"
}

# home, bootstrap, topic, records: prints "records/s MB/s" of one ConsumerPerformance reading them all
bench_consume() {
  local line
  local -a f
  # start, end, MB, MB/s, records, records/s, rebalance ms, fetch ms, fetch MB/s, fetch records/s
  line=$(bench_tool "$1" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$2" --topic "$3" \
    --messages "$4" --timeout 60000 | tail -1)
  IFS=', ' read -r -a f <<<"$line"
  echo "${f[-1]} ${f[-2]}"
}

# pid: the CPU time (user + system) the process has used, in clock ticks (getconf CLK_TCK a second)
bench_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
BENCH_TICK=$(getconf CLK_TCK)

# ticks, records: microseconds of CPU per record
bench_us_per_record() { awk -v c="$1" -v t="$BENCH_TICK" -v n="$2" 'BEGIN{printf "%.1f", c / t * 1e6 / n}'; }

# URL of a Prometheus endpoint, an awk regex matching the lines of the series (name and labels): the sum of their
# values, or nothing when no line matches
bench_metric() {
  curl -fsS --max-time 5 "$1" | awk -v re="$2" '$0 ~ re {s += $NF; n++} END {if (n) printf "%.0f\n", s}'
}

# a / b with three decimals
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a / b}'; }

# numbers: their median ("-" for none)
bench_median() {
  (($#)) || { echo -; return; }
  printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END{print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'
}
