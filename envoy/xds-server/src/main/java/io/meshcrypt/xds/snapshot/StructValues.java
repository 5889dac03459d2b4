package io.meshcrypt.xds.snapshot;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import java.util.Map;
import java.util.TreeMap;

/** protobuf Struct values for configs sent as JSON (TypedStruct) and for metadata. */
final class StructValues {

    private StructValues() {
    }

    static Value string(String s) {
        return Value.newBuilder().setStringValue(s).build();
    }

    /** Fields in name order: the same config always serializes to the same bytes. */
    static Struct struct(Map<String, Value> fields) {
        return Struct.newBuilder().putAllFields(new TreeMap<>(fields)).build();
    }

    static Value structValue(Map<String, Value> fields) {
        return Value.newBuilder().setStructValue(struct(fields)).build();
    }
}
