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
        WrappedDek wrapped;
        try {
            wrapped = inner.wrap(dek, context);
        } catch (GeneralSecurityException | RuntimeException e) {
            audit.failed(Operation.DEK_WRAPPED, inner.name(), null, context, null, e);
            throw e;
        }
        audit.succeeded(Operation.DEK_WRAPPED, inner.name(), wrapped.kekId(), context, wrapped.bytes());
        return wrapped;
    }

    @Override
    public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
        byte[] dek;
        try {
            dek = inner.unwrap(kekId, wrapped, context);
        } catch (GeneralSecurityException | RuntimeException e) {
            audit.failed(Operation.DEK_UNWRAPPED, inner.name(), kekId, context, wrapped, e);
            throw e;
        }
        audit.succeeded(Operation.DEK_UNWRAPPED, inner.name(), kekId, context, wrapped);
        return dek;
    }

    @Override
    public String create() throws GeneralSecurityException {
        String kekId = inner.create();
        audit.succeeded(Operation.KEK_CREATED, inner.name(), kekId, null, null);
        return kekId;
    }

    @Override
    public String rotate() throws GeneralSecurityException {
        String kekId;
        try {
            kekId = inner.rotate();
        } catch (GeneralSecurityException | RuntimeException e) {
            audit.failed(Operation.KEK_ROTATED, inner.name(), null, null, null, e);
            throw e;
        }
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
