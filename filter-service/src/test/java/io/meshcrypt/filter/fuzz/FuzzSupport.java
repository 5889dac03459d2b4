package io.meshcrypt.filter.fuzz;

import com.google.crypto.tink.InsecureSecretKeyAccess;
import com.google.crypto.tink.KeysetHandle;
import com.google.crypto.tink.TinkJsonProtoKeysetFormat;
import com.google.crypto.tink.aead.AeadConfig;
import com.google.crypto.tink.daead.DeterministicAeadConfig;
import com.google.protobuf.ByteString;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * What the fuzz harnesses share: fixed test-only keysets (so saved inputs that carry ciphertext stay decryptable
 * across runs), deterministic chunking of a byte stream, quiet logging and the seed-corpus writer.
 *
 * <p>The keysets under {@code keys/} are test fixtures, never used outside the fuzz tests.
 */
public final class FuzzSupport {
    /** Set to a folder (normally filter-service/src/test/resources) to (re)write the seed inputs of every harness. */
    public static final String WRITE_SEEDS = "meshcrypt.fuzz.writeSeeds";
    private static final String KEYS = "/io/meshcrypt/filter/fuzz/keys/";

    static {
        quietLogs();
    }

    private FuzzSupport() {
    }

    /**
     * slf4j-simple reads its level once, on first use; millions of WARN lines (one per rejected envelope) would make
     * the fuzzer measure the console instead of the parser. Effective only when no logger was created yet, and only
     * while fuzzing (JAZZER_FUZZ set): a plain test run shares its JVM with tests that may read the log.
     */
    public static void quietLogs() {
        String fuzzing = System.getenv("JAZZER_FUZZ");
        if (fuzzing != null && !fuzzing.isEmpty() && System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
        }
    }

    public static String resource(String name) {
        try (InputStream in = FuzzSupport.class.getResourceAsStream(KEYS + name)) {
            if (in == null) {
                throw new IllegalStateException("missing test resource " + KEYS + name);
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The fixed AES-256-GCM keyset: envelope v1 values and the local KEK of envelope v2. */
    public static KeysetHandle aeadKeyset() {
        try {
            AeadConfig.register();
            return TinkJsonProtoKeysetFormat.parseKeyset(resource("fuzz-only-aead-keyset.json"), InsecureSecretKeyAccess.get());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    public static ValueCipherV1 recordCipher() {
        try {
            return ValueCipherV1.fromKeysetHandle(aeadKeyset());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    public static RecordKeyCipher keyCipher() {
        try {
            DeterministicAeadConfig.register();
            return RecordKeyCipher.fromKeysetHandle(TinkJsonProtoKeysetFormat.parseKeyset(
                    resource("fuzz-only-siv-keyset.json"), InsecureSecretKeyAccess.get()));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A private (0600) copy of a keyset resource, for the providers that read a file. */
    public static Path keysetFile(String name) {
        try {
            Path dir = Files.createTempDirectory("meshcrypt-fuzz-");
            dir.toFile().deleteOnExit();
            Path file = dir.resolve(name);
            Files.writeString(Files.createFile(file, PosixFilePermissions.asFileAttribute(
                    PosixFilePermissions.fromString("rw-------"))), resource(name));
            file.toFile().deleteOnExit();
            return file;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Splits {@code data[from..]} into chunks whose sizes come from {@code seed}: mostly small (0-3 bytes, so every
     * field boundary gets split), sometimes up to a few KiB, and empty chunks too. Deterministic, so a saved input
     * replays the same chunking.
     */
    public static List<ByteString> chunks(byte[] data, int from, int seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<ByteString> out = new ArrayList<>();
        int pos = from;
        while (pos < data.length) {
            int n = switch (random.nextInt(4)) {
                case 0 -> random.nextInt(4);
                case 1 -> 1 + random.nextInt(64);
                case 2 -> 1 + random.nextInt(4096);
                default -> data.length - pos;
            };
            n = Math.min(n, data.length - pos);
            out.add(ByteString.copyFrom(data, pos, n));
            pos += n;
        }
        return out;
    }

    /**
     * Where {@code writeSeeds} writes: the folder {@value #WRITE_SEEDS} names, else {@code scratch}. The writers run in
     * every build (never skipped), so a seed that no longer builds fails there, not when the corpus is next rewritten.
     */
    public static Path seedRoot(Path scratch) {
        String named = System.getProperty(WRITE_SEEDS, "");
        return named.isBlank() ? scratch : Path.of(named);
    }

    /** Fails unless {@code harness} wrote at least one seed under {@code root}. */
    public static void requireSeeds(Path root, Class<?> harness) throws IOException {
        Path dir = root.resolve(harness.getPackageName().replace('.', '/')).resolve(harness.getSimpleName() + "Inputs");
        try (Stream<Path> files = Files.walk(dir)) {
            if (files.noneMatch(f -> f.getFileName().toString().startsWith("seed-"))) {
                throw new AssertionError("no seed written under " + dir);
            }
        }
    }

    /** Where a harness's seeds go: {@code <root>/<package path>/<ClassName>Inputs/<method>/}. */
    public static Path inputsDir(Path root, Class<?> harness, String method) throws IOException {
        Path dir = root.resolve(harness.getPackageName().replace('.', '/'))
                .resolve(harness.getSimpleName() + "Inputs").resolve(method);
        return Files.createDirectories(dir);
    }

    /**
     * Writes one seed as hex text ({@code seed-NAME.hex}, see {@link FuzzInputs}); {@code root} is the hex folder,
     * {@code filter-service/src/test/fuzz-inputs}.
     */
    public static void seed(Path root, Class<?> harness, String method, String name, byte[] bytes) throws IOException {
        FuzzInputs.write(inputsDir(root, harness, method), "seed-" + name, bytes);
    }

    /** Concatenation helper for seed construction. */
    public static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) {
            n += p.length;
        }
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
