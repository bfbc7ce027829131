//! Opening a connection to an endpoint: TCP (no Nagle), and TLS when the
//! endpoint speaks HTTPS, all under the connect timeout.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::ConnectError;

/// A connection to a backend: plain TCP or TLS over it.
#[derive(Debug)]
pub(super) enum Io {
    /// Plain TCP (HTTP/1.1 or h2c).
    Plain(TcpStream),
    /// TLS (HTTPS); boxed, the TLS state is large.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Io {
    /// Whether TLS negotiated HTTP/2 (ALPN `h2`).
    pub(super) fn is_h2(&self) -> bool {
        match self {
            Io::Plain(_) => false,
            Io::Tls(tls) => tls.get_ref().1.alpn_protocol() == Some(b"h2"),
        }
    }
}

/// How to wrap the TCP connection in TLS.
pub(super) struct TlsTo<'a> {
    pub config: &'a Arc<ClientConfig>,
    pub name: &'a ServerName<'static>,
}

/// Connects to `address` (`host:port`; an IP literal needs no lookup),
/// then does the TLS handshake when `tls` says so, all within `timeout`.
pub(super) async fn connect(
    address: &str,
    tls: Option<TlsTo<'_>>,
    timeout: Duration,
) -> Result<Io, ConnectError> {
    let connecting = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(ConnectError::Io)?;
        // Requests and responses are written whole; Nagle only delays them.
        let _ = tcp.set_nodelay(true);
        match tls {
            None => Ok(Io::Plain(tcp)),
            Some(to) => TlsConnector::from(to.config.clone())
                .connect(to.name.clone(), tcp)
                .await
                .map(|tls| Io::Tls(Box::new(tls)))
                .map_err(ConnectError::Tls),
        }
    };
    match tokio::time::timeout(timeout, connecting).await {
        Ok(connected) => connected,
        Err(_) => Err(ConnectError::TimedOut(timeout)),
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(tcp) => tcp.is_write_vectored(),
            Io::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Io::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
