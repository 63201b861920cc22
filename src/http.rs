//! The HTTP side: one shared client (connection pool, keep-alive), a size cap on
//! every response body, a timeout on every request, and redaction of secrets.
//!
//! A [`PreparedRequest`] is what a step asked for after templating; an [`Exchange`]
//! is what went over the wire and came back. [`NoAnswer`] is the reason there is no
//! response to judge (a run *error*, unlike a wrong answer, which is a *failure*).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::redact::Redactor;

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub timeout: Duration,
    pub max_body_bytes: usize,
    /// Sent on every request unless the step sets the same header.
    pub default_headers: Vec<(String, String)>,
    /// Requests per second at most, across all scenarios.
    pub rate_limit: Option<f64>,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and private key for mutual TLS (PEM).
    pub identity_pem: Option<Vec<u8>>,
    /// Accept any server certificate.
    pub insecure: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
            max_body_bytes: 8 * 1024 * 1024,
            default_headers: Vec::new(),
            rate_limit: None,
            ca_pem: None,
            identity_pem: None,
            insecure: false,
        }
    }
}

/// The request a step asks for, after variables are substituted (different from what
/// the server may have seen after proxies, but the best record we have).
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body as JSON, parsed the first time a check, capture or transcript asks.
    json: OnceLock<Result<Value, String>>,
}

impl Response {
    pub fn new(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        Response {
            status,
            headers,
            body,
            json: OnceLock::new(),
        }
    }

    /// The body parsed as JSON (once per response), or why it is not JSON.
    pub fn json(&self) -> Result<&Value, &str> {
        self.json
            .get_or_init(|| {
                if self.body.is_empty() {
                    Err("no body".to_owned())
                } else if self.is_xml() {
                    // FHIR XML is judged in its JSON form: every check reads JSON.
                    let text = std::str::from_utf8(&self.body)
                        .map_err(|_| "an XML body that is not UTF-8".to_owned())?;
                    let json = fhir_xml::to_json(text)
                        .map_err(|e| format!("a body that is not FHIR XML ({e})"))?;
                    serde_json::from_str(&json)
                        .map_err(|e| format!("FHIR XML that gave no JSON ({e})"))
                } else {
                    serde_json::from_slice(&self.body)
                        .map_err(|e| format!("a body that is not JSON ({e})"))
                }
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// Whether the body is declared XML (`application/fhir+xml`, `application/xml`,
    /// `text/xml`).
    fn is_xml(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime.ends_with("/xml") || mime.ends_with("+xml")
        })
    }

    /// Every value of a header, joined by `, ` as HTTP allows.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: PreparedRequest,
    pub response: Response,
    pub duration: Duration,
}

/// Why a request got no answer that could be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoAnswer {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("could not connect: {0}")]
    Connect(String),
    /// The TLS handshake failed (an untrusted or wrong certificate, a refused client
    /// certificate), or an HTTPS server closed the connection right after it.
    #[error("could not connect: {detail}")]
    Tls {
        detail: String,
        /// The server closed the connection after the handshake without a TLS alert:
        /// with TLS 1.3 that is how a server refuses a missing client certificate.
        closed_after_handshake: bool,
    },
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("response body is larger than the {0}-byte cap (raise it with --max-body)")]
    BodyTooLarge(usize),
    #[error("could not read the response: {0}")]
    Read(String),
    #[error("cannot authenticate: {0}")]
    Auth(crate::auth::AuthError),
    #[error(
        "{status} kept coming after waiting {waited_secs} s of Retry-After (the retry budget is {budget_secs} s)"
    )]
    Throttled {
        status: u16,
        waited_secs: u64,
        budget_secs: u64,
    },
}

#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    settings: HttpSettings,
    /// With a rate limit: when the next request may start.
    next_slot: Option<Arc<Mutex<tokio::time::Instant>>>,
}

pub use crate::diag::error_chain;

/// Whether `err` is a TLS failure, found by type in its `source()` chain (reqwest
/// hides rustls' error inside an `io::Error`, whose `source()` skips it, so each
/// `io::Error` is opened too). `Some(true)`: over HTTPS, the connection was closed
/// before the first request could be sent (hyper's "connection was not ready"), which
/// is how a TLS 1.3 server refuses a client certificate when the alert is lost.
fn tls_failure(err: &(dyn std::error::Error + 'static), https: bool) -> Option<bool> {
    let mut pending = vec![err];
    while let Some(e) = pending.pop() {
        if e.is::<rustls::Error>() {
            return Some(false);
        }
        if https
            && let Some(h) = e.downcast_ref::<hyper::Error>()
            && (h.is_canceled() || h.is_closed() || h.is_incomplete_message())
        {
            return Some(true);
        }
        pending.extend(e.source());
        // `io::Error::source` skips the error it wraps (it gives that error's own
        // source), and reqwest nests one `io::Error` in another.
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            pending.push(inner);
        }
    }
    None
}

/// The server's base URL, without a trailing slash: the one place a path is joined
/// to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(String);

/// Why a text is not a usable base URL.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an http(s) URL")]
pub struct NotABaseUrl(pub String);

impl BaseUrl {
    /// An absolute `http` or `https` URL with a host.
    pub fn parse(text: &str) -> Result<Self, NotABaseUrl> {
        match reqwest::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                Ok(BaseUrl(text.trim_end_matches('/').to_owned()))
            }
            _ => Err(NotABaseUrl(text.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` under the base URL, with exactly one `/` between them, however either
    /// is written (`Patient/1`, `/Patient/1`). A path that is already an absolute URL
    /// under this base (a `Location` a server answered with, captured and used as the
    /// path) is kept as it is: FHIR allows a server an absolute or a relative one.
    pub fn join(&self, path: &str) -> String {
        let trimmed = path.trim_start_matches('/');
        if let Some(rest) = trimmed.strip_prefix(self.0.as_str())
            && (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
        {
            return trimmed.to_owned();
        }
        format!("{}/{}", self.0, trimmed)
    }

    /// Its origin (`https://host:port`), where credentials may be sent.
    pub fn origin(&self) -> Option<String> {
        reqwest::Url::parse(&self.0)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the HTTP client cannot be built from the target's TLS settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("tls.ca_file: {0}")]
    CaFile(String),
    #[error("tls.client_cert: {0}")]
    Identity(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

impl HttpClient {
    /// A client of the same settings with a connection pool of its own, sharing this
    /// one's rate limit: for a thread with its own runtime, since a pooled
    /// connection's task lives on the runtime that opened it.
    pub fn with_own_pool(&self) -> Result<Self, ClientError> {
        let mut fresh = HttpClient::new(self.settings.clone())?;
        fresh.next_slot.clone_from(&self.next_slot);
        Ok(fresh)
    }

    pub fn new(settings: HttpSettings) -> Result<Self, ClientError> {
        // rustls explicitly: the `validation` feature's helios crates turn on reqwest's
        // native-tls too, which would otherwise become the default backend.
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("fhirconf/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &settings.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::CaFile(error_chain(&e)))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &settings.identity_pem {
            let identity = reqwest::Identity::from_pem(pem)
                .map_err(|e| ClientError::Identity(error_chain(&e)))?;
            builder = builder.identity(identity);
        }
        if settings.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        }
        let client = builder
            .build()
            .map_err(|e| ClientError::Build(error_chain(&e)))?;
        let next_slot = settings
            .rate_limit
            .map(|_| Arc::new(Mutex::new(tokio::time::Instant::now())));
        Ok(HttpClient {
            client,
            settings,
            next_slot,
        })
    }

    /// The underlying client (same pool and TLS settings), for token requests.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }

    /// Waits for this request's turn under the rate limit: starts are spaced
    /// `1 / rate` seconds apart across every scenario in flight.
    async fn take_turn(&self) {
        let (Some(next), Some(rate)) = (&self.next_slot, self.settings.rate_limit) else {
            return;
        };
        // The target allows 0.001 to 100,000 requests/s; anything else waits a day.
        let period = Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::from_secs(86_400));
        let slot = {
            let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + period;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// Sends the request and reads the whole body, within the timeout and size cap.
    pub async fn send(
        &self,
        request: PreparedRequest,
    ) -> Result<Exchange, (PreparedRequest, NoAnswer)> {
        self.take_turn().await;
        let started = Instant::now();
        match self.exchange(&request).await {
            Ok(response) => Ok(Exchange {
                request,
                response,
                duration: started.elapsed(),
            }),
            Err(no_answer) => Err((request, no_answer)),
        }
    }

    /// The answer to one request; [`Self::send`] adds the rate limit and the timing.
    async fn exchange(&self, request: &PreparedRequest) -> Result<Response, NoAnswer> {
        let (builder, https) = self.build(request)?;
        let response = builder.send().await.map_err(|e| self.no_answer(e, https))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = self.read_body(response, https).await?;
        Ok(Response::new(status, headers, body))
    }

    /// The request as reqwest sends it, and whether it goes over HTTPS. The target's
    /// default headers are added unless the step sets the same one.
    fn build(
        &self,
        request: &PreparedRequest,
    ) -> Result<(reqwest::RequestBuilder, bool), NoAnswer> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| NoAnswer::InvalidRequest(e.to_string()))?;
        let url = match reqwest::Url::parse(&request.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            Ok(u) => {
                return Err(NoAnswer::InvalidRequest(format!(
                    "unsupported URL scheme `{}` in {}",
                    u.scheme(),
                    request.url
                )));
            }
            Err(e) => {
                return Err(NoAnswer::InvalidRequest(format!(
                    "`{}` is not a valid URL: {e}",
                    request.url
                )));
            }
        };
        let https = url.scheme() == "https";
        let mut builder = self.client.request(method, url);
        for (name, value) in &self.settings.default_headers {
            if !request
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                builder = builder.header(name, value);
            }
        }
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        Ok((builder, https))
    }

    /// The whole body, refused as soon as it is known to exceed the cap (from
    /// `Content-Length`, or while reading).
    async fn read_body(
        &self,
        mut response: reqwest::Response,
        https: bool,
    ) -> Result<Vec<u8>, NoAnswer> {
        let cap = self.settings.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|len| len > cap as u64)
        {
            return Err(NoAnswer::BodyTooLarge(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.no_answer(e, https))?
        {
            if body.len() + chunk.len() > cap {
                return Err(NoAnswer::BodyTooLarge(cap));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Why reqwest got no answer, in the terms of a run error.
    fn no_answer(&self, e: reqwest::Error, https: bool) -> NoAnswer {
        if e.is_timeout() {
            NoAnswer::Timeout(self.settings.timeout)
        } else if e.is_builder() {
            NoAnswer::InvalidRequest(error_chain(&e))
        } else if let Some(closed_after_handshake) = tls_failure(&e, https) {
            NoAnswer::Tls {
                detail: error_chain(&e),
                closed_after_handshake,
            }
        } else if e.is_connect() {
            NoAnswer::Connect(error_chain(&e))
        } else {
            NoAnswer::Read(error_chain(&e))
        }
    }
}

/// Response headers worth showing in a transcript.
pub const SHOWN_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "location",
    "content-location",
    "etag",
    "last-modified",
    "retry-after",
    "www-authenticate",
];

/// A readable, redacted, size-bounded account of one exchange.
pub fn transcript(
    request: &PreparedRequest,
    response: Option<&Response>,
    redactor: &Redactor,
    body_limit: usize,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(1024);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "> {} {}", request.method, redactor.text(&request.url));
    for (name, value) in &request.headers {
        let _ = writeln!(out, "> {name}: {}", redactor.header(name, value));
    }
    if let Some(body) = &request.body {
        let json = serde_json::from_slice::<Value>(body).ok();
        out.push_str("> \n");
        push_indented(
            &mut out,
            &shown_body(body, json.as_ref(), redactor, body_limit),
            "> ",
        );
    }
    if let Some(r) = response {
        let _ = writeln!(out, "< {}", r.status);
        for (name, value) in &r.headers {
            if SHOWN_RESPONSE_HEADERS.contains(&name.as_str()) {
                let _ = writeln!(out, "< {name}: {}", redactor.header(name, value));
            }
        }
        if !r.body.is_empty() {
            out.push_str("< \n");
            push_indented(
                &mut out,
                &shown_body(&r.body, r.json().ok(), redactor, body_limit),
                "< ",
            );
        }
    }
    // Kept until the reports are written: one per step of the run.
    out.shrink_to_fit();
    out
}

/// Appends every line of `text` after `prefix`, each ending in a newline.
fn push_indented(out: &mut String, text: &str, prefix: &str) {
    for line in text.lines() {
        out.push_str(prefix);
        out.push_str(line);
        out.push('\n');
    }
}

/// A body as a transcript shows it: JSON pretty-printed, secrets masked, at most about
/// `limit` bytes, and how many more there were. Only the part that is kept is built
/// and redacted; the rest is counted.
pub fn shown_body(bytes: &[u8], json: Option<&Value>, redactor: &Redactor, limit: usize) -> String {
    // Enough beyond the limit to see a secret that starts before it.
    let keep = limit.saturating_add(redactor.longest());
    let (text, total) = match json {
        Some(value) => {
            let mut w = Bounded {
                kept: Vec::with_capacity(keep.min(bytes.len() * 2)),
                keep,
                total: 0,
            };
            // Only the writer could fail, and it does not.
            let _ = serde_json::to_writer_pretty(&mut w, value);
            (String::from_utf8_lossy(&w.kept).into_owned(), w.total)
        }
        None => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(keep)]).into_owned();
            let total = if bytes.len() > keep {
                bytes.len()
            } else {
                text.len()
            };
            (text, total)
        }
    };
    if total <= limit {
        return redactor.text(&text);
    }
    let end = redactor.cut_before_secrets(&text, limit);
    format!(
        "{}\n… ({} more bytes)",
        redactor.text(&text[..end]),
        total - end
    )
}

/// A writer that keeps the first `keep` bytes and counts the rest.
struct Bounded {
    kept: Vec<u8>,
    keep: usize,
    total: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.keep.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&buf[..buf.len().min(room)]);
        self.total += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trim_body(text: &str, limit: usize) -> String {
        let json = serde_json::from_str::<Value>(text).ok();
        shown_body(text.as_bytes(), json.as_ref(), &Redactor::default(), limit)
    }

    #[test]
    fn a_cut_body_never_shows_part_of_a_secret() {
        let secret = "tok-0123456789abcdef";
        let redactor = Redactor::new(vec![secret.to_owned()]);
        let body = format!(
            "{{\"a\":\"{}\",\"token\":\"{secret}\",\"z\":1}}",
            "x".repeat(40)
        );
        let json: Value = serde_json::from_str(&body).unwrap();
        let pretty = serde_json::to_string_pretty(&json).unwrap();
        let at = pretty.find(secret).unwrap();
        // Every limit that falls inside the secret, and around it.
        for limit in at - 2..at + secret.len() + 2 {
            for shown in [
                shown_body(body.as_bytes(), Some(&json), &redactor, limit),
                shown_body(pretty.as_bytes(), None, &redactor, limit),
            ] {
                assert!(!shown.contains("tok-"), "limit {limit}: {shown}");
                // Cut before the secret when the limit falls inside it.
                let end = if at < limit && limit < at + secret.len() {
                    at
                } else {
                    limit
                };
                let expected = format!(
                    "{}\n… ({} more bytes)",
                    redactor.text(&pretty[..end]),
                    pretty.len() - end
                );
                assert_eq!(shown, expected, "limit {limit}");
            }
        }
    }

    #[test]
    fn trims_on_char_boundaries_and_says_how_much() {
        let text = "é".repeat(10);
        let out = trim_body(&text, 5);
        assert!(out.starts_with("éé\n… ("), "{out}");
        assert!(out.ends_with("16 more bytes)"), "{out}");
        assert_eq!(trim_body("{\"a\":1}", 100), "{\n  \"a\": 1\n}");
    }

    #[test]
    fn transcript_redacts_auth_and_secrets() {
        let redactor = Redactor::new(vec!["s3cr3t-token".to_owned()]);
        let req = PreparedRequest {
            method: "GET".into(),
            url: "http://x/Patient?token=s3cr3t-token".into(),
            headers: vec![("Authorization".into(), "Bearer s3cr3t-token".into())],
            body: None,
        };
        let resp = Response::new(
            200,
            vec![("content-type".into(), "application/fhir+json".into())],
            b"{\"t\":\"s3cr3t-token\"}".to_vec(),
        );
        let t = transcript(&req, Some(&resp), &redactor, 1000);
        assert!(!t.contains("s3cr3t"), "{t}");
        assert!(t.contains("> Authorization: [redacted]"), "{t}");
        assert!(
            t.contains("< 200\n< content-type: application/fhir+json"),
            "{t}"
        );
    }

    #[test]
    fn joins_repeated_headers() {
        let r = Response::new(
            200,
            vec![("a".into(), "1".into()), ("A".into(), "2".into())],
            vec![],
        );
        assert_eq!(r.header("a").as_deref(), Some("1, 2"));
        assert_eq!(r.header("b"), None);
    }

    #[test]
    fn a_fhir_xml_answer_is_judged_in_its_json_form() {
        let xml = r#"<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><active value="true"/></Patient>"#;
        let r = Response::new(
            200,
            vec![(
                "Content-Type".into(),
                "application/fhir+xml; charset=utf-8".into(),
            )],
            xml.as_bytes().to_vec(),
        );
        let json = r.json().unwrap();
        assert_eq!(json["resourceType"], "Patient");
        assert_eq!(json["active"], true);
        // Declared XML but not FHIR XML: the reason, with where.
        let r = Response::new(
            200,
            vec![("content-type".into(), "text/xml".into())],
            b"<html/>".to_vec(),
        );
        let why = r.json().unwrap_err();
        assert!(
            why.starts_with("a body that is not FHIR XML (line 1"),
            "{why}"
        );
        // JSON stays JSON whatever it looks like.
        let r = Response::new(
            200,
            vec![("content-type".into(), "application/fhir+json".into())],
            b"{\"a\": 1}".to_vec(),
        );
        assert_eq!(r.json().unwrap()["a"], 1);
    }

    #[test]
    fn a_path_that_is_an_absolute_url_under_the_base_is_kept() {
        let base = BaseUrl::parse("http://127.0.0.1:8080/fhir").unwrap();
        assert_eq!(
            base.join("Patient/1"),
            "http://127.0.0.1:8080/fhir/Patient/1"
        );
        assert_eq!(
            base.join("/Patient/1"),
            "http://127.0.0.1:8080/fhir/Patient/1"
        );
        assert_eq!(
            base.join("http://127.0.0.1:8080/fhir/Patient/1/_history/2"),
            "http://127.0.0.1:8080/fhir/Patient/1/_history/2"
        );
        assert_eq!(
            base.join("/http://127.0.0.1:8080/fhir/Patient/1"),
            "http://127.0.0.1:8080/fhir/Patient/1"
        );
        // Another base, or a base that merely starts the same, is a path like any other.
        assert_eq!(
            base.join("http://127.0.0.1:8080/fhirx/Patient/1"),
            "http://127.0.0.1:8080/fhir/http://127.0.0.1:8080/fhirx/Patient/1"
        );
    }
}
