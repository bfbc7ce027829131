//! `switchyard explain --live ADMIN_ADDR`: asks a running proxy's admin
//! listener (`GET /explain`) to explain a request against the table it
//! serves.

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::input::ExplainArgs;

/// Why the running proxy could not explain.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The admin listener cannot be reached.
    #[error("cannot reach the admin listener at {0}: {1}")]
    Connect(String, #[source] std::io::Error),
    /// The HTTP exchange failed.
    #[error("the admin listener at {0} did not answer: {1}")]
    Http(String, #[source] hyper::Error),
    /// The request could not be built.
    #[error("cannot ask {0}: {1}")]
    Request(String, #[source] http::Error),
    /// The proxy refused the question (a bad URL, say).
    #[error("{0}: {1}")]
    Refused(StatusCode, String),
}

/// The explanation of `args` by the proxy whose admin listener is at
/// `admin` (`host:port`): JSON when `json`, else text.
pub async fn fetch(admin: &str, args: &ExplainArgs, json: bool) -> Result<String, LiveError> {
    let stream =
        (TcpStream::connect(admin).await).map_err(|e| LiveError::Connect(admin.to_owned(), e))?;
    let http = |e| LiveError::Http(admin.to_owned(), e);
    let (mut sender, connection) =
        (hyper::client::conn::http1::handshake(TokioIo::new(stream)).await).map_err(http)?;
    tokio::spawn(connection);
    let format = if json { "json" } else { "text" };
    let request = Request::get(format!("/explain?{}&format={format}", args.to_query()))
        .header(header::HOST, admin)
        .body(Empty::<Bytes>::new())
        .map_err(|e| LiveError::Request(admin.to_owned(), e))?;
    let response = sender.send_request(request).await.map_err(http)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(http)?
        .to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    if status.is_success() {
        Ok(body)
    } else {
        Err(LiveError::Refused(status, body.trim_end().to_owned()))
    }
}
