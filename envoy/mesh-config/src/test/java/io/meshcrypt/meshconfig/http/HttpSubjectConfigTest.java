package io.meshcrypt.meshconfig.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.meshcrypt.meshconfig.mesh.MeshWriter;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.policy.Forgotten;
import io.meshcrypt.meshconfig.policy.SubjectSource;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** {@code subject:} and {@code forgotten:} of HTTP rules: fields under subject keys, in a scope shared with Kafka. */
class HttpSubjectConfigTest {
    private static final Path FILE = Path.of("mesh.yaml");
    private static final String CRYPTO = "binding: cards, request: {fields: [{encrypt: /card}]}";

    private static Policies parse(String yaml) throws ConfigException {
        return Policies.parse(FILE, yaml.getBytes(StandardCharsets.UTF_8));
    }

    /** @param rules the items of http.rules, one YAML list item per line (indented as a top-level list) */
    private static Policies rules(String rules) throws ConfigException {
        return parse("policy: {encrypt: [\"*\"]}\nhttp:\n  rules:\n" + rules.indent(4));
    }

    private static String error(String rule) {
        return assertThrows(ConfigException.class, () -> parse("policy: {encrypt: [\"*\"]}\nhttp: {rules: [" + rule
                + "]}")).getMessage();
    }

    @Test
    void givenSubjectsInBodyAndHeader_whenParsed_thenTheRulesNameThemWithTheirScopes() throws Exception {
        HttpRules rules = rules("""
                - name: cards
                  binding: cards
                  request: {fields: [{encrypt: /card/number}]}
                  response: {fields: [{decrypt: /card/number}]}
                  subject: {from: body, pointer: /customer/id, scope: customers}
                  forgotten: {placeholder: "[forgotten]"}
                - name: profiles
                  binding: profiles
                  request: {fields: [{encrypt: /ssn}]}
                  subject: {from: header, name: x-customer-id}
                - name: plain
                  binding: plain
                  request: {fields: [{encrypt: /ssn}]}
                """).http();

        HttpRule cards = rules.rules().get(0);
        HttpRule profiles = rules.rules().get(1);
        assertEquals(SubjectSource.value(JsonPointer.parse("/customer/id")).withScope("customers"), cards.subject());
        assertEquals(new Forgotten("[forgotten]"), cards.forgotten());
        assertEquals("customers", cards.subjectScope());
        assertEquals(SubjectSource.header("x-customer-id"), profiles.subject());
        assertEquals(Forgotten.NULL, profiles.forgotten(), "the default");
        assertEquals("profiles", profiles.subjectScope(), "without scope: the binding");
        assertNull(rules.rules().get(2).subject());
        assertNull(rules.rules().get(2).subjectScope());
    }

    @Test
    void givenSubjects_whenWrittenForXdsAndReadBack_thenTheSameRules() throws Exception {
        Policies policies = rules("""
                - {name: a, binding: cards, request: {fields: [{encrypt: /card}]},
                   subject: {from: body, pointer: /customer/id, scope: customers}, forgotten: {placeholder: x}}
                - {name: b, binding: cards, response: {fields: [{decrypt: /card}]}, subject: {from: header, name: x-id}}
                """);

        String written = MeshWriter.writePolicies(policies);

        assertEquals(policies.http(), parse(written).http(), written);
    }

    @Test
    void givenBadSubjects_whenParsed_thenTheErrorNamesFileLineColumnAndField() {
        assertEquals("mesh.yaml:2:36: http.rules[0].subject.from: must be one of body, header (got \"key\")",
                error("{name: r, subject: {from: key}, " + CRYPTO + "}"));
        assertEquals("mesh.yaml:2:26: http.rules[0].subject: only applies to a rule that encrypts or decrypts fields"
                + " (their subject's key encrypts them)",
                error("{name: r, subject: {from: body, pointer: /id}, request: {fields: [{redact: /a}]}}"));
        assertEquals("mesh.yaml:2:26: http.rules[0].forgotten: only applies beside subject (what readers get for a"
                + " forgotten subject's records)", error("{name: r, forgotten: null, " + CRYPTO + "}"));
        assertEquals("mesh.yaml:2:50: http.rules[0].subject.name: header names must be lower-case HTTP tokens (got"
                + " \"X-Id\")", error("{name: r, subject: {from: header, name: X-Id}, " + CRYPTO + "}"));
        assertEquals("mesh.yaml:2:59: http.rules[0].subject.scope: must be 1-249 characters of A-Z a-z 0-9 . _ - * ?"
                + " (got \"a/b\")", error("{name: r, subject: {from: header, name: x, scope: a/b}, " + CRYPTO + "}"));
        assertEquals("mesh.yaml:2:59: http.rules[0].subject.pointer: only applies with from: body",
                error("{name: r, subject: {from: header, name: x, pointer: /a}, " + CRYPTO + "}"));
        assertEquals("mesh.yaml:2:35: http.rules[0].subject.pointer: required field is missing (the JSON Pointer of"
                + " the body field that holds the subject id)", error("{name: r, subject: {from: body}, " + CRYPTO + "}"));
    }
}
