package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.framing.KafkaFrameException;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.message.ApiVersionsResponseData;
import org.apache.kafka.common.protocol.ApiKeys;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The topic id map a broker cannot subvert, Kafka's topic name rule, and the versions the filter offers. */
class KafkaProtocolGuardTopicNamesTest {
    private final Uuid u1 = Uuid.randomUuid();
    private final Uuid u2 = Uuid.randomUuid();

    @Test
    void givenAnIdMappedTwiceToTheSameName_whenLearnt_thenItResolves() throws Exception {
        TopicNames names = new TopicNames(TestLimits.CONFIG.maxTopicIds());

        names.learn(u1, "orders");
        names.learn(u1, "orders");

        assertEquals("orders", names.nameOf(u1));
        assertEquals(1, names.size());
    }

    @Test
    void givenAnIdMappedToASecondName_whenLearnt_thenItThrowsNamingBothAndTheIdResolvesToNothingEver() throws Exception {
        TopicNames names = new TopicNames(TestLimits.CONFIG.maxTopicIds());
        names.learn(u1, "secret");

        KafkaFrameException e = assertThrows(KafkaFrameException.class, () -> names.learn(u1, "public"));

        assertTrue(e.getMessage().contains("\"public\"") && e.getMessage().contains("\"secret\""), e.getMessage());
        assertNull(names.nameOf(u1));
        names.learn(u1, "secret");
        names.learn(u1, "public");
        assertNull(names.nameOf(u1), "a poisoned id stays poisoned, whichever name comes back");
    }

    @Test
    void givenAFullMap_whenANewIdArrives_thenItIsNotLearntAndKnownIdsStillResolve() throws Exception {
        TopicNames names = new TopicNames(1);
        names.learn(u1, "orders");

        names.learn(u2, "payments");

        assertNull(names.nameOf(u2));
        assertEquals("orders", names.nameOf(u1));
        assertEquals(1, names.size());
        assertThrows(KafkaFrameException.class, () -> names.learn(u1, "payments"), "conflicts are still detected when full");
    }

    @Test
    void givenZeroIdNullIdOrIllegalName_whenLearnt_thenNothingIsRemembered() throws Exception {
        TopicNames names = new TopicNames(TestLimits.CONFIG.maxTopicIds());

        names.learn(Uuid.ZERO_UUID, "orders");
        names.learn(null, "orders");
        names.learn(u1, null);
        names.learn(u1, "");
        names.learn(u1, "bad name");

        assertEquals(0, names.size());
        assertNull(names.nameOf(null));
        assertNull(names.nameOf(u1));
    }

    @ParameterizedTest
    @ValueSource(strings = {"a", "orders", "Orders.v2", "__consumer_offsets", "a-b_c.d", "..."})
    void givenALegalTopicName_whenChecked_thenItIsLegal(String name) {
        assertTrue(TopicNames.isLegal(name));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", ".", "..", "a b", "a/b", "a:b", "é", "a\u0000"})
    void givenAnIllegalTopicName_whenChecked_thenItIsIllegal(String name) {
        assertFalse(TopicNames.isLegal(name));
    }

    @Test
    void givenNames249And250Long_whenChecked_thenOnly249IsLegal() throws Exception {
        assertTrue(TopicNames.isLegal("x".repeat(249)));
        assertFalse(TopicNames.isLegal("x".repeat(250)));
    }

    @Test
    void givenAPeerChosenName_whenDescribedForALog_thenControlCharactersAreEscapedAndItIsCut() throws Exception {
        assertEquals("\"a\\u000ab\\u0022\"", TopicNames.describe("a\nb\""));
        assertEquals("\"" + "y".repeat(64) + "\"... (1000 characters)", TopicNames.describe("y".repeat(1000)));
    }

    @Test
    void givenNoApiVersionsYet_whenRequestsAreChecked_thenKafkaClientsVersionsPassWithProduceAndFetchCapped() throws Exception {
        OfferedVersions offered = ApiRewriters.STANDARD.apiVersions().defaults();

        assertTrue(offered.allows(ApiKeys.PRODUCE.id, (short) 3));
        assertTrue(offered.allows(ApiKeys.PRODUCE.id, (short) 12));
        assertFalse(offered.allows(ApiKeys.PRODUCE.id, (short) 13));
        assertFalse(offered.allows(ApiKeys.PRODUCE.id, (short) 2));
        assertTrue(offered.allows(ApiKeys.FETCH.id, (short) 12));
        assertFalse(offered.allows(ApiKeys.FETCH.id, (short) 13));
        assertTrue(offered.allows(ApiKeys.SHARE_FETCH.id, ApiKeys.SHARE_FETCH.latestVersion(true)));
        assertFalse(offered.allows((short) -1, (short) 0));
        assertFalse(offered.allows((short) 999, (short) 0));
        assertFalse(offered.allows(ApiKeys.HEARTBEAT.id, (short) -1));
    }

    @Test
    void givenAClampedResponse_whenRequestsAreChecked_thenOnlyItsRangesPass() throws Exception {
        ApiVersionsResponseData response = new ApiVersionsResponseData();
        response.apiKeys().add(new ApiVersionsResponseData.ApiVersion().setApiKey(ApiKeys.PRODUCE.id)
                .setMinVersion((short) 0).setMaxVersion((short) 13));
        ApiVersionsFilter filter = ApiRewriters.STANDARD.apiVersions();
        filter.clamp(response);

        OfferedVersions offered = filter.offered(response);

        assertTrue(offered.allows(ApiKeys.PRODUCE.id, (short) 12));
        assertFalse(offered.allows(ApiKeys.PRODUCE.id, (short) 13));
        assertFalse(offered.allows(ApiKeys.PRODUCE.id, (short) 2));
        assertFalse(offered.allows(ApiKeys.METADATA.id, (short) 12));
        assertTrue(offered.allows(ApiKeys.API_VERSIONS.id, (short) 3), "ApiVersions may always be asked again");
    }
}
