package io.meshcrypt.filter.keys;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.crypto.EnvelopeException;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.crypto.ValueEnvelope;
import io.meshcrypt.filter.crypto.ValueEnvelopeV1;
import io.meshcrypt.filter.crypto.ValueEnvelopeV2;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KekRefusedException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;

/**
 * The key commands of the filter-service CLI (the ciphers a configuration asks for are built by {@link KeyServices}).
 *
 * <pre>
 * keys create|rotate|list --config FILE
 * inspect [--config FILE --topic TOPIC] VALUE     (VALUE in hex or base64)
 * </pre>
 */
public final class KeysCli {
    /** Usage lines, aligned under the filter-service's own "usage: " prefix. */
    public static final String USAGE = ""
            + "       meshcrypt-filter-service keys create|rotate|list --config FILE\n"
            + "       meshcrypt-filter-service inspect [--config FILE --topic TOPIC] VALUE   (hex or base64)";

    private KeysCli() {
    }

    /** @return the exit code, or -1 when {@code args} is not a keys or inspect command */
    public static int run(String[] args, PrintStream out) throws Exception {
        if (args.length == 4 && args[0].equals("keys") && args[2].equals("--config")) {
            return keys(args[1], FilterConfig.load(Path.of(args[3])), out);
        }
        if (args.length == 2 && args[0].equals("inspect")) {
            return inspect(args[1], null, null, out);
        }
        if (args.length == 6 && args[0].equals("inspect") && args[1].equals("--config") && args[3].equals("--topic")) {
            return inspect(args[5], FilterConfig.load(Path.of(args[2])), args[4], out);
        }
        return -1;
    }

    private static int keys(String command, FilterConfig config, PrintStream out) throws GeneralSecurityException {
        if (config.keys() == null) {
            throw new GeneralSecurityException("the config has no keys: section (for a plain keyset use: keyset create|rotate)");
        }
        try (KekProvider provider = KekProviders.open(config.keys())) {
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

    private static int inspect(String text, FilterConfig config, String topic, PrintStream out) throws Exception {
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
            out.println("wrapped DEK " + info.wrappedDekLength() + " bytes");
            out.println("plaintext length " + (bytes.length - info.headerLength() - ValueEnvelope.NONCE_LENGTH - ValueEnvelope.TAG_LENGTH));
            if (config == null) {
                return 0;
            }
            if (config.keys() == null) {
                throw new GeneralSecurityException("checking a version-2 topic binding needs a config with a keys: section");
            }
            byte[] wrapped = new byte[info.wrappedDekLength()];
            value.get(info.headerLength() - wrapped.length, wrapped);
            // The KMS unwraps the DEK only under the topic it was wrapped for; the record itself is not decrypted.
            try (KekProvider provider = KekProviders.open(config.keys())) {
                bound = check(() -> provider.unwrap(info.kekId(), wrapped, new DekContext(topic, info.dekId())));
            }
        } else {
            out.println("format version " + version + " (unknown to this release)");
            return 1;
        }
        out.println("bound to topic '" + topic + "': " + (bound ? "yes" : "no"));
        return bound ? 0 : 1;
    }

    /** A record-key envelope (deterministic AES-SIV, see RecordKeyCipher): its header, and with a config its topic binding. */
    private static int inspectKey(byte[] bytes, FilterConfig config, String topic, PrintStream out) throws Exception {
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
