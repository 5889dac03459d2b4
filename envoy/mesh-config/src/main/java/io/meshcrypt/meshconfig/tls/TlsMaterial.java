package io.meshcrypt.meshconfig.tls;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Objects;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The key and trust managers of one {@link TlsFiles}, for a TLS server or client that must pick up rotated files
 * without a restart: every handshake checks the files' modification times and re-reads them when they changed. A
 * certificate and key that do not belong together (a rotation caught half-way: the two files are replaced one after
 * the other) or files that cannot be read keep the last good material in use, and are retried on the next handshake.
 * The first load must succeed: {@link #load} fails closed. The private key must be readable by its owner only
 * ({@link SecretFiles#requireOwnerOnly}), on the first load and every reload.
 */
public final class TlsMaterial {

    private static final Logger log = LoggerFactory.getLogger(TlsMaterial.class);

    private final TlsFiles files;
    private final ReloadingKeyManager keyManager = new ReloadingKeyManager();
    private final ReloadingTrustManager trustManager = new ReloadingTrustManager();
    private volatile Loaded loaded;

    private record Loaded(List<FileTime> modified, X509ExtendedKeyManager keys, X509ExtendedTrustManager trust,
                          X509Certificate certificate) {
    }

    private TlsMaterial(TlsFiles files, Loaded loaded) {
        this.files = files;
        this.loaded = loaded;
    }

    /**
     * Reads the files once; they must exist and hold a certificate with its key (owner-only) and at least one CA
     * certificate.
     */
    public static TlsMaterial load(TlsFiles files) throws IOException, GeneralSecurityException {
        Objects.requireNonNull(files, "files");
        return new TlsMaterial(files, read(files));
    }

    public TlsFiles files() {
        return files;
    }

    /** Presents the current certificate and key (server or client side). */
    public X509ExtendedKeyManager keyManager() {
        return keyManager;
    }

    /** Accepts only peers whose certificate chains to the current {@code trustedCa}. */
    public X509ExtendedTrustManager trustManager() {
        return trustManager;
    }

    /** The certificate presented now (after re-reading changed files). */
    public X509Certificate certificate() {
        return current().certificate();
    }

    private Loaded current() {
        Loaded now = loaded;
        List<FileTime> modified;
        try {
            modified = modified(files);
        } catch (IOException e) {
            log.warn("cannot check the TLS files {} ({}); keeping the loaded ones", files, e.toString());
            return now;
        }
        if (modified.equals(now.modified())) {
            return now;
        }
        synchronized (this) {
            if (!modified.equals(loaded.modified())) {
                try {
                    loaded = read(files);
                    log.info("TLS files reloaded: certificate {} serial {}", files.certificate(),
                            loaded.certificate().getSerialNumber().toString(16));
                } catch (IOException | GeneralSecurityException | RuntimeException e) {
                    // most likely a rotation between its two file replacements: retried on the next handshake
                    log.warn("cannot reload the TLS files {} ({}); keeping the loaded ones", files, e.toString());
                }
            }
            return loaded;
        }
    }

    private static List<FileTime> modified(TlsFiles files) throws IOException {
        return List.of(Files.getLastModifiedTime(files.certificate()), Files.getLastModifiedTime(files.privateKey()),
                Files.getLastModifiedTime(files.trustedCa()));
    }

    private static Loaded read(TlsFiles files) throws IOException, GeneralSecurityException {
        // on every load, so a rotation cannot bring in a key others could read (the last good material stays)
        SecretFiles.requireOwnerOnly(files.privateKey());
        List<FileTime> modified = modified(files);
        List<X509Certificate> chain = certificates(files.certificate());
        PrivateKey key = privateKey(files.privateKey());
        requireMatch(chain.get(0), key, files);
        List<X509Certificate> cas = certificates(files.trustedCa());

        char[] password = new char[0];
        KeyStore keyStore = KeyStore.getInstance("PKCS12");
        keyStore.load(null, null);
        keyStore.setKeyEntry("mesh", key, password, chain.toArray(Certificate[]::new));
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("NewSunX509");
        kmf.init(keyStore, password);

        KeyStore trustStore = KeyStore.getInstance("PKCS12");
        trustStore.load(null, null);
        for (int i = 0; i < cas.size(); i++) {
            trustStore.setCertificateEntry("ca-" + i, cas.get(i));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(trustStore);
        return new Loaded(modified, (X509ExtendedKeyManager) kmf.getKeyManagers()[0],
                (X509ExtendedTrustManager) tmf.getTrustManagers()[0], chain.get(0));
    }

    private static List<X509Certificate> certificates(Path file) throws IOException, CertificateException {
        List<X509Certificate> certificates = new ArrayList<>();
        try (InputStream in = Files.newInputStream(file)) {
            for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(in)) {
                certificates.add((X509Certificate) c);
            }
        }
        if (certificates.isEmpty()) {
            throw new CertificateException(file + " holds no PEM certificate");
        }
        return certificates;
    }

    /** A PEM PKCS#8 ({@code BEGIN PRIVATE KEY}) EC or RSA key, as LocalCa writes. */
    private static PrivateKey privateKey(Path file) throws IOException, GeneralSecurityException {
        String pem = Files.readString(file, StandardCharsets.US_ASCII);
        int begin = pem.indexOf("-----BEGIN PRIVATE KEY-----");
        int end = pem.indexOf("-----END PRIVATE KEY-----");
        if (begin < 0 || end < begin) {
            throw new InvalidKeySpecException(file + " holds no PEM PKCS#8 private key (BEGIN PRIVATE KEY)");
        }
        byte[] der = Base64.getMimeDecoder().decode(pem.substring(begin + 27, end));
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
        try {
            return KeyFactory.getInstance("EC").generatePrivate(spec);
        } catch (InvalidKeySpecException e) {
            return KeyFactory.getInstance("RSA").generatePrivate(spec);
        } finally {
            Arrays.fill(der, (byte) 0);
        }
    }

    /** Signs with the key and verifies with the certificate: a half-rotated pair fails here, not in a handshake. */
    private static void requireMatch(X509Certificate certificate, PrivateKey key, TlsFiles files) throws GeneralSecurityException {
        String algorithm = key.getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        byte[] probe = "meshcrypt".getBytes(StandardCharsets.US_ASCII);
        Signature signer = Signature.getInstance(algorithm);
        signer.initSign(key);
        signer.update(probe);
        byte[] signature = signer.sign();
        Signature verifier = Signature.getInstance(algorithm);
        verifier.initVerify(certificate.getPublicKey());
        verifier.update(probe);
        if (!verifier.verify(signature)) {
            throw new GeneralSecurityException("the private key " + files.privateKey() + " does not belong to the certificate "
                    + files.certificate());
        }
    }

    private final class ReloadingKeyManager extends X509ExtendedKeyManager {
        @Override
        public String[] getClientAliases(String keyType, Principal[] issuers) {
            return current().keys().getClientAliases(keyType, issuers);
        }

        @Override
        public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
            return current().keys().chooseClientAlias(keyType, issuers, socket);
        }

        @Override
        public String chooseEngineClientAlias(String[] keyType, Principal[] issuers, SSLEngine engine) {
            return current().keys().chooseEngineClientAlias(keyType, issuers, engine);
        }

        @Override
        public String[] getServerAliases(String keyType, Principal[] issuers) {
            return current().keys().getServerAliases(keyType, issuers);
        }

        @Override
        public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
            return current().keys().chooseServerAlias(keyType, issuers, socket);
        }

        @Override
        public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
            return current().keys().chooseEngineServerAlias(keyType, issuers, engine);
        }

        @Override
        public X509Certificate[] getCertificateChain(String alias) {
            return current().keys().getCertificateChain(alias);
        }

        @Override
        public PrivateKey getPrivateKey(String alias) {
            return current().keys().getPrivateKey(alias);
        }
    }

    private final class ReloadingTrustManager extends X509ExtendedTrustManager {
        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            current().trust().checkClientTrusted(chain, authType, socket);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            current().trust().checkServerTrusted(chain, authType, socket);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            current().trust().checkClientTrusted(chain, authType, engine);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            current().trust().checkServerTrusted(chain, authType, engine);
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            current().trust().checkClientTrusted(chain, authType);
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            current().trust().checkServerTrusted(chain, authType);
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return current().trust().getAcceptedIssuers();
        }
    }
}
