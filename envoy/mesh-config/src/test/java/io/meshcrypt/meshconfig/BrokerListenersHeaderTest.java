package io.meshcrypt.meshconfig;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.mesh.Mesh.Address;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class BrokerListenersHeaderTest {

    @Test
    void givenListenersOfEveryHostForm_whenWrittenAndParsed_thenTheSameMapComesBack() {
        Map<Integer, Address> listeners = Map.of(2, new Address("::1", 19194), 1, new Address("127.0.0.1", 19193),
                30, new Address("envoy.local", 9092));

        String value = BrokerListenersHeader.write(listeners);

        assertEquals("1=127.0.0.1:19193,2=[::1]:19194,30=envoy.local:9092", value);
        assertEquals(listeners, BrokerListenersHeader.parse(value));
    }

    @Test
    void givenNone_whenParsed_thenNoListeners() {
        assertTrue(BrokerListenersHeader.parse(BrokerListenersHeader.NONE).isEmpty());
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "1=", "1=host", "x=host:1", "1=host:0", "1=host:65536", "1=host:1,", "1=a:1,1=b:2", "1=a b:1", "NONE"})
    void givenMalformedValue_whenParsed_thenRefused(String value) {
        assertThrows(IllegalArgumentException.class, () -> BrokerListenersHeader.parse(value));
    }
}
