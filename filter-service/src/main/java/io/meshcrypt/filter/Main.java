package io.meshcrypt.filter;

import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.config.Limits;
import io.meshcrypt.filter.config.PolicyWatcher;
import io.meshcrypt.filter.config.XdsPolicySource;
import io.meshcrypt.filter.crypto.RecordKeyCipher;
import io.meshcrypt.filter.crypto.ValueCipher;
import io.meshcrypt.filter.framing.HeldBytesBudget;
import io.meshcrypt.filter.http.HttpExtProcService;
import io.meshcrypt.filter.http.HttpProcessor;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.keys.KeyServices;
import io.meshcrypt.filter.keys.KeysCli;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.meshconfig.cli.ConfigCommandLine;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.ScopeType;

/**
 * Command line of the filter-service: {@code serve}, {@code keyset create|rotate} for local keysets, and the key
 * commands of {@link KeysCli} ({@code keys}, {@code inspect}); exit codes and error lines as {@link ConfigCommandLine}.
 */
@Command(name = "meshcrypt-filter-service", subcommands = {Main.Serve.class, Main.Keyset.class, Main.Keys.class,
        Main.Inspect.class}, description = "The meshcrypt filter-service: encrypts and decrypts Kafka and HTTP traffic"
        + " that Envoy sidecars stream to it over ext_proc.")
public final class Main {
    private static final Logger log = LoggerFactory.getLogger(Main.class);

    /** How long a start waits for the first policy from {@code policyFrom: xds://}; then it fails. */
    private static final Duration XDS_POLICY_WAIT = Duration.ofSeconds(30);

    @Option(names = {"-h", "--help"}, usageHelp = true, scope = ScopeType.INHERIT, description = "Show this help and exit.")
    boolean help;

    /** Where the commands print their results (usage and errors go to the command line's own streams). */
    private final PrintStream out;

    private Main(PrintStream out) {
        this.out = out;
    }

    public static void main(String[] args) {
        System.exit(commandLine(System.out, System.err).execute(args));
    }

    /** The command line, with a one-line message instead of a stack trace for a failed command. */
    static CommandLine commandLine(PrintStream out, PrintStream err) {
        return ConfigCommandLine.of(new Main(out), "meshcrypt", "invalid configuration", out, err);
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

    @Command(name = "keyset", description = "Create or rotate a local Tink keyset (the config's keyset: file).")
    static final class Keyset {
        @ParentCommand
        Main main;

        @Command(name = "create", description = "Write a new keyset, readable by its owner only.")
        int create(@Option(names = "--out", required = true, paramLabel = "FILE") String out) throws Exception {
            Keysets.create(Path.of(out));
            main.out.println("created keyset " + out);
            return 0;
        }

        @Command(name = "rotate", description = "Add a new primary key; values encrypted before stay readable.")
        int rotate(@Option(names = "--file", required = true, paramLabel = "FILE") String file) throws Exception {
            Keysets.rotate(Path.of(file));
            main.out.println("rotated keyset " + file + ": new values use a new primary key, old ones stay readable");
            return 0;
        }
    }

    @Command(name = "keys", description = "Create, rotate or list the KEKs of the config's keys: section.")
    static final class Keys implements Callable<Integer> {
        @ParentCommand
        Main main;

        @Parameters(paramLabel = "create|rotate|list", description = "create the first KEK, make a new one current, or"
                + " list them (* marks the current one).")
        String command;

        @Option(names = "--config", required = true, paramLabel = "FILE", description = "The filter config (YAML).")
        String config;

        @Override
        public Integer call() throws Exception {
            return KeysCli.run(new String[] {"keys", command, "--config", config}, main.out);
        }
    }

    @Command(name = "inspect", description = "Show a value's envelope header; with --config and --topic, whether it is"
            + " bound to that topic (exit 1 if not).")
    static final class Inspect implements Callable<Integer> {
        @ParentCommand
        Main main;

        @Parameters(paramLabel = "VALUE", description = "The value in hex or base64.")
        String value;

        @ArgGroup(exclusive = false)
        TopicBinding binding;

        static final class TopicBinding {
            @Option(names = "--config", required = true, paramLabel = "FILE",
                    description = "The filter config whose keys can tell.")
            String config;

            @Option(names = "--topic", required = true, paramLabel = "TOPIC", description = "The topic to check.")
            String topic;
        }

        @Override
        public Integer call() throws Exception {
            String[] args = binding == null ? new String[] {"inspect", value}
                    : new String[] {"inspect", "--config", binding.config, "--topic", binding.topic, value};
            return KeysCli.run(args, main.out);
        }
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
        ValueCipher cipher = KeyServices.cipher(config);
        // Only with sivKeyset set or a policy entry asking for keys: deterministic; the file is created on first use.
        RecordKeyCipher keyCipher = config.sivKeyset() == null ? null : RecordKeyCipher.openOrCreate(config.sivKeyset());
        Limits limits = config.limits();
        KafkaProxy proxy = new KafkaProxy(config.policy(), cipher, keyCipher, new BrokerAddresses(config.brokers()),
                kafkaLimits(limits), heldBytes(limits));
        HttpProcessor http = new HttpProcessor(config.http(), cipher);
        ExtProcServer server = ExtProcServer.start(config.listen(), proxy, extProcLimits(limits),
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

    // The data path's shares of the config's limits, built here only: framing, kafka and transport never read the config.

    static KafkaProxy.Limits kafkaLimits(Limits limits) {
        return new KafkaProxy.Limits(limits.maxFrameBytes(), limits.maxRequestFrameBytes(), limits.maxInFlightRequests(),
                limits.maxTopicIds(), limits.maxDecompressedBytes(), limits.maxNewDataKeysPerRequest());
    }

    static HeldBytesBudget heldBytes(Limits limits) {
        return new HeldBytesBudget(limits.maxHeldBytesPerConnection(), limits.maxHeldBytesTotal(), Limits.REWRITE_CHARGE);
    }

    static ExtProcServer.Limits extProcLimits(Limits limits) {
        return ExtProcServer.Limits.defaults()
                .withMaxInboundMessageBytes(limits.maxExtProcMessageBytes())
                .withHeldFrameTimeout(limits.heldFrameTimeout());
    }
}
