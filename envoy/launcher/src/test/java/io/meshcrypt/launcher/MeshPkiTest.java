package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.pki.LocalCa;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MeshPkiTest {

    @TempDir
    Path dir;

    private X509Certificate certificate(MeshPki pki, String name) throws Exception {
        return LocalCa.readCertificate(pki.files(name).certificate());
    }

    @Test
    void givenAnEmptyDir_whenEnsured_thenTheServersAndEachSidecarGetTheirSpiffeIdsAndHosts() throws Exception {
        MeshPki pki = MeshPki.openOrCreate(dir);

        List<String> issued = pki.ensure(List.of(), List.of("kafka-apps", "go-producer"), Instant.now());

        assertEquals(List.of("filter-service", "xds-server", "sidecar-kafka-apps", "sidecar-go-producer"), issued);
        X509Certificate filter = certificate(pki, "filter-service");
        assertEquals("spiffe://meshcrypt.local/filter-service", MeshPki.spiffeIdOf(filter));
        assertEquals(Set.of("localhost", "127.0.0.1"), MeshPki.hostsOf(filter));
        assertEquals("spiffe://meshcrypt.local/xds-server", MeshPki.spiffeIdOf(certificate(pki, "xds-server")));
        X509Certificate sidecar = certificate(pki, "sidecar-go-producer");
        assertEquals("spiffe://meshcrypt.local/sidecar/go-producer", MeshPki.spiffeIdOf(sidecar));
        assertEquals(Set.of(), MeshPki.hostsOf(sidecar));
        sidecar.verify(LocalCa.readCertificate(dir.resolve("ca.pem")).getPublicKey());
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("ca.pem"))));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(pki.files("sidecar-go-producer").privateKey())));
    }

    @Test
    void givenNoAdminCertificate_whenTheLauncherForgets_thenItGetsTheAdminIdentityOnceAndKeepsItWhileCurrent() throws Exception {
        MeshPki pki = MeshPki.openOrCreate(dir);

        X509Certificate admin = LocalCa.readCertificate(pki.admin(Instant.now()).certificate());
        X509Certificate again = LocalCa.readCertificate(pki.admin(Instant.now().plus(Duration.ofHours(1))).certificate());

        assertEquals("spiffe://meshcrypt.local/admin", MeshPki.spiffeIdOf(admin));
        assertEquals(Set.of(), MeshPki.hostsOf(admin));
        assertEquals(admin.getSerialNumber(), again.getSerialNumber());
        assertNotEquals(admin.getSerialNumber(), LocalCa.readCertificate(pki.admin(Instant.now().plus(Duration.ofHours(17)))
                .certificate()).getSerialNumber(), "renewed when less than 8 h are left");
    }

    @Test
    void givenCurrentCertificates_whenEnsuredAgain_thenNoneIsIssuedAndTheFilesStay() throws Exception {
        MeshPki pki = MeshPki.openOrCreate(dir);
        pki.ensure(List.of(), List.of("kafka-apps"), Instant.now());
        byte[] before = Files.readAllBytes(pki.files("filter-service").certificate());

        List<String> issued = MeshPki.openOrCreate(dir).ensure(List.of(), List.of("kafka-apps"), Instant.now().plus(Duration.ofHours(15)));

        assertEquals(List.of(), issued);
        assertEquals(new String(before), Files.readString(pki.files("filter-service").certificate()));
    }

    @Test
    void givenCertificatesWithLessThan8HoursLeft_whenEnsured_thenEachIsIssuedAgainWithAFreshExpiry() throws Exception {
        MeshPki pki = MeshPki.openOrCreate(dir);
        pki.ensure(List.of(), List.of("kafka-apps"), Instant.now());
        X509Certificate old = certificate(pki, "sidecar-kafka-apps");

        // 24 h certificates, 17 h later: 7 h left
        List<String> issued = pki.ensure(List.of(), List.of("kafka-apps"), Instant.now().plus(Duration.ofHours(17)));

        assertEquals(List.of("filter-service", "xds-server", "sidecar-kafka-apps"), issued);
        X509Certificate renewed = certificate(pki, "sidecar-kafka-apps");
        assertNotEquals(old.getSerialNumber(), renewed.getSerialNumber());
        assertTrue(!renewed.getNotAfter().before(old.getNotAfter()));
        assertEquals("spiffe://meshcrypt.local/sidecar/kafka-apps", MeshPki.spiffeIdOf(renewed));
    }

    @Test
    void givenServerCertificatesWithoutTheRelayAddress_whenEnsuredForTheTransparentDemo_thenOnlyTheServersAreIssuedAgainWithIt()
            throws Exception {
        MeshPki pki = MeshPki.openOrCreate(dir);
        pki.ensure(List.of(), List.of("go-producer"), Instant.now());

        List<String> issued = pki.ensure(List.of("169.254.19.1"), List.of("go-producer"), Instant.now());

        assertEquals(List.of("filter-service", "xds-server"), issued);
        assertEquals(Set.of("localhost", "127.0.0.1", "169.254.19.1"), MeshPki.hostsOf(certificate(pki, "xds-server")));
    }

    @Test
    void givenIssuedCertificates_whenDescribed_thenOneLinePerCertificateNamesItsSpiffeIdAndExpiry() throws Exception {
        MeshPki pki = MeshPki.openOrCreate(dir);
        pki.ensure(List.of(), List.of("kafka-apps"), Instant.now());
        Instant expiry = certificate(pki, "sidecar-kafka-apps").getNotAfter().toInstant();

        List<String> lines = MeshPki.describe(dir, Instant.now()).lines().toList();

        assertEquals(4, lines.size(), lines.toString());
        assertTrue(lines.get(0).startsWith("ca "), lines.get(0));
        assertTrue(lines.get(2).matches("sidecar-kafka-apps +spiffe://meshcrypt.local/sidecar/kafka-apps +expires " + expiry
                + " \\(valid, 2[34]h left\\)"), lines.get(2));
    }
}
