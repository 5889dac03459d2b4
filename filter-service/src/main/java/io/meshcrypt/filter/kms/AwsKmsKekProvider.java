package io.meshcrypt.filter.kms;

import java.net.URI;
import java.security.GeneralSecurityException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.awscore.exception.AwsServiceException;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.kms.KmsClient;
import software.amazon.awssdk.services.kms.KmsClientBuilder;
import software.amazon.awssdk.services.kms.model.DecryptResponse;
import software.amazon.awssdk.services.kms.model.DisabledException;
import software.amazon.awssdk.services.kms.model.EncryptResponse;
import software.amazon.awssdk.services.kms.model.IncorrectKeyException;
import software.amazon.awssdk.services.kms.model.InvalidCiphertextException;
import software.amazon.awssdk.services.kms.model.KeyMetadata;
import software.amazon.awssdk.services.kms.model.KmsInvalidStateException;
import software.amazon.awssdk.services.kms.model.NotFoundException;

/**
 * KEKs in AWS KMS (symmetric keys, {@code Encrypt}/{@code Decrypt}, the DEK context as encryption context, so CloudTrail
 * names the topic and DEK of every call). KEK ids are key ARNs, as the {@code Encrypt} response names them.
 *
 * <p>Configure an alias ({@code alias/meshcrypt}) as the key id: rotation creates a new key and repoints the alias,
 * new DEKs go to the new key, and the ARN in each envelope keeps old records decryptable. KMS's own automatic rotation
 * (same ARN, new backing key) also works and needs nothing from meshcrypt.
 */
public final class AwsKmsKekProvider implements KekProvider {
    private static final String DESCRIPTION = "meshcrypt KEK";

    private final KmsClient kms;
    private final String keyId;

    public AwsKmsKekProvider(KmsClient kms, String keyId) {
        this.kms = Objects.requireNonNull(kms, "kms");
        this.keyId = Objects.requireNonNull(keyId, "keyId");
    }

    /**
     * @param endpoint null for the region's public endpoint
     * @param credentials null for the SDK's default chain (environment, profile, instance role)
     */
    public static AwsKmsKekProvider create(String keyId, String region, URI endpoint, AwsCredentialsProvider credentials,
                                           Duration timeout) {
        KmsClientBuilder builder = KmsClient.builder()
                .region(Region.of(region))
                .credentialsProvider(credentials != null ? credentials : DefaultCredentialsProvider.builder().build())
                .httpClient(UrlConnectionHttpClient.builder().connectionTimeout(timeout).socketTimeout(timeout).build())
                .overrideConfiguration(c -> c.apiCallTimeout(timeout.multipliedBy(2)).apiCallAttemptTimeout(timeout));
        if (endpoint != null) {
            builder.endpointOverride(endpoint);
        }
        return new AwsKmsKekProvider(builder.build(), keyId);
    }

    @Override
    public String name() {
        return "aws-kms";
    }

    @Override
    public String currentKekId() throws GeneralSecurityException {
        return describe(keyId).arn();
    }

    @Override
    public WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException {
        try {
            EncryptResponse r = kms.encrypt(b -> b.keyId(keyId).plaintext(SdkBytes.fromByteArray(dek))
                    .encryptionContext(context.encryptionContext()));
            return new WrappedDek(r.keyId(), r.ciphertextBlob().asByteArray());
        } catch (SdkException e) {
            throw translate(keyId, e);
        }
    }

    @Override
    public byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
        try {
            DecryptResponse r = kms.decrypt(b -> b.keyId(kekId).ciphertextBlob(SdkBytes.fromByteArray(wrapped))
                    .encryptionContext(context.encryptionContext()));
            return r.plaintext().asByteArray();
        } catch (InvalidCiphertextException e) {
            throw new KekRefusedException("KEK " + kekId + " cannot unwrap DEK " + context.dekIdText() + " of topic '"
                    + context.topicText() + "' (wrong topic or tampered)", e);
        } catch (SdkException e) {
            throw translate(kekId, e);
        }
    }

    @Override
    public String create() throws GeneralSecurityException {
        try {
            return describe(keyId).arn();
        } catch (KekRefusedException missing) {
            if (!keyId.startsWith("alias/")) {
                throw missing;
            }
        }
        try {
            KeyMetadata key = kms.createKey(b -> b.description(DESCRIPTION)).keyMetadata();
            kms.createAlias(b -> b.aliasName(keyId).targetKeyId(key.keyId()));
            return key.arn();
        } catch (SdkException e) {
            throw translate(keyId, e);
        }
    }

    @Override
    public String rotate() throws GeneralSecurityException {
        if (!keyId.startsWith("alias/")) {
            throw new GeneralSecurityException("key id " + keyId + " is not an alias: rotate it with KMS automatic rotation,"
                    + " or configure an alias that meshcrypt can repoint");
        }
        try {
            KeyMetadata key = kms.createKey(b -> b.description(DESCRIPTION)).keyMetadata();
            kms.updateAlias(b -> b.aliasName(keyId).targetKeyId(key.keyId()));
            return key.arn();
        } catch (SdkException e) {
            throw translate(keyId, e);
        }
    }

    @Override
    public List<KekInfo> list() throws GeneralSecurityException {
        try {
            String current = describe(keyId).arn();
            List<KekInfo> out = new ArrayList<>();
            for (var entry : kms.listKeysPaginator(b -> { }).keys()) {
                KeyMetadata m = describe(entry.keyId());
                if (DESCRIPTION.equals(m.description()) || m.arn().equals(current)) {
                    out.add(new KekInfo(m.arn(), m.arn().equals(current), m.keyStateAsString()));
                }
            }
            return out;
        } catch (SdkException e) {
            throw translate(keyId, e);
        }
    }

    private KeyMetadata describe(String id) throws GeneralSecurityException {
        try {
            return kms.describeKey(b -> b.keyId(id)).keyMetadata();
        } catch (SdkException e) {
            throw translate(id, e);
        }
    }

    private static GeneralSecurityException translate(String key, SdkException e) {
        if (e instanceof NotFoundException || e instanceof DisabledException || e instanceof KmsInvalidStateException
                || e instanceof IncorrectKeyException || isPermanentRefusal(e)) {
            return new KekRefusedException("KEK " + key + " is unusable: " + e.getClass().getSimpleName()
                    + " (" + firstLine(e.getMessage()) + ")", e);
        }
        return new GeneralSecurityException("AWS KMS call for " + key + " failed: " + e.getClass().getSimpleName()
                + " (" + firstLine(e.getMessage()) + ")", e);
    }

    /**
     * The KMS answered with a client error other than throttling (e.g. AccessDeniedException for a key that is gone or
     * not ours): retrying will not help, so it must not put the whole KMS into backoff. 5xx and I/O errors are
     * transient.
     */
    private static boolean isPermanentRefusal(SdkException e) {
        if (!(e instanceof AwsServiceException s) || s.statusCode() < 400 || s.statusCode() >= 500 || s.isThrottlingException()) {
            return false;
        }
        String code = s.awsErrorDetails() == null ? "" : String.valueOf(s.awsErrorDetails().errorCode());
        return !code.contains("Throttl") && !code.contains("LimitExceeded");
    }

    private static String firstLine(String s) {
        if (s == null) {
            return "";
        }
        int nl = s.indexOf('\n');
        return nl < 0 ? s : s.substring(0, nl);
    }

    @Override
    public void close() {
        kms.close();
    }
}
