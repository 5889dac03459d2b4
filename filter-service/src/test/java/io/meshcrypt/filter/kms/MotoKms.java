package io.meshcrypt.filter.kms;

import io.meshcrypt.testsupport.Prerequisite;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;

/**
 * moto's KMS server ({@code pip install 'moto[server]'}) on a free 127.0.0.1 port, as a real HTTP endpoint for the
 * AWS SDK. {@link #stop()} and {@link #start()} simulate an outage; moto keeps its keys only in memory, so a restart
 * loses them (which is also how a lost key is simulated).
 */
final class MotoKms implements AutoCloseable {
    static final StaticCredentialsProvider CREDENTIALS = StaticCredentialsProvider.create(AwsBasicCredentials.create("test", "test"));
    static final String REGION = "us-east-1";

    private final String binary;
    private final int port;
    private final Path log;
    private Process process;

    MotoKms() throws IOException {
        this.binary = findBinary();
        Prerequisite.require(binary != null, "moto_server is not installed (pip install 'moto[server]')");
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            this.port = s.getLocalPort();
        }
        this.log = Files.createTempFile("moto-", ".log");
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + port);
    }

    AwsKmsKekProvider provider(String keyId) {
        return AwsKmsKekProvider.create(keyId, REGION, endpoint(), CREDENTIALS, Duration.ofSeconds(2));
    }

    void start() throws IOException, InterruptedException {
        process = new ProcessBuilder(binary, "-H", "127.0.0.1", "-p", Integer.toString(port))
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IOException("moto_server exited: " + Files.readString(log));
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException notYet) {
                Thread.sleep(50);
            }
        }
        throw new IOException("moto_server did not listen on port " + port + " within 30 s");
    }

    void stop() throws InterruptedException {
        if (process != null) {
            process.destroy();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor();
            }
            process = null;
        }
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }

    private static String findBinary() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, "moto_server"))) {
                return Path.of(dir, "moto_server").toString();
            }
        }
        return null;
    }
}
