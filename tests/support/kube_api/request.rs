//! The HTTP side of the double: one request in, one response out. Records
//! the request, answers 503 during an outage, maps the path to a [`Target`]
//! (kind, namespace, name, subresource) and the method to a verb, and turns
//! a [`Failure`] into its `Status` response.
//!
//! Owns routing and response framing. Must not change stored objects
//! itself: the verbs (`read`, `write`, `watch`) do, through `state`.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::failure::{failure, unknown_resource, Failure};
use super::kinds::Kind;
use super::selectors::Query;
use super::state::{Key, Shared};
use super::{read, watch, write};

/// Response body type of the double.
pub(super) type ApiBody = BoxBody<Bytes, io::Error>;

/// A JSON response with `body`.
pub(super) fn json_response(code: u16, body: &Value) -> Response<ApiBody> {
    raw_response(code, body.to_string())
}

/// A JSON response whose body is already serialized.
pub(super) fn raw_response(code: u16, body: String) -> Response<ApiBody> {
    Response::builder()
        .status(StatusCode::from_u16(code).expect("status code"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("response")
}

/// The `Status` response of a failed request.
fn fail(f: Failure) -> Response<ApiBody> {
    json_response(f.code, &f.body)
}

/// Where a request points.
pub(super) struct Target {
    /// The resource addressed.
    pub(super) kind: &'static Kind,
    /// The namespace in the path, if any.
    pub(super) ns: Option<String>,
    /// The object's name; `None` for a collection.
    pub(super) name: Option<String>,
    /// `status` for the status subresource (the only one served).
    pub(super) subresource: Option<String>,
}

impl Target {
    /// The stored object's key ("" for an absent namespace or name).
    pub(super) fn key(&self) -> Key {
        (
            self.kind.index(),
            self.ns.clone().unwrap_or_default(),
            self.name.clone().unwrap_or_default(),
        )
    }
}

/// Maps `/api/v1/...` and `/apis/{group}/{version}/...` to a [`Target`];
/// anything the double does not serve is a 404 as for an unknown resource.
fn parse_path(path: &str) -> Result<Target, Failure> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(unknown_resource()),
    };
    let (ns, plural, name, sub) = match rest {
        ["namespaces", ns, plural] if *plural != "status" && *plural != "finalize" => {
            (Some(*ns), *plural, None, None)
        }
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name), None),
        ["namespaces", ns, plural, name, sub] => (Some(*ns), *plural, Some(*name), Some(*sub)),
        [plural] => (None, *plural, None, None),
        [plural, name] => (None, *plural, Some(*name), None),
        [plural, name, sub] => (None, *plural, Some(*name), Some(*sub)),
        _ => return Err(unknown_resource()),
    };
    let kind = Kind::by_path(group, version, plural).ok_or_else(unknown_resource)?;
    if ns.is_some() && !kind.namespaced {
        return Err(unknown_resource());
    }
    // A namespaced kind by name needs a namespace.
    if kind.namespaced && ns.is_none() && name.is_some() {
        return Err(unknown_resource());
    }
    if let Some(sub) = sub {
        if sub != "status" || !kind.status_subresource {
            return Err(unknown_resource());
        }
    }
    Ok(Target {
        kind,
        ns: ns.map(str::to_string),
        name: name.map(str::to_string),
        subresource: sub.map(str::to_string),
    })
}

/// Serves one request: records it, then answers it (503 while the double
/// is unavailable, else the verb the method and path name).
pub(super) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let content_type = media_type(&req);
    if record_request(&shared, &req) {
        return Ok(fail(failure(
            503,
            "ServiceUnavailable",
            "the kube API double is unavailable",
        )));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(fail(failure(
                400,
                "BadRequest",
                format!("reading body: {e}"),
            )))
        }
    };
    if method == Method::GET && path == "/version" {
        return Ok(json_response(
            200,
            &json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-switchyard-double", "platform": "linux/amd64"}),
        ));
    }
    let target = match parse_path(&path) {
        Ok(t) => t,
        Err(f) => return Ok(fail(f)),
    };
    let response = dispatch(&shared, &method, &target, &query, &content_type, &body);
    shared.notify();
    Ok(response.unwrap_or_else(fail))
}

/// The request's media type: `Content-Type` without parameters, "" if
/// absent.
fn media_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// Logs the request for [`super::KubeApi::requests`] and wakes waiters;
/// returns whether the double is unavailable.
fn record_request(shared: &Shared, req: &Request<Incoming>) -> bool {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let unavailable = {
        let mut st = shared.lock();
        st.requests.push((req.method().to_string(), path_and_query));
        st.unavailable
    };
    shared.notify();
    unavailable
}

/// Runs the verb `method` names on `target` (a collection or an object).
fn dispatch(
    shared: &Arc<Shared>,
    method: &Method,
    target: &Target,
    query: &Query,
    content_type: &str,
    body: &[u8],
) -> Result<Response<ApiBody>, Failure> {
    match (method, target.name.is_some()) {
        (&Method::GET, false) if query.flag("watch") => watch::start(shared, target, query),
        (&Method::GET, false) => read::list(shared, target, query),
        (&Method::GET, true) => read::get(shared, target),
        (&Method::POST, false) => write::create(shared, target, body),
        (&Method::PUT, true) => write::put(shared, target, body),
        (&Method::PATCH, true) => write::patch(shared, target, query, content_type, body),
        (&Method::DELETE, true) => write::delete(shared, target),
        _ => Err(failure(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource: {method}"),
        )),
    }
}
