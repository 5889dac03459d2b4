package io.meshcrypt.filter.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy.Unmatched;
import io.meshcrypt.meshconfig.policy.TopicDecision;
import io.meshcrypt.meshconfig.policy.TopicRule;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code policy.decryptOnly}: which unencrypted topics are still decrypted on fetch, and how the section is read. */
class DecryptOnlyPolicyTest {
    @TempDir
    Path dir;

    @Test
    void givenEncryptAndDecryptOnlyGlobs_whenAsked_thenOnlyThoseTopicsAreDecryptedOnFetch() {
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("pay-*")), List.of("old-*"),
                Unmatched.PASSTHROUGH);

        assertTrue(policy.decryptsOnFetch("pay-eu"));
        assertTrue(policy.decryptsOnFetch("old-orders"));
        assertEquals(TopicDecision.PASSTHROUGH, policy.decide("old-orders"), "decryptOnly never encrypts on produce");
        assertFalse(policy.decryptsOnFetch("public"));
        assertFalse(policy.decryptsOnFetch("old"));
    }

    @Test
    void givenNoDecryptOnly_whenUnmatchedTopicAsked_thenNotDecryptedOnFetch() {
        EncryptionPolicy policy = EncryptionPolicy.of(List.of("secret"), Unmatched.REJECT);

        assertFalse(policy.decryptsOnFetch("public"));
        assertTrue(policy.decryptsOnFetch("secret"));
        assertEquals(List.of(), policy.decryptOnly());
    }

    @Test
    void givenPoliciesDifferingOnlyInDecryptOnly_whenCompared_thenNotEqualAndShownInToString() {
        EncryptionPolicy with = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("a")), List.of("b"), Unmatched.PASSTHROUGH);
        EncryptionPolicy without = EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("a")), Unmatched.PASSTHROUGH);

        assertNotEquals(with, without);
        assertEquals("EncryptionPolicy{encrypt=[a], decryptOnly=[b], unmatched=passthrough}", with.toString());
        assertEquals("EncryptionPolicy{encrypt=[a], unmatched=passthrough}", without.toString());
        assertThrows(IllegalArgumentException.class,
                () -> EncryptionPolicy.ofRules(List.of(TopicRule.wholeValue("a")), List.of(""), Unmatched.PASSTHROUGH));
    }

    @Test
    void givenPolicySectionWithDecryptOnly_whenRead_thenGlobsAreInThePolicy() throws Exception {
        EncryptionPolicy policy = read("""
                policy:
                  encrypt: [pay-*]
                  decryptOnly: [legacy-*, audit]
                """);

        assertEquals(List.of("legacy-*", "audit"), policy.decryptOnly());
        assertTrue(policy.decryptsOnFetch("audit"));
    }

    @Test
    void givenDecryptOnlyThatIsNotAList_whenRead_thenErrorNamesFileLineAndColumn() {
        ConfigException e = assertThrows(ConfigException.class, () -> read("""
                policy:
                  encrypt: [pay-*]
                  decryptOnly: legacy-*
                """));

        assertEquals(dir.resolve("mesh.yaml") + ":3:3: policy.decryptOnly: must be a list of topic patterns whose old"
                + " envelopes are still decrypted on fetch (got \"legacy-*\")", e.getMessage());
    }

    @Test
    void givenDecryptOnlyWithEmptyOrNonStringItem_whenRead_thenErrorNamesTheItem() {
        ConfigException empty = assertThrows(ConfigException.class, () -> read("""
                policy:
                  decryptOnly: [a, ""]
                """));
        ConfigException number = assertThrows(ConfigException.class, () -> read("""
                policy:
                  decryptOnly:
                    - 7
                """));

        assertEquals(dir.resolve("mesh.yaml") + ":2:20: policy.decryptOnly[1]: must not be empty", empty.getMessage());
        assertEquals(dir.resolve("mesh.yaml") + ":3:7: policy.decryptOnly[0]: must be a topic pattern string (got 7)",
                number.getMessage());
    }

    @Test
    void givenMisspelledPolicyKey_whenRead_thenUnknownFieldListsDecryptOnly() {
        ConfigException e = assertThrows(ConfigException.class, () -> read("""
                policy:
                  decryptonly: [a]
                """));

        assertEquals(dir.resolve("mesh.yaml") + ":2:3: policy.decryptonly: unknown field (expected one of encrypt,"
                + " decryptOnly, unmatched)", e.getMessage());
    }

    private EncryptionPolicy read(String yaml) throws Exception {
        Path file = dir.resolve("mesh.yaml");
        Files.writeString(file, yaml);
        return FilterConfig.readPolicies(file).encryption();
    }
}
