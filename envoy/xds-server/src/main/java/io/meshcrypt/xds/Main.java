package io.meshcrypt.xds;

import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;

/** Command line of the xDS server: {@code serve} and {@code validate}. */
public final class Main {

    static final String DEFAULT_XDS = "127.0.0.1:18000";
    static final String DEFAULT_STATUS = "127.0.0.1:18001";

    private static final String USAGE = """
            usage: meshcrypt-xds-server serve --mesh FILE [--xds HOST:PORT] [--status HOST:PORT]
                   meshcrypt-xds-server validate --mesh FILE
              --xds     ADS gRPC address Envoys connect to (default %s)
              --status  HTTP address of GET /status and GET /metrics (default %s)""".formatted(DEFAULT_XDS, DEFAULT_STATUS);

    private Main() {
    }

    public static void main(String[] args) {
        try {
            System.exit(run(args));
        } catch (ConfigException e) {
            System.err.println("meshcrypt-xds-server: invalid mesh file: " + e.getMessage());
            System.exit(2);
        } catch (Exception e) {
            System.err.println("meshcrypt-xds-server: " + e.getMessage());
            System.exit(1);
        }
    }

    static int run(String[] args) throws Exception {
        if (args.length == 0 || args.length % 2 == 0) {
            System.err.println(USAGE);
            return 2;
        }
        String mesh = null;
        String xds = DEFAULT_XDS;
        String status = DEFAULT_STATUS;
        for (int i = 1; i < args.length; i += 2) {
            switch (args[i]) {
                case "--mesh" -> mesh = args[i + 1];
                case "--xds" -> xds = args[i + 1];
                case "--status" -> status = args[i + 1];
                default -> {
                    System.err.println("unknown option " + args[i] + "\n" + USAGE);
                    return 2;
                }
            }
        }
        if (mesh == null) {
            System.err.println("--mesh is required\n" + USAGE);
            return 2;
        }
        switch (args[0]) {
            case "validate" -> {
                Mesh m = MeshReader.load(Path.of(mesh));
                System.out.println(mesh + ": valid (" + m.kafkaClusters().size() + " Kafka cluster(s), "
                        + m.sidecars().size() + " sidecar(s), " + m.policy() + ")");
                return 0;
            }
            case "serve" -> {
                XdsServer server = XdsServer.start(Path.of(mesh), address("--xds", xds), address("--status", status));
                CountDownLatch stopped = new CountDownLatch(1);
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    server.close();
                    stopped.countDown();
                }, "shutdown"));
                stopped.await();
                return 0;
            }
            default -> {
                System.err.println(USAGE);
                return 2;
            }
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
