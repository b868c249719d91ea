//! Transport security: the server's own certificate authority and certificate (made on its
//! first start and kept in its data directory, keys mode 0600), the CA's SHA-256 fingerprint
//! that agents pin when they join (as `kubeadm join --discovery-token-ca-cert-hash` does), and
//! the rustls configurations of the server and its clients.
//!
//! A client that pins a fingerprint accepts a server only if the chain it presents holds the CA
//! with that fingerprint and the server's certificate verifies against that CA for the name
//! dialled; it refuses during the handshake, before anything (a join token) is sent.

use crate::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The directory under the server's data directory holding its CA and certificate.
pub const TLS_DIR: &str = "tls";

/// How long the server's own CA is valid: ten years.
const CA_DAYS: i64 = 3650;
/// How long a server certificate made here is valid: two years (it is made again on a start
/// with other names, or once it is within [`RENEW_DAYS`] of its end).
const SERVER_DAYS: i64 = 730;
/// A server certificate this close to its end is made again at start.
const RENEW_DAYS: i64 = 30;

/// The CA's common name, which its certificate and the certificates it signs name as issuer.
const CA_NAME: &str = "bigmgr CA";

/// The crypto every configuration here uses (ring).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{what}: {e}"))
}

/// Makes ring the process's default TLS crypto provider, if none is yet: HTTP clients built
/// without a configuration of ours (reqwest's defaults) need one. Idempotent.
pub fn install_default_provider() {
    if CryptoProvider::get_default().is_none() {
        // Another thread may have installed one meanwhile: either is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// `sha256:<64 hex digits>` of a certificate's DER bytes.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// Reads a pinned fingerprint as operators write it: `sha256:<hex>` or the bare 64 hex
/// digits, any case, colons between bytes allowed. Answers the 32 bytes.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32]> {
    let t = text.trim();
    let hexpart = t
        .strip_prefix("sha256:")
        .or_else(|| t.strip_prefix("SHA256:"))
        .unwrap_or(t)
        .replace(':', "");
    let bytes = hex::decode(&hexpart).ok().filter(|b| b.len() == 32);
    bytes
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Error::invalid_field(
                "ca_fingerprint",
                format!(
                    "'{text}' is not a CA fingerprint: give sha256: and 64 hex digits, as `bigmgr cluster join-token` prints it"
                ),
            )
        })
}

/// The certificate chain and key a server presents, and the fingerprint agents pin.
#[derive(Debug)]
pub struct ServerIdentity {
    /// The server's certificate first, then its CA(s).
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The pinned CA's fingerprint: the last certificate of the chain.
    pub ca_fingerprint: String,
    /// The CA certificate in PEM, for clients given a CA file (`--ca`).
    pub ca_pem: String,
    /// Where the CA's PEM is kept, when the server made it.
    pub ca_path: Option<PathBuf>,
}

/// Writes `text` to `path` with `mode`, atomically.
fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    crate::fsutil::write_atomic(path, text.as_bytes(), mode, true).map_err(|e| Error::io(path, e))
}

fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The CA's parameters: the same every time, so a kept CA key signs as the kept CA.
fn ca_params() -> Result<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| tls_err("CA parameters", e))?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, CA_NAME);
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn days_from_now(days: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + time::Duration::days(days)
}

impl ServerIdentity {
    /// The identity kept in `<data>/tls/`, made there on first use: a CA (`ca.pem`,
    /// `ca.key`) and a certificate for `names` signed by it (`server.pem`, `server.key`),
    /// made again when `names` changed or it nears its end. Keys are mode 0600.
    pub fn load_or_create(data: &Path, names: &[String]) -> Result<ServerIdentity> {
        let dir = data.join(TLS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let (ca_pem_path, ca_key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        let (cert_path, key_path, meta_path) = (
            dir.join("server.pem"),
            dir.join("server.key"),
            dir.join("server.meta"),
        );
        let params = ca_params()?;
        let (ca_pem, ca_key) = match (read(&ca_pem_path)?, read(&ca_key_path)?) {
            (Some(pem), Some(key)) => {
                let key = rcgen::KeyPair::from_pem(&key)
                    .map_err(|e| tls_err(&ca_key_path.display().to_string(), e))?;
                (pem, key)
            }
            _ => {
                let key = rcgen::KeyPair::generate().map_err(|e| tls_err("CA key", e))?;
                let mut p = params.clone();
                p.not_before = days_from_now(-1);
                p.not_after = days_from_now(CA_DAYS);
                let cert = p
                    .self_signed(&key)
                    .map_err(|e| tls_err("CA certificate", e))?;
                write(&ca_key_path, &key.serialize_pem(), 0o600)?;
                write(&ca_pem_path, &cert.pem(), 0o644)?;
                (cert.pem(), key)
            }
        };
        let renew_by = days_from_now(RENEW_DAYS).unix_timestamp();
        let meta: Option<Meta> = read(&meta_path)?.and_then(|t| serde_json::from_str(&t).ok());
        let kept = match (read(&cert_path)?, read(&key_path)?, meta) {
            (Some(cert), Some(key), Some(m)) if m.names == names && m.not_after > renew_by => {
                Some((cert, key))
            }
            _ => None,
        };
        let (cert_pem, key_pem) = match kept {
            Some(k) => k,
            None => {
                let key = rcgen::KeyPair::generate().map_err(|e| tls_err("server key", e))?;
                let mut p = rcgen::CertificateParams::new(names.to_vec())
                    .map_err(|e| tls_err("a name of the server certificate", e))?;
                p.distinguished_name = rcgen::DistinguishedName::new();
                p.distinguished_name
                    .push(rcgen::DnType::CommonName, "bigmgr server");
                p.not_before = days_from_now(-1);
                p.not_after = days_from_now(SERVER_DAYS);
                let meta = Meta {
                    names: names.to_vec(),
                    not_after: p.not_after.unix_timestamp(),
                };
                p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
                let issuer = rcgen::Issuer::new(params, &ca_key);
                let cert = p
                    .signed_by(&key, &issuer)
                    .map_err(|e| tls_err("server certificate", e))?;
                write(&key_path, &key.serialize_pem(), 0o600)?;
                write(&cert_path, &cert.pem(), 0o644)?;
                let meta = serde_json::to_string(&meta).map_err(|e| tls_err("server.meta", e))?;
                write(&meta_path, &meta, 0o644)?;
                (cert.pem(), key.serialize_pem())
            }
        };
        let mut identity = Self::from_pem(&format!("{cert_pem}{ca_pem}"), &key_pem)?;
        identity.ca_path = Some(ca_pem_path);
        Ok(identity)
    }

    /// An identity from an operator's PEM files (`--tls-cert`, `--tls-key`): the chain should
    /// end with the CA agents are to pin.
    pub fn from_files(cert: &Path, key: &Path) -> Result<ServerIdentity> {
        let cert_pem = read(cert)?.ok_or_else(|| Error::not_found("file", cert.display()))?;
        let key_pem = read(key)?.ok_or_else(|| Error::not_found("file", key.display()))?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    fn from_pem(chain_pem: &str, key_pem: &str) -> Result<ServerIdentity> {
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| tls_err("the certificate chain", e))?;
        let last = chain
            .last()
            .ok_or_else(|| Error::Invalid("the certificate file holds no certificate".into()))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| tls_err("the private key", e))?;
        let ca_pem = last_pem_block(chain_pem).unwrap_or_default();
        Ok(ServerIdentity {
            ca_fingerprint: fingerprint(last),
            ca_pem,
            chain,
            key,
            ca_path: None,
        })
    }

    /// The rustls configuration of a server presenting this identity, speaking HTTP/2 and
    /// HTTP/1.1 (ALPN). Clients present no certificate.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let mut c = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("TLS versions", e))?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| tls_err("the server certificate and key", e))?;
        c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(c))
    }
}

/// The last PEM block of `pem` (a chain's CA), as PEM.
fn last_pem_block(pem: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.rfind(BEGIN)?;
    let end = pem[start..].find(END)? + start + END.len();
    Some(format!("{}\n", &pem[start..end]))
}

/// What `server.meta` keeps beside the server certificate: the names it was made for and its
/// end (Unix seconds), so a start knows whether to make it again.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
struct Meta {
    names: Vec<String>,
    not_after: i64,
}

/// Accepts a server whose chain holds the CA with the pinned fingerprint and whose
/// certificate verifies against that CA.
#[derive(Debug)]
struct PinnedCa {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .chain(std::iter::once(end_entity))
            .find(|c| Sha256::digest(c.as_ref()).as_slice() == self.pin)
            .ok_or_else(|| {
                rustls::Error::General(format!(
                    "the server's certificate chain does not hold the pinned CA sha256:{}; \
                     it is not the server the join command was made for",
                    hex::encode(self.pin)
                ))
            })?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|e| rustls::Error::General(format!("the pinned CA: {e}")))?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client configuration that trusts only the CA with fingerprint `pin`, offering `alpn`.
pub fn pinned_client_config(pin: &str, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>> {
    let pin = parse_fingerprint(pin)?;
    let provider = provider();
    let mut c = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa { pin, provider }))
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(c))
}

/// A client configuration that trusts the CA certificates in the PEM file `ca`.
pub fn ca_client_config(ca: &Path, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>> {
    let pem = read(ca)?.ok_or_else(|| Error::not_found("CA file", ca.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| tls_err(&ca.display().to_string(), e))?;
        roots
            .add(cert)
            .map_err(|e| tls_err(&ca.display().to_string(), e))?;
    }
    if roots.is_empty() {
        return Err(Error::Invalid(format!(
            "{} holds no certificate: give the server's CA (<data>/tls/ca.pem)",
            ca.display()
        )));
    }
    let mut c = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(c))
}

/// A TLS stream to a server, as HTTP clients (tonic, hyper) read and write it.
pub type ClientIo = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Connects to the host and port of a URI and secures the connection with `config` (for
/// tonic's `Endpoint::connect_with_connector`): the name checked is the URI's host.
pub fn connector(
    config: Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    http::Uri,
    Response = ClientIo,
    Error = std::io::Error,
    Future = impl std::future::Future<Output = std::io::Result<ClientIo>> + Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |uri: http::Uri| {
        let config = config.clone();
        async move {
            let invalid =
                |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            let host = uri
                .host()
                .ok_or_else(|| invalid(format!("{uri} names no host")))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let name = ServerName::try_from(host.clone())
                .map_err(|e| invalid(format!("{host} is not a server name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(hyper_util::rt::TokioIo::new(tls))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn names() -> Vec<String> {
        vec!["127.0.0.1".into(), "localhost".into()]
    }

    #[test]
    fn the_identity_is_made_once_kept_private_and_remade_for_other_names() {
        let tmp = tempfile::tempdir().unwrap();
        let a = ServerIdentity::load_or_create(tmp.path(), &names()).unwrap();
        for key in ["ca.key", "server.key"] {
            let mode = std::fs::metadata(tmp.path().join(TLS_DIR).join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        let b = ServerIdentity::load_or_create(tmp.path(), &names()).unwrap();
        assert_eq!(a.ca_fingerprint, b.ca_fingerprint);
        assert_eq!(a.chain, b.chain, "the same certificate is reused");
        let c = ServerIdentity::load_or_create(tmp.path(), &["10.0.0.9".into()]).unwrap();
        assert_eq!(a.ca_fingerprint, c.ca_fingerprint, "the CA stays");
        assert_ne!(a.chain[0], c.chain[0], "a certificate for the new names");
        assert_eq!(
            a.ca_pem,
            std::fs::read_to_string(a.ca_path.unwrap()).unwrap()
        );
    }

    #[test]
    fn fingerprints_are_read_as_operators_write_them() {
        let hex64 = "ab".repeat(32);
        for text in [
            format!("sha256:{hex64}"),
            hex64.to_uppercase(),
            "AB:".repeat(31) + "AB",
        ] {
            assert_eq!(parse_fingerprint(&text).unwrap(), [0xab; 32], "{text}");
        }
        for bad in ["", "sha256:abc", "md5:00", &"zz".repeat(32)] {
            assert!(parse_fingerprint(bad).is_err(), "{bad}");
        }
    }

    /// Serves one TLS connection on loopback that answers "pong" to "ping".
    async fn serve_once(id: &ServerIdentity) -> std::net::SocketAddr {
        let acceptor = tokio_rustls::TlsAcceptor::from(id.server_config().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let mut buf = [0u8; 4];
                        if tls.read_exact(&mut buf).await.is_ok() {
                            let _ = tls.write_all(b"pong").await;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn ping(
        addr: std::net::SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<String> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    #[tokio::test]
    async fn a_pinned_client_talks_only_to_the_server_of_its_fingerprint() {
        let tmp = tempfile::tempdir().unwrap();
        let id = ServerIdentity::load_or_create(tmp.path(), &names()).unwrap();
        let addr = serve_once(&id).await;
        let good = pinned_client_config(&id.ca_fingerprint, &[b"h2"]).unwrap();
        assert_eq!(ping(addr, good).await.unwrap(), "pong");
        let other = tempfile::tempdir().unwrap();
        let stranger = ServerIdentity::load_or_create(other.path(), &names()).unwrap();
        let wrong = pinned_client_config(&stranger.ca_fingerprint, &[b"h2"]).unwrap();
        let err = ping(addr, wrong).await.unwrap_err().to_string();
        assert!(err.contains("does not hold the pinned CA"), "{err}");
        let by_file = ca_client_config(id.ca_path.as_deref().unwrap(), &[]).unwrap();
        assert_eq!(ping(addr, by_file).await.unwrap(), "pong");
        let wrong_file = ca_client_config(stranger.ca_path.as_deref().unwrap(), &[]).unwrap();
        assert!(ping(addr, wrong_file).await.is_err());
    }
}
