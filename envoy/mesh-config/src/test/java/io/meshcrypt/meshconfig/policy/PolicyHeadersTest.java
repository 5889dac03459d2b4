package io.meshcrypt.meshconfig.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.mesh.MeshWriter;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code headers:} of a policy.encrypt entry: the record headers whose values are encrypted. */
class PolicyHeadersTest {
    private static final Path FILE = Path.of("filter.yaml");

    private static EncryptionPolicy parse(String yaml) throws ConfigException {
        return Policies.parse(FILE, yaml.getBytes(StandardCharsets.UTF_8)).encryption();
    }

    private static String error(String yaml) {
        return assertThrows(ConfigException.class, () -> parse(yaml)).getMessage();
    }

    @Test
    void givenHeadersBesideOtherOptions_whenParsed_thenTheFirstMatchingRuleListsThemInOrder() throws Exception {
        EncryptionPolicy policy = parse("""
                policy:
                  encrypt:
                    - {topic: "users*", headers: [user-id, "x-pii-*"]}
                    - {topic: "orders", fields: [/card], keys: deterministic, headers: ["?"]}
                    - "*"
                """);

        assertEquals(List.of("user-id", "x-pii-*"), policy.ruleOf("users.eu").headers());
        assertEquals(List.of("?"), policy.ruleOf("orders").headers());
        assertEquals(List.of(), policy.ruleOf("audit").headers(), "a plain pattern encrypts no header");
        assertTrue(policy.toString().contains("users* headers [user-id, x-pii-*]"), policy.toString());
    }

    @Test
    void givenHeadersAlone_whenParsed_thenValuesAreStillEncryptedWhole() throws Exception {
        EncryptionPolicy policy = parse("policy: {encrypt: [{topic: t, headers: [user-id]}]}");

        assertEquals(List.of(), policy.fieldsOf("t"));
        assertEquals(TopicDecision.ENCRYPT, policy.decide("t"));
    }

    @Test
    void givenBadHeaderLists_whenParsed_thenTheErrorNamesFileLineColumnAndField() {
        assertEquals("filter.yaml:1:31: policy.encrypt[0].headers: must list at least one header name or glob (omit it"
                + " to leave headers as sent)", error("policy: {encrypt: [{topic: t, headers: []}]}"));
        assertTrue(error("policy: {encrypt: [{topic: t, headers: user-id}]}")
                .contains("policy.encrypt[0].headers: must be a non-empty list of header names or globs (got"));
        assertEquals("filter.yaml:1:44: policy.encrypt[0].headers[1]: must not be empty",
                error("policy: {encrypt: [{topic: t, headers: [a, \"\"]}]}"));
        assertTrue(error("policy: {encrypt: [{topic: t, headers: [a, 7]}]}")
                .contains("policy.encrypt[0].headers[1]: must be a header name or glob string (got"));
        assertTrue(error("policy: {encrypt: [{topic: t, headers: [a, {name: b}]}]}")
                .contains("policy.encrypt[0].headers[1]: must be a header name or glob string"));
        assertTrue(error("policy: {encrypt: [{topic: t, headers: [a, b, a]}]}")
                .contains("policy.encrypt[0].headers[2]: repeats"));
        assertTrue(error("policy: {encrypt: [{topic: t, header: [a]}]}").contains("policy.encrypt[0].header"),
                "unknown keys are refused");
    }

    @Test
    void givenHeaders_whenWrittenForXdsAndReadBack_thenTheSamePolicy() throws Exception {
        EncryptionPolicy policy = parse("policy: {encrypt: [{topic: t, headers: [user-id, \"x-*\"]}, \"*\"]}");
        Policies policies = new Policies(policy, HttpRules.NONE);

        String written = MeshWriter.writePolicies(policies);

        assertEquals(policy, Policies.parse(FILE, written.getBytes(StandardCharsets.UTF_8)).encryption(), written);
    }
}
