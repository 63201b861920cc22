//! Credentials the harness presents to the target: a bearer token from the
//! environment, an OAuth2 client-credentials token, or a SMART Backend Services token
//! (a signed JWT client assertion exchanged at the token URL).
//!
//! Fetched tokens are cached and fetched again shortly before they expire, or when
//! the server answers 401 to one ([`Auth::reject`]). Every token and assertion is
//! handed to the [`Redactor`] before it is used.

use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenResponse};
use oauth2::{
    AuthType, ClientCredentialsTokenRequest, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    HttpClientError, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde::Serialize;

use crate::diag::error_chain;
use crate::redact::Redactor;
use crate::target::{JwtAlgorithm, ResolvedAuth};

/// SMART Backend Services: an assertion may be valid for at most five minutes.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An OAuth2 client that knows only the token endpoint.
type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// How a token request fails when sent with reqwest.
type TokenRequestError = RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>;

struct Token {
    value: String,
    /// When to fetch a new one instead (`None`: the server gave no lifetime).
    refresh_at: Option<Instant>,
}

/// When to replace a token that lives `lifetime`: a minute early, or half-way for
/// short-lived tokens.
/// `None` when that moment is too far ahead to represent (`expires_in` of 2^63-1 is
/// used in the wild for "never expires"): the token is then kept for the whole run.
fn refresh_at(obtained: Instant, lifetime: Duration) -> Option<Instant> {
    obtained
        .checked_add(lifetime)
        .map(|end| end - (lifetime / 2).min(Duration::from_secs(60)))
}

/// Why no token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no token endpoint is configured")]
    NoTokenEndpoint,
    #[error("auth.token_url `{url}` is not a URL: {detail}")]
    TokenUrl { url: String, detail: String },
    /// The SMART client assertion could not be signed.
    #[error("{0}")]
    Assertion(String),
    /// The token endpoint did not give a token; `message` is already masked.
    #[error("{message}")]
    TokenEndpoint { kind: TokenFailure, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    /// An OAuth2 error response: the credentials were refused.
    Refused,
    Unreachable,
    /// An answer that is not an OAuth2 token response.
    NotATokenResponse,
    Other,
}

/// Credentials for the target: a fixed token, or tokens fetched and renewed.
pub struct Auth {
    method: ResolvedAuth,
    http: reqwest::Client,
    redactor: Redactor,
    cache: tokio::sync::Mutex<Option<Token>>,
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: String,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The method's kind only, never a secret.
        f.debug_struct("Auth")
            .field("method", &self.method)
            .finish()
    }
}

impl Auth {
    /// `http` must not follow redirects (a token request must not be re-sent
    /// elsewhere); the harness's own client does not.
    pub fn new(method: ResolvedAuth, http: reqwest::Client, redactor: Redactor) -> Self {
        if let ResolvedAuth::Bearer(token) = &method {
            redactor.add(token.clone());
        }
        Auth {
            method,
            http,
            redactor,
            cache: tokio::sync::Mutex::new(None),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self.method, ResolvedAuth::None)
    }

    /// The `Authorization` value for the next request, fetching a token if needed.
    pub async fn header(&self) -> Result<Option<String>, AuthError> {
        if let ResolvedAuth::Bearer(token) = &self.method {
            return Ok(Some(format!("Bearer {token}")));
        }
        if self.is_none() {
            return Ok(None);
        }
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        if let Some(t) = cache
            .as_ref()
            .filter(|t| t.refresh_at.is_none_or(|at| now < at))
        {
            return Ok(Some(format!("Bearer {}", t.value)));
        }
        let token = self.fetch().await?;
        let header = format!("Bearer {}", token.value);
        *cache = Some(token);
        Ok(Some(header))
    }

    /// The server answered 401 to `header`: forget that token. Returns whether a new
    /// one can be fetched (a fixed bearer token cannot be replaced).
    pub async fn reject(&self, header: &str) -> bool {
        if !matches!(
            self.method,
            ResolvedAuth::ClientCredentials { .. } | ResolvedAuth::SmartBackend { .. }
        ) {
            return false;
        }
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|t| header.strip_prefix("Bearer ") == Some(t.value.as_str()))
        {
            *cache = None;
        }
        true
    }

    async fn fetch(&self) -> Result<Token, AuthError> {
        let (token_url, client_id, scope) = match &self.method {
            ResolvedAuth::ClientCredentials {
                token_url,
                client_id,
                scope,
                ..
            }
            | ResolvedAuth::SmartBackend {
                token_url,
                client_id,
                scope,
                ..
            } => (token_url, client_id, scope),
            ResolvedAuth::None | ResolvedAuth::Bearer(_) => {
                return Err(AuthError::NoTokenEndpoint);
            }
        };
        let client = self.token_client(token_url, client_id)?;
        let assertion = self.assertion(token_url, client_id)?;
        let request = token_request(&client, scope.as_deref(), assertion);
        let obtained = Instant::now();
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| self.token_error(&e, token_url))?;
        let value = response.access_token().secret().clone();
        self.redactor.add(value.clone());
        Ok(Token {
            value,
            refresh_at: response
                .expires_in()
                .and_then(|life| refresh_at(obtained, life)),
        })
    }

    /// The OAuth2 client for the token endpoint; with client credentials the secret
    /// goes in the request body.
    fn token_client(&self, token_url: &str, client_id: &str) -> Result<TokenClient, AuthError> {
        let url = TokenUrl::new(token_url.to_owned()).map_err(|e| AuthError::TokenUrl {
            url: token_url.to_owned(),
            detail: e.to_string(),
        })?;
        let client = BasicClient::new(ClientId::new(client_id.to_owned()))
            .set_token_uri(url)
            .set_auth_type(AuthType::RequestBody);
        Ok(match &self.method {
            ResolvedAuth::ClientCredentials { client_secret, .. } => {
                client.set_client_secret(ClientSecret::new(client_secret.clone()))
            }
            _ => client,
        })
    }

    /// A fresh SMART client assertion, masked from here on; `None` for other methods.
    fn assertion(&self, token_url: &str, client_id: &str) -> Result<Option<String>, AuthError> {
        let ResolvedAuth::SmartBackend {
            key_pem,
            algorithm,
            kid,
            jku,
            ..
        } = &self.method
        else {
            return Ok(None);
        };
        let jwt = sign_assertion(
            client_id,
            token_url,
            key_pem,
            *algorithm,
            kid,
            jku.as_deref(),
        )
        .map_err(AuthError::Assertion)?;
        self.redactor.add(jwt.clone());
        Ok(Some(jwt))
    }

    /// Why the token endpoint gave no token, masked, with the endpoint named.
    fn token_error(&self, e: &TokenRequestError, token_url: &str) -> AuthError {
        let (kind, why) = match e {
            RequestTokenError::ServerResponse(r) => (
                TokenFailure::Refused,
                format!(
                    "the token endpoint refused the credentials: {}{}",
                    r.error(),
                    r.error_description()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
            ),
            RequestTokenError::Request(inner) => (
                TokenFailure::Unreachable,
                format!("cannot reach the token endpoint: {}", error_chain(inner)),
            ),
            RequestTokenError::Parse(inner, _) => (
                TokenFailure::NotATokenResponse,
                format!("the token endpoint's answer is not an OAuth2 token response: {inner}"),
            ),
            RequestTokenError::Other(text) => (
                TokenFailure::Other,
                format!("the token endpoint answered: {text}"),
            ),
        };
        AuthError::TokenEndpoint {
            kind,
            message: self.redactor.text(&format!("{why} (POST {token_url})")),
        }
    }
}

/// The client-credentials grant with the scopes, and the SMART assertion if there is one.
fn token_request<'c>(
    client: &'c TokenClient,
    scope: Option<&str>,
    assertion: Option<String>,
) -> ClientCredentialsTokenRequest<'c, BasicErrorResponse, BasicTokenResponse> {
    let mut request = client.exchange_client_credentials();
    for s in scope.iter().flat_map(|s| s.split_whitespace()) {
        request = request.add_scope(Scope::new(s.to_owned()));
    }
    if let Some(jwt) = assertion {
        request = request
            .add_extra_param("client_assertion_type", ASSERTION_TYPE)
            .add_extra_param("client_assertion", jwt);
    }
    request
}

/// A SMART Backend Services client assertion: `iss` = `sub` = the client id, `aud` =
/// the token URL, a fresh `jti`, valid for five minutes.
fn sign_assertion(
    client_id: &str,
    token_url: &str,
    key_pem: &[u8],
    algorithm: JwtAlgorithm,
    kid: &str,
    jku: Option<&str>,
) -> Result<String, String> {
    let (alg, key) = match algorithm {
        JwtAlgorithm::RS384 => (
            jsonwebtoken::Algorithm::RS384,
            jsonwebtoken::EncodingKey::from_rsa_pem(key_pem),
        ),
        JwtAlgorithm::ES384 => (
            jsonwebtoken::Algorithm::ES384,
            jsonwebtoken::EncodingKey::from_ec_pem(key_pem),
        ),
    };
    let key = key.map_err(|e| format!("the private key cannot sign {alg:?}: {e}"))?;
    let mut header = jsonwebtoken::Header::new(alg);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(kid.to_owned());
    header.jku = jku.map(str::to_owned);
    let now = jiff::Timestamp::now().as_second();
    let claims = AssertionClaims {
        iss: client_id,
        sub: client_id,
        aud: token_url,
        exp: now + ASSERTION_LIFETIME.as_secs() as i64,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| format!("cannot sign the client assertion: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens_are_replaced_half_way_long_ones_a_minute_early() {
        let t0 = Instant::now();
        assert_eq!(
            refresh_at(t0, Duration::from_secs(3600)),
            Some(t0 + Duration::from_secs(3540))
        );
        assert_eq!(
            refresh_at(t0, Duration::from_secs(10)),
            Some(t0 + Duration::from_secs(5))
        );
        // 2^63-1 seconds, "never expires" in the wild: kept for the run, no overflow.
        assert_eq!(refresh_at(t0, Duration::from_secs(i64::MAX as u64)), None);
    }

    #[test]
    fn assertions_are_signed_with_the_given_key_and_header() {
        let pem = include_bytes!("../targets/keys/sandbox-backend-es384.pem");
        let jwt = sign_assertion(
            "c1",
            "http://h/auth/token",
            pem,
            JwtAlgorithm::ES384,
            "k1",
            Some("https://h/jwks"),
        )
        .unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES384);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.jku.as_deref(), Some("https://h/jwks"));
        let public = include_bytes!("sandbox/keys/sandbox-backend-es384.pub.pem");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES384);
        v.set_audience(&["http://h/auth/token"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &jwt,
            &jsonwebtoken::DecodingKey::from_ec_pem(public).unwrap(),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["iss"], "c1");
        assert_eq!(data.claims["sub"], "c1");
        let rsa = include_bytes!("../targets/keys/sandbox-backend-rs384.pem");
        assert!(
            sign_assertion("c", "u", rsa, JwtAlgorithm::ES384, "k", None)
                .unwrap_err()
                .contains("cannot sign ES384")
        );
    }
}
