package io.meshcrypt.xds;

/** A mesh file with one sidecar, {@code app-a}, reaching one broker through bootstrap port 19192. */
public final class OneSidecarMesh {

    public static final String YAML = """
            filterService: 127.0.0.1:50051
            kafkaClusters:
              main:
                brokers:
                  1: 10.0.0.1:9092
            sidecars:
              app-a:
                kafka:
                  main:
                    bootstrap: 127.0.0.1:19192
                    brokers:
                      1: 127.0.0.1:19193
            policy:
              encrypt: ["orders-*"]
            """;

    private OneSidecarMesh() {
    }
}
