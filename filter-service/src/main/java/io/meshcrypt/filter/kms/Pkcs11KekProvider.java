package io.meshcrypt.filter.kms;

import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyStore;
import java.security.KeyStoreException;
import java.security.Provider;
import java.security.SecureRandom;
import java.security.Security;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * KEKs on a PKCS#11 token (SoftHSM2, CloudHSM, Luna, YubiHSM...) through the JDK's SunPKCS11 provider. Each KEK
 * version is an AES-256 secret key object labelled {@code <label>.<n>}; the highest {@code n} wraps new DEKs, every
 * version unwraps. Wrapping is AES-256-GCM computed on the token ({@code CKM_AES_GCM}), with the DEK context as
 * associated data: wrapped DEK = 12-byte IV || 32-byte ciphertext || 16-byte tag. New keys are generated on the
 * token as sensitive and non-extractable, so KEK material never reaches this process.
 *
 * <p>KEK ids are {@code pkcs11:<label>.<n>}. The token's key list is read on every wrap (a local call, made only
 * when a DEK is generated), so a {@code keys rotate} by another process reaches new DEKs without a restart.
 */
public final class Pkcs11KekProvider implements KekProvider {
    private static final String PREFIX = "pkcs11:";
    private static final int IV_BYTES = 12;
    private static final int TAG_BITS = 128;

    private final Provider p11;
    private final KeyStore store;
    private final String label;
    private final Pattern versioned;
    private final SecureRandom random = new SecureRandom();

    /**
     * @param library the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so
     * @param slot the token's slot id
     * @param pin the user PIN; cleared by the caller after construction
     * @param label KEK label prefix; letters, digits, '-', '_' only
     */
    public Pkcs11KekProvider(Path library, long slot, char[] pin, String label) throws GeneralSecurityException {
        if (!label.matches("[A-Za-z0-9_-]{1,64}")) {
            throw new IllegalArgumentException("PKCS#11 KEK label must be 1-64 of A-Z a-z 0-9 _ - (got \"" + label + "\")");
        }
        this.label = label;
        this.versioned = Pattern.compile(Pattern.quote(label) + "\\.([1-9][0-9]{0,8})");
        String config = "--name=meshcrypt-" + label + "\n"
                + "library=" + library.toAbsolutePath() + "\n"
                + "slot=" + slot + "\n"
                // Keys generated through this provider are born on the token and never leave it in clear.
                + "attributes(generate, CKO_SECRET_KEY, CKK_AES) = {\n"
                + "  CKA_SENSITIVE = true\n  CKA_EXTRACTABLE = false\n  CKA_ENCRYPT = true\n  CKA_DECRYPT = true\n}\n";
        Provider base = Security.getProvider("SunPKCS11");
        if (base == null) {
            throw new GeneralSecurityException("the SunPKCS11 provider is not available in this JVM");
        }
        try {
            this.p11 = base.configure(config);
            this.store = KeyStore.getInstance("PKCS11", p11);
            store.load(null, pin);
        } catch (IOException | RuntimeException e) {
            // Messages from the module may be cryptic but never contain the PIN.
            throw new GeneralSecurityException("cannot open PKCS#11 token in slot " + slot + " of " + library + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String name() {
        return "pkcs11";
    }

    @Override
    public synchronized String currentKekId() throws GeneralSecurityException {
        int v = highestVersion();
        if (v == 0) {
            throw new KekRefusedException("no KEK labelled " + label + ".<n> on the PKCS#11 token (run: keys create)");
        }
        return PREFIX + label + "." + v;
    }

    @Override
    public synchronized WrappedDek wrap(byte[] dek, DekContext context) throws GeneralSecurityException {
        String kekId = currentKekId();
        Key kek = key(kekId);
        byte[] iv = new byte[IV_BYTES];
        random.nextBytes(iv);
        Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding", p11);
        cipher.init(Cipher.ENCRYPT_MODE, kek, new GCMParameterSpec(TAG_BITS, iv));
        cipher.updateAAD(context.associatedData());
        byte[] ct = cipher.doFinal(dek);
        byte[] out = Arrays.copyOf(iv, IV_BYTES + ct.length);
        System.arraycopy(ct, 0, out, IV_BYTES, ct.length);
        return new WrappedDek(kekId, out);
    }

    @Override
    public synchronized byte[] unwrap(String kekId, byte[] wrapped, DekContext context) throws GeneralSecurityException {
        Key kek = key(kekId);
        if (wrapped.length <= IV_BYTES + TAG_BITS / 8) {
            throw new KekRefusedException("wrapped DEK " + context.dekIdText() + " is too short for KEK " + kekId);
        }
        Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding", p11);
        cipher.init(Cipher.DECRYPT_MODE, kek, new GCMParameterSpec(TAG_BITS, wrapped, 0, IV_BYTES));
        cipher.updateAAD(context.associatedData());
        try {
            return cipher.doFinal(wrapped, IV_BYTES, wrapped.length - IV_BYTES);
        } catch (AEADBadTagException e) {
            throw new KekRefusedException("KEK " + kekId + " cannot unwrap DEK " + context.dekIdText()
                    + " of topic '" + context.topicText() + "' (wrong topic or tampered)");
        }
    }

    @Override
    public synchronized String create() throws GeneralSecurityException {
        return highestVersion() == 0 ? rotate() : currentKekId();
    }

    @Override
    public synchronized String rotate() throws GeneralSecurityException {
        int next = highestVersion() + 1;
        KeyGenerator generator = KeyGenerator.getInstance("AES", p11);
        generator.init(256);
        SecretKey key = generator.generateKey();
        // Storing a token-generated session key copies it into a persistent token object labelled with the alias.
        store.setEntry(label + "." + next, new KeyStore.SecretKeyEntry(key), null);
        return PREFIX + label + "." + next;
    }

    @Override
    public synchronized List<KekInfo> list() throws GeneralSecurityException {
        int current = highestVersion();
        List<KekInfo> out = new ArrayList<>();
        for (String alias : Collections.list(store.aliases())) {
            Matcher m = versioned.matcher(alias);
            if (m.matches() && store.isKeyEntry(alias)) {
                out.add(new KekInfo(PREFIX + alias, Integer.parseInt(m.group(1)) == current, "ENABLED"));
            }
        }
        out.sort((a, b) -> Integer.compare(version(a.kekId()), version(b.kekId())));
        return out;
    }

    private int version(String kekId) {
        Matcher m = versioned.matcher(kekId.substring(PREFIX.length()));
        return m.matches() ? Integer.parseInt(m.group(1)) : 0;
    }

    private int highestVersion() throws KeyStoreException {
        reload();
        int max = 0;
        for (String alias : Collections.list(store.aliases())) {
            Matcher m = versioned.matcher(alias);
            if (m.matches()) {
                max = Math.max(max, Integer.parseInt(m.group(1)));
            }
        }
        return max;
    }

    private Key key(String kekId) throws GeneralSecurityException {
        if (!kekId.startsWith(PREFIX) || !versioned.matcher(kekId.substring(PREFIX.length())).matches()) {
            throw new KekRefusedException("KEK " + kekId + " is not a PKCS#11 key labelled " + label + ".<n>");
        }
        String alias = kekId.substring(PREFIX.length());
        Key key = store.getKey(alias, null);
        if (key == null) {
            reload();
            key = store.getKey(alias, null);
        }
        if (key == null) {
            throw new KekRefusedException("KEK " + kekId + " is not on the PKCS#11 token (deleted, or another token)");
        }
        return key;
    }

    /** SunPKCS11 caches the object list; reloading picks up keys created or deleted by another process. */
    private void reload() throws KeyStoreException {
        try {
            store.load(null, null);
        } catch (IOException | GeneralSecurityException e) {
            throw new KeyStoreException("cannot list the PKCS#11 token's keys: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        // The SunPKCS11 provider instance keeps its session pool until the JVM exits; nothing to release per KEK.
    }
}
