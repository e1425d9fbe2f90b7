//! TLS for tests of production connection modes: a certificate authority generated per test
//! (server and client certificates it signs), and a TLS-terminating proxy to put in front
//! of a local server that speaks no TLS itself (the Kafka-protocol broker).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority that exists for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate the authority signed, with its key.
#[derive(Clone)]
pub struct Issued {
    /// The certificate (PEM).
    pub certificate_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: String,
    der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestCa {
    /// A new authority whose certificate names `name`.
    ///
    /// # Panics
    /// If key generation fails.
    #[allow(clippy::unwrap_used)] // test support: a failure here is a broken machine
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    /// The authority's certificate (PEM): what a client trusts.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (host names or IP addresses).
    pub fn server(&self, names: &[&str]) -> Issued {
        let mut params = params(names);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate whose common name is `common_name` (what a server maps to a
    /// user for certificate authentication).
    pub fn client(&self, common_name: &str) -> Issued {
        let mut params = params(&[]);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    #[allow(clippy::unwrap_used)] // test support
    fn sign(&self, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
            der: certificate.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// Writes the authority's certificate to `dir/ca.pem` and returns its path.
    ///
    /// # Panics
    /// If the file cannot be written.
    #[allow(clippy::unwrap_used)] // test support
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, self.pem()).unwrap();
        path
    }
}

#[allow(clippy::unwrap_used)] // test support
fn params(names: &[&str]) -> CertificateParams {
    CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap()
}

impl Issued {
    /// Writes `<stem>.pem` and `<stem>.key` into `dir`; returns both paths.
    ///
    /// # Panics
    /// If the files cannot be written.
    #[allow(clippy::unwrap_used)] // test support
    pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let certificate = dir.join(format!("{stem}.pem"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&certificate, &self.certificate_pem).unwrap();
        std::fs::write(&key, &self.key_pem).unwrap();
        (certificate, key)
    }

    /// A server configuration presenting this certificate; with `clients`, it requires a
    /// client certificate that authority signed.
    #[allow(clippy::unwrap_used)] // test support: the certificates were made here
    fn server_config(&self, clients: Option<&TestCa>) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match clients {
            None => builder.with_no_client_auth(),
            Some(authority) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(authority.issuer.der().clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder
            .with_single_cert(
                vec![self.der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .unwrap()
    }
}

/// A TLS-terminating TCP proxy on a free port of 127.0.0.1: each connection's TLS is ended
/// with the given certificate and its bytes are relayed to the upstream address. It stops
/// when dropped.
pub struct TlsProxy {
    /// The port it listens on.
    pub port: u16,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Starts the proxy with `certificate`; connections are refused until
    /// [`forward_to`](Self::forward_to) names the upstream (so a server can be told the
    /// proxy's port before it starts).
    ///
    /// # Panics
    /// If no port of 127.0.0.1 can be bound.
    pub async fn start(certificate: &Issued) -> TlsProxy {
        Self::start_with(certificate.server_config(None)).await
    }

    /// [`start`](Self::start), but every client must present a certificate `clients`
    /// signed (mutual TLS).
    pub async fn start_verifying_clients(certificate: &Issued, clients: &TestCa) -> TlsProxy {
        Self::start_with(certificate.server_config(Some(clients))).await
    }

    #[allow(clippy::unwrap_used)] // test support
    async fn start_with(config: rustls::ServerConfig) -> TlsProxy {
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let target = upstream.clone();
        let accept = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let Some(address) = *target.lock() else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that refuses the certificate ends here: nothing to relay.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut relayed) = tokio::net::TcpStream::connect(address).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut relayed).await;
                });
            }
        });
        TlsProxy {
            port,
            upstream,
            accept,
        }
    }

    /// Relays every connection accepted from now on to `address`.
    pub fn forward_to(&self, address: SocketAddr) {
        *self.upstream.lock() = Some(address);
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
