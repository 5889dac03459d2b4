package io.meshcrypt.e2e.tls;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A TCP relay in front of a broker listener that keeps the first bytes each connection sent towards the broker: what a
 * wire tap between the sidecar and the broker would see. It relays unchanged, so a TLS handshake through it fails or
 * succeeds on the certificates alone.
 */
final class RecordingRelay implements Closeable {
    /** Enough for a ClientHello and, were the sidecar to fall back to plaintext, the first Kafka requests. */
    private static final int KEPT = 64 * 1024;

    private final ServerSocket server;
    private final int target;
    private final List<ByteArrayOutputStream> upstream = new CopyOnWriteArrayList<>();
    private final List<Socket> open = new CopyOnWriteArrayList<>();

    RecordingRelay(int port, int target) throws IOException {
        this.target = target;
        server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
        Thread.ofPlatform().daemon().name("relay-" + port).start(this::accept);
    }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket in = server.accept();
                Socket out = new Socket(InetAddress.getLoopbackAddress(), target);
                open.add(in);
                open.add(out);
                ByteArrayOutputStream sent = new ByteArrayOutputStream();
                upstream.add(sent);
                pump(in, out, sent);
                pump(out, in, null);
            } catch (IOException closed) {
                return;
            }
        }
    }

    private static void pump(Socket from, Socket to, ByteArrayOutputStream record) {
        Thread.ofPlatform().daemon().start(() -> {
            byte[] buffer = new byte[8192];
            try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
                for (int n; (n = in.read(buffer)) >= 0; ) {
                    if (record != null) {
                        synchronized (record) {
                            record.write(buffer, 0, Math.min(n, Math.max(0, KEPT - record.size())));
                        }
                    }
                    out.write(buffer, 0, n);
                }
            } catch (IOException ignored) {
                // either side closed
            } finally {
                closeQuietly(from);
                closeQuietly(to);
            }
        });
    }

    /** The first bytes of every connection so far, towards the broker, in the order they were accepted. */
    List<byte[]> sentTowardsBroker() {
        return upstream.stream().map(b -> {
            synchronized (b) {
                return b.toByteArray();
            }
        }).toList();
    }

    @Override
    public void close() {
        closeQuietly(server);
        open.forEach(RecordingRelay::closeQuietly);
    }

    private static void closeQuietly(Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }
}
