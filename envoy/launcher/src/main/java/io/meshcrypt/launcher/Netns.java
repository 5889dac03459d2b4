package io.meshcrypt.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Transparent mode networking (Linux, root): each Kafka app in its own network namespace, joined to the host by a veth
 * pair with link-local addresses 169.254.S.(4i+1)/30 on the host and .(4i+2)/30 inside (S from the port base, so
 * meshes side by side do not collide). The broker's real address is the host end of one more pair (index 0, its
 * namespace stays empty). In each app namespace envoy/transparent/iptables-init.sh does what a Kubernetes init
 * container does for Istio: every TCP connection is REDIRECTed to the sidecar, except the sidecar's own (uid 1337).
 */
final class Netns {

    /** The sidecars' uid, exempt from interception (Istio uses the same). */
    static final int PROXY_UID = 1337;

    private final Path root;
    private final StateDir state;
    private final PortPlan ports;

    Netns(Path root, StateDir state, PortPlan ports) {
        this.root = root;
        this.state = state;
        this.ports = ports;
    }

    /** kafka, go, node, java: index i gives the veth pair's addresses. */
    private static List<String> ends() {
        List<String> ends = new ArrayList<>(List.of("kafka"));
        for (KafkaApp app : KafkaApp.values()) {
            ends.add(app.shortName());
        }
        return ends;
    }

    List<String> names() {
        return ends().stream().map(e -> ports.netnsPrefix() + "-" + e).toList();
    }

    String of(KafkaApp app) {
        return ports.netnsPrefix() + "-" + app.shortName();
    }

    /** The namespace a demo component runs in, or null for the host's. */
    String ofComponent(String component) {
        for (KafkaApp app : KafkaApp.values()) {
            if (component.equals(app.component()) || component.equals(app.sidecar())) {
                return of(app);
            }
        }
        return null;
    }

    void up() {
        down(true);
        List<String> ends = ends();
        String subnet = ports.linkLocalSubnet();
        for (int i = 0; i < ends.size(); i++) {
            String ns = ports.netnsPrefix() + "-" + ends.get(i);
            String host = ns + "-h";
            String peer = ns + "-n";
            String hostAddr = subnet + "." + (4 * i + 1);
            ip("netns", "add", ns);
            ip("link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns);
            ip("addr", "add", hostAddr + "/30", "dev", host);
            ip("link", "set", host, "up");
            ip("-n", ns, "addr", "add", subnet + "." + (4 * i + 2) + "/30", "dev", peer);
            ip("-n", ns, "link", "set", "lo", "up");
            ip("-n", ns, "link", "set", peer, "up");
            ip("-n", ns, "route", "add", "default", "via", hostAddr);
            if (!ends.get(i).equals("kafka")) {
                Probes.runVisible(List.of("ip", "netns", "exec", ns, root.resolve("envoy/transparent/iptables-init.sh").toString(),
                        Integer.toString(PROXY_UID), Integer.toString(PortPlan.NAMESPACE_SIDECAR_PORT)), root,
                        "the interception rules could not be applied in " + ns);
            }
        }
        StateDir.writeAtomically(state.file("netns"), String.join("\n", names()) + "\n");
    }

    /** Deleting a namespace destroys both ends of its veth pair and the iptables rules inside it. */
    void down(boolean quiet) {
        String list = Probes.run(List.of("ip", "netns", "list")).output();
        for (String ns : names()) {
            if (list.lines().anyMatch(l -> l.equals(ns) || l.startsWith(ns + " "))) {
                for (String pid : Probes.run(List.of("ip", "netns", "pids", ns)).output().split("\\s+")) {
                    if (pid.matches("[0-9]+")) {
                        ProcessHandle.of(Long.parseLong(pid)).ifPresent(ProcessHandle::destroyForcibly);
                    }
                }
                ip("netns", "del", ns);
                if (!quiet) {
                    Say.say("removed network namespace " + ns);
                }
            }
        }
        try {
            Files.deleteIfExists(state.file("netns"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void ip(String... args) {
        List<String> command = new ArrayList<>(List.of("ip"));
        command.addAll(List.of(args));
        Probes.runVisible(command, root, String.join(" ", command) + " failed");
    }
}
