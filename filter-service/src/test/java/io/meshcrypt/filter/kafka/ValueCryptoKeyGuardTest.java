package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.aead.PredefinedAeadParameters;
import com.google.crypto.tink.daead.DeterministicAeadConfig2026;
import com.google.crypto.tink.daead.PredefinedDeterministicAeadParameters;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.policy.TopicPlans;
import io.meshcrypt.filter.records.RecordBatchRewriter;
import io.meshcrypt.filter.records.RecordBatchRewrites;
import io.meshcrypt.filter.records.RecordRewriteException;
import io.meshcrypt.filter.records.ValueRewriter;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.apache.kafka.common.compress.Compression;
import org.apache.kafka.common.record.internal.MemoryRecords;
import org.apache.kafka.common.record.internal.RecordBatch;
import org.apache.kafka.common.record.internal.SimpleRecord;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Review item 6 (keys): key envelopes are decrypted on fetch only where the policy encrypts keys or the topic is
 * decryptOnly, and Produce to a decryptOnly topic can refuse envelope-shaped keys and values.
 */
class ValueCryptoKeyGuardTest {
    /** "\0MCK" + version 1 + junk: what a hostile client produces to plant an undecryptable key. */
    private static final byte[] FORGED_KEY = {0x00, 0x4D, 0x43, 0x4B, 0x01, 0x01, 0x12, 0x34, 0x56, 0x78, 0x00, 0x00};
    private static final byte[] FORGED_VALUE = {0x00, 0x4D, 0x43, 0x45, 0x02, 0x00};

    private static ValueCipherV1 values;
    private static RecordKeyCipher keys;
    /** keyed-* encrypts keys; orders is encrypted without key encryption; legacy-* is decryptOnly; rest passthrough. */
    private static final EncryptionPolicy POLICY = EncryptionPolicy.ofRules(
            List.of(new TopicRule("keyed-*", List.of(), true), TopicRule.wholeValue("orders")),
            List.of("legacy-*"), EncryptionPolicy.Unmatched.PASSTHROUGH);

    @BeforeAll
    static void ciphers() throws Exception {
        AeadConfig.register();
        values = ValueCipherV1.fromKeysetHandle(KeysetHandle.generateNew(PredefinedAeadParameters.AES256_GCM));
        keys = RecordKeyCipher.fromKeysetHandle(KeysetHandle.generateNew(PredefinedDeterministicAeadParameters.AES256_SIV,
                DeterministicAeadConfig2026.get()));
    }

    private static final TopicPlans PLANS = new TopicPlans(POLICY);

    private static ValueCrypto crypto() {
        return new ValueCrypto(values, keys, POLICY);
    }

    /** What the fetch path does with one key of a topic it decrypts. */
    private static ByteBuffer fetchKey(ValueCrypto crypto, String topic, byte[] key) throws RecordRewriteException {
        ValueRewriter rewriter = crypto.keyDecryptor(topic, PLANS.of(topic));
        ByteBuffer in = ByteBuffer.wrap(key);
        return rewriter == null ? in : rewriter.rewrite(in);
    }

    private static byte[] array(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }

    @Test
    void givenEncryptedTopicWithoutDeterministicKeys_whenFetchedKeyLooksLikeAKeyEnvelope_thenItPassesUnchanged() throws Exception {
        byte[] out = array(fetchKey(crypto(), "orders", FORGED_KEY));

        assertArrayEquals(FORGED_KEY, out);
        assertNull(crypto().keyDecryptor("orders", PLANS.of("orders")));
    }

    @Test
    void givenDeterministicKeysTopic_whenFetched_thenKeyEnvelopeDecryptsAndPlainKeyIsRefused() throws Exception {
        byte[] plain = "customer-42".getBytes(StandardCharsets.UTF_8);
        byte[] envelope = array(keys.encrypt("keyed-a", ByteBuffer.wrap(plain)));

        assertArrayEquals(plain, array(fetchKey(crypto(), "keyed-a", envelope)));
        RecordRewriteException e = assertThrows(RecordRewriteException.class, () -> fetchKey(crypto(), "keyed-a", plain));
        assertEquals("a key on topic keyed-a (keys: deterministic) is not a meshcrypt key envelope", e.getMessage());
    }

    @Test
    void givenDecryptOnlyTopic_whenFetched_thenKeyEnvelopeDecryptsAndOtherKeysPass() throws Exception {
        byte[] plain = "customer-42".getBytes(StandardCharsets.UTF_8);
        byte[] envelope = array(keys.encrypt("legacy-a", ByteBuffer.wrap(plain)));

        assertArrayEquals(plain, array(fetchKey(crypto(), "legacy-a", envelope)));
        assertArrayEquals(plain, array(fetchKey(crypto(), "legacy-a", plain)));
    }

    @Test
    void givenDecryptOnlyTopic_whenProducedKeyIsEnvelopeShaped_thenKeyGuardRefusesIt() throws Exception {
        ValueRewriter guard = crypto().keyGuard("legacy-a", PLANS.of("legacy-a"));

        assertNotNull(guard);
        RecordRewriteException e = assertThrows(RecordRewriteException.class, () -> guard.rewrite(ByteBuffer.wrap(FORGED_KEY)));
        assertTrue(e.getMessage().startsWith("a key produced to topic legacy-a (decryptOnly) starts with the meshcrypt"
                + " key-envelope magic"), e.getMessage());
        ByteBuffer plain = ByteBuffer.wrap("k".getBytes(StandardCharsets.UTF_8));
        assertSame(plain, guard.rewrite(plain));
    }

    @Test
    void givenTopicsWhoseKeysAreEncryptedOrNeverDecrypted_whenAskedForKeyGuard_thenNone() {
        ValueCrypto crypto = crypto();

        assertNull(crypto.keyGuard("keyed-a", PLANS.of("keyed-a")), "keys encrypted on produce");
        assertNull(crypto.keyGuard("orders", PLANS.of("orders")), "keys never decrypted on fetch");
        assertNull(crypto.keyGuard("public", PLANS.of("public")), "passthrough");
        EncryptionPolicy noKeys = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("orders")), List.of("legacy-*"),
                EncryptionPolicy.Unmatched.PASSTHROUGH);
        assertNull(new ValueCrypto(values, null, noKeys).keyGuard("legacy-a", new TopicPlans(noKeys).of("legacy-a")), "no key cipher: keys never decrypted");
    }

    @Test
    void givenDecryptOnlyTopic_whenProducedValueIsEnvelopeShaped_thenValueGuardRefusesIt() throws Exception {
        ValueRewriter guard = crypto().valueGuard("legacy-a", PLANS.of("legacy-a"));

        assertNotNull(guard);
        assertThrows(RecordRewriteException.class, () -> guard.rewrite(ByteBuffer.wrap(FORGED_VALUE)));
        ByteBuffer plain = ByteBuffer.wrap("v".getBytes(StandardCharsets.UTF_8));
        assertSame(plain, guard.rewrite(plain));
        assertNull(crypto().valueGuard("orders", PLANS.of("orders")));
        assertNull(crypto().valueGuard("public", PLANS.of("public")));
    }

    @Test
    void givenProduceBatchToDecryptOnlyTopic_whenGuardsRunOverIt_thenEnvelopeKeyRefusedAndCleanBatchKeptAsIs() throws Exception {
        ValueCrypto crypto = crypto();
        MemoryRecords poisoned = MemoryRecords.withRecords(RecordBatch.CURRENT_MAGIC_VALUE, Compression.NONE,
                new SimpleRecord(1L, "ok".getBytes(StandardCharsets.UTF_8), "v1".getBytes(StandardCharsets.UTF_8)),
                new SimpleRecord(2L, FORGED_KEY, "v2".getBytes(StandardCharsets.UTF_8)));
        MemoryRecords clean = MemoryRecords.withRecords(RecordBatch.CURRENT_MAGIC_VALUE, Compression.NONE,
                new SimpleRecord(1L, "ok".getBytes(StandardCharsets.UTF_8), "v1".getBytes(StandardCharsets.UTF_8)));

        RecordRewriteException e = assertThrows(RecordRewriteException.class, () -> RecordBatchRewrites.rewrite(poisoned,
                crypto.valueGuard("legacy-a", PLANS.of("legacy-a")), crypto.keyGuard("legacy-a", PLANS.of("legacy-a")), RecordBatchRewriter.TruncatedTail.REJECT));
        MemoryRecords out = RecordBatchRewrites.rewrite(clean, crypto.valueGuard("legacy-a", PLANS.of("legacy-a")), crypto.keyGuard("legacy-a", PLANS.of("legacy-a")),
                RecordBatchRewriter.TruncatedTail.REJECT);

        assertEquals(1L, e.offset());
        // Byte for byte what was sent: ProduceEncryptor forwards the original batches once the guards pass.
        assertEquals(clean.buffer(), out.buffer());
    }

    @Test
    void givenBrokerChosenTopicNameWithANewline_whenAFetchedKeyFails_thenTheMessageShowsItEscaped() {
        String topic = "keyed-x\n2026-12-01 ERROR forged line";

        RecordRewriteException e = assertThrows(RecordRewriteException.class,
                () -> fetchKey(crypto(), topic, "plain".getBytes(StandardCharsets.UTF_8)));

        assertEquals("a key on topic keyed-x\\x0a2026-12-01 ERROR forged line (keys: deterministic) is not a meshcrypt"
                + " key envelope", e.getMessage());
    }
}
