package io.meshcrypt.filter.kms;

import java.security.GeneralSecurityException;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/** A KEK provider for tests: counts the calls that reach it, and can be slow or down. */
public class CountingKekProvider implements KekProvider {
    public final KekProvider delegate;
    public final AtomicInteger wraps = new AtomicInteger();
    public final AtomicInteger unwraps = new AtomicInteger();
    public final AtomicInteger lists = new AtomicInteger();
    public final AtomicInteger currentChecks = new AtomicInteger();
    public final AtomicBoolean down = new AtomicBoolean();
    public volatile long delayMillis;
    /** Delay of list() and currentKekId(). */
    public volatile long listDelayMillis;

    public CountingKekProvider(KekProvider delegate) {
        this.delegate = delegate;
    }

    private static void sleep(long millis) {
        if (millis > 0) {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private void maybeFail() throws GeneralSecurityException {
        sleep(delayMillis);
        if (down.get()) {
            throw new GeneralSecurityException("connection refused");
        }
    }

    @Override
    public String name() {
        return delegate.name();
    }

    @Override
    public String currentKekId() throws GeneralSecurityException {
        currentChecks.incrementAndGet();
        sleep(listDelayMillis);
        return delegate.currentKekId();
    }

    @Override
    public WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException {
        wraps.incrementAndGet();
        maybeFail();
        return delegate.wrap(dek, context);
    }

    @Override
    public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
        unwraps.incrementAndGet();
        maybeFail();
        return delegate.unwrap(kekId, wrapped, context);
    }

    @Override
    public String create() throws GeneralSecurityException {
        return delegate.create();
    }

    @Override
    public String rotate() throws GeneralSecurityException {
        return delegate.rotate();
    }

    @Override
    public List<KekInfo> list() throws GeneralSecurityException {
        lists.incrementAndGet();
        sleep(listDelayMillis);
        return delegate.list();
    }
}
