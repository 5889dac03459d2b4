package io.meshcrypt.xds;

/** The xDS scenarios with incremental ADS ({@code api_type: DELTA_GRPC}). */
class DeltaXdsTest extends XdsScenarios {
    DeltaXdsTest() {
        super("DELTA_GRPC", XdsMeshHarness.DELTA_PORT_BASE);
    }
}
