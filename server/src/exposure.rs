//! What the server answers besides keys: the `Host` check that defeats DNS
//! rebinding, and CORS for the browser origins the operator names. Both
//! wrap the whole application (the binary wraps it), the metrics listener
//! included.
//!
//! DNS rebinding: a page on `evil.example` makes the victim's browser
//! resolve `evil.example` to an address only the victim can reach (their
//! loopback, a private network) and then reads the answers, since to the
//! browser it is the page's own origin. The request still says `Host:
//! evil.example`, so a server that answers only the names it is known by
//! is out of reach. Always allowed, whatever the list says:
//! - IP literals (`127.0.0.1:8080`, `[::1]`, `10.0.3.7`): a rebinding
//!   attack needs a name the attacker's DNS answers for, and a URL that
//!   names an address directly cannot be rebound (load balancer health
//!   checks also send the target's address);
//! - `localhost` and names under `.localhost`, which browsers resolve to
//!   loopback themselves and no public DNS delegates;
//! - a request with no `Host` at all, which no browser sends.
//!
//! CORS is off unless origins are configured. A configured origin gets the
//! `Access-Control-Allow-*` headers, preflights included; any other origin
//! gets the answer without them, so its browser withholds it. No
//! credentials mode: the API takes bearer keys, never cookies.

use std::{
    collections::BTreeSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::Arc,
};

use crate::problem::ApiError;
use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};

/// The host names requests may name in `Host`, beyond those always
/// allowed (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    /// `*` was configured: every name is allowed (behind a proxy that
    /// checks names itself).
    any: bool,
    /// Configured names, lowercase, without a trailing dot.
    names: BTreeSet<String>,
}

impl AllowedHosts {
    /// The names of `CRUNCH_ALLOWED_HOSTS` (already checked by the
    /// setting's parser); `*` allows every name.
    pub fn new(configured: &[String]) -> Self {
        AllowedHosts {
            any: configured.iter().any(|n| n == "*"),
            names: configured
                .iter()
                .filter(|n| *n != "*")
                .map(|n| normalize(n))
                .collect(),
        }
    }

    /// Whether a request whose `Host` header is `host` may be served.
    pub fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        match parse_host(host) {
            Some(Host::Ip(_)) => true,
            Some(Host::Name(name)) => {
                name == "localhost" || name.ends_with(".localhost") || self.names.contains(&name)
            }
            None => false,
        }
    }
}

/// What a `Host` header names.
#[derive(Debug, PartialEq, Eq)]
enum Host {
    /// An address, written as one.
    Ip(IpAddr),
    /// A name, lowercase, without a trailing dot.
    Name(String),
}

/// A host name as compared: lowercase, without the trailing dot of a fully
/// qualified name (`Example.COM.` and `example.com` are one host).
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The host of a `Host` header value (`name`, `name:port`, `1.2.3.4:80`,
/// `[::1]:8080`); none for a value that is not a host.
fn parse_host(value: &str) -> Option<Host> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        if !(after.is_empty() || is_port(after.strip_prefix(':')?)) {
            return None;
        }
        return address.parse::<Ipv6Addr>().ok().map(|a| Host::Ip(a.into()));
    }
    let host = match value.rsplit_once(':') {
        Some((host, port)) if is_port(port) => host,
        Some(_) => return None,
        None => value,
    };
    if let Ok(address) = host.parse::<Ipv4Addr>() {
        return Some(Host::Ip(address.into()));
    }
    let name = normalize(host);
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    valid.then_some(Host::Name(name))
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Middleware answering 400 to a request whose `Host` names a host the
/// server is not known by.
#[derive(Debug, Clone)]
pub struct HostCheck(pub Arc<AllowedHosts>);

impl<E: Endpoint> Middleware<E> for HostCheck {
    type Output = HostCheckEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        HostCheckEndpoint {
            inner,
            hosts: self.0.clone(),
        }
    }
}

/// An endpoint behind [`HostCheck`].
#[derive(Debug)]
pub struct HostCheckEndpoint<E> {
    inner: E,
    hosts: Arc<AllowedHosts>,
}

impl<E: Endpoint> Endpoint for HostCheckEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        if let Some(value) = req.headers().get(header::HOST) {
            let allowed = value.to_str().is_ok_and(|host| self.hosts.allows(host));
            if !allowed {
                let host = String::from_utf8_lossy(value.as_bytes());
                tracing::debug!(host = %host, "refused a request for a host this server is not known by");
                // The status is problem.rs's to decide: a malformed request.
                return Ok(ApiError::BadRequest(format!(
                    "this server does not answer for the host {host:?}: add it to CRUNCH_ALLOWED_HOSTS"
                ))
                .into_problem_response(None));
            }
        }
        self.inner.call(req).await.map(IntoResponse::into_response)
    }
}

/// The methods the API's operations use, as a preflight answer names them.
const CORS_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";

/// The request headers a preflight allows when the browser names none.
const CORS_HEADERS: &str = "authorization, content-type";

/// Response headers a script may read beyond the CORS-safelisted ones.
const CORS_EXPOSE: &str = "content-disposition, retry-after, www-authenticate, location";

/// How long a browser may cache a preflight answer, in seconds.
const CORS_MAX_AGE: &str = "600";

/// Middleware giving the configured browser origins CORS access.
#[derive(Debug, Clone)]
pub struct Cors(Arc<CorsOrigins>);

/// The origins of `CRUNCH_CORS_ORIGINS`.
#[derive(Debug, Default)]
struct CorsOrigins {
    /// `*`: any origin (a public API whose callers hold keys).
    any: bool,
    /// `scheme://host[:port]`, lowercase.
    origins: BTreeSet<String>,
}

impl Cors {
    /// CORS for `configured` origins (already checked by the setting's
    /// parser; `*` is every origin), or none when the list is empty: CORS
    /// stays off unless asked for.
    pub fn new(configured: &[String]) -> Option<Self> {
        if configured.is_empty() {
            return None;
        }
        Some(Cors(Arc::new(CorsOrigins {
            any: configured.iter().any(|o| o == "*"),
            origins: configured
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        })))
    }
}

impl<E: Endpoint> Middleware<E> for Cors {
    type Output = CorsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        CorsEndpoint {
            inner,
            origins: self.0.clone(),
        }
    }
}

/// An endpoint behind [`Cors`].
#[derive(Debug)]
pub struct CorsEndpoint<E> {
    inner: E,
    origins: Arc<CorsOrigins>,
}

impl<E: Endpoint> CorsEndpoint<E> {
    /// The `Access-Control-Allow-Origin` value for a request from
    /// `origin`, none when that origin is not allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        let origin = origin?;
        if self.origins.any {
            return Some(HeaderValue::from_static("*"));
        }
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        self.origins.origins.contains(&text).then(|| origin.clone())
    }
}

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let allowed = self.allow_origin(req.headers().get(header::ORIGIN));
        let preflight = req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if let (Some(origin), true) = (&allowed, preflight) {
            let headers = req
                .headers()
                .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                .cloned()
                .unwrap_or(HeaderValue::from_static(CORS_HEADERS));
            return Ok(Response::builder()
                .status(StatusCode::NO_CONTENT)
                .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone())
                .header(header::ACCESS_CONTROL_ALLOW_METHODS, CORS_METHODS)
                .header(header::ACCESS_CONTROL_ALLOW_HEADERS, headers)
                .header(header::ACCESS_CONTROL_MAX_AGE, CORS_MAX_AGE)
                .header(
                    header::VARY,
                    "origin, access-control-request-method, access-control-request-headers",
                )
                .finish());
        }
        // Errors become their problem responses here, so they carry the
        // headers too and a browser client can read why it failed.
        let mut response = self.inner.get_response(req).await;
        let headers = response.headers_mut();
        if let Some(origin) = allowed {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(CORS_EXPOSE),
            );
        }
        // The answer depends on Origin whether or not this one was allowed.
        if !self.origins.any {
            headers.append(header::VARY, HeaderValue::from_static("origin"));
        }
        Ok(response)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use poem::{Body, EndpointExt, handler};

    use super::*;

    #[handler]
    fn hello() -> &'static str {
        "hello"
    }

    fn hosts(configured: &[&str]) -> AllowedHosts {
        AllowedHosts::new(&configured.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn addresses_and_localhost_are_always_allowed() {
        let none = hosts(&[]);
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[::1]",
            "10.0.3.7:8080",
            "localhost",
            "LOCALHOST:8080",
            "localhost.",
            "api.localhost:8080",
        ] {
            assert!(none.allows(host), "{host}");
        }
    }

    #[test]
    fn other_names_only_when_configured() {
        let none = hosts(&[]);
        let some = hosts(&["api.example.com", "Crunch.Internal."]);
        for host in ["evil.example", "api.example.com", "crunch.internal:8080"] {
            assert!(!none.allows(host), "{host}");
        }
        assert!(some.allows("api.example.com"));
        assert!(some.allows("API.example.com.:443"));
        assert!(some.allows("crunch.internal:8080"));
        assert!(!some.allows("example.com"));
        assert!(!some.allows("api.example.com.evil.example"));
        assert!(!some.allows("localhost.evil.example"));
        assert!(hosts(&["*"]).allows("anything.example"));
    }

    #[test]
    fn what_is_not_a_host_is_refused() {
        let none = hosts(&[]);
        for host in [
            "",
            ":8080",
            "127.0.0.1:port",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[evil.example]",
            "::1",
            "local host",
            "localhost:123456",
            "user@localhost",
        ] {
            assert!(!none.allows(host), "{host:?}");
        }
    }

    async fn answer(ep: &impl Endpoint<Output = Response>, req: Request) -> Response {
        ep.call(req).await.unwrap()
    }

    #[tokio::test]
    async fn a_foreign_host_gets_a_problem_and_never_reaches_the_app() {
        let ep = hello.with(HostCheck(Arc::new(hosts(&["api.example.com"]))));
        let refused = answer(
            &ep,
            Request::builder()
                .header("host", "evil.example:8080")
                .finish(),
        )
        .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            refused.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        let body = refused.into_body().into_string().await.unwrap();
        assert!(body.contains("CRUNCH_ALLOWED_HOSTS"), "{body}");
        assert!(!body.contains("hello"), "{body}");

        for host in ["api.example.com", "127.0.0.1:8080", "localhost"] {
            let served = answer(&ep, Request::builder().header("host", host).finish()).await;
            assert_eq!(served.status(), StatusCode::OK, "{host}");
        }
        let no_host = answer(&ep, Request::builder().finish()).await;
        assert_eq!(no_host.status(), StatusCode::OK);
        let not_text = Request::builder()
            .header(
                "host",
                HeaderValue::from_bytes(b"caf\xc3\xa9.example").unwrap(),
            )
            .finish();
        assert_eq!(
            answer(&ep, not_text).await.status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn cors_is_off_without_origins() {
        assert!(Cors::new(&[]).is_none());
    }

    fn cors(configured: &[&str]) -> Cors {
        Cors::new(&configured.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[tokio::test]
    async fn a_configured_origin_is_allowed_and_preflights_are_answered() {
        let ep = hello.with(cors(&["https://app.example.com"]));
        let get = Request::builder()
            .header("origin", "https://app.example.com")
            .finish();
        let response = answer(&ep, get).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .unwrap(),
            "https://app.example.com"
        );
        assert!(
            response
                .headers()
                .get(header::ACCESS_CONTROL_EXPOSE_HEADERS)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("www-authenticate")
        );
        assert_eq!(response.headers().get(header::VARY).unwrap(), "origin");

        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .body(Body::empty());
        let response = answer(&ep, preflight).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let h = response.headers();
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            h.get(header::ACCESS_CONTROL_ALLOW_HEADERS).unwrap(),
            "authorization, content-type"
        );
        assert!(
            h.get(header::ACCESS_CONTROL_ALLOW_METHODS)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("POST")
        );
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }

    #[tokio::test]
    async fn another_origin_gets_the_answer_without_cors_headers() {
        let ep = hello.with(cors(&["https://app.example.com"]));
        let get = Request::builder()
            .header("origin", "https://evil.example")
            .finish();
        let response = answer(&ep, get).await;
        assert!(
            response
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
        assert_eq!(response.headers().get(header::VARY).unwrap(), "origin");

        // The preflight goes to the application, which has no OPTIONS
        // operation; the browser sees no allowance either way.
        let preflight = Request::builder()
            .method(Method::OPTIONS)
            .header("origin", "https://evil.example")
            .header("access-control-request-method", "DELETE")
            .finish();
        let response = answer(&ep, preflight).await;
        assert_ne!(response.status(), StatusCode::NO_CONTENT);
        assert!(
            response
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );

        let no_origin = answer(&ep, Request::builder().finish()).await;
        assert!(
            no_origin
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_wildcard_allows_every_origin() {
        let ep = hello.with(cors(&["*"]));
        let get = Request::builder()
            .header("origin", "https://anyone.example")
            .finish();
        let response = answer(&ep, get).await;
        assert_eq!(
            response
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .unwrap(),
            "*"
        );
    }
}
