package io.meshcrypt.pki;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalCaTest {

    @TempDir
    Path dir;

    @Test
    void givenANewCa_whenItIssuesACertificate_thenTheChainValidatesAndNamesTheSpiffeIdAndHosts() throws Exception {
        LocalCa ca = LocalCa.openOrCreate(dir);

        LocalCa.Issued issued = ca.issue("filter-service", LocalCa.spiffeId("filter-service"), List.of("localhost", "127.0.0.1"),
                Duration.ofDays(1));

        X509Certificate leaf = LocalCa.readCertificate(issued.certificate());
        validate(leaf, LocalCa.readCertificate(ca.caCertificate()));
        assertEquals(Set.of("6:spiffe://meshcrypt.local/filter-service", "2:localhost", "7:127.0.0.1"),
                leaf.getSubjectAlternativeNames().stream().map(n -> n.get(0) + ":" + n.get(1)).collect(java.util.stream.Collectors.toSet()));
        assertEquals(List.of("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"), leaf.getExtendedKeyUsage());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(issued.privateKey())));
    }

    @Test
    void givenAnExistingCa_whenOpenedAgain_thenItIsTheSameCaAndACertificateFromAnotherCaDoesNotValidate() throws Exception {
        X509Certificate first = LocalCa.readCertificate(LocalCa.openOrCreate(dir).caCertificate());
        LocalCa again = LocalCa.openOrCreate(dir);
        LocalCa foreign = LocalCa.openOrCreate(dir.resolve("foreign"));

        assertEquals(first, LocalCa.readCertificate(again.caCertificate()));
        X509Certificate fromForeign = LocalCa.readCertificate(
                foreign.issue("x", LocalCa.spiffeId("sidecar/x"), List.of(), Duration.ofDays(1)).certificate());
        assertThrows(CertPathValidatorException.class, () -> validate(fromForeign, first));
    }

    @Test
    void givenAnIssuedCertificate_whenIssuedAgain_thenTheFilesHoldANewKeyAndCertificate() throws Exception {
        LocalCa ca = LocalCa.openOrCreate(dir);
        LocalCa.Issued issued = ca.issue("sidecar-a", LocalCa.spiffeId("sidecar/a"), List.of(), Duration.ofDays(1));
        String key = Files.readString(issued.privateKey());
        X509Certificate cert = LocalCa.readCertificate(issued.certificate());

        ca.issue("sidecar-a", LocalCa.spiffeId("sidecar/a"), List.of(), Duration.ofDays(1));

        assertNotEquals(key, Files.readString(issued.privateKey()));
        assertNotEquals(cert, LocalCa.readCertificate(issued.certificate()));
        assertTrue(Files.readString(issued.privateKey()).startsWith("-----BEGIN PRIVATE KEY-----"));
    }

    private static void validate(X509Certificate leaf, X509Certificate ca) throws Exception {
        PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(ca, null)));
        params.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX").validate(CertificateFactory.getInstance("X.509").generateCertPath(List.of(leaf)), params);
    }
}
