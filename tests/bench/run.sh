#!/usr/bin/env bash
# The project's benchmark, one command: Kafka direct to the broker vs through the mesh (Envoy + filter-service), for a
# topic the policy encrypts and one outside it, then latency at a fixed rate, then the in-process JMH benchmarks of
# the codec and crypto path (tests/bench/jmh.sh). Prints a row per run and a summary table (markdown) of medians.
#
#   tests/bench/run.sh [records=500000] [record-size=1024] [rounds=6]
#
# Throughput: Kafka's ProducerPerformance then ConsumerPerformance, acks=all, linger.ms=5, batch.size=65536, one
# partition per topic, a new topic per run. Each round runs, for each kind of topic, direct and mesh back to back, in
# alternating order (direct first in odd rounds, mesh first in even ones) so drift and order hit both alike; ratios
# are taken round by round. Round 1 is a warm-up (JIT, data keys, page cache): the summary is the median over the
# rounds after it. Beside throughput, per mesh run: CPU time per record of the filter-service and of Envoy (user +
# system from /proc/<pid>/stat; steadier than throughput on a shared machine), and the filter-service's heap
# allocation per record and heap in use after the run (its Micrometer JVM metrics: jvm_gc_memory_allocated_bytes_total
# plus what eden holds, see alloc_bytes).
#
# Latency: ProducerPerformance at a fixed BENCH_RATE records/s (default 10000) for BENCH_LATENCY_SECONDS (default 20),
# direct then mesh, on the encrypted kind of topic: p50 and p99, and the p50 the mesh adds.
#
# Then tests/bench/subjects.sh (per-subject keys against the topic key, same records, size and rounds) unless
# BENCH_SKIP_SUBJECTS=1, and tests/bench/floor.sh (the shape's floor: Envoy as tcp_proxy, and Envoy + network ext_proc
# + an echo processor, against direct; same records, size and rounds) unless BENCH_SKIP_FLOOR=1.
#
# The sidecars' hop to the filter-service: MESHCRYPT_EXT_PROC (tcp, the default, with mutual TLS unless MESHCRYPT_TLS=off;
# or unix: a Unix domain socket per sidecar, no TLS). BENCH_EXT_PROC=tcp,unix runs one mesh per transport side by side
# ($MESHCRYPT_HOME-tcp on the port base, $MESHCRYPT_HOME-unix 1000 above) and interleaves them in every round (each
# with its own direct run on its own broker, the order of the transports alternating with the rounds): a row per
# transport in the table. The latency part runs on each too.
#
# Environment: BENCH_SKIP_JMH=1 leaves out the JMH part (JMH_OPTS: see jmh.sh); MESHCRYPT_HOME (default
# tests/target/bench-run) and MESHCRYPT_PORT_BASE (default 26000) place the mesh, which is started here and stopped at the
# end. Its mesh.yaml gets the benchmark's policy, encrypt bench-enc-* and pass every other topic, kept as hand-edited
# (the launcher's mark removed); before any figure is taken the script checks that the policy is in force: a record
# produced through the mesh must reach the broker as plaintext on the plain topic and not on the encrypted one.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RECORDS=${1:-500000}
SIZE=${2:-1024}
ROUNDS=${3:-6}
RATE=${BENCH_RATE:-10000}
LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-20}
# its own, not kafka-throughput.sh's: the launcher keeps the policy edited into its mesh file
export MESHCRYPT_HOME=${MESHCRYPT_HOME:-$ROOT/tests/target/bench-run}
export MESHCRYPT_PORT_BASE=${MESHCRYPT_PORT_BASE:-26000}
KINDS=(plain enc)
IFS=, read -r -a TRANSPORTS <<<"${BENCH_EXT_PROC:-${MESHCRYPT_EXT_PROC:-tcp}}"
PORT_BASE=$MESHCRYPT_PORT_BASE
TLS=${MESHCRYPT_TLS:-on}
declare -A KIND_NAME=([plain]="topic outside the policy" [enc]="encrypted topic")

# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"
bench_meshes_up "${TRANSPORTS[@]}"
say() { printf '# %s\n' "$*"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# ---- the benchmark's policy, delivered by the xDS server from the mesh file

# bytes allocated so far: Micrometer adds to jvm_gc_memory_allocated_bytes_total at each young collection what eden
# had taken since the last one, so what eden holds now is added (to within a G1 region instead of a young generation)
alloc_bytes() {
  local gc eden
  gc=$(bench_metric "$FILTER_METRICS" '^jvm_gc_memory_allocated_bytes_total ') || gc=
  eden=$(bench_metric "$FILTER_METRICS" '^jvm_memory_used_bytes[{].*Eden') || eden=
  if [[ -n $gc ]]; then echo $((gc + ${eden:-0})); fi
}
heap_mb() { { bench_metric "$FILTER_METRICS" '^jvm_memory_used_bytes[{]area="heap"' || true; } | awk '{printf "%.0f", $1 / 1048576}'; }
per_record() { [[ -n $1 && -n $2 ]] && awk -v b="$2" -v a="$1" -v n="$RECORDS" 'BEGIN{printf "%.0f", (b - a) / n}' || echo -; }

check=$$-$(date +%s)
for t in "${TRANSPORTS[@]}"; do
  bench_use_mesh "$t"
  bench_policy "  encrypt:
    - 'bench-enc-*'
  unmatched: passthrough"
  for kind in "${KINDS[@]}"; do
    topic=bench-$kind-check-$check
    bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic" 1
    bench_produce "$MESHCRYPT_HOME" "$KAFKA_BOOTSTRAP" "$topic" 10 "$SIZE" >/dev/null
    # ProducerPerformance's values are SIZE random capital letters
    stored=$(bench_first_value "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic")
    fetched=$(bench_first_value "$MESHCRYPT_HOME" "$KAFKA_BOOTSTRAP" "$topic")
    grep -aqxE "[A-Z]{$SIZE}" <<<"$fetched" || die "$topic: the value consumed through the mesh is not the plaintext"
    if [[ $kind == plain ]]; then
      grep -aqxE "[A-Z]{$SIZE}" <<<"$stored" || die "$topic: the broker does not hold the plaintext: the policy is not in force"
    elif grep -aqE "[A-Z]{$SIZE}" <<<"$stored"; then
      die "$topic: the broker holds the plaintext: the policy is not in force"
    fi
    bench_delete_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic"
  done
  say "$t mesh: policy in force (checked on the broker): encrypt bench-enc-*, every other topic passes"
  [[ -n $(alloc_bytes) ]] || say "$t mesh: the filter-service reports no jvm_gc_memory_allocated_bytes_total: no allocation figures"
done

# ---- throughput, CPU, heap and allocation: direct and mesh interleaved


say "$RECORDS records of $SIZE bytes, acks=all, linger.ms=5, batch.size=65536, 1 partition, $ROUNDS rounds (round 1: warm-up)," \
  "hop to the filter-service: ${TRANSPORTS[*]} (MESHCRYPT_TLS=$TLS applies to tcp)"
ROW='%-5s %-6s %-5s %-6s %13.0f %13.0f %7s %7s %13s %13s %15s %7s\n'
# shellcheck disable=SC2059
printf "${ROW//.0f/s}" round topic hop path produce_rec/s consume_rec/s p50_ms p99_ms filter_us_p/c envoy_us_p/c alloc_B/rec_p/c heap_MB
# per kind/transport: the values of the rounds after the warm-up (all rounds when there is only one)
declare -A PRODUCE_X CONSUME_X FILTER_P FILTER_C ENVOY_P ENVOY_C BOTH_P BOTH_C ALLOC_P ALLOC_C HEAP
for round in $(seq 1 "$ROUNDS"); do
  order=(direct mesh)
  ((round % 2 == 0)) && order=(mesh direct)
  hops=("${TRANSPORTS[@]}")
  ((round % 2 == 0)) && for ((i = 0; i < ${#TRANSPORTS[@]}; i++)); do hops[i]=${TRANSPORTS[-1 - i]}; done
  for kind in "${KINDS[@]}"; do
    for t in "${hops[@]}"; do
      bench_use_mesh "$t"
      key=$kind/$t
      declare -A P=() C=()
      for path in "${order[@]}"; do
        topic=bench-$kind-$round-$path-$$
        bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic" 1
        bootstrap=$BROKER_DIRECT
        [[ $path == mesh ]] && bootstrap=$KAFKA_BOOTSTRAP

        f0=$(bench_cpu_ticks "$FILTER_PID"); e0=$(bench_cpu_ticks "$ENVOY_PID"); a0=$(alloc_bytes)
        read -r P[$path] _ _ p99 p50 < <(bench_produce "$MESHCRYPT_HOME" "$bootstrap" "$topic" "$RECORDS" "$SIZE")
        f1=$(bench_cpu_ticks "$FILTER_PID"); e1=$(bench_cpu_ticks "$ENVOY_PID"); a1=$(alloc_bytes)
        read -r C[$path] _ < <(bench_consume "$MESHCRYPT_HOME" "$bootstrap" "$topic" "$RECORDS")
        f2=$(bench_cpu_ticks "$FILTER_PID"); e2=$(bench_cpu_ticks "$ENVOY_PID"); a2=$(alloc_bytes)
        bench_delete_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic"

        filter=-; envoy=-; alloc=-; heap=-
        if [[ $path == mesh ]]; then
          fp=$(bench_us_per_record $((f1 - f0)) "$RECORDS"); fc=$(bench_us_per_record $((f2 - f1)) "$RECORDS")
          ep=$(bench_us_per_record $((e1 - e0)) "$RECORDS"); ec=$(bench_us_per_record $((e2 - e1)) "$RECORDS")
          ap=$(per_record "$a0" "$a1"); ac=$(per_record "$a1" "$a2"); heap=$(heap_mb)
          filter="$fp/$fc"; envoy="$ep/$ec"; alloc="$ap/$ac"
          if ((round > 1 || ROUNDS == 1)); then
            FILTER_P[$key]+=" $fp"; FILTER_C[$key]+=" $fc"; ENVOY_P[$key]+=" $ep"; ENVOY_C[$key]+=" $ec"
            BOTH_P[$key]+=" $(awk -v a="$fp" -v b="$ep" 'BEGIN{print a + b}')"
            BOTH_C[$key]+=" $(awk -v a="$fc" -v b="$ec" 'BEGIN{print a + b}')"
            [[ $ap != - ]] && ALLOC_P[$key]+=" $ap" && ALLOC_C[$key]+=" $ac"
            [[ -n $heap ]] && HEAP[$key]+=" $heap"
          fi
        fi
        # shellcheck disable=SC2059
        printf "$ROW" "$round" "$kind" "$t" "$path" "${P[$path]}" "${C[$path]}" "$p50" "$p99" "$filter" "$envoy" "$alloc" "${heap:--}"
      done
      if ((round > 1 || ROUNDS == 1)); then
        PRODUCE_X[$key]+=" $(bench_ratio "${P[mesh]}" "${P[direct]}")"
        CONSUME_X[$key]+=" $(bench_ratio "${C[mesh]}" "${C[direct]}")"
      fi
    done
  done
done

# ---- latency at a fixed rate, encrypted topic

latency_records=$((RATE * LATENCY_SECONDS))
declare -A AVG P50 P99
for t in "${TRANSPORTS[@]}"; do
  bench_use_mesh "$t"
  for path in direct mesh; do
    topic=bench-enc-latency-$path-$$
    bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic" 1
    bootstrap=$BROKER_DIRECT
    [[ $path == mesh ]] && bootstrap=$KAFKA_BOOTSTRAP
    read -r rate _ AVG[$path/$t] P99[$path/$t] P50[$path/$t] < <(bench_produce "$MESHCRYPT_HOME" "$bootstrap" "$topic" "$latency_records" "$SIZE" "$RATE")
    bench_delete_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic"
    say "latency, $t mesh, $path: $latency_records records at $RATE/s (achieved $rate/s): avg ${AVG[$path/$t]} ms," \
      "p50 ${P50[$path/$t]} ms, p99 ${P99[$path/$t]} ms"
  done
done

bench_meshes_down
trap - EXIT

# ---- summary

# shellcheck disable=SC2086
m() { bench_median $1; } # word-split on purpose: the values of one kind
echo
say "summary: medians over rounds 2..$ROUNDS (all rounds when there is one), $RECORDS x $SIZE B records"
echo "| path | produce × direct | consume × direct | filter-service CPU µs/record (produce / consume) | Envoy CPU µs/record (produce / consume) | both µs/record (produce / consume) | filter-service alloc B/record (produce / consume) | heap used after, MB |"
echo "|---|---|---|---|---|---|---|---|"
hop_name() { [[ $1 == unix ]] && echo "Unix socket" || { [[ $TLS == off ]] && echo "TCP" || echo "TCP + mTLS"; }; }
for kind in "${KINDS[@]}"; do
  for t in "${TRANSPORTS[@]}"; do
    key=$kind/$t
    printf '| mesh (%s), %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s |\n' "$(hop_name "$t")" "${KIND_NAME[$kind]}" \
      "$(m "${PRODUCE_X[$key]}")" "$(m "${CONSUME_X[$key]}")" "$(m "${FILTER_P[$key]}")" "$(m "${FILTER_C[$key]}")" \
      "$(m "${ENVOY_P[$key]}")" "$(m "${ENVOY_C[$key]}")" "$(m "${BOTH_P[$key]}")" "$(m "${BOTH_C[$key]}")" \
      "$(m "${ALLOC_P[$key]:-}")" "$(m "${ALLOC_C[$key]:-}")" "$(m "${HEAP[$key]:-}")"
  done
done
echo
# ProducerPerformance prints percentiles in whole milliseconds, the average with two decimals
echo "| latency at $RATE records/s, ${LATENCY_SECONDS} s, encrypted topic | avg ms | p50 ms | p99 ms |"
echo "|---|---|---|---|"
for t in "${TRANSPORTS[@]}"; do
  d=direct/$t; h=mesh/$t
  echo "| direct ($t mesh's broker) | ${AVG[$d]} | ${P50[$d]} | ${P99[$d]} |"
  echo "| mesh ($(hop_name "$t")) | ${AVG[$h]} | ${P50[$h]} | ${P99[$h]} |"
  echo "| added by the mesh ($(hop_name "$t")) | $(awk -v a="${AVG[$h]}" -v b="${AVG[$d]}" 'BEGIN{printf "%.2f", a - b}') |" \
    "$((P50[$h] - P50[$d])) | $((P99[$h] - P99[$d])) |"
done

if [[ ${BENCH_SKIP_SUBJECTS:-0} != 1 ]]; then
  # issue 19: 1,000 subject keys against the topic key, its own mesh (this one is down), its JMH part unless skipped
  echo
  MESHCRYPT_HOME=$ROOT/tests/target/bench-subjects MESHCRYPT_PORT_BASE=$PORT_BASE MESHCRYPT_EXT_PROC=${TRANSPORTS[0]} \
    "$ROOT/tests/bench/subjects.sh" "$RECORDS" "$SIZE" "$ROUNDS"
fi

if [[ ${BENCH_SKIP_FLOOR:-0} != 1 ]]; then
  # what the shape costs before meshcrypt does anything: Envoy as tcp_proxy, and Envoy + network ext_proc + an echo
  # processor, against direct (its own broker; the meshes are down)
  echo
  MESHCRYPT_HOME=${BENCH_HOME[${TRANSPORTS[0]}]} "$ROOT/tests/bench/floor.sh" "$RECORDS" "$ROUNDS" "$SIZE"
fi

if [[ ${BENCH_SKIP_JMH:-0} != 1 ]]; then
  echo
  "$ROOT/tests/bench/jmh.sh"
fi
