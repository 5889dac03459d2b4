package io.meshcrypt.filter;

import io.meshcrypt.filter.admin.AdminAccess;
import io.meshcrypt.filter.admin.SubjectAdminService;
import io.meshcrypt.filter.audit.AdminAudit;
import io.meshcrypt.filter.audit.AuditTrail;
import io.meshcrypt.filter.audit.BothAuditTrails;
import io.meshcrypt.filter.audit.JsonAuditTrail;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.Limits;
import io.meshcrypt.filter.config.PolicyReloads;
import io.meshcrypt.filter.config.PolicyWatcher;
import io.meshcrypt.filter.config.XdsPolicySource;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.SubjectValueCipher;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.crypto.ValueCipherV2;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.http.HttpExtProcService;
import io.meshcrypt.filter.http.HttpProcessor;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.keys.KeyServices;
import io.meshcrypt.filter.keys.KeysCli;
import io.meshcrypt.filter.keys.SubjectsCli;
import io.meshcrypt.filter.kms.KeyAudit;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.observability.FilterMetrics;
import io.meshcrypt.filter.observability.GrpcHealth;
import io.meshcrypt.filter.observability.ObservabilityServer;
import io.meshcrypt.filter.observability.Readiness;
import io.meshcrypt.filter.subjects.KafkaSubjectKeyLog;
import io.meshcrypt.filter.subjects.SubjectKeyStore;
import io.meshcrypt.filter.transport.ConnectionLog;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.filter.transport.StreamIdentity;
import io.meshcrypt.meshconfig.cli.ConfigCommandLine;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/**
 * Command line of the filter-service: {@code serve}, and the key commands of {@link KeysCli} ({@code keyset},
 * {@code keys}, {@code inspect}); exit codes and error lines as {@link ConfigCommandLine}.
 */
@Command(name = "meshcrypt-filter-service", subcommands = {Main.Serve.class, KeysCli.Keyset.class, KeysCli.Keys.class,
        KeysCli.Inspect.class, SubjectsCli.class}, description = "The meshcrypt filter-service: encrypts and decrypts Kafka and HTTP traffic"
        + " that Envoy sidecars stream to it over ext_proc.")
public final class Main {
    private static final Logger log = LoggerFactory.getLogger(Main.class);

    /** How long a start waits for the first policy from {@code policyFrom: xds://}; then it fails. */
    private static final Duration XDS_POLICY_WAIT = Duration.ofSeconds(30);

    @Option(names = {"-h", "--help"}, usageHelp = true, scope = ScopeType.INHERIT, description = "Show this help and exit.")
    boolean help;

    public static void main(String[] args) {
        System.exit(commandLine(System.out, System.err).execute(args));
    }

    /** The command line, with a one-line message instead of a stack trace for a failed command. */
    public static CommandLine commandLine(PrintStream out, PrintStream err) {
        return ConfigCommandLine.of(new Main(), "meshcrypt", "invalid configuration", out, err);
    }

    @Command(name = "serve", description = "Serve ext_proc for the Envoy sidecars until stopped.")
    static final class Serve implements Callable<Integer> {
        @Option(names = "--config", required = true, paramLabel = "FILE", description = "The filter config (YAML).")
        Path config;

        @Override
        public Integer call() throws Exception {
            serve(config);
            return 0;
        }
    }

    private static void serve(Path configFile) throws Exception {
        Running running = start(configFile);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            running.close();
            stopped.countDown();
        }, "shutdown"));
        stopped.await();
    }

    /**
     * A started filter-service: listening, its policy source attached, its audit trail (or null) open, its gRPC health
     * reported, its metrics and health endpoint (or null) serving.
     */
    record Running(ExtProcServer server, AutoCloseable policySource, JsonAuditTrail audit, GrpcHealth health,
                   ObservabilityServer observability, FilterMetrics metrics, SubjectKeyStore subjectKeys)
            implements AutoCloseable {
        /** Reports NOT_SERVING, stops taking policy, then serving; then writes what the audit trail still holds. */
        @Override
        public void close() {
            health.close();
            if (observability != null) {
                observability.close();
            }
            try {
                policySource.close();
            } catch (Exception e) {
                log.warn("closing the policy source: {}", e.toString());
            }
            server.close();
            if (subjectKeys != null) {
                subjectKeys.close();
            }
            if (audit != null) {
                audit.close();
            }
            if (metrics != null) {
                metrics.close();
            }
        }
    }

    /** Loads {@code configFile}, checks its secret files and starts serving; what {@code serve} runs until stopped. */
    private static final java.time.Duration SUBJECT_KEYS_TIMEOUT = java.time.Duration.ofSeconds(30);

    static Running start(Path configFile) throws Exception {
        FilterConfig config = FilterConfig.load(configFile);
        TlsMaterial tls = null;
        if (config.tls() != null) {
            // TlsMaterial refuses a private key others can read, at start and on every reload
            tls = TlsMaterial.load(config.tls());
        }
        XdsPolicySource xds = null;
        if (config.policyServer() != null) {
            // fail closed: no traffic is served before the xDS server's policy is in force
            xds = XdsPolicySource.start(config.policyServer(), "filter-service@" + config.listen().getHostString() + ":"
                    + config.listen().getPort(), tls);
            config = config.withPolicies(xds.awaitFirst(XDS_POLICY_WAIT), configFile);
        }
        // Before any key is read: a secret file others can read is refused, naming the file and the fix.
        Keysets.requireOwnerOnly(config.keyset());
        Keysets.requireOwnerOnly(config.sivKeyset());
        if (config.keys() != null) {
            Keysets.requireOwnerOnly(config.keys().localKeyset());
            if (config.keys().pkcs11() != null) {
                Keysets.requireOwnerOnly(config.keys().pkcs11().pinFile());
            }
        }
        // Before any key is used: key operations go to the trail from the first one on.
        JsonAuditTrail audit = config.audit() == null ? null : JsonAuditTrail.open(config.audit());
        ValueCipher cipher = KeyServices.cipher(config, audit == null ? KeyAudit.NONE : audit.keys());
        // Only with sivKeyset set or a policy entry asking for keys: deterministic; the file is created on first use.
        RecordKeyCipher keyCipher = config.sivKeyset() == null ? null : RecordKeyCipher.openOrCreate(config.sivKeyset());
        Limits limits = config.limits();
        HeldBytesBudget heldBytes = DataPathLimits.heldBytes(limits);
        SubjectKeyStore subjectKeys = openSubjectKeys(config, cipher);
        // One store for Kafka and HTTP: a subject forgotten once is forgotten on both paths.
        SubjectValueCipher subjectCipher = subjectKeys == null ? null : new SubjectValueCipher(subjectKeys);
        KafkaProxy proxy = new KafkaProxy(config.policy(), cipher, keyCipher, subjectCipher,
                new BrokerAddresses(config.brokers()),
                DataPathLimits.kafka(limits), heldBytes);
        // Record counts per topic come from the accesses the data path reports for the audit trail: reported once, fed to both.
        FilterMetrics metrics = config.observability() == null ? null
                : new FilterMetrics(config.observability().maxTopicLabels());
        AuditTrail trail = audit == null ? AuditTrail.NONE : audit;
        if (metrics != null) {
            trail = audit == null ? metrics.records() : new BothAuditTrails(audit, metrics.records());
        }
        proxy.auditTo(trail);
        if (metrics != null) {
            proxy.timeRewritesWith(metrics.rewriteTimers());
        }
        Readiness readiness = Readiness.of(cipher);
        GrpcHealth health = new GrpcHealth(readiness);
        HttpProcessor http = new HttpProcessor(config.http(), cipher, subjectCipher);
        // Who each stream comes from, for the policy's readers and writers: the certificate this server verified, or
        // the one the pod's mesh sidecar verified and forwards; never anything a workload can set itself. On a Unix
        // domain socket (unixSockets:), the identity configured for that socket, whose file mode says who connects.
        StreamIdentity identities = tls != null ? StreamIdentity.CERTIFICATE
                : config.meshSidecarTls() ? StreamIdentity.FORWARDED_CLIENT_CERT : StreamIdentity.NONE;
        // The admin API (forget a subject) on the same port, authenticated as the streams are; its forgets run off the
        // transport threads. Daemon thread: nothing to close.
        SubjectAdminService admin = new SubjectAdminService(subjectKeys == null ? null
                : (scope, subject) -> subjectKeys.forget(scope, subject, SUBJECT_KEYS_TIMEOUT),
                AdminAccess.of(config.admin(), identities != StreamIdentity.NONE),
                audit == null ? AdminAudit.NONE : audit.admin());
        ExtProcServer server = ExtProcServer.start(config.listen(), proxy, DataPathLimits.extProc(limits),
                List.of(workers -> new HttpExtProcService(http, workers), health.service(), workers -> admin), tls, identities,
                config.observability() == null ? ConnectionLog.TEXT : ConnectionLog.of(config.observability().connectionLog()),
                config.unixSockets());
        AutoCloseable policyWatcher;
        PolicyReloads reloads;
        if (xds != null) {
            xds.attach(config.policies(), proxy::policy, http::rules);
            policyWatcher = xds;
            reloads = xds.reloads();
        } else {
            PolicyWatcher watcher = PolicyWatcher.start(configFile, config, proxy::policy, http::rules,
                    PolicyWatcher.DEFAULT_INTERVAL);
            policyWatcher = watcher;
            reloads = watcher.reloads();
        }
        ObservabilityServer observability = null;
        if (metrics != null) {
            metrics.bind(server.metrics());
            metrics.bindWorkers(server.workers());
            metrics.bind(cipher);
            metrics.bind(readiness);
            metrics.bind(reloads);
            metrics.bind(heldBytes);
            try {
                observability = ObservabilityServer.start(config.observability().listen(), metrics::scrape, readiness);
            } catch (IOException e) {
                // e.g. the port is taken: nothing started may outlive the failed start
                new Running(server, policyWatcher, audit, health, null, metrics, subjectKeys).close();
                throw new IOException("observability.listen " + config.observability().listen() + ": " + e.getMessage(), e);
            }
            log.info("metrics and health on http://{}:{}/metrics, /healthz, /readyz",
                    observability.address().getHostString(), observability.address().getPort());
        }
        // keys loaded, policy in force, listening
        readiness.serving();
        health.update();
        log.info("meshcrypt filter-service listening on {} (config {}, {} broker listener(s), {} HTTP rule(s), {})",
                config.listen(), configFile, config.brokers().size(), config.http().rules().size(), config.policy());
        log.info("limits: {}", limits);
        if (audit != null) {
            log.info("audit trail: {}", config.audit().stdout() ? "standard output" : config.audit().file());
        }
        return new Running(server, policyWatcher, audit, health, observability, metrics, subjectKeys);
    }

    /**
     * With a {@code subjectKeys:} section: the subject-key store, its log read from the brokers in the background
     * (records needing a subject key wait for it, as for a data key); else null.
     */
    static SubjectKeyStore openSubjectKeys(FilterConfig config, ValueCipher cipher) throws Exception {
        if (config.subjectKeys() == null) {
            return null;
        }
        if (!(cipher instanceof ValueCipherV2 v2)) {
            // The KMS of keys: wraps each scope's secret: without it, records of subject: entries are refused.
            log.warn("subjectKeys: is ignored without a keys: section; records of policy entries with subject: are refused");
            return null;
        }
        SubjectKeyStore store = new SubjectKeyStore(new KafkaSubjectKeyLog(config.subjectKeys().location(),
                SUBJECT_KEYS_TIMEOUT), v2.deks().provider(), config.subjectKeys().settings());
        String topic = config.subjectKeys().topic();
        store.loaded().whenComplete((ok, e) -> {
            if (e == null) {
                log.info("subject keys: {} subject(s) read from {}", store.subjects(), topic);
            }
        });
        return store;
    }
}
