package io.meshcrypt.filter.keys;

import io.meshcrypt.filter.audit.JsonAuditTrail;
import io.meshcrypt.filter.audit.KeyOperationAudit;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.crypto.EnvelopeException;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.crypto.ValueEnvelopeV1;
import io.meshcrypt.filter.crypto.ValueEnvelopeV2;
import io.meshcrypt.filter.kms.AuditedKekProvider;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KekRefusedException;
import io.meshcrypt.filter.kms.Keysets;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * The key commands of the filter-service's command line (the ciphers a configuration asks for are built by
 * {@link KeyServices}): {@code keyset create|rotate} for a local keyset, {@code keys create|rotate|list --config FILE}
 * for the KEKs of a {@code keys:} section, {@code inspect [--config FILE --topic TOPIC] VALUE} for one value. Each prints
 * its result on the command line's stdout and returns its exit code.
 */
public final class KeysCli {

    private KeysCli() {
    }

    @Command(name = "keyset", description = "Create or rotate a local Tink keyset (the config's keyset: file).")
    public static final class Keyset {
        @Spec
        CommandSpec spec;

        @Command(name = "create", description = "Write a new keyset, readable by its owner only.")
        int create(@Option(names = "--out", required = true, paramLabel = "FILE") String out,
                   @Option(names = "--deterministic", description = "An AES-SIV keyset for record keys (the config's"
                           + " sivKeyset:), which every replica must share.") boolean deterministic) throws Exception {
            if (deterministic) {
                RecordKeyCipher.createKeyset(Path.of(out));
            } else {
                Keysets.create(Path.of(out));
            }
            spec.commandLine().getOut().println("created " + (deterministic ? "AES-SIV keyset " : "keyset ") + out);
            return 0;
        }

        @Command(name = "rotate", description = "Add a new primary key; values encrypted before stay readable.")
        int rotate(@Option(names = "--file", required = true, paramLabel = "FILE") String file) throws Exception {
            Keysets.rotate(Path.of(file));
            spec.commandLine().getOut().println("rotated keyset " + file
                    + ": new values use a new primary key, old ones stay readable");
            return 0;
        }
    }

    @Command(name = "keys", description = "Create, rotate or list the KEKs of the config's keys: section.")
    public static final class Keys implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        // A string, not an enum: an unknown command is refused by keys() with exit 1, as it always was.
        @Parameters(paramLabel = "create|rotate|list", description = "create the first KEK, make a new one current, or"
                + " list them (* marks the current one).")
        String command;

        @Option(names = "--config", required = true, paramLabel = "FILE", description = "The filter config (YAML).")
        Path config;

        @Override
        public Integer call() throws Exception {
            return keys(command, FilterConfig.load(config), spec.commandLine().getOut());
        }
    }

    @Command(name = "inspect", description = "Show a value's envelope header; with --config and --topic, whether it is"
            + " bound to that topic (exit 1 if not).")
    public static final class Inspect implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Parameters(paramLabel = "VALUE", description = "The value in hex or base64.")
        String value;

        @ArgGroup(exclusive = false)
        TopicBinding binding;

        static final class TopicBinding {
            @Option(names = "--config", required = true, paramLabel = "FILE",
                    description = "The filter config whose keys can tell.")
            Path config;

            @Option(names = "--topic", required = true, paramLabel = "TOPIC", description = "The topic to check.")
            String topic;
        }

        @Override
        public Integer call() throws Exception {
            PrintWriter out = spec.commandLine().getOut();
            return binding == null ? inspect(value, null, null, out)
                    : inspect(value, FilterConfig.load(binding.config), binding.topic, out);
        }
    }

    private static int keys(String command, FilterConfig config, PrintWriter out) throws GeneralSecurityException, IOException {
        if (config.keys() == null) {
            throw new GeneralSecurityException("the config has no keys: section (for a plain keyset use: keyset create|rotate)");
        }
        try (JsonAuditTrail trail = openTrail(config); KekProvider provider = audited(KekProviders.open(config.keys()), trail)) {
            switch (command) {
                case "create" -> out.println("current KEK " + provider.create() + " (" + provider.name() + ")");
                case "rotate" -> out.println("rotated: new DEKs are wrapped by KEK " + provider.rotate() + " (" + provider.name()
                        + "); running filter-services switch within keys.kekCheckSeconds, older KEKs keep unwrapping");
                case "list" -> {
                    List<KekProvider.KekInfo> keks = provider.list();
                    for (KekProvider.KekInfo k : keks) {
                        out.println((k.current() ? "* " : "  ") + k.kekId() + "  " + k.state());
                    }
                }
                default -> throw new GeneralSecurityException("unknown keys command " + command + " (create, rotate, list)");
            }
        }
        return 0;
    }

    /** The config's audit trail, or null: the key commands are key operations too. */
    private static JsonAuditTrail openTrail(FilterConfig config) throws IOException {
        return config.audit() == null ? null : JsonAuditTrail.open(config.audit());
    }

    private static KekProvider audited(KekProvider provider, JsonAuditTrail trail) {
        return trail == null ? provider : new AuditedKekProvider(provider, trail.keys());
    }

    private static int inspect(String text, FilterConfig config, String topic, PrintWriter out) throws Exception {
        byte[] bytes = decode(text);
        ByteBuffer value = ByteBuffer.wrap(bytes);
        if (RecordKeyCipher.isKeyEnvelope(value)) {
            return inspectKey(bytes, config, topic, out);
        }
        if (!ValueEnvelope.isEnvelope(value)) {
            out.println("not a meshcrypt envelope (" + bytes.length + " bytes without the \\0MCE or \\0MCK magic)");
            return 1;
        }
        int version = Byte.toUnsignedInt(bytes[4]);
        boolean bound;
        if (version == ValueEnvelopeV1.VERSION_1) {
            ValueEnvelopeV1.Info info = ValueEnvelopeV1.inspect(value);
            out.println("format version 1");
            out.println("key id " + info.keyIdText() + " (Tink keyset key, used directly)");
            out.println("plaintext length " + (bytes.length - ValueEnvelopeV1.OVERHEAD));
            if (config == null) {
                return 0;
            }
            // v1 carries no wrapped key: only the AEAD tag, which covers the topic, can tell. The plaintext is discarded.
            bound = check(() -> ValueCipherV1.fromKeysetFile(config.keyset()).decrypt(topic, value));
        } else if (version == ValueEnvelopeV2.VERSION_2) {
            ValueEnvelopeV2.Info info = ValueEnvelopeV2.parse(value, null);
            out.println("format version 2");
            out.println("KEK id " + info.kekId());
            out.println("DEK id " + info.dekIdText());
            byte[] wrappedDek = new byte[info.wrappedDekLength()];
            value.get(info.headerLength() - wrappedDek.length, wrappedDek);
            out.println("wrapped DEK " + info.wrappedDekLength() + " bytes, fingerprint "
                    + KeyOperationAudit.fingerprint(wrappedDek) + " (its wrappedDek in the audit trail)");
            out.println("plaintext length " + (bytes.length - info.headerLength() - ValueEnvelope.NONCE_LENGTH - ValueEnvelope.TAG_LENGTH));
            if (config == null) {
                return 0;
            }
            if (config.keys() == null) {
                throw new GeneralSecurityException("checking a version-2 topic binding needs a config with a keys: section");
            }
            // The KMS unwraps the DEK only under the topic it was wrapped for; the record itself is not decrypted.
            try (JsonAuditTrail trail = openTrail(config); KekProvider provider = audited(KekProviders.open(config.keys()), trail)) {
                bound = check(() -> provider.unwrap(info.kekId(), wrappedDek, new DekContext(topic, info.dekId())));
            }
        } else {
            out.println("format version " + version + " (unknown to this release)");
            return 1;
        }
        out.println("bound to topic '" + topic + "': " + (bound ? "yes" : "no"));
        return bound ? 0 : 1;
    }

    /** A record-key envelope (deterministic AES-SIV, see RecordKeyCipher): its header, and with a config its topic binding. */
    private static int inspectKey(byte[] bytes, FilterConfig config, String topic, PrintWriter out) throws Exception {
        int version = Byte.toUnsignedInt(bytes[4]);
        if (version != RecordKeyCipher.VERSION_1 || bytes.length < RecordKeyCipher.OVERHEAD) {
            out.println("record-key envelope, format version " + version + (version == RecordKeyCipher.VERSION_1
                    ? ", truncated (" + bytes.length + " bytes)" : " (unknown to this release)"));
            return 1;
        }
        out.println("record-key envelope (deterministic AES-256-SIV), format version 1");
        out.println("key id " + Integer.toUnsignedString(ByteBuffer.wrap(bytes).getInt(RecordKeyCipher.KEY_ID_OFFSET))
                + " (Tink key of the record-key keyset)");
        out.println("plaintext length " + (bytes.length - RecordKeyCipher.OVERHEAD));
        if (config == null) {
            return 0;
        }
        if (config.sivKeyset() == null) {
            throw new GeneralSecurityException("checking a record-key envelope's topic binding needs the config's sivKeyset"
                    + " (or a policy entry with keys: deterministic)");
        }
        // The topic is in the SIV's associated data: only decryption can tell. The plaintext key is discarded.
        RecordKeyCipher keys = RecordKeyCipher.fromKeysetFile(config.sivKeyset());
        boolean bound = check(() -> keys.decrypt(topic, ByteBuffer.wrap(bytes)));
        out.println("bound to topic '" + topic + "': " + (bound ? "yes" : "no"));
        return bound ? 0 : 1;
    }

    private interface Check {
        Object run() throws Exception;
    }

    private static boolean check(Check check) throws Exception {
        try {
            check.run();
            return true;
        } catch (EnvelopeException | KekRefusedException e) {
            return false;
        }
    }

    private static byte[] decode(String text) {
        String t = text.strip();
        if (t.length() % 2 == 0 && t.matches("[0-9A-Fa-f]+")) {
            return HexFormat.of().parseHex(t);
        }
        try {
            return Base64.getDecoder().decode(t);
        } catch (IllegalArgumentException e) {
            return Base64.getUrlDecoder().decode(t);
        }
    }
}
