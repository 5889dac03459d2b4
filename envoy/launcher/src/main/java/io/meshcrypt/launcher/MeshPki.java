package io.meshcrypt.launcher;

import io.meshcrypt.pki.LocalCa;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The local mesh's certificates under {@code $MESHCRYPT_HOME/pki} (docs/security.md): the CA, a server-and-client
 * certificate each for the filter-service and the xDS server, and a client certificate per Envoy node id. Issued by
 * {@link LocalCa} on {@code up}, {@code demo} and {@code start}; a certificate is issued again when it is missing, has
 * less than {@link #RENEW_BEFORE} left, or does not name every host it must serve under (the transparent demo adds
 * the relay's address). The components re-read rotated files, so nothing restarts.
 */
final class MeshPki {

    static final String DIR = "pki";
    static final String FILTER_SERVICE = "filter-service";
    static final String XDS_SERVER = "xds-server";
    /** The launcher's own client certificate for the filter-service's admin API ({@code ./meshcrypt forget}). */
    static final String ADMIN = "admin";
    static final Duration VALIDITY = Duration.ofHours(24);
    static final Duration RENEW_BEFORE = Duration.ofHours(8);
    /** Both servers answer on the host's loopback; the transparent demo's relay forwards TLS to them unchanged. */
    static final List<String> LOOPBACK = List.of("localhost", "127.0.0.1");

    private final LocalCa ca;

    private MeshPki(LocalCa ca) {
        this.ca = ca;
    }

    /**
     * The CA in {@code dir}, created there first when there is none. Its certificate is public and readable by all:
     * the transparent demo's sidecars read it as the proxy uid.
     */
    static MeshPki openOrCreate(Path dir) {
        LocalCa ca = LocalCa.openOrCreate(dir);
        try {
            Files.setPosixFilePermissions(ca.caCertificate(), PosixFilePermissions.fromString("rw-r--r--"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return new MeshPki(ca);
    }

    static MeshPki of(StateDir state) {
        return openOrCreate(state.file(DIR));
    }

    static String sidecar(String node) {
        return "sidecar-" + node;
    }

    /** The SPIFFE id of certificate {@code name}: {@code sidecar-<node>} is {@code sidecar/<node>}, servers by their name. */
    static URI spiffeId(String name) {
        return LocalCa.spiffeId(name.startsWith("sidecar-") ? "sidecar/" + name.substring("sidecar-".length()) : name);
    }

    /** Next to a sidecar's certificate: the file-based SDS secret its Envoy reads it through (ConfigFiles.sdsCertificate). */
    static Path sdsCertificate(LocalCa.Issued sidecar) {
        return sidecar.certificate().resolveSibling("sds-certificate.yaml");
    }

    Path caCertificate() {
        return ca.caCertificate();
    }

    LocalCa.Issued files(String name) {
        return ca.files(name);
    }

    /**
     * Issues what the mesh needs and is missing or due at {@code now}: the two servers' certificates (serving under
     * the loopback names plus {@code extraServerHosts}) and one client certificate per Envoy node id.
     *
     * @return the names of the certificates issued (empty when all were current)
     */
    List<String> ensure(List<String> extraServerHosts, Iterable<String> sidecarNodes, Instant now) {
        List<String> serverHosts = new ArrayList<>(LOOPBACK);
        serverHosts.addAll(extraServerHosts);
        List<String> issued = new ArrayList<>();
        for (String server : List.of(FILTER_SERVICE, XDS_SERVER)) {
            if (due(server, serverHosts, now)) {
                ca.issue(server, spiffeId(server), serverHosts, VALIDITY);
                issued.add(server);
            }
        }
        for (String node : new LinkedHashSet<>(toList(sidecarNodes))) {
            String name = sidecar(node);
            if (due(name, List.of(), now)) {
                ca.issue(name, spiffeId(name), List.of(), VALIDITY);
                issued.add(name);
            }
        }
        return issued;
    }

    /** The launcher's admin client certificate ({@link #ADMIN}), issued first when missing or due at {@code now}. */
    LocalCa.Issued admin(Instant now) {
        if (due(ADMIN, List.of(), now)) {
            ca.issue(ADMIN, spiffeId(ADMIN), List.of(), VALIDITY);
        }
        return ca.files(ADMIN);
    }

    private static List<String> toList(Iterable<String> nodes) {
        List<String> out = new ArrayList<>();
        nodes.forEach(out::add);
        return out;
    }

    /** Missing, unreadable, expiring within {@link #RENEW_BEFORE}, or not serving under every one of {@code hosts}. */
    private boolean due(String name, List<String> hosts, Instant now) {
        Path cert = ca.files(name).certificate();
        if (!Files.exists(cert) || !Files.exists(ca.files(name).privateKey())) {
            return true;
        }
        try {
            X509Certificate c = LocalCa.readCertificate(cert);
            return c.getNotAfter().toInstant().isBefore(now.plus(RENEW_BEFORE)) || !hostsOf(c).containsAll(hosts);
        } catch (IOException | CertificateParsingException e) {
            return true;
        }
    }

    /** The DNS names and IP addresses a certificate's SAN names. */
    static Set<String> hostsOf(X509Certificate c) throws CertificateParsingException {
        Set<String> hosts = new HashSet<>();
        if (c.getSubjectAlternativeNames() != null) {
            for (List<?> san : c.getSubjectAlternativeNames()) {
                int type = (Integer) san.get(0);
                if (type == 2 || type == 7) {
                    hosts.add(san.get(1).toString());
                }
            }
        }
        return hosts;
    }

    /** The SAN URI of a certificate (its SPIFFE id), or "-". */
    static String spiffeIdOf(X509Certificate c) throws CertificateParsingException {
        if (c.getSubjectAlternativeNames() != null) {
            for (List<?> san : c.getSubjectAlternativeNames()) {
                if ((Integer) san.get(0) == 6) {
                    return san.get(1).toString();
                }
            }
        }
        return "-";
    }

    /**
     * One line for the CA and one per certificate: name, SPIFFE id, expiry, what is left (for {@code ./meshcrypt pki}).
     */
    static String describe(Path dir, Instant now) {
        if (!Files.exists(dir.resolve(LocalCa.CA_CERTIFICATE))) {
            return "no local CA in " + dir + " (./meshcrypt up creates it)\n";
        }
        StringBuilder sb = new StringBuilder();
        try {
            X509Certificate root = LocalCa.readCertificate(dir.resolve(LocalCa.CA_CERTIFICATE));
            sb.append(line("ca", root.getSubjectX500Principal().getName(), root, now));
            List<Path> names;
            try (var list = Files.list(dir)) {
                names = list.filter(p -> Files.exists(p.resolve("cert.pem"))).sorted().toList();
            }
            for (Path p : names) {
                X509Certificate c = LocalCa.readCertificate(p.resolve("cert.pem"));
                sb.append(line(p.getFileName().toString(), spiffeIdOf(c), c, now));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (CertificateParsingException e) {
            throw new LauncherException("cannot read a certificate in " + dir + ": " + e.getMessage(), e);
        }
        return sb.toString();
    }

    private static String line(String name, String id, X509Certificate c, Instant now) {
        Instant notAfter = c.getNotAfter().toInstant();
        Duration left = Duration.between(now, notAfter);
        String status = left.isNegative() ? "EXPIRED" : left.compareTo(RENEW_BEFORE) < 0 ? "due for renewal" : "valid";
        return String.format("%-26s %-52s expires %s (%s, %dh left)%n", name, id, notAfter, status, Math.max(0, left.toHours()));
    }
}
