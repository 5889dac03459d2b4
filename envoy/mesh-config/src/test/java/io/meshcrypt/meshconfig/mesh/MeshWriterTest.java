package io.meshcrypt.meshconfig.mesh;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.meshcrypt.meshconfig.mesh.Policies;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class MeshWriterTest {
    private static final Path FILE = Path.of("/etc/meshcrypt/mesh.yaml");

    /** Every kind of listener, broker address form, policy entry and HTTP rule part the readers know. */
    private static final String MESH = """
            filterService: 127.0.0.1:50051
            kafkaClusters:
              payments:
                brokers: {1: kafka-1.internal:9092, 2: "[fd00::2]:9092"}
                tls: {trustedCa: pki/brokers-ca.pem, certificate: /pki/client.pem, privateKey: client-key.pem,
                      sni: {2: broker-2.payments.example}, minVersion: "1.3"}
              ledger: {brokers: {7: 10.0.0.7:9092}, tls: {trustedCa: /pki/ledger-ca.pem}}
            sidecars:
              shop:
                kafka:
                  payments: {bootstrap: 127.0.0.1:19192, brokers: {1: 127.0.0.1:19193, 2: {listen: 0.0.0.0:19194, advertise: 10.1.2.3:19194}},
                             tls: {certificate: pki/listener.pem, privateKey: pki/listener-key.pem}}
              pipes:
                filterService: unix:/run/meshcrypt/pipes.sock
                http: {api: {listen: 127.0.0.1:28081, upstream: pipes.internal:8080}}
              books:
                filterService: [10.0.0.7:50051, "[fd00::9]:50051", filter-2.internal:50051]
                http: {api: {listen: 127.0.0.1:28080, upstream: books.internal:8080}}
                transparent: {listen: 127.0.0.1:15001, kafka: [ledger]}
            policy:
              encrypt: ["pay-*", {topic: cards, fields: ["/pan", "/x~1y"]}, {topic: users, keys: deterministic},
                        {topic: both, fields: ["/id"], keys: deterministic},
                        {topic: "ledger.*", readers: ["spiffe://meshcrypt.local/sidecar/books", "spiffe://cluster.local/ns/apps/*"], others: deny},
                        {topic: audit, fields: [/who, {field: /salary, readers: ["spiffe://x/hr*"]}], readers: [spiffe://x/a], writers: [spiffe://x/w]},
                        {topic: "hdr-*", headers: [user-id, "x-pii-*"]}, {topic: hdrkeys, keys: deterministic, headers: ["?"]}]
              decryptOnly: [old-*]
              unmatched: reject
            http:
              rules:
                - name: checkout
                  binding: checkout
                  match: {body: pan, contentType: [application/json, "text/*"], pathRegex: "/checkout/[0-9]+", path: /checkout, methods: [PUT, POST]}
                  response: {fields: [{decrypt: /pan}]}
                  readers: [spiffe://meshcrypt.local/sidecar/shop, "spiffe://cluster.local/ns/apps/*"]
                  request:
                    onInvalid: pass
                    headers: {remove: [x-debug], set: {x-meshcrypt: enabled}}
                    body: [{pattern: "(b)", with: "$1$1"}]
                    fields:
                      - {encrypt: /pan, required: true}
                      - {redact: /cvc, with: "***"}
                      - {replace: /mail, pattern: "@.*$", with: "@example.org"}
                      - {set: /about, value: {v: 2.5, n: 12345678901234567890, list: [b, null, false], s: "7"}}
                - name: anything
            tls:
              trustedCa: pki/ca.pem
              certificates: /var/lib/meshcrypt/pki
              filterService: spiffe://meshcrypt.local/filter-service
            """;

    @Test
    void givenAFullMesh_whenWrittenAndReadBack_thenTheModelIsEqual() throws Exception {
        Mesh mesh = MeshReader.parse(FILE, MESH.getBytes(StandardCharsets.UTF_8));

        String written = MeshWriter.write(mesh);

        assertEquals(mesh, MeshReader.parse(FILE, written.getBytes(StandardCharsets.UTF_8)), written);
    }

    @Test
    void givenAFullMesh_whenWrittenTwice_thenTheTextIsTheSame() throws Exception {
        Mesh mesh = MeshReader.parse(FILE, MESH.getBytes(StandardCharsets.UTF_8));

        String once = MeshWriter.write(mesh);
        String twice = MeshWriter.write(MeshReader.parse(FILE, once.getBytes(StandardCharsets.UTF_8)));

        assertEquals(once, twice);
    }

    @Test
    void givenThePolicySections_whenWrittenAndReadBack_thenPolicyAndRulesAreEqual() throws Exception {
        Mesh mesh = MeshReader.parse(FILE, MESH.getBytes(StandardCharsets.UTF_8));
        Policies policies = new Policies(mesh.policy(), mesh.http());

        String written = MeshWriter.writePolicies(policies);

        assertEquals(policies, Policies.parse(FILE, written.getBytes(StandardCharsets.UTF_8)), written);
    }
}
