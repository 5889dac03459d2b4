package io.meshcrypt.xds;

import io.meshcrypt.meshconfig.FileWatcher;
import io.meshcrypt.meshconfig.mesh.Mesh;
import io.meshcrypt.meshconfig.mesh.MeshReader;
import io.meshcrypt.meshconfig.tls.TlsMaterial;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import io.meshcrypt.xds.server.AdsServer;
import io.meshcrypt.xds.server.NodeSnapshots;
import io.meshcrypt.xds.server.StatusHttpServer;
import io.meshcrypt.xds.snapshot.EnvoyResources;
import io.meshcrypt.xds.snapshot.MeshSnapshots;
import io.meshcrypt.xds.snapshot.MeshSnapshots.MeshVersion;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.TimeGauge;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The xDS control plane: watches the mesh file, has each valid version built into one snapshot per sidecar
 * ({@link MeshSnapshots}) and served over ADS ({@link AdsServer}, {@link NodeSnapshots}); status and metrics on
 * {@link StatusHttpServer}. An invalid mesh file is logged and never reaches an Envoy.
 */
public final class XdsServer implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(XdsServer.class);
    private static final Duration MESH_POLL = Duration.ofMillis(100);

    private final Path meshFile;
    private final MeshSnapshots snapshots = new MeshSnapshots(EnvoyResources.standard());
    private final PrometheusMeterRegistry meters = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final NodeSnapshots nodes = new NodeSnapshots(meters);
    private final Instant started = Instant.now();
    private volatile String version;
    private volatile Instant versionSince;
    private volatile String lastMeshError;
    private volatile long meshRejections;
    private AdsServer ads;
    private StatusHttpServer status;
    private FileWatcher watcher;

    private XdsServer(Path meshFile) {
        this.meshFile = meshFile;
        FunctionCounter.builder("meshcrypt.xds.mesh.rejections", this, s -> s.meshRejections)
                .description("mesh file changes rejected as invalid (nothing pushed)")
                .register(meters);
        TimeGauge.builder("meshcrypt.xds.uptime", started, TimeUnit.MILLISECONDS, s -> Duration.between(s, Instant.now()).toMillis())
                .description("time since the xDS server started")
                .strongReference(true)
                .register(meters);
    }

    /** Loads the mesh file (an invalid one fails the start), then serves ADS on {@code xds} and status on {@code status}. */
    public static XdsServer start(Path meshFile, InetSocketAddress xds, InetSocketAddress status) throws ConfigException, IOException {
        return start(meshFile, xds, status, null);
    }

    /** As {@link #start(Path, InetSocketAddress, InetSocketAddress)}; with {@code tls} (else null), ADS over mutual TLS. */
    public static XdsServer start(Path meshFile, InetSocketAddress xds, InetSocketAddress status, TlsMaterial tls)
            throws ConfigException, IOException {
        XdsServer server = new XdsServer(meshFile);
        byte[] content;
        try {
            content = Files.readAllBytes(meshFile);
        } catch (IOException e) {
            throw new ConfigException(meshFile + ": cannot read mesh file: " + e, e);
        }
        server.apply(MeshReader.parse(meshFile, content), content);
        try {
            server.serve(xds, status, tls);
            server.watcher = FileWatcher.start(meshFile, content, MESH_POLL, server::meshChanged);
        } catch (IOException | RuntimeException e) {
            server.close();
            throw e;
        }
        return server;
    }

    private void serve(InetSocketAddress xds, InetSocketAddress statusAddress, TlsMaterial tls) throws IOException {
        ads = AdsServer.start(xds, nodes, tls);
        status = StatusHttpServer.start(statusAddress, this::status, meters);
        log.info("xDS server: ADS on {}:{}{}, status on http://{}:{}/status, mesh file {} (version {})",
                xdsAddress().getHostString(), xdsAddress().getPort(), tls == null ? "" : " (mutual TLS)", statusAddress().getHostString(),
                statusAddress().getPort(), meshFile, version);
    }

    public InetSocketAddress xdsAddress() {
        return ads.address();
    }

    public InetSocketAddress statusAddress() {
        return status.address();
    }

    /** The version of the snapshots built from the current mesh file. */
    public String version() {
        return version;
    }

    private void meshChanged(byte[] content) {
        Mesh mesh;
        try {
            mesh = MeshReader.parse(meshFile, content);
        } catch (ConfigException e) {
            lastMeshError = e.getMessage();
            meshRejections++;
            log.error("mesh file rejected, nothing pushed; Envoys keep version {}: {}", version, e.getMessage());
            return;
        }
        lastMeshError = null;
        apply(mesh, content);
    }

    /** Called by one thread at a time: the start, then the file watcher. */
    private void apply(Mesh mesh, byte[] content) {
        MeshVersion next = snapshots.next(mesh, content);
        version = next.version();
        versionSince = Instant.now();
        nodes.publish(next);
        log.info("mesh version {}: {} sidecar(s), {}", next.version(), mesh.sidecars().size(), mesh.policy());
    }

    /** What {@code GET /status} returns: the mesh version, the last mesh file error, every Envoy and filter-service seen. */
    public Map<String, Object> status() {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("meshFile", meshFile.toString());
        out.put("version", version);
        out.put("versionSince", versionSince.toString());
        out.put("lastMeshError", lastMeshError);
        out.put("meshRejections", meshRejections);
        out.put("envoys", nodes.envoyStatus());
        out.put("filterServices", nodes.filterServiceStatus());
        return out;
    }

    @Override
    public void close() {
        if (watcher != null) {
            watcher.close();
        }
        if (status != null) {
            status.close();
        }
        if (ads != null) {
            ads.close();
        }
    }
}
