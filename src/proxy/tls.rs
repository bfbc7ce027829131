//! The TLS side of accepting: the ClientHello read before a configuration
//! is chosen, the certificate looked up by SNI in the current table,
//! refusals as the alerts a client expects, and plain HTTP sent to the TLS
//! port answered with 400.

use std::io;

use http::HeaderValue;
use rustls::server::Acceptor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::StartHandshake;

use crate::table::SharedTable;
use crate::tls::client_subject;

/// What a TLS connection's requests need to know of its handshake.
#[derive(Debug)]
pub struct TlsConn {
    /// The name the client asked for (SNI), lowercased; `None` without.
    pub sni: Option<Box<str>>,
    /// A verified client certificate's subject, for
    /// `x-client-cert-subject`.
    pub client_subject: Option<HeaderValue>,
    /// The TLS version agreed (`TLSv1.3`), for the access log.
    pub version: Option<&'static str>,
}

/// Why a TLS connection was not set up.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The client spoke plain HTTP to the TLS port (answered 400).
    #[error("plain HTTP sent to the HTTPS port")]
    PlainHttp,
    /// No certificate covers the SNI name and there is no default
    /// (`unrecognized_name` sent).
    #[error("no certificate for {0:?}")]
    UnknownName(Option<Box<str>>),
    /// The listener has no usable configuration (a required client CA is
    /// unavailable): `handshake_failure` sent.
    #[error("TLS is not configured (see the listener's problems)")]
    NotConfigured,
    /// The handshake failed or the socket did.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The ClientHello was not valid TLS.
    #[error(transparent)]
    Tls(#[from] rustls::Error),
}

/// `alert(21)`, TLS 1.2 record version, length 2, `fatal(2)`: followed
/// by the description.
const ALERT: [u8; 6] = [21, 3, 3, 0, 2, 2];
/// `unrecognized_name` (RFC 6066).
const UNRECOGNIZED_NAME: u8 = 112;
/// `handshake_failure`.
const HANDSHAKE_FAILURE: u8 = 40;
/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 22;

const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 56\r\n\
connection: close\r\n\
\r\n\
The plain HTTP request was sent to the HTTPS port (TLS).\n";

/// Reads the ClientHello, picks the certificate for its SNI name from the
/// current table (no lock: one table load) and completes the handshake
/// with that table's configuration. Call it under a deadline: it waits
/// for the client.
pub async fn handshake(
    mut stream: TcpStream,
    table: &SharedTable,
) -> Result<(TlsStream<TcpStream>, TlsConn), Refused> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
    }
    if first[0] != HANDSHAKE_RECORD {
        let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
        let _ = stream.shutdown().await;
        return Err(Refused::PlainHttp);
    }
    let accepted = client_hello(&mut stream).await?;
    let sni: Option<Box<str>> = accepted
        .client_hello()
        .server_name()
        .map(|name| name.to_ascii_lowercase().into_boxed_str());
    let config = {
        let table = table.load();
        let tls = table.tls();
        match (&tls.config, tls.index.lookup(sni.as_deref())) {
            (None, _) => Err(Refused::NotConfigured),
            (Some(_), None) => Err(Refused::UnknownName(sni.clone())),
            (Some(config), Some(_)) => Ok(config.server.clone()),
        }
    };
    let config = match config {
        Ok(config) => config,
        Err(refused) => {
            let description = match refused {
                Refused::UnknownName(_) => UNRECOGNIZED_NAME,
                _ => HANDSHAKE_FAILURE,
            };
            let _ = stream.write_all(&alert(description)).await;
            let _ = stream.shutdown().await;
            return Err(refused);
        }
    };
    let tls = StartHandshake::from_parts(accepted, stream)
        .into_stream(config)
        .await?;
    let subject = client_subject(tls.get_ref().1.peer_certificates());
    let version = match tls.get_ref().1.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => Some("TLSv1.3"),
        Some(rustls::ProtocolVersion::TLSv1_2) => Some("TLSv1.2"),
        Some(_) => Some("TLS"),
        None => None,
    };
    let client_subject = subject.and_then(|s| HeaderValue::from_str(&s).ok());
    Ok((
        tls,
        TlsConn {
            sni,
            client_subject,
            version,
        },
    ))
}

/// Reads until a whole ClientHello has arrived; a malformed one gets the
/// alert rustls chose.
async fn client_hello(stream: &mut TcpStream) -> Result<rustls::server::Accepted, Refused> {
    let mut acceptor = Acceptor::default();
    loop {
        stream.readable().await?;
        match acceptor.read_tls(&mut NonBlocking(stream)) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err.into()),
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => return Ok(accepted),
            Ok(None) => continue,
            Err((err, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = stream.write_all(&out).await;
                return Err(err.into());
            }
        }
    }
}

fn alert(description: u8) -> [u8; 7] {
    let mut record = [0u8; 7];
    record[..6].copy_from_slice(&ALERT);
    record[6] = description;
    record
}

/// The socket as a non-blocking `std::io::Read` for rustls's acceptor.
struct NonBlocking<'a>(&'a TcpStream);

impl io::Read for NonBlocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}
