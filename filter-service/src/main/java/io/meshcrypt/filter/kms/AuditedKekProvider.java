package io.meshcrypt.filter.kms;

import io.meshcrypt.filter.kms.KeyAudit.Operation;
import java.security.GeneralSecurityException;
import java.util.List;
import java.util.Objects;

/**
 * Reports every wrap, unwrap, KEK creation and rotation that reaches a {@link KekProvider} to a {@link KeyAudit}, and
 * the current KEK whenever it is first seen or has changed. Innermost decorator, like {@link InstrumentedKekProvider}:
 * it reports the calls the KMS actually received (a cache miss, not a cache hit; not a call backoff refused).
 */
public final class AuditedKekProvider implements KekProvider {

    private final KekProvider inner;
    private final KeyAudit audit;
    private volatile String lastCurrentKekId;

    public AuditedKekProvider(KekProvider inner, KeyAudit audit) {
        this.inner = Objects.requireNonNull(inner, "inner");
        this.audit = Objects.requireNonNull(audit, "audit");
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public String currentKekId() throws GeneralSecurityException {
        return noticed(inner.currentKekId());
    }

    @Override
    public WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException {
        WrappedDek wrapped = failureReported(Operation.DEK_WRAPPED, null, context, null, () -> inner.wrap(dek, context));
        audit.succeeded(Operation.DEK_WRAPPED, inner.name(), wrapped.kekId(), context, wrapped.bytes());
        return wrapped;
    }

    @Override
    public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
        byte[] dek = failureReported(Operation.DEK_UNWRAPPED, kekId, context, wrapped, () -> inner.unwrap(kekId, wrapped, context));
        audit.succeeded(Operation.DEK_UNWRAPPED, inner.name(), kekId, context, wrapped);
        return dek;
    }

    @Override
    public String create() throws GeneralSecurityException {
        String kekId = failureReported(Operation.KEK_CREATED, null, null, null, inner::create);
        audit.succeeded(Operation.KEK_CREATED, inner.name(), kekId, null, null);
        return kekId;
    }

    @Override
    public String rotate() throws GeneralSecurityException {
        String kekId = failureReported(Operation.KEK_ROTATED, null, null, null, inner::rotate);
        audit.succeeded(Operation.KEK_ROTATED, inner.name(), kekId, null, null);
        return kekId;
    }

    @Override
    public List<KekInfo> list() throws GeneralSecurityException {
        return inner.list();
    }

    @Override
    public void close() {
        inner.close();
    }

    private interface Call<T> {
        T call() throws GeneralSecurityException;
    }

    /** Runs {@code call}; a failure is reported as {@code operation} failed, then thrown on. */
    private <T> T failureReported(Operation operation, String kekId, DekContext dek, byte[] wrappedDek, Call<T> call)
            throws GeneralSecurityException {
        try {
            return call.call();
        } catch (GeneralSecurityException | RuntimeException e) {
            audit.failed(operation, inner.name(), kekId, dek, wrappedDek, e);
            throw e;
        }
    }

    /** Reports {@code current} when it differs from the current KEK seen last (a rotation here or elsewhere). */
    private String noticed(String current) {
        if (!current.equals(lastCurrentKekId)) {
            synchronized (this) {
                if (!current.equals(lastCurrentKekId)) {
                    lastCurrentKekId = current;
                    audit.succeeded(Operation.KEK_CURRENT, inner.name(), current, null, null);
                }
            }
        }
        return current;
    }
}
