package io.meshcrypt.filter.config;

import io.meshcrypt.filter.policy.EncryptionPolicy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Policy hot reload: watches the file the encryption policy comes from (the config file itself, or its
 * {@code policyFrom} file) and hands each valid, different policy to {@code apply}. An invalid file is logged with
 * its precise error and changes nothing: the last good policy stays in force. Only the policy reloads; other config
 * fields need a restart, which is logged when they change.
 */
public final class PolicyWatcher implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(PolicyWatcher.class);
    public static final Duration DEFAULT_INTERVAL = Duration.ofMillis(200);

    private final Path configFile;
    private final FilterConfig startup;
    private final Consumer<EncryptionPolicy> apply;
    private final FileWatcher watcher;
    private volatile EncryptionPolicy current;
    private volatile String lastError;

    private PolicyWatcher(Path configFile, FilterConfig startup, Consumer<EncryptionPolicy> apply, Duration interval) {
        this.configFile = configFile;
        this.startup = startup;
        this.apply = apply;
        this.current = startup.policy();
        Path source = startup.policyFrom() != null ? startup.policyFrom() : configFile;
        // no initial content: the first poll re-reads the file, so an edit made since startup is not missed
        this.watcher = FileWatcher.start(source, null, interval, this::changed);
    }

    /**
     * @param configFile the file {@code startup} was loaded from
     * @param apply receives each new policy, on the watcher thread
     */
    public static PolicyWatcher start(Path configFile, FilterConfig startup, Consumer<EncryptionPolicy> apply, Duration interval) {
        return new PolicyWatcher(Objects.requireNonNull(configFile), Objects.requireNonNull(startup),
                Objects.requireNonNull(apply), interval);
    }

    private void changed(byte[] content) {
        EncryptionPolicy policy;
        try {
            if (startup.policyFrom() != null) {
                policy = FilterConfig.parsePolicy(startup.policyFrom(), content);
            } else {
                FilterConfig reloaded = FilterConfig.parse(configFile, content);
                warnAboutRestartOnlyChanges(reloaded);
                policy = reloaded.policy();
            }
        } catch (ConfigException e) {
            lastError = e.getMessage();
            log.error("encryption policy NOT reloaded, the last good policy stays in force ({}): {}", current, e.getMessage());
            return;
        }
        lastError = null;
        if (policy.equals(current)) {
            return;
        }
        apply.accept(policy);
        log.info("encryption policy reloaded: {} (was {})", policy, current);
        current = policy;
    }

    private void warnAboutRestartOnlyChanges(FilterConfig reloaded) {
        if (!reloaded.listen().equals(startup.listen()) || reloaded.maxFrameBytes() != startup.maxFrameBytes()
                || !Objects.equals(reloaded.keyset(), startup.keyset()) || !reloaded.brokers().equals(startup.brokers())
                || !Objects.equals(reloaded.policyFrom(), startup.policyFrom())) {
            log.warn("{}: only policy: reloads while running; the other changed fields apply after a restart", configFile);
        }
    }

    /** The policy in force. */
    public EncryptionPolicy current() {
        return current;
    }

    /** The error of the last reload attempt, or null when it succeeded. */
    public String lastError() {
        return lastError;
    }

    @Override
    public void close() {
        watcher.close();
    }
}
