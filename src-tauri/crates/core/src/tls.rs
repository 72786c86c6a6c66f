//! HTTPS on the kiosk's listener. Phones only let a page use the microphone in a secure context, so a
//! venue that wants hold-to-talk (rather than the file-input fallback) turns on `[server.tls]`: with a
//! certificate and key (PEM) it serves those; with neither it generates a self-signed pair once under
//! `{data_dir}/tls/` (kept, so a phone that accepted it once is not asked again) and logs its SHA-256
//! fingerprint for the technician to compare with what a phone shows.

use crate::config::TlsConfig;
use crate::http::serve::ConnLimits;
use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls: give both cert and key, or neither (to generate a self-signed pair)")]
    HalfConfigured,
    #[error("server.tls: cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("server.tls: {0} holds no usable PEM {1}")]
    Pem(PathBuf, &'static str),
    #[error("server.tls: cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("server.tls: cannot write {0}: {1}")]
    Write(PathBuf, std::io::Error),
    #[error("server.tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A loaded certificate, ready to serve.
pub struct Tls {
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate (DER), as `AB:CD:…`.
    pub fingerprint: String,
    pub cert_path: PathBuf,
    pub generated: bool,
}

/// Load the configured pair, or the self-signed pair under `data_dir` (generated on first use for the
/// given host names / IPs, e.g. the public URL's host, the LAN address, `localhost`).
pub fn load_or_generate(
    tls: &TlsConfig,
    data_dir: &Path,
    hosts: &[String],
) -> Result<Tls, TlsError> {
    let (cert_path, key_path, generated) = match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), false),
        (None, None) => {
            let dir = data_dir.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !(c.exists() && k.exists()) {
                generate(&dir, &c, &k, hosts)?;
            }
            (c, k, true)
        }
        _ => return Err(TlsError::HalfConfigured),
    };
    let cert_pem = std::fs::read(&cert_path).map_err(|e| TlsError::Read(cert_path.clone(), e))?;
    let key_pem = std::fs::read(&key_path).map_err(|e| TlsError::Read(key_path.clone(), e))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem(cert_path.clone(), "certificate"))?;
    let Some(leaf) = certs.first() else {
        return Err(TlsError::Pem(cert_path, "certificate"));
    };
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError::Pem(key_path, "private key"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: Arc::new(config),
        fingerprint,
        cert_path,
        generated,
    })
}

fn generate(dir: &Path, cert: &Path, key: &Path, hosts: &[String]) -> Result<(), TlsError> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
    for h in hosts {
        if !h.is_empty() && !names.contains(h) {
            names.push(h.clone());
        }
    }
    let pair = rcgen::generate_simple_self_signed(names.clone())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::create_dir_all(dir).map_err(|e| TlsError::Write(dir.to_owned(), e))?;
    std::fs::write(cert, pair.cert.pem()).map_err(|e| TlsError::Write(cert.to_owned(), e))?;
    write_private(key, &pair.signing_key.serialize_pem())
        .map_err(|e| TlsError::Write(key.to_owned(), e))?;
    tracing::info!(path = %cert.display(), names = ?names, "generated a self-signed TLS certificate");
    Ok(())
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

/// `AB:CD:…` SHA-256 of a certificate's DER bytes (what browsers show as the fingerprint).
pub fn fingerprint(cert: &[u8]) -> String {
    Sha256::digest(cert)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The host of a URL like `https://192.168.1.20:8787/...` (for the certificate's names).
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority)
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Serve `router` over HTTPS on an already bound listener until `shutdown` resolves, then let open
/// connections finish (up to a few seconds), with the accept loop's limits (`http::serve`). Client
/// addresses reach handlers as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tls: &TlsConfig,
    data_dir: &Path,
    public_url: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let hosts: Vec<String> = url_host(public_url).into_iter().collect();
    let loaded = load_or_generate(tls, data_dir, &hosts).map_err(std::io::Error::other)?;
    tracing::info!(
        cert = %loaded.cert_path.display(),
        self_signed = loaded.generated,
        sha256 = %loaded.fingerprint,
        "serving HTTPS"
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(loaded.config);
    crate::http::serve::serve(listener, router, limits, Some(acceptor), shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_pair_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let none = TlsConfig {
            cert: None,
            key: None,
        };
        let a = load_or_generate(&none, dir.path(), &["192.168.1.20".into()]).unwrap();
        assert!(a.generated);
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        let b = load_or_generate(&none, dir.path(), &[]).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint, "kept across restarts");
        let half = TlsConfig {
            cert: Some(dir.path().join("tls/cert.pem")),
            key: None,
        };
        assert!(matches!(
            load_or_generate(&half, dir.path(), &[]),
            Err(TlsError::HalfConfigured)
        ));
        let given = TlsConfig {
            cert: Some(dir.path().join("tls/cert.pem")),
            key: Some(dir.path().join("tls/key.pem")),
        };
        let c = load_or_generate(&given, dir.path(), &[]).unwrap();
        assert!(!c.generated);
        assert_eq!(c.fingerprint, a.fingerprint);
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://192.168.1.20:8787/x").as_deref(),
            Some("192.168.1.20")
        );
        assert_eq!(url_host("http://wall.local").as_deref(), Some("wall.local"));
        assert_eq!(
            url_host("https://[fd00::2]:8787").as_deref(),
            Some("fd00::2")
        );
        assert_eq!(url_host("nope"), None);
    }
}
