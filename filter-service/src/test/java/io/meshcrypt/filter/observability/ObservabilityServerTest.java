package io.meshcrypt.filter.observability;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The /metrics, /healthz and /readyz endpoint under hostile input: garbage, oversized lines and headers, bodies,
 * unknown paths and methods, slow and idle connections, more connections than it takes. Each is answered with a 4xx or
 * closed, and the next real scrape is served, promptly.
 */
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ObservabilityServerTest {
    private static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(1);
    private static final int MAX_CONNECTIONS = 8;
    private static final String METRICS = "# TYPE meshcrypt_ready gauge\nmeshcrypt_ready 1.0\n";
    /** A real scrape is served within this, hostile connections or not. */
    private static final Duration PROMPT = Duration.ofSeconds(3);

    private final List<Socket> sockets = new ArrayList<>();
    private ObservabilityServer server;

    @BeforeEach
    void start() throws IOException {
        Readiness readiness = new Readiness(null);
        readiness.serving();
        server = ObservabilityServer.start(new InetSocketAddress("127.0.0.1", 0), () -> METRICS, readiness,
                new ObservabilityServer.Limits(MAX_CONNECTIONS, REQUEST_TIMEOUT));
    }

    @AfterEach
    void stop() throws IOException {
        for (Socket socket : sockets) {
            socket.close();
        }
        server.close();
    }

    @Test
    void givenGarbageInsteadOfHttp_whenSent_thenAnswered400OrClosedAndTheNextScrapeIsServed() throws Exception {
        String answer = exchange(new byte[] {0x16, 0x03, 0x01, 0x00, (byte) 0xa5, 0x01, 0x00, 0x00, 0x0d, 0x0a, 0x0d, 0x0a});
        assertRefused(answer, "400");
        answer = exchange("\u0000\u00ff GET / HTTP/9.9\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
        assertRefused(answer, "400");

        assertScrapeServed();
    }

    @Test
    void givenAnOversizedRequestLine_whenSent_thenAnswered4xxOrClosedAndTheNextScrapeIsServed() throws Exception {
        String answer = exchange(("GET /metrics?" + "a".repeat(100_000) + " HTTP/1.1\r\nHost: x\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));

        assertRefused(answer, "414");
        assertScrapeServed();
    }

    @Test
    void givenOversizedHeaders_whenSent_thenAnswered4xxOrClosedAndTheNextScrapeIsServed() throws Exception {
        String one = exchange(("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + "b".repeat(1 << 20) + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        assertRefused(one, "431");
        String many = exchange(("GET /metrics HTTP/1.1\r\nHost: x\r\n" + "X-H: v\r\n".repeat(20_000) + "\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        assertRefused(many, "431");

        assertScrapeServed();
    }

    @Test
    void givenABodyOrAnotherMethod_whenSent_thenAnswered4xxAndTheNextScrapeIsServed() throws Exception {
        assertEquals("405", status(exchange(request("POST", "/metrics", "Content-Length: 5\r\n", "hello"))));
        assertRefused(exchange(request("PUT", "/metrics", "Content-Length: 100000000\r\n", "x")), "413");
        for (String method : List.of("DELETE", "TRACE", "OPTIONS", "PATCH", "BREW")) {
            assertEquals("405", status(exchange(request(method, "/metrics", "", ""))), method);
        }
        assertRefused(exchange(request("CONNECT", "127.0.0.1:1", "", "")), "405");

        assertScrapeServed();
    }

    @Test
    void givenUnknownPaths_whenRequested_thenAnswered404AndTheRealOnesStillServed() throws Exception {
        for (String path : List.of("/", "/metricsX", "/metrics/", "/readyz/../metrics", "/%00", "/healthz%0d%0aX:%20y", "*")) {
            assertEquals("404", status(exchange(request("GET", path, "", ""))), path);
        }

        assertEquals("200", status(get("/healthz")));
        assertEquals("200", status(get("/readyz")));
        assertScrapeServed();
    }

    @Test
    void givenSlowClientsTricklingHeaders_whenARealScrapeComes_thenItIsServedAndTheSlowOnesAreClosed() throws Exception {
        List<Socket> slow = new ArrayList<>();
        for (int i = 0; i < MAX_CONNECTIONS / 2; i++) {
            Socket socket = connect();
            socket.getOutputStream().write("GET /metrics HTTP/1.1\r\nHost: x\r\n".getBytes(StandardCharsets.US_ASCII));
            slow.add(socket);
        }

        long start = System.nanoTime();
        assertScrapeServed();
        assertTrue(System.nanoTime() - start < PROMPT.toNanos(), "served while the slow clients hold their connections");

        // the slow ones never finish their request: each is closed once the request time is up, trickling or not
        for (Socket socket : slow) {
            try {
                socket.getOutputStream().write("X-Slow: 1\r\n".getBytes(StandardCharsets.US_ASCII));
            } catch (SocketException alreadyClosed) {
                // its time was up already
            }
        }
        for (Socket socket : slow) {
            assertEquals(-1, readOrReset(socket.getInputStream()), "closed without an answer");
        }
    }

    @Test
    void givenMoreConnectionsThanTheLimit_whenOpened_thenTheExcessIsClosedAndScrapesServedOnceTheyGo() throws Exception {
        List<Socket> idle = new ArrayList<>();
        for (int i = 0; i < MAX_CONNECTIONS * 4; i++) {
            idle.add(connect());
        }

        // the excess (the last opened) is closed at once, long before any request time is up
        long start = System.nanoTime();
        int closed = 0;
        for (Socket socket : idle.subList(MAX_CONNECTIONS, idle.size())) {
            socket.setSoTimeout(100);
            try {
                if (socket.getInputStream().read() == -1) {
                    closed++;
                }
            } catch (SocketTimeoutException stillOpen) {
                // not closed (yet)
            } catch (SocketException reset) {
                closed++;
            }
        }
        assertTrue(closed >= MAX_CONNECTIONS * 3 - 1, closed + " of the " + (idle.size() - MAX_CONNECTIONS) + " beyond the limit closed");
        assertTrue(System.nanoTime() - start < REQUEST_TIMEOUT.toNanos(), "closed at once");

        // the idle ones within the limit are closed when their request time is up; then scrapes are served again
        Thread.sleep(REQUEST_TIMEOUT.toMillis() + 500);
        assertScrapeServed();
    }

    @Test
    void givenAKeepAliveClient_whenItScrapesTwiceOnOneConnection_thenBothAreServed() throws Exception {
        Socket socket = connect();
        OutputStream out = socket.getOutputStream();
        for (int i = 0; i < 2; i++) {
            out.write(request("GET", "/metrics", "", ""));
            String head = readHead(socket.getInputStream());
            assertTrue(head.startsWith("HTTP/1.1 200"), head);
            Matcher length = Pattern.compile("(?i)content-length: *([0-9]+)").matcher(head);
            assertTrue(length.find(), head);
            assertEquals(METRICS, new String(socket.getInputStream().readNBytes(Integer.parseInt(length.group(1))),
                    StandardCharsets.UTF_8));
        }
    }

    @Test
    void givenThePortIsTaken_whenAnotherServerStarts_thenItFailsWithAnIOException() {
        Readiness readiness = new Readiness(null);
        assertThrows(IOException.class, () -> ObservabilityServer.start(server.address(), () -> METRICS, readiness));
    }

    // ---- helpers

    private void assertScrapeServed() throws Exception {
        String response = get("/metrics");
        assertEquals("200", status(response), response);
        assertTrue(response.endsWith("\r\n\r\n" + METRICS), response);
        assertTrue(response.toLowerCase(java.util.Locale.ROOT).contains("\r\ncontent-type: text/plain; version=0.0.4"), response);
    }

    /** A GET on a connection of its own (closed after the answer, as a new Prometheus connection would be). */
    private String get(String path) throws IOException {
        try (Socket socket = new Socket()) {
            socket.connect(server.address(), (int) PROMPT.toMillis());
            socket.setSoTimeout((int) PROMPT.toMillis());
            socket.getOutputStream().write(request("GET", path, "Connection: close\r\n", ""));
            return new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static void assertRefused(String answer, String status) {
        assertTrue(answer.isEmpty() || status(answer).equals(status), "closed, or " + status + ": " + answer);
    }

    private static String status(String answer) {
        return answer.length() >= 12 && answer.startsWith("HTTP/1.") ? answer.substring(9, 12) : answer;
    }

    private static byte[] request(String method, String target, String headers, String body) {
        return (method + " " + target + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n" + body).getBytes(StandardCharsets.ISO_8859_1);
    }

    private Socket connect() throws IOException {
        Socket socket = new Socket();
        sockets.add(socket);
        socket.connect(server.address(), (int) PROMPT.toMillis());
        socket.setSoTimeout((int) PROMPT.toMillis() * 2);
        return socket;
    }

    /** Sends {@code bytes} (as much as the server takes) and returns what came back before the close ("" for none). */
    private String exchange(byte[] bytes) throws IOException {
        Socket socket = connect();
        try {
            socket.getOutputStream().write(bytes);
            socket.getOutputStream().flush();
        } catch (SocketException closedWhileSending) {
            // the server closed before taking it all: what it answered, if anything, is still readable
        }
        return readHead(socket.getInputStream());
    }

    /** The status line and headers, or what came before the close or reset. */
    private static String readHead(InputStream in) throws IOException {
        StringBuilder head = new StringBuilder();
        try {
            int c;
            while ((c = in.read()) != -1) {
                head.append((char) c);
                if (head.length() >= 4 && head.substring(head.length() - 4).equals("\r\n\r\n")) {
                    break;
                }
            }
        } catch (SocketException reset) {
            // closed with unread input: a reset
        }
        return head.toString();
    }

    private static int readOrReset(InputStream in) throws IOException {
        try {
            return in.read();
        } catch (SocketException reset) {
            return -1;
        }
    }
}
