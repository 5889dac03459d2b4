package io.meshcrypt.testsupport;

import java.nio.file.Files;
import java.nio.file.Path;

/** The repository's root: the nearest directory, from the working directory up, that holds {@code mvnw}. */
public final class RepoRoot {

    private RepoRoot() {
    }

    /** @throws IllegalStateException when no directory up from the working directory holds {@code mvnw} */
    public static Path find() {
        return findFrom(Path.of("").toAbsolutePath());
    }

    static Path findFrom(Path start) {
        for (Path dir = start.normalize(); dir != null; dir = dir.getParent()) {
            if (Files.isRegularFile(dir.resolve("mvnw"))) {
                return dir;
            }
        }
        throw new IllegalStateException("no directory from " + start + " up holds mvnw: run the tests inside the repository");
    }
}
