package io.meshcrypt.filter.keys;

import io.meshcrypt.filter.audit.JsonAuditTrail;
import io.meshcrypt.filter.config.FilterConfig;
import io.meshcrypt.filter.kms.DekContext;
import io.meshcrypt.filter.kms.KeyAudit;
import io.meshcrypt.filter.kms.KekProvider;
import io.meshcrypt.filter.subjects.KafkaSubjectKeyLog;
import io.meshcrypt.filter.subjects.SubjectKeyStore;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code subjects forget --config FILE (--topic-pattern P | --scope NAME) --subject S}: forgets a subject (crypto-shredding), in process
 * with the filter config's KMS and {@code subjectKeys:} section, as the key commands do: reads the subject-key log,
 * appends the subject's forgotten marker and overwrites its keys, and writes a {@code subject.forgotten} line to the
 * audit trail (scope and subject ref, never the subject id). Every running filter-service reads the marker from the
 * log and from then on serves the subject's records as the policy's {@code forgotten:} says. With {@code --server}
 * instead of {@code --config}, a running filter-service does it through its admin API ({@link AdminForget}).
 */
@Command(name = "subjects", description = "Per-subject keys: forget a subject.", subcommands = SubjectsCli.Forget.class)
public final class SubjectsCli implements Runnable {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        throw new picocli.CommandLine.ParameterException(spec.commandLine(), "usage: subjects forget (--server HOST:PORT"
                + " [--certificate FILE --private-key FILE --trusted-ca FILE] | --config FILE)"
                + " (--topic-pattern PATTERN | --scope NAME) --subject ID");
    }

    @Command(name = "forget", description = "Destroy a subject's keys: its records read as the policy's forgotten:"
            + " value from then on, everywhere.")
    public static final class Forget implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(names = "--config", paramLabel = "FILE", description = "Offline, in process: the filter config (YAML)"
                + " whose KMS and subjectKeys: to use (when no filter-service runs).")
        Path config;

        @Option(names = "--server", paramLabel = "HOST:PORT", description = "Through the admin API of the"
                + " filter-service listening there (one replica is enough).")
        String server;

        @Option(names = "--certificate", paramLabel = "FILE", description = "With --server: this client's certificate"
                + " (its SPIFFE id must be in the server's admin.identities); without it, plaintext.")
        Path certificate;

        @Option(names = "--private-key", paramLabel = "FILE", description = "With --certificate: its key (owner-only).")
        Path privateKey;

        @Option(names = "--trusted-ca", paramLabel = "FILE", description = "With --certificate: the CA the server's"
                + " certificate must chain to.")
        Path trustedCa;

        @Option(names = "--topic-pattern", paramLabel = "PATTERN", description = "The policy entry's topic pattern,"
                + " exactly as written: the subject keys' scope of an entry that names no scope: of its own.")
        String topicPattern;

        @Option(names = "--scope", paramLabel = "NAME", description = "The scope: named by the subject: of policy"
                + " entries and HTTP rules (instead of --topic-pattern): forgets the subject everywhere it names.")
        String scope;

        @Option(names = "--subject", required = true, paramLabel = "ID", description = "The subject id as the records"
                + " carry it (record key, header or JSON field value); repeat it to forget several.")
        List<String> subjects;

        @Override
        public Integer call() throws Exception {
            if ((topicPattern == null) == (scope == null)) {
                throw new picocli.CommandLine.ParameterException(spec.commandLine(), "give exactly one of"
                        + " --topic-pattern PATTERN and --scope NAME");
            }
            if ((config == null) == (server == null)) {
                throw new picocli.CommandLine.ParameterException(spec.commandLine(), "give exactly one of --server"
                        + " (through a running filter-service) and --config (offline)");
            }
            String forgetScope = scope != null ? scope : topicPattern;
            if (server != null) {
                return AdminForget.forget(server, certificate, privateKey, trustedCa, forgetScope, subjects,
                        spec.commandLine().getOut());
            }
            return forget(FilterConfig.load(config), forgetScope, subjects, spec.commandLine().getOut());
        }
    }

    static int forget(FilterConfig config, String scope, List<String> subjects, PrintWriter out) throws Exception {
        if (config.subjectKeys() == null || config.keys() == null) {
            throw new GeneralSecurityException("the config has no subjectKeys: section (where subject keys live)");
        }
        try (JsonAuditTrail trail = config.audit() == null ? null : JsonAuditTrail.open(config.audit());
             KekProvider provider = KekProviders.open(config.keys());
             SubjectKeyStore store = new SubjectKeyStore(new KafkaSubjectKeyLog(config.subjectKeys().location(), TIMEOUT),
                     provider, config.subjectKeys().settings())) {
            KeyAudit audit = trail == null ? KeyAudit.NONE : trail.keys();
            for (String subject : subjects) {
                String ref = store.forget(scope, subject, TIMEOUT);
                if (ref == null) {
                    out.println("scope " + scope + " has no subject keys: nothing was ever encrypted under a subject key"
                            + " of it (check --topic-pattern against the policy)");
                    return 1;
                }
                audit.succeeded(KeyAudit.Operation.SUBJECT_FORGOTTEN, provider.name(), null,
                        new DekContext(scope, ByteBuffer.wrap(HexFormat.of().parseHex(ref)).getLong()), null);
                out.println("forgotten: scope " + scope + ", subject ref " + ref);
            }
            out.println("running filter-services serve the records of " + subjects.size() + " forgotten subject(s) as"
                    + " forgotten once they read the markers; the key topic drops their keys at compaction");
            return 0;
        }
    }
}
