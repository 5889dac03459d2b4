package io.meshcrypt.filter.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.meshcrypt.filter.transport.UnixSocket;
import io.meshcrypt.meshconfig.yaml.ConfigException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class UnixSocketsConfigTest {

    @TempDir
    Path dir;

    /** {@code yaml} after a keyset line, as if read from filter.yaml in {@link #dir}. */
    private FilterConfig load(String yaml) throws Exception {
        return FilterConfig.parse(dir.resolve("filter.yaml"), ("keyset: keyset.json\n" + yaml).getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void givenNoUnixSockets_whenLoaded_thenOnlyListenIsServed() throws Exception {
        assertEquals(List.of(), load("").unixSockets());
    }

    @Test
    void givenTwoSockets_whenLoaded_thenPathsResolveAgainstTheConfigFolderWithTheirIdentityAndMode() throws Exception {
        FilterConfig config = load("""
                unixSockets:
                  - path: run/orders.sock
                    identity: spiffe://meshcrypt.local/ns/default/sa/orders
                    mode: "0660"
                  - path: /tmp/other.sock
                """);

        UnixSocket orders = config.unixSockets().get(0);
        assertEquals(dir.resolve("run/orders.sock"), orders.path());
        assertEquals("spiffe://meshcrypt.local/ns/default/sa/orders", orders.identity());
        assertEquals(PosixFilePermissions.fromString("rw-rw----"), orders.mode());
        UnixSocket other = config.unixSockets().get(1);
        assertEquals(Path.of("/tmp/other.sock"), other.path());
        assertNull(other.identity(), "no identity configured: streams on it have none");
        assertEquals(PosixFilePermissions.fromString("rw-------"), other.mode(), "default 0600");
    }

    @Test
    void givenAModeWithoutTheLeadingZero_whenLoaded_thenItIsTheSameOctalMode() throws Exception {
        FilterConfig config = load("unixSockets:\n  - path: a.sock\n    mode: \"640\"\n");

        assertEquals(PosixFilePermissions.fromString("rw-r-----"), config.unixSockets().get(0).mode());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            not a list            | unixSockets: run/a.sock                                              | 2:1 | unixSockets: must be a list of sockets ({path, identity, mode}) (got "run/a.sock")
            item not a mapping    | unixSockets: [run/a.sock]                                            | 2:15 | unixSockets[0]: must be a mapping (got "run/a.sock")
            unknown key           | unixSockets:\\n  - path: a.sock\\n    owner: me                       | 4:5 | unixSockets[0].owner: unknown field (expected one of path, identity, mode)
            missing path          | unixSockets:\\n  - mode: "0600"                                      | 3:5 | unixSockets[0].path: required field is missing (the socket file, e.g. run/orders.sock)
            empty path            | unixSockets:\\n  - path: ''                                          | 3:5 | unixSockets[0].path: must not be empty
            path not a string     | unixSockets:\\n  - path: 7                                           | 3:5 | unixSockets[0].path: must be a string (got 7)
            duplicate path        | unixSockets:\\n  - path: a.sock\\n  - path: ./x/../a.sock            | 4:5 | unixSockets[1].path: duplicate socket path, already unixSockets[0].path
            identity not spiffe   | unixSockets:\\n  - path: a.sock\\n    identity: orders               | 4:5 | unixSockets[0].identity: must be an exact SPIFFE id (printable ASCII, no globs), e.g. spiffe://meshcrypt.local/ns/default/sa/orders (got "orders")
            identity glob         | unixSockets:\\n  - path: a.sock\\n    identity: "spiffe://m/*"       | 4:5 | unixSockets[0].identity: must be an exact SPIFFE id
            identity with space   | unixSockets:\\n  - path: a.sock\\n    identity: "spiffe://m/a b"     | 4:5 | unixSockets[0].identity: must be an exact SPIFFE id
            identity bare scheme  | unixSockets:\\n  - path: a.sock\\n    identity: "spiffe://"          | 4:5 | unixSockets[0].identity: must be an exact SPIFFE id
            identity bad uri      | unixSockets:\\n  - path: a.sock\\n    identity: "spiffe://m/%zz"     | 4:5 | unixSockets[0].identity: is not a valid URI
            identity empty        | unixSockets:\\n  - path: a.sock\\n    identity: ''                   | 4:5 | unixSockets[0].identity: must not be empty
            mode unquoted         | unixSockets:\\n  - path: a.sock\\n    mode: 600                      | 4:5 | unixSockets[0].mode: must be an octal string such as "0600" (quote it; got 600)
            mode not octal        | unixSockets:\\n  - path: a.sock\\n    mode: "0680"                   | 4:5 | unixSockets[0].mode: must be octal permission bits within 0777, e.g. "0600" (got "0680")
            mode too large        | unixSockets:\\n  - path: a.sock\\n    mode: "4600"                   | 4:5 | unixSockets[0].mode: must be octal permission bits within 0777
            mode symbolic         | unixSockets:\\n  - path: a.sock\\n    mode: "rw-------"              | 4:5 | unixSockets[0].mode: must be octal permission bits within 0777
            mode world writable   | unixSockets:\\n  - path: a.sock\\n    mode: "0662"                   | 4:5 | unixSockets[0].mode: must not let others connect (o+w, got "0662"); grant a group instead, e.g. "0660"
            """)
    void givenABadUnixSocketsSection_whenLoaded_thenTheErrorNamesFileLineColumnAndField(String name, String yaml,
            String at, String expected) throws Exception {
        ConfigException e = assertThrows(ConfigException.class, () -> load(yaml.replace("\\n", "\n")));

        String prefix = dir.resolve("filter.yaml") + ":" + at + ": ";
        assertTrue(e.getMessage().startsWith(prefix + expected), () -> "expected prefix <" + prefix + expected
                + "> but was <" + e.getMessage() + ">");
    }

    @Test
    void givenAPathLongerThanTheKernelTakes_whenLoaded_thenTheErrorSaysHowLong() {
        String path = "/" + "d".repeat(100) + "/orders.sock";

        ConfigException e = assertThrows(ConfigException.class, () -> load("unixSockets:\n  - path: " + path + "\n"));

        assertTrue(e.getMessage().startsWith(dir.resolve("filter.yaml") + ":3:5: unixSockets[0].path: is 113 bytes long"
                + " once resolved, the kernel takes at most 107"), e.getMessage());
    }
}
