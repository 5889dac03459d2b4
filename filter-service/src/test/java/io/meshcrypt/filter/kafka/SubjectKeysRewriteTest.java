package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelopeV3;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.filter.records.RecordBatchRewriter;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.records.ValueRewriter;
import io.meshcrypt.filter.subjects.InMemorySubjectKeys;
import io.meshcrypt.filter.subjects.SubjectKeyStore;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.Record;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** subject: through the record-batch rewriter: produce under subject keys, fetch after a forget. */
class SubjectKeysRewriteTest {
    private static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path dir;
    private SubjectKeyStore store;
    private ValueCrypto crypto;
    private TopicPlans plans;
    private ValueCipherV1 v1;
    private EncryptionPolicy policy;

    @BeforeEach
    void setUp() throws Exception {
        AeadConfig.register();
        store = InMemorySubjectKeys.open(dir);
        EncryptionPolicy policy = Policies.parse(Path.of("filter.yaml"), """
                policy:
                  encrypt:
                    - {topic: "by-key", subject: {from: key}}
                    - {topic: "by-header", subject: {from: header, name: user-id}, forgotten: {placeholder: "[erased]"}}
                    - {topic: "by-value", subject: {from: value, pointer: /customer/id}}
                    - {topic: "fields-by-value", fields: [/card/number],
                       subject: {from: value, pointer: /customer/id, scope: customers}}
                    - {topic: "fields-by-key", fields: [/card/number], subject: {from: key, scope: customers},
                       forgotten: {placeholder: "[erased]"}}
                    - "*"
                """.getBytes(StandardCharsets.UTF_8)).encryption();
        v1 = ValueCipherV1.fromKeysetHandle(KeysetHandle.generateNew(PredefinedAeadParameters.AES256_GCM));
        crypto = new ValueCrypto(v1, null, new SubjectValueCipher(store), policy);
        plans = new TopicPlans(policy);
        this.policy = policy;
    }

    @AfterEach
    void tearDown() {
        store.close();
    }

    private static MemoryRecords batch(SimpleRecord... records) {
        return MemoryRecords.withRecords(Compression.NONE, records);
    }

    private static SimpleRecord record(String key, String value, String userId) {
        return new SimpleRecord(0L, key == null ? null : key.getBytes(StandardCharsets.UTF_8),
                value == null ? null : value.getBytes(StandardCharsets.UTF_8),
                userId == null ? new RecordHeader[0]
                        : new RecordHeader[] {new RecordHeader("user-id", userId.getBytes(StandardCharsets.UTF_8))});
    }

    /** Retries while a key is on its way, as the connection does. */
    private static MemoryRecords rewrite(MemoryRecords in, ValueRewriter rewriter, RecordBatchRewriter.TruncatedTail tail)
            throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (true) {
            try {
                return RecordBatchRewriter.rewrite(in, rewriter, null, tail, 1 << 20);
            } catch (RecordRewriteException e) {
                if (e.retryWhen() == null || System.nanoTime() > deadline) {
                    throw e;
                }
                e.retryWhen().get(WAIT.toMillis(), TimeUnit.MILLISECONDS);
            }
        }
    }

    private MemoryRecords produce(String topic, MemoryRecords in) throws Exception {
        return rewrite(in, crypto.encryptor(topic, plans.of(topic)), RecordBatchRewriter.TruncatedTail.REJECT);
    }

    private List<String> fetch(String topic, MemoryRecords stored) throws Exception {
        MemoryRecords out = rewrite(stored, crypto.decryptor(topic, plans.of(topic)),
                RecordBatchRewriter.TruncatedTail.PASS_THROUGH);
        List<String> values = new ArrayList<>();
        for (Record r : out.records()) {
            values.add(r.hasValue() ? StandardCharsets.UTF_8.decode(r.value()).toString() : null);
        }
        return values;
    }

    private static List<ByteBuffer> values(MemoryRecords records) {
        List<ByteBuffer> values = new ArrayList<>();
        records.records().forEach(r -> values.add(r.value()));
        return values;
    }

    @Test
    void givenSubjectsInKeys_whenOneIsForgotten_thenItsValuesReadAsNullAndTheOthersAsPlaintext() throws Exception {
        MemoryRecords stored = produce("by-key", batch(record("alice", "a1", null), record("bob", "b1", null),
                record("alice", "a2", null)));
        for (ByteBuffer v : values(stored)) {
            assertTrue(ValueEnvelopeV3.isVersion3(v), "every value under a subject key");
        }
        assertEquals(List.of("a1", "b1", "a2"), fetch("by-key", stored));

        store.forget("by-key", "alice", WAIT);

        assertEquals(java.util.Arrays.asList(null, "b1", null), fetch("by-key", stored));
    }

    @Test
    void givenSubjectsInHeadersAndValues_whenForgotten_thenThePlaceholderOrNullAndOthersUntouched() throws Exception {
        MemoryRecords byHeader = produce("by-header", batch(record("k", "h1", "u1"), record("k", "h2", "u2")));
        MemoryRecords byValue = produce("by-value", batch(record(null, "{\"customer\":{\"id\":7},\"x\":1}", null),
                record(null, "{\"customer\":{\"id\":\"8\"}}", null)));

        store.forget("by-header", "u1", WAIT);
        store.forget("by-value", "7", WAIT);

        assertEquals(List.of("[erased]", "h2"), fetch("by-header", byHeader));
        assertEquals(java.util.Arrays.asList(null, "{\"customer\":{\"id\":\"8\"}}"), fetch("by-value", byValue));
    }

    @Test
    void givenARecordWithoutItsSubject_whenProduced_thenItIsRefusedNamingTheTopic() {
        RecordRewriteException noKey = assertThrows(RecordRewriteException.class,
                () -> produce("by-key", batch(record(null, "v", null))));
        assertTrue(noKey.getMessage().contains("names no subject (subject: key): refused"), noKey.getMessage());
        assertThrows(RecordRewriteException.class, () -> produce("by-header", batch(record("k", "v", null))));
        assertThrows(RecordRewriteException.class, () -> produce("by-value", batch(record(null, "{\"customer\":{}}", null))));
        assertThrows(RecordRewriteException.class, () -> produce("by-value", batch(record(null, "not json", null))));
    }

    @Test
    void givenAForgottenSubject_whenItProducesAgain_thenTheProduceIsRefused() throws Exception {
        produce("by-key", batch(record("alice", "a1", null)));
        store.forget("by-key", "alice", WAIT);

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> produce("by-key", batch(record("alice", "a2", null))));
        assertTrue(e.getMessage().contains("was forgotten"), e.getMessage());
        assertNull(e.retryWhen());
        assertFalse(produce("by-key", batch(record("bob", "b", null))).sizeInBytes() == 0);
    }

    @Test
    void givenNoSubjectKeysConfigured_whenProducingToASubjectTopic_thenRefusedWhileOtherTopicsWork() throws Exception {
        crypto = new ValueCrypto(v1, null, null, policy);

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> produce("by-key", batch(record("alice", "a", null))));
        assertTrue(e.getMessage().contains("has no subjectKeys: section"), e.getMessage());
        assertEquals(List.of("o"), fetch("other", produce("other", batch(record("k", "o", null)))));
    }

    private static String order(String customer) {
        return "{\"customer\":{\"id\":\"" + customer + "\"},\"card\":{\"number\":\"4111111111111111\"},\"n\":1}";
    }

    @Test
    void givenFieldsUnderSubjectKeysOfOneScopeOnTwoTopics_whenTheSubjectIsForgottenOnce_thenItsFieldsReadAsForgottenOnBoth()
            throws Exception {
        MemoryRecords byValue = produce("fields-by-value", batch(record(null, order("alice"), null),
                record(null, order("bob"), null)));
        MemoryRecords byKey = produce("fields-by-key", batch(record("alice", order("alice"), null),
                record("bob", order("bob"), null)));
        for (MemoryRecords stored : List.of(byValue, byKey)) {
            for (ByteBuffer v : values(stored)) {
                String json = StandardCharsets.UTF_8.decode(v).toString();
                assertFalse(json.contains("4111"), "no card number at rest: " + json);
                assertTrue(json.contains("\"customer\""), "the rest of the value as sent: " + json);
            }
        }
        assertEquals(List.of(order("alice"), order("bob")), fetch("fields-by-value", byValue));
        assertEquals(List.of(order("alice"), order("bob")), fetch("fields-by-key", byKey));

        store.forget("customers", "alice", WAIT);

        assertEquals(List.of("{\"customer\":{\"id\":\"alice\"},\"card\":{\"number\":null},\"n\":1}", order("bob")),
                fetch("fields-by-value", byValue));
        assertEquals(List.of("{\"customer\":{\"id\":\"alice\"},\"card\":{\"number\":\"[erased]\"},\"n\":1}",
                order("bob")), fetch("fields-by-key", byKey));
    }

    @Test
    void givenAFieldLevelRecordWithoutItsSubject_whenProduced_thenItIsRefusedNamingTheTopic() {
        RecordRewriteException noValueSubject = assertThrows(RecordRewriteException.class,
                () -> produce("fields-by-value", batch(record(null, "{\"card\":{\"number\":\"4111\"}}", null))));
        RecordRewriteException noKey = assertThrows(RecordRewriteException.class,
                () -> produce("fields-by-key", batch(record(null, order("alice"), null))));

        assertTrue(noValueSubject.getMessage().contains("cannot encrypt the fields of a value for topic fields-by-value"
                + " under its subject's key: the document names no subject"), noValueSubject.getMessage());
        assertNull(noValueSubject.retryWhen());
        assertTrue(noKey.getMessage().contains("names no subject"), noKey.getMessage());
    }

    @Test
    void givenNoSubjectKeysConfigured_whenProducingToAFieldLevelSubjectTopic_thenRefused() {
        crypto = new ValueCrypto(v1, null, null, policy);

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> produce("fields-by-key", batch(record("alice", order("alice"), null))));

        assertTrue(e.getMessage().contains("has no subjectKeys: section"), e.getMessage());
    }
}
