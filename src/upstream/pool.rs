//! One endpoint's connections, and sending a request on one of them.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::{header, HeaderValue, Request, Response, Version};
use hyper::body::Incoming;
use tracing::warn;

use super::body::RequestBody;
use super::connect::{connect, Io, TlsTo};
use super::h1::{self, Sender};
use super::h2::{self, Gated, H2Conn, Stream};
use super::response::{Lease, ResponseBody};
use super::tls::TlsClient;
use super::{ConnectError, Protocol, SendError, Transport, Upstreams};

/// Connections that may hand a request back (closed, or going away,
/// before taking it) before the request is given up on; idle HTTP/1.1
/// connections found closed do not count (there are finitely many).
const RETURNS: u32 = 3;

/// What an HTTPS endpoint's TLS negotiated (ALPN), once known.
const ALPN_UNKNOWN: u8 = 0;
const ALPN_HTTP1: u8 = 1;
const ALPN_H2: u8 = 2;

/// The connections to one endpoint in one protocol (and TLS settings).
/// Made at compile, with no I/O; connections are made on demand.
#[derive(Debug)]
pub struct EndpointPool {
    address: Arc<str>,
    authority: Option<Authority>,
    transport: Transport,
    /// Built at the first connect (reading system roots is I/O).
    tls: OnceLock<Result<TlsClient, String>>,
    h1: h1::Idle,
    h2: h2::Conns,
    alpn: AtomicU8,
    /// The last TLS failure logged, so a backend with a wrong certificate
    /// is logged once per change, not once per request.
    tls_failure: Mutex<Option<String>>,
}

/// A connection to send one request on.
enum Conn {
    /// HTTP/1.1; `pooled` when it was idle (and may have closed since).
    H1 { tx: Sender, pooled: bool },
    /// A stream of an HTTP/2 connection.
    H2(Stream),
}

/// A new connection.
enum Dialed {
    H1(Sender),
    H2(Arc<H2Conn>),
}

/// What sending on one connection gave.
enum Sent {
    Response(Response<ResponseBody>),
    /// The connection closed before taking the request, which is back.
    Returned(Request<RequestBody>, hyper::Error),
    Failed(SendError),
}

impl EndpointPool {
    /// The pool of `address` (`host:port`) spoken to as `transport`.
    pub fn new(address: Arc<str>, transport: Transport) -> EndpointPool {
        EndpointPool {
            authority: address.parse().ok(),
            address,
            transport,
            tls: OnceLock::new(),
            h1: h1::Idle::default(),
            h2: h2::Conns::default(),
            alpn: AtomicU8::new(ALPN_UNKNOWN),
            tls_failure: Mutex::new(None),
        }
    }

    /// The endpoint's `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// How this endpoint is spoken to.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Closes connections idle past `timeout`, or closed by the backend.
    pub fn sweep(&self, timeout: Duration) {
        self.h1.sweep(timeout);
        self.h2.sweep(timeout);
    }

    /// Sends `req` (its target in origin form, `/path?query`) on a pooled
    /// connection or a new one made within
    /// `connect_timeout`. A request no connection took comes back in
    /// [`SendError::NotSent`].
    pub async fn send(
        self: &Arc<Self>,
        up: &Upstreams,
        mut req: Request<RequestBody>,
        connect_timeout: Duration,
    ) -> Result<Response<ResponseBody>, SendError> {
        let upgrade = req.headers().contains_key(header::UPGRADE);
        let mut returns = 0;
        loop {
            let conn = match self.checkout(up, upgrade, connect_timeout).await {
                Ok(conn) => conn,
                Err(cause) => {
                    return Err(SendError::NotSent {
                        request: req,
                        cause,
                    })
                }
            };
            let counted = !matches!(conn, Conn::H1 { pooled: true, .. });
            match self.send_on(conn, req, up.max_idle_per_endpoint).await {
                Sent::Response(response) => return Ok(response),
                Sent::Failed(err) => return Err(err),
                Sent::Returned(back, error) => {
                    req = back;
                    returns += u32::from(counted);
                    if returns >= RETURNS {
                        let cause = ConnectError::Handshake(error);
                        return Err(SendError::NotSent {
                            request: req,
                            cause,
                        });
                    }
                }
            }
        }
    }

    /// A connection for the next request: an idle or shared one, else a
    /// new one.
    async fn checkout(
        &self,
        up: &Upstreams,
        upgrade: bool,
        timeout: Duration,
    ) -> Result<Conn, ConnectError> {
        let protocol = self.transport.protocol;
        let alpn = self.alpn.load(Ordering::Relaxed);
        let h2 = match protocol {
            Protocol::Http1 => false,
            Protocol::H2c if upgrade => return Err(ConnectError::UpgradeNeedsHttp1),
            Protocol::H2c => true,
            Protocol::Https => !upgrade && alpn != ALPN_HTTP1,
        };
        if h2 {
            if let Some(stream) = self.h2.lease() {
                return Ok(Conn::H2(stream));
            }
        }
        if let Some(tx) = self.h1.pop(up.idle_timeout) {
            return Ok(Conn::H1 { tx, pooled: true });
        }
        // Dialling (TCP, TLS, an HTTP/2 handshake) is boxed: it is rare,
        // and inline it would make every request's future kilobytes larger
        // (and every move of it a large copy).
        if !h2 {
            return match Box::pin(self.dial(up, upgrade, timeout)).await? {
                Dialed::H1(tx) => Ok(Conn::H1 { tx, pooled: false }),
                Dialed::H2(conn) => Ok(Conn::H2(self.h2.add(conn))),
            };
        }
        let dialled = Box::pin(self.h2.lease_or_dial(async {
            Ok(match self.dial(up, false, timeout).await? {
                Dialed::H2(conn) => Ok(conn),
                Dialed::H1(tx) => Err(tx),
            })
        }));
        match dialled.await? {
            Gated::Stream(stream) => Ok(Conn::H2(stream)),
            Gated::Other(tx) => Ok(Conn::H1 { tx, pooled: false }),
        }
    }

    /// A new connection, in the protocol the endpoint speaks (for HTTPS:
    /// what ALPN chose).
    async fn dial(
        &self,
        up: &Upstreams,
        upgrade: bool,
        timeout: Duration,
    ) -> Result<Dialed, ConnectError> {
        let io = self.connect(up, upgrade, timeout).await?;
        let h2 = match self.transport.protocol {
            Protocol::Http1 => false,
            Protocol::H2c => true,
            Protocol::Https => {
                let h2 = io.is_h2();
                if !upgrade {
                    let alpn = if h2 { ALPN_H2 } else { ALPN_HTTP1 };
                    self.alpn.store(alpn, Ordering::Relaxed);
                }
                h2
            }
        };
        if h2 {
            return Ok(Dialed::H2(h2::handshake(up, io).await?));
        }
        Ok(Dialed::H1(h1::handshake(up, io).await?))
    }

    /// TCP, and TLS for HTTPS (ALPN `http/1.1` only for an upgrade).
    async fn connect(
        &self,
        up: &Upstreams,
        upgrade: bool,
        timeout: Duration,
    ) -> Result<Io, ConnectError> {
        let Some(settings) = &self.transport.tls else {
            return connect(&self.address, None, timeout).await;
        };
        let client = self
            .tls
            .get_or_init(|| TlsClient::new(settings, &up.provider, || up.system_roots()));
        let client = client
            .as_ref()
            .map_err(|err| ConnectError::TlsSettings(err.clone()))?;
        let config = if upgrade {
            &client.http1
        } else {
            &client.config
        };
        let to = TlsTo {
            config,
            name: &client.name,
        };
        let connected = connect(&self.address, Some(to), timeout).await;
        self.note_tls(connected.as_ref().err());
        connected
    }

    /// Logs a TLS failure when it is new for this endpoint (a wrong CA or
    /// name fails every connect the same way); a success resets it.
    fn note_tls(&self, failed: Option<&ConnectError>) {
        let text = match failed {
            Some(err @ ConnectError::Tls(_)) => Some(err.to_string()),
            Some(_) => return,
            None => None,
        };
        let mut last = self.tls_failure.lock().unwrap_or_else(|e| e.into_inner());
        if *last != text {
            if let Some(text) = &text {
                let name = self.transport.tls.as_ref().map(|t| t.server_name.clone());
                warn!(endpoint = %self.address, ?name, error = %text, "TLS to the backend failed; its requests get 502");
            }
            *last = text;
        }
    }

    /// Sends `req` on `conn`, in that connection's protocol.
    async fn send_on(
        self: &Arc<Self>,
        conn: Conn,
        mut req: Request<RequestBody>,
        max_idle: usize,
    ) -> Sent {
        match conn {
            Conn::H1 { mut tx, pooled } => {
                if pooled {
                    // Its connection task may not have taken up the next
                    // request yet; a closed one fails here.
                    if let Err(error) = tx.ready().await {
                        return Sent::Returned(req, error);
                    }
                }
                self.http1_form(&mut req);
                let sent = tx.try_send_request(req).await;
                match sent {
                    Ok(response) => {
                        let lease = if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                            Lease::None
                        } else {
                            Lease::H1(tx, self.clone(), max_idle)
                        };
                        Sent::Response(response.map(|body| ResponseBody::new(body, lease)))
                    }
                    Err(mut err) => match err.take_message() {
                        Some(back) => Sent::Returned(back, err.into_error()),
                        None => Sent::Failed(SendError::Sent {
                            error: err.into_error(),
                            unprocessed: false,
                        }),
                    },
                }
            }
            Conn::H2(stream) => {
                self.http2_form(&mut req);
                let sent = stream.sender().try_send_request(req).await;
                h2_sent(stream, sent)
            }
        }
    }

    /// Gives an HTTP/1.1 connection whose exchange ended back for reuse.
    pub(super) fn check_in(&self, tx: Sender, max: usize) {
        self.h1.push(tx, max);
    }

    /// HTTP/1.1 on the wire: the target as given (origin form), `Host`
    /// set (the endpoint, for HTTP/1.0 clients that sent none), no
    /// `TE` (only `trailers` survives the hop, and HTTP/1.1 backends do not
    /// send trailers to proxies).
    fn http1_form(&self, req: &mut Request<RequestBody>) {
        *req.version_mut() = Version::HTTP_11;
        let headers = req.headers_mut();
        headers.remove(header::TE);
        if !headers.contains_key(header::HOST) {
            if let Ok(host) = HeaderValue::from_str(&self.address) {
                headers.insert(header::HOST, host);
            }
        }
    }

    /// HTTP/2 on the wire: scheme and `:authority` (the `Host` the request
    /// carries, else the endpoint) in the URI. `Host` stays, equal to
    /// `:authority` (RFC 9113 §8.3.1 allows it), so a request handed back
    /// goes elsewhere unchanged.
    fn http2_form(&self, req: &mut Request<RequestBody>) {
        *req.version_mut() = Version::HTTP_2;
        let host = req.headers().get(header::HOST);
        let authority = host
            .and_then(|h| Authority::try_from(h.as_bytes()).ok())
            .or_else(|| self.authority.clone());
        let mut parts = std::mem::take(req.uri_mut()).into_parts();
        parts.scheme = Some(match self.transport.protocol {
            Protocol::Https => Scheme::HTTPS,
            _ => Scheme::HTTP,
        });
        parts.authority = authority;
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// What an HTTP/2 send gave: the response (the stream held until its body
/// ends), the request back (the connection went away first), or a failure
/// that says whether the server processed it. A connection going away
/// takes no more streams.
fn h2_sent(
    stream: Stream,
    sent: Result<Response<Incoming>, hyper::client::conn::TrySendError<Request<RequestBody>>>,
) -> Sent {
    let mut err = match sent {
        Ok(response) => {
            stream.answered();
            let lease = Lease::H2 { _stream: stream };
            return Sent::Response(response.map(|body| ResponseBody::new(body, lease)));
        }
        Err(err) => err,
    };
    if let Some(back) = err.take_message() {
        stream.retire();
        return Sent::Returned(back, err.into_error());
    }
    let error = err.into_error();
    let unprocessed = h2::is_unprocessed(&error);
    if unprocessed {
        stream.retire();
    }
    Sent::Failed(SendError::Sent { error, unprocessed })
}
