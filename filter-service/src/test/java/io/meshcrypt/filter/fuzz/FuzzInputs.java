package io.meshcrypt.filter.fuzz;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

/**
 * Binary fuzz inputs are kept in git as hex text ({@code src/test/fuzz-inputs/<package>/<Class>Inputs/<method>/NAME.hex})
 * and written out as the raw files jazzer-junit replays, under the test classes, before the tests run (the build calls
 * {@link #main} in the process-test-classes phase).
 */
public final class FuzzInputs {
    private static final String SUFFIX = ".hex";

    private FuzzInputs() {
    }

    /** @param args the hex folder, then the test-classes folder to write the raw inputs into */
    public static void main(String[] args) throws IOException {
        Path from = Path.of(args[0]);
        Path to = Path.of(args[1]);
        if (!Files.isDirectory(from)) {
            return;
        }
        List<Path> inputs;
        try (Stream<Path> walk = Files.walk(from)) {
            inputs = walk.filter(p -> p.getFileName().toString().endsWith(SUFFIX)).toList();
        }
        for (Path hex : inputs) {
            String name = from.relativize(hex).toString();
            Path raw = to.resolve(name.substring(0, name.length() - SUFFIX.length()));
            Files.createDirectories(raw.getParent());
            Files.write(raw, decode(Files.readString(hex)));
        }
        System.out.println("fuzz inputs: " + inputs.size() + " written from " + from + " to " + to);
    }

    /** Hex digits, whitespace ignored. */
    static byte[] decode(String hex) {
        return HexFormat.of().parseHex(hex.replaceAll("\\s", ""));
    }

    /** 64 hex digits a line, the format of the committed inputs. */
    static String encode(byte[] bytes) {
        String hex = HexFormat.of().formatHex(bytes);
        StringBuilder out = new StringBuilder(hex.length() + hex.length() / 64 + 1);
        for (int i = 0; i < hex.length(); i += 64) {
            out.append(hex, i, Math.min(hex.length(), i + 64)).append('\n');
        }
        return out.toString();
    }

    /** Writes {@code bytes} as {@code dir/name.hex}. */
    static void write(Path dir, String name, byte[] bytes) {
        try {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve(name + SUFFIX), encode(bytes));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
