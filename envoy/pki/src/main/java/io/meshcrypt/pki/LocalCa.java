package io.meshcrypt.pki;

import java.io.IOException;
import java.io.Reader;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The local mesh's certificate authority, kept in one directory: {@code ca.pem} and {@code ca-key.pem}, and per
 * component {@code <name>/cert.pem} and {@code <name>/key.pem}. Keys are EC P-256, private keys PKCS#8 PEM readable by
 * their owner only. Every certificate names its component by a SPIFFE id ({@value #TRUST_DOMAIN}) and, for the hosts
 * it serves, by DNS names and IP addresses; it is valid for both TLS server and client use, so one certificate serves
 * a component on every hop. Files are replaced atomically, so a process that watches them never reads half a file.
 */
public final class LocalCa {

    public static final String TRUST_DOMAIN = "meshcrypt.local";
    public static final String CA_CERTIFICATE = "ca.pem";
    private static final String CA_KEY = "ca-key.pem";
    private static final Duration CA_VALIDITY = Duration.ofDays(3650);
    private static final SecureRandom RANDOM = new SecureRandom();

    /** Where one component's certificate and private key are. */
    public record Issued(Path certificate, Path privateKey) {
    }

    private final Path dir;
    private final X509Certificate caCertificate;
    private final PrivateKey caKey;

    private LocalCa(Path dir, X509Certificate caCertificate, PrivateKey caKey) {
        this.dir = dir;
        this.caCertificate = caCertificate;
        this.caKey = caKey;
    }

    /** The SPIFFE id of a component of the local mesh, e.g. {@code spiffe://meshcrypt.local/sidecar/go-producer}. */
    public static URI spiffeId(String path) {
        return URI.create("spiffe://" + TRUST_DOMAIN + "/" + path);
    }

    /** The CA in {@code dir}, created there first when {@code dir} has none. */
    public static LocalCa openOrCreate(Path dir) {
        Path cert = dir.resolve(CA_CERTIFICATE);
        Path key = dir.resolve(CA_KEY);
        try {
            Files.createDirectories(dir);
            if (Files.exists(cert) && Files.exists(key)) {
                return new LocalCa(dir, readCertificate(cert), readPrivateKey(key));
            }
            KeyPair pair = newKeyPair();
            X500Name name = new X500Name("CN=meshcrypt local CA,O=" + TRUST_DOMAIN);
            Instant now = Instant.now();
            JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(name, serial(),
                    Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(CA_VALIDITY)), name, pair.getPublic());
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            builder.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(pair.getPublic()));
            X509Certificate ca = sign(builder, pair.getPrivate());
            writePrivate(key, pem(new JcaPKCS8Generator(pair.getPrivate(), null).generate()));
            writeAtomically(cert, pem(ca));
            return new LocalCa(dir, ca, pair.getPrivate());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException | OperatorCreationException e) {
            throw new IllegalStateException("cannot create the local CA in " + dir, e);
        }
    }

    public Path caCertificate() {
        return dir.resolve(CA_CERTIFICATE);
    }

    /** Where {@link #issue} puts {@code name}'s files. */
    public Issued files(String name) {
        return new Issued(dir.resolve(name).resolve("cert.pem"), dir.resolve(name).resolve("key.pem"));
    }

    /**
     * A new key and certificate for component {@code name}, replacing any it had (a rotation: whoever watches the
     * files picks them up).
     *
     * @param hosts DNS names and IP literals it serves under; may be empty for a client-only component
     */
    public Issued issue(String name, URI spiffeId, List<String> hosts, Duration validity) {
        Issued files = files(name);
        try {
            KeyPair pair = newKeyPair();
            Instant now = Instant.now();
            X500Name issuer = new X509CertificateHolder(caCertificate.getEncoded()).getSubject();
            JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(issuer, serial(),
                    Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(validity)),
                    new X500Name("CN=" + name + ",O=" + TRUST_DOMAIN), pair.getPublic());
            List<GeneralName> names = new ArrayList<>();
            names.add(new GeneralName(GeneralName.uniformResourceIdentifier, spiffeId.toString()));
            for (String host : hosts) {
                names.add(isIpLiteral(host)
                        ? new GeneralName(GeneralName.iPAddress, InetAddress.getByName(host).getHostAddress())
                        : new GeneralName(GeneralName.dNSName, host));
            }
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement));
            builder.addExtension(Extension.extendedKeyUsage, false,
                    new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
            builder.addExtension(Extension.subjectAlternativeName, true, new GeneralNames(names.toArray(GeneralName[]::new)));
            builder.addExtension(Extension.authorityKeyIdentifier, false, ext.createAuthorityKeyIdentifier(caCertificate));
            X509Certificate cert = sign(builder, caKey);
            Files.createDirectories(files.certificate().getParent());
            // the key first: a watcher that sees the new certificate must find its key
            writePrivate(files.privateKey(), pem(new JcaPKCS8Generator(pair.getPrivate(), null).generate()));
            writeAtomically(files.certificate(), pem(cert));
            return files;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (GeneralSecurityException | OperatorCreationException e) {
            throw new IllegalStateException("cannot issue a certificate for " + name, e);
        }
    }

    /** The certificate in {@code file} (PEM). */
    public static X509Certificate readCertificate(Path file) throws IOException {
        try (Reader reader = Files.newBufferedReader(file, StandardCharsets.US_ASCII); PEMParser pem = new PEMParser(reader)) {
            Object o = pem.readObject();
            if (!(o instanceof X509CertificateHolder holder)) {
                throw new IOException(file + " holds no PEM certificate");
            }
            return new JcaX509CertificateConverter().getCertificate(holder);
        } catch (GeneralSecurityException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    private static PrivateKey readPrivateKey(Path file) throws IOException {
        try (Reader reader = Files.newBufferedReader(file, StandardCharsets.US_ASCII); PEMParser pem = new PEMParser(reader)) {
            Object o = pem.readObject();
            if (!(o instanceof PrivateKeyInfo info)) {
                throw new IOException(file + " holds no PKCS#8 private key");
            }
            return new JcaPEMKeyConverter().getPrivateKey(info);
        }
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"), RANDOM);
        return generator.generateKeyPair();
    }

    private static X509Certificate sign(JcaX509v3CertificateBuilder builder, PrivateKey key)
            throws OperatorCreationException, GeneralSecurityException {
        return new JcaX509CertificateConverter().getCertificate(builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(key)));
    }

    private static BigInteger serial() {
        return new BigInteger(127, RANDOM);
    }

    private static boolean isIpLiteral(String host) {
        return host.indexOf(':') >= 0 || host.chars().allMatch(c -> c == '.' || Character.isDigit(c));
    }

    private static String pem(Object o) throws IOException {
        StringWriter out = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
            writer.writeObject(o);
        }
        return out.toString();
    }

    private static void writePrivate(Path file, String text) throws IOException {
        Path tmp = Files.createTempFile(file.getParent(), ".key", ".tmp", PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(tmp, text, StandardCharsets.US_ASCII);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static void writeAtomically(Path file, String text) throws IOException {
        Path tmp = Files.createTempFile(file.getParent(), ".cert", ".tmp");
        Files.writeString(tmp, text, StandardCharsets.US_ASCII);
        Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
