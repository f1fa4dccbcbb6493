//! HTTPS for `serve` (issue 18 item 6, the original's `deploy.sh --ssl`): `--tls-cert` and
//! `--tls-key` serve a certificate you have (PEM files); `--ssl` makes a self-signed one on the
//! first start and keeps it in `<data-dir>/tls/` (the key mode 0600), so clients can pin it
//! (`curl --cacert <data-dir>/tls/cert.pem`). Either way the session cookie is marked `Secure`.
//!
//! rustls (ring) through tokio-rustls. Handshakes run in their own tasks with a deadline, so a
//! slow or silent client never holds up the accept loop; a failed handshake is logged at debug
//! and dropped. [`TlsListener`] hands axum finished TLS streams.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// The TLS flags of `serve`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsConfig {
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "ARCHITECT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ARCHITECT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate made on the first start and kept in
    /// <data-dir>/tls/ (cert.pem, key.pem), for localhost, this host's name and --host.
    /// Turns on Secure cookies. Ignored when --tls-cert is given.
    #[arg(long, env = "ARCHITECT_SSL", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub ssl: bool,
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for axum to take them.
const READY_QUEUE: usize = 256;

/// The certificate and key files to serve, when TLS is on.
pub fn files(config: &crate::config::ServeConfig) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
    let t = &config.tls;
    match (&t.tls_cert, &t.tls_key) {
        (Some(c), Some(k)) => Ok(Some((c.clone(), k.clone()))),
        (Some(_), None) | (None, Some(_)) => {
            anyhow::bail!("--tls-cert and --tls-key go together")
        }
        (None, None) if t.ssl => self_signed(config).map(Some),
        (None, None) => Ok(None),
    }
}

/// `<data-dir>/tls/{cert,key}.pem`, made once.
fn self_signed(config: &crate::config::ServeConfig) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = config.data_dir.join("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    crate::db::create_private_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let host = crate::nodes::sampler::hostname();
    if host != "localhost" {
        names.push(host);
    }
    if let Some(h) = config.host.filter(|h| !h.is_unspecified()) {
        names.push(h.to_string());
    }
    names.dedup();
    let made =
        rcgen::generate_simple_self_signed(names).context("making the self-signed certificate")?;
    super::write_private(&key, made.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, made.cert.pem())
        .with_context(|| format!("writing {}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "made a self-signed TLS certificate (--ssl); clients can trust it with this file");
    Ok((cert, key))
}

/// The rustls acceptor for these PEM files.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} holds no PEM certificate", cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", cert.display());
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{} holds no PEM private key", key.display()))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut server = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not go together")?;
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}

/// A TCP listener whose connections come out TLS-terminated.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts the accept task; it ends when this listener is dropped.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = tokio::sync::mpsc::channel(READY_QUEUE);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = tx.closed() => return,
                    a = tcp.accept() => a,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off a little.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task is gone (it only ends with us): nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
