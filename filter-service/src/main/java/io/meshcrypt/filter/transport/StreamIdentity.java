package io.meshcrypt.filter.transport;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import java.security.cert.Certificate;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Which workload is on the other end of an ext_proc stream: the identity the policy's {@code readers} and
 * {@code writers} are matched against. It is established once per stream, from what the filter-service itself
 * authenticated, never from anything the workload could write:
 * <ul>
 *   <li>{@link #CERTIFICATE} ({@code tls:} in filter.yaml): the first {@code spiffe://} URI SAN of the client
 *       certificate the TLS handshake verified (a sidecar's certificate from the mesh CA);
 *   <li>{@link #FORWARDED_CLIENT_CERT} ({@code tls: mesh-sidecar}): the pod's own mesh sidecar (Istio) terminated
 *       mutual TLS and forwards the caller's certificate in {@code x-forwarded-client-cert}; only the last element is
 *       believed, the one that sidecar appended itself (Envoy's APPEND_FORWARD / SANITIZE_SET), because earlier
 *       elements come from the caller;
 *   <li>{@link #NONE} (plaintext on loopback): no identity; a rule that lists readers or writers treats the stream as
 *       an outsider.
 * </ul>
 * A stream on a Unix domain socket ({@code unixSockets:}) carries that socket's configured identity instead
 * ({@link #fixed}): the socket file's permissions decided who could connect.
 */
public enum StreamIdentity {
    NONE, CERTIFICATE, FORWARDED_CLIENT_CERT;

    /** The identity of the stream being served (null: none), set by {@link #interceptor()}. */
    public static final Context.Key<String> CURRENT = Context.key("meshcrypt-stream-identity");

    static final String FORWARDED_CLIENT_CERT_HEADER = "x-forwarded-client-cert";
    private static final Metadata.Key<String> XFCC =
            Metadata.Key.of(FORWARDED_CLIENT_CERT_HEADER, Metadata.ASCII_STRING_MARSHALLER);
    /** X.509 GeneralName tag of a URI. */
    private static final int URI_NAME = 6;
    /** Longest identity kept: SPIFFE ids are at most 2048 bytes. */
    public static final int MAX_IDENTITY_CHARS = 2048;

    /** Puts each call's identity into its {@link Context} under {@link #CURRENT}, before any message is read. */
    public ServerInterceptor interceptor() {
        return new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                              ServerCallHandler<Q, R> next) {
                String identity = of(call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION), headers);
                return Contexts.interceptCall(Context.current().withValue(CURRENT, identity), call, headers, next);
            }
        };
    }

    /**
     * Gives every call {@code identity}, whatever it sends: the identity of a Unix domain socket's server
     * ({@link UnixSocket#identity()}), where the file's permissions decided who could connect.
     *
     * @param identity the socket's configured identity, or null for none
     */
    public static ServerInterceptor fixed(String identity) {
        return new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                                                              ServerCallHandler<Q, R> next) {
                return Contexts.interceptCall(Context.current().withValue(CURRENT, identity), call, headers, next);
            }
        };
    }

    /** @return the identity of a call with this TLS session (null without TLS) and these headers, or null */
    String of(SSLSession tls, Metadata headers) {
        return switch (this) {
            case NONE -> null;
            case CERTIFICATE -> tls == null ? null : certificateIdentity(tls);
            case FORWARDED_CLIENT_CERT -> lastForwardedUri(headers.getAll(XFCC));
        };
    }

    private static String certificateIdentity(SSLSession tls) {
        Certificate[] chain;
        try {
            chain = tls.getPeerCertificates();
        } catch (SSLPeerUnverifiedException e) {
            return null;
        }
        return chain.length > 0 && chain[0] instanceof X509Certificate leaf ? spiffeUri(leaf) : null;
    }

    /** The first {@code spiffe://} URI subject alternative name of {@code certificate}, or null. */
    static String spiffeUri(X509Certificate certificate) {
        Collection<List<?>> names;
        try {
            names = certificate.getSubjectAlternativeNames();
        } catch (CertificateParsingException e) {
            return null;
        }
        if (names == null) {
            return null;
        }
        for (List<?> name : names) {
            if (name.size() == 2 && name.get(0) instanceof Integer tag && tag == URI_NAME
                    && name.get(1) instanceof String uri && isSpiffe(uri)) {
                return uri;
            }
        }
        return null;
    }

    /**
     * The first {@code spiffe://} {@code URI=} value of the last element of the {@code x-forwarded-client-cert}
     * header (several header lines are read as one list, in order), or null. Elements are separated by commas, pairs
     * by semicolons; values may be double-quoted, with backslash escapes, and then contain either separator (Envoy
     * quotes Subject values).
     *
     * <p>The caller writes everything before the element our sidecar appends, so a quote it leaves open could pull
     * that element into one of its own: a header whose quotes do not balance yields no identity at all.
     */
    static String lastForwardedUri(Iterable<String> values) {
        if (values == null) {
            return null;
        }
        StringBuilder joined = new StringBuilder();
        for (String value : values) {
            if (!joined.isEmpty()) {
                joined.append(',');
            }
            joined.append(value);
        }
        List<String> elements = split(joined.toString(), ',');
        if (elements == null) {
            return null;
        }
        List<String> pairs = split(elements.get(elements.size() - 1), ';');
        if (pairs == null) {
            return null;
        }
        for (String pair : pairs) {
            int eq = pair.indexOf('=');
            if (eq > 0 && pair.substring(0, eq).strip().equalsIgnoreCase("URI")) {
                String uri = unquote(pair.substring(eq + 1).strip());
                if (uri != null && isSpiffe(uri)) {
                    return uri;
                }
            }
        }
        return null;
    }

    private static boolean isSpiffe(String uri) {
        return uri.startsWith("spiffe://") && uri.length() <= MAX_IDENTITY_CHARS;
    }

    /**
     * Splits at {@code separator} outside double quotes; a backslash inside quotes escapes the next character.
     *
     * @return the parts, at least one; null when a quote is left open
     */
    private static List<String> split(String text, char separator) {
        List<String> parts = new ArrayList<>();
        boolean quoted = false;
        int start = 0;
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (quoted && c == '\\') {
                i++;
            } else if (c == '"') {
                quoted = !quoted;
            } else if (c == separator && !quoted) {
                parts.add(text.substring(start, i));
                start = i + 1;
            }
        }
        if (quoted) {
            return null;
        }
        parts.add(text.substring(start));
        return parts;
    }

    /** A value without quotes as it is; a quoted one without its quotes and escapes; null when a quote is unclosed. */
    private static String unquote(String value) {
        if (value.isEmpty() || value.charAt(0) != '"') {
            return value;
        }
        if (value.length() < 2 || value.charAt(value.length() - 1) != '"') {
            return null;
        }
        StringBuilder b = new StringBuilder(value.length());
        for (int i = 1; i < value.length() - 1; i++) {
            char c = value.charAt(i);
            if (c == '\\' && i + 1 < value.length() - 1) {
                c = value.charAt(++i);
            }
            b.append(c);
        }
        return b.toString();
    }
}
