//! Mutual TLS to the filter-service, as the built-in filter's cluster does it (EnvoyResources.filterServiceTls): the
//! sidecar presents its own certificate (the filter-service takes the workload identity from its SPIFFE URI SAN), the
//! filter-service's certificate must chain to the mesh CA only (no system roots) and carry the expected SPIFFE URI
//! SAN, exactly; ALPN h2. A failed check fails the handshake, so the stream does not open and the connection closes.
//!
//! Rotation: the launcher rewrites the certificate files in place. Every new TCP connection to the filter-service
//! checks the three files' modification times and sizes and re-reads them when any changed; streams on the HTTP/2
//! connection already up keep its session, as Envoy's do until their connection goes.

use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use tokio_rustls::rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use tokio_rustls::rustls::pki_types;
use tokio_rustls::rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The files and names of `filter_config.tls`, checked when the config is parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// PEM, the sidecar's certificate first, then any intermediates.
    pub certificate_chain: PathBuf,
    /// PEM (PKCS#8, SEC1 or PKCS#1); its bytes are never logged.
    pub private_key: PathBuf,
    /// PEM, the only roots the filter-service's certificate may chain to.
    pub trusted_ca: PathBuf,
    /// The URI SAN the filter-service's certificate must carry, e.g. `spiffe://meshcrypt.local/filter-service`.
    pub filter_service_san: String,
    /// The TLS server name (SNI; none is sent for an IP address).
    pub server_name: ServerName<'static>,
}

/// The client config for new connections, rebuilt when the files change.
pub struct ReloadingTls {
    files: TlsFiles,
    current: Mutex<Option<(Stamps, Arc<ClientConfig>)>>,
}

/// (modification time, size) of the chain, key and CA files: a rewrite changes at least one of them.
type Stamps = [(Option<SystemTime>, u64); 3];

impl ReloadingTls {
    /// Reads the files once now: a config whose files are missing or unreadable is refused.
    pub fn new(files: TlsFiles) -> Result<ReloadingTls, String> {
        let tls = ReloadingTls { files, current: Mutex::new(None) };
        tls.client_config()?;
        Ok(tls)
    }

    pub fn server_name(&self) -> &ServerName<'static> {
        &self.files.server_name
    }

    /// The config for a new connection: the cached one, or the files re-read if they changed since. An error (e.g.
    /// a file caught half-written) fails this connection attempt only; the next one reads again.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, String> {
        let stamps = stamps(&self.files);
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((seen, config)) = current.as_ref() {
            if *seen == stamps {
                return Ok(config.clone());
            }
        }
        let config = Arc::new(load(&self.files)?);
        *current = Some((stamps, config.clone()));
        Ok(config)
    }
}

/// tonic's connector for `https://`: TCP, then the handshake with the current [`ReloadingTls`] config. tonic's own
/// TLS (ClientTlsConfig) takes no custom verifier, and the SPIFFE check needs one.
#[derive(Clone)]
pub struct Connector(pub Arc<ReloadingTls>);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower::Service<tonic::codegen::http::Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: tonic::codegen::http::Uri) -> Self::Future {
        let tls = self.0.clone();
        Box::pin(async move {
            let host = uri.host().ok_or("filter_service has no host")?.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().ok_or("filter_service has no port")?;
            let config = tls.client_config()?;
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            let stream = tokio_rustls::TlsConnector::from(config).connect(tls.server_name().clone(), tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

fn stamps(files: &TlsFiles) -> Stamps {
    let stamp = |p: &Path| std::fs::metadata(p).map(|m| (m.modified().ok(), m.len())).unwrap_or((None, 0));
    [stamp(&files.certificate_chain), stamp(&files.private_key), stamp(&files.trusted_ca)]
}

/// aws-lc-rs, not ring: ring refuses a PKCS#8 EC key without its public key, which is how the JDK (the local CA,
/// tests/support, most Java tooling) writes one.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the client config from the files; errors name the config key and the path, never file contents.
pub fn load(files: &TlsFiles) -> Result<ClientConfig, String> {
    let chain = certificates(&files.certificate_chain).map_err(|e| format!("tls.certificate_chain: {e}"))?;
    let ca = certificates(&files.trusted_ca).map_err(|e| format!("tls.trusted_ca: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in ca {
        roots
            .add(cert)
            .map_err(|e| format!("tls.trusted_ca: {}: not a CA certificate: {e}", files.trusted_ca.display()))?;
    }
    // the key's parse error could quote its bytes: say only which file
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|_| format!("tls.private_key: {}: unreadable or not a PEM private key", files.private_key.display()))?;
    let provider = provider();
    let verifier = SpiffeVerifier {
        roots: Arc::new(roots),
        san: files.filter_service_san.clone(),
        algorithms: provider.signature_verification_algorithms,
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .map_err(|_| {
            format!(
                "tls.private_key: {} does not match tls.certificate_chain {}, or its type is not supported",
                files.private_key.display(),
                files.certificate_chain.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// Chain to the given roots, then the URI SAN, exactly (Envoy's SubjectAltNameMatcher URI exact). The server name is
/// not checked against DNS SANs, as Envoy does not when SAN matchers are given.
#[derive(Debug)]
pub struct SpiffeVerifier {
    roots: Arc<RootCertStore>,
    san: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(&parsed, &self.roots, intermediates, now, self.algorithms.all)?;
        if uri_sans(end_entity).iter().any(|uri| *uri == self.san) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate's URI SANs; none if it does not parse (webpki has parsed it already, so that means none).
fn uri_sans(cert: &pki_types::CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(uri.to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};

    pub const FILTER_SERVICE: &str = "spiffe://meshcrypt.local/filter-service";

    /// A CA and the means to issue leaves from it.
    pub struct TestCa {
        pub cert: rcgen::Certificate,
        key: KeyPair,
    }

    impl TestCa {
        pub fn new(name: &str) -> TestCa {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            let key = KeyPair::generate().unwrap();
            TestCa { cert: params.self_signed(&key).unwrap(), key }
        }

        /// A leaf with these URI SANs: its certificate and key, PEM.
        pub fn issue(&self, uris: &[&str]) -> (String, String) {
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.subject_alt_names = uris.iter().map(|u| SanType::URI(u.to_string().try_into().unwrap())).collect();
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
            (cert.pem(), key.serialize_pem())
        }
    }

    fn verifier(ca: &TestCa) -> SpiffeVerifier {
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert.der().clone()).unwrap();
        SpiffeVerifier {
            roots: Arc::new(roots),
            san: FILTER_SERVICE.to_string(),
            algorithms: provider().signature_verification_algorithms,
        }
    }

    fn verify(verifier: &SpiffeVerifier, leaf_pem: &str) -> Result<ServerCertVerified, rustls::Error> {
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        verifier.verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
    }

    #[test]
    fn given_the_mesh_ca_and_the_filter_services_spiffe_id_when_verified_then_it_is_accepted() {
        let ca = TestCa::new("mesh");
        let (leaf, _) = ca.issue(&["spiffe://meshcrypt.local/other", FILTER_SERVICE]);
        assert!(verify(&verifier(&ca), &leaf).is_ok());
    }

    #[test]
    fn given_another_spiffe_id_or_none_or_a_prefix_when_verified_then_the_handshake_is_refused() {
        let ca = TestCa::new("mesh");
        let v = verifier(&ca);
        for uris in [&["spiffe://meshcrypt.local/sidecar/apps"][..], &[], &["spiffe://meshcrypt.local/filter-service/x"]] {
            let (leaf, _) = ca.issue(uris);
            assert_eq!(
                verify(&v, &leaf).unwrap_err(),
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
                "{uris:?}"
            );
        }
    }

    #[test]
    fn given_the_right_spiffe_id_from_another_ca_when_verified_then_the_handshake_is_refused() {
        let mesh = TestCa::new("mesh");
        let other = TestCa::new("other");
        let (leaf, _) = other.issue(&[FILTER_SERVICE]);
        assert_eq!(
            verify(&verifier(&mesh), &leaf).unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
        );
    }
}
