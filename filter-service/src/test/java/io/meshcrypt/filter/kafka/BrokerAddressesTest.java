package io.meshcrypt.filter.kafka;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class BrokerAddressesTest {

    @Test
    void givenListenerMapHeader_whenParsed_thenEachNodeHasItsListener() throws Exception {
        BrokerAddresses parsed = BrokerAddresses.parse("1=127.0.0.1:19193,2=[::1]:19194,30=envoy.local:9092");

        assertTrue(parsed.rewrites());
        assertEquals(InetSocketAddress.createUnresolved("127.0.0.1", 19193), parsed.listenerFor(1, "b1", 9092));
        assertEquals(InetSocketAddress.createUnresolved("::1", 19194), parsed.listenerFor(2, "b2", 9092));
        assertEquals(InetSocketAddress.createUnresolved("envoy.local", 9092), parsed.listenerFor(30, "b30", 9092));
    }

    @Test
    void givenNone_whenParsed_thenAddressesPassUnchanged() throws Exception {
        assertFalse(BrokerAddresses.parse("none").rewrites());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "1=", "1=host", "x=host:1", "1=host:0", "1=host:65536", "1=host:1,", "1=a:1,1=b:2", "1=a b:1", "NONE"})
    void givenMalformedHeader_whenParsed_thenRefused(String value) {
        assertThrows(IllegalArgumentException.class, () -> BrokerAddresses.parse(value));
    }
}
