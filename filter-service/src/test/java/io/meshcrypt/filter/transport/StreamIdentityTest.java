package io.meshcrypt.filter.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.grpc.Metadata;
import io.meshcrypt.pki.LocalCa;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StreamIdentityTest {
    private static final String BILLING = "spiffe://cluster.local/ns/apps/sa/billing";

    private static String forwarded(String... headerValues) {
        Metadata headers = new Metadata();
        for (String value : headerValues) {
            headers.put(Metadata.Key.of("x-forwarded-client-cert", Metadata.ASCII_STRING_MARSHALLER), value);
        }
        return StreamIdentity.FORWARDED_CLIENT_CERT.of(null, headers);
    }

    @Test
    void givenTheHeaderIstiosInboundSidecarWrites_whenRead_thenTheIdentityIsTheUri() {
        assertEquals(BILLING, forwarded("By=spiffe://cluster.local/ns/meshcrypt/sa/filter-service;"
                + "Hash=8a0c5e1f;Subject=\"\";URI=" + BILLING));
    }

    @Test
    void givenACallerForgedAnElement_whenTheSidecarAppendedItsOwn_thenOnlyTheLastElementCounts() {
        assertEquals(BILLING, forwarded("URI=spiffe://cluster.local/ns/apps/sa/admin,By=spiffe://x;URI=" + BILLING));
        assertEquals(BILLING, forwarded("URI=spiffe://cluster.local/ns/apps/sa/admin", "Hash=1;URI=" + BILLING));
    }

    @Test
    void givenQuotedSubjectsWithSeparators_whenRead_thenTheyDoNotSplitElements() {
        assertEquals(BILLING, forwarded("Subject=\"CN=a,O=b;c\";URI=spiffe://forged,Subject=\"CN=x, O=\\\"y\\\"\";URI=\""
                + BILLING + "\""));
    }

    @Test
    void givenNoSpiffeUriInTheLastElement_whenRead_thenNoIdentity() {
        assertNull(forwarded("URI=" + BILLING + ",Hash=abc;DNS=billing.apps"));
        assertNull(forwarded("URI=https://example.com/x"));
        assertNull(forwarded("URI=\"" + BILLING));
        assertNull(forwarded());
    }

    @Test
    void givenPlaintextOrNoTls_whenAsked_thenNoIdentityWhateverTheHeadersSay() {
        Metadata headers = new Metadata();
        headers.put(Metadata.Key.of("x-forwarded-client-cert", Metadata.ASCII_STRING_MARSHALLER), "URI=" + BILLING);

        assertNull(StreamIdentity.NONE.of(null, headers));
        assertNull(StreamIdentity.CERTIFICATE.of(null, headers), "a certificate identity never comes from a header");
    }

    @Test
    void givenAMeshCertificate_whenRead_thenItsSpiffeUriIsTheIdentity(@TempDir Path dir) throws Exception {
        LocalCa ca = LocalCa.openOrCreate(dir);
        LocalCa.Issued issued = ca.issue("sidecar-billing", LocalCa.spiffeId("sidecar/billing"), List.of("127.0.0.1"),
                Duration.ofHours(1));

        assertEquals("spiffe://meshcrypt.local/sidecar/billing",
                StreamIdentity.spiffeUri(LocalCa.readCertificate(issued.certificate())));
    }
}
