//! Transport security: the server's own certificate authority and certificate (made on its
//! first start and kept in its data directory, keys mode 0600), the CA's SHA-256 fingerprint
//! that agents pin when they join (as `kubeadm join --discovery-token-ca-cert-hash` does), and
//! the rustls configurations of the server and its clients.
//!
//! A client that pins a fingerprint accepts a server only if the chain it presents holds the CA
//! with that fingerprint and the server's certificate verifies against that CA for the name
//! dialled; it refuses during the handshake, before anything (a join token) is sent.
//!
//! Agents authenticate with client certificates (mutual TLS): an agent makes its own key and a
//! certificate signing request ([`agent_csr`]); the [`AgentCa`] checks the request and signs a
//! certificate whose names the server chooses (the host and its cluster, never the request's);
//! the server's TLS configuration asks clients for a certificate signed by that CA (optional at
//! the TLS layer: REST clients and joining agents have none).

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
/// The server's CA files in [`TLS_DIR`]: certificate, key.
const CA_FILES: (&str, &str) = ("ca.pem", "ca.key");
/// The files of the CA that signs agents' certificates when the operator gave the server's
/// certificate (`--tls-cert`): the server holds no CA key then, so it keeps one for agents.
const AGENT_CA_FILES: (&str, &str) = ("agent-ca.pem", "agent-ca.key");
/// That CA's common name.
const AGENT_CA_NAME: &str = "bigmgr agent CA";

/// How long an agent's certificate is valid unless the server is told otherwise: 30 days.
pub const AGENT_CERT_VALIDITY: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
/// The largest certificate signing request taken, in PEM: an agent's is well under 1 KiB.
pub const MAX_CSR_BYTES: usize = 8 << 10;

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

/// The parameters of the CA named `name`: the same every time, so a kept CA key signs as the
/// kept CA.
fn ca_params(name: &str) -> Result<rcgen::CertificateParams> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| tls_err("CA parameters", e))?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
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

/// The CA named `name` kept in `dir` as `files` (certificate, key), made there on first use:
/// its certificate (PEM), its key and the certificate's path.
fn load_or_create_ca(
    dir: &Path,
    (pem_file, key_file): (&str, &str),
    name: &str,
) -> Result<(String, rcgen::KeyPair, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (pem_path, key_path) = (dir.join(pem_file), dir.join(key_file));
    match (read(&pem_path)?, read(&key_path)?) {
        (Some(pem), Some(key)) => {
            let key = rcgen::KeyPair::from_pem(&key)
                .map_err(|e| tls_err(&key_path.display().to_string(), e))?;
            Ok((pem, key, pem_path))
        }
        _ => {
            let key = rcgen::KeyPair::generate().map_err(|e| tls_err("CA key", e))?;
            let mut p = ca_params(name)?;
            p.not_before = days_from_now(-1);
            p.not_after = days_from_now(CA_DAYS);
            let cert = p
                .self_signed(&key)
                .map_err(|e| tls_err("CA certificate", e))?;
            write(&key_path, &key.serialize_pem(), 0o600)?;
            write(&pem_path, &cert.pem(), 0o644)?;
            Ok((cert.pem(), key, pem_path))
        }
    }
}

impl ServerIdentity {
    /// The identity kept in `<data>/tls/`, made there on first use: a CA (`ca.pem`,
    /// `ca.key`) and a certificate for `names` signed by it (`server.pem`, `server.key`),
    /// made again when `names` changed or it nears its end. Keys are mode 0600.
    pub fn load_or_create(data: &Path, names: &[String]) -> Result<ServerIdentity> {
        let dir = data.join(TLS_DIR);
        let (cert_path, key_path, meta_path) = (
            dir.join("server.pem"),
            dir.join("server.key"),
            dir.join("server.meta"),
        );
        let params = ca_params(CA_NAME)?;
        let (ca_pem, ca_key, ca_pem_path) = load_or_create_ca(&dir, CA_FILES, CA_NAME)?;
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
    /// HTTP/1.1 (ALPN). With `agents`, clients may present a certificate, which must be one
    /// that CA signed and still valid (else the handshake fails); without, they present none.
    pub fn server_config(&self, agents: Option<&AgentCa>) -> Result<Arc<rustls::ServerConfig>> {
        let builder = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("TLS versions", e))?;
        let builder = match agents {
            Some(ca) => builder.with_client_cert_verifier(ca.client_verifier()?),
            None => builder.with_no_client_auth(),
        };
        let mut c = builder
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| tls_err("the server certificate and key", e))?;
        c.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(c))
    }
}

/// The CA that signs agents' certificates, and verifies them when agents present them.
pub struct AgentCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    cert: CertificateDer<'static>,
}

impl std::fmt::Debug for AgentCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCa")
            .field("fingerprint", &fingerprint(&self.cert))
            .finish_non_exhaustive()
    }
}

/// The key of a certificate signing request that [`AgentCa::read_csr`] accepted.
#[derive(Debug, Clone)]
pub struct CsrKey(rcgen::SubjectPublicKeyInfo);

/// A certificate an [`AgentCa`] issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub pem: String,
    /// Its SHA-256 fingerprint (`sha256:…`), which the store keeps as the host's.
    pub fingerprint: String,
    /// Its end, Unix seconds.
    pub not_after: i64,
}

impl AgentCa {
    /// The agent CA kept in `<data>/tls/`, made there on first use: the server's own CA
    /// (`ca.pem`, `ca.key`, as [`ServerIdentity::load_or_create`] makes it) when `server_ca`,
    /// else a CA for agents alone (`agent-ca.pem`, `agent-ca.key`), for a server presenting
    /// an operator's certificate.
    pub fn load_or_create(data: &Path, server_ca: bool) -> Result<AgentCa> {
        let (files, name) = if server_ca {
            (CA_FILES, CA_NAME)
        } else {
            (AGENT_CA_FILES, AGENT_CA_NAME)
        };
        let (pem, key, path) = load_or_create_ca(&data.join(TLS_DIR), files, name)?;
        let cert = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| tls_err(&path.display().to_string(), e))?;
        Ok(AgentCa {
            issuer: rcgen::Issuer::new(ca_params(name)?, key),
            cert,
        })
    }

    /// Verifies client certificates against this CA; clients without one are let through
    /// (REST clients, joining agents), for the application to decide about.
    fn client_verifier(&self) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert.clone())
            .map_err(|e| tls_err("the agent CA", e))?;
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| tls_err("the agent CA", e))
    }

    /// Checks a certificate signing request from an agent: at most [`MAX_CSR_BYTES`] of PEM,
    /// one well-formed request whose signature verifies with the key it carries, an ECDSA
    /// P-256 or P-384 or an Ed25519 key. Answers the key; nothing else of the request (its
    /// subject, its extensions) is used. [`Error::Invalid`] says what is wrong.
    pub fn read_csr(pem: &str) -> Result<CsrKey> {
        use x509_parser::prelude::FromDer;
        let bad = |why: String| {
            Error::invalid_field(
                "csr_pem",
                format!("the agent's certificate signing request {why}"),
            )
        };
        if pem.len() > MAX_CSR_BYTES {
            return Err(bad(format!(
                "is {} bytes, more than the {MAX_CSR_BYTES} taken",
                pem.len()
            )));
        }
        let der = rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| bad(format!("is not PEM (CERTIFICATE REQUEST): {e}")))?;
        let (rest, csr) =
            x509_parser::certification_request::X509CertificationRequest::from_der(der.as_ref())
                .map_err(|e| bad(format!("is malformed: {e}")))?;
        if !rest.is_empty() {
            return Err(bad("has bytes after its end".into()));
        }
        csr.verify_signature().map_err(|_| {
            bad("has a signature that does not verify with the key it carries".into())
        })?;
        let key =
            rcgen::SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
                .ok()
                .filter(|k| {
                    use rcgen::PublicKeyData;
                    // The key's type and, so, its size: an uncompressed point, or an Ed25519 key.
                    [
                        (&rcgen::PKCS_ECDSA_P256_SHA256, 65),
                        (&rcgen::PKCS_ECDSA_P384_SHA384, 97),
                        (&rcgen::PKCS_ED25519, 32),
                    ]
                    .iter()
                    .any(|(alg, len)| k.algorithm() == *alg && k.der_bytes().len() == *len)
                })
                .ok_or_else(|| {
                    bad(
                        "has a key of a type not taken; use ECDSA P-256 or P-384, or Ed25519"
                            .into(),
                    )
                })?;
        Ok(CsrKey(key))
    }

    /// Signs a certificate for `key` as host `host` of cluster `cluster`, valid from now for
    /// `validity`: common name the host, a URI name `bigmgr://<cluster>/<host>`, for client
    /// authentication only.
    pub fn issue(
        &self,
        key: &CsrKey,
        cluster: &str,
        host: &str,
        validity: std::time::Duration,
    ) -> Result<IssuedCert> {
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, host);
        let uri = format!("bigmgr://{cluster}/{host}");
        p.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from(uri.as_str())
                .map_err(|e| tls_err(&format!("the name {uri}"), e))?,
        )];
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now;
        p.not_after =
            now + time::Duration::try_from(validity).map_err(|e| tls_err("the validity", e))?;
        p.is_ca = rcgen::IsCa::ExplicitNoCa;
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        let mut serial = [0u8; 16];
        getrandom::fill(&mut serial).map_err(|e| tls_err("a serial number", e))?;
        serial[0] &= 0x7f;
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        let cert = p
            .signed_by(&key.0, &self.issuer)
            .map_err(|e| tls_err("the agent certificate", e))?;
        Ok(IssuedCert {
            pem: cert.pem(),
            fingerprint: fingerprint(cert.der()),
            not_after: p.not_after.unix_timestamp(),
        })
    }
}

/// A new key pair for an agent and its certificate signing request (common name `host`; the
/// server decides the names anyway): the key and the request, PEM.
pub fn agent_csr(host: &str) -> Result<(String, String)> {
    let key = rcgen::KeyPair::generate().map_err(|e| tls_err("the agent key", e))?;
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, host);
    let csr = p
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(|e| tls_err("the certificate signing request", e))?;
    Ok((key.serialize_pem(), csr))
}

/// When the first certificate of `pem` is valid: its start and end, Unix seconds.
pub fn certificate_validity(pem: &str) -> Result<(i64, i64)> {
    use x509_parser::prelude::FromDer;
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| tls_err("the certificate", e))?;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der.as_ref())
        .map_err(|e| tls_err("the certificate", e))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
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
    pinned_client_config_with_cert(pin, alpn, None)
}

/// [`pinned_client_config`] presenting a client certificate: `cert` is PEM holding the
/// certificate and its private key (an agent's, as the agent keeps them).
pub fn pinned_client_config_with_cert(
    pin: &str,
    alpn: &[&[u8]],
    cert: Option<&str>,
) -> Result<Arc<rustls::ClientConfig>> {
    let pin = parse_fingerprint(pin)?;
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err("TLS versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa { pin, provider }));
    let mut c = match cert {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| tls_err("the client certificate", e))?;
            let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
                .map_err(|e| tls_err("the client certificate's key", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_err("the client certificate", e))?
        }
    };
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
        let acceptor = tokio_rustls::TlsAcceptor::from(id.server_config(None).unwrap());
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

    /// Serves TLS connections with agents' certificates from `ca`; each answers the
    /// fingerprint of the client's certificate ("none" without one) to "ping".
    async fn serve_mtls(id: &ServerIdentity, ca: &AgentCa) -> std::net::SocketAddr {
        let acceptor = tokio_rustls::TlsAcceptor::from(id.server_config(Some(ca)).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let who = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| fingerprint(c))
                            .unwrap_or_else(|| "none".into());
                        let mut buf = [0u8; 4];
                        if tls.read_exact(&mut buf).await.is_ok() {
                            let _ = tls.write_all(who.as_bytes()).await;
                            let _ = tls.shutdown().await;
                        }
                    }
                });
            }
        });
        addr
    }

    /// Says "ping" with `config` and reads the answer to its end.
    async fn who(
        addr: std::net::SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<String> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        tls.write_all(b"ping").await?;
        let mut out = String::new();
        tls.read_to_string(&mut out).await?;
        Ok(out)
    }

    /// An agent's certificate and key as the agent keeps them, for `host`, valid `validity`.
    fn agent_cert(ca: &AgentCa, host: &str, validity: std::time::Duration) -> (String, IssuedCert) {
        let (key, csr) = agent_csr("whatever-the-agent-asks").unwrap();
        let issued = ca
            .issue(&AgentCa::read_csr(&csr).unwrap(), "prod", host, validity)
            .unwrap();
        (format!("{}{key}", issued.pem), issued)
    }

    #[tokio::test]
    async fn agents_get_certificates_the_server_names_and_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let id = ServerIdentity::load_or_create(tmp.path(), &names()).unwrap();
        let ca = AgentCa::load_or_create(tmp.path(), true).unwrap();
        let (held, issued) = agent_cert(&ca, "h1", AGENT_CERT_VALIDITY);
        // The server's names, not the request's.
        let der = CertificateDer::from_pem_slice(issued.pem.as_bytes()).unwrap();
        assert_eq!(issued.fingerprint, fingerprint(&der));
        let (_, x509) =
            <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(&der).unwrap();
        let cn: Vec<_> = x509
            .subject()
            .iter_common_name()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, ["h1"]);
        assert!(x509.subject().to_string().contains("h1"));
        let san = x509.subject_alternative_name().unwrap().unwrap();
        assert_eq!(
            format!("{:?}", san.value.general_names),
            r#"[URI("bigmgr://prod/h1")]"#
        );
        assert_eq!(x509.issuer().to_string(), "CN=bigmgr CA");
        let (from, to) = certificate_validity(&issued.pem).unwrap();
        assert_eq!(to, issued.not_after);
        assert_eq!(to - from, AGENT_CERT_VALIDITY.as_secs() as i64);

        let addr = serve_mtls(&id, &ca).await;
        let pin = &id.ca_fingerprint;
        let with = pinned_client_config_with_cert(pin, &[], Some(&held)).unwrap();
        assert_eq!(who(addr, with).await.unwrap(), issued.fingerprint);
        let without = pinned_client_config(pin, &[]).unwrap();
        assert_eq!(
            who(addr, without).await.unwrap(),
            "none",
            "optional at the TLS layer"
        );
        // A certificate of another CA (here, the agent CA a server with an operator's
        // certificate keeps) fails the handshake.
        let other = AgentCa::load_or_create(tmp.path(), false).unwrap();
        let (stranger, _) = agent_cert(&other, "h1", AGENT_CERT_VALIDITY);
        let config = pinned_client_config_with_cert(pin, &[], Some(&stranger)).unwrap();
        assert!(who(addr, config).await.is_err(), "a stranger's certificate");
        // An expired one too.
        let (expired, _) = agent_cert(&ca, "h1", std::time::Duration::ZERO);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let config = pinned_client_config_with_cert(pin, &[], Some(&expired)).unwrap();
        assert!(who(addr, config).await.is_err(), "an expired certificate");
        // The agent CA is kept, and the same on the next start.
        let again = AgentCa::load_or_create(tmp.path(), true).unwrap();
        assert_eq!(again.cert, ca.cert);
        assert_ne!(other.cert, ca.cert);
        assert!(tmp.path().join(TLS_DIR).join("agent-ca.key").exists());
    }

    #[test]
    fn bad_certificate_requests_are_refused_saying_why() {
        let (_, good) = agent_csr("h1").unwrap();
        AgentCa::read_csr(&good).unwrap();
        for alg in [&rcgen::PKCS_ECDSA_P384_SHA384, &rcgen::PKCS_ED25519] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let csr = rcgen::CertificateParams::default()
                .serialize_request(&key)
                .unwrap()
                .pem()
                .unwrap();
            AgentCa::read_csr(&csr).unwrap();
        }
        // A character of the signature changed: it no longer verifies.
        let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
        let last = lines.len() - 2;
        let flipped = if lines[last].starts_with('A') {
            "B"
        } else {
            "A"
        };
        lines[last].replace_range(0..1, flipped);
        let tampered = lines.join("\n");
        let pem = |b64: &str| {
            format!(
                "-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n"
            )
        };
        let cases = [
            ("x".repeat(MAX_CSR_BYTES + 1), "more than the 8192 taken"),
            ("hello".to_string(), "is not PEM"),
            (pem("Z2FyYmFnZQ=="), "is malformed"),
            (tampered, "signature that does not verify"),
        ];
        for (csr, why) in cases {
            let err = AgentCa::read_csr(&csr).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
            assert!(err.contains("certificate signing request"), "{err}");
        }
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
