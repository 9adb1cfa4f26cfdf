//! TLS for the gRPC and HTTP listeners (rustls), with certificates reloaded when their files
//! change.
//!
//! cert-manager and Kubernetes rotate a mounted Secret by swapping the files under the mount, so
//! the files are re-read every `reload_interval` and compared by content (mtimes of a symlink
//! swap are unreliable). A change that loads becomes the configuration of every *new*
//! connection; open connections keep the session they negotiated. A change that does not load
//! (half-written files, a key that does not match) is logged once and the previous
//! configuration stays.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// The PEM files TLS is configured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, leaf first.
    pub cert: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs (mTLS).
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS file could not be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct TlsFileError {
    path: PathBuf,
    reason: String,
}

impl TlsFileError {
    fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Which listener a configuration is for: they differ only in the protocols offered by ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsListener {
    /// gRPC needs HTTP/2.
    Grpc,
    /// The gateway speaks HTTP/2 to clients that offer it, HTTP/1.1 to the rest.
    Http,
}

/// The ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP11: &[u8] = b"http/1.1";

struct Configs {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
}

/// The current server configurations, replaced when the files change.
pub struct ReloadingTls {
    files: TlsFiles,
    current: RwLock<Configs>,
    /// Digest of the file contents last tried, loaded or not: a broken change is reported once,
    /// not on every tick.
    last_seen: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for ReloadingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingTls")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingTls {
    /// Loads the files; any problem is an error naming the file.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsFileError> {
        let contents = read_all(&files)?;
        let configs = build_configs(&files, &contents)?;
        Ok(Arc::new(Self {
            last_seen: Mutex::new(contents.digest()),
            current: RwLock::new(configs),
            files,
        }))
    }

    /// The acceptor for a new connection on `listener`.
    pub fn acceptor(&self, listener: TlsListener) -> tokio_rustls::TlsAcceptor {
        let configs = self.current.read().unwrap_or_else(PoisonError::into_inner);
        let config = match listener {
            TlsListener::Grpc => &configs.grpc,
            TlsListener::Http => &configs.http,
        };
        tokio_rustls::TlsAcceptor::from(Arc::clone(config))
    }

    /// Re-reads the files and switches to them if they changed and load. Blocking file I/O.
    pub fn reload_if_changed(&self) {
        let contents = match read_all(&self.files) {
            Ok(contents) => contents,
            Err(error) => {
                // A file briefly missing mid-rotation is normal; say so only once per content.
                self.note_failure([0; 32], &error);
                return;
            }
        };
        let digest = contents.digest();
        {
            let last = self
                .last_seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if *last == digest {
                return;
            }
        }
        match build_configs(&self.files, &contents) {
            Ok(configs) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = configs;
                *self
                    .last_seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = digest;
                tracing::info!(
                    cert = %self.files.cert.display(),
                    "TLS certificate files changed: new connections use them"
                );
            }
            Err(error) => self.note_failure(digest, &error),
        }
    }

    fn note_failure(&self, digest: [u8; 32], error: &TlsFileError) {
        let mut last = self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *last != digest {
            *last = digest;
            tracing::warn!(%error, "TLS files changed but cannot be used: keeping the previous certificate");
        }
    }

    /// Checks the files every `interval` until the returned task is aborted.
    pub fn spawn_reloader(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let tls = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let tls = Arc::clone(&tls);
                let _ = tokio::task::spawn_blocking(move || tls.reload_if_changed()).await;
            }
        })
    }
}

/// Bound on each PEM file: certificate chains and CA bundles are kilobytes; a path pointing at
/// something huge is a mistake to report, not to read.
const MAX_PEM_FILE_BYTES: u64 = 1 << 20;

struct Contents {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Contents {
    fn digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for part in [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
        {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        hasher.finalize().into()
    }
}

fn read_all(files: &TlsFiles) -> Result<Contents, TlsFileError> {
    Ok(Contents {
        cert: read_pem_file(&files.cert)?,
        key: read_pem_file(&files.key)?,
        client_ca: files.client_ca.as_deref().map(read_pem_file).transpose()?,
    })
}

fn read_pem_file(path: &Path) -> Result<Vec<u8>, TlsFileError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| TlsFileError::new(path, format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| TlsFileError::new(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(TlsFileError::new(
            path,
            format!("larger than {MAX_PEM_FILE_BYTES} bytes; not a PEM certificate or key"),
        ));
    }
    Ok(bytes)
}

fn parse_certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsFileError::new(path, format!("invalid PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(TlsFileError::new(path, "no PEM CERTIFICATE block found"));
    }
    Ok(certificates)
}

fn build_configs(files: &TlsFiles, contents: &Contents) -> Result<Configs, TlsFileError> {
    let certificates = parse_certificates(&files.cert, &contents.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&contents.key).map_err(|e| {
        TlsFileError::new(&files.key, format!("no usable PEM private key found: {e}"))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // rustls's safe defaults: TLS 1.3 and 1.2, nothing older.
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsFileError::new(&files.cert, e.to_string()))?;
    let builder = match (&files.client_ca, &contents.client_ca) {
        (Some(path), Some(pem)) => {
            let mut roots = RootCertStore::empty();
            for certificate in parse_certificates(path, pem)? {
                roots.add(certificate).map_err(|e| {
                    TlsFileError::new(path, format!("not a usable CA certificate: {e}"))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsFileError::new(path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certificates, key).map_err(|e| {
        TlsFileError::new(
            &files.key,
            format!(
                "cannot be used with the certificate in {}: {e}",
                files.cert.display()
            ),
        )
    })?;
    let with_alpn = |protocols: &[&[u8]]| {
        let mut config = config.clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    };
    Ok(Configs {
        grpc: with_alpn(&[ALPN_H2]),
        http: with_alpn(&[ALPN_H2, ALPN_HTTP11]),
    })
}
