//! The HTTP surface: routes, the gate every request passes (rate limit, content
//! negotiation), dispatch by resource type and method, and starting/stopping a server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::sandbox::app::App;
use crate::sandbox::auth::{self, Access, Tokens};
use crate::sandbox::config::{SandboxConfig, Settings};
use crate::sandbox::core::{
    ApiError, Ctx, DEFAULT_COUNT, FHIR_JSON, Page, Paging, base_url, fhir, parse_query,
    read_response, searchset, served, unacceptable,
};
use crate::sandbox::resources::{self, Handler, TYPE_METHODS};
use crate::sandbox::store::{State as StoreState, Store};
use crate::sandbox::throttle::Throttle;
use crate::sandbox::{appointment, generic, metadata, practitioner, registry, seed};

type Shared = Arc<App>;

/// A fresh, seeded, in-memory sandbox as an axum [`Router`].
///
/// Expects a configuration that passed [`SandboxConfig::validate`]; an invalid feature
/// value falls back to its default rather than failing here.
pub fn router(config: SandboxConfig) -> Router {
    let mut state = StoreState::default();
    seed::load(&mut state);
    let app: Shared = Arc::new(App {
        settings: Settings::from_config(config),
        store: Store::new(state),
        tokens: Tokens::default(),
        throttle: Throttle::default(),
    });
    Router::new()
        .route("/metadata", any(metadata_route))
        .route("/auth/token", any(token_route))
        .route("/_sandbox/stats", any(stats_route))
        .route("/_sandbox/revoke-tokens", any(revoke_route))
        .route("/{ty}", any(type_route))
        .route("/{ty}/{id}", any(instance_route))
        .route("/{ty}/{id}/_history", any(history_route))
        .route("/{ty}/{id}/_history/{vid}", any(version_route))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(app.clone(), gate))
        .with_state(app)
}

/// Throttling and content negotiation for every FHIR request, and the response
/// Content-Type (for the CORE-CONTENT-TYPE defect). `/auth/token` and `/_sandbox/*` are
/// not FHIR endpoints and pass untouched.
async fn gate(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let fhir_path = !(path.starts_with("/_sandbox/") || path == "/auth/token");
    let mut response = if !fhir_path {
        next.run(request).await
    } else if let Err(refusal) = admit(&app, &request) {
        refusal.into_response()
    } else {
        next.run(request).await
    };
    if fhir_path && app.settings.defect("CORE-CONTENT-TYPE") {
        let is_fhir = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(FHIR_JSON.as_bytes()));
        if is_fhir {
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
        }
    }
    response
}

fn admit(app: &App, request: &Request) -> Result<(), ApiError> {
    if let Some(limit) = app.settings.rate_limit
        && !app.settings.defect("PPR-THROTTLE")
    {
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string());
        if let Err(wait) = app.throttle.admit(&client, limit) {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("Too Many Requests: more than {limit} requests within 10 s"),
            )
            .with_header(header::RETRY_AFTER, seconds.max(1).to_string()));
        }
    }
    if !app.settings.defect("PPR-ACCEPT") {
        let query = parse_query(request.uri().query()).unwrap_or_default();
        if let Some(format) = unacceptable(request.headers(), &query) {
            return Err(ApiError::new(
                StatusCode::NOT_ACCEPTABLE,
                "not-supported",
                format!(
                    "the requested format ({format}) is not supported; use application/fhir+json"
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a request body, refusing more than the configured limit with 413.
async fn read_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = app.settings.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

fn ctx<'a>(app: &'a App, headers: &'a HeaderMap, uri: &Uri) -> Result<Ctx<'a>, ApiError> {
    Ok(Ctx {
        app,
        base: base_url(headers),
        headers,
        query: parse_query(uri.query())?,
    })
}

fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn metadata_route(
    State(app): State<Shared>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    respond((|| {
        let ctx = ctx(&app, &headers, &uri)?;
        if method != Method::GET {
            return Err(ApiError::method_not_allowed(
                method.as_str(),
                "/metadata",
                "GET",
            ));
        }
        Ok(fhir(StatusCode::OK, &metadata::capability_statement(&ctx)))
    })())
}

async fn token_route(
    State(app): State<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::POST {
        return ApiError::method_not_allowed(method.as_str(), "/auth/token", "POST")
            .into_response();
    }
    match read_body(&app, &headers, body).await {
        Ok(body) => auth::token(&app.tokens, app.settings.token_lifetime, &headers, &body),
        Err(e) => e.into_response(),
    }
}

async fn stats_route(State(app): State<Shared>, method: Method) -> Response {
    if method != Method::GET {
        return ApiError::method_not_allowed(method.as_str(), "/_sandbox/stats", "GET")
            .into_response();
    }
    let stats = app.store.read(StoreState::stats);
    axum::Json(json!({
        "created": stats.created,
        "appointments_not_cancelled": stats.appointments_not_cancelled,
        "tokens_issued": app.tokens.issued(),
    }))
    .into_response()
}

/// `POST /_sandbox/revoke-tokens`: every issued token stops working (to test that a
/// client fetches a new one after a 401).
async fn revoke_route(State(app): State<Shared>, method: Method) -> Response {
    if method != Method::POST {
        return ApiError::method_not_allowed(method.as_str(), "/_sandbox/revoke-tokens", "POST")
            .into_response();
    }
    axum::Json(json!({ "revoked": app.tokens.revoke_all() })).into_response()
}

async fn fallback(uri: Uri) -> Response {
    ApiError::not_found(format!("nothing is served at {}", uri.path())).into_response()
}

/// An unknown resource type: 404 (or, under CORE-UNKNOWN-TYPE, an empty searchset).
fn unknown_type(ctx: &Ctx<'_>, ty: &str) -> Result<Response, ApiError> {
    if ctx.defect("CORE-UNKNOWN-TYPE") {
        let page = Page {
            total: 0,
            entries: Vec::new(),
        };
        let paging = Paging {
            count: DEFAULT_COUNT,
            ..Paging::default()
        };
        return Ok(fhir(
            StatusCode::OK,
            &searchset(ctx, ty, &[], &paging, page),
        ));
    }
    Err(ApiError::not_found(format!(
        "Unknown resource type '{ty}': not a FHIR R4 resource type"
    )))
}

fn path_error(e: impl std::fmt::Display) -> Response {
    ApiError::invalid(format!("malformed path: {e}")).into_response()
}

fn not_allowed(method: &Method, ty: &str, allow: &str) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), ty, allow)
}

/// `/{type}`: search (GET) and create (POST).
async fn type_route(
    State(app): State<Shared>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    body: Body,
) -> Response {
    let ty = match path {
        Ok(Path(ty)) => ty,
        Err(e) => return path_error(e),
    };
    let bytes = match body_for(&app, &headers, body, method == Method::POST).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    respond((|| {
        let ctx = ctx(&app, &headers, &uri)?;
        let Some(handler) = resources::handler(&ty) else {
            return unknown_type(&ctx, &ty);
        };
        match (method.clone(), handler) {
            (Method::GET, Handler::Practitioner) => practitioner::search(&ctx, false),
            (Method::GET, Handler::Appointment) => appointment::search(&ctx),
            (Method::GET, Handler::Generic) => generic::search(&ctx, &ty),
            (Method::POST, Handler::Practitioner) => practitioner::create(&ctx, &bytes),
            (Method::POST, Handler::Appointment) => appointment::create(&ctx, &bytes),
            (Method::POST, Handler::Generic) => generic::create(&ctx, &ty, &bytes),
            _ => Err(not_allowed(&method, &ty, TYPE_METHODS)),
        }
    })())
}

/// The request body when the interaction takes one (within the size limit), else
/// nothing; a body that cannot be read is the answer to give.
async fn body_for(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    wanted: bool,
) -> Result<Bytes, Response> {
    if !wanted {
        return Ok(Bytes::new());
    }
    read_body(app, headers, body)
        .await
        .map_err(IntoResponse::into_response)
}

/// `/{type}/{id}`: read, update, delete (405 for Practitioner and Appointment), and
/// `POST /Practitioner/_search`.
async fn instance_route(
    State(app): State<Shared>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    body: Body,
) -> Response {
    let (ty, id) = match path {
        Ok(Path(p)) => p,
        Err(e) => return path_error(e),
    };
    let bytes = match body_for(
        &app,
        &headers,
        body,
        matches!(method, Method::POST | Method::PUT),
    )
    .await
    {
        Ok(b) => b,
        Err(response) => return response,
    };
    respond((|| {
        let ctx = ctx(&app, &headers, &uri)?;
        let Some(handler) = resources::handler(&ty) else {
            return unknown_type(&ctx, &ty);
        };
        match (method.clone(), handler) {
            (Method::POST, Handler::Practitioner) if id == "_search" => {
                registry::post_search(&ctx, &bytes)
            }
            (Method::GET, _) => read(&ctx, &ty, &id, None),
            (Method::PUT, Handler::Practitioner) => practitioner::update(&ctx, &id, &bytes),
            (Method::PUT, Handler::Appointment) => appointment::update(&ctx, &id, &bytes),
            (Method::PUT, Handler::Generic) => generic::update(&ctx, &ty, &id, &bytes),
            (Method::DELETE, Handler::Appointment) => appointment::delete(&ctx, &id),
            (Method::DELETE, Handler::Generic) => generic::delete(&ctx, &ty, &id),
            _ => Err(not_allowed(
                &method,
                &format!("{ty}/{{id}}"),
                handler.instance_methods(),
            )),
        }
    })())
}

/// `/{type}/{id}/_history/{vid}`: vread.
async fn version_route(
    State(app): State<Shared>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String, String)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let (ty, id, vid) = match path {
        Ok(Path(p)) => p,
        Err(e) => return path_error(e),
    };
    respond((|| {
        let ctx = ctx(&app, &headers, &uri)?;
        if resources::handler(&ty).is_none() {
            return unknown_type(&ctx, &ty);
        }
        if method != Method::GET {
            return Err(not_allowed(
                &method,
                &format!("{ty}/{{id}}/_history/{{vid}}"),
                "GET",
            ));
        }
        let vid = vid
            .parse::<u64>()
            .map_err(|_| ApiError::not_found(format!("Unknown version '{vid}' of {ty}/{id}")))?;
        read(&ctx, &ty, &id, Some(vid))
    })())
}

/// `/{type}/{id}/_history`: the instance's history, a Bundle of type history with every
/// version, newest first (a deletion is an entry without a resource). Under
/// CORE-HISTORY, only the current version.
async fn history_route(
    State(app): State<Shared>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let (ty, id) = match path {
        Ok(Path(p)) => p,
        Err(e) => return path_error(e),
    };
    respond((|| {
        let ctx = ctx(&app, &headers, &uri)?;
        let Some(handler) = resources::handler(&ty) else {
            return unknown_type(&ctx, &ty);
        };
        if handler != Handler::Generic {
            // The Canvas APIs document no history.
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                format!("{ty} has no history interaction"),
            ));
        }
        if method != Method::GET {
            return Err(not_allowed(
                &method,
                &format!("{ty}/{{id}}/_history"),
                "GET",
            ));
        }
        auth::check(&ctx, &ty, Access::Read, None)?;
        ctx.app.store.read(|state| {
            let (record, deleted) = match (state.get(&ty, &id), state.deleted(&ty, &id)) {
                (Some(r), _) => (r, false),
                (None, Some(r)) => (r, true),
                (None, None) => return missing(&ctx, &ty, &id),
            };
            let mut entries: Vec<serde_json::Value> = Vec::new();
            if deleted {
                entries.push(json!({
                    "request": { "method": "DELETE", "url": format!("{ty}/{id}") },
                    "response": { "status": "204" },
                }));
            }
            let versions = record.versions();
            let shown = if ctx.defect("CORE-HISTORY") {
                &versions[versions.len() - 1..]
            } else {
                versions
            };
            for v in shown.iter().rev() {
                let (method, url, status) = if v.vid == 1 {
                    ("POST", ty.clone(), "201")
                } else {
                    ("PUT", format!("{ty}/{id}"), "200")
                };
                entries.push(json!({
                    // bdl-8: a fullUrl is never version specific (the version is in
                    // the response's etag and the resource's meta).
                    "fullUrl": format!("{}/{ty}/{id}", ctx.base),
                    "resource": served(&ctx, &v.resource),
                    "request": { "method": method, "url": url },
                    "response": { "status": status, "etag": format!("W/\"{}\"", v.vid) },
                }));
            }
            let bundle = json!({
                "resourceType": "Bundle",
                "id": uuid::Uuid::new_v4().to_string(),
                "type": "history",
                "total": entries.len(),
                "entry": entries,
            });
            Ok(fhir(StatusCode::OK, &bundle))
        })
    })())
}

/// Read (or vread): 200 with the resource; 410 for a deleted one (a vread of one of its
/// versions still answers); else 404 with an OperationOutcome.
fn read(ctx: &Ctx<'_>, ty: &str, id: &str, vid: Option<u64>) -> Result<Response, ApiError> {
    let auth_defect = match ty {
        "Practitioner" => Some("PRAC-AUTH"),
        "Appointment" => Some("APPT-AUTH"),
        _ => None,
    };
    auth::check(ctx, ty, Access::Read, auth_defect)?;
    ctx.app.store.read(|state| {
        let (record, vid) = match (state.get(ty, id), state.deleted(ty, id), vid) {
            (Some(record), _, None) => return Ok(read_response(ctx, record)),
            (Some(record), _, Some(vid)) | (None, Some(record), Some(vid)) => (record, vid),
            (None, Some(_), None) => return Err(gone(ty, id)),
            (None, None, _) => return missing(ctx, ty, id),
        };
        let version = record
            .version(vid)
            .ok_or_else(|| ApiError::not_found(format!("Unknown version '{vid}' of {ty}/{id}")))?;
        let mut response = fhir(StatusCode::OK, &served(ctx, &version.resource));
        if ctx.app.settings.versioning
            && let Ok(etag) = HeaderValue::from_str(&format!("W/\"{vid}\""))
        {
            response.headers_mut().insert(header::ETAG, etag);
        }
        Ok(response)
    })
}

/// A read of a deleted resource: 410 Gone (its earlier versions stay readable by vread).
fn gone(ty: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "deleted",
        format!("{ty} resource '{id}' was deleted"),
    )
}

fn missing(ctx: &Ctx<'_>, ty: &str, id: &str) -> Result<Response, ApiError> {
    let rule = match ty {
        "Practitioner" => "PRAC-READ",
        "Appointment" => "APPT-READ",
        _ => "CORE-READ-404",
    };
    if ctx.defect(rule) {
        if rule == "CORE-READ-404" {
            return Ok(fhir(
                StatusCode::OK,
                &json!({ "resourceType": ty, "id": id }),
            ));
        }
        return Err(ApiError::empty(StatusCode::NOT_FOUND));
    }
    Err(ApiError::not_found(format!("Unknown {ty} resource '{id}'")))
}

// ---------------------------------------------------------------------------------------
// Running a sandbox

/// A sandbox serving on a local port until [`RunningSandbox::stop`] (or drop).
#[derive(Debug)]
pub struct RunningSandbox {
    base_url: String,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl RunningSandbox {
    /// `http://127.0.0.1:PORT`, without a trailing slash; FHIR endpoints live at the root.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets open requests finish, and waits for the server.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Binds (port 0 = a free port), spawns the server on the current tokio runtime, and
/// returns once it accepts connections. An invalid configuration is an `InvalidInput`
/// error naming what is wrong.
pub async fn start(config: SandboxConfig, bind: SocketAddr) -> std::io::Result<RunningSandbox> {
    config
        .validate()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = tokio::net::TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let reachable = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip if ip.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let base_url = format!("http://{}", SocketAddr::new(reachable, addr.port()));
    let service = router(config).into_make_service_with_connect_info::<SocketAddr>();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    Ok(RunningSandbox {
        base_url,
        addr,
        shutdown: Some(tx),
        task: Some(task),
    })
}
