package io.meshcrypt.e2e.bridge;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TCP proxy on loopback between the bridge and the filter-service, that a test can stall (the filter-service's
 * answers held, connections kept open: it has the chunks and has answered, the bridge does not hear back) or make reset
 * every connection it carries (RST, not FIN): the faults a slow or broken filter-service or network cause. One virtual
 * thread per direction per connection.
 */
final class BridgeFaultProxy implements AutoCloseable {

    private final ServerSocket server;
    private final int target;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();
    private final AtomicInteger accepted = new AtomicInteger();
    private volatile boolean answersStalled;

    BridgeFaultProxy(int targetPort) throws IOException {
        this.target = targetPort;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread.ofVirtual().name("fault-proxy-accept").start(this::accept);
    }

    int port() {
        return server.getLocalPort();
    }

    /** Connections accepted so far (the bridge opens one HTTP/2 connection per filter config, again after a loss). */
    int accepted() {
        return accepted.get();
    }

    /** While stalled, the filter-service's bytes are held, not forwarded to the bridge; unstalling forwards them. */
    void stallAnswers(boolean stall) {
        answersStalled = stall;
    }

    /** Resets every connection open now, both sides (SO_LINGER 0: an RST, as a crashed peer or a middlebox sends). */
    void resetAll() {
        for (Socket s : open) {
            try {
                s.setSoLinger(true, 0);
                s.close();
            } catch (IOException ignored) {
                // already gone
            }
        }
    }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket downstream = server.accept();
                accepted.incrementAndGet();
                Socket upstream;
                try {
                    upstream = new Socket(InetAddress.getLoopbackAddress(), target);
                } catch (IOException e) {
                    close(downstream); // the filter-service refused: so does the proxy
                    continue;
                }
                downstream.setTcpNoDelay(true);
                upstream.setTcpNoDelay(true);
                open.add(downstream);
                open.add(upstream);
                Thread.ofVirtual().start(() -> pump(downstream, upstream, false));
                Thread.ofVirtual().start(() -> pump(upstream, downstream, true));
            } catch (IOException e) {
                // the proxy was closed
            }
        }
    }

    private void pump(Socket from, Socket to, boolean answers) {
        byte[] buffer = new byte[64 * 1024];
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            for (int n; (n = in.read(buffer)) >= 0; ) {
                while (answers && answersStalled && !to.isClosed()) {
                    Thread.sleep(10);
                }
                out.write(buffer, 0, n);
            }
        } catch (IOException | InterruptedException e) {
            // one side closed or reset: close both below
        } finally {
            close(from);
            close(to);
        }
    }

    private void close(Socket s) {
        open.remove(s);
        try {
            s.close();
        } catch (IOException ignored) {
            // closing anyway
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        open.forEach(this::close);
    }
}
