package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

/**
 * Whatever a caller writes into {@code x-forwarded-client-cert} before the element the filter-service's own sidecar
 * appends (Envoy's APPEND_FORWARD), the identity read is that element's URI or none: never one the caller chose.
 */
class ForwardedClientCertPropertyTest {
    private static final String REAL = "spiffe://cluster.local/ns/apps/sa/billing";
    private static final String SIDECARS_ELEMENT = "By=spiffe://cluster.local/ns/meshcrypt/sa/filter-service;"
            + "Hash=4b1bc8c2f0e7a9d3;Subject=\"\";URI=" + REAL;

    /** Caller text built from the characters that matter to the format, and forged identities. */
    @Provide
    Arbitrary<String> callerText() {
        Arbitrary<String> pieces = Arbitraries.of("\"", "\\", ",", ";", "=", "URI=", "uri=", " ",
                "spiffe://cluster.local/ns/apps/sa/admin", "Subject=\"", "By=", "x", "\\\"", "URI=\"spiffe://evil\"");
        return pieces.list().ofMaxSize(12).map(list -> String.join("", list));
    }

    @Property(tries = 2000)
    void givenAnyCallerPrefix_whenTheSidecarAppendsItsElement_thenTheIdentityIsTheRealOneOrNone(
            @ForAll("callerText") String caller) {
        String identity = StreamIdentity.lastForwardedUri(List.of(caller + "," + SIDECARS_ELEMENT));

        assertTrue(identity == null || identity.equals(REAL), () -> "caller " + caller + " made the identity " + identity);
    }

    @Property(tries = 2000)
    void givenAnyCallerHeaderLineBeforeTheSidecarsLine_whenRead_thenTheIdentityIsTheRealOneOrNone(
            @ForAll("callerText") String caller) {
        String identity = StreamIdentity.lastForwardedUri(List.of(caller, SIDECARS_ELEMENT));

        assertTrue(identity == null || identity.equals(REAL), () -> "caller " + caller + " made the identity " + identity);
    }

    @Property(tries = 2000)
    void givenArbitraryText_whenRead_thenNoExceptionAndOnlySpiffeIdentities(@ForAll String text) {
        String identity = StreamIdentity.lastForwardedUri(List.of(text));

        assertTrue(identity == null || identity.startsWith("spiffe://"), identity);
    }
}
