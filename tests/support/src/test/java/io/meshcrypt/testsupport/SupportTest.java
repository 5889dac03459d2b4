package io.meshcrypt.testsupport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SupportTest {

    @TempDir
    Path dir;

    @Test
    void givenANestedDirectory_whenTheRootIsSought_thenItIsTheNearestOneHoldingMvnw() throws Exception {
        Files.writeString(dir.resolve("mvnw"), "");
        Path nested = Files.createDirectories(dir.resolve("tests/support/target"));

        assertEquals(dir.normalize(), RepoRoot.findFrom(nested));
    }

    @Test
    void givenTheTestsRunInTheRepository_whenTheRootIsSought_thenItHoldsThePom() {
        assertTrue(Files.isRegularFile(RepoRoot.find().resolve("pom.xml")), RepoRoot.find().toString());
    }

    @Test
    void givenABinaryThatIsNotExecutable_whenNamed_thenTheFailureSaysSo() {
        String before = System.getProperty(EnvoyProcess.BINARY_PROPERTY);
        System.setProperty(EnvoyProcess.BINARY_PROPERTY, dir.resolve("no-envoy").toString());
        try {
            IllegalStateException e = assertThrows(IllegalStateException.class, EnvoyProcess::binary);
            assertTrue(e.getMessage().contains("is not an executable Envoy"), e.getMessage());
            System.clearProperty(EnvoyProcess.BINARY_PROPERTY);
            e = assertThrows(IllegalStateException.class, EnvoyProcess::binary);
            assertTrue(e.getMessage().contains("./meshcrypt test"), e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty(EnvoyProcess.BINARY_PROPERTY);
            } else {
                System.setProperty(EnvoyProcess.BINARY_PROPERTY, before);
            }
        }
    }
}
