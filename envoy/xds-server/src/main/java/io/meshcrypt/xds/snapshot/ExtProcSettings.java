package io.meshcrypt.xds.snapshot;

import static io.meshcrypt.xds.snapshot.StructValues.string;
import static io.meshcrypt.xds.snapshot.StructValues.struct;
import static io.meshcrypt.xds.snapshot.StructValues.structValue;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.Duration;
import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.envoyproxy.envoy.config.core.v3.GrpcService;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode;
import io.envoyproxy.envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.HeaderSendMode;
import java.net.URI;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The one source of meshcrypt's ext_proc filter settings (fail closed, what is sent, timeouts) and of the body buffer
 * limit HTTP ext_proc relies on. The xDS resources are built from here. envoy/http-sidecar.yaml.template and the
 * EnvoyFilters under istio/ write the same values out as YAML; ExtProcSettingsAgreementTest fails the build when one
 * of them says something else.
 */
public final class ExtProcSettings {

    public static final String NETWORK_EXT_PROC_TYPE = "type.googleapis.com/envoy.extensions.filters.network.ext_proc.v3.NetworkExternalProcessor";
    public static final String HTTP_EXT_PROC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";

    /** Network ext_proc, per chunk and direction; the 200 ms default closes connections carrying large batches. */
    public static final String KAFKA_MESSAGE_TIMEOUT = "5s";
    /** {@link #KAFKA_MESSAGE_TIMEOUT} for the bridge module, which takes milliseconds. */
    public static final long KAFKA_MESSAGE_TIMEOUT_MILLIS = 5_000;

    /**
     * Which filter streams a Kafka connection to the filter-service. {@link #EXT_PROC}: Envoy's own network ext_proc.
     * {@link #BRIDGE}: the dynamic module envoy/dynamic-module/ext-proc-bridge (docs/dynamic-module.md), for Envoys
     * built without network ext_proc (istio-proxy); the same stream, headers and fail-closed behaviour.
     */
    public enum KafkaFilter {
        EXT_PROC, BRIDGE;

        /** The xDS server's switch: {@value #SWITCH} = {@code ext_proc} (default) or {@code bridge}. */
        public static final String SWITCH = "MESHCRYPT_KAFKA_FILTER";

        /** @throws IllegalArgumentException for any other value, naming the variable */
        public static KafkaFilter parse(String value) {
            return switch (value == null ? "" : value) {
                case "", "ext_proc" -> EXT_PROC;
                case "bridge" -> BRIDGE;
                default -> throw new IllegalArgumentException(SWITCH + "=" + value + ": must be ext_proc or bridge");
            };
        }
    }

    public static final String DYNAMIC_MODULES_FILTER = "envoy.filters.network.dynamic_modules";
    public static final String DYNAMIC_MODULES_TYPE = "type.googleapis.com/envoy.extensions.filters.network.dynamic_modules.v3.DynamicModuleNetworkFilter";
    /** Envoy loads {@code lib<name>.so} from ENVOY_DYNAMIC_MODULES_SEARCH_PATH; the crate's [lib] name. */
    public static final String BRIDGE_MODULE = "meshcrypt_ext_proc_bridge";
    /** The filter the module implements (its {@code FILTER_NAME}). */
    public static final String BRIDGE_FILTER_NAME = "ext_proc_bridge";

    /**
     * Kafka listeners and broker clusters, per connection and direction. Envoy reads a socket until it would block or
     * its buffer reaches this, and network ext_proc sends each read as one message (docs/envoy-tuning.md): at 1 MiB
     * reads end by blocking at 200-400 KiB, 0.9 messages per Produce request and 7 per 2.5 MB Fetch response; 64 KiB
     * made them 3 and 47 and cost Envoy +0.6 us per record consumed; 4 MiB measured the same as 1 MiB. Envoy's
     * default, pinned so it has an owner.
     */
    public static final int KAFKA_BUFFER_LIMIT = 1 << 20;

    /** HTTP ext_proc, per message: parsing and encrypting a 5 MB body on a busy worker. */
    public static final long HTTP_MESSAGE_TIMEOUT_SECONDS = 10;
    /** HTTP ext_proc: the whole exchange of one request (up to four messages). */
    public static final long HTTP_EXCHANGE_TIMEOUT_SECONDS = 30;
    /**
     * BUFFERED HTTP bodies are held whole in Envoy up to this, per connection and direction (a larger request gets
     * 413, a larger response 500): 5 MB bodies plus encryption growth (an encrypted field grows to about 4/3 + 52).
     */
    public static final int HTTP_BUFFER_LIMIT = 16 << 20;

    private ExtProcSettings() {
    }

    /**
     * What every network ext_proc filter (Kafka) carries whatever its listener: fail closed (a filter-service that is
     * down or failing closes the connection; no byte passes unprocessed), every byte of both directions STREAMED,
     * and the chunk deadline. A listener adds its {@code stat_prefix} and {@code grpc_service}.
     */
    public static Struct kafkaSettings() {
        return struct(Map.of(
                "failure_mode_allow", Value.newBuilder().setBoolValue(false).build(),
                "processing_mode", structValue(Map.of("process_read", string("STREAMED"), "process_write", string("STREAMED"))),
                "message_timeout", string(KAFKA_MESSAGE_TIMEOUT)));
    }

    /** The network ext_proc config of one listener: {@link #kafkaSettings()} plus its stat prefix and gRPC service. */
    public static Struct kafkaFilter(String statPrefix, Value grpcService) {
        Map<String, Value> fields = new HashMap<>(kafkaSettings().getFieldsMap());
        fields.put("stat_prefix", string(statPrefix));
        fields.put("grpc_service", grpcService);
        return struct(fields);
    }

    /**
     * The bridge module's filter config: the same stream as {@link #kafkaFilter} (message timeout, request headers,
     * fail closed: the module has no other mode), but to the filter-service's address, since the module runs its own
     * gRPC client rather than an Envoy cluster. Its {@code filter_config} is JSON in a StringValue, which Envoy hands
     * to the module unchanged; the module refuses unknown keys.
     *
     * @param filterService {@code host:port} of the filter-service
     * @param initialMetadata the stream's request headers, in order, as in {@code initial_metadata}
     * @param tls mutual TLS ({@code https://}), or plaintext HTTP/2 ({@code http://}) without it
     */
    public static Struct kafkaBridge(String filterService, List<Map.Entry<String, String>> initialMetadata,
                                     Optional<BridgeTls> tls) {
        Map<String, Object> moduleConfig = new LinkedHashMap<>();
        moduleConfig.put("filter_service", (tls.isPresent() ? "https://" : "http://") + filterService);
        moduleConfig.put("message_timeout_ms", KAFKA_MESSAGE_TIMEOUT_MILLIS);
        moduleConfig.put("initial_metadata", initialMetadata.stream()
                .map(h -> Map.of("key", h.getKey(), "value", h.getValue()))
                .toList());
        tls.ifPresent(t -> moduleConfig.put("tls", t.moduleConfig()));
        String json;
        try {
            json = JSON.writeValueAsString(moduleConfig);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("maps of strings and numbers always print as JSON", e);
        }
        return struct(Map.of(
                "dynamic_module_config", structValue(Map.of("name", string(BRIDGE_MODULE))),
                "filter_name", string(BRIDGE_FILTER_NAME),
                "filter_config", structValue(Map.of(
                        "@type", string("type.googleapis.com/google.protobuf.StringValue"),
                        "value", string(json)))));
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The bridge's {@code tls} keys: what the built-in filter's cluster gets (the sidecar's certificate files, the
     * mesh CA, the filter-service's SPIFFE id matched exactly), as file paths the module reads itself, re-reading them
     * for new connections after a rotation. The server name defaults to the filter-service's host.
     */
    public record BridgeTls(Path certificateChain, Path privateKey, Path trustedCa, URI filterServiceSan) {

        Map<String, String> moduleConfig() {
            Map<String, String> keys = new LinkedHashMap<>();
            keys.put("certificate_chain", certificateChain.toString());
            keys.put("private_key", privateKey.toString());
            keys.put("trusted_ca", trustedCa.toString());
            keys.put("filter_service_san", filterServiceSan.toString());
            return keys;
        }
    }

    /** The HTTP ext_proc config, processing through {@code filterServiceCluster}. */
    public static ExternalProcessor httpFilter(String filterServiceCluster) {
        return ExternalProcessor.newBuilder()
                .setGrpcService(GrpcService.newBuilder()
                        .setEnvoyGrpc(GrpcService.EnvoyGrpc.newBuilder().setClusterName(filterServiceCluster))
                        .setTimeout(seconds(HTTP_EXCHANGE_TIMEOUT_SECONDS)))
                // a filter-service that is down, slow or failing turns the request into a 5xx: no unprocessed body
                .setFailureModeAllow(false)
                // BUFFERED: each body arrives whole, so JSON can be parsed and the new content-length travels with it
                .setProcessingMode(ProcessingMode.newBuilder()
                        .setRequestHeaderMode(HeaderSendMode.SEND)
                        .setRequestBodyMode(BodySendMode.BUFFERED)
                        .setRequestTrailerMode(HeaderSendMode.SKIP)
                        .setResponseHeaderMode(HeaderSendMode.SEND)
                        .setResponseBodyMode(BodySendMode.BUFFERED)
                        .setResponseTrailerMode(HeaderSendMode.SKIP))
                // the filter-service answers "nothing more for this request" when no rule can apply
                .setAllowModeOverride(true)
                .setMessageTimeout(seconds(HTTP_MESSAGE_TIMEOUT_SECONDS))
                .setMaxMessageTimeout(seconds(HTTP_MESSAGE_TIMEOUT_SECONDS))
                .build();
    }

    private static Duration seconds(long seconds) {
        return Duration.newBuilder().setSeconds(seconds).build();
    }
}
