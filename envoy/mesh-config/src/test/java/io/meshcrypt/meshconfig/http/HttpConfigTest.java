package io.meshcrypt.meshconfig.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.PolicyReader;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.transform.FieldOp;
import io.meshcrypt.meshconfig.transform.JsonPointer;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.yaml.ConfigFields;
import io.meshcrypt.meshconfig.yaml.YamlTree;
import io.meshcrypt.meshconfig.yaml.YamlTree.Entry;
import io.meshcrypt.meshconfig.yaml.YamlTree.Mapping;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The {@code http:} section and field-level {@code policy.encrypt} entries. */
class HttpConfigTest {

    @TempDir
    Path dir;

    @Test
    void givenFullHttpSectionAndFieldPolicy_whenLoaded_thenEverythingIsCompiled() throws Exception {
        Policies config = read(write("""
                policy:
                  encrypt:
                    - audit
                    - {topic: "orders*", fields: ["/card/number", "/a~1b"]}
                http:
                  rules:
                    - name: orders
                      match: {methods: [POST, PUT], path: /orders, pathRegex: "/orders/[0-9]+", contentType: [application/json, "text/*"], body: card}
                      binding: orders
                      request:
                        fields:
                          - encrypt: /card/number
                            required: true
                          - redact: /cvv
                          - replace: /email
                            pattern: "^[^@]+"
                            with: "x"
                          - set: /meta
                            value: {v: 1.50, tags: [a, null, true]}
                        body: [{pattern: "(a)", with: "$1"}]
                        headers: {set: {x-a: b}, remove: [x-c]}
                        onInvalid: pass
                      response:
                        fields: [{decrypt: /card/number}]
                """));

        assertEquals(List.of(TopicRule.wholeValue("audit"),
                new TopicRule("orders*", List.of(JsonPointer.parse("/card/number"), JsonPointer.parse("/a~1b")))), config.encryption().rules());
        HttpRule rule = config.http().rules().getFirst();
        assertEquals(Set.of("POST", "PUT"), rule.match().methods());
        assertEquals("/orders", rule.match().pathPrefix());
        assertEquals(List.of("application/json", "text/*"), rule.match().contentTypes());
        assertEquals("orders", rule.binding());
        RuleSide request = rule.request();
        assertEquals(new FieldOp.Encrypt(JsonPointer.parse("/card/number"), true), request.fields().get(0));
        assertEquals(new FieldOp.Redact(JsonPointer.parse("/cvv"), "[redacted]", false), request.fields().get(1));
        JsonNodeFactory f = JsonNodeFactory.withExactBigDecimals(true);
        assertEquals(f.objectNode().<com.fasterxml.jackson.databind.node.ObjectNode>set("v", f.numberNode(new BigDecimal("1.50")))
                .set("tags", f.arrayNode().add("a").add(f.nullNode()).add(true)), ((FieldOp.Set) request.fields().get(3)).value());
        assertEquals(Map.of("x-a", "b"), request.headers().set());
        assertEquals(RuleSide.OnInvalid.PASS, request.onInvalid());
        assertEquals(RuleSide.OnInvalid.REJECT, rule.response().onInvalid());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            unknown http key       | http:\\n  rulez: []                                                              | 2:3 | http.rulez: unknown field (expected one of rules)
            rule without name      | http:\\n  rules:\\n    - match: {path: /a}                                      | 3:7 | http.rules[0].name: required field is missing
            unknown rule key       | http:\\n  rules:\\n    - name: a\\n      matc: {}                              | 4:7 | http.rules[0].matc: unknown field
            bad regex              | http:\\n  rules:\\n    - name: a\\n      match: {body: '('}                    | 4:15 | http.rules[0].match.body: invalid regular expression
            path without slash     | http:\\n  rules:\\n    - name: a\\n      match: {path: orders}                 | 4:15 | http.rules[0].match.path: must be a path prefix starting with /
            lower-case method      | http:\\n  rules:\\n    - name: a\\n      match: {methods: [post]}              | 4:15 | http.rules[0].match.methods: must be upper-case HTTP methods
            encrypt without binding| http:\\n  rules:\\n    - name: a\\n      request: {fields: [{encrypt: /x}]}    | 3:7 | http.rules[0].binding: required when the rule encrypts
            two ops in one entry   | http:\\n  rules:\\n    - name: a\\n      request: {fields: [{encrypt: /x, redact: /y}]} | 4:26 | http.rules[0].request.fields[0]: must name exactly one of
            bad pointer            | http:\\n  rules:\\n    - name: a\\n      request: {fields: [{redact: x}]}      | 4:35 | http.rules[0].request.fields[0].redact: a JSON Pointer must be empty or start with '/'
            root pointer           | http:\\n  rules:\\n    - name: a\\n      request: {fields: [{redact: ''}]}     | 4:35 | http.rules[0].request.fields[0].redact: must address a field
            bad group reference    | http:\\n  rules:\\n    - name: a\\n      request: {body: [{pattern: a, with: $1}]} | 4:37 | http.rules[0].request.body[0].with: invalid replacement
            reserved header        | http:\\n  rules:\\n    - name: a\\n      request: {headers: {set: {content-length: '1'}}} | 4:33 | http.rules[0].request.headers.set.content-length: header content-length is managed
            onInvalid unknown      | http:\\n  rules:\\n    - name: a\\n      request: {onInvalid: drop}           | 4:17 | http.rules[0].request.onInvalid: must be one of reject, pass (got "drop")
            duplicate rule name    | http:\\n  rules:\\n    - name: a\\n    - name: a                             | 4:7 | http.rules[1].name: duplicate rule name "a"
            field entry no fields  | policy:\\n  encrypt:\\n    - {topic: orders}                                    | 3:7 | policy.encrypt[0].fields: required field is missing
            field entry bad key    | policy:\\n  encrypt:\\n    - {topic: orders, fields: [/a], mode: x}            | 3:37 | policy.encrypt[0].mode: unknown field
            field entry empty list | policy:\\n  encrypt:\\n    - {topic: orders, fields: []}                       | 3:23 | policy.encrypt[0].fields: must be a non-empty list of JSON Pointers
            """)
    void givenInvalidHttpOrFieldConfig_whenLoaded_thenMessageNamesLineColumnAndField(String name, String yaml, String at,
                                                                                     String message) throws Exception {
        Path file = write(yaml.replace("\\n", "\n") + "\n");

        ConfigException e = assertThrows(ConfigException.class, () -> read(file));

        String expected = file + ":" + at + ": " + message;
        assertTrue(e.getMessage().startsWith(expected), "expected prefix <" + expected + "> but was <" + e.getMessage() + ">");
    }

    /** The policy: and http: sections, as policy.yaml and the mesh file have them (either may be absent here). */
    private static Policies read(Path file) throws Exception {
        ConfigFields fields = new ConfigFields(file);
        PolicyReader policies = new PolicyReader(fields);
        Mapping root = fields.mapping(YamlTree.parse(file.toString(), Files.readAllBytes(file)), "");
        Entry policy = root.entries().get("policy");
        Entry http = root.entries().get("http");
        return new Policies(policy == null ? EncryptionPolicy.encryptAll() : policies.policy(policy),
                http == null ? HttpRules.NONE : new HttpConfigReader(fields).http(http));
    }

    private Path write(String yaml) throws Exception {
        Path file = dir.resolve("policy.yaml");
        Files.writeString(file, yaml);
        return file;
    }
}
