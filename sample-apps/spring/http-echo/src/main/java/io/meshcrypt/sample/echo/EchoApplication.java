package io.meshcrypt.sample.echo;

import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.http.HttpHeaders;
import org.springframework.http.ResponseEntity;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestMethod;
import org.springframework.web.bind.annotation.RestController;

import jakarta.servlet.http.HttpServletRequest;

/**
 * An HTTP service behind an Envoy sidecar that answers every request with the body it received, and
 * prints that body, one line per request, for {@code ./meshcrypt demo} to show: what it prints is what
 * the sidecar's rewrite delivered, not what the client sent.
 *
 * <p>Environment: {@code HTTP_PORT} (default 8080), {@code HTTP_ADDRESS} (default 127.0.0.1).
 */
@SpringBootApplication
@RestController
public class EchoApplication {

    /**
     * One write per line (up to 64 KiB): System.out's 128-byte buffer can split a line into two writes, and a
     * reader tailing several logs at once (the demo's view) may then see half a line.
     */
    private static final PrintStream LINES = new PrintStream(
            new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false, StandardCharsets.UTF_8);

    public static void main(String[] args) {
        SpringApplication.run(EchoApplication.class, args);
    }

    @RequestMapping(path = "/**", method = {RequestMethod.GET, RequestMethod.POST, RequestMethod.PUT})
    ResponseEntity<String> echo(HttpServletRequest request,
                                @RequestHeader(value = HttpHeaders.CONTENT_TYPE, required = false) String contentType,
                                @RequestBody(required = false) String body) {
        String received = body == null ? "" : body;
        // one line per request even when the body has line breaks
        synchronized (LINES) {
            LINES.printf("received %s %s %s%n", request.getMethod(), request.getRequestURI(), received.replace("\n", "\\n"));
            LINES.flush();
        }
        return ResponseEntity.ok()
                .header(HttpHeaders.CONTENT_TYPE, contentType == null ? "text/plain" : contentType)
                .body(received);
    }
}
