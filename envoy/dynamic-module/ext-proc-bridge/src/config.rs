//! The filter config (the dynamic_modules filter's `filter_config`, a JSON string), validated when Envoy loads it:
//! an error here makes Envoy reject the listener (xDS NACK), so nothing is proxied with a config half understood.

use serde::Deserialize;
use std::time::Duration;

/// The one formatter the bridge evaluates in `initial_metadata`, as Envoy's filter does for the same header.
pub const DOWNSTREAM_REMOTE_ADDRESS: &str = "%DOWNSTREAM_REMOTE_ADDRESS%";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    filter_service: String,
    message_timeout_ms: u64,
    #[serde(default)]
    initial_metadata: Vec<Header>,
    #[serde(default = "default_read_pause_bytes")]
    read_pause_bytes: usize,
    #[serde(default = "default_max_in_flight_bytes")]
    max_in_flight_bytes: usize,
}

/// One gRPC request header of every stream, like `grpc_service.initial_metadata`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub key: String,
    pub value: String,
}

fn default_read_pause_bytes() -> usize {
    1 << 20
}

fn default_max_in_flight_bytes() -> usize {
    64 << 20
}

#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// `http://host:port` of the filter-service (HTTP/2 without TLS).
    pub filter_service: String,
    /// Per chunk and direction, as network ext_proc's `message_timeout`: past it the connection is closed.
    pub message_timeout: Duration,
    pub initial_metadata: Vec<Header>,
    /// Client bytes with the filter-service above which the bridge stops reading the client (back-pressure).
    pub read_pause_bytes: usize,
    /// Bytes of one direction with the filter-service above which the connection is closed (bounded memory: the
    /// broker side cannot be paused from a downstream filter).
    pub max_in_flight_bytes: usize,
}

impl BridgeConfig {
    pub fn parse(json: &[u8]) -> Result<BridgeConfig, String> {
        let raw: Raw = serde_json::from_slice(json).map_err(|e| format!("filter_config: {e}"))?;
        if !raw.filter_service.starts_with("http://") {
            return Err(format!(
                "filter_config: filter_service: must be http://host:port (TLS to the filter-service is not supported by the bridge yet), got {:?}",
                raw.filter_service
            ));
        }
        tonic::transport::Endpoint::from_shared(raw.filter_service.clone())
            .map_err(|e| format!("filter_config: filter_service: {e}"))?;
        if raw.message_timeout_ms == 0 {
            return Err("filter_config: message_timeout_ms: must be positive".to_string());
        }
        if raw.read_pause_bytes == 0 || raw.max_in_flight_bytes < raw.read_pause_bytes {
            return Err("filter_config: max_in_flight_bytes: must be at least read_pause_bytes, both positive".to_string());
        }
        for (i, h) in raw.initial_metadata.iter().enumerate() {
            let key_ok = !h.key.is_empty()
                && h.key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.');
            if !key_ok || h.key.ends_with("-bin") {
                return Err(format!("filter_config: initial_metadata[{i}].key: not a lower-case ASCII header name: {:?}", h.key));
            }
            if h.value.contains('%') && h.value != DOWNSTREAM_REMOTE_ADDRESS {
                return Err(format!(
                    "filter_config: initial_metadata[{i}].value: the only formatter supported is {DOWNSTREAM_REMOTE_ADDRESS}"
                ));
            }
            if h.value.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
                return Err(format!("filter_config: initial_metadata[{i}].value: not printable ASCII"));
            }
        }
        Ok(BridgeConfig {
            filter_service: raw.filter_service,
            message_timeout: Duration::from_millis(raw.message_timeout_ms),
            initial_metadata: raw.initial_metadata,
            read_pause_bytes: raw.read_pause_bytes,
            max_in_flight_bytes: raw.max_in_flight_bytes,
        })
    }
}

/// `%DOWNSTREAM_REMOTE_ADDRESS%` as Envoy prints it: `ip:port`, IPv6 in brackets.
pub fn format_address(ip: &str, port: u32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"filter_service":"http://127.0.0.1:9000","message_timeout_ms":5000,
        "initial_metadata":[{"key":"x-meshcrypt-sidecar-node","value":"apps"},
                            {"key":"x-meshcrypt-client-address","value":"%DOWNSTREAM_REMOTE_ADDRESS%"}]}"#;

    #[test]
    fn given_a_complete_config_when_parsed_then_every_field_is_taken() {
        let c = BridgeConfig::parse(VALID.as_bytes()).unwrap();
        assert_eq!(c.filter_service, "http://127.0.0.1:9000");
        assert_eq!(c.message_timeout, Duration::from_secs(5));
        assert_eq!(c.initial_metadata.len(), 2);
        assert_eq!(c.read_pause_bytes, 1 << 20);
    }

    #[test]
    fn given_an_unknown_key_when_parsed_then_it_is_refused_with_its_position() {
        let err = BridgeConfig::parse(br#"{"filter_service":"http://a:1","message_timeout_ms":1,"failure_mode_allow":true}"#)
            .unwrap_err();
        assert!(err.contains("unknown field `failure_mode_allow`"), "{err}");
        assert!(err.contains("line 1 column"), "{err}");
    }

    #[test]
    fn given_tls_or_a_zero_timeout_or_another_formatter_when_parsed_then_each_is_refused() {
        assert!(BridgeConfig::parse(br#"{"filter_service":"https://a:1","message_timeout_ms":1}"#).is_err());
        assert!(BridgeConfig::parse(br#"{"filter_service":"http://a:1","message_timeout_ms":0}"#).is_err());
        let other = br#"{"filter_service":"http://a:1","message_timeout_ms":1,"initial_metadata":[{"key":"k","value":"%START_TIME%"}]}"#;
        assert!(BridgeConfig::parse(other).unwrap_err().contains("initial_metadata[0].value"));
    }

    #[test]
    fn given_garbage_or_wrong_types_when_parsed_then_each_is_refused_without_a_panic() {
        let inputs: [&[u8]; 7] = [
            b"",
            b"\xff\xfe\x00garbage",
            b"[]",
            br#"{"filter_service":42,"message_timeout_ms":1}"#,
            br#"{"filter_service":"http://a:1","message_timeout_ms":-1}"#,
            br#"{"filter_service":"http://a:1","message_timeout_ms":1e99}"#,
            br#"{"filter_service":"http://a:1","message_timeout_ms":1,"initial_metadata":"not a list"}"#,
        ];
        for input in inputs {
            assert!(BridgeConfig::parse(input).is_err(), "accepted {:?}", String::from_utf8_lossy(input));
        }
        // a huge config is parsed (or refused) like any other, without growing past its input
        let huge = format!(r#"{{"filter_service":"http://a:1","message_timeout_ms":1,"initial_metadata":[{}]}}"#,
            vec![r#"{"key":"k","value":"v"}"#; 100_000].join(","));
        assert_eq!(BridgeConfig::parse(huge.as_bytes()).map(|c| c.initial_metadata.len()), Ok(100_000));
    }

    #[test]
    fn given_ipv4_and_ipv6_when_formatted_then_they_read_like_envoys_formatter() {
        assert_eq!(format_address("10.0.0.1", 5), "10.0.0.1:5");
        assert_eq!(format_address("::1", 5), "[::1]:5");
    }
}
