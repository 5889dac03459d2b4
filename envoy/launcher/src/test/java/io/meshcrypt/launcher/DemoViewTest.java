package io.meshcrypt.launcher;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class DemoViewTest {

    /** What the awk renderer of the former shell launcher printed for the same lines at COLUMNS=100. */
    private static final String EXPECTED = """
            go: {"from":"go","seq":1,"card" |                                 |
            :"4111-1111-1111-1111"}         |                                 |
                                            | spring: {"from":"go","seq":1,"c |
                                            | ard":"4111-1111-1111-1111"} and |
                                            |  a very long tail that goes on  |
                                            | and on and on and on and on a.. |
                                            |                                 | broker: node-2 [meshcrypt envel
                                            |                                 | ope v1] 89 bytes: 00 4d 43 45 0
                                            |                                 | 1
            http client: POST /orders ssn 1 |                                 |
            23-45-6789                      |                                 |
                                            |                                 | back at http client: 200 {"card
                                            |                                 | ":{"number":"4111"}}
            """;

    @Test
    void givenAppLogLines_whenRenderedAt100Columns_thenTheRowsAreByteForByteTheFormerView() {
        DemoView view = new DemoView(100);
        List<String> rows = new ArrayList<>();
        rows.addAll(view.rows("go-producer", "sent {\"from\":\"go\",\"seq\":1,\"card\":\"4111-1111-1111-1111\"}"));
        rows.addAll(view.rows("go-producer", "noise line"));
        rows.addAll(view.rows("spring-consumer", "received {\"from\":\"go\",\"seq\":1,\"card\":\"4111-1111-1111-1111\"} and a very long"
                + " tail that goes on and on and on and on and on and on and on and on and on and on and on and on and on"));
        rows.addAll(view.rows("broker-tap", "held node-2 [meshcrypt envelope v1] 89 bytes: 00 4d 43 45 01"));
        rows.addAll(view.rows("http-client", "sent POST /orders ssn 123-45-6789"));
        rows.addAll(view.rows("http-client", "got 200 {\"card\":{\"number\":\"4111\"}}"));

        assertEquals(EXPECTED, String.join("\n", rows) + "\n");
    }

    @Test
    void givenWidth100_whenHeaderRendered_thenTitlesArePaddedToTheColumnWidthAndTheRuleSpansAllThree() {
        DemoView view = new DemoView(100);

        assertEquals(List.of(
                "SENT by the apps (plaintext)    | RECEIVED by the apps (via Envoy) | AT REST in the broker / back at the HTTP client",
                "-".repeat(99)), view.header());
    }

    @Test
    void givenANarrowTerminal_whenViewCreated_thenEachColumnKeepsAtLeast30Characters() {
        assertEquals(30, new DemoView(40).columnWidth());
        assertEquals(58, new DemoView(180).columnWidth());
    }

    @Test
    void givenALineFromAnotherApp_whenRendered_thenNoRow() {
        DemoView view = new DemoView(180);

        assertEquals(List.of(), view.rows("http-echo", "sent something"));
        assertEquals(List.of(), view.rows("broker-tap", "received x"));
    }

    @Test
    void givenTheMeshSummary_whenRendered_thenOneRowAcrossTheColumnsCutToTheViewsWidth() {
        DemoView view = new DemoView(40); // 3 columns of 30 and 2 separators: 96 characters
        String line = "mesh: 1,204 records encrypted, 1,198 decrypted, 0 denied · filter-service ready · 3 Envoys on 7-1a2b3c4d";

        assertEquals(">> mesh: 1,204 records encrypted, 1,198 decrypted, 0 denied · filter-service ready · 3 Envoys ..", view.summary(line));
        assertEquals(">> mesh: 1 records encrypted", new DemoView(180).summary("mesh: 1 records encrypted"));
    }
}
