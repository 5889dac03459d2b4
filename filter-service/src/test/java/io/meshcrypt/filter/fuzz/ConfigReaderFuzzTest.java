package io.meshcrypt.filter.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.YamlTree;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The YAML readers (YamlTree, ConfigReader with its HttpConfigReader, KeysConfig and policy sections) on random YAML
 * text, through the public entry points the service uses: {@link FilterConfig#load} for a filter config and
 * {@link FilterConfig#readPolicies} for the policy sections of a mesh file.
 *
 * <p>Invariant: a bad file is reported as ConfigException, never as any other exception (which would take the
 * service, or a policy reload, down with a stack trace instead of a line:column message).
 *
 * <p>Two inputs are skipped rather than fed, because the reader would leave the process with them: a {@code listen}
 * host that is not an IP literal (resolved through DNS) and a {@code policyFrom} naming a file outside the
 * harness's own folder (read from disk).
 */
class ConfigReaderFuzzTest {
    private static final Path DIR;
    private static final Pattern SAFE_LISTEN = Pattern.compile(
            "((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}|\\[[0-9A-Fa-f:]*]):[0-9]{0,6}");
    private static final Pattern SAFE_FILE = Pattern.compile("[A-Za-z0-9_-][A-Za-z0-9_.-]{0,40}");

    static {
        try {
            DIR = Files.createTempDirectory("meshcrypt-config-fuzz-");
            DIR.toFile().deleteOnExit();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @FuzzTest(maxDuration = "60s")
    void givenRandomYaml_whenLoadedAsFilterConfig_thenOnlyConfigException(byte[] yaml) throws IOException {
        if (!safe(yaml)) {
            return;
        }
        Path file = DIR.resolve("filter.yaml");
        Files.write(file, yaml);
        try {
            FilterConfig.load(file);
        } catch (ConfigException expected) {
            // reported with file:line:column
        }
    }

    @FuzzTest(maxDuration = "60s")
    void givenRandomYaml_whenReadAsMeshPolicies_thenOnlyConfigException(byte[] yaml) throws IOException {
        if (!safe(yaml)) {
            return;
        }
        Path file = DIR.resolve("mesh.yaml");
        Files.write(file, yaml);
        try {
            FilterConfig.readPolicies(file);
        } catch (ConfigException expected) {
            // reported with file:line:column
        }
    }

    /** False for the inputs that would make the reader resolve a host name or read a file outside {@link #DIR}. */
    private static boolean safe(byte[] yaml) {
        YamlTree.Node root;
        try {
            root = YamlTree.parse("guard", yaml);
        } catch (ConfigException e) {
            return true; // the reader stops at the same syntax error
        } catch (RuntimeException e) {
            return true; // let the real call show it
        }
        if (!(root instanceof YamlTree.Mapping mapping)) {
            return true;
        }
        YamlTree.Entry listen = mapping.entries().get("listen");
        if (listen != null && listen.value() instanceof YamlTree.Scalar s && s.value() instanceof String host
                && !SAFE_LISTEN.matcher(host).matches()) {
            return false;
        }
        YamlTree.Entry policyFrom = mapping.entries().get("policyFrom");
        return policyFrom == null || !(policyFrom.value() instanceof YamlTree.Scalar s) || !(s.value() instanceof String from)
                || SAFE_FILE.matcher(from).matches();
    }

    @Test
    void writeSeeds(@TempDir Path scratch) throws Exception {
        Path root = FuzzSupport.seedRoot(scratch);
        String filter = "givenRandomYaml_whenLoadedAsFilterConfig_thenOnlyConfigException";
        String mesh = "givenRandomYaml_whenReadAsMeshPolicies_thenOnlyConfigException";
        String policy = """
                policy:
                  encrypt:
                    - "audit*"
                    - {topic: "orders*", fields: ["/card/number", "/cvv"]}
                    - {topic: "users*", keys: deterministic}
                  unmatched: reject
                """;
        String http = """
                http:
                  rules:
                    - name: cards
                      match: {methods: [POST, PUT], path: /api/cards, contentType: application/json}
                      binding: cards
                      request:
                        fields: {encrypt: ["/number"], redact: ["/cvv"]}
                        headers: {set: {x-encrypted: "1"}, remove: [x-debug]}
                      response:
                        fields: {decrypt: ["/number"]}
                    - name: logs
                      match: {pathRegex: "^/logs/[0-9]+$"}
                      response:
                        body: [{pattern: "[0-9]{16}", with: "****"}]
                """;
        String filterYaml = """
                listen: 127.0.0.1:0
                maxFrameBytes: 1048576
                keyset: keyset.json
                brokers:
                  1: 127.0.0.1:19093
                  2: "[::1]:19094"
                """;
        String keys = """
                keys:
                  provider: local
                  local: {keyset: kek.json}
                  dek: {maxRecords: 1000000, maxAgeSeconds: 3600}
                  cache: {ttlSeconds: 600, maxEntries: 1000}
                  kmsTimeoutMillis: 2000
                  kekCheckSeconds: 300
                """;
        String pkcs11 = """
                keys:
                  provider: pkcs11
                  pkcs11: {library: /usr/lib/softhsm/libsofthsm2.so, slot: 0, pinEnv: PIN, label: kek}
                """;
        String awsKms = """
                keys:
                  provider: aws-kms
                  awsKms: {keyId: "arn:aws:kms:eu-west-1:111122223333:key/abc", region: eu-west-1, endpoint: "http://127.0.0.1:5000"}
                """;
        FuzzSupport.seed(root, getClass(), filter, "full", utf8(filterYaml + policy + http));
        FuzzSupport.seed(root, getClass(), filter, "keys", utf8(filterYaml + keys));
        FuzzSupport.seed(root, getClass(), filter, "keys-pkcs11", utf8("keyset: k.json\n" + pkcs11));
        FuzzSupport.seed(root, getClass(), filter, "keys-aws-kms", utf8(awsKms + policy));
        FuzzSupport.seed(root, getClass(), filter, "minimal", utf8("keyset: k.json\n"));
        FuzzSupport.seed(root, getClass(), filter, "policy-from", utf8("keyset: k.json\npolicyFrom: mesh.yaml\nsivKeyset: s.json\n"));
        FuzzSupport.seed(root, getClass(), filter, "anchors-and-flow", utf8("keyset: &k k.json\nbrokers: {1: *k}\npolicy: {encrypt: [], unmatched: passthrough}\n"));
        FuzzSupport.seed(root, getClass(), mesh, "policy-http", utf8("sidecars: {}\n" + policy + http));
        FuzzSupport.seed(root, getClass(), mesh, "policy-only", utf8("policy: {encrypt: ['*']}\n"));
        FuzzSupport.requireSeeds(root, getClass());
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
