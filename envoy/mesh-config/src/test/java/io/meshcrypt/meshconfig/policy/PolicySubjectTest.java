package io.meshcrypt.meshconfig.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.MeshWriter;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code subject:} and {@code forgotten:} of a policy.encrypt entry: per-subject keys and what forgotten records read as. */
class PolicySubjectTest {
    private static final Path FILE = Path.of("filter.yaml");

    private static EncryptionPolicy parse(String yaml) throws ConfigException {
        return Policies.parse(FILE, yaml.getBytes(StandardCharsets.UTF_8)).encryption();
    }

    private static String error(String yaml) {
        return assertThrows(ConfigException.class, () -> parse(yaml)).getMessage();
    }

    @Test
    void givenEachSubjectSource_whenParsed_thenTheRuleNamesItAndForgottenDefaultsToNull() throws Exception {
        EncryptionPolicy policy = parse("""
                policy:
                  encrypt:
                    - {topic: "by-key", subject: {from: key}}
                    - {topic: "by-value", fields: [/card], subject: {from: value, pointer: /customer/id}}
                    - {topic: "by-header", subject: {from: header, name: user-id}, forgotten: {placeholder: "[erased]"}}
                    - {topic: "explicit-null", subject: {from: key}, forgotten: null}
                    - "*"
                """);

        assertEquals(SubjectSource.key(), policy.ruleOf("by-key").subject());
        assertEquals(Forgotten.NULL, policy.ruleOf("by-key").forgotten());
        assertEquals(SubjectSource.value(JsonPointer.parse("/customer/id")), policy.ruleOf("by-value").subject());
        assertEquals(List.of(JsonPointer.parse("/card")), policy.ruleOf("by-value").fields());
        assertEquals(SubjectSource.header("user-id"), policy.ruleOf("by-header").subject());
        assertEquals(new Forgotten("[erased]"), policy.ruleOf("by-header").forgotten());
        assertEquals(Forgotten.NULL, policy.ruleOf("explicit-null").forgotten());
        assertNull(policy.ruleOf("other").subject(), "a plain pattern has no subject");
        assertNull(policy.ruleOf("other").forgotten());
        assertTrue(policy.toString().contains("by-header subject header user-id forgotten placeholder [erased]"),
                policy.toString());
    }

    @Test
    void givenBadSubjects_whenParsed_thenTheErrorNamesFileLineColumnAndField() {
        assertEquals("filter.yaml:1:31: policy.encrypt[0].subject: must be a mapping such as {from: key}, {from: value,"
                + " pointer: /customer/id} or {from: header, name: user-id} (got \"key\")",
                error("policy: {encrypt: [{topic: t, subject: key}]}"));
        assertEquals("filter.yaml:1:41: policy.encrypt[0].subject.from: must be one of key, value, header (got \"body\")",
                error("policy: {encrypt: [{topic: t, subject: {from: body}}]}"));
        assertEquals("filter.yaml:1:40: policy.encrypt[0].subject.from: required field is missing",
                error("policy: {encrypt: [{topic: t, subject: {}}]}"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: value}}]}")
                .contains("policy.encrypt[0].subject.pointer: required field is missing (the JSON Pointer"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: value, pointer: \"\"}}]}")
                .contains("policy.encrypt[0].subject.pointer: must address a field"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: header}}]}")
                .contains("policy.encrypt[0].subject.name: required field is missing (the name of the header"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: header, name: \"\"}}]}")
                .contains("policy.encrypt[0].subject.name: must not be empty"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: key, pointer: /a}}]}")
                .contains("policy.encrypt[0].subject.pointer: only applies with from: value"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: key, name: a}}]}")
                .contains("policy.encrypt[0].subject.name: only applies with from: header"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: key, header: a}}]}")
                .contains("policy.encrypt[0].subject.header: unknown field (expected one of from, pointer, name, scope)"));
    }

    @Test
    void givenBadForgotten_whenParsed_thenTheErrorNamesFileLineColumnAndField() {
        assertEquals("filter.yaml:1:31: policy.encrypt[0].forgotten: only applies beside subject (what readers get for a"
                + " forgotten subject's records)", error("policy: {encrypt: [{topic: t, forgotten: null, keys: deterministic}]}"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: key}, forgotten: erased}]}")
                .contains("policy.encrypt[0].forgotten: must be null or {placeholder: text} (got \"erased\")"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: key}, forgotten: {placeholder: 7}}]}")
                .contains("policy.encrypt[0].forgotten.placeholder: must be a string"));
        assertTrue(error("policy: {encrypt: [{topic: t, subject: {from: key}, forgotten: {value: x}}]}")
                .contains("policy.encrypt[0].forgotten.value: unknown field (expected one of placeholder)"));
    }

    @Test
    void givenSubjects_whenWrittenForXdsAndReadBack_thenTheSamePolicy() throws Exception {
        EncryptionPolicy policy = parse("""
                policy:
                  encrypt:
                    - {topic: a, subject: {from: key}}
                    - {topic: b, fields: [/x], subject: {from: value, pointer: /customer/id}, forgotten: {placeholder: ""}}
                    - {topic: c, subject: {from: header, name: user-id}, headers: [user-id]}
                    - {topic: d, fields: [/x], subject: {from: key, scope: customers}}
                    - "*"
                """);
        Policies policies = new Policies(policy, HttpRules.NONE);

        String written = MeshWriter.writePolicies(policies);

        assertEquals(policy, Policies.parse(FILE, written.getBytes(StandardCharsets.UTF_8)).encryption(), written);
        assertEquals(new Forgotten(""), Policies.parse(FILE, written.getBytes(StandardCharsets.UTF_8)).encryption()
                .ruleOf("b").forgotten());
    }

    @Test
    void givenANamedScope_whenParsed_thenItReplacesTheTopicPatternAsTheScopeOfTheSubjectKeys() throws Exception {
        EncryptionPolicy policy = parse("""
                policy:
                  encrypt:
                    - {topic: "orders-*", fields: [/card/number], subject: {from: value, pointer: /customer/id, scope: customers}}
                    - {topic: "invoices-*", subject: {from: key}}
                    - "*"
                """);

        assertEquals(SubjectSource.value(JsonPointer.parse("/customer/id")).withScope("customers"),
                policy.ruleOf("orders-eu").subject());
        assertEquals("customers", policy.ruleOf("orders-eu").subjectScope());
        assertEquals("invoices-*", policy.ruleOf("invoices-eu").subjectScope(), "the default: the pattern as written");
        assertNull(policy.ruleOf("other").subjectScope());
    }

    @Test
    void givenBadScopes_whenParsed_thenTheErrorNamesFileLineColumnAndField() {
        assertEquals("filter.yaml:1:52: policy.encrypt[0].subject.scope: must be 1-249 characters of A-Z a-z 0-9 . _ - * ?"
                + " (got \"a b\")", error("policy: {encrypt: [{topic: t, subject: {from: key, scope: \"a b\"}}]}"));
        assertEquals("filter.yaml:1:52: policy.encrypt[0].subject.scope: must be 1-249 characters of A-Z a-z 0-9 . _ - * ?"
                + " (got \"\")", error("policy: {encrypt: [{topic: t, subject: {from: key, scope: \"\"}}]}"));
        assertEquals("filter.yaml:1:52: policy.encrypt[0].subject.scope: must be a string (got a list)",
                error("policy: {encrypt: [{topic: t, subject: {from: key, scope: [a]}}]}"));
    }
}
