package io.meshcrypt.filter.kafka;

import static io.meshcrypt.filter.kafka.KafkaFrames.decodeResponse;
import static io.meshcrypt.filter.kafka.KafkaFrames.requestFrame;
import static io.meshcrypt.filter.kafka.KafkaFrames.responseFrame;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.framing.KafkaFrameException;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionHandler;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Map;
import org.apache.kafka.common.message.ApiVersionsRequestData;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.message.SaslAuthenticateRequestData;
import org.apache.kafka.common.message.SaslAuthenticateResponseData;
import org.apache.kafka.common.message.SaslHandshakeRequestData;
import org.apache.kafka.common.message.SaslHandshakeResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SASL through the filter: SaslHandshake v1 and SaslAuthenticate frames, credentials inside, pass byte for byte in
 * both directions, also again mid-connection (KIP-368 re-authentication); SaslHandshake v0, after which a client
 * would send raw tokens that are not Kafka requests, stays offered (librdkafka needs it in ApiVersions to use SASL at
 * all) but is never let through.
 */
class SaslPassthroughTest {
    private static final byte[] PLAIN_TOKEN = "\0alice\0alice-secret".getBytes(StandardCharsets.UTF_8);

    @TempDir
    Path dir;
    private ConnectionHandler connection;

    @BeforeEach
    void setUp() throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        connection = new KafkaProxy(EncryptionPolicy.encryptAll(), ValueCipherV1.fromKeysetFile(dir.resolve("keyset.json")),
                null, new BrokerAddresses(Map.of()), TestLimits.kafka(1 << 20)).open();
    }

    @Test
    void givenASaslPlainExchange_whenItPassesTwice_thenEveryFrameIsForwardedByteForByte() throws Exception {
        int correlation = 0;
        for (int round = 0; round < 2; round++) {
            // When the client authenticates (and, the second time, re-authenticates on the same connection)
            ByteString handshake = ByteString.copyFrom(requestFrame(++correlation, ApiKeys.SASL_HANDSHAKE, (short) 1,
                    new SaslHandshakeRequestData().setMechanism("PLAIN")));
            ByteString handshakeAnswer = ByteString.copyFrom(responseFrame(correlation, ApiKeys.SASL_HANDSHAKE, (short) 1,
                    new SaslHandshakeResponseData()));
            ByteString authenticate = ByteString.copyFrom(requestFrame(++correlation, ApiKeys.SASL_AUTHENTICATE, (short) 2,
                    new SaslAuthenticateRequestData().setAuthBytes(PLAIN_TOKEN)));
            ByteString authenticated = ByteString.copyFrom(responseFrame(correlation, ApiKeys.SASL_AUTHENTICATE, (short) 2,
                    new SaslAuthenticateResponseData().setSessionLifetimeMs(10_000)));

            // Then each frame comes out exactly as it went in
            assertEquals(handshake, connection.onRead(handshake, false));
            assertEquals(handshakeAnswer, connection.onWrite(handshakeAnswer, false));
            assertEquals(authenticate, connection.onRead(authenticate, false));
            assertEquals(authenticated, connection.onWrite(authenticated, false));
        }
    }

    @Test
    void givenTheBrokerOffersSaslHandshakeV0_whenApiVersionsPasses_thenItStaysOfferedButAV0RequestIsRefused()
            throws Exception {
        connection.onRead(ByteString.copyFrom(requestFrame(1, ApiKeys.API_VERSIONS, (short) 3, new ApiVersionsRequestData())), false);
        ApiVersionsResponseData broker = new ApiVersionsResponseData();
        broker.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey(ApiKeys.SASL_HANDSHAKE.id)
                .setMinVersion((short) 0).setMaxVersion((short) 1));

        ApiVersionsResponseData seen = (ApiVersionsResponseData) decodeResponse(connection.onWrite(
                ByteString.copyFrom(responseFrame(1, ApiKeys.API_VERSIONS, (short) 3, broker)), false),
                ApiKeys.API_VERSIONS, (short) 3);

        // librdkafka turns SASL on only when v0 is offered (then it sends v1)
        assertEquals(0, seen.apiKeys().find(ApiKeys.SASL_HANDSHAKE.id).minVersion());
        ByteString v0 = ByteString.copyFrom(requestFrame(2, ApiKeys.SASL_HANDSHAKE, (short) 0,
                new SaslHandshakeRequestData().setMechanism("PLAIN")));
        assertThrows(KafkaFrameException.class, () -> connection.onRead(v0, false));
    }

    @Test
    void givenSaslHandshakeV0_whenRead_thenTheConnectionIsClosedSayingWhy() {
        ByteString handshake = ByteString.copyFrom(requestFrame(1, ApiKeys.SASL_HANDSHAKE, (short) 0,
                new SaslHandshakeRequestData().setMechanism("PLAIN")));

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> connection.onRead(handshake, false));

        assertTrue(e.getMessage().contains("SASL_HANDSHAKE v0 is never let through: after it a client sends raw SASL"
                + " tokens"), e.getMessage());
    }
}
