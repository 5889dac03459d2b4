package io.meshcrypt.meshconfig.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PolicyIdentitiesTest {
    private static final Path FILE = Path.of("mesh.yaml");
    private static final String BILLING = "spiffe://meshcrypt.local/sidecar/billing";

    private static EncryptionPolicy parse(String yaml) throws ConfigException {
        return Policies.parse(FILE, yaml.getBytes(StandardCharsets.UTF_8)).encryption();
    }

    private static String error(String yaml) {
        return assertThrows(ConfigException.class, () -> parse(yaml)).getMessage();
    }

    @Test
    void givenReadersAndWriters_whenParsed_thenTheFirstMatchingRuleDecidesWhoReadsAndWrites() throws Exception {
        EncryptionPolicy policy = parse("""
                policy:
                  encrypt:
                    - topic: "payments.*"
                      readers: ["%s", "spiffe://cluster.local/ns/apps/*"]
                      writers: [spiffe://meshcrypt.local/sidecar/shop]
                      others: deny
                    - "*"
                """.formatted(BILLING));

        TopicRule payments = policy.ruleOf("payments.eu");
        assertTrue(payments.mayRead(BILLING));
        assertTrue(payments.mayRead("spiffe://cluster.local/ns/apps/sa/audit"));
        assertFalse(payments.mayRead("spiffe://cluster.local/ns/other/sa/audit"));
        assertFalse(payments.mayRead(null), "a stream without an identity is nobody's");
        assertTrue(payments.mayWrite("spiffe://meshcrypt.local/sidecar/shop"));
        assertFalse(payments.mayWrite(BILLING));
        assertEquals(TopicRule.Others.DENY, payments.others());
        assertTrue(policy.anyDeny());

        TopicRule rest = policy.ruleOf("orders");
        assertTrue(rest.mayRead(null) && rest.mayWrite(null), "a rule without lists lets every identity through");
        assertEquals("*", rest.pattern(), "the catch-all rule matches");
    }

    @Test
    void givenReadersWithoutOthers_whenParsed_thenOthersGetCiphertext() throws Exception {
        EncryptionPolicy policy = parse("policy: {encrypt: [{topic: t, readers: [a]}]}");

        assertEquals(TopicRule.Others.CIPHERTEXT, policy.ruleOf("t").others());
        assertFalse(policy.anyDeny());
        assertEquals(List.of(), policy.fieldsOf("t"), "readers alone encrypt the whole value");
    }

    @Test
    void givenAFieldWithReadersOfItsOwn_whenParsed_thenOnlyThatFieldNamesThem() throws Exception {
        TopicRule rule = parse("""
                policy:
                  encrypt:
                    - topic: staff
                      fields: [/name, {field: /salary, readers: ["spiffe://x/hr"]}]
                      readers: ["spiffe://x/*"]
                """).ruleOf("staff");

        assertEquals(List.of(JsonPointer.parse("/name"), JsonPointer.parse("/salary")), rule.fields());
        assertEquals(Map.of(JsonPointer.parse("/salary"), Identities.of(List.of("spiffe://x/hr"))), rule.fieldReaders());
        assertTrue(error("policy: {encrypt: [{topic: t, fields: [{field: /a}]}]}")
                .contains("policy.encrypt[0].fields[0].readers: required field is missing"));
        assertTrue(error("policy: {encrypt: [{topic: t, fields: [{field: /a, readers: [x], writers: [y]}]}]}")
                .contains("policy.encrypt[0].fields[0].writers: unknown field"));
    }

    @Test
    void givenATopicNoRuleMatches_whenAskedForItsRule_thenNone() throws Exception {
        assertNull(parse("policy: {encrypt: [\"a*\"], unmatched: passthrough}").ruleOf("b"));
    }

    @Test
    void givenBadIdentityLists_whenParsed_thenTheErrorNamesFileLineAndField() {
        assertEquals("mesh.yaml:1:36: policy.encrypt[0].readers: must be a non-empty list of workload identities, e.g."
                        + " spiffe://cluster.local/ns/apps/sa/billing (got an empty list)",
                error("policy: {encrypt: [{topic: t,      readers: []}]}"));
        assertTrue(error("policy: {encrypt: [{topic: t, writers: [\"a b\"]}]}")
                .contains("policy.encrypt[0].writers[0]: must be printable ASCII without spaces"));
        assertTrue(error("policy: {encrypt: [{topic: t, writers: [a], others: deny}]}")
                .contains("policy.encrypt[0].others: only applies beside readers"));
        assertTrue(error("policy: {encrypt: [{topic: t, readers: [a], others: plaintext}]}")
                .contains("policy.encrypt[0].others: must be one of ciphertext, deny"));
        assertTrue(error("policy: {encrypt: [{topic: t, reader: [a]}]}").contains("reader"));
    }
}
