package io.meshcrypt.filter;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.Limits;
import io.meshcrypt.filter.config.PolicyWatcher;
import io.meshcrypt.filter.config.XdsPolicySource;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.http.HttpExtProcService;
import io.meshcrypt.filter.http.HttpProcessor;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.keys.KeyServices;
import io.meshcrypt.filter.keys.KeysCli;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Command line of the filter-service: {@code serve}, and {@code keyset create|rotate} for local keysets. */
public final class Main {
    private static final Logger log = LoggerFactory.getLogger(Main.class);

    private static final String USAGE = """
            usage: meshcrypt-filter-service serve --config FILE
                   meshcrypt-filter-service keyset create --out FILE
                   meshcrypt-filter-service keyset rotate --file FILE
            """ + KeysCli.USAGE;

    /** How long a start waits for the first policy from {@code policyFrom: xds://}; then it fails. */
    private static final Duration XDS_POLICY_WAIT = Duration.ofSeconds(30);

    private Main() {
    }

    public static void main(String[] args) {
        try {
            System.exit(run(args));
        } catch (ConfigException e) {
            System.err.println("meshcrypt: invalid configuration: " + e.getMessage());
            System.exit(2);
        } catch (Exception e) {
            System.err.println("meshcrypt: " + e.getMessage());
            System.exit(1);
        }
    }

    static int run(String[] args) throws Exception {
        if (args.length == 3 && args[0].equals("serve") && args[1].equals("--config")) {
            serve(Path.of(args[2]));
            return 0;
        }
        if (args.length == 4 && args[0].equals("keyset") && args[1].equals("create") && args[2].equals("--out")) {
            Keysets.create(Path.of(args[3]));
            System.out.println("created keyset " + args[3]);
            return 0;
        }
        if (args.length == 4 && args[0].equals("keyset") && args[1].equals("rotate") && args[2].equals("--file")) {
            Keysets.rotate(Path.of(args[3]));
            System.out.println("rotated keyset " + args[3] + ": new values use a new primary key, old ones stay readable");
            return 0;
        }
        int keys = KeysCli.run(args, System.out);
        if (keys >= 0) {
            return keys;
        }
        System.err.println(USAGE);
        return 2;
    }

    private static void serve(Path configFile) throws Exception {
        FilterConfig config = FilterConfig.load(configFile);
        XdsPolicySource xds = null;
        if (config.policyServer() != null) {
            // fail closed: no traffic is served before the xDS server's policy is in force
            xds = XdsPolicySource.start(config.policyServer(), "filter-service@" + config.listen().getHostString() + ":"
                    + config.listen().getPort());
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
        Limits limits = config.limits();
        ValueCipher cipher = KeyServices.cipher(config);
        // Only with sivKeyset set or a policy entry asking for keys: deterministic; the file is created on first use.
        RecordKeyCipher keyCipher = config.sivKeyset() == null ? null : RecordKeyCipher.openOrCreate(config.sivKeyset());
        KafkaProxy proxy = new KafkaProxy(config.policy(), cipher, keyCipher, new BrokerAddresses(config.brokers()),
                new KafkaProxy.Limits(limits.maxFrameBytes(), limits.maxRequestFrameBytes(), limits.maxInFlightRequests(),
                        limits.maxTopicIds(), limits.maxDecompressedBytes(), limits.maxNewDataKeysPerRequest()),
                new HeldBytesBudget(limits.maxHeldBytesPerConnection(), limits.maxHeldBytesTotal()));
        HttpProcessor http = new HttpProcessor(config.http(), cipher);
        ExtProcServer.Limits serverLimits = ExtProcServer.Limits.defaults()
                .withMaxInboundMessageBytes(limits.maxExtProcMessageBytes())
                .withHeldFrameTimeout(limits.heldFrameTimeout());
        ExtProcServer server = ExtProcServer.start(config.listen(), proxy, serverLimits,
                List.of(workers -> new HttpExtProcService(http, workers)));
        AutoCloseable policyWatcher;
        if (xds != null) {
            xds.attach(config.policies(), proxy::policy, http::rules);
            policyWatcher = xds;
        } else {
            policyWatcher = PolicyWatcher.start(configFile, config, proxy::policy, http::rules, PolicyWatcher.DEFAULT_INTERVAL);
        }
        log.info("meshcrypt filter-service listening on {} (config {}, {} broker listener(s), {} HTTP rule(s), {})",
                config.listen(), configFile, config.brokers().size(), config.http().rules().size(), config.policy());
        log.info("limits: {}", limits);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                policyWatcher.close();
            } catch (Exception e) {
                log.warn("closing the policy source: {}", e.toString());
            }
            server.close();
            stopped.countDown();
        }, "shutdown"));
        stopped.await();
    }
}
