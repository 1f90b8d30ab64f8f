//! The HTTP transport: one request (a `GET` of one URL, or any method with a body) per
//! scheduled request over kept-alive HTTP/1.1 connections (TLS by rustls), reading each
//! answer to its end and the version it names.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
pub use hyper::Uri;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderName, HeaderValue, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::{Arc, Mutex};
use tower_service::Service;

use crate::engine::Transport;
use crate::stats::{Answer, Failure};

/// The header the `app` names its version in (app/src/routes.rs).
pub const VERSION_HEADER: &str = "x-app-version";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("`{url}` is not a URL the probe can send to: {why}")]
    Invalid { url: String, why: String },
    #[error("cannot reach {url}: {why}")]
    Unreachable { url: String, why: String },
}

/// What each request is besides its URL: its method, body and content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpec {
    pub method: Method,
    pub body: Bytes,
    pub content_type: Option<HeaderValue>,
}

impl Default for RequestSpec {
    /// A `GET` with no body.
    fn default() -> RequestSpec {
        RequestSpec {
            method: Method::GET,
            body: Bytes::new(),
            content_type: None,
        }
    }
}

impl RequestSpec {
    /// `method` with `body` (sent as given) of `content_type`, each checked as HTTP has it.
    pub fn new(
        method: &str,
        body: Option<&[u8]>,
        content_type: Option<&str>,
    ) -> Result<RequestSpec, TargetError> {
        let invalid = |what: &str, value: &str| TargetError::Invalid {
            url: value.to_string(),
            why: format!("not an HTTP {what}"),
        };
        let method = Method::from_bytes(method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| invalid("method", method))?;
        let content_type = content_type
            .map(|c| HeaderValue::from_str(c.trim()).map_err(|_| invalid("content type", c)))
            .transpose()?;
        Ok(RequestSpec {
            method,
            body: Bytes::copy_from_slice(body.unwrap_or_default()),
            content_type,
        })
    }
}

/// `base` (a stage's invoke URL, or any base URL) with `path` appended:
/// `http://127.0.0.1:3000/dev` + `/build-info`.
pub fn target(base: &str, path: &str) -> Result<Uri, TargetError> {
    let invalid = |why: &str| TargetError::Invalid {
        url: base.to_string(),
        why: why.to_string(),
    };
    let path = path.trim();
    if !path.starts_with('/') {
        return Err(TargetError::Invalid {
            url: path.to_string(),
            why: "the path must start with `/`".into(),
        });
    }
    let base = base.trim();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(invalid("it must start with http:// or https://"));
    }
    let joined = format!("{}{path}", base.trim_end_matches('/'));
    let uri: Uri = joined
        .parse()
        .map_err(|e| invalid(&format!("{e} (give e.g. http://127.0.0.1:3000)")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(invalid("it must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("it names no host"));
    }
    Ok(uri)
}

/// Opens one TCP connection to the target's host and port, so that a wrong URL is said at
/// once instead of after a whole run of connection errors.
pub async fn check_reachable(uri: &Uri, timeout: Duration) -> Result<(), TargetError> {
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let unreachable = |why: String| TargetError::Unreachable {
        url: uri.to_string(),
        why,
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(format!(
            "{e} (is the server running on {host}:{port}?)"
        ))),
        Err(_) => Err(unreachable(format!(
            "no connection within {}s",
            timeout.as_secs_f64()
        ))),
    }
}

/// Sends its request over HTTP/1.1 connections of its own, kept alive between requests.
///
/// Not hyper-util's pooled `Client`: measured with bench/probe.sh, its per-request work
/// (a pool lock and checkout, the `Host` header formatted anew, the client cloned) put the
/// probe's CPU per request above oha's. Here a request is a prebuilt head on an idle
/// connection; a connection is opened only when every idle one is busy, as oha does.
#[derive(Clone)]
pub struct Http {
    inner: Arc<Inner>,
}

struct Inner {
    connector: HttpsConnector<HttpConnector>,
    uri: Uri,
    /// What goes on the request line: the path and query only (origin form).
    path: Uri,
    host: HeaderValue,
    spec: RequestSpec,
    version_header: HeaderName,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    max_idle: usize,
}

impl Http {
    /// `GET uri`.
    pub fn new(uri: Uri, max_idle: usize) -> Http {
        Http::with_request(uri, RequestSpec::default(), max_idle)
    }

    /// `spec` (method, body, content type) to `uri`.
    pub fn with_request(uri: Uri, spec: RequestSpec, max_idle: usize) -> Http {
        let mut http = HttpConnector::new();
        // Small requests: Nagle would add up to 40 ms to some of them.
        http.set_nodelay(true);
        http.enforce_http(false);
        let tls = hyper_rustls::HttpsConnectorBuilder::new();
        // The system's roots only for https: parsing them costs more CPU than a short probe
        // of a local URL spends on all its requests. Without them (a bare container) an
        // https:// target fails per request with a TLS error, counted as `connect`.
        let https = uri.scheme_str() == Some("https");
        let native = if https {
            tls.with_native_roots().ok()
        } else {
            None
        };
        let tls = match native {
            Some(b) => b,
            None => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder_with_provider(
                    rustls::crypto::ring::default_provider().into(),
                )
                .with_safe_default_protocol_versions()
                .expect("the default protocol versions are supported")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            ),
        };
        let connector = tls.https_or_http().enable_http1().wrap_connector(http);
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .unwrap_or_else(|_| Uri::from_static("/"));
        // The authority as given (with its port, if any), as a browser sends it.
        let host = uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .unwrap_or_else(|| HeaderValue::from_static("localhost"));
        Http {
            inner: Arc::new(Inner {
                connector,
                uri,
                path,
                host,
                spec,
                version_header: HeaderName::from_static(VERSION_HEADER),
                idle: Mutex::new(Vec::new()),
                max_idle,
            }),
        }
    }
}

impl Inner {
    /// An idle connection that can take a request now, or a new one.
    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        loop {
            let Some(mut sender) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                break;
            };
            // Ready at once unless the server closed it; a closed one is dropped.
            if sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        let stream = self
            .connector
            .clone()
            .call(self.uri.clone())
            .await
            .map_err(|_| Failure::Connect)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(stream)
            .await
            .map_err(|_| Failure::Connect)?;
        // The connection's I/O runs as its own task; it ends when the sender is dropped.
        tokio::spawn(conn);
        Ok(sender)
    }

    fn put_back(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push(sender);
        }
    }

    fn request(&self) -> hyper::Request<Full<Bytes>> {
        // The body is shared, not copied: a clone of `Bytes` is a reference count.
        let mut request = hyper::Request::new(Full::new(self.spec.body.clone()));
        *request.method_mut() = self.spec.method.clone();
        *request.uri_mut() = self.path.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        headers.insert(USER_AGENT, HeaderValue::from_static("promote-probe"));
        if let Some(c) = &self.spec.content_type {
            headers.insert(CONTENT_TYPE, c.clone());
        }
        request
    }
}

impl Transport for Http {
    fn call(&self, _seq: u64) -> impl Future<Output = Result<Answer, Failure>> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            let mut sender = inner.connection().await?;
            let response = sender
                .send_request(inner.request())
                .await
                .map_err(|_| Failure::Transport)?;
            let status = response.status().as_u16();
            let version = response
                .headers()
                .get(&inner.version_header)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            // The answer ends with its body; latency includes it, as a caller sees it. Read
            // and dropped frame by frame: nothing looks at the bytes.
            let mut body = response.into_body();
            while let Some(frame) = body.frame().await {
                frame.map_err(|_| Failure::Transport)?;
            }
            inner.put_back(sender);
            Ok(Answer { status, version })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_appended_to_the_base() {
        let t = |b: &str, p: &str| target(b, p).map(|u| u.to_string());
        assert_eq!(
            t("http://127.0.0.1:3000/dev", "/build-info").unwrap(),
            "http://127.0.0.1:3000/dev/build-info"
        );
        assert_eq!(
            t("https://abc.execute-api.eu-west-2.amazonaws.com/live/", "/").unwrap(),
            "https://abc.execute-api.eu-west-2.amazonaws.com/live/"
        );
        assert_eq!(t("http://h:1", "/").unwrap(), "http://h:1/");
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        let e = |b: &str, p: &str| target(b, p).unwrap_err().to_string();
        assert!(
            e("localhost:3000", "/").contains("http:// or https://"),
            "{}",
            e("localhost:3000", "/")
        );
        assert!(e("ftp://h/", "/").contains("http:// or https://"));
        assert!(e("http://", "/").contains("not a URL"));
        assert!(e("http://h", "x").contains("must start with `/`"));
        assert!(e("not a url", "/").contains("not a URL"));
    }

    #[test]
    fn a_request_spec_takes_any_method_and_refuses_what_http_does_not() {
        let s = RequestSpec::new("put", Some(b"{}"), Some("application/json")).unwrap();
        assert_eq!(s.method, Method::PUT);
        assert_eq!(&s.body[..], b"{}");
        assert_eq!(s.content_type.unwrap(), "application/json");
        assert_eq!(
            RequestSpec::new("GET", None, None).unwrap(),
            RequestSpec::default()
        );
        let e = RequestSpec::new("GE T", None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an HTTP method"), "{e}");
        let e = RequestSpec::new("POST", None, Some("a\nb"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an HTTP content type"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_target_is_said_before_the_run() {
        // A port just released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri = target(&format!("http://127.0.0.1:{port}"), "/").unwrap();
        let e = check_reachable(&uri, Duration::from_secs(2))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("cannot reach http://127.0.0.1:{port}/")),
            "{e}"
        );
        assert!(e.contains("is the server running"), "{e}");
    }
}
