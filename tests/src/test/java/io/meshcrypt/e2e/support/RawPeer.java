package io.meshcrypt.e2e.support;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * A scripted hostile client on a raw socket: writes whatever bytes a test gives it and reports whether and when the
 * other side (Envoy, on the filter-service's word) closed the connection.
 */
public final class RawPeer implements AutoCloseable {

    private final Socket socket;
    private final long openedAt = System.nanoTime();

    public RawPeer(int port) throws IOException {
        socket = new Socket(InetAddress.getLoopbackAddress(), port);
        socket.setTcpNoDelay(true);
    }

    /** Writes {@code bytes}; false if the connection was already closed by the other side. */
    public boolean send(byte[] bytes) {
        try {
            socket.getOutputStream().write(bytes);
            socket.getOutputStream().flush();
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Reads one response frame (size-prefixed); null if the connection closed first or nothing came in time. */
    public ByteBuffer readFrame(Duration timeout) throws IOException {
        socket.setSoTimeout((int) timeout.toMillis());
        try {
            DataInputStream in = new DataInputStream(socket.getInputStream());
            int size = in.readInt();
            byte[] frame = new byte[size];
            in.readFully(frame);
            return ByteBuffer.wrap(frame);
        } catch (SocketTimeoutException | java.io.EOFException | SocketException e) {
            return null;
        }
    }

    /**
     * Waits up to {@code timeout} for the other side to close (EOF or reset), discarding anything it sends meanwhile.
     * Returns how long after this peer connected the close came, or null if the connection is still open.
     */
    public Duration awaitClosed(Duration timeout) throws IOException {
        long deadline = System.nanoTime() + timeout.toNanos();
        InputStream in = socket.getInputStream();
        byte[] sink = new byte[8192];
        while (true) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return null;
            }
            socket.setSoTimeout((int) Math.max(1, left / 1_000_000));
            try {
                if (in.read(sink) < 0) {
                    return Duration.ofNanos(System.nanoTime() - openedAt);
                }
            } catch (SocketTimeoutException e) {
                return null;
            } catch (SocketException e) {
                return Duration.ofNanos(System.nanoTime() - openedAt); // reset
            }
        }
    }

    /**
     * Sends {@code head} and then {@code chunk} every {@code every} until the other side closes or {@code max} passes.
     * Returns the time from connect to the close, or null if it never closed.
     */
    public Duration trickle(byte[] head, byte[] chunk, Duration every, Duration max) throws IOException {
        if (!send(head)) {
            return Duration.ofNanos(System.nanoTime() - openedAt);
        }
        long deadline = System.nanoTime() + max.toNanos();
        while (System.nanoTime() < deadline) {
            Duration closed = awaitClosed(every);
            if (closed != null) {
                return closed;
            }
            if (!send(chunk)) {
                return Duration.ofNanos(System.nanoTime() - openedAt);
            }
        }
        return null;
    }

    @Override
    public void close() throws IOException {
        socket.close();
    }
}
