package io.meshcrypt.xds;

/** The xDS scenarios with state-of-the-world ADS ({@code api_type: GRPC}). */
class SotwXdsTest extends XdsScenarios {
    SotwXdsTest() {
        super("GRPC", XdsMeshHarness.SOTW_PORT_BASE);
    }
}
