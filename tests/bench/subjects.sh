#!/usr/bin/env bash
# Issue 19's throughput proof: records under per-subject keys, 1,000 subjects interleaved, against the same records
# under the topic's one data key, through one mesh (real broker, Envoy, filter-service) in one run.
#
#   tests/bench/subjects.sh [records=200000] [record-size=1024] [rounds=4] [subjects=1000]
#
# The policy (written into the mesh file, checked on the broker before any figure is taken): bench-enc-* encrypted
# under the topic's data key (envelope version 2), bench-subj-* under the key of each record's subject, the record key
# (subject: {from: key}, envelope version 3). The load client is a small Java producer (written out here, run from
# source on the broker's classpath) whose record i has the key subject-NNNN, NNNN = i modulo subjects, and a value of
# record-size random capital letters; acks=all, linger.ms=5, batch.size=65536 as ProducerPerformance in run.sh; then
# Kafka's ConsumerPerformance reads them back. Both kinds get the same keys and values: only the key the values are
# encrypted under differs. Per round both kinds run back to back, in an order that alternates, each on a new topic of
# one partition; per run the filter-service's and Envoy's CPU µs per record (user + system, /proc/<pid>/stat). Round 1
# is a warm-up (JIT, and the subjects' keys, created once for the scope bench-subj-* and reused by every later topic):
# the summary is medians over the later rounds, and the ratios subject keys / topic key taken round by round (the
# issue's goal: throughput >= 0.85). Then, unless BENCH_SKIP_JMH=1, the in-process SubjectKeysBenchmark (jmh.sh) and
# its ratios.
#
# Environment: MESHCRYPT_HOME (default tests/target/bench-subjects) and MESHCRYPT_PORT_BASE (default 29000) place the
# mesh, started here and stopped at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RECORDS=${1:-200000}
SIZE=${2:-1024}
ROUNDS=${3:-4}
SUBJECTS=${4:-1000}
export MESHCRYPT_HOME=${MESHCRYPT_HOME:-$ROOT/tests/target/bench-subjects}
export MESHCRYPT_PORT_BASE=${MESHCRYPT_PORT_BASE:-29000}
KINDS=(enc subj)
declare -A KIND_NAME=([enc]="topic key" [subj]="$SUBJECTS subject keys")

# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"
say() { printf '# %s\n' "$*"; }
die() { printf 'subjects.sh: %s\n' "$*" >&2; exit 1; }

WORK=$(mktemp -d)
cat >"$WORK/SubjectsLoad.java" <<'EOF'
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * produce BOOTSTRAP TOPIC RECORDS SIZE SUBJECTS: record i keyed subject-NNNN (i modulo SUBJECTS), prints "records/s MB/s";
 * first BOOTSTRAP TOPIC: the first record's key and what its value is: "plain" (capital letters), or "envelope-vN".
 */
public class SubjectsLoad {
    public static void main(String[] a) throws Exception {
        if (a[0].equals("produce")) {
            produce(a[1], a[2], Long.parseLong(a[3]), Integer.parseInt(a[4]), Integer.parseInt(a[5]));
        } else {
            first(a[1], a[2]);
        }
    }

    static void produce(String bootstrap, String topic, long records, int size, int subjects) throws Exception {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("linger.ms", "5");
        p.put("batch.size", "65536");
        byte[][] keys = new byte[subjects][];
        for (int s = 0; s < subjects; s++) {
            keys[s] = String.format("subject-%04d", s).getBytes(StandardCharsets.UTF_8);
        }
        SplittableRandom random = new SplittableRandom(19);
        byte[][] values = new byte[16][size];
        for (byte[] v : values) {
            for (int j = 0; j < size; j++) {
                v[j] = (byte) ('A' + random.nextInt(26));
            }
        }
        AtomicLong failed = new AtomicLong();
        AtomicReference<Exception> firstFailure = new AtomicReference<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(),
                new ByteArraySerializer())) {
            long start = System.nanoTime();
            for (long i = 0; i < records; i++) {
                producer.send(new ProducerRecord<>(topic, keys[(int) (i % subjects)], values[(int) (i & 15)]), (m, e) -> {
                    if (e != null) {
                        failed.incrementAndGet();
                        firstFailure.compareAndSet(null, e);
                    }
                });
            }
            producer.flush();
            double seconds = (System.nanoTime() - start) / 1e9;
            if (failed.get() > 0) {
                System.err.println(failed.get() + " records failed, first: " + firstFailure.get());
                System.exit(1);
            }
            System.out.printf("%.1f %.2f%n", records / seconds, records * (double) size / seconds / 1e6);
        }
    }

    static void first(String bootstrap, String topic) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(),
                new ByteArrayDeserializer())) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                    byte[] v = r.value();
                    boolean plain = v.length > 0;
                    for (byte b : v) {
                        plain &= b >= 'A' && b <= 'Z';
                    }
                    boolean envelope = v.length > 5 && v[0] == 0 && v[1] == 'M' && v[2] == 'C' && v[3] == 'E';
                    System.out.println(new String(r.key(), StandardCharsets.UTF_8) + " "
                            + (plain ? "plain" : envelope ? "envelope-v" + v[4] : "other"));
                    return;
                }
            }
            System.out.println("- none");
        }
    }
}
EOF
load() { bench_tool "$MESHCRYPT_HOME" "$WORK/SubjectsLoad.java" "$@"; }

bench_mesh_up
trap 'rm -rf "$WORK"; "$ROOT/meshcrypt" down >/dev/null' EXIT
bench_policy "  encrypt:
    - 'bench-enc-*'
    - {topic: 'bench-subj-*', subject: {from: key}}
  unmatched: passthrough"

# ---- the policy in force, checked on the broker: version-2 envelopes for the topic key, version 3 for subject keys

check=$$-$(date +%s)
declare -A VERSION=([enc]=2 [subj]=3)
for kind in "${KINDS[@]}"; do
  topic=bench-$kind-check-$check
  bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic" 1
  load produce "$KAFKA_BOOTSTRAP" "$topic" 10 "$SIZE" "$SUBJECTS" >/dev/null || die "$topic: producing through the mesh failed"
  stored=$(load first "$BROKER_DIRECT" "$topic")
  fetched=$(load first "$KAFKA_BOOTSTRAP" "$topic")
  [[ $stored == "subject-0000 envelope-v${VERSION[$kind]}" ]] \
    || die "$topic: the broker holds '$stored', not a version-${VERSION[$kind]} envelope: the policy is not in force"
  [[ $fetched == "subject-0000 plain" ]] || die "$topic: consumed through the mesh: '$fetched', not the plaintext"
  bench_delete_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic"
done
say "policy in force (checked on the broker): bench-enc-* under the topic key, bench-subj-* under subject keys"

# ---- both kinds interleaved

say "$RECORDS records of $SIZE bytes keyed over $SUBJECTS subjects, acks=all, linger.ms=5, batch.size=65536, 1 partition,"
say "$ROUNDS rounds (round 1: warm-up), through the mesh"
ROW='%-5s %-5s %13.0f %13.0f %15s %15s\n'
# shellcheck disable=SC2059
printf "${ROW//.0f/s}" round kind produce_rec/s consume_rec/s filter_us_p/c envoy_us_p/c
declare -A PRODUCE CONSUME FILTER_P FILTER_C ENVOY_P ENVOY_C
PRODUCE_X=; CONSUME_X=; FILTER_PX=; FILTER_CX=
for round in $(seq 1 "$ROUNDS"); do
  order=(enc subj)
  ((round % 2 == 0)) && order=(subj enc)
  declare -A P=() C=() FP=() FC=()
  for kind in "${order[@]}"; do
    topic=bench-$kind-$round-$$
    bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic" 1
    f0=$(bench_cpu_ticks "$FILTER_PID"); e0=$(bench_cpu_ticks "$ENVOY_PID")
    read -r P[$kind] _ < <(load produce "$KAFKA_BOOTSTRAP" "$topic" "$RECORDS" "$SIZE" "$SUBJECTS") \
      || die "$topic: producing through the mesh failed"
    f1=$(bench_cpu_ticks "$FILTER_PID"); e1=$(bench_cpu_ticks "$ENVOY_PID")
    read -r C[$kind] _ < <(bench_consume "$MESHCRYPT_HOME" "$KAFKA_BOOTSTRAP" "$topic" "$RECORDS")
    f2=$(bench_cpu_ticks "$FILTER_PID"); e2=$(bench_cpu_ticks "$ENVOY_PID")
    bench_delete_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$topic"
    FP[$kind]=$(bench_us_per_record $((f1 - f0)) "$RECORDS"); FC[$kind]=$(bench_us_per_record $((f2 - f1)) "$RECORDS")
    ep=$(bench_us_per_record $((e1 - e0)) "$RECORDS"); ec=$(bench_us_per_record $((e2 - e1)) "$RECORDS")
    # shellcheck disable=SC2059
    printf "$ROW" "$round" "$kind" "${P[$kind]}" "${C[$kind]}" "${FP[$kind]}/${FC[$kind]}" "$ep/$ec"
    if ((round > 1 || ROUNDS == 1)); then
      PRODUCE[$kind]+=" ${P[$kind]}"; CONSUME[$kind]+=" ${C[$kind]}"
      FILTER_P[$kind]+=" ${FP[$kind]}"; FILTER_C[$kind]+=" ${FC[$kind]}"; ENVOY_P[$kind]+=" $ep"; ENVOY_C[$kind]+=" $ec"
    fi
  done
  if ((round > 1 || ROUNDS == 1)); then
    PRODUCE_X+=" $(bench_ratio "${P[subj]}" "${P[enc]}")"; CONSUME_X+=" $(bench_ratio "${C[subj]}" "${C[enc]}")"
    FILTER_PX+=" $(bench_ratio "${FP[subj]}" "${FP[enc]}")"; FILTER_CX+=" $(bench_ratio "${FC[subj]}" "${FC[enc]}")"
  fi
done

"$ROOT/meshcrypt" down >/dev/null
trap 'rm -rf "$WORK"' EXIT

# shellcheck disable=SC2086
m() { bench_median $1; } # word-split on purpose
echo
say "summary: medians over rounds 2..$ROUNDS (all rounds when there is one), $RECORDS x $SIZE B records, $SUBJECTS subjects"
echo "| values under | produce rec/s | consume rec/s | filter-service CPU µs/record (produce / consume) | Envoy CPU µs/record (produce / consume) |"
echo "|---|---|---|---|---|"
for kind in "${KINDS[@]}"; do
  printf '| %s | %s | %s | %s / %s | %s / %s |\n' "${KIND_NAME[$kind]}" "$(m "${PRODUCE[$kind]}")" "$(m "${CONSUME[$kind]}")" \
    "$(m "${FILTER_P[$kind]}")" "$(m "${FILTER_C[$kind]}")" "$(m "${ENVOY_P[$kind]}")" "$(m "${ENVOY_C[$kind]}")"
done
echo
echo "subject keys / topic key, medians of round-by-round ratios: throughput $(m "$PRODUCE_X") produce, $(m "$CONSUME_X")" \
  "consume (goal >= 0.85); filter-service CPU per record $(m "$FILTER_PX") produce, $(m "$FILTER_CX") consume"

if [[ ${BENCH_SKIP_JMH:-0} != 1 ]]; then
  echo
  "$ROOT/tests/bench/jmh.sh" SubjectKeysBenchmark
  # per exchange: subject keys (from the record key, from a JSON pointer) over the topic key, batches/s and CPU/record
  jq -r '
    map({exchange: .params.exchange, subjects: .params.subjects, ops: .primaryMetric.score,
         cpu: ((.secondaryMetrics.cpuNanos.score // 0) / .primaryMetric.score)})
    | group_by(.exchange)[]
    | (map(select(.subjects == "topicKey")) | first) as $t
    | .[] | select(.subjects != "topicKey")
    | "# JMH \(.exchange) \(.subjects) / topicKey: batches/s \(.ops / $t.ops * 1000 | floor / 1000), CPU per record \(if $t.cpu > 0 then (.cpu / $t.cpu * 1000 | floor / 1000) else "-" end)"' \
    "$ROOT/tests/bench/jmh/target/jmh-result.json"
fi
