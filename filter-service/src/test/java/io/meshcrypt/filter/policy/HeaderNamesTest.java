package io.meshcrypt.filter.policy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.policy.TopicRule;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.regex.Pattern;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

class HeaderNamesTest {

    private static boolean matches(HeaderNames names, String name) {
        byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
        // In the middle of a larger array, as a record batch hands names out.
        byte[] batch = new byte[bytes.length + 6];
        System.arraycopy(bytes, 0, batch, 3, bytes.length);
        ByteBuffer view = ByteBuffer.wrap(batch, 3, bytes.length);
        boolean result = names.matches(view);
        assertEquals(3, view.position(), "the view is not moved");
        return result;
    }

    @Test
    void givenExactNamesAndGlobs_whenMatched_thenExactIsExactAndGlobsFollowTopicPatternSyntax() {
        HeaderNames names = HeaderNames.of(List.of("user-id", "x-pii-*", "trace-?", "*.secret"));

        assertTrue(matches(names, "user-id"));
        assertFalse(matches(names, "user-id2"), "exact names match exactly");
        assertFalse(matches(names, "User-Id"), "case-sensitive, as Kafka header keys are");
        assertTrue(matches(names, "x-pii-"));
        assertTrue(matches(names, "x-pii-email"));
        assertTrue(matches(names, "trace-é"), "? is one character, also a two-byte one");
        assertFalse(matches(names, "trace-ab"));
        assertFalse(matches(names, "trace-"));
        assertTrue(matches(names, "db.secret"));
        assertTrue(matches(names, ".secret"));
        assertFalse(matches(names, "db.secrets"));
        assertFalse(matches(names, ""));
    }

    @Test
    void givenNoPatterns_whenBuilt_thenNoneWhichIsEmpty() {
        assertSame(HeaderNames.NONE, HeaderNames.of(List.of()));
        assertTrue(HeaderNames.NONE.isEmpty());
        assertFalse(matches(HeaderNames.NONE, "user-id"));
    }

    @Test
    void givenRuleWithHeaders_whenPlanResolved_thenPlanListsThemAndOtherTopicsNone() {
        EncryptionPolicy policy = EncryptionPolicy.ofRules(List.of(
                new TopicRule("users", List.of(), false, null, null, TopicRule.Others.CIPHERTEXT, java.util.Map.of(),
                        List.of("user-id")), TopicRule.wholeValue("*")), EncryptionPolicy.Unmatched.PASSTHROUGH);

        assertEquals(List.of("user-id"), TopicPlan.resolve(policy, "users").headers().patterns());
        assertSame(HeaderNames.NONE, TopicPlan.resolve(policy, "orders").headers());
    }

    /** The byte matcher agrees with the regex the topic patterns compile to, for any glob and name. */
    @Property(tries = 2000)
    void givenAnyGlobAndName_whenMatched_thenSameAnswerAsTheTopicPatternRegex(@ForAll("globs") String glob,
                                                                            @ForAll("names") String name) {
        boolean expected = Pattern.compile(EncryptionPolicy.regexOfGlob(glob), Pattern.DOTALL).matcher(name).matches();

        assertEquals(expected, matches(HeaderNames.of(List.of(glob)), name), glob + " vs " + name);
    }

    @Provide
    Arbitrary<String> globs() {
        return Arbitraries.strings().withChars('a', 'b', '*', '?', 'é', '.').ofMinLength(1).ofMaxLength(6);
    }

    @Provide
    Arbitrary<String> names() {
        return Arbitraries.strings().withChars('a', 'b', 'é', '.', '€').ofMaxLength(8);
    }
}
