//! The HTTP client of the SSE transport: hyper with rustls, configured here.
//!
//! Not reqwest: its rustls support either brings its own crypto provider (ring, beside the
//! aws-lc-rs this workspace uses, which makes rustls' implicit provider ambiguous in the
//! application) or, without one, panics in every reqwest client of the application that did
//! not install a process-wide default. hyper-rustls takes this crate's configuration as is.

use std::pin::Pin;

use bytes::Bytes;
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::ClientBuilder;
use crate::error::Error;

/// One connection pool per realtime client; a request body is always empty.
pub(crate) type HttpClient = Client<HttpsConnector<HttpConnector>, String>;

/// The client for `config`: its connect timeout, its TLS configuration (a trust-nothing one
/// for `http://`, never used), no redirects (hyper follows none: a redirect would carry the
/// configured headers, a token, to another host), no proxy (`HTTP_PROXY` and the like are
/// not read).
pub(crate) fn client(config: &ClientBuilder) -> Result<HttpClient, Error> {
    let mut tcp = HttpConnector::new();
    // The scheme is checked by the TLS layer around it.
    tcp.enforce_http(false);
    tcp.set_connect_timeout(Some(config.connect_timeout));
    tcp.set_nodelay(true);
    // A peer gone without a word is noticed by the kernel too, not only by `idle_timeout`.
    tcp.set_keepalive(Some(std::time::Duration::from_secs(15)));
    let tls = match &config.tls {
        Some(tls) => rustls::ClientConfig::clone(tls),
        None => crate::tls::unused_config()?,
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The next chunk of a response body: `None` at its end (trailers are skipped).
pub(crate) async fn next_chunk(body: &mut Incoming) -> Option<Result<Bytes, hyper::Error>> {
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame {
            Err(e) => return Some(Err(e)),
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    return Some(Ok(data));
                }
            }
        }
    }
}
