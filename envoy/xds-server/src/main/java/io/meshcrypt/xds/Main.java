package io.meshcrypt.xds;

import io.meshcrypt.meshconfig.cli.ConfigCommandLine;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.ScopeType;

/**
 * Command line of the xDS server: {@code serve} and {@code validate}; exit codes and error lines as
 * {@link ConfigCommandLine}.
 */
@Command(name = "meshcrypt-xds-server", subcommands = {Main.Serve.class, Main.Validate.class},
        description = "The meshcrypt xDS server: configures every Envoy sidecar, and delivers policy to the"
                + " filter-services, from one mesh file.")
public final class Main {

    static final String DEFAULT_XDS = "127.0.0.1:18000";
    static final String DEFAULT_STATUS = "127.0.0.1:18001";

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
        return ConfigCommandLine.of(new Main(out), "meshcrypt-xds-server", "invalid mesh file", out, err);
    }

    static final class MeshFile {
        @Option(names = "--mesh", required = true, paramLabel = "FILE", description = "The mesh file (YAML).")
        String mesh;
    }

    /** Clients must present a certificate chaining to the CA; the files are re-read when they change. */
    static final class TlsOptions {
        @Option(names = "--tls-certificate", required = true, paramLabel = "FILE", description = "The server's certificate (PEM).")
        Path certificate;

        @Option(names = "--tls-private-key", required = true, paramLabel = "FILE",
                description = "Its private key (PEM, PKCS#8), readable by its owner only (chmod 600).")
        Path privateKey;

        @Option(names = "--tls-trusted-ca", required = true, paramLabel = "FILE", description = "The only CA clients' certificates may chain to (PEM).")
        Path trustedCa;
    }

    @Command(name = "serve", description = "Serve ADS and the status endpoint, pushing every change of the mesh file.")
    static final class Serve implements Callable<Integer> {
        @Mixin
        MeshFile mesh;

        @Option(names = "--xds", paramLabel = "HOST:PORT", defaultValue = DEFAULT_XDS,
                description = "ADS gRPC address Envoys and filter-services connect to (default ${DEFAULT-VALUE}).")
        String xds;

        @Option(names = "--status", paramLabel = "HOST:PORT", defaultValue = DEFAULT_STATUS,
                description = "HTTP address of GET /status and GET /metrics (default ${DEFAULT-VALUE}).")
        String status;

        @ArgGroup(exclusive = false, heading = "Mutual TLS on ADS (all three or none):%n")
        TlsOptions tls;

        @Override
        public Integer call() throws Exception {
            TlsMaterial material = tls == null ? null : TlsMaterial.load(new TlsFiles(tls.certificate, tls.privateKey, tls.trustedCa));
            XdsServer server = XdsServer.start(Path.of(mesh.mesh), address("--xds", xds), address("--status", status), material);
            CountDownLatch stopped = new CountDownLatch(1);
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                server.close();
                stopped.countDown();
            }, "shutdown"));
            stopped.await();
            return 0;
        }
    }

    @Command(name = "validate", description = "Check the mesh file and say what it holds.")
    static final class Validate implements Callable<Integer> {
        @ParentCommand
        Main main;

        @Mixin
        MeshFile mesh;

        @Override
        public Integer call() throws Exception {
            Mesh m = MeshReader.load(Path.of(mesh.mesh));
            main.out.println(mesh.mesh + ": valid (" + m.kafkaClusters().size() + " Kafka cluster(s), "
                    + m.sidecars().size() + " sidecar(s), " + m.policy() + ")");
            return 0;
        }
    }

    private static InetSocketAddress address(String option, String value) {
        int colon = value.lastIndexOf(':');
        try {
            String host = value.substring(0, colon).replace("[", "").replace("]", "");
            InetSocketAddress address = new InetSocketAddress(host, Integer.parseInt(value.substring(colon + 1)));
            if (!address.isUnresolved()) {
                return address;
            }
        } catch (RuntimeException e) {
            // falls through to the one error message below
        }
        throw new IllegalArgumentException(option + " must be host:port with a resolvable host (got \"" + value + "\")");
    }
}
