package io.meshcrypt.filter.crypto;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How many records one key of a version-1 keyset may still encrypt. AES-GCM with random 96-bit nonces is safe for at
 * most 2^32 encryptions per key (NIST SP 800-38D, 8.3); version 1 encrypts every record under the keyset's primary key,
 * so that key's count must survive restarts. Version 2 needs none of this: its data keys are replaced long before
 * ({@code keys.dek.maxRecords}).
 *
 * <p>The count lives in a small text file next to the keyset ({@code <keyset>.encryptions}: one line per key id,
 * "id count", every key ever counted), shared by every process that uses the file. Records are not written one by one:
 * a process claims a block of counts (default 2^20) by raising the file's count under a lock file, and encrypts that many
 * before it needs the file again. The claim of the next block starts in the background when half of the current one is
 * used, so the connection threads that encrypt only count in memory; only the very first record, and a thread that
 * outruns the background claim, write the file themselves (one small write and fsync per block). A block claimed and not
 * used (a restart, a rotation) is lost, so the file overstates the count by at most two blocks per restart: 2^21 of 2^32.
 *
 * <p>Fails closed: past the limit, or when the file cannot be read or written, {@link #take} throws and nothing is
 * encrypted. A warning is logged once when the count passes {@code warnAt}. Deleting the file resets the count, which
 * this class cannot tell from a new keyset: keep it with the keyset. Replicas that each hold a copy of the keyset count
 * separately; their sum is what the limit is about (prefer version 2 there). Thread-safe.
 *
 * <p>The limits are {@link Settings} of the constructor (tests lower them), not a config key: a lower limit would only
 * stop encrypting sooner, and the way on is the same either way (rotate the keyset, or version 2).
 */
public final class NonceBudget {
    private static final Logger log = LoggerFactory.getLogger(NonceBudget.class);

    /** NIST SP 800-38D's bound for random 96-bit IVs: at most 2^32 invocations of the authenticated encryption. */
    public static final long NIST_RANDOM_NONCE_LIMIT = 1L << 32;
    /** The file next to a keyset that holds its keys' counts. */
    public static final String FILE_SUFFIX = ".encryptions";

    /** Claims in the files of this JVM are serialized here: a JVM may not hold two locks on one lock file. */
    private static final ReentrantLock FILE_CLAIMS = new ReentrantLock();
    private static final ExecutorService CLAIMS_AHEAD = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "nonce-budget");
        t.setDaemon(true);
        return t;
    });

    /**
     * @param maxRecords records the key may encrypt in all, at most {@link #NIST_RANDOM_NONCE_LIMIT}
     * @param warnAt count past which a warning is logged (once per process)
     * @param block counts claimed from the file at a time
     */
    public record Settings(long maxRecords, long warnAt, long block) {
        public Settings {
            if (maxRecords < 1 || maxRecords > NIST_RANDOM_NONCE_LIMIT) {
                throw new IllegalArgumentException("maxRecords must be 1 to 2^32, got " + maxRecords);
            }
            if (warnAt < 1 || block < 2) {
                throw new IllegalArgumentException("warnAt must be positive and block at least 2");
            }
        }

        /** 2^32 records, a warning at 2^31, blocks of 2^20. */
        public static Settings defaults() {
            return new Settings(NIST_RANDOM_NONCE_LIMIT, NIST_RANDOM_NONCE_LIMIT / 2, 1L << 20);
        }
    }

    private final Path file;
    private final int keyId;
    private final Settings settings;
    /** Records this process has taken (counted before encrypting, so a failed encryption counts too). */
    private final AtomicLong taken = new AtomicLong();
    /** Records this process may take: the sum of its claims. */
    private volatile long granted;
    /** Without a file: the count of the key so far (claims made). */
    private long inMemoryCount;
    private final AtomicBoolean claimingAhead = new AtomicBoolean();
    private final AtomicBoolean warned = new AtomicBoolean();
    /** Set once the key has no count left: later calls fail without touching the file. */
    private volatile NonceLimitException exhausted;
    /** Whether the current run of failures to keep the count was logged (once per run, not per record). */
    private final AtomicBoolean failureLogged = new AtomicBoolean();

    private NonceBudget(Path file, int keyId, Settings settings) {
        this.file = file;
        this.keyId = keyId;
        this.settings = settings;
    }

    /** The count of key {@code keyId} of {@code keysetFile}, kept in {@link #countFile} of it. Reads nothing yet. */
    public static NonceBudget persisted(Path keysetFile, int keyId, Settings settings) {
        return new NonceBudget(countFile(keysetFile), keyId, settings);
    }

    /** A count kept in memory only: for keysets without a file (tests, tools); starts at zero. */
    public static NonceBudget inMemory(int keyId, Settings settings) {
        return new NonceBudget(null, keyId, settings);
    }

    /** @return where the counts of {@code keysetFile}'s keys are kept */
    public static Path countFile(Path keysetFile) {
        return keysetFile.resolveSibling(keysetFile.getFileName() + FILE_SUFFIX);
    }

    /**
     * Counts one encryption. Per call: one atomic increment and one volatile read, unless a block ends.
     *
     * @throws NonceLimitException when the key has reached its limit, or its count cannot be kept
     */
    public void take() throws NonceLimitException {
        long n = taken.incrementAndGet();
        long now = granted;
        if (n > now) {
            NonceLimitException spent = exhausted;
            if (spent != null) {
                throw spent;
            }
            claimUntil(n);
        } else if (file != null && n == now - settings.block() / 2) {
            claimAhead();
        }
    }

    /** @return the key this budget counts for */
    public int keyId() {
        return keyId;
    }

    private synchronized void claimUntil(long n) throws NonceLimitException {
        while (n > granted) {
            claim();
        }
    }

    /** Claims the next block now; the caller waits for the file. */
    private synchronized void claim() throws NonceLimitException {
        long previous;
        long size;
        if (file == null) {
            previous = inMemoryCount;
            size = Math.min(settings.block(), settings.maxRecords() - previous);
            if (size <= 0) {
                throw refused(previous);
            }
            inMemoryCount = previous + size;
        } else {
            long[] claimed;
            try {
                claimed = claimInFile();
            } catch (IOException | RuntimeException e) {
                String why = "cannot keep the encryption count of key " + keyIdText() + " in " + file + " (" + e
                        + "): refusing to encrypt with envelope version 1, whose random nonces allow at most "
                        + settings.maxRecords() + " records per key (make the keyset's folder writable, or configure keys:"
                        + " for envelope version 2)";
                if (failureLogged.compareAndSet(false, true)) {
                    log.error(why);
                }
                throw new NonceLimitException(why);
            }
            failureLogged.set(false);
            if (claimed == null) {
                throw refused(settings.maxRecords());
            }
            previous = claimed[0];
            size = claimed[1];
        }
        granted += size;
        long reached = previous + size;
        if (reached >= settings.warnAt() && warned.compareAndSet(false, true)) {
            log.warn("key {} of the version-1 keyset{} has encrypted up to {} records; it may encrypt {} in all (NIST SP"
                            + " 800-38D, random 96-bit nonces), then encrypting stops: rotate the keyset, or configure keys:"
                            + " for envelope version 2, well before", keyIdText(), file == null ? "" : " (" + file + ")",
                    reached, settings.maxRecords());
        }
    }

    /**
     * Waits until every background claim started so far has written its file: a test's temporary folder must not be
     * deleted under a claim still writing into it.
     */
    static void awaitClaimsAhead() throws Exception {
        CLAIMS_AHEAD.submit(() -> { }).get();
    }

    /** Starts claiming the next block in the background, unless a claim is already on its way. */
    private void claimAhead() {
        if (!claimingAhead.compareAndSet(false, true)) {
            return;
        }
        CLAIMS_AHEAD.execute(() -> {
            try {
                claim();
            } catch (NonceLimitException e) {
                // logged by claim(); the connection thread that reaches the end of the block tries again and fails
            } finally {
                claimingAhead.set(false);
            }
        });
    }

    /**
     * Raises the key's count in the file by one block, under the lock file, and replaces the file atomically (a crash
     * leaves the old count or the new one, never a torn file).
     *
     * @return {count before, block size claimed}, or null when the key has no count left
     */
    private long[] claimInFile() throws IOException {
        Path lockFile = file.resolveSibling(file.getFileName() + ".lock");
        FILE_CLAIMS.lock();
        try (FileChannel lockChannel = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock ignored = lockChannel.lock()) {
            Map<Integer, Long> counts = read(file);
            long previous = counts.getOrDefault(keyId, 0L);
            long size = Math.min(settings.block(), settings.maxRecords() - previous);
            if (size <= 0) {
                return null;
            }
            counts.put(keyId, previous + size);
            write(file, counts);
            return new long[] {previous, size};
        } finally {
            FILE_CLAIMS.unlock();
        }
    }

    private NonceLimitException refused(long count) {
        String message = "key " + keyIdText() + " of the version-1 keyset" + (file == null ? "" : " (" + file + ")")
                + " has encrypted " + count + " records, the most its random 96-bit nonces allow (NIST SP 800-38D: "
                + settings.maxRecords() + "); refusing to encrypt more: rotate the keyset (a new primary key starts a new"
                + " count) or configure keys: for envelope version 2";
        if (exhausted == null) {
            log.error(message);
            exhausted = new NonceLimitException(message);
        }
        return exhausted;
    }

    private String keyIdText() {
        return Integer.toUnsignedString(keyId);
    }

    /** "id count" per line; '#' starts a comment. Anything else is an error: a count must never be guessed. */
    static Map<Integer, Long> read(Path file) throws IOException {
        Map<Integer, Long> counts = new LinkedHashMap<>();
        String text;
        try {
            text = Files.readString(file, StandardCharsets.US_ASCII);
        } catch (NoSuchFileException e) {
            return counts;
        }
        int lineNumber = 0;
        for (String line : text.split("\n")) {
            lineNumber++;
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            String[] parts = line.trim().split(" ");
            try {
                if (parts.length != 2 || Long.parseLong(parts[1]) < 0) {
                    throw new NumberFormatException();
                }
                counts.put(Integer.parseUnsignedInt(parts[0]), Long.parseLong(parts[1]));
            } catch (NumberFormatException e) {
                throw new IOException(file + ":" + lineNumber + ": not \"<key id> <count>\"");
            }
        }
        return counts;
    }

    private static void write(Path file, Map<Integer, Long> counts) throws IOException {
        StringBuilder text = new StringBuilder("# meshcrypt: records encrypted (claimed) per key id of the version-1 keyset "
                + file.getFileName().toString().replace(FILE_SUFFIX, "") + "; keep this file with it, never lower a count\n");
        counts.forEach((id, count) -> text.append(Integer.toUnsignedString(id)).append(' ').append(count).append('\n'));
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            out.write(java.nio.ByteBuffer.wrap(text.toString().getBytes(StandardCharsets.US_ASCII)));
            out.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
