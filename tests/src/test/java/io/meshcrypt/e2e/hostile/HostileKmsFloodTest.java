package io.meshcrypt.e2e.hostile;

import io.meshcrypt.e2e.support.FakeKms;
import io.meshcrypt.e2e.support.HostileMesh;
import io.meshcrypt.e2e.support.LocalMesh;
import io.meshcrypt.e2e.support.MeshExtension;
import io.meshcrypt.e2e.support.UnderAttack;
import java.io.IOException;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Issue 11, defect 5 with a KMS that costs what a real one does: the filter-service wraps data keys with an AWS KMS
 * stand-in answering each call after {@link #KMS_LATENCY}. One Produce naming 10,000 new topics then means 10,000
 * KMS round trips; they must neither block a worker that other connections share nor starve another client's new
 * topic of its key. (With the local KEK provider the same flood costs little, see {@link HostilePeersTest}.)
 */
@ExtendWith(MeshExtension.class)
class HostileKmsFloodTest {

    private static final Duration KMS_LATENCY = Duration.ofMillis(10);

    private static FakeKms kms;
    private static HostileMesh hostile;

    @BeforeAll
    static void up(LocalMesh mesh) throws IOException {
        kms = new FakeKms(KMS_LATENCY);
        hostile = new HostileMesh(mesh, "mesh-hostile-kms", "keys:\n  provider: aws-kms\n  awsKms:\n    keyId: "
                + FakeKms.KEY_ID + "\n    region: us-east-1\n    endpoint: " + kms.endpoint() + "\n  kmsTimeoutMillis: 2000\n",
                Map.of("AWS_ACCESS_KEY_ID", "test", "AWS_SECRET_ACCESS_KEY", "test", "AWS_REGION", "us-east-1"));
    }

    @AfterAll
    static void down() throws IOException {
        if (hostile != null) {
            hostile.close();
        }
        if (kms != null) {
            kms.close();
        }
    }

    @Test
    void givenSlowKms_whenOneProduceNamesTenThousandNewTopics_thenOthersFlowAndANewTopicStillGetsItsKey() throws Exception {
        long mark = hostile.logMark();
        int before = kms.encrypts();
        try {
            UnderAttack.run(hostile, "one Produce naming 10,000 topics with a 10 ms KMS", () -> HostilePeersTest.flood(hostile, 10_000, mark));
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + " (KMS Encrypt calls during the test: " + (kms.encrypts() - before) + ")", e);
        }
    }
}
