package io.meshcrypt.filter.subjects;

import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.kms.KeyNotReadyException;
import io.meshcrypt.filter.kms.TransientKmsException;
import io.meshcrypt.filter.kms.WrappedDek;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import javax.crypto.spec.SecretKeySpec;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Per-subject keys (crypto-shredding): the in-memory index of the subject-key log ({@link SubjectKeyLog}) that every
 * replica loads whole at start and keeps following, and the single place that creates and forgets subject keys.
 *
 * <p>Log order decides everything, so replicas agree: the first scope secret of a scope wins; the first key record of
 * a subject is the one records are encrypted with (a replica that created a key reads the log back before using any:
 * two replicas creating a key for one subject at once both use the first; the other key is kept, under its own key
 * id, for whatever a replica encrypted before seeing the first); a subject marker (forgotten) is never undone: key
 * records of the subject appended after it are ignored and overwritten with forgotten values by the first replica
 * that sees them, so compaction removes every wrapped key of a forgotten subject.
 *
 * <p>The per-record calls never wait: a scope secret being unwrapped (one KMS call per scope and replica), a subject
 * key being created (rate-limited: {@code newSubjectsPerSecond}) or a key not yet seen in the log throw
 * {@link KeyNotReadyException}, as the DEK paths do. Memory: about 300 bytes per subject (index entry, wrapped key and,
 * once used, its unwrapped key), bounded by {@code maxSubjects}; beyond it new subjects are refused; per thread that
 * asks for keys, a table of recent subject ids (about 300 KB). Once a subject's key is in use the per-record calls
 * allocate nothing of their own (the JCE's HMAC does, for an id not among the recent ones). Thread-safe.
 */
public final class SubjectKeyStore implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SubjectKeyStore.class);
    private static final String SCOPE_CONTEXT = "meshcrypt-subjects:";
    private static final int MAX_TRACKED_MISSES = 10_000;
    /** Scopes (policy entries with subject:) the log may name; secrets of more are skipped. */
    static final int MAX_SCOPES = 1_000;
    /** A KMS-wrapped 32-byte secret is far smaller with every provider; a larger one is foreign. */
    static final int MAX_WRAPPED_SECRET_BYTES = 4096;
    /** Keys of one subject (replicas racing on a new subject make two or three); more are foreign. */
    static final int MAX_KEYS_PER_SUBJECT = 16;
    /** Key records of forgotten subjects queued to be overwritten at once. */
    static final int MAX_PENDING_OVERWRITES = 100_000;
    private static final long SKIP_LOG_INTERVAL_NANOS = TimeUnit.SECONDS.toNanos(10);

    /**
     * @param maxSubjects subjects (live or forgotten) the index holds; a new subject beyond it is refused
     * @param newSubjectsPerSecond sustained rate of new subject keys this replica creates (each is one record appended)
     * @param newSubjectsBurst how many may be created at once
     * @param unknownKeyWait how long a record whose subject key is in no record read yet waits for the log (another
     *     replica's new key) before it fails closed
     */
    public record Settings(int maxSubjects, double newSubjectsPerSecond, int newSubjectsBurst, Duration unknownKeyWait) {
        public static final int DEFAULT_MAX_SUBJECTS = 1_000_000;
        public static final double DEFAULT_NEW_SUBJECTS_PER_SECOND = 1000;
        public static final int DEFAULT_NEW_SUBJECTS_BURST = 2000;
        public static final Duration DEFAULT_UNKNOWN_KEY_WAIT = Duration.ofSeconds(10);

        public Settings {
            if (maxSubjects < 1 || !(newSubjectsPerSecond > 0) || Double.isInfinite(newSubjectsPerSecond)
                    || newSubjectsBurst < 1 || unknownKeyWait.isNegative() || unknownKeyWait.isZero()) {
                throw new IllegalArgumentException("maxSubjects, newSubjectsPerSecond, newSubjectsBurst and unknownKeyWait"
                        + " must be positive");
            }
        }

        public static Settings defaults() {
            return new Settings(DEFAULT_MAX_SUBJECTS, DEFAULT_NEW_SUBJECTS_PER_SECOND, DEFAULT_NEW_SUBJECTS_BURST,
                    DEFAULT_UNKNOWN_KEY_WAIT);
        }
    }

    /** The key one record is encrypted with, and what its envelope names it by. */
    public record SubjectKey(byte[] ref, long keyId, SecretKeySpec key) {
    }

    /** A record for a subject that was forgotten: refused on produce (the marker is permanent). */
    public static final class SubjectForgottenException extends GeneralSecurityException {
        SubjectForgottenException(String message) {
            super(message);
        }
    }

    /** More subjects than {@code maxSubjects}: a new one is refused. */
    public static final class TooManySubjectsException extends GeneralSecurityException {
        TooManySubjectsException(String message) {
            super(message);
        }
    }

    /**
     * A 16-byte subject ref as a map key. The per-record lookups use one mutable probe per thread ({@link #probe()}),
     * which is never put in a map; the keys in the maps are never changed. Comparable: refs come from the key topic,
     * whose writer can choose them to collide in {@code hashCode}, and a map bin of comparable keys stays a balanced
     * tree (log n per lookup, not n).
     */
    static final class Ref implements Comparable<Ref> {
        private static final ThreadLocal<Ref> PROBE = ThreadLocal.withInitial(() -> new Ref(0, 0));
        private long high;
        private long low;

        private Ref(long high, long low) {
            this.high = high;
            this.low = low;
        }

        static Ref of(byte[] ref) {
            return of(ByteBuffer.wrap(ref), 0);
        }

        static Ref of(ByteBuffer b, int at) {
            return new Ref(b.getLong(at), b.getLong(at + 8));
        }

        /** @return this thread's probe, to look up and then forget: never a map key */
        static Ref probe() {
            return PROBE.get();
        }

        Ref set(ByteBuffer b, int at) {
            high = b.getLong(at);
            low = b.getLong(at + 8);
            return this;
        }

        Ref set(byte[] b) {
            high = (long) LONGS.get(b, 0);
            low = (long) LONGS.get(b, 8);
            return this;
        }

        Ref copy() {
            return new Ref(high, low);
        }

        byte[] bytes() {
            return ByteBuffer.allocate(16).putLong(high).putLong(low).array();
        }

        String text() {
            return HexFormat.of().formatHex(bytes());
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Ref r && r.high == high && r.low == low;
        }

        @Override
        public int hashCode() {
            return Long.hashCode(high * 31 + low);
        }

        @Override
        public int compareTo(Ref o) {
            int c = Long.compare(high, o.high);
            return c != 0 ? c : Long.compare(low, o.low);
        }
    }

    private static final VarHandle LONGS = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);
    /** Per thread: the subject ref's HMAC of {@link #forEncryption}. */
    private static final ThreadLocal<byte[]> MAC_OUT = ThreadLocal.withInitial(() -> new byte[ScopeKeys.MAC_LENGTH]);

    private static final class KeyEntry {
        final long keyId;
        final byte[] wrapped;
        volatile SecretKeySpec key;
        /** Once unwrapped: what {@link #forEncryption} returns, the same object each record. */
        volatile SubjectKey forEncryption;

        KeyEntry(long keyId, byte[] wrapped) {
            this.keyId = keyId;
            this.wrapped = wrapped;
        }
    }

    private static final class Subject {
        final String scope;
        final Ref ref;
        volatile boolean forgotten;
        /** The first key in log order: new records are encrypted with it. */
        volatile KeyEntry current;
        /** Copy on write; almost always one entry. */
        volatile KeyEntry[] keys = new KeyEntry[0];

        Subject(String scope, Ref ref) {
            this.scope = scope;
            this.ref = ref;
        }

        KeyEntry key(long keyId) {
            for (KeyEntry k : keys) {
                if (k.keyId == keyId) {
                    return k;
                }
            }
            return null;
        }
    }

    private static final class Scope {
        final String name;
        /** The first secret in log order, once read. */
        volatile SubjectKeyRecords.WrappedSecret chosen;
        volatile ScopeKeys keys;
        volatile CompletableFuture<Void> ready = new CompletableFuture<>();
        volatile boolean working;
        /** A secret this replica wrapped and appended, so it need not be unwrapped again. */
        volatile byte[] ownWrapped;
        volatile byte[] ownSecret;

        Scope(String name) {
            this.name = name;
        }
    }

    private final SubjectKeyLog keyLog;
    private final KekProvider kms;
    private final Settings settings;
    private final LongSupplier nanoTime;
    private final ScheduledThreadPoolExecutor worker;
    private final SecureRandom random = new SecureRandom();
    private final ConcurrentHashMap<String, Scope> scopes = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Ref, Subject> subjects = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<Ref, CompletableFuture<Void>> creating = new ConcurrentHashMap<>();
    /** Key records of forgotten subjects not yet overwritten (record key → nothing): appended once caught up. */
    private final Map<ByteBuffer, Boolean> toOverwrite = new LinkedHashMap<>();
    /** First miss of an unknown subject key, for {@code unknownKeyWait}; bounded. */
    private final ConcurrentHashMap<Ref, Long> misses = new ConcurrentHashMap<>();
    private final AtomicReference<CompletableFuture<Void>> nextApplied = new AtomicReference<>(new CompletableFuture<>());
    private final CompletableFuture<Void> caughtUp;
    private final Object bucketLock = new Object();
    private double tokens;
    private long refilledAt;
    private volatile boolean limitLogged;
    private final AtomicBoolean overwriteScheduled = new AtomicBoolean();
    private final AtomicLong skippedRecords = new AtomicLong();
    private final AtomicLong refusedSubjects = new AtomicLong();
    private volatile long lastSkipLogged;
    /** Told each time a subject is forgotten (after its keys are dropped from the index), on the follower's thread. */
    private final java.util.concurrent.CopyOnWriteArrayList<Runnable> forgetListeners =
            new java.util.concurrent.CopyOnWriteArrayList<>();

    public SubjectKeyStore(SubjectKeyLog keyLog, KekProvider kms, Settings settings) {
        this(keyLog, kms, settings, System::nanoTime);
    }

    SubjectKeyStore(SubjectKeyLog keyLog, KekProvider kms, Settings settings, LongSupplier nanoTime) {
        this.keyLog = Objects.requireNonNull(keyLog, "keyLog");
        this.kms = Objects.requireNonNull(kms, "kms");
        this.settings = Objects.requireNonNull(settings, "settings");
        this.nanoTime = nanoTime;
        this.tokens = settings.newSubjectsBurst();
        this.refilledAt = nanoTime.getAsLong();
        this.worker = new ScheduledThreadPoolExecutor(1, Thread.ofPlatform().daemon().name("meshcrypt-subject-keys").factory());
        worker.setRemoveOnCancelPolicy(true);
        this.caughtUp = keyLog.follow(this::apply).thenRunAsync(this::overwriteForgottenKeys, worker);
    }

    /** @return completes once the log as it was at start has been read (and forgotten keys found in it overwritten) */
    public CompletableFuture<Void> loaded() {
        return caughtUp.copy();
    }

    /** @return subjects in the index, forgotten ones included */
    public int subjects() {
        return subjects.size();
    }

    /**
     * What the store refused, for metrics and health: a growing {@code skippedRecords} is someone writing foreign or
     * malformed records to the key topic; {@code refusedSubjects} counts new subjects refused (from the log or on
     * produce) because the index holds {@code maxSubjects}.
     */
    public record Stats(int subjects, int maxSubjects, long skippedRecords, long refusedSubjects) {
        public boolean full() {
            return subjects >= maxSubjects;
        }
    }

    public Stats stats() {
        return new Stats(subjects.size(), settings.maxSubjects(), skippedRecords.get(), refusedSubjects.get());
    }

    // ---- per record -------------------------------------------------------------------------------------------

    /**
     * Never waits.
     *
     * @param subjectId the subject id's bytes (position..limit, not moved)
     * @return the key to encrypt one record of this subject with
     * @throws KeyNotReadyException while the log is loading, the scope's secret is being made or unwrapped, or the
     *     subject's new key is on its way through the log: retry once its future completes
     * @throws SubjectForgottenException when the subject was forgotten
     * @throws TooManySubjectsException when the subject is new and the index is full
     */
    public SubjectKey forEncryption(String scope, ByteBuffer subjectId) throws GeneralSecurityException {
        ScopeKeys keys = scopeKeys(scope, true);
        RecentIds recent = RecentIds.THREAD.get();
        int slot = recent.slot(subjectId);
        Subject subject = recent.find(slot, keys);
        byte[] mac = null;
        if (subject == null) {
            mac = MAC_OUT.get();
            keys.ref(subjectId, mac);
            subject = subjects.get(Ref.probe().set(mac));
            if (subject != null) {
                recent.put(slot, keys, subject);
            }
        }
        if (subject != null) {
            if (subject.forgotten) {
                throw new SubjectForgottenException("subject " + subject.ref.text() + " of scope " + scope
                        + " was forgotten");
            }
            KeyEntry current = subject.current;
            if (current != null) {
                SubjectKey key = current.forEncryption;
                if (key == null) {
                    unwrapped(keys, subject.ref, current);
                    key = current.forEncryption;
                }
                return key;
            }
        }
        Ref ref = subject != null ? subject.ref : Ref.of(Arrays.copyOf(mac, SubjectKeyRecords.REF_LENGTH));
        throw new KeyNotReadyException("a key for a new subject of scope " + scope + " is being created",
                create(keys, ref, ref.bytes()));
    }

    /**
     * Per thread: subject ids met lately and their subjects, so that the Produce pre-pass's HMAC ({@link #prepare})
     * also serves the encryption pass, and a subject met again soon costs a byte comparison instead of an HMAC.
     * Direct-mapped, {@value #SLOTS} ids of at most {@value #MAX_ID} bytes (longer ids are not kept), compared byte
     * for byte with the scope's keys as owner; a subject is never removed from the index, so an entry stays right
     * (forgetting is read from the subject itself).
     */
    private static final class RecentIds {
        static final ThreadLocal<RecentIds> THREAD = ThreadLocal.withInitial(RecentIds::new);
        static final int SLOTS = 4096;
        static final int MAX_ID = 64;
        final byte[] ids = new byte[SLOTS * MAX_ID];
        final int[] lengths = new int[SLOTS];
        final ScopeKeys[] owners = new ScopeKeys[SLOTS];
        final Subject[] subjects = new Subject[SLOTS];

        /** The id of the current lookup, copied in one bulk read (a read-only view's get(i) checks every byte). */
        final byte[] id = new byte[MAX_ID];
        int idLength;

        /** @return the id's slot, or -1 when it is too long to keep */
        int slot(ByteBuffer subjectId) {
            int length = subjectId.remaining();
            if (length > MAX_ID) {
                return -1;
            }
            subjectId.get(subjectId.position(), id, 0, length);
            idLength = length;
            int h = 0x811c9dc5;
            for (int i = 0; i < length; i++) {
                h = (h ^ id[i]) * 0x01000193;
            }
            return (h ^ (h >>> 15)) & (SLOTS - 1);
        }

        /** @return the subject of the id {@link #slot} was given, when this slot holds it */
        Subject find(int slot, ScopeKeys owner) {
            if (slot < 0 || owners[slot] != owner || lengths[slot] != idLength) {
                return null;
            }
            int at = slot * MAX_ID;
            return Arrays.equals(ids, at, at + idLength, id, 0, idLength) ? subjects[slot] : null;
        }

        void put(int slot, ScopeKeys owner, Subject subject) {
            if (slot < 0) {
                return;
            }
            System.arraycopy(id, 0, ids, slot * MAX_ID, idLength);
            lengths[slot] = idLength;
            owners[slot] = owner;
            subjects[slot] = subject;
        }
    }

    /**
     * Starts what {@link #forEncryption} would wait for, without throwing: a frame's pre-pass calls it for every record
     * so that all its new subjects are created at once.
     *
     * @return null when {@code forEncryption} will not throw {@link KeyNotReadyException} now (or will fail otherwise),
     *     else the future to wait for
     */
    public CompletableFuture<Void> prepare(String scope, ByteBuffer subjectId) {
        try {
            forEncryption(scope, subjectId);
            return null;
        } catch (KeyNotReadyException e) {
            return e.ready();
        } catch (GeneralSecurityException e) {
            return null;
        }
    }

    /**
     * Never waits.
     *
     * @param envelope holds the subject ref at {@code [refAt, refAt + 16)} (absolute; position not used or moved)
     * @return the subject key, or null when the subject was forgotten (the reader gets the rule's replacement)
     * @throws KeyNotReadyException while the log loads, the scope secret is unwrapped, or a key not read yet may still
     *     arrive (for {@code unknownKeyWait})
     * @throws GeneralSecurityException when the key is unknown after that wait, or its wrapped form does not unwrap
     */
    public SecretKeySpec forDecryption(ByteBuffer envelope, int refAt, long keyId) throws GeneralSecurityException {
        Ref probe = Ref.probe().set(envelope, refAt);
        Subject subject = subjects.get(probe);
        if (subject != null && subject.forgotten) {
            return null;
        }
        KeyEntry entry = subject == null ? null : subject.key(keyId);
        if (entry == null) {
            throw unknown(probe.copy(), keyId);
        }
        if (!misses.isEmpty()) {
            misses.remove(probe);
        }
        SecretKeySpec key = entry.key;
        if (key != null) {
            return key;
        }
        // The scope the key was filed under in the log, whatever the policy's patterns are today.
        return unwrapped(scopeKeys(subject.scope, false), subject.ref, entry);
    }

    /** @throws KeyNotReadyException while the log loads; TransientKmsException when it cannot be read at all */
    private void requireLoaded() throws TransientKmsException {
        if (!caughtUp.isDone()) {
            throw new KeyNotReadyException("the subject-key log is loading", caughtUp);
        }
        if (caughtUp.isCompletedExceptionally()) {
            // Never create keys on a log not read: its earlier records would decide, unseen.
            throw new TransientKmsException("the subject-key log cannot be read (see the log)", null);
        }
    }

    private GeneralSecurityException unknown(Ref ref, long keyId) {
        try {
            requireLoaded();
        } catch (TransientKmsException e) {
            return e;
        }
        long now = nanoTime.getAsLong();
        Long first = misses.size() < MAX_TRACKED_MISSES ? misses.putIfAbsent(ref, now) : misses.get(ref);
        if (first != null && now - first > settings.unknownKeyWait().toNanos()) {
            return new GeneralSecurityException("subject key " + ref.text() + "/" + Long.toHexString(keyId)
                    + " is in no record of the subject-key log (waited " + settings.unknownKeyWait().toMillis()
                    + " ms)");
        }
        if (first == null && misses.size() >= MAX_TRACKED_MISSES) {
            return new GeneralSecurityException("subject key " + ref.text() + " is unknown");
        }
        return new KeyNotReadyException("subject key " + ref.text() + " not read yet",
                nextApplied.get().copy().completeOnTimeout(null, 200, TimeUnit.MILLISECONDS));
    }

    private static SecretKeySpec unwrapped(ScopeKeys keys, Ref ref, KeyEntry entry) throws GeneralSecurityException {
        SecretKeySpec key = entry.key;
        if (key == null) {
            byte[] refBytes = ref.bytes();
            byte[] raw = keys.unwrap(entry.wrapped, refBytes, keyIdBytes(entry.keyId));
            key = new SecretKeySpec(raw, "AES");
            Arrays.fill(raw, (byte) 0);
            // Two threads may both unwrap: each makes an equal key; the last write stays, both are right.
            entry.forEncryption = new SubjectKey(refBytes, entry.keyId, key);
            entry.key = key;
        }
        return key;
    }

    private ScopeKeys scopeKeys(String scope, boolean createIfMissing) throws GeneralSecurityException {
        Scope state = scopes.get(scope);
        ScopeKeys keys = state == null ? null : state.keys;
        if (keys != null) {
            return keys;
        }
        requireLoaded();
        if (state == null) {
            if (!createIfMissing) {
                throw new GeneralSecurityException("scope " + scope + " has no secret in the subject-key log");
            }
            if (scopes.size() >= MAX_SCOPES) {
                throw new TooManySubjectsException("more subject scopes than " + MAX_SCOPES + ": scope " + scope
                        + " is refused");
            }
            state = scopes.computeIfAbsent(scope, Scope::new);
        }
        Scope s = state;
        synchronized (s) {
            if (s.keys == null && !s.working) {
                s.working = true;
                if (s.chosen == null) {
                    worker.execute(() -> createSecret(scope, s));
                } else {
                    worker.execute(() -> unwrapSecret(scope, s, s.chosen));
                }
            }
        }
        throw new KeyNotReadyException("the secret of subject scope " + scope + " is being prepared", s.ready);
    }

    /** On the worker: one KMS wrap per scope, then the log decides (first secret in log order wins). */
    private void createSecret(String scope, Scope state) {
        byte[] secret = new byte[32];
        random.nextBytes(secret);
        long secretId = random.nextLong();
        try {
            WrappedDek wrapped = kms.wrap(secret, new DekContext(SCOPE_CONTEXT + scope, secretId));
            state.ownSecret = secret;
            state.ownWrapped = wrapped.bytes();
            keyLog.append(SubjectKeyRecords.key(SubjectKeyRecords.SCOPE_SECRET, scope, keyIdBytes(secretId)),
                    SubjectKeyRecords.secretValue(wrapped.kekId(), wrapped.bytes())).whenComplete((ok, e) -> {
                        if (e != null) {
                            failed(scope, state, e);
                        }
                    });
        } catch (GeneralSecurityException | RuntimeException e) {
            failed(scope, state, e);
        }
    }

    private void unwrapSecret(String scope, Scope state, SubjectKeyRecords.WrappedSecret chosen) {
        try {
            byte[] secret;
            if (state.ownWrapped != null && Arrays.equals(state.ownWrapped, chosen.wrapped())) {
                secret = state.ownSecret;
            } else {
                secret = kms.unwrap(chosen.kekId(), chosen.wrapped(), new DekContext(SCOPE_CONTEXT + scope,
                        chosen.secretId()));
            }
            state.keys = new ScopeKeys(scope, secret);
            Arrays.fill(secret, (byte) 0);
            state.ownSecret = null;
            state.working = false;
            state.ready.complete(null);
        } catch (GeneralSecurityException | RuntimeException e) {
            failed(scope, state, e);
        }
    }

    private void failed(String scope, Scope state, Throwable e) {
        log.warn("cannot prepare the secret of subject scope {}: {}", scope, e.toString());
        synchronized (state) {
            state.working = false;
            CompletableFuture<Void> ready = state.ready;
            state.ready = new CompletableFuture<>();
            ready.complete(null); // the retry starts over
        }
    }

    private CompletableFuture<Void> create(ScopeKeys keys, Ref ref, byte[] refBytes) throws GeneralSecurityException {
        CompletableFuture<Void> pending = creating.get(ref);
        if (pending != null) {
            return pending;
        }
        if (subjects.size() + creating.size() >= settings.maxSubjects()) {
            refusedSubjects.incrementAndGet();
            logFull();
            throw new TooManySubjectsException("more subjects than subjectKeys.maxSubjects (" + settings.maxSubjects()
                    + ")");
        }
        long waitNanos = takeToken();
        if (waitNanos > 0) {
            CompletableFuture<Void> later = new CompletableFuture<>();
            worker.schedule(() -> later.complete(null), waitNanos, TimeUnit.NANOSECONDS);
            return later;
        }
        CompletableFuture<Void> mine = new CompletableFuture<>();
        pending = creating.putIfAbsent(ref, mine);
        if (pending != null) {
            return pending;
        }
        // The follower may have applied this subject's first key (and dropped its pending creation) between the
        // caller's index lookup and here: then there is nothing to create, and a second key would only be waste.
        Subject known = subjects.get(ref);
        if (known != null && (known.current != null || known.forgotten)) {
            creating.remove(ref, mine);
            mine.complete(null);
            return mine;
        }
        byte[] subjectKey = new byte[32];
        random.nextBytes(subjectKey);
        long keyId = random.nextLong();
        byte[] wrapped = keys.wrap(subjectKey, refBytes, keyIdBytes(keyId));
        Arrays.fill(subjectKey, (byte) 0);
        // Used only once read back from the log: another replica's key for the subject may come first. Appended from
        // the worker: an append may block (metadata, topic creation), the caller may not.
        byte[] recordKey = SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_KEY, keys.scope(), refBytes, keyIdBytes(keyId));
        worker.execute(() -> keyLog.append(recordKey, SubjectKeyRecords.subjectKeyValue(wrapped)).whenComplete((ok, e) -> {
            if (e != null) {
                log.warn("cannot append a subject key to the subject-key log: {}", e.toString());
                creating.remove(ref, mine);
                mine.complete(null);
            }
        }));
        return mine;
    }

    /** @return 0 when a token was taken, else nanoseconds until one is due */
    private long takeToken() {
        synchronized (bucketLock) {
            long now = nanoTime.getAsLong();
            tokens = Math.min(settings.newSubjectsBurst(),
                    tokens + (now - refilledAt) / 1e9 * settings.newSubjectsPerSecond());
            refilledAt = now;
            if (tokens >= 1) {
                tokens -= 1;
                return 0;
            }
            return (long) Math.ceil((1 - tokens) / settings.newSubjectsPerSecond() * 1e9);
        }
    }

    // ---- forgetting ---------------------------------------------------------------------------------------------

    /**
     * Appends the subject's forgotten marker; every replica that reads it drops the subject's keys and overwrites
     * their records. May wait (admin calls only).
     *
     * @return the subject ref (hex), for the audit trail; null when the scope never had a secret (nothing was ever
     *     encrypted under a subject key of it)
     */
    public String forget(String scope, String subject, Duration timeout) throws GeneralSecurityException {
        caughtUp.orTimeout(timeout.toMillis(), TimeUnit.MILLISECONDS).exceptionally(e -> null).join();
        if (!caughtUp.isDone()) {
            throw new TransientKmsException("the subject-key log did not load within " + timeout.toMillis() + " ms", null);
        }
        Scope state = scopes.get(scope);
        if (state == null || state.chosen == null) {
            return null;
        }
        ScopeKeys keys = KeyNotReadyException.awaitBlocking(() -> scopeKeys(scope, false), timeout);
        byte[] ref = keys.ref(subject);
        Subject known = subjects.get(Ref.of(ref));
        KeyEntry[] knownKeys = known == null ? new KeyEntry[0] : known.keys;
        try {
            keyLog.append(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_MARKER, scope, ref),
                    SubjectKeyRecords.forgottenValue()).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            // The keys this replica knows, overwritten now; keys appended by others meanwhile are overwritten by
            // whichever replica reads them after the marker.
            for (KeyEntry k : knownKeys) {
                keyLog.append(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_KEY, scope, ref, keyIdBytes(k.keyId)),
                        SubjectKeyRecords.forgottenValue()).get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            }
        } catch (Exception e) {
            throw new TransientKmsException("cannot append the forgotten marker: " + e, e);
        }
        return HexFormat.of().formatHex(ref);
    }

    /**
     * @param listener run whenever this replica reads a subject's forgotten marker, once the subject's keys are out of
     *     the index: where keys are cached outside it (ciphers holding expanded keys), drop them; must not block
     */
    public void onForget(Runnable listener) {
        forgetListeners.add(listener);
    }

    /** @return whether the subject of this scope has been forgotten, as far as this replica has read */
    public boolean isForgotten(String scope, String subject) {
        Scope state = scopes.get(scope);
        ScopeKeys keys = state == null ? null : state.keys;
        Subject s = keys == null ? null : subjects.get(Ref.of(keys.ref(subject)));
        return s != null && s.forgotten;
    }

    // ---- following the log (one thread) -------------------------------------------------------------------------
    //
    // Anyone who can write to the key topic can put anything in it (a hostile broker or client): every record is
    // parsed defensively and a bad one is skipped and counted, never trusted and never fatal to the follower; what the
    // log can make the store hold is bounded (maxSubjects subjects, MAX_SCOPES scopes, MAX_PENDING_OVERWRITES key
    // records waiting to be overwritten); a flood of new subjects fills the index, after which new subjects are
    // refused (fail closed), never admitted unbounded.

    private void apply(byte[] recordKey, byte[] value) {
        try {
            SubjectKeyRecords.Key key = SubjectKeyRecords.parseKey(recordKey);
            if (key == null || value == null) {
                skipped("a malformed record", null);
                return;
            }
            switch (key.kind()) {
                case SubjectKeyRecords.SCOPE_SECRET -> applySecret(key, value);
                case SubjectKeyRecords.SUBJECT_KEY -> applyKey(recordKey, key, value);
                default -> applyMarker(key, value);
            }
        } catch (RuntimeException e) {
            // A record no parser foresaw must not stop the follower: every later record (a forgotten marker) matters.
            skipped("a record that failed to apply (" + e + ")", null);
        } finally {
            nextApplied.getAndSet(new CompletableFuture<>()).complete(null);
        }
    }

    /** Counts a skipped record and logs it, at most once per {@link #SKIP_LOG_INTERVAL_NANOS} (a flood is one line). */
    private void skipped(String what, String scope) {
        long count = skippedRecords.incrementAndGet();
        long now = nanoTime.getAsLong();
        if (count == 1 || now - lastSkipLogged > SKIP_LOG_INTERVAL_NANOS) {
            lastSkipLogged = now;
            log.warn("subject-key log: skipped {}{} ({} record(s) skipped since start)", what,
                    scope == null ? "" : " of scope " + scope, count);
        }
    }

    /** @return the scope's state when its secret is in the log (every key and marker follows it), else null */
    private Scope scopeWithSecret(SubjectKeyRecords.Key key) {
        Scope state = scopes.get(key.scope());
        return state == null || state.chosen == null ? null : state;
    }

    private void applySecret(SubjectKeyRecords.Key key, byte[] value) {
        SubjectKeyRecords.WrappedSecret secret = SubjectKeyRecords.parseSecretValue(value);
        if (secret == null || secret.wrapped().length > MAX_WRAPPED_SECRET_BYTES) {
            skipped("a malformed scope secret", key.scope());
            return;
        }
        Scope state = scopes.get(key.scope());
        if (state == null) {
            if (scopes.size() >= MAX_SCOPES) {
                skipped("the secret of a scope beyond the " + MAX_SCOPES + " scopes held", key.scope());
                return;
            }
            state = scopes.computeIfAbsent(key.scope(), Scope::new);
        }
        synchronized (state) {
            if (state.chosen != null) {
                return; // first in log order wins
            }
            state.chosen = secret.withId(ByteBuffer.wrap(key.id()).getLong());
            if (state.working || state.ownWrapped != null) {
                state.working = true;
                Scope s = state;
                SubjectKeyRecords.WrappedSecret chosen = state.chosen;
                worker.execute(() -> unwrapSecret(key.scope(), s, chosen));
            }
        }
    }

    private void applyKey(byte[] recordKey, SubjectKeyRecords.Key key, byte[] value) {
        Ref ref = Ref.of(key.id());
        long keyId = ByteBuffer.wrap(key.id()).getLong(SubjectKeyRecords.REF_LENGTH);
        if (SubjectKeyRecords.isForgotten(value)) {
            Subject subject = subjects.get(ref);
            if (subject != null) {
                removeKey(subject, keyId);
            }
            synchronized (toOverwrite) {
                toOverwrite.remove(ByteBuffer.wrap(recordKey));
            }
            return;
        }
        byte[] wrapped = SubjectKeyRecords.wrappedSubjectKey(value);
        Scope scope = scopeWithSecret(key);
        if (wrapped == null || scope == null) {
            // No replica writes a key before its scope's secret: one without is foreign.
            skipped(wrapped == null ? "a malformed subject key" : "a subject key of a scope without a secret", key.scope());
            return;
        }
        Subject subject = subjects.get(ref);
        if (subject == null) {
            if (subjects.size() >= settings.maxSubjects()) {
                refusedSubjects.incrementAndGet();
                logFull();
                CompletableFuture<Void> pending = creating.remove(ref);
                if (pending != null) {
                    pending.complete(null); // the retry reports the limit
                }
                return;
            }
            subject = subjects.computeIfAbsent(ref, r -> new Subject(scope.name, r));
        }
        try {
            if (!subject.scope.equals(key.scope())) {
                skipped("a subject key filed under two scopes", key.scope());
                return;
            }
            if (subject.forgotten) {
                // Appended after the marker (a replica that had not read it yet, or a replay): overwrite it.
                overwriteLater(ByteBuffer.wrap(recordKey));
                return;
            }
            if (subject.key(keyId) != null) {
                return;
            }
            if (subject.keys.length >= MAX_KEYS_PER_SUBJECT) {
                skipped("a subject key beyond " + MAX_KEYS_PER_SUBJECT + " of one subject", key.scope());
                return;
            }
            KeyEntry entry = new KeyEntry(keyId, wrapped);
            KeyEntry[] keys = Arrays.copyOf(subject.keys, subject.keys.length + 1);
            keys[keys.length - 1] = entry;
            subject.keys = keys;
            if (subject.current == null) {
                subject.current = entry; // first in log order
            }
        } finally {
            CompletableFuture<Void> pending = creating.remove(ref);
            if (pending != null) {
                pending.complete(null);
            }
        }
    }

    private void applyMarker(SubjectKeyRecords.Key key, byte[] value) {
        Scope scope = scopeWithSecret(key);
        if (!SubjectKeyRecords.isForgotten(value) || scope == null) {
            // forget appends a marker only for a scope with a secret: one without forgets nothing that exists.
            skipped(scope == null ? "a subject marker of a scope without a secret" : "a malformed subject marker",
                    key.scope());
            return;
        }
        Ref ref = Ref.of(key.id());
        Subject subject = subjects.get(ref);
        if (subject == null) {
            if (subjects.size() >= settings.maxSubjects()) {
                // Unknown here and the index full: no key of it is held, and none can be admitted later (the index
                // never shrinks), so the subject stays unusable, as forgotten.
                refusedSubjects.incrementAndGet();
                logFull();
                return;
            }
            subject = subjects.computeIfAbsent(ref, r -> new Subject(scope.name, r));
        }
        subject.forgotten = true;
        subject.current = null;
        for (KeyEntry k : subject.keys) {
            overwriteLater(ByteBuffer.wrap(SubjectKeyRecords.key(SubjectKeyRecords.SUBJECT_KEY, subject.scope,
                    key.id(), keyIdBytes(k.keyId))));
        }
        subject.keys = new KeyEntry[0];
        CompletableFuture<Void> pending = creating.remove(ref);
        if (pending != null) {
            pending.complete(null);
        }
        forgetListeners.forEach(Runnable::run);
    }

    private void logFull() {
        if (!limitLogged) {
            limitLogged = true;
            log.error("subject-key index full ({} subjects, subjectKeys.maxSubjects): records of new subjects are"
                    + " refused", settings.maxSubjects());
        }
    }

    private static void removeKey(Subject subject, long keyId) {
        KeyEntry[] keys = subject.keys;
        KeyEntry[] kept = Arrays.stream(keys).filter(k -> k.keyId != keyId).toArray(KeyEntry[]::new);
        subject.keys = kept;
        KeyEntry current = subject.current;
        if (current != null && current.keyId == keyId) {
            subject.current = kept.length == 0 ? null : kept[0];
        }
    }

    /**
     * Queues a key record of a forgotten subject to be overwritten with a forgotten value (compaction then drops the
     * wrapped key), once the log has been read; bounded: beyond {@link #MAX_PENDING_OVERWRITES} the record is left
     * (it is never used: the marker wins) for a later pass, or the next start, to overwrite.
     */
    private void overwriteLater(ByteBuffer recordKey) {
        synchronized (toOverwrite) {
            if (!toOverwrite.containsKey(recordKey)) {
                if (toOverwrite.size() >= MAX_PENDING_OVERWRITES) {
                    skipped("the overwrite of a forgotten subject's key (" + MAX_PENDING_OVERWRITES + " pending)", null);
                    return;
                }
                toOverwrite.put(recordKey, Boolean.FALSE);
            }
        }
        if (caughtUp != null && caughtUp.isDone() && overwriteScheduled.compareAndSet(false, true)) {
            worker.execute(this::overwriteForgottenKeys);
        }
    }

    /**
     * On the worker: replaces the wrapped keys of forgotten subjects by forgotten values (compaction drops them). Each
     * record once (marked sent; the forgotten value read back removes it), however many passes a flood schedules.
     */
    private void overwriteForgottenKeys() {
        overwriteScheduled.set(false);
        List<ByteBuffer> pending = new ArrayList<>();
        synchronized (toOverwrite) {
            for (Map.Entry<ByteBuffer, Boolean> e : toOverwrite.entrySet()) {
                if (!e.getValue()) {
                    e.setValue(Boolean.TRUE);
                    pending.add(e.getKey());
                }
            }
        }
        for (ByteBuffer recordKey : pending) {
            keyLog.append(recordKey.array(), SubjectKeyRecords.forgottenValue()).whenComplete((ok, e) -> {
                if (e != null) {
                    synchronized (toOverwrite) {
                        toOverwrite.replace(recordKey, Boolean.FALSE); // the next pass tries again
                    }
                }
            });
        }
    }

    static byte[] keyIdBytes(long keyId) {
        return ByteBuffer.allocate(8).putLong(keyId).array();
    }

    @Override
    public void close() {
        worker.shutdownNow();
        keyLog.close();
    }
}
