package io.meshcrypt.filter.http;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Log lines name a request by method and path, never by its query string. */
class HttpLogTargetTest {

    @Test
    void givenPathWithQuery_whenLogged_thenQueryLeftOut() {
        assertEquals("POST /api/users", HttpExchange.logTarget("POST", "/api/users?token=SECRET&email=a@b.c"));
    }

    @Test
    void givenPathWithFragmentOrEmptyQuery_whenLogged_thenLeftOut() {
        assertEquals("GET /a", HttpExchange.logTarget("GET", "/a#frag?x=1"));
        assertEquals("GET /a", HttpExchange.logTarget("GET", "/a?"));
        assertEquals("GET /a/b", HttpExchange.logTarget("GET", "/a/b"));
    }

    @Test
    void givenControlCharactersInPath_whenLogged_thenEscapedSoNoLineCanBeForged() {
        assertEquals("GET /a\\x0d\\x0aWARN forged", HttpExchange.logTarget("GET", "/a\r\nWARN forged"));
    }

    @Test
    void givenVeryLongPath_whenLogged_thenCut() {
        String logged = HttpExchange.logTarget("GET", "/" + "x".repeat(1000));

        assertEquals("GET /" + "x".repeat(199) + "...", logged);
    }
}
