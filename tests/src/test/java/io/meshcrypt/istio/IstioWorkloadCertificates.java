package io.meshcrypt.istio;

import io.meshcrypt.pki.LocalCa;
import java.io.IOException;
import java.io.Reader;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.RDN;
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
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Workload certificates shaped as istiod's CA signs them ({@code security/pkg/pki/util/generate_cert.go},
 * genCertTemplateFromCSR): an <b>empty subject</b> and the SPIFFE id as the one, critical, subject alternative name,
 * for client and server use. The shape matters: Envoy writes {@code Subject=""} for them into
 * {@code x-forwarded-client-cert}, where {@link LocalCa}'s certificates ({@code CN=name,O=...}) would put a quoted
 * comma that changes how a forged header parses. Signed by the root of a {@link LocalCa}.
 */
final class IstioWorkloadCertificates {

    private static final SecureRandom RANDOM = new SecureRandom();

    private IstioWorkloadCertificates() {
    }

    /** Issues {@code spiffeId}'s certificate and key where {@link LocalCa#files} puts {@code name}'s. */
    static LocalCa.Issued issue(LocalCa ca, String name, URI spiffeId, Duration validity) throws Exception {
        X509Certificate root = LocalCa.readCertificate(ca.caCertificate());
        PrivateKey rootKey;
        try (Reader pem = Files.newBufferedReader(ca.caCertificate().resolveSibling("ca-key.pem")); PEMParser parser = new PEMParser(pem)) {
            rootKey = new JcaPEMKeyConverter().getPrivateKey((PrivateKeyInfo) parser.readObject());
        }
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"));
        KeyPair pair = generator.generateKeyPair();
        Instant now = Instant.now();
        JcaX509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(
                new X509CertificateHolder(root.getEncoded()).getSubject(), new BigInteger(127, RANDOM),
                Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(validity)), new X500Name(new RDN[0]),
                pair.getPublic());
        builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyEncipherment));
        builder.addExtension(Extension.extendedKeyUsage, false,
                new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
        // critical: with an empty subject the SAN is the certificate's only name (RFC 5280, 4.2.1.6)
        builder.addExtension(Extension.subjectAlternativeName, true,
                new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, spiffeId.toString())));
        X509Certificate certificate = new JcaX509CertificateConverter().getCertificate(
                builder.build(new JcaContentSignerBuilder("SHA256withECDSA").build(rootKey)));

        LocalCa.Issued files = ca.files(name);
        Files.createDirectories(files.certificate().getParent());
        Files.deleteIfExists(files.privateKey());
        Files.createFile(files.privateKey(), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        Files.writeString(files.privateKey(), pem(new JcaPKCS8Generator(pair.getPrivate(), null).generate()));
        Files.writeString(files.certificate(), pem(certificate));
        return files;
    }

    private static String pem(Object o) throws IOException {
        StringWriter out = new StringWriter();
        try (JcaPEMWriter writer = new JcaPEMWriter(out)) {
            writer.writeObject(o);
        }
        return out.toString();
    }
}
