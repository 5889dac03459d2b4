//! The filter config (the dynamic_modules filter's `filter_config`, a JSON string), validated when Envoy loads it:
//! an error here makes Envoy reject the listener (xDS NACK), so nothing is proxied with a config half understood.

use crate::tls::{self, TlsFiles};
use rustls_pki_types::ServerName;
use serde::Deserialize;
use std::path::PathBuf;
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
    tls: Option<RawTls>,
}

/// `tls`: required with `https://`, refused with `http://`. Paths, never contents, are what the config carries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    certificate_chain: PathBuf,
    private_key: PathBuf,
    trusted_ca: PathBuf,
    filter_service_san: String,
    /// SNI and `:authority`; default: filter_service's host
    server_name: Option<String>,
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
    /// `http://host:port` (HTTP/2 without TLS) or `https://host:port` (with [`BridgeConfig::tls`]) of the
    /// filter-service; with `tls.server_name`, that name is the `:authority`.
    pub filter_service: String,
    /// Per chunk and direction, as network ext_proc's `message_timeout`: past it the connection is closed.
    pub message_timeout: Duration,
    pub initial_metadata: Vec<Header>,
    /// Client bytes with the filter-service above which the bridge stops reading the client (back-pressure).
    pub read_pause_bytes: usize,
    /// Bytes of one direction with the filter-service above which the connection is closed (bounded memory: the
    /// broker side cannot be paused from a downstream filter).
    pub max_in_flight_bytes: usize,
    /// Mutual TLS, for `https://`.
    pub tls: Option<TlsFiles>,
}

impl BridgeConfig {
    pub fn parse(json: &[u8]) -> Result<BridgeConfig, String> {
        let raw: Raw = serde_json::from_slice(json).map_err(|e| format!("filter_config: {e}"))?;
        let endpoint = tonic::transport::Endpoint::from_shared(raw.filter_service.clone())
            .map_err(|e| format!("filter_config: filter_service: {e}"))?;
        let host = endpoint.uri().host().filter(|_| endpoint.uri().port_u16().is_some());
        let tls = match (endpoint.uri().scheme_str(), host, raw.tls) {
            (Some("http"), Some(_), None) => None,
            (Some("https"), Some(host), Some(tls)) => Some(tls_files(host, tls)?),
            (Some("https"), Some(_), None) => {
                return Err("filter_config: tls: required with an https:// filter_service".to_string());
            }
            (Some("http"), Some(_), Some(_)) => {
                return Err("filter_config: tls: given for an http:// filter_service; use https://".to_string());
            }
            _ => {
                return Err(format!(
                    "filter_config: filter_service: must be http://host:port or https://host:port, got {:?}",
                    raw.filter_service
                ));
            }
        };
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
            tls,
        })
    }
}

/// Checks the names and reads the files once, so a config naming a missing or broken file is refused now.
fn tls_files(host: &str, raw: RawTls) -> Result<TlsFiles, String> {
    if !raw.filter_service_san.contains(':') {
        return Err(format!("filter_config: tls.filter_service_san: not a URI: {:?}", raw.filter_service_san));
    }
    // an IPv6 host comes in brackets, which a server name does not take
    let name = raw.server_name.unwrap_or_else(|| host.trim_start_matches('[').trim_end_matches(']').to_string());
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| format!("filter_config: tls.server_name: not a DNS name or IP address: {name:?}"))?;
    let files = TlsFiles {
        certificate_chain: raw.certificate_chain,
        private_key: raw.private_key,
        trusted_ca: raw.trusted_ca,
        filter_service_san: raw.filter_service_san,
        server_name,
    };
    tls::load(&files).map_err(|e| format!("filter_config: {e}"))?;
    Ok(files)
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
    use std::sync::Arc;

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

    /// A folder of mesh files: the CA, the sidecar's chain and key, removed when dropped.
    struct MeshFiles(PathBuf);

    impl MeshFiles {
        fn new(test: &str) -> MeshFiles {
            let dir = std::env::temp_dir().join(format!("meshcrypt-bridge-{test}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let ca = crate::tls::tests::TestCa::new("mesh");
            let (chain, key) = ca.issue(&["spiffe://meshcrypt.local/sidecar/apps"]);
            std::fs::write(dir.join("ca.pem"), ca.cert.pem()).unwrap();
            std::fs::write(dir.join("sidecar.pem"), chain).unwrap();
            std::fs::write(dir.join("sidecar-key.pem"), key).unwrap();
            MeshFiles(dir)
        }

        fn config(&self, tls_extra: &str) -> String {
            let d = self.0.display();
            format!(
                r#"{{"filter_service":"https://127.0.0.1:9000","message_timeout_ms":5000,
                "tls":{{"certificate_chain":"{d}/sidecar.pem","private_key":"{d}/sidecar-key.pem",
                        "trusted_ca":"{d}/ca.pem","filter_service_san":"{}"{tls_extra}}}}}"#,
                crate::tls::tests::FILTER_SERVICE
            )
        }
    }

    impl Drop for MeshFiles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn given_https_with_its_tls_files_when_parsed_then_they_are_taken_and_the_host_is_the_server_name() {
        let files = MeshFiles::new("complete");
        let c = BridgeConfig::parse(files.config("").as_bytes()).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(tls.filter_service_san, crate::tls::tests::FILTER_SERVICE);
        assert_eq!(tls.trusted_ca, files.0.join("ca.pem"));
        assert_eq!(tls.server_name, ServerName::try_from("127.0.0.1").unwrap());
        let named = BridgeConfig::parse(files.config(r#","server_name":"filter-service.local""#).as_bytes()).unwrap();
        assert_eq!(named.tls.unwrap().server_name, ServerName::try_from("filter-service.local").unwrap());
    }

    #[test]
    fn given_https_without_tls_or_http_with_it_when_parsed_then_each_is_refused() {
        let files = MeshFiles::new("mismatch");
        let err = BridgeConfig::parse(br#"{"filter_service":"https://a:1","message_timeout_ms":1}"#).unwrap_err();
        assert!(err.contains("tls: required"), "{err}");
        let plain = files.config("").replace("https://", "http://");
        assert!(BridgeConfig::parse(plain.as_bytes()).unwrap_err().contains("tls: given for an http://"));
        let no_port = files.config("").replace("127.0.0.1:9000", "127.0.0.1");
        assert!(BridgeConfig::parse(no_port.as_bytes()).unwrap_err().contains("filter_service: must be"));
    }

    #[test]
    fn given_an_unknown_or_missing_tls_key_when_parsed_then_it_is_refused_with_its_position() {
        let files = MeshFiles::new("keys");
        let err = BridgeConfig::parse(files.config(r#","verify":false"#).as_bytes()).unwrap_err();
        assert!(err.contains("unknown field `verify`") && err.contains("line 3 column"), "{err}");
        let without_san = files.config("").replace(r#""filter_service_san""#, r#""san""#);
        assert!(BridgeConfig::parse(without_san.as_bytes()).unwrap_err().contains("unknown field `san`"));
        let not_uri = files.config("").replace(crate::tls::tests::FILTER_SERVICE, "filter-service");
        assert!(BridgeConfig::parse(not_uri.as_bytes()).unwrap_err().contains("tls.filter_service_san: not a URI"));
    }

    #[test]
    fn given_a_missing_or_broken_file_when_parsed_then_it_is_refused_naming_the_key_and_never_the_secret() {
        let files = MeshFiles::new("files");
        let missing = files.config("").replace("ca.pem", "absent.pem");
        assert!(BridgeConfig::parse(missing.as_bytes()).unwrap_err().contains("tls.trusted_ca: "), "missing CA");
        std::fs::write(files.0.join("sidecar-key.pem"), "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz!!\n-----END PRIVATE KEY-----\n").unwrap();
        let err = BridgeConfig::parse(files.config("").as_bytes()).unwrap_err();
        assert!(err.contains("tls.private_key: ") && err.contains("sidecar-key.pem"), "{err}");
        assert!(!err.contains("c2VjcmV0") && !err.contains("secret"), "{err}");
        // a key that is not the certificate's
        let (_, other_key) = crate::tls::tests::TestCa::new("x").issue(&[]);
        std::fs::write(files.0.join("sidecar-key.pem"), &other_key).unwrap();
        let err = BridgeConfig::parse(files.config("").as_bytes()).unwrap_err();
        assert!(err.contains("does not match tls.certificate_chain"), "{err}");
        assert!(!err.contains(other_key.lines().nth(1).unwrap()), "{err}");
    }

    #[test]
    fn given_rewritten_certificate_files_when_a_connection_asks_then_the_new_files_are_read() {
        let files = MeshFiles::new("rotation");
        let tls = crate::tls::ReloadingTls::new(BridgeConfig::parse(files.config("").as_bytes()).unwrap().tls.unwrap()).unwrap();
        let first = tls.client_config().unwrap();
        assert!(Arc::ptr_eq(&first, &tls.client_config().unwrap()), "unchanged files are not re-read");
        let (chain, key) = crate::tls::tests::TestCa::new("mesh").issue(&["spiffe://meshcrypt.local/sidecar/apps"]);
        std::fs::write(files.0.join("sidecar.pem"), chain).unwrap();
        std::fs::write(files.0.join("sidecar-key.pem"), key).unwrap();
        // the same second and size as before would hide the rewrite: move the clock on explicitly
        let later = std::time::SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options().write(true).open(files.0.join("sidecar.pem")).unwrap().set_modified(later).unwrap();
        assert!(!Arc::ptr_eq(&first, &tls.client_config().unwrap()), "rewritten files are read again");
        std::fs::write(files.0.join("sidecar-key.pem"), "half written").unwrap();
        std::fs::File::options().write(true).open(files.0.join("sidecar-key.pem")).unwrap().set_modified(later).unwrap();
        assert!(tls.client_config().is_err(), "a broken rewrite fails the new connection, it does not fall back");
    }
}
