package io.meshcrypt.filter.http;

import io.meshcrypt.filter.TestLimits;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.crypto.ValueCipherV1;
import io.meshcrypt.filter.kafka.BrokerAddresses;
import io.meshcrypt.filter.kafka.KafkaProxy;
import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.transport.ConnectionLog;
import io.meshcrypt.filter.transport.ExtProcServer;
import io.meshcrypt.filter.transport.StreamIdentity;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * What the HTTP sidecar tests run: the filter-service's gRPC server in process (plaintext, from a filter.yaml), the
 * {@link EchoApp} and a real Envoy ({@link EnvoySidecar}) between a client and the app. Envoy reaches the
 * filter-service over the config's first {@code unixSockets} entry when it has one, else over TCP.
 */
final class HttpSidecarFixture implements AutoCloseable {

    final ValueCipherV1 cipher;
    final EchoApp app;
    private final ExtProcServer filter;
    private EnvoySidecar envoy;

    private HttpSidecarFixture(ValueCipherV1 cipher, ExtProcServer filter, EchoApp app) {
        this.cipher = cipher;
        this.filter = filter;
        this.app = app;
    }

    /** Writes {@code filterYaml} and a new keyset to {@code dir} and starts all three. */
    static HttpSidecarFixture start(Path dir, String filterYaml) throws Exception {
        Keysets.create(dir.resolve("keyset.json"));
        FilterConfig config = FilterConfig.load(Files.writeString(dir.resolve("filter.yaml"), filterYaml));
        ValueCipherV1 cipher = ValueCipherV1.fromKeysetFile(config.keyset());
        KafkaProxy kafka = new KafkaProxy(config.policy(), cipher, null, new BrokerAddresses(Map.of()),
                TestLimits.kafka(config.maxFrameBytes()));
        HttpProcessor http = new HttpProcessor(config.http(), cipher);
        ExtProcServer filter = ExtProcServer.start(config.listen(), kafka, TestLimits.extProc(),
                List.of(workers -> new HttpExtProcService(http, workers)), null, StreamIdentity.NONE, ConnectionLog.TEXT,
                config.unixSockets());
        HttpSidecarFixture fixture = new HttpSidecarFixture(cipher, filter, null);
        try {
            fixture = new HttpSidecarFixture(cipher, filter, EchoApp.start());
            fixture.envoy = config.unixSockets().isEmpty()
                    ? EnvoySidecar.start(dir, fixture.app.port(), filter.port())
                    : EnvoySidecar.startOnUnixSocket(dir, fixture.app.port(), config.unixSockets().getFirst().path());
            return fixture;
        } catch (Exception | Error e) {
            fixture.close();
            throw e;
        }
    }

    /** The port of Envoy's HTTP listener, where clients send their requests. */
    int port() {
        return envoy.port();
    }

    @Override
    public void close() {
        if (envoy != null) {
            envoy.close();
        }
        if (app != null) {
            app.close();
        }
        filter.close();
    }
}
