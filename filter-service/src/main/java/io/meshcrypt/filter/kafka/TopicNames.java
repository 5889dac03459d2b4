package io.meshcrypt.filter.kafka;

import io.meshcrypt.filter.framing.KafkaFrameException;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.kafka.common.Uuid;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Topic id to name, for the one place that still needs it: ShareFetch and ShareAcknowledge, which name topics by
 * id in every version. Filled from the Metadata responses that pass through the filter.
 *
 * <h2>Why a broker cannot use this map to get plaintext stored</h2>
 * The encryption policy and the ciphertext's associated data are decided by topic <em>name</em>. Produce v13+ and
 * Fetch v13+ name topics by id only, and the id-to-name mapping comes from the broker, which meshcrypt does not
 * trust: a broker that answered Metadata with {@code secret -> U1} and then {@code public -> U1} would have turned a
 * Produce to {@code secret} into one the policy passes in plaintext. Therefore:
 * <ul>
 * <li>The ApiVersions clamp ({@link ApiVersionsFilter}) offers Produce and Fetch only up to v12, the last versions
 *     that name topics, and a request at v13+ closes the connection. Produce policy and associated data are then
 *     decided from names the client itself wrote; this map is never consulted for Produce or Fetch, and a
 *     filter-service replica that has never seen a Metadata response needs no shared state to work.</li>
 * <li>For the share APIs there is no such version. Here the first mapping of an id wins and is never replaced;
 *     Kafka never reuses a topic id and has no topic rename, so a Metadata response that maps a known id to a
 *     different name is a lying or broken broker: {@link #learn} throws (closing the connection that carried the
 *     response) and poisons the id, so that {@link #nameOf} returns null for it from then on and every ShareFetch
 *     of it is refused (UNKNOWN_TOPIC_ID), whichever of the two names was true.</li>
 * <li>What a broker can still do is map an id it has not shown before to a wrong name first. On the consuming side
 *     that only decides under which name values are decrypted: ciphertext is bound to its topic, so a wrong name
 *     makes decryption fail (CORRUPT_MESSAGE) or leaves values as they are; it never sends plaintext to the broker.
 *     The client learns its ids from the same broker and is no better informed.</li>
 * </ul>
 * The map is shared by all connections (a consumer's Metadata and its ShareFetch may use different connections)
 * and bounded: when it holds {@code maxIds} ids, new ids are not learnt and their share fetches are refused until
 * the process restarts, so a broker that invents ids cannot grow the heap without limit.
 */
public final class TopicNames {
    private static final Logger log = LoggerFactory.getLogger(TopicNames.class);

    /** The newest Produce and Fetch versions that name topics by name (the only ones offered, see above). */
    static final short LAST_VERSION_NAMING_TOPICS = 12;
    /** Kafka's limit on a topic name (org.apache.kafka.common.internals.Topic.MAX_NAME_LENGTH). */
    public static final int MAX_NAME_LENGTH = 249;
    /** Identity sentinel for an id two Metadata responses named differently; never a legal topic name. */
    private static final String POISONED = new String("<conflicting names>");

    private final ConcurrentHashMap<Uuid, String> names = new ConcurrentHashMap<>();
    private final int maxIds;
    private boolean fullReported;

    /** @param maxIds the most ids remembered (poisoned ones included); 0 learns nothing */
    public TopicNames(int maxIds) {
        if (maxIds < 0) {
            throw new IllegalArgumentException("maxIds must be >= 0: " + maxIds);
        }
        this.maxIds = maxIds;
    }

    /**
     * Remembers that {@code id} names {@code name}. Zero or null ids and names that are not legal topic names are
     * ignored (a client that uses them learns nothing from us and its share fetches of them are refused).
     * Synchronized: Metadata responses are rare, and the bound and the conflict check must be exact.
     *
     * @throws KafkaFrameException when {@code id} is already known under a different name; the id is poisoned
     */
    public synchronized void learn(Uuid id, String name) throws KafkaFrameException {
        if (id == null || Uuid.ZERO_UUID.equals(id) || name == null || !isLegal(name)) {
            return;
        }
        String known = names.get(id);
        if (known == null) {
            if (names.size() >= maxIds) {
                if (!fullReported) {
                    fullReported = true;
                    log.warn("topic id map is full ({} ids): new topic ids are not learnt, ShareFetch of them is"
                            + " answered UNKNOWN_TOPIC_ID (raise maxTopicIds if the cluster really has this many)", maxIds);
                }
                return;
            }
            names.put(id, name);
        } else if (known != POISONED && !known.equals(name)) {
            names.put(id, POISONED);
            log.warn("topic id {} poisoned: Metadata named it {} and later {}; ShareFetch and ShareAcknowledge of"
                    + " it are refused from now on", id, describe(known), describe(name));
            throw new KafkaFrameException("Metadata response maps topic id " + id + " to " + describe(name)
                    + " but an earlier one mapped it to " + describe(known)
                    + " (Kafka never reuses topic ids: the broker is lying or broken)");
        }
    }

    /** The topic's name, or null when no Metadata response has shown this id yet or two named it differently. */
    public String nameOf(Uuid id) {
        if (id == null) {
            return null;
        }
        String name = names.get(id);
        return name == POISONED ? null : name;
    }

    /** How many ids are remembered, poisoned ones included. */
    public int size() {
        return names.size();
    }

    /** Kafka's own rule (Topic.validate): 1 to 249 characters of [a-zA-Z0-9._-], and neither "." nor "..". */
    public static boolean isLegal(String name) {
        int n = name.length();
        if (n == 0 || n > MAX_NAME_LENGTH || name.equals(".") || name.equals("..")) {
            return false;
        }
        for (int i = 0; i < n; i++) {
            char c = name.charAt(i);
            boolean legal = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '.' || c == '_' || c == '-';
            if (!legal) {
                return false;
            }
        }
        return true;
    }

    /**
     * A peer-chosen name fit for a log line: quoted, control and non-ASCII characters escaped, cut after 64
     * characters (a name can be up to 32767 characters on the wire).
     */
    static String describe(String name) {
        if (name == null) {
            return "null";
        }
        int shown = Math.min(name.length(), 64);
        StringBuilder b = new StringBuilder(shown + 16).append('"');
        for (int i = 0; i < shown; i++) {
            char c = name.charAt(i);
            if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        b.append('"');
        if (shown < name.length()) {
            b.append("... (").append(name.length()).append(" characters)");
        }
        return b.toString();
    }
}
