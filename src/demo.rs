//! The built-in demo: `switchyard run` without `--routes`.
//!
//! Owns: four tiny demo backends on loopback (two "mango", two "apple",
//! answering `This is the mango application.`, over HTTP/1.1 or h2c, and
//! echoing gRPC calls) and the bundled
//! `examples/demo.yaml` routes pointing at them. Must not: be used for
//! anything but trying switchyard out.

use std::convert::Infallible;
use std::future::Future;
use std::path::PathBuf;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Either, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing::{debug, info};

use crate::listeners::Listeners;
use crate::source::file::Files;
use crate::standalone::{self, Error, Options};

const ROUTES: &str = include_str!("../examples/demo.yaml");

/// Starts the demo backends, then runs standalone mode over the bundled
/// routes until `shutdown` resolves.
pub async fn run(
    options: Options,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let mut routes = ROUTES.to_owned();
    for (placeholder, app) in [
        ("${MANGO_1}", "mango"),
        ("${MANGO_2}", "mango"),
        ("${APPLE_1}", "apple"),
        ("${APPLE_2}", "apple"),
    ] {
        let backend = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(Error::Listener)?;
        let addr = backend.local_addr().map_err(Error::Listener)?;
        info!(%addr, app, "demo backend listening");
        routes = routes.replace(placeholder, &addr.to_string());
        tokio::spawn(serve_backend(backend, app, std::future::pending()));
    }
    let files = Files(vec![(
        PathBuf::from("(built-in demo)"),
        Ok(std::sync::Arc::from(routes)),
    )]);
    standalone::run_fixed(files, options, listeners, shutdown).await
}

/// Largest gRPC call the demo backend echoes.
const GRPC_ECHO_MAX: usize = 64 * 1024;

/// A gRPC answer: its messages, then its trailers. Of no declared length,
/// as gRPC servers answer (a client may stop reading at a
/// `content-length` and miss the trailers).
type GrpcFrames = StreamBody<futures::stream::Iter<std::array::IntoIter<GrpcFrame, 2>>>;
type GrpcFrame = Result<Frame<Bytes>, Infallible>;

/// A demo answer: text, or a gRPC message with its trailers.
type DemoBody = Either<Full<Bytes>, GrpcFrames>;

/// The demo's answer to `req`: `text`, or for a gRPC call (any
/// `application/grpc*` content type; the method is not looked at) the
/// call's own messages echoed back, then `grpc-status: 0` (8 past 64 KiB).
async fn demo_answer(req: Request<Incoming>, text: Bytes) -> Response<DemoBody> {
    let grpc = (req.headers().get(header::CONTENT_TYPE))
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if !grpc {
        return Response::new(Either::Left(Full::new(text)));
    }
    let read = Limited::new(req.into_body(), GRPC_ECHO_MAX).collect().await;
    let (messages, status) = match read {
        Ok(body) => (body.to_bytes(), "0"),
        Err(_) => (Bytes::new(), "8"),
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static(status));
    let frames = [Ok(Frame::data(messages)), Ok(Frame::trailers(trailers))];
    let body = StreamBody::new(futures::stream::iter(frames));
    let mut response = Response::new(Either::Right(body));
    (response.headers_mut()).insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

/// Serves `This is the {app} application.` on every path, over HTTP/1.1
/// or h2c, and echoes gRPC calls, until `shutdown` resolves (`switchyard
/// demo-backend`, and the demo's backends).
pub async fn serve_backend(listener: TcpListener, app: &str, shutdown: impl Future<Output = ()>) {
    let body = Bytes::from(format!("This is the {app} application.\n"));
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    debug!(error = %err, "demo accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let body = body.clone();
        let service = service_fn(move |req| {
            let body = body.clone();
            async move { Ok::<_, Infallible>(demo_answer(req, body).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(error = %err, "demo connection ended with an error");
            }
        });
    }
}
