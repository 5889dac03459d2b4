package io.meshcrypt.e2e.support;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.FetchRequestData;
import org.apache.kafka.common.message.FetchResponseData;
import org.apache.kafka.common.message.MetadataRequestData;
import org.apache.kafka.common.message.MetadataResponseData;
import org.apache.kafka.common.message.ProduceRequestData;
import org.apache.kafka.common.message.ProduceResponseData;
import org.apache.kafka.common.message.RequestHeaderData;
import org.apache.kafka.common.message.ResponseHeaderData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.ByteBufferAccessor;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.protocol.ObjectSerializationCache;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.RecordBatch;

/**
 * A scripted, hostile Kafka broker on 127.0.0.1: one node (id 1) that answers ApiVersions, Metadata, Produce and
 * Fetch as a test tells it, and records every byte and every request that reaches it. Tests point an Envoy listener
 * at it and then assert what got through the filter-service (no plaintext, no unknown api key, no oversized frame).
 *
 * <p>Only as much Kafka as a plain KafkaProducer (idempotence off) and an assign()+seek() KafkaConsumer need; any
 * other request is recorded and the connection closed, as a broker that does not know it would.
 */
public final class FakeBroker implements AutoCloseable {

    /** A broker never reads a frame larger than this (Kafka's socket.request.max.bytes default is 100 MiB). */
    private static final int MAX_FRAME = 100 << 20;
    private static final int NODE_ID = 1;

    /** A topic the broker knows: its name, id and one partition. */
    public record Topic(String name, Uuid id) {
    }

    /** One request frame the broker received, with the records of a Produce (copied out). */
    public record Request(int connection, short apiKey, short version, int size, ApiMessage body) {
    }

    /** One record of a Produce as it reached the broker: what an attacker with disk access would see. */
    public record Produced(int connection, short version, String topicName, Uuid topicId, int partition, byte[] value) {
    }

    /** Bytes of one accepted connection: how many, and the first few (a garbage or TLS frame shows here). */
    public static final class Connection {
        public final int id;
        public final AtomicLong bytes = new AtomicLong();
        public volatile byte[] head = new byte[0];
        public volatile boolean closed;

        Connection(int id) {
            this.id = id;
        }
    }

    /** Answers a Fetch of one partition: records from {@code fetchOffset}, or null for none (an empty answer). */
    @FunctionalInterface
    public interface FetchScript {
        MemoryRecords recordsFrom(long fetchOffset);
    }

    private final ServerSocket server;
    private final List<Request> requests = new CopyOnWriteArrayList<>();
    private final List<Produced> produced = new CopyOnWriteArrayList<>();
    private final List<Connection> connections = new CopyOnWriteArrayList<>();
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    /** Metadata answers with those of these topics a request names, in this order (duplicate ids: the attack). */
    private final List<Topic> topics = new CopyOnWriteArrayList<>();
    private final Map<String, FetchScript> fetchScripts = new ConcurrentHashMap<>();
    private final AtomicInteger connectionIds = new AtomicInteger();
    private final AtomicLong nextOffset = new AtomicLong();
    private volatile short produceMaxVersion = ApiKeys.PRODUCE.latestVersion();
    private volatile String advertisedHost = "127.0.0.1";
    private volatile boolean open = true;

    public FakeBroker() throws IOException {
        server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread.ofPlatform().daemon().name("fake-broker-accept").start(this::acceptLoop);
    }

    public int port() {
        return server.getLocalPort();
    }

    /** Replaces the topics every Metadata answer lists (in order). */
    public void topics(List<Topic> scripted) {
        topics.clear();
        topics.addAll(scripted);
    }

    /** The highest Produce version this broker offers in ApiVersions (default: the newest kafka-clients knows). */
    public void produceMaxVersion(short version) {
        produceMaxVersion = version;
    }

    /** Scripts the Fetch answers for partition 0 of {@code topic}. */
    public void fetchScript(String topic, FetchScript script) {
        fetchScripts.put(topic, script);
    }

    public List<Request> requests() {
        return List.copyOf(requests);
    }

    public List<Produced> produced() {
        return List.copyOf(produced);
    }

    public List<Connection> connections() {
        return List.copyOf(connections);
    }

    /** Forgets what was received so far (scripts and topics stay). */
    public void clearRecorded() {
        requests.clear();
        produced.clear();
        connections.clear();
    }

    @Override
    public void close() throws IOException {
        open = false;
        server.close();
        for (Socket s : sockets) {
            try {
                s.close();
            } catch (IOException ignored) {
                // closing anyway
            }
        }
    }

    private void acceptLoop() {
        while (open) {
            try {
                Socket s = server.accept();
                s.setTcpNoDelay(true);
                sockets.add(s);
                Connection c = new Connection(connectionIds.incrementAndGet());
                connections.add(c);
                Thread.ofPlatform().daemon().name("fake-broker-conn-" + c.id).start(() -> serve(s, c));
            } catch (IOException e) {
                if (open) {
                    System.err.println("fake broker: accept failed: " + e);
                }
            }
        }
    }

    private void serve(Socket socket, Connection c) {
        try (socket) {
            InputStream raw = socket.getInputStream();
            DataInputStream in = new DataInputStream(new CountingStream(raw, c));
            OutputStream out = socket.getOutputStream();
            while (open) {
                int size = in.readInt();
                if (size < 8 || size > MAX_FRAME) {
                    // what a real broker does with an impossible size: the frame is recorded through the head bytes
                    requests.add(new Request(c.id, (short) -1, (short) -1, size, null));
                    return;
                }
                byte[] frame = new byte[size];
                in.readFully(frame);
                ByteBuffer buf = ByteBuffer.wrap(frame);
                short apiKey = buf.getShort(0);
                short version = buf.getShort(2);
                if (!ApiKeys.hasId(apiKey)) {
                    requests.add(new Request(c.id, apiKey, version, size, null));
                    return;
                }
                ApiKeys api = ApiKeys.forId(apiKey);
                RequestHeaderData header = new RequestHeaderData(new ByteBufferAccessor(buf), api.requestHeaderVersion(version));
                ApiMessage response = switch (api) {
                    case API_VERSIONS -> apiVersions();
                    case METADATA -> metadata(new MetadataRequestData(new ByteBufferAccessor(buf), version));
                    case PRODUCE -> produce(c, new ProduceRequestData(new ByteBufferAccessor(buf), version), version, size);
                    case FETCH -> fetch(c, new FetchRequestData(new ByteBufferAccessor(buf), version), version, size);
                    default -> null;
                };
                if (api != ApiKeys.PRODUCE && api != ApiKeys.FETCH) {
                    requests.add(new Request(c.id, apiKey, version, size, null));
                }
                if (response == null) {
                    if (api == ApiKeys.PRODUCE) {
                        continue; // acks=0
                    }
                    return; // an API this broker does not script: close, as a broker that does not know it would
                }
                short responseVersion = api == ApiKeys.API_VERSIONS ? (short) Math.min(version, ApiKeys.API_VERSIONS.latestVersion()) : version;
                out.write(frame(header.correlationId(), response, api.responseHeaderVersion(responseVersion), responseVersion));
                out.flush();
            }
        } catch (EOFException | SocketException e) {
            // the peer (Envoy) closed the connection
        } catch (Exception e) {
            System.err.println("fake broker: connection " + c.id + " failed: " + e);
        } finally {
            c.closed = true;
        }
    }

    private ApiVersionsResponseData apiVersions() {
        ApiVersionsResponseData r = new ApiVersionsResponseData().setErrorCode(Errors.NONE.code());
        for (ApiKeys api : List.of(ApiKeys.API_VERSIONS, ApiKeys.METADATA, ApiKeys.PRODUCE, ApiKeys.FETCH)) {
            short max = api == ApiKeys.PRODUCE ? produceMaxVersion : api.latestVersion();
            r.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey(api.id)
                    .setMinVersion(api.oldestVersion()).setMaxVersion(max));
        }
        return r;
    }

    private MetadataResponseData metadata(MetadataRequestData request) {
        MetadataResponseData r = new MetadataResponseData().setClusterId("fake-broker").setControllerId(NODE_ID);
        r.brokers().add(new MetadataResponseData.MetadataResponseBroker().setNodeId(NODE_ID).setHost(advertisedHost).setPort(port()));
        // the topics asked for (all when none are named): a real client rejects one answer that maps two names to
        // one id, so a hostile broker tells each connection only the half of the lie it asked about
        for (Topic t : topics) {
            boolean asked = request.topics() == null || request.topics().stream()
                    .anyMatch(a -> t.name().equals(a.name()) || t.id().equals(a.topicId()));
            if (!asked) {
                continue;
            }
            r.topics().add(new MetadataResponseData.MetadataResponseTopic().setName(t.name()).setTopicId(t.id())
                    .setErrorCode(Errors.NONE.code())
                    .setPartitions(List.of(new MetadataResponseData.MetadataResponsePartition().setPartitionIndex(0)
                            .setLeaderId(NODE_ID).setLeaderEpoch(0).setReplicaNodes(List.of(NODE_ID))
                            .setIsrNodes(List.of(NODE_ID)).setOfflineReplicas(List.of()))));
        }
        if (request.topics() != null) {
            for (MetadataRequestData.MetadataRequestTopic asked : request.topics()) {
                boolean known = topics.stream().anyMatch(t -> t.name().equals(asked.name()) || t.id().equals(asked.topicId()));
                if (!known && asked.name() != null) {
                    r.topics().add(new MetadataResponseData.MetadataResponseTopic().setName(asked.name())
                            .setErrorCode(Errors.UNKNOWN_TOPIC_OR_PARTITION.code()));
                }
            }
        }
        return r;
    }

    private ProduceResponseData produce(Connection c, ProduceRequestData request, short version, int size) {
        requests.add(new Request(c.id, ApiKeys.PRODUCE.id, version, size, request));
        ProduceResponseData r = new ProduceResponseData();
        for (ProduceRequestData.TopicProduceData t : request.topicData()) {
            ProduceResponseData.TopicProduceResponse tr = new ProduceResponseData.TopicProduceResponse()
                    .setName(t.name()).setTopicId(t.topicId());
            for (ProduceRequestData.PartitionProduceData p : t.partitionData()) {
                long base = nextOffset.get();
                if (p.records() instanceof MemoryRecords records) {
                    for (RecordBatch batch : records.batches()) {
                        for (Record rec : batch) {
                            nextOffset.incrementAndGet();
                            produced.add(new Produced(c.id, version, t.name(), t.topicId(), p.index(), bytes(rec.value())));
                        }
                    }
                }
                tr.partitionResponses().add(new ProduceResponseData.PartitionProduceResponse().setIndex(p.index())
                        .setErrorCode(Errors.NONE.code()).setBaseOffset(base).setLogAppendTimeMs(-1).setLogStartOffset(0));
            }
            r.responses().add(tr);
        }
        return request.acks() == 0 ? null : r;
    }

    private FetchResponseData fetch(Connection c, FetchRequestData request, short version, int size) throws InterruptedException {
        requests.add(new Request(c.id, ApiKeys.FETCH.id, version, size, null));
        FetchResponseData r = new FetchResponseData().setErrorCode(Errors.NONE.code()).setSessionId(0);
        boolean any = false;
        for (FetchRequestData.FetchTopic ft : request.topics()) {
            Optional<Topic> topic = topics.stream()
                    .filter(t -> version >= 13 ? t.id().equals(ft.topicId()) : t.name().equals(ft.topic())).findFirst();
            FetchResponseData.FetchableTopicResponse tr = new FetchResponseData.FetchableTopicResponse()
                    .setTopic(ft.topic()).setTopicId(ft.topicId());
            for (FetchRequestData.FetchPartition fp : ft.partitions()) {
                FetchResponseData.PartitionData pd = new FetchResponseData.PartitionData().setPartitionIndex(fp.partition())
                        .setLogStartOffset(0).setPreferredReadReplica(-1);
                FetchScript script = topic.map(t -> fetchScripts.get(t.name())).orElse(null);
                if (topic.isEmpty()) {
                    pd.setErrorCode((version >= 13 ? Errors.UNKNOWN_TOPIC_ID : Errors.UNKNOWN_TOPIC_OR_PARTITION).code());
                } else {
                    MemoryRecords records = script == null ? null : script.recordsFrom(fp.fetchOffset());
                    long end = fp.fetchOffset();
                    if (records != null) {
                        for (RecordBatch b : records.batches()) {
                            end = Math.max(end, b.nextOffset());
                        }
                        any = true;
                    }
                    pd.setErrorCode(Errors.NONE.code()).setHighWatermark(end).setLastStableOffset(end)
                            .setRecords(records == null ? MemoryRecords.EMPTY : records);
                }
                tr.partitions().add(pd);
            }
            r.responses().add(tr);
        }
        if (!any) {
            Thread.sleep(Math.min(Math.max(request.maxWaitMs(), 0), 200)); // a long poll, not a busy loop
        }
        return r;
    }

    private static byte[] bytes(ByteBuffer b) {
        if (b == null) {
            return null;
        }
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    /** A size-prefixed frame: response header then body. */
    public static byte[] frame(int correlationId, ApiMessage body, short headerVersion, short version) {
        ObjectSerializationCache cache = new ObjectSerializationCache();
        ResponseHeaderData header = new ResponseHeaderData().setCorrelationId(correlationId);
        int size = header.size(cache, headerVersion) + body.size(cache, version);
        ByteBuffer buf = ByteBuffer.allocate(4 + size).putInt(size);
        ByteBufferAccessor acc = new ByteBufferAccessor(buf);
        header.write(acc, cache, headerVersion);
        body.write(acc, cache, version);
        return buf.array();
    }

    /** A size-prefixed request frame as a client would send it. */
    public static byte[] requestFrame(ApiKeys api, short version, int correlationId, ApiMessage body) {
        ObjectSerializationCache cache = new ObjectSerializationCache();
        short hv = api.requestHeaderVersion(version);
        RequestHeaderData header = new RequestHeaderData().setRequestApiKey(api.id).setRequestApiVersion(version)
                .setCorrelationId(correlationId).setClientId("hostile");
        int size = header.size(cache, hv) + body.size(cache, version);
        ByteBuffer buf = ByteBuffer.allocate(4 + size).putInt(size);
        ByteBufferAccessor acc = new ByteBufferAccessor(buf);
        header.write(acc, cache, hv);
        body.write(acc, cache, version);
        return buf.array();
    }

    /** Counts every byte read and keeps the first 64, so a test sees exactly what reached the broker. */
    private static final class CountingStream extends InputStream {
        private final InputStream in;
        private final Connection c;

        CountingStream(InputStream in, Connection c) {
            this.in = in;
            this.c = c;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xFF;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = in.read(b, off, len);
            if (n > 0) {
                long before = c.bytes.getAndAdd(n);
                if (before < 64) {
                    byte[] head = c.head;
                    int take = (int) Math.min(n, 64 - before);
                    byte[] grown = Arrays.copyOf(head, head.length + take);
                    System.arraycopy(b, off, grown, head.length, take);
                    c.head = grown;
                }
            }
            return n;
        }
    }

    /** Every value that reached this broker for {@code topicName} (Produce by name) or {@code topicId} (by id). */
    public List<Produced> producedTo(String topicName, Uuid topicId) {
        List<Produced> out = new ArrayList<>();
        for (Produced p : produced) {
            if (topicName.equals(p.topicName()) || topicId != null && topicId.equals(p.topicId())) {
                out.add(p);
            }
        }
        return out;
    }
}
