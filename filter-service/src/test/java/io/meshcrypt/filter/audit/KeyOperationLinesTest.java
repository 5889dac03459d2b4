package io.meshcrypt.filter.audit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.meshcrypt.filter.config.AuditConfig;
import io.meshcrypt.filter.crypto.DekManager;
import io.meshcrypt.filter.crypto.UnknownKekException;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.crypto.ValueEnvelopeV2;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real DEKs under a local KEK, reported to a real trail: a line for each key operation, naming keys by id and
 * fingerprint, and no byte of key material in any encoding.
 */
@Timeout(60)
class KeyOperationLinesTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void givenEncryptThenDecryptElsewhereThenForgeries_whenAudited_thenEveryKeyOperationHasALineAndNoSecret() throws Exception {
        Path keyset = dir.resolve("kek.json");
        Keysets.create(keyset);
        Path file = dir.resolve("audit.jsonl");
        ByteBuffer envelope;
        ByteBuffer unknownKek;
        ByteBuffer badWrappedDek;
        try (JsonAuditTrail trail = JsonAuditTrail.open(AuditConfig.to(file))) {
            try (DekManager producer = new DekManager(new LocalKekProvider(keyset), DekManager.Settings.defaults(), trail.keys())) {
                envelope = new ValueCipherV2(producer, null).blocking(WAIT)
                        .encrypt("payments", ByteBuffer.wrap("card 4111".getBytes(StandardCharsets.UTF_8)));
            }
            ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(envelope.duplicate(), "payments");
            unknownKek = reheader(envelope, info, "local:999", wrapped(envelope, info));
            byte[] flipped = wrapped(envelope, info);
            flipped[flipped.length - 1] ^= 1;
            badWrappedDek = reheader(envelope, info, info.kekId(), flipped);
            // another replica: nothing cached, so decrypting is an unwrap
            try (DekManager consumer = new DekManager(new LocalKekProvider(keyset), DekManager.Settings.defaults(), trail.keys())) {
                ValueCipher cipher = new ValueCipherV2(consumer, null).blocking(WAIT);
                cipher.decrypt("payments", envelope.duplicate());
                assertThrows(UnknownKekException.class, () -> cipher.decrypt("payments", unknownKek));
                assertThrows(KekRefusedException.class, () -> cipher.decrypt("payments", badWrappedDek));
            }
        }

        ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(envelope.duplicate(), "payments");
        String fingerprint = KeyOperationAudit.fingerprint(wrapped(envelope, info));
        List<String> seen = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            JsonNode n = JSON.readTree(line);
            seen.add(n.get("event").asText() + " " + n.get("outcome").asText() + " " + text(n, "error") + " "
                    + text(n, "kekId") + " " + text(n, "topic") + " " + text(n, "dekId") + " " + text(n, "wrappedDek"));
        }
        String dek = " payments " + info.dekIdText() + " " + fingerprint;
        assertTrue(seen.contains("kek.current ok - " + info.kekId() + " - - -"), String.join("\n", seen));
        assertTrue(seen.contains("dek.wrapped ok - " + info.kekId() + dek), String.join("\n", seen));
        assertTrue(seen.contains("dek.created ok - " + info.kekId() + dek), String.join("\n", seen));
        assertTrue(seen.contains("dek.unwrapped ok - " + info.kekId() + dek), String.join("\n", seen));
        assertTrue(seen.contains("dek.unwrapped failed UnknownKekException local:999" + dek), String.join("\n", seen));
        assertTrue(seen.stream().anyMatch(s -> s.startsWith("dek.unwrapped failed KekRefusedException " + info.kekId()
                + " payments " + info.dekIdText())), String.join("\n", seen));

        String trailText = Files.readString(file);
        byte[] key;
        try (LocalKekProvider kek = new LocalKekProvider(keyset)) {
            key = kek.unwrap(info.kekId(), wrapped(envelope, info), new DekContext("payments", info.dekId()));
        }
        assertSecretAbsent(trailText, key);
        for (JsonNode k : JSON.readTree(keyset.toFile()).get("key")) {
            String kekMaterial = k.get("keyData").get("value").asText();
            assertFalse(trailText.contains(kekMaterial), "KEK material in the trail");
            assertSecretAbsent(trailText, Base64.getDecoder().decode(kekMaterial));
        }
        assertFalse(trailText.contains("card 4111"));
    }

    private static void assertSecretAbsent(String trail, byte[] secret) {
        for (String encoded : List.of(HexFormat.of().formatHex(secret), HexFormat.of().withUpperCase().formatHex(secret),
                Base64.getEncoder().encodeToString(secret), Base64.getUrlEncoder().withoutPadding().encodeToString(secret))) {
            assertFalse(trail.contains(encoded), "key material in the trail: " + encoded);
        }
        // nor any 8-byte run of it, in hex
        for (int i = 0; i + 8 <= secret.length; i++) {
            assertFalse(trail.contains(HexFormat.of().formatHex(secret, i, i + 8)), "key bytes in the trail at " + i);
        }
    }

    private static String text(JsonNode n, String field) {
        return n.hasNonNull(field) ? n.get(field).asText() : "-";
    }

    private static byte[] wrapped(ByteBuffer envelope, ValueEnvelopeV2.Info info) {
        byte[] w = new byte[info.wrappedDekLength()];
        envelope.duplicate().get(envelope.position() + info.headerLength() - w.length, w);
        return w;
    }

    /** The envelope with its header rewritten: what a hostile broker can serve. */
    private static ByteBuffer reheader(ByteBuffer envelope, ValueEnvelopeV2.Info info, String kekId, byte[] wrappedDek) {
        byte[] header = ValueEnvelopeV2.header(kekId, info.dekId(), wrappedDek);
        ByteBuffer body = envelope.duplicate();
        body.position(body.position() + info.headerLength());
        ByteBuffer out = ByteBuffer.allocate(header.length + body.remaining());
        out.put(header).put(body).flip();
        return out;
    }
}
