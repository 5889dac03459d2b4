package io.meshcrypt.launcher;

/**
 * The demo's Kafka apps, each behind its own sidecar. The index orders their ports ({@link PortPlan#appSidecar}).
 *
 * @param component the app's component name, which is also its sidecar's Envoy node id
 */
public enum KafkaApp {
    GO("go", "go-producer"),
    NODE("node", "node-producer"),
    JAVA("java", "spring-consumer");

    private final String shortName;
    private final String component;

    KafkaApp(String shortName, String component) {
        this.shortName = shortName;
        this.component = component;
    }

    public int index() {
        return ordinal();
    }

    /** go, node, java: the prefix of its sidecar component and of its network namespace. */
    public String shortName() {
        return shortName;
    }

    /** The app's component name and its sidecar's Envoy node id. */
    public String component() {
        return component;
    }

    public String sidecar() {
        return shortName + "-sidecar";
    }
}
