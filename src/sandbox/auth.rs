//! `POST /auth/token` (OAuth2 client credentials: a client secret, or a SMART Backend
//! Services JWT assertion signed with a registered key), and the bearer-token check of
//! every FHIR interaction when the `auth` feature is on.
//!
//! Scopes are SMART system scopes: `system/Type.read|write|*` (v1) or
//! `system/Type.cruds` letters (v2), with `*` for every type.
//!
//! The backend client `fhirconf-backend` has two registered public keys: kid
//! `sandbox-rs384` (RS384) and `sandbox-es384` (ES384); their private halves are
//! published in `targets/keys/` for tests and demos (they guard nothing else).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sandbox::core::{ApiError, Ctx, content_type, parse_query};
use crate::sandbox::seed::CLIENTS;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// SMART: an assertion's `exp` is at most five minutes ahead.
const MAX_ASSERTION_LIFETIME: i64 = 300;

/// A client that authenticates with a signed JWT instead of a secret.
pub(crate) struct BackendClient {
    pub(crate) id: &'static str,
    pub(crate) scope: &'static str,
    /// `(kid, algorithm, public key PEM)`.
    pub(crate) keys: &'static [(&'static str, jsonwebtoken::Algorithm, &'static str)],
}

pub(crate) const BACKEND_CLIENTS: &[BackendClient] = &[BackendClient {
    id: "fhirconf-backend",
    scope: "system/*.read system/*.write",
    keys: &[
        (
            "sandbox-rs384",
            jsonwebtoken::Algorithm::RS384,
            include_str!("keys/sandbox-backend-rs384.pub.pem"),
        ),
        (
            "sandbox-es384",
            jsonwebtoken::Algorithm::ES384,
            include_str!("keys/sandbox-backend-es384.pub.pem"),
        ),
    ],
}];

/// What an interaction does to a resource type, as scopes grant it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Search,
    Create,
    Update,
    Delete,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Access::Read => 'r',
            Access::Search => 's',
            Access::Create => 'c',
            Access::Update => 'u',
            Access::Delete => 'd',
        }
    }
}

/// One parsed scope: a resource type (or `*`) and the permitted `cruds` letters.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    resource: String,
    letters: String,
}

impl Scope {
    fn parse(raw: &str) -> Option<Self> {
        let (context, rest) = raw.split_once('/')?;
        if !matches!(context, "system" | "user" | "patient") {
            return None;
        }
        let (resource, perm) = rest.split_once('.')?;
        let letters = match perm {
            "read" => "rs".to_owned(),
            "write" => "cud".to_owned(),
            "*" => "cruds".to_owned(),
            v2 if !v2.is_empty() && v2.chars().all(|c| "cruds".contains(c)) => v2.to_owned(),
            _ => return None,
        };
        let valid_resource = resource == "*"
            || (resource.chars().all(|c| c.is_ascii_alphabetic())
                && resource.starts_with(|c: char| c.is_ascii_uppercase()));
        valid_resource.then(|| Scope {
            resource: resource.to_owned(),
            letters,
        })
    }

    fn allows(&self, ty: &str, letter: char) -> bool {
        (self.resource == "*" || self.resource == ty) && self.letters.contains(letter)
    }

    fn covers(&self, other: &Scope) -> bool {
        (self.resource == "*" || self.resource == other.resource)
            && other.letters.chars().all(|c| self.letters.contains(c))
    }
}

struct Grant {
    scopes: Vec<Scope>,
    expires: Instant,
}

/// The issued tokens, and the assertion ids already used.
#[derive(Default)]
pub(crate) struct Tokens {
    grants: Mutex<HashMap<String, Grant>>,
    used_jtis: Mutex<HashMap<String, i64>>,
    issued: std::sync::atomic::AtomicUsize,
}

impl Tokens {
    fn issue(&self, scopes: Vec<Scope>, lifetime: Duration) -> String {
        let token = format!("sbx-{}", uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.retain(|_, g| g.expires > now);
        grants.insert(
            token.clone(),
            Grant {
                scopes,
                expires: now + lifetime,
            },
        );
        self.issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        token
    }

    /// How many tokens were issued since start.
    pub(crate) fn issued(&self) -> usize {
        self.issued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets every token (`POST /_sandbox/revoke-tokens`): the next request with one
    /// gets 401, as after a server-side revocation.
    pub(crate) fn revoke_all(&self) -> usize {
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        let n = grants.len();
        grants.clear();
        n
    }

    /// Records an assertion's `jti`; false when it was used before (a replay).
    fn first_use(&self, jti: &str, exp: i64) -> bool {
        let now = jiff::Timestamp::now().as_second();
        let mut used = self.used_jtis.lock().unwrap_or_else(|e| e.into_inner());
        used.retain(|_, e| *e >= now);
        used.insert(jti.to_owned(), exp).is_none()
    }

    /// `None` for an unknown or expired token, else whether it grants `letter` on `ty`.
    fn allows(&self, token: &str, ty: &str, letter: char) -> Option<bool> {
        let grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        let grant = grants.get(token).filter(|g| g.expires > Instant::now())?;
        Some(grant.scopes.iter().any(|s| s.allows(ty, letter)))
    }
}

fn unauthorized(text: &str, bad_token: bool) -> ApiError {
    let challenge = if bad_token {
        "Bearer realm=\"fhirconf-sandbox\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"fhirconf-sandbox\""
    };
    ApiError::new(StatusCode::UNAUTHORIZED, "security", text)
        .with_header(header::WWW_AUTHENTICATE, challenge)
}

/// With auth on: no or bad token → 401, a token without a fitting scope → 403.
/// `defect` names the rule whose defect skips the check for this interaction.
pub(crate) fn check(
    ctx: &Ctx<'_>,
    ty: &str,
    access: Access,
    defect: Option<&str>,
) -> Result<(), ApiError> {
    if !ctx.app.settings.auth || defect.is_some_and(|d| ctx.defect(d)) {
        return Ok(());
    }
    let Some(raw) = ctx.headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "Authentication failed: no bearer token was sent",
            false,
        ));
    };
    let raw = raw.to_str().unwrap_or("");
    let token = match raw.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(unauthorized(
                "Authentication failed: the Authorization header is not a bearer token",
                true,
            ));
        }
    };
    match ctx.app.tokens.allows(token, ty, access.letter()) {
        None => Err(unauthorized(
            "Authentication failed: the token is unknown or expired",
            true,
        )),
        Some(false) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("Authorization failed: the token's scopes do not allow {access:?} on {ty}"),
        )),
        Some(true) => Ok(()),
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// Checks a SMART Backend Services client assertion; the client it authenticates, or
/// why not (the `error_description` of an `invalid_client` answer).
fn verify_assertion(
    tokens: &Tokens,
    headers: &HeaderMap,
    assertion: &str,
    client_id: Option<&str>,
) -> Result<&'static BackendClient, String> {
    let invalid = |why: &str| why.to_owned();
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| invalid("client_assertion is not a JWT"))?;
    let kid = header
        .kid
        .as_deref()
        .ok_or_else(|| invalid("the assertion's header has no kid"))?;
    // Which client: the claims say, but only a verified signature makes them true.
    let unverified: serde_json::Value = {
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.insecure_disable_signature_validation();
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(
            assertion,
            &jsonwebtoken::DecodingKey::from_secret(&[]),
            &v,
        )
        .map_err(|_| invalid("the assertion's claims are not readable"))?
        .claims
    };
    let iss = unverified.get("iss").and_then(|v| v.as_str()).unwrap_or("");
    let client = BACKEND_CLIENTS
        .iter()
        .find(|c| c.id == iss)
        .ok_or_else(|| invalid("the assertion's iss is not a registered client"))?;
    if client_id.is_some_and(|id| id != client.id) {
        return Err(invalid("client_id and the assertion's iss differ"));
    }
    let (_, alg, pem) = client
        .keys
        .iter()
        .find(|(k, _, _)| *k == kid)
        .ok_or_else(|| invalid("no registered key has the assertion's kid"))?;
    if header.alg != *alg {
        return Err(invalid(
            "the assertion's alg does not fit the key its kid names",
        ));
    }
    let key = match alg {
        jsonwebtoken::Algorithm::RS384 => jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()),
        _ => jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()),
    }
    .map_err(|_| invalid("the registered key is unusable"))?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let audience = format!("http://{host}/auth/token");
    let mut v = jsonwebtoken::Validation::new(*alg);
    v.set_audience(&[audience.as_str()]);
    v.set_issuer(&[client.id]);
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    v.leeway = 5;
    let claims = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v)
        .map_err(|e| invalid(&format!("the assertion does not verify: {e}")))?
        .claims;
    if claims.get("sub").and_then(|v| v.as_str()) != Some(client.id) {
        return Err(invalid("the assertion's sub must equal its iss"));
    }
    let exp = claims.get("exp").and_then(|v| v.as_i64()).unwrap_or(0);
    if exp > jiff::Timestamp::now().as_second() + MAX_ASSERTION_LIFETIME + 5 {
        return Err(invalid(
            "the assertion's exp is more than five minutes ahead",
        ));
    }
    let jti = claims
        .get("jti")
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid("the assertion has no jti"))?;
    if !tokens.first_use(jti, exp) {
        return Err(invalid("the assertion's jti was used before"));
    }
    Ok(client)
}

/// `POST /auth/token`: the client credentials grant (form-encoded body), with a
/// client secret or a SMART Backend Services assertion.
pub(crate) fn token(
    tokens: &Tokens,
    lifetime: Duration,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if content_type(headers).as_deref() != Some("application/x-www-form-urlencoded") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "send the parameters as application/x-www-form-urlencoded",
        );
    }
    let form = std::str::from_utf8(body)
        .ok()
        .and_then(|b| parse_query(Some(b)).ok());
    let Some(form) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the form body is malformed",
        );
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("grant_type") != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only grant_type=client_credentials is supported",
        );
    }
    let client_scope = if let Some(assertion) = field("client_assertion") {
        if field("client_assertion_type") != Some(ASSERTION_TYPE) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            );
        }
        match verify_assertion(tokens, headers, assertion, field("client_id")) {
            Ok(client) => client.scope,
            Err(why) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &why),
        }
    } else {
        let client = CLIENTS
            .iter()
            .find(|c| Some(c.id) == field("client_id") && Some(c.secret) == field("client_secret"));
        let Some(client) = client else {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown client_id or wrong client_secret",
            );
        };
        client.scope
    };
    let allowed: Vec<Scope> = client_scope.split(' ').filter_map(Scope::parse).collect();
    let granted: Vec<(String, Scope)> = match field("scope").map(str::trim) {
        None | Some("") => client_scope
            .split(' ')
            .filter_map(|s| Scope::parse(s).map(|p| (s.to_owned(), p)))
            .collect(),
        Some(requested) => requested
            .split_whitespace()
            .filter_map(|s| Scope::parse(s).map(|p| (s.to_owned(), p)))
            .filter(|(_, p)| allowed.iter().any(|a| a.covers(p)))
            .collect(),
    };
    if granted.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "none of the requested scopes is granted to this client",
        );
    }
    let scope: Vec<&str> = granted.iter().map(|(s, _)| s.as_str()).collect();
    let scope = scope.join(" ");
    let access_token = tokens.issue(granted.into_iter().map(|(_, p)| p).collect(), lifetime);
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": lifetime.as_secs(),
            "scope": scope,
        })),
    )
        .into_response()
}
