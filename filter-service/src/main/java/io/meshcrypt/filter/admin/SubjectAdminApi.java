package io.meshcrypt.filter.admin;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import io.grpc.MethodDescriptor;
import io.grpc.protobuf.ProtoUtils;

/**
 * The wire contract of {@code meshcrypt.admin.v1.SubjectAdmin}, shared by {@link SubjectAdminService} and
 * {@link SubjectAdminClient}. Messages are {@code google.protobuf.Struct}s (a well-known type every gRPC toolkit
 * has, so no generated code and no protoc in the build):
 *
 * <pre>
 * rpc Forget(Struct {scope | topicPattern: string, subject: string}) returns (Struct {scope: string, subjectRef: string})
 * </pre>
 *
 * {@code scope} is the subject keys' scope: for a policy entry without a scope of its own, its topic pattern exactly
 * as written, which {@code topicPattern} names as well (give one of the two); {@code subjectRef} is the 16-byte
 * subject ref in hex. Any other request field is refused (INVALID_ARGUMENT), so that a typo never forgets the wrong
 * subject. grpcurl:
 * {@code grpcurl -d '{"topicPattern":"orders*","subject":"customer-4711"} ... meshcrypt.admin.v1.SubjectAdmin/Forget}.
 */
public final class SubjectAdminApi {
    public static final String SERVICE = "meshcrypt.admin.v1.SubjectAdmin";
    public static final String TOPIC_PATTERN = "topicPattern";
    public static final String SUBJECT = "subject";
    public static final String SCOPE = "scope";
    public static final String SUBJECT_REF = "subjectRef";

    public static final MethodDescriptor<Struct, Struct> FORGET = MethodDescriptor.<Struct, Struct>newBuilder()
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName(MethodDescriptor.generateFullMethodName(SERVICE, "Forget"))
            .setRequestMarshaller(ProtoUtils.marshaller(Struct.getDefaultInstance()))
            .setResponseMarshaller(ProtoUtils.marshaller(Struct.getDefaultInstance()))
            .build();

    private SubjectAdminApi() {
    }

    static Struct forgetRequest(String scope, String subject) {
        return Struct.newBuilder().putFields(SCOPE, text(scope)).putFields(SUBJECT, text(subject)).build();
    }

    static Struct forgetResponse(String scope, String subjectRef) {
        return Struct.newBuilder().putFields(SCOPE, text(scope)).putFields(SUBJECT_REF, text(subjectRef)).build();
    }

    private static Value text(String s) {
        return Value.newBuilder().setStringValue(s).build();
    }

    /** @return the string field {@code name}, or null when it is missing or not a string */
    static String string(Struct message, String name) {
        Value v = message.getFieldsMap().get(name);
        return v != null && v.getKindCase() == Value.KindCase.STRING_VALUE ? v.getStringValue() : null;
    }
}
