package io.meshcrypt.filter.subjects;

import io.meshcrypt.filter.kms.Keysets;
import io.meshcrypt.filter.kms.LocalKekProvider;
import java.nio.file.Path;

/** A subject-key store for unit tests: its log in memory, its scope secrets wrapped by a local KEK in {@code dir}. */
public final class InMemorySubjectKeys {
    private InMemorySubjectKeys() {
    }

    /** @return a store with default settings, its (empty) log read */
    public static SubjectKeyStore open(Path dir) throws Exception {
        Path kek = dir.resolve("kek.json");
        Keysets.create(kek);
        SubjectKeyStore store = new SubjectKeyStore(new FakeSubjectKeyLog().view(), new LocalKekProvider(kek),
                SubjectKeyStore.Settings.defaults());
        store.loaded().join();
        return store;
    }
}
