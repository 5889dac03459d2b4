package io.meshcrypt.filter.keys;

import io.grpc.StatusRuntimeException;
import io.meshcrypt.filter.admin.SubjectAdminClient;
import io.meshcrypt.meshconfig.tls.TlsFiles;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** {@code subjects forget --server}: the forget through a running filter-service's admin API. */
final class AdminForget {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private AdminForget() {
    }

    static int forget(String server, Path certificate, Path privateKey, Path trustedCa, String scope,
                      List<String> subjects, PrintWriter out) throws Exception {
        int colon = server.lastIndexOf(':');
        int port;
        try {
            port = colon < 1 ? -1 : Integer.parseInt(server.substring(colon + 1));
        } catch (NumberFormatException e) {
            port = -1;
        }
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("--server must be HOST:PORT (got " + server + ")");
        }
        TlsFiles tls = null;
        if (certificate != null || privateKey != null || trustedCa != null) {
            if (certificate == null || privateKey == null || trustedCa == null) {
                throw new IllegalArgumentException("--certificate, --private-key and --trusted-ca go together");
            }
            tls = new TlsFiles(certificate, privateKey, trustedCa);
        }
        try (SubjectAdminClient client = SubjectAdminClient.connect(server.substring(0, colon), port, tls, TIMEOUT)) {
            for (String subject : subjects) {
                String ref;
                try {
                    ref = client.forget(scope, subject);
                } catch (StatusRuntimeException e) {
                    out.println("refused by " + server + ": " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
                    return 1;
                }
                out.println("forgotten: scope " + scope + ", subject ref " + ref);
            }
        }
        out.println("every filter-service replica serves the records of " + subjects.size() + " forgotten subject(s) as"
                + " forgotten once it reads the markers; the key topic drops their keys at compaction");
        return 0;
    }
}
