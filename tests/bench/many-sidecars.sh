#!/usr/bin/env bash
# Many sidecar connections through ONE filter-service: C Kafka connections (default 200) through the mesh's Envoy,
# all producing at once, each at a fixed rate, to an encrypted topic, then all reading it back (Fetch, decrypted). Measures what the capacity model in
# docs/operations.md ("Capacity") is built from:
#   - the filter-service's live heap (after a full GC, jcmd GC.run), RSS and Netty pool memory: idle with no
#     connection, with C connections open and idle, and under load -> memory per stream;
#   - CPU µs per record of the filter-service and of Envoy (user + system, /proc/<pid>/stat) over the load phase;
#   - per-connection throughput (records/s of each connection: min, median, max; a starved stream shows as a low
#     min), the ext_proc streams the filter-service has open, its held bytes.
#
#   tests/bench/many-sidecars.sh [connections=200] [seconds=20] [records/s per connection=25] [record-size=1024]
#
# The load client is a small Java program written out by this script and run from source on the broker's
# classpath: one virtual thread per connection, each a plain Kafka client on a socket (ApiVersions, then Produce v12
# requests of BATCH records with acks=1, one in flight, paced to the rate; then Fetch v12 of its partition from the
# start, about BATCH records per request, each value checked to be decrypted), so that exactly C connections exist and
# the client itself costs little CPU. Records are 1 KiB of random-looking bytes by default, BATCH (default 16) per
# request; a rate of -1 sends as fast as each connection can.
#
# Its own mesh (MESHCRYPT_HOME=tests/target/bench-sidecars, MESHCRYPT_PORT_BASE default 28000), started here with
# the launcher's policy (every topic encrypted) and stopped at the end. Before measuring, the script checks on the
# broker that the records it produced are envelopes, not plaintext.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CONNECTIONS=${1:-200}
SECONDS_UNDER_LOAD=${2:-20}
RATE=${3:-25}
SIZE=${4:-1024}
BATCH=${BENCH_BATCH:-16}
PARTITIONS=${BENCH_PARTITIONS:-8}
export MESHCRYPT_HOME=${MESHCRYPT_HOME:-$ROOT/tests/target/bench-sidecars}
export MESHCRYPT_PORT_BASE=${MESHCRYPT_PORT_BASE:-28000}
# shellcheck source=tests/bench/lib.sh
source "$ROOT/tests/bench/lib.sh"
say() { printf '# %s\n' "$*"; }
die() { printf 'many-sidecars.sh: %s\n' "$*" >&2; exit 1; }
command -v curl >/dev/null || die "needs curl"

bench_mesh_up
JCMD=$(dirname "$(readlink -f "/proc/$FILTER_PID/exe")")/jcmd
[[ -x $JCMD ]] || die "no jcmd next to the filter-service's java ($JCMD)"
BOOTSTRAP_PORT=${KAFKA_BOOTSTRAP##*:}
TOPIC=bench-sidecars-$$
bench_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$TOPIC" "$PARTITIONS"
trap 'bench_delete_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$TOPIC" || true; "$ROOT/meshcrypt" down >/dev/null' EXIT

# ---- the load client

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; bench_delete_topic "$MESHCRYPT_HOME" "$BROKER_DIRECT" "$TOPIC" || true; "$ROOT/meshcrypt" down >/dev/null' EXIT
cat >"$WORK/SidecarLoad.java" <<'EOF'
import java.io.*;
import java.net.*;
import java.nio.ByteBuffer;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.message.*;
import org.apache.kafka.common.protocol.*;
import org.apache.kafka.common.record.internal.*;
import org.apache.kafka.common.requests.*;

/**
 * args: port topic partitions connections seconds rate size batch. Opens the connections, prints "open N", then per
 * stdin line: produce, stop (prints "done records errors min median max" of records/s per connection), fetch (each
 * connection reads its partition from the start, Fetch v12 of about a batch), stop (the same summary), close.
 */
public class SidecarLoad {
    static final Phase PRODUCE = new Phase();
    static final Phase FETCH = new Phase();
    static final CountDownLatch CLOSE = new CountDownLatch(1);
    static int n, partitions, size, batch;
    static double rate;
    static String topic;

    /** One phase: started and stopped by the main thread; each connection's records, errors and time. */
    static final class Phase {
        final CountDownLatch start = new CountDownLatch(1);
        final AtomicBoolean stop = new AtomicBoolean();
        CountDownLatch done;
        long[] records, errors, nanos;

        void init() {
            done = new CountDownLatch(n);
            records = new long[n];
            errors = new long[n];
            nanos = new long[n];
        }

        /** Sleeps until {@code count} records are due at the rate. */
        void pace(long startNanos, long count) throws InterruptedException {
            if (rate > 0) {
                long wait = startNanos + (long) (count / rate * 1e9) - System.nanoTime();
                if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            }
        }

        String summary() throws InterruptedException {
            stop.set(true);
            done.await();
            double[] perSecond = new double[n];
            long total = 0, failed = 0;
            for (int i = 0; i < n; i++) {
                perSecond[i] = nanos[i] > 0 ? records[i] * 1e9 / nanos[i] : 0;
                total += records[i];
                failed += errors[i];
            }
            Arrays.sort(perSecond);
            return String.format("done %d %d %.1f %.1f %.1f", total, failed, perSecond[0], perSecond[n / 2], perSecond[n - 1]);
        }
    }

    public static void main(String[] a) throws Exception {
        int port = Integer.parseInt(a[0]);
        topic = a[1];
        partitions = Integer.parseInt(a[2]);
        n = Integer.parseInt(a[3]);
        rate = Double.parseDouble(a[5]);
        size = Integer.parseInt(a[6]);
        batch = Integer.parseInt(a[7]);
        PRODUCE.init();
        FETCH.init();
        CountDownLatch open = new CountDownLatch(n);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int c = i;
            threads.add(Thread.ofVirtual().start(() -> connection(port, c, open)));
        }
        open.await();
        System.out.println("open " + n);
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in));
        for (Phase phase : List.of(PRODUCE, FETCH)) {
            stdin.readLine();
            phase.start.countDown();
            System.out.println("running");
            stdin.readLine();
            System.out.println(phase.summary());
        }
        stdin.readLine();
        CLOSE.countDown();
        for (Thread t : threads) t.join();
    }

    static void connection(int port, int c, CountDownLatch open) {
        boolean opened = false;
        try (Socket s = new Socket(InetAddress.getLoopbackAddress(), port)) {
            s.setTcpNoDelay(true);
            DataOutputStream out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream()));
            DataInputStream in = new DataInputStream(new BufferedInputStream(s.getInputStream()));
            send(out, new ApiVersionsRequest.Builder().build((short) 3), header(ApiKeys.API_VERSIONS, 3, 0));
            read(in);
            open.countDown();
            opened = true;
            int id = produce(out, in, c);
            fetch(out, in, c, id);
            CLOSE.await();
        } catch (Exception e) {
            System.err.println("connection " + c + ": " + e);
            if (!opened) open.countDown();
        } finally {
            for (Phase phase : List.of(PRODUCE, FETCH)) {
                if (phase.nanos[c] == 0) phase.done.countDown();
            }
        }
    }

    /** Produce v12 of {@code batch} records, acks=1, one in flight, until stopped; returns the next correlation id. */
    static int produce(DataOutputStream out, DataInputStream in, int c) throws Exception {
        Random random = new Random(c);
        SimpleRecord[] records = new SimpleRecord[batch];
        for (int r = 0; r < batch; r++) {
            byte[] v = new byte[size];
            random.nextBytes(v);
            records[r] = new SimpleRecord(v);
        }
        ProduceRequestData data = new ProduceRequestData().setAcks((short) 1).setTimeoutMs(30_000);
        data.topicData().add(new ProduceRequestData.TopicProduceData().setName(topic).setPartitionData(List.of(
                new ProduceRequestData.PartitionProduceData().setIndex(c % partitions)
                        .setRecords(MemoryRecords.withRecords(Compression.NONE, records)))));
        ProduceRequest produce = new ProduceRequest.Builder((short) 12, (short) 12, data).build((short) 12);
        PRODUCE.start.await();
        long start = System.nanoTime();
        int id = 1;
        for (; !PRODUCE.stop.get(); id++) {
            RequestHeader header = header(ApiKeys.PRODUCE, 12, id);
            send(out, produce, header);
            Map<Errors, Integer> outcome = AbstractResponse.parseResponse(read(in), header).errorCounts();
            if (outcome.keySet().equals(Set.of(Errors.NONE))) PRODUCE.records[c] += batch; else PRODUCE.errors[c]++;
            PRODUCE.pace(start, PRODUCE.records[c]);
        }
        PRODUCE.nanos[c] = System.nanoTime() - start;
        PRODUCE.done.countDown();
        return id;
    }

    /**
     * Fetch v12 of its partition from the start, about one batch per request, until stopped. A record counts when
     * its value has the size produced: a value still encrypted is longer, and counts as an error.
     */
    static void fetch(DataOutputStream out, DataInputStream in, int c, int id) throws Exception {
        FETCH.start.await();
        long start = System.nanoTime();
        long offset = 0;
        for (; !FETCH.stop.get(); id++) {
            FetchRequestData data = new FetchRequestData().setReplicaId(-1).setMaxWaitMs(500).setMinBytes(1)
                    .setMaxBytes(1 << 20).setSessionId(0).setSessionEpoch(-1)
                    .setTopics(List.of(new FetchRequestData.FetchTopic().setTopic(topic).setPartitions(List.of(
                            new FetchRequestData.FetchPartition().setPartition(c % partitions).setFetchOffset(offset)
                                    .setPartitionMaxBytes(batch * size)))));
            RequestHeader header = header(ApiKeys.FETCH, 12, id);
            send(out, new FetchRequest(data, (short) 12), header);
            FetchResponse response = (FetchResponse) AbstractResponse.parseResponse(read(in), header);
            FetchResponseData.PartitionData partition = response.data().responses().get(0).partitions().get(0);
            if (partition.errorCode() != 0) {
                FETCH.errors[c]++;
                continue;
            }
            for (RecordBatch b : ((Records) partition.records()).batches()) {
                for (org.apache.kafka.common.record.internal.Record r : b) {
                    if (r.offset() < offset) continue;
                    if (r.valueSize() == size) FETCH.records[c]++; else FETCH.errors[c]++;
                    offset = r.offset() + 1;
                }
            }
            FETCH.pace(start, FETCH.records[c]);
        }
        FETCH.nanos[c] = System.nanoTime() - start;
        FETCH.done.countDown();
    }

    static RequestHeader header(ApiKeys api, int version, int id) {
        return new RequestHeader(api, (short) version, "sidecar-load", id);
    }

    /** Kafka's own serialisation, size-prefixed as on the wire. */
    static void send(DataOutputStream out, AbstractRequest request, RequestHeader header) throws IOException {
        ByteBuffer frame = request.serializeWithHeader(header);
        byte[] bytes = new byte[frame.remaining()];
        frame.get(bytes);
        out.writeInt(bytes.length);
        out.write(bytes);
        out.flush();
    }

    static ByteBuffer read(DataInputStream in) throws IOException {
        byte[] frame = new byte[in.readInt()];
        in.readFully(frame);
        return ByteBuffer.wrap(frame);
    }
}
EOF

# ---- what the filter-service and Envoy hold

metric() { bench_metric "$FILTER_METRICS" "$1" || echo 0; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
heap_used() { metric '^jvm_memory_used_bytes[{]area="heap"'; }
# live heap: after a full GC (jcmd GC.run), in bytes
live_heap() {
  "$JCMD" "$FILTER_PID" GC.run >/dev/null
  heap_used
}
mib() { awk -v b="$1" 'BEGIN{printf "%.1f", b / 1048576}'; }
declare -A HEAP RSS ENVOY_RSS NETTY STREAMS
sample() { # phase name, then "live" to force a full GC first (never inside a CPU window)
  if [[ ${2:-} == live ]]; then HEAP[$1]=$(live_heap); else HEAP[$1]=$(heap_used); fi
  RSS[$1]=$(($(rss_kb "$FILTER_PID") * 1024))
  ENVOY_RSS[$1]=$(($(rss_kb "$ENVOY_PID") * 1024))
  NETTY[$1]=$(metric '^netty_allocator_memory_used_bytes[{]')
  STREAMS[$1]=$(metric '^meshcrypt_ext_proc_streams_active ')
  printf '%-24s heap %-5s %7s MiB  RSS %7s MiB  Netty pools %6s MiB  Envoy RSS %6s MiB  streams %5s\n' "$1" \
    "${2:-used}" "$(mib "${HEAP[$1]}")" "$(mib "${RSS[$1]}")" "$(mib "${NETTY[$1]}")" "$(mib "${ENVOY_RSS[$1]}")" "${STREAMS[$1]}"
}
# seconds: CPU ticks of the filter-service and Envoy over that many idle seconds, "filter envoy"
idle_cpu() {
  local f e
  f=$(bench_cpu_ticks "$FILTER_PID")
  e=$(bench_cpu_ticks "$ENVOY_PID")
  sleep "$1"
  echo $(($(bench_cpu_ticks "$FILTER_PID") - f)) $(($(bench_cpu_ticks "$ENVOY_PID") - e))
}
IDLE_SECONDS=${BENCH_IDLE_SECONDS:-10}

# ---- the policy in force (what reaches the broker is an envelope), and a warm JIT

say "warm-up and check: 20000 records through the mesh to $TOPIC and back"
bench_tool "$MESHCRYPT_HOME" org.apache.kafka.tools.ProducerPerformance --topic "$TOPIC" --num-records 20000 \
  --record-size "$SIZE" --throughput -1 --producer-props bootstrap.servers="$KAFKA_BOOTSTRAP" acks=all >/dev/null
bench_consume "$MESHCRYPT_HOME" "$KAFKA_BOOTSTRAP" "$TOPIC" 20000 >/dev/null
at_rest=$({ bench_tool "$MESHCRYPT_HOME" org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$BROKER_DIRECT" \
  --topic "$TOPIC" --from-beginning --max-messages 1 --timeout-ms 30000 || true; } | head -c 5 | od -An -tx1 | tr -d ' \n')
[[ $at_rest == 004d4345* ]] || die "the record at rest is not an envelope (first bytes: ${at_rest:-none}): the policy is not in force"

printf '# %s connections, %s records/s each (-1: as fast as they go; %s-byte records, %s per Produce, acks=1), %s s, topic of %s partitions\n' \
  "$CONNECTIONS" "$RATE" "$SIZE" "$BATCH" "$SECONDS_UNDER_LOAD" "$PARTITIONS"
NONE="no connection"
IDLE="$CONNECTIONS open, idle"
LOADED="$CONNECTIONS streaming"
AFTER="$CONNECTIONS open, after load"
FETCHING="$CONNECTIONS fetching"
sample "$NONE" live
read -r IDLE0_F IDLE0_E < <(idle_cpu "$IDLE_SECONDS")
coproc LOAD { "$BENCH_JAVA" -Xmx512m -cp "$(cat "$MESHCRYPT_HOME/kafka.classpath")" "$WORK/SidecarLoad.java" \
  "$BOOTSTRAP_PORT" "$TOPIC" "$PARTITIONS" "$CONNECTIONS" "$SECONDS_UNDER_LOAD" "$RATE" "$SIZE" "$BATCH" 2>"$WORK/load.err"; }
read -r line <&"${LOAD[0]}" || die "load client: $(cat "$WORK/load.err")"
[[ $line == "open $CONNECTIONS" ]] || die "load client: $line $(cat "$WORK/load.err")"
sleep 2
sample "$IDLE" live
read -r IDLE_F IDLE_E < <(idle_cpu "$IDLE_SECONDS")
# command for the load client (produce | fetch), name of the mid-run sample: one phase of SECONDS_UNDER_LOAD; sets
# RESULT ("records errors min median max" of the load client), FILTER_CPU and ENVOY_CPU (ticks over the phase), and
# HELD, HELD_FRAMES, THREADS of the filter-service mid-run
run_phase() {
  local f0 e0 word
  f0=$(bench_cpu_ticks "$FILTER_PID")
  e0=$(bench_cpu_ticks "$ENVOY_PID")
  echo "$1" >&"${LOAD[1]}"
  read -r word <&"${LOAD[0]}"
  sleep $((SECONDS_UNDER_LOAD / 2))
  HELD=$(metric '^meshcrypt_held_bytes ')
  HELD_FRAMES=$(metric '^meshcrypt_held_frames ')
  THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$FILTER_PID/status")
  sample "$2"
  sleep $((SECONDS_UNDER_LOAD - SECONDS_UNDER_LOAD / 2))
  echo stop >&"${LOAD[1]}"
  read -r word RESULT <&"${LOAD[0]}" || die "load client: $(cat "$WORK/load.err")"
  FILTER_CPU=$(($(bench_cpu_ticks "$FILTER_PID") - f0))
  ENVOY_CPU=$(($(bench_cpu_ticks "$ENVOY_PID") - e0))
  [[ $word == done ]] || die "load client: $word $RESULT $(cat "$WORK/load.err")"
}
run_phase produce "$LOADED"
read -r total failed min median max <<<"$RESULT"
PRODUCE_HELD="$HELD, $HELD_FRAMES"
PRODUCE_THREADS=$THREADS
PRODUCE_FILTER_CPU=$FILTER_CPU
PRODUCE_ENVOY_CPU=$ENVOY_CPU
sample "$AFTER" live
# the same connections read their partitions back (decrypted by the filter-service on the way; its Fetch path was
# warmed up with the 20000 records)
run_phase fetch "$FETCHING"
read -r fetched fetch_failed fetch_min fetch_median fetch_max <<<"$RESULT"
FETCH_FILTER_CPU=$FILTER_CPU
FETCH_ENVOY_CPU=$ENVOY_CPU
echo close >&"${LOAD[1]}"
wait "$LOAD_PID" || true
((total > 0)) || die "no record acknowledged: $(cat "$WORK/load.err")"
((fetched > 0)) || die "no record fetched: $(cat "$WORK/load.err")"

per_stream_kib() { awk -v a="$1" -v b="$2" -v n="$CONNECTIONS" 'BEGIN{printf "%.1f", (b - a) / n / 1024}'; }
# ticks over seconds -> % of one core
core_pct() { awk -v c="$1" -v t="$BENCH_TICK" -v s="$2" 'BEGIN{printf "%.2f", c / t / s * 100}'; }
echo
echo "| figure | value |"
echo "|---|---|"
echo "| connections (ext_proc streams open while streaming) | $CONNECTIONS (${STREAMS[$LOADED]}) |"
echo "| records acknowledged, Produce errors | $total, $failed |"
echo "| records/s per connection: min / median / max | $min / $median / $max |"
echo "| total records/s, MB/s of values | $(awk -v t="$total" -v s="$SECONDS_UNDER_LOAD" 'BEGIN{printf "%.0f", t / s}'), $(awk -v t="$total" -v s="$SECONDS_UNDER_LOAD" -v z="$SIZE" 'BEGIN{printf "%.2f", t * z / s / 1e6}') |"
echo "| filter-service CPU µs per record (produce phase) | $(bench_us_per_record "$PRODUCE_FILTER_CPU" "$total") |"
echo "| Envoy CPU µs per record (produce phase) | $(bench_us_per_record "$PRODUCE_ENVOY_CPU" "$total") |"
echo "| fetched: records decrypted, errors (Fetch errors and values not decrypted) | $fetched, $fetch_failed |"
echo "| fetched records/s per connection: min / median / max | $fetch_min / $fetch_median / $fetch_max |"
echo "| fetch: filter-service / Envoy CPU µs per record, filter-service % of a core | $(bench_us_per_record "$FETCH_FILTER_CPU" "$fetched") / $(bench_us_per_record "$FETCH_ENVOY_CPU" "$fetched"), $(core_pct "$FETCH_FILTER_CPU" "$SECONDS_UNDER_LOAD") |"
echo "| filter-service CPU, % of a core: idle without connections / with $CONNECTIONS idle / producing | $(core_pct "$IDLE0_F" "$IDLE_SECONDS") / $(core_pct "$IDLE_F" "$IDLE_SECONDS") / $(core_pct "$PRODUCE_FILTER_CPU" "$SECONDS_UNDER_LOAD") |"
echo "| Envoy CPU, % of a core: idle without connections / with $CONNECTIONS idle / producing | $(core_pct "$IDLE0_E" "$IDLE_SECONDS") / $(core_pct "$IDLE_E" "$IDLE_SECONDS") / $(core_pct "$PRODUCE_ENVOY_CPU" "$SECONDS_UNDER_LOAD") |"
echo "| filter-service live heap per stream, KiB: open idle / open after load | $(per_stream_kib "${HEAP[$NONE]}" "${HEAP[$IDLE]}") / $(per_stream_kib "${HEAP[$NONE]}" "${HEAP[$AFTER]}") |"
echo "| filter-service RSS per stream, KiB: open idle / streaming / after load | $(per_stream_kib "${RSS[$NONE]}" "${RSS[$IDLE]}") / $(per_stream_kib "${RSS[$NONE]}" "${RSS[$LOADED]}") / $(per_stream_kib "${RSS[$NONE]}" "${RSS[$AFTER]}") |"
echo "| filter-service Netty pools, MiB: none / streaming | $(mib "${NETTY[$NONE]}") / $(mib "${NETTY[$LOADED]}") |"
echo "| Envoy RSS per stream, KiB: open idle / streaming | $(per_stream_kib "${ENVOY_RSS[$NONE]}" "${ENVOY_RSS[$IDLE]}") / $(per_stream_kib "${ENVOY_RSS[$NONE]}" "${ENVOY_RSS[$LOADED]}") |"
echo "| held bytes, held frames (mid-run): producing / fetching | $PRODUCE_HELD / $HELD, $HELD_FRAMES |"
echo "| filter-service threads (mid-run): producing / fetching | $PRODUCE_THREADS / $THREADS |"
