package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.http.HttpRule;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PolicyWatcherTest {

    private static final Duration POLL = Duration.ofMillis(20);

    @TempDir
    Path dir;

    private final List<EncryptionPolicy> applied = new CopyOnWriteArrayList<>();
    private final List<HttpRules> appliedHttp = new CopyOnWriteArrayList<>();

    private Path write(String name, String yaml) throws Exception {
        Path tmp = dir.resolve(name + ".tmp");
        Files.writeString(tmp, yaml);
        return Files.move(tmp, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    @Test
    void givenPolicyFromMeshFile_whenLoaded_thenItsPolicySectionIsUsedAndOtherKeysIgnored() throws Exception {
        write("mesh.yaml", "sidecars: {}\npolicy:\n  encrypt: [orders]\n  unmatched: reject\n");
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");

        FilterConfig loaded = FilterConfig.load(config);

        assertEquals(EncryptionPolicy.of(List.of("orders"), Unmatched.REJECT), loaded.policy());
        assertEquals(dir.toAbsolutePath().resolve("mesh.yaml"), loaded.policyFrom());
    }

    @Test
    void givenPolicyFromXds_whenLoaded_thenThePolicyServerIsSetAndNoFileIsRead() throws Exception {
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: xds://127.0.0.1:18000\n");

        FilterConfig loaded = FilterConfig.load(config);

        assertEquals(InetSocketAddress.createUnresolved("127.0.0.1", 18000), loaded.policyServer());
        assertNull(loaded.policyFrom());
        assertNull(loaded.sivKeyset());
    }

    @Test
    void givenPolicyFromXdsWithoutPort_whenLoaded_thenTheErrorNamesPolicyFrom() throws Exception {
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: xds://xds.internal\n");

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(config));

        assertEquals(config + ":2:1: policyFrom: must be host:port (got \"xds.internal\")", e.getMessage());
    }

    @Test
    void givenADeliveredPolicyEncryptingRecordKeys_whenPutIn_thenTheDefaultRecordKeyKeysetIsSet() throws Exception {
        Path config = write("filter.yaml", "keyset: keys/k.json\npolicyFrom: xds://127.0.0.1:18000\n");
        EncryptionPolicy keys = EncryptionPolicy.ofRules(List.of(new TopicRule("users", List.of(), true)), Unmatched.REJECT);

        FilterConfig delivered = FilterConfig.load(config).withPolicies(new Policies(keys, HttpRules.NONE), config);

        assertEquals(keys, delivered.policy());
        assertEquals(dir.toAbsolutePath().resolve("keys/siv-keyset.json"), delivered.sivKeyset());
    }

    @Test
    void givenPolicyAndPolicyFrom_whenLoaded_thenTheErrorNamesPolicyFrom() throws Exception {
        write("mesh.yaml", "policy:\n  encrypt: [orders]\n");
        Path config = write("filter.yaml", "keyset: k.json\npolicy:\n  encrypt: [a]\npolicyFrom: mesh.yaml\n");

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(config));

        assertEquals(config + ":4:1: policyFrom: cannot be combined with policy: (one source of truth)", e.getMessage());
    }

    @Test
    void givenMeshFileWithoutPolicy_whenLoaded_thenTheErrorNamesThePolicyField() throws Exception {
        Path mesh = write("mesh.yaml", "sidecars: {}\n");
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(config));

        assertEquals(mesh.toAbsolutePath() + ":1:1: policy: required field is missing", e.getMessage());
    }

    @Test
    void givenWatchedPolicyFile_whenAValidChangeIsWritten_thenTheNewPolicyIsApplied() throws Exception {
        Path mesh = write("mesh.yaml", "policy:\n  encrypt: [orders]\n");
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");
        FilterConfig startup = FilterConfig.load(config);

        try (PolicyWatcher watcher = PolicyWatcher.start(config, startup, applied::add, appliedHttp::add, POLL)) {
            write("mesh.yaml", "policy:\n  encrypt: [orders, payments]\n");

            EncryptionPolicy expected = EncryptionPolicy.of(List.of("orders", "payments"), Unmatched.PASSTHROUGH);
            Await.until(() -> expected.equals(watcher.current()), "the new policy from " + mesh);
            assertEquals(List.of(expected), applied, "applied once, the unchanged startup policy is not re-applied");
            assertEquals(expected, watcher.current());
        }
    }

    @Test
    void givenWatchedPolicyFile_whenAnInvalidChangeIsWritten_thenTheLastGoodPolicyStaysAndTheErrorNamesTheField() throws Exception {
        Path mesh = write("mesh.yaml", "policy:\n  encrypt: [orders]\n");
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");
        FilterConfig startup = FilterConfig.load(config);

        try (PolicyWatcher watcher = PolicyWatcher.start(config, startup, applied::add, appliedHttp::add, POLL)) {
            write("mesh.yaml", "policy:\n  encrypt: [orders]\n  unmatched: drop\n");
            Await.until(() -> watcher.lastError() != null, "the reload error");

            assertEquals(mesh.toAbsolutePath() + ":3:3: policy.unmatched: must be one of passthrough, reject (got \"drop\")",
                    watcher.lastError());
            assertEquals(startup.policy(), watcher.current());
            assertTrue(applied.isEmpty());

            write("mesh.yaml", "policy:\n  encrypt: [orders]\n  unmatched: reject\n");
            EncryptionPolicy corrected = EncryptionPolicy.of(List.of("orders"), Unmatched.REJECT);
            Await.until(() -> corrected.equals(watcher.current()), "the corrected policy");
            assertNull(watcher.lastError());
            assertEquals(List.of(corrected), applied);
        }
    }

    @Test
    void givenInlinePolicy_whenTheConfigFileChanges_thenThePolicyReloads() throws Exception {
        Path config = write("filter.yaml", "keyset: k.json\npolicy:\n  encrypt: [a]\n");
        FilterConfig startup = FilterConfig.load(config);

        try (PolicyWatcher watcher = PolicyWatcher.start(config, startup, applied::add, appliedHttp::add, POLL)) {
            write("filter.yaml", "keyset: k.json\npolicy:\n  encrypt: [a, b]\n");

            EncryptionPolicy expected = EncryptionPolicy.of(List.of("a", "b"), Unmatched.PASSTHROUGH);
            Await.until(() -> expected.equals(watcher.current()), "the reloaded inline policy");
            assertEquals(List.of(expected), applied);
        }
    }

    private static final String REDACT_SSN = """
            http:
              rules:
                - name: orders
                  match: {methods: [POST], path: /orders, pathRegex: '/orders/[0-9]+'}
                  request:
                    fields:
                      - redact: /ssn
                    body:
                      - {pattern: '[0-9]{3}-[0-9]{2}', with: 'XXX-XX'}
            """;

    private static List<String> ruleNames(HttpRules rules) {
        return rules.rules().stream().map(HttpRule::name).toList();
    }

    @Test
    void givenPolicyFromMeshFileWithHttpRules_whenLoaded_thenTheMeshFilesRulesAreInForce() throws Exception {
        write("mesh.yaml", "policy:\n  encrypt: [orders]\n" + REDACT_SSN);
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");

        FilterConfig loaded = FilterConfig.load(config);

        assertEquals(List.of("orders"), ruleNames(loaded.http()));
        assertEquals("/orders", loaded.http().rules().getFirst().match().pathPrefix());
    }

    @Test
    void givenPolicyFromAndLocalHttpRules_whenLoaded_thenTheErrorNamesHttp() throws Exception {
        write("mesh.yaml", "policy:\n  encrypt: [orders]\n");
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n" + REDACT_SSN);

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(config));

        assertEquals(config + ":3:1: http: cannot be combined with policyFrom: (the HTTP rules are the http: section of"
                + " \"mesh.yaml\", one source of truth)", e.getMessage());
    }

    @Test
    void givenMeshFileWithAnInvalidHttpRule_whenLoaded_thenTheErrorNamesTheMeshFileLineAndField() throws Exception {
        Path mesh = write("mesh.yaml", "policy:\n  encrypt: [orders]\nhttp:\n  rules:\n    - name: r\n      request: {fields: [{shred: /ssn}]}\n");
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");

        ConfigException e = assertThrows(ConfigException.class, () -> FilterConfig.load(config));

        assertTrue(e.getMessage().startsWith(mesh.toAbsolutePath() + ":6:"), e.getMessage());
        assertTrue(e.getMessage().contains("http.rules[0].request.fields[0]"), e.getMessage());
    }

    @Test
    void givenWatchedMeshFile_whenOnlyTheHttpRulesChange_thenOnlyTheNewRulesAreApplied() throws Exception {
        write("mesh.yaml", "policy:\n  encrypt: [orders]\n" + REDACT_SSN);
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");
        FilterConfig startup = FilterConfig.load(config);

        try (PolicyWatcher watcher = PolicyWatcher.start(config, startup, applied::add, appliedHttp::add, POLL)) {
            write("mesh.yaml", "policy:\n  encrypt: [orders]\n" + REDACT_SSN.replace("name: orders", "name: orders-v2"));

            // the watcher applies, then records what is in force: wait for the latter
            Await.until(() -> ruleNames(watcher.currentHttp()).equals(List.of("orders-v2")), "the new HTTP rules in force");
            assertEquals(1, appliedHttp.size(), appliedHttp.toString());
            assertEquals(List.of("orders-v2"), ruleNames(appliedHttp.getFirst()));
            assertTrue(applied.isEmpty(), "the unchanged encryption policy is not re-applied");
        }
    }

    @Test
    void givenWatchedMeshFile_whenRewrittenWithTheSameRulesAndAComment_thenNothingIsReapplied() throws Exception {
        write("mesh.yaml", "policy:\n  encrypt: [orders]\n" + REDACT_SSN);
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");
        FilterConfig startup = FilterConfig.load(config);

        try (PolicyWatcher watcher = PolicyWatcher.start(config, startup, applied::add, appliedHttp::add, POLL)) {
            write("mesh.yaml", "# reformatted\npolicy:\n  encrypt: [orders]\n" + REDACT_SSN);
            // then a real change, so the test knows the watcher has read the file since (maybe only this version,
            // whose HTTP rules are equal too: parsed anew, equal patterns must still compare equal)
            write("mesh.yaml", "# reformatted\npolicy:\n  encrypt: [orders, audit]\n" + REDACT_SSN);
            // in force only after both halves were handled, so an HTTP re-apply would already be recorded
            Await.until(() -> watcher.current().equals(EncryptionPolicy.of(List.of("orders", "audit"), Unmatched.PASSTHROUGH)),
                    "the policy change in force");

            assertTrue(appliedHttp.isEmpty(), "equal rules (same patterns) are not re-applied: " + appliedHttp);
            assertEquals(startup.http(), watcher.currentHttp());
        }
    }

    @Test
    void givenWatchedMeshFile_whenTheHttpSectionBecomesInvalid_thenTheLastGoodRulesStayAndTheErrorNamesTheField() throws Exception {
        Path mesh = write("mesh.yaml", "policy:\n  encrypt: [orders]\n" + REDACT_SSN);
        Path config = write("filter.yaml", "keyset: k.json\npolicyFrom: mesh.yaml\n");
        FilterConfig startup = FilterConfig.load(config);

        try (PolicyWatcher watcher = PolicyWatcher.start(config, startup, applied::add, appliedHttp::add, POLL)) {
            write("mesh.yaml", "policy:\n  encrypt: [orders, audit]\n" + REDACT_SSN.replace("pathRegex: '/orders/[0-9]+'", "pathRegex: '('"));
            Await.until(() -> watcher.lastError() != null, "the reload error");

            assertTrue(watcher.lastError().startsWith(mesh.toAbsolutePath() + ":6:"), watcher.lastError());
            assertTrue(watcher.lastError().contains("http.rules[0].match.pathRegex"), watcher.lastError());
            assertTrue(applied.isEmpty() && appliedHttp.isEmpty(), "neither half of an invalid file applies");
            assertEquals(startup.http(), watcher.currentHttp());
        }
    }

    @Test
    void givenInlineHttpRules_whenTheConfigFileChanges_thenTheRulesReload() throws Exception {
        Path config = write("filter.yaml", "keyset: k.json\n" + REDACT_SSN);
        FilterConfig startup = FilterConfig.load(config);

        try (PolicyWatcher watcher = PolicyWatcher.start(config, startup, applied::add, appliedHttp::add, POLL)) {
            write("filter.yaml", "keyset: k.json\n" + REDACT_SSN.replace("/ssn", "/tax_id"));

            Await.until(() -> !watcher.currentHttp().equals(startup.http()), "the reloaded inline rules in force");
            assertEquals(List.of(watcher.currentHttp()), appliedHttp);
            assertTrue(applied.isEmpty());
        }
    }
}
