package io.meshcrypt.filter.config;

import io.meshcrypt.meshconfig.FileWatcher;
import io.meshcrypt.meshconfig.http.HttpRules;
import io.meshcrypt.meshconfig.mesh.Policies;
import io.meshcrypt.meshconfig.policy.EncryptionPolicy;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Hot reload of what the filter-service applies to traffic: watches the file the encryption policy and HTTP rules
 * come from (the config file itself, or its {@code policyFrom} mesh file) and hands each valid change to the
 * consumers, the Kafka policy first. An invalid file is logged with its precise error and changes nothing: the last
 * good version of both stays in force. Other config fields need a restart, which is logged when they change.
 */
public final class PolicyWatcher implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(PolicyWatcher.class);
    public static final Duration DEFAULT_INTERVAL = Duration.ofMillis(200);

    private final Path configFile;
    private final FilterConfig startup;
    private final PolicyReloads reloads = new PolicyReloads();
    private final PolicyApplier applier;
    private final FileWatcher watcher;

    private PolicyWatcher(Path configFile, FilterConfig startup, Consumer<EncryptionPolicy> applyPolicy,
                          Consumer<HttpRules> applyHttp, Duration interval) {
        this.configFile = configFile;
        this.startup = startup;
        this.applier = new PolicyApplier(startup.policies(), applyPolicy, applyHttp, reloads);
        // A policy file has no version of its own: the count of reloads applied since start names the one in force.
        reloads.inForce("0", System.currentTimeMillis());
        Path source = startup.policyFrom() != null ? startup.policyFrom() : configFile;
        // no initial content: the first poll re-reads the file, so an edit made since startup is not missed
        this.watcher = FileWatcher.start(source, null, interval, this::changed);
    }

    /**
     * @param configFile the file {@code startup} was loaded from
     * @param applyPolicy receives each new encryption policy, on the watcher thread; an IllegalArgumentException
     *     refuses the whole change
     * @param applyHttp receives each new set of HTTP rules, on the watcher thread
     */
    public static PolicyWatcher start(Path configFile, FilterConfig startup, Consumer<EncryptionPolicy> applyPolicy,
                                      Consumer<HttpRules> applyHttp, Duration interval) {
        return new PolicyWatcher(Objects.requireNonNull(configFile), Objects.requireNonNull(startup),
                Objects.requireNonNull(applyPolicy), Objects.requireNonNull(applyHttp), interval);
    }

    private void changed(byte[] content) {
        Policies next;
        try {
            if (startup.policyFrom() != null) {
                next = FilterConfig.parsePolicies(startup.policyFrom(), content);
            } else {
                FilterConfig reloaded = FilterConfig.parse(configFile, content);
                warnAboutRestartOnlyChanges(reloaded);
                next = reloaded.policies();
            }
        } catch (ConfigException e) {
            applier.refuse(e.getMessage());
            return;
        }
        if (applier.apply(next) == null) {
            reloads.inForce(Long.toString(reloads.appliedCount()), System.currentTimeMillis());
        }
    }

    private void warnAboutRestartOnlyChanges(FilterConfig reloaded) {
        if (!reloaded.listen().equals(startup.listen()) || reloaded.maxFrameBytes() != startup.maxFrameBytes()
                || !Objects.equals(reloaded.keyset(), startup.keyset()) || !reloaded.brokers().equals(startup.brokers())
                || !Objects.equals(reloaded.policyFrom(), startup.policyFrom())) {
            log.warn("{}: only policy: and http: reload while running; the other changed fields apply after a restart", configFile);
        }
    }

    /** The encryption policy in force. */
    public EncryptionPolicy current() {
        return applier.current().encryption();
    }

    /** The HTTP rules in force. */
    public HttpRules currentHttp() {
        return applier.current().http();
    }

    /** The error of the last reload attempt, or null when it succeeded. */
    public PolicyReloads reloads() {
        return reloads;
    }

    public String lastError() {
        return applier.lastError();
    }

    @Override
    public void close() {
        watcher.close();
    }
}
