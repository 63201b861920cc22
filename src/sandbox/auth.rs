//! OAuth2 client credentials at `POST /auth/token`, and the bearer-token check of every
//! FHIR interaction when the `auth` feature is on.
//!
//! Scopes are SMART system scopes: `system/Type.read|write|*` (v1) or
//! `system/Type.cruds` letters (v2), with `*` for every type.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sandbox::core::{ApiError, Ctx, content_type, parse_query};
use crate::sandbox::seed::CLIENTS;

const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What an interaction does to a resource type, as scopes grant it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Search,
    Create,
    Update,
}

impl Access {
    fn letter(self) -> char {
        match self {
            Access::Read => 'r',
            Access::Search => 's',
            Access::Create => 'c',
            Access::Update => 'u',
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

/// The issued tokens.
#[derive(Default)]
pub(crate) struct Tokens {
    grants: Mutex<HashMap<String, Grant>>,
}

impl Tokens {
    fn issue(&self, scopes: Vec<Scope>) -> String {
        let token = format!("sbx-{}", uuid::Uuid::new_v4().simple());
        let now = Instant::now();
        let mut grants = self.grants.lock().unwrap_or_else(|e| e.into_inner());
        grants.retain(|_, g| g.expires > now);
        grants.insert(
            token.clone(),
            Grant {
                scopes,
                expires: now + TOKEN_LIFETIME,
            },
        );
        token
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

/// `POST /auth/token`: the client credentials grant (form-encoded body).
pub(crate) fn token(tokens: &Tokens, headers: &HeaderMap, body: &[u8]) -> Response {
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
    let allowed: Vec<Scope> = client.scope.split(' ').filter_map(Scope::parse).collect();
    let granted: Vec<(String, Scope)> = match field("scope").map(str::trim) {
        None | Some("") => client
            .scope
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
    let access_token = tokens.issue(granted.into_iter().map(|(_, p)| p).collect());
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.as_secs(),
            "scope": scope,
        })),
    )
        .into_response()
}
