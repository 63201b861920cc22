//! Target files: where the server is, how to authenticate, what it declares.
//!
//! ```yaml
//! base_url: https://staging.example.org/fhir   # absent: the built-in sandbox
//! auth:
//!   type: client_credentials
//!   token_url: https://auth.example.org/oauth2/token
//!   client_id: fhirconf-ci
//!   client_secret_env: STAGING_FHIR_CLIENT_SECRET
//!   scope: system/*.read system/*.write
//! headers: { X-Tenant: acme }
//! vars: { patient_id: "123" }
//! secret_vars: { api_key: STAGING_API_KEY }
//! features: { double_booking: forbidden, versioning: true }
//! timeout: 30
//! rate_limit: 5
//! tls: { ca_file: certs/staging-ca.pem }
//! ```
//!
//! Loading ([`load`]) checks the shape and reports every problem at `file:line:col`;
//! [`TargetFile::resolve`] then reads what lives outside the file (environment
//! variables, key and certificate files) and names the setting when one is missing.
//! Nothing here touches the network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_saphyr::{Location, Spanned};

use crate::diag::Diagnostic;
use crate::files::{display_path, no_nul_byte, push_at, read_text, yaml_error};

/// The target the embedded sandbox runs with: `targets/sandbox.yaml`, compiled in so
/// an installed binary needs no file.
pub const BUILTIN_SANDBOX: &str = include_str!("../targets/sandbox.yaml");
pub const BUILTIN_SANDBOX_NAME: &str = "targets/sandbox.yaml (built in)";

/// Seconds of `Retry-After` the harness waits out per request before it gives up.
pub const DEFAULT_RETRY_BUDGET_SECS: f64 = 60.0;

/// A target file: where the server is, how to authenticate and what it declares.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "fhirconf target file")]
struct TargetDoc {
    /// free text, shown in reports
    description: Option<String>,
    /// the FHIR base URL; scenario paths are joined to it. Absent: start the built-in sandbox
    #[schemars(with = "Option<BaseUrl>")]
    base_url: Option<Spanned<String>>,
    /// how the harness authenticates: `type` and that type's settings
    #[schemars(with = "Option<AuthDoc>")]
    auth: Option<Spanned<AuthDoc>>,
    /// sent with every request; a step's own header wins
    #[schemars(with = "Option<Headers>")]
    headers: Option<Spanned<Map<String, Value>>>,
    /// ids of known records, codes
    #[schemars(with = "Option<Map<String, Value>>")]
    vars: Option<Spanned<Map<String, Value>>>,
    // Absent or empty (a key with only comments under it, as `fhirconf init` writes
    // it) means none, as for `vars`.
    /// values from the environment, masked: variable name to environment variable name
    #[schemars(with = "Option<BTreeMap<String, EnvName>>")]
    secret_vars: Option<BTreeMap<String, Spanned<String>>>,
    /// what the server declares (`double_booking: forbidden`, `versioning: true`), for `requires`
    #[schemars(with = "Option<BTreeMap<String, Scalar>>")]
    features: Option<Spanned<Map<String, Value>>>,
    /// seconds per request
    #[schemars(with = "Option<f64>", range(min = 0.001, max = 86_400.0))]
    timeout: Option<Spanned<f64>>,
    /// requests per second at most, across all scenarios
    #[schemars(with = "Option<f64>", range(min = 0.001, max = 100_000.0))]
    rate_limit: Option<Spanned<f64>>,
    /// seconds one request may wait out Retry-After
    #[schemars(with = "Option<f64>", range(min = 0.001, max = 86_400.0))]
    retry_budget: Option<Spanned<f64>>,
    /// certificates: paths are relative to the target file
    #[schemars(with = "Option<TlsDoc>")]
    tls: Option<Spanned<TlsDoc>>,
    /// FHIR R4 validation of every FHIR resource a step receives: `off`, `warn` (the default: issues shown, nothing failed) or `error` (an invalid resource fails its step); `--validate` wins
    #[schemars(with = "Option<crate::validation::Mode>")]
    validate: Option<Spanned<crate::validation::Mode>>,
    /// validation settings: issues known and accepted
    #[schemars(with = "Option<ValidationDoc>")]
    validation: Option<Spanned<ValidationDoc>>,
    /// profiles to validate against, loaded once per run: StructureDefinition JSON files, folders of them, or FHIR NPM packages (`.tgz`), relative to the target file
    #[schemars(with = "Option<Vec<String>>")]
    profiles: Option<Vec<Spanned<String>>>,
    /// generated suites to run as well as the scenario files: `capability` (every claim of the server's CapabilityStatement); `--suite` wins
    #[serde(default)]
    suites: Vec<crate::cli::Suite>,
}

/// `validation:` in a target file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ValidationDoc {
    /// issues to suppress: each matches an issue when every field it gives matches; suppressed issues are shown and counted, never failing
    #[serde(default)]
    #[schemars(with = "Vec<IgnoreDoc>")]
    ignore: Vec<Spanned<IgnoreDoc>>,
}

/// One kind of validation issue to suppress.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = ignore_rules)]
struct IgnoreDoc {
    /// a regular expression searched in the issue's message
    message: Option<crate::scenario::schema::Pattern>,
    /// a regular expression searched in the issue's FHIRPath location (`Practitioner.telecom[0]`)
    path: Option<crate::scenario::schema::Pattern>,
    /// the canonical URL of the profile whose issues to suppress
    profile: Option<String>,
}

fn ignore_rules(schema: &mut schemars::Schema) {
    crate::jschema::add_rule(schema, serde_json::json!({ "minProperties": 1 }));
}

/// `none`, `bearer`, `client_credentials` or `smart_backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    None,
    Bearer,
    ClientCredentials,
    SmartBackend,
}

impl AuthKind {
    /// Its name in the file, and the settings it takes besides `type`.
    fn keys(self) -> (&'static str, &'static [&'static str]) {
        match self {
            AuthKind::None => ("none", &[]),
            AuthKind::Bearer => ("bearer", &["token_env"]),
            AuthKind::ClientCredentials => (
                "client_credentials",
                &["token_url", "client_id", "client_secret_env", "scope"],
            ),
            AuthKind::SmartBackend => (
                "smart_backend",
                &[
                    "token_url",
                    "client_id",
                    "scope",
                    "private_key_file",
                    "private_key_env",
                    "algorithm",
                    "kid",
                    "jku",
                ],
            ),
        }
    }
}

/// The algorithm of the SMART client assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum JwtAlgorithm {
    RS384,
    ES384,
}

/// How the harness authenticates; each `type` takes its own settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = auth_rules)]
struct AuthDoc {
    /// `none`: sends no credentials; `bearer`: sends the token held by `token_env`; `client_credentials`: OAuth2 client credentials; `smart_backend`: SMART Backend Services (a signed JWT assertion exchanged for a token)
    #[serde(rename = "type")]
    kind: AuthKind,
    /// the environment variable holding the bearer token (the name, never the token)
    #[schemars(with = "Option<EnvName>")]
    token_env: Option<Spanned<String>>,
    /// the token endpoint, absolute or relative to `base_url`
    #[schemars(with = "Option<String>")]
    token_url: Option<Spanned<String>>,
    /// the OAuth2 client id
    #[schemars(with = "Option<String>")]
    client_id: Option<Spanned<String>>,
    /// the environment variable holding the client secret (the name, never the secret)
    #[schemars(with = "Option<EnvName>")]
    client_secret_env: Option<Spanned<String>>,
    /// the scopes requested, e.g. `system/*.read system/*.write`
    #[schemars(with = "Option<String>")]
    scope: Option<Spanned<String>>,
    /// the PEM private key that signs the assertion, relative to the target file
    #[schemars(with = "Option<String>")]
    private_key_file: Option<Spanned<String>>,
    /// the environment variable holding the PEM private key (instead of `private_key_file`)
    #[schemars(with = "Option<EnvName>")]
    private_key_env: Option<Spanned<String>>,
    /// `RS384` or `ES384`
    #[schemars(with = "Option<JwtAlgorithm>")]
    algorithm: Option<Spanned<JwtAlgorithm>>,
    /// the key id registered with the server
    #[schemars(with = "Option<String>")]
    kid: Option<Spanned<String>>,
    /// the URL of the client's JWK Set (optional)
    #[schemars(with = "Option<String>")]
    jku: Option<Spanned<String>>,
}

/// Certificates; paths are relative to the target file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = tls_rules)]
struct TlsDoc {
    /// the CA certificate (PEM) that signs the server's certificate
    #[schemars(with = "Option<String>")]
    ca_file: Option<Spanned<String>>,
    /// mutual TLS, with client_key
    #[schemars(with = "Option<String>")]
    client_cert: Option<Spanned<String>>,
    /// the client certificate's private key (PEM), with client_cert
    #[schemars(with = "Option<String>")]
    client_key: Option<Spanned<String>>,
    /// true accepts any certificate, with a warning
    #[serde(default)]
    insecure: bool,
}

/// The JSON Schema of a target file.
pub fn json_schema() -> schemars::Schema {
    crate::jschema::root_for::<TargetDoc>()
}

/// Per `type`: the settings it requires, and null for those it does not take.
fn auth_rules(schema: &mut schemars::Schema) {
    use crate::jschema::present;
    const ALL: [AuthKind; 4] = [
        AuthKind::None,
        AuthKind::Bearer,
        AuthKind::ClientCredentials,
        AuthKind::SmartBackend,
    ];
    let every: Vec<&str> = ALL
        .iter()
        .flat_map(|k| k.keys().1.iter().copied())
        .collect();
    for kind in ALL {
        let (name, allowed) = kind.keys();
        let mut then: Vec<Value> = every
            .iter()
            .filter(|k| !allowed.contains(k))
            .map(|k| serde_json::json!({ "properties": { *k: { "type": "null" } } }))
            .collect();
        let required: &[&str] = match kind {
            AuthKind::None => &[],
            AuthKind::Bearer => &["token_env"],
            AuthKind::ClientCredentials => &["token_url", "client_id", "client_secret_env"],
            AuthKind::SmartBackend => &["token_url", "client_id", "algorithm", "kid"],
        };
        then.extend(required.iter().map(|k| present(k)));
        if kind == AuthKind::SmartBackend {
            then.push(crate::jschema::exactly_one_of(&[
                "private_key_file",
                "private_key_env",
            ]));
        }
        crate::jschema::add_rule(
            schema,
            serde_json::json!({
                "if": { "properties": { "type": { "const": name } }, "required": ["type"] },
                "then": { "allOf": then }
            }),
        );
    }
}

/// The client certificate and its key come as a pair.
fn tls_rules(schema: &mut schemars::Schema) {
    use crate::jschema::present;
    crate::jschema::add_rule(
        schema,
        serde_json::json!({ "if": present("client_cert"), "then": present("client_key") }),
    );
    crate::jschema::add_rule(
        schema,
        serde_json::json!({ "if": present("client_key"), "then": present("client_cert") }),
    );
}

/// `base_url`, for the schema: an http(s) URL.
struct BaseUrl;
impl JsonSchema for BaseUrl {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BaseUrl".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::jschema::pattern_string("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\s]+", "an http(s) URL")
    }
}

/// An environment variable's name, for the schema.
struct EnvName;
impl JsonSchema for EnvName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EnvName".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::jschema::pattern_string(
            crate::jschema::IDENTIFIER,
            "the name of an environment variable (letters, digits and `_`), never the secret itself",
        )
    }
}

/// A string, number or boolean, for the schema (feature and header values).
struct Scalar;
impl JsonSchema for Scalar {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["string", "number", "boolean"] })
    }
}

/// `headers:`, for the schema: valid names other than Authorization, values HTTP can
/// carry.
struct Headers;
impl JsonSchema for Headers {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Headers".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "propertyNames": {
                "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
                "not": { "pattern": "^[Aa][Uu][Tt][Hh][Oo][Rr][Ii][Zz][Aa][Tt][Ii][Oo][Nn]$" }
            },
            "additionalProperties": {
                "oneOf": [
                    { "type": "string", "pattern": "^[^\\u0000-\\u0008\\u000a-\\u001f\\u007f]*$" },
                    { "type": ["number", "boolean"] }
                ]
            }
        })
    }
}

/// A value from the file with where it was written, so a later problem with it (an
/// unset environment variable, an unreadable file) can point at the setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    pub value: T,
    /// The dotted name of the setting, e.g. `auth.client_secret_env`.
    pub name: String,
    /// `file:line:col`.
    pub at: String,
}

impl<T> Setting<T> {
    fn error(&self, kind: ResolveErrorKind) -> ResolveError {
        ResolveError {
            setting: self.name.clone(),
            at: self.at.clone(),
            kind,
        }
    }
}

/// A setting of the target file whose value outside the file (an environment
/// variable, a key or certificate file) cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {kind}\n  --> {at}")]
pub struct ResolveError {
    /// The dotted name of the setting, e.g. `auth.client_secret_env`.
    pub setting: String,
    /// `file:line:col` of the setting.
    pub at: String,
    pub kind: ResolveErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveErrorKind {
    #[error("environment variable `{0}` is not set")]
    EnvUnset(String),
    #[error("environment variable `{0}` is empty")]
    EnvEmpty(String),
    #[error(
        "environment variable `{0}` holds fewer than {min} characters: a secret that short cannot be masked in the reports without masking ordinary text",
        min = crate::redact::MIN_SECRET_LEN
    )]
    TooShort(String),
    #[error("{0}")]
    File(#[from] crate::files::FileError),
    #[error("{0}")]
    NotAUrl(#[from] UrlError),
    #[error("not a PEM certificate: {0}")]
    NotACertificate(String),
    #[error("no PEM certificate in the file")]
    NoCertificate,
    #[error("the client certificate and key do not form an identity: {0}")]
    NotAnIdentity(String),
    #[error("not a {expected} private key in PEM: {detail}")]
    NotAKey {
        expected: &'static str,
        detail: String,
    },
}

/// A URL that cannot be joined to the base URL.
#[derive(Debug, thiserror::Error)]
#[error("`{url}` is not a URL: {detail}")]
pub struct UrlError {
    pub url: String,
    pub detail: String,
}

/// How the harness authenticates, as the file says it (secrets not yet read).
#[derive(Debug, Clone, PartialEq)]
pub enum AuthSpec {
    None,
    Bearer {
        token_env: Setting<String>,
    },
    ClientCredentials {
        token_url: Setting<String>,
        client_id: String,
        client_secret_env: Setting<String>,
        scope: Option<String>,
    },
    SmartBackend {
        token_url: Setting<String>,
        client_id: String,
        key: KeySource,
        algorithm: JwtAlgorithm,
        kid: String,
        jku: Option<String>,
        scope: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    File(Setting<PathBuf>),
    Env(Setting<String>),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsSpec {
    pub ca_file: Option<Setting<PathBuf>>,
    pub client_cert: Option<Setting<PathBuf>>,
    pub client_key: Option<Setting<PathBuf>>,
    pub insecure: bool,
}

/// A validated target file.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetFile {
    /// As given on the command line (or the built-in name).
    pub display: String,
    /// The file on disk; `None` for the built-in sandbox target.
    pub path: Option<PathBuf>,
    /// SHA-256 of the exact bytes read, for the run record and evidence.
    pub sha256: Option<String>,
    pub description: Option<String>,
    /// `None`: start the built-in sandbox.
    pub base_url: Option<String>,
    pub auth: AuthSpec,
    pub headers: Vec<(String, String)>,
    pub vars: Map<String, Value>,
    /// Variable name → the environment variable holding its (secret) value.
    pub secret_vars: Vec<(String, Setting<String>)>,
    pub features: BTreeMap<String, String>,
    pub timeout_secs: Option<f64>,
    /// Requests per second, at most.
    pub rate_limit: Option<f64>,
    pub retry_budget_secs: Option<f64>,
    pub tls: TlsSpec,
    /// `validate:`; `None` when the file leaves it out.
    pub validate: Option<crate::validation::Mode>,
    /// `validation.ignore`.
    pub validation_ignore: Vec<crate::validation::IgnoreRule>,
    /// `profiles:`, relative to the target file already.
    pub profiles: Vec<Setting<PathBuf>>,
    /// `suites:`: generated suites to run.
    pub suites: Vec<crate::cli::Suite>,
}

/// What [`TargetFile::resolve`] read from the environment and the disk.
#[derive(Clone, Default)]
pub struct Resolved {
    pub auth: ResolvedAuth,
    /// Secret variables with their values.
    pub secret_vars: Vec<(String, String)>,
    /// Every value that must never be shown.
    pub secrets: Vec<String>,
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate and key, concatenated PEM.
    pub identity_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names, never values.
        f.debug_struct("Resolved")
            .field("auth", &self.auth)
            .field(
                "secret_vars",
                &self.secret_vars.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("secrets", &self.secrets.len())
            .field("ca_pem", &self.ca_pem.is_some())
            .field("identity_pem", &self.identity_pem.is_some())
            .finish()
    }
}

#[derive(Clone, Default)]
pub enum ResolvedAuth {
    #[default]
    None,
    Bearer(String),
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
    },
    SmartBackend {
        token_url: String,
        client_id: String,
        /// PEM, PKCS#8.
        key_pem: Vec<u8>,
        algorithm: JwtAlgorithm,
        kid: String,
        jku: Option<String>,
        scope: Option<String>,
    },
}

impl ResolvedAuth {
    /// Joins a relative token URL to the base URL the run uses.
    pub fn absolute(mut self, base_url: &str) -> Result<Self, UrlError> {
        if let ResolvedAuth::ClientCredentials { token_url, .. }
        | ResolvedAuth::SmartBackend { token_url, .. } = &mut self
        {
            *token_url = absolute_url(base_url, token_url)?;
        }
        Ok(self)
    }
}

impl std::fmt::Debug for ResolvedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets themselves.
        f.write_str(match self {
            ResolvedAuth::None => "None",
            ResolvedAuth::Bearer(_) => "Bearer([redacted])",
            ResolvedAuth::ClientCredentials { .. } => "ClientCredentials { .. }",
            ResolvedAuth::SmartBackend { .. } => "SmartBackend { .. }",
        })
    }
}

/// Reads and validates a target file.
pub fn load(path: &Path) -> Result<TargetFile, Vec<Diagnostic>> {
    let display = display_path(path);
    let text = read_text(path, &display, crate::files::MAX_INPUT_BYTES).map_err(|d| vec![d])?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut target = parse(&display, &text, &base)?;
    target.path = Some(path.to_path_buf());
    target.sha256 = Some(crate::files::sha256_hex(text.as_bytes()));
    Ok(target)
}

/// The built-in sandbox target.
pub fn builtin_sandbox() -> TargetFile {
    parse(BUILTIN_SANDBOX_NAME, BUILTIN_SANDBOX, Path::new("targets"))
        .unwrap_or_else(|d| panic!("targets/sandbox.yaml is invalid: {d:?}"))
}

/// Parses a target's text; `base` is where relative file paths start from.
pub fn parse(display: &str, text: &str, base: &Path) -> Result<TargetFile, Vec<Diagnostic>> {
    no_nul_byte(display, text, "target")?;
    let doc: TargetDoc = serde_saphyr::from_str_with_options(text, crate::files::yaml_options()).map_err(|e| {
        let mut d = yaml_error(display, text, &e);
        if d.message.contains("missing field") || text.trim().is_empty() {
            d = d.with_help("a target needs at least `base_url` (or nothing else but `vars` and `features` for the built-in sandbox)");
        }
        vec![d]
    })?;
    crate::files::refuse_tags(display, text).map_err(|d| vec![d])?;
    let mut b = Builder {
        file: display,
        text,
        base,
        errors: Vec::new(),
    };
    let target = b.build(doc);
    if b.errors.is_empty() {
        Ok(target)
    } else {
        Err(b.errors)
    }
}

struct Builder<'a> {
    file: &'a str,
    text: &'a str,
    base: &'a Path,
    errors: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn at(&self, loc: Location) -> String {
        format!("{}:{}:{}", self.file, loc.line(), loc.column())
    }

    fn err(&mut self, loc: Location, message: impl Into<String>) -> &mut Diagnostic {
        push_at(&mut self.errors, self.file, self.text, loc, message)
    }

    fn setting<T>(&self, name: &str, s: Spanned<T>) -> Setting<T> {
        Setting {
            at: self.at(s.referenced),
            value: s.value,
            name: name.to_owned(),
        }
    }

    fn path_setting(&self, name: &str, s: Spanned<String>) -> Setting<PathBuf> {
        let at = self.at(s.referenced);
        let p = PathBuf::from(&s.value);
        Setting {
            value: if p.is_absolute() {
                p
            } else {
                self.base.join(p)
            },
            name: name.to_owned(),
            at,
        }
    }

    fn env_name(&mut self, name: &str, s: Spanned<String>) -> Setting<String> {
        let valid = !s.value.is_empty()
            && s.value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !s.value.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            self.err(
                s.referenced,
                format!(
                    "`{name}` names an environment variable; `{}` is not a variable name",
                    s.value
                ),
            )
            .help = Some(
                "write the variable's name (e.g. STAGING_TOKEN), never the secret itself"
                    .to_owned(),
            );
        }
        self.setting(name, s)
    }

    /// A number from `min` to `max`: anything else (negative, zero, NaN, infinite, or
    /// too small or large to turn into a time) cannot be honoured.
    fn within(
        &mut self,
        name: &str,
        s: Option<Spanned<f64>>,
        (min, max): (f64, f64),
    ) -> Option<f64> {
        let s = s?;
        if !(s.value.is_finite() && s.value >= min && s.value <= max) {
            self.err(
                s.referenced,
                format!(
                    "`{name}` must be a number from {min} to {max}, found {}",
                    if s.value.is_finite()
                        && s.value != 0.0
                        && !(1e-6..1e9).contains(&s.value.abs())
                    {
                        format!("{:e}", s.value)
                    } else {
                        s.value.to_string()
                    }
                ),
            );
            return None;
        }
        Some(s.value)
    }

    fn build(&mut self, doc: TargetDoc) -> TargetFile {
        let base_url = doc.base_url.map(|u| self.base_url(u));
        let auth = match doc.auth {
            None => AuthSpec::None,
            Some(a) => self.auth(a),
        };
        let headers = doc.headers.map(|h| self.headers(h)).unwrap_or_default();
        let vars = doc.vars.map(|v| v.value).unwrap_or_default();
        let secret_vars = self.secret_vars(doc.secret_vars.unwrap_or_default(), &vars);
        let features = doc.features.map(|f| self.features(f)).unwrap_or_default();
        let timeout_secs = self.within("timeout", doc.timeout, (0.001, 86_400.0));
        let rate_limit = self.within("rate_limit", doc.rate_limit, (0.001, 100_000.0));
        let retry_budget_secs = self.within("retry_budget", doc.retry_budget, (0.001, 86_400.0));
        let tls = doc.tls.map(|t| self.tls(t)).unwrap_or_default();
        let validation_ignore = doc
            .validation
            .map(|v| self.validation_ignore(v.value))
            .unwrap_or_default();
        let profiles = doc
            .profiles
            .unwrap_or_default()
            .into_iter()
            .map(|p| self.path_setting("profiles", p))
            .collect();
        TargetFile {
            display: self.file.to_owned(),
            path: None,
            sha256: None,
            description: doc.description,
            base_url,
            auth,
            headers,
            vars,
            secret_vars,
            features,
            timeout_secs,
            rate_limit,
            retry_budget_secs,
            tls,
            validate: doc.validate.map(|v| v.value),
            validation_ignore,
            profiles,
            suites: doc.suites,
        }
    }

    /// `validation.ignore`: each rule gives at least one of message, path, profile.
    fn validation_ignore(&mut self, v: ValidationDoc) -> Vec<crate::validation::IgnoreRule> {
        let mut rules = Vec::new();
        for rule in v.ignore {
            let IgnoreDoc {
                message,
                path,
                profile,
            } = rule.value;
            if message.is_none() && path.is_none() && profile.is_none() {
                self.err(
                    rule.referenced,
                    "a `validation.ignore` rule needs at least one of message, path, profile (an empty rule would suppress every issue)",
                );
                continue;
            }
            rules.push(crate::validation::IgnoreRule {
                message,
                path,
                profile,
            });
        }
        rules
    }

    /// Kept without a trailing `/`: paths are joined to it with exactly one.
    fn base_url(&mut self, u: Spanned<String>) -> String {
        match reqwest::Url::parse(&u.value) {
            Ok(parsed)
                if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {}
            _ => {
                self.err(
                    u.referenced,
                    format!("`base_url` must be an http(s) URL, found `{}`", u.value),
                );
            }
        }
        u.value.trim_end_matches('/').to_owned()
    }

    /// Headers sent on every request; Authorization is left to `auth`, which keeps the
    /// secret out of the file.
    fn headers(&mut self, h: Spanned<Map<String, Value>>) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        for (name, value) in h.value {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.err(h.referenced, format!("`{name}` is not a valid header name"));
                continue;
            }
            if name.eq_ignore_ascii_case("authorization") {
                self.err(h.referenced, "`headers` cannot set Authorization")
                    .help = Some("use `auth` (a token from an environment variable, OAuth2 or SMART Backend Services), so the value stays out of the file".to_owned());
                continue;
            }
            match scalar_text(&value) {
                // CR, LF or another control character: the value could never be sent.
                Some(v) if reqwest::header::HeaderValue::from_str(&v).is_err() => {
                    self.err(
                        h.referenced,
                        format!("header `{name}` has a value with a control character (such as CR or LF), which HTTP cannot carry"),
                    );
                }
                Some(v) => headers.push((name, v)),
                None => {
                    self.err(
                        h.referenced,
                        format!("header `{name}` must be a string, number or boolean"),
                    );
                }
            }
        }
        headers
    }

    /// Each names the environment variable holding its value; a name in `vars` too is an
    /// error.
    fn secret_vars(
        &mut self,
        doc: BTreeMap<String, Spanned<String>>,
        vars: &Map<String, Value>,
    ) -> Vec<(String, Setting<String>)> {
        let mut secret_vars = Vec::new();
        for (name, env) in doc {
            if vars.contains_key(&name) {
                self.err(
                    env.referenced,
                    format!("`{name}` is both in `vars` and in `secret_vars`"),
                );
            }
            let setting = self.env_name(&format!("secret_vars.{name}"), env);
            secret_vars.push((name, setting));
        }
        secret_vars
    }

    /// Feature values are compared as text, so `true` and `"true"` are the same.
    fn features(&mut self, f: Spanned<Map<String, Value>>) -> BTreeMap<String, String> {
        let mut features = BTreeMap::new();
        for (name, value) in f.value {
            match scalar_text(&value) {
                Some(v) => {
                    features.insert(name, v);
                }
                None => {
                    self.err(
                        f.referenced,
                        format!("feature `{name}` must be a string, number or boolean"),
                    );
                }
            }
        }
        features
    }

    /// The client certificate and its key come as a pair.
    fn tls(&mut self, t: Spanned<TlsDoc>) -> TlsSpec {
        let loc = t.referenced;
        let t = t.value;
        if t.client_cert.is_some() != t.client_key.is_some() {
            self.err(
                loc,
                "`tls.client_cert` and `tls.client_key` go together: give both or neither",
            );
        }
        TlsSpec {
            ca_file: t.ca_file.map(|s| self.path_setting("tls.ca_file", s)),
            client_cert: t
                .client_cert
                .map(|s| self.path_setting("tls.client_cert", s)),
            client_key: t.client_key.map(|s| self.path_setting("tls.client_key", s)),
            insecure: t.insecure,
        }
    }

    /// Settings the type does not take are errors first; then the type's own are read.
    fn auth(&mut self, a: Spanned<AuthDoc>) -> AuthSpec {
        let loc = a.referenced;
        let a = a.value;
        self.inapplicable_auth_keys(loc, &a);
        match a.kind {
            AuthKind::None => AuthSpec::None,
            AuthKind::Bearer => self.bearer(loc, a),
            AuthKind::ClientCredentials => self.client_credentials(loc, a),
            AuthKind::SmartBackend => self.smart_backend(loc, a),
        }
    }

    /// Reports each setting given that the type does not take, and what it does take.
    fn inapplicable_auth_keys(&mut self, loc: Location, a: &AuthDoc) {
        let present: [(&str, bool); 10] = [
            ("token_env", a.token_env.is_some()),
            ("token_url", a.token_url.is_some()),
            ("client_id", a.client_id.is_some()),
            ("client_secret_env", a.client_secret_env.is_some()),
            ("scope", a.scope.is_some()),
            ("private_key_file", a.private_key_file.is_some()),
            ("private_key_env", a.private_key_env.is_some()),
            ("algorithm", a.algorithm.is_some()),
            ("kid", a.kid.is_some()),
            ("jku", a.jku.is_some()),
        ];
        let (type_name, allowed) = a.kind.keys();
        for (key, is) in present {
            if is && !allowed.contains(&key) {
                self.err(
                    loc,
                    format!("`auth.{key}` does not apply to `type: {type_name}`"),
                )
                .help = Some(if allowed.is_empty() {
                    "`type: none` takes no other settings".to_owned()
                } else {
                    format!("`type: {type_name}` takes {}", allowed.join(", "))
                });
            }
        }
    }

    fn missing_auth_key(&mut self, loc: Location, kind: AuthKind, key: &str) {
        let (type_name, _) = kind.keys();
        self.err(
            loc,
            format!("`auth.{key}` is required for `type: {type_name}`"),
        );
    }

    /// Reports each key of `given` that is absent (`false`).
    fn missing_auth_keys(&mut self, loc: Location, kind: AuthKind, given: &[(&str, bool)]) {
        for (key, is) in given {
            if !is {
                self.missing_auth_key(loc, kind, key);
            }
        }
    }

    fn bearer(&mut self, loc: Location, a: AuthDoc) -> AuthSpec {
        match a.token_env {
            Some(t) => AuthSpec::Bearer {
                token_env: self.env_name("auth.token_env", t),
            },
            None => {
                self.missing_auth_key(loc, AuthKind::Bearer, "token_env");
                AuthSpec::None
            }
        }
    }

    fn client_credentials(&mut self, loc: Location, a: AuthDoc) -> AuthSpec {
        let given = [
            ("token_url", a.token_url.is_some()),
            ("client_id", a.client_id.is_some()),
            ("client_secret_env", a.client_secret_env.is_some()),
        ];
        let (Some(url), Some(id), Some(secret)) = (a.token_url, a.client_id, a.client_secret_env)
        else {
            self.missing_auth_keys(loc, AuthKind::ClientCredentials, &given);
            return AuthSpec::None;
        };
        AuthSpec::ClientCredentials {
            token_url: self.setting("auth.token_url", url),
            client_id: id.value,
            client_secret_env: self.env_name("auth.client_secret_env", secret),
            scope: a.scope.map(|s| s.value),
        }
    }

    fn smart_backend(&mut self, loc: Location, a: AuthDoc) -> AuthSpec {
        let key = self.private_key(loc, a.private_key_file, a.private_key_env);
        let given = [
            ("token_url", a.token_url.is_some()),
            ("client_id", a.client_id.is_some()),
            ("algorithm", a.algorithm.is_some()),
            ("kid", a.kid.is_some()),
        ];
        let (Some(url), Some(id), Some(alg), Some(kid), Some(key)) =
            (a.token_url, a.client_id, a.algorithm, a.kid, key)
        else {
            self.missing_auth_keys(loc, AuthKind::SmartBackend, &given);
            return AuthSpec::None;
        };
        AuthSpec::SmartBackend {
            token_url: self.setting("auth.token_url", url),
            client_id: id.value,
            key,
            algorithm: alg.value,
            kid: kid.value,
            jku: a.jku.map(|j| j.value),
            scope: a.scope.map(|s| s.value),
        }
    }

    /// The SMART private key comes from a file or from the environment: exactly one.
    fn private_key(
        &mut self,
        loc: Location,
        file: Option<Spanned<String>>,
        env: Option<Spanned<String>>,
    ) -> Option<KeySource> {
        match (file, env) {
            (Some(f), None) => Some(KeySource::File(
                self.path_setting("auth.private_key_file", f),
            )),
            (None, Some(e)) => Some(KeySource::Env(self.env_name("auth.private_key_env", e))),
            (Some(_), Some(_)) => {
                self.err(
                    loc,
                    "give one of `auth.private_key_file` and `auth.private_key_env`, not both",
                );
                None
            }
            (None, None) => {
                self.missing_auth_key(
                    loc,
                    AuthKind::SmartBackend,
                    "private_key_file` or `auth.private_key_env",
                );
                None
            }
        }
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a secret from the environment; an unset or empty variable names the setting.
fn env_value(
    setting: &Setting<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ResolveError> {
    match env(&setting.value) {
        Some(v) if v.is_empty() => {
            Err(setting.error(ResolveErrorKind::EnvEmpty(setting.value.clone())))
        }
        // Every value read from the environment is a secret, masked in every output.
        Some(v) if crate::redact::too_short(&v) => {
            Err(setting.error(ResolveErrorKind::TooShort(setting.value.clone())))
        }
        Some(v) => Ok(v),
        None => Err(setting.error(ResolveErrorKind::EnvUnset(setting.value.clone()))),
    }
}

/// Key and certificate files go through the one guard every input file does: a
/// regular file of bounded size.
fn read_file(setting: &Setting<PathBuf>) -> Result<Vec<u8>, ResolveError> {
    crate::files::read_bytes(&setting.value, crate::files::MAX_INPUT_BYTES)
        .map_err(|e| setting.error(e.into()))
}

/// Joins a token URL to the base URL when it is relative (`auth/token`).
pub fn absolute_url(base_url: &str, url: &str) -> Result<String, UrlError> {
    if let Ok(u) = reqwest::Url::parse(url) {
        return Ok(u.to_string());
    }
    let error = |url: &str, e: &dyn std::fmt::Display| UrlError {
        url: url.to_owned(),
        detail: e.to_string(),
    };
    let base = reqwest::Url::parse(&format!("{}/", base_url.trim_end_matches('/')))
        .map_err(|e| error(base_url, &e))?;
    base.join(url.trim_start_matches('/'))
        .map(|u| u.to_string())
        .map_err(|e| error(url, &e))
}

impl TargetFile {
    /// The target `--base-url` alone describes: nothing declared.
    pub fn external() -> Self {
        TargetFile {
            display: "--base-url".to_owned(),
            path: None,
            sha256: None,
            description: None,
            base_url: None,
            auth: AuthSpec::None,
            headers: Vec::new(),
            vars: Map::new(),
            secret_vars: Vec::new(),
            features: BTreeMap::new(),
            timeout_secs: None,
            rate_limit: None,
            retry_budget_secs: None,
            tls: TlsSpec::default(),
            validate: None,
            validation_ignore: Vec::new(),
            profiles: Vec::new(),
            suites: Vec::new(),
        }
    }

    /// Reads environment variables and files the target names. `env` is
    /// `std::env::var` outside tests.
    pub fn resolve(
        &self,
        base_url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Resolved, Vec<ResolveError>> {
        let mut errors = Vec::new();
        let mut out = Resolved::default();
        for (name, setting) in &self.secret_vars {
            match env_value(setting, env) {
                Ok(v) => {
                    out.secrets.push(v.clone());
                    out.secret_vars.push((name.clone(), v));
                }
                Err(e) => errors.push(e),
            }
        }
        match self.auth.resolve(base_url, env, &mut out.secrets) {
            Ok(auth) => out.auth = auth,
            Err(e) => errors.extend(e),
        }
        if let Some(ca) = &self.tls.ca_file {
            match read_ca(ca) {
                Ok(pem) => out.ca_pem = Some(pem),
                Err(e) => errors.push(e),
            }
        }
        if let (Some(cert), Some(key)) = (&self.tls.client_cert, &self.tls.client_key) {
            match read_identity(cert, key, &mut out.secrets) {
                Ok(pem) => out.identity_pem = Some(pem),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

impl AuthSpec {
    /// Reads the secrets the method needs, adding each to `secrets` (to be masked).
    fn resolve(
        &self,
        base_url: &str,
        env: &dyn Fn(&str) -> Option<String>,
        secrets: &mut Vec<String>,
    ) -> Result<ResolvedAuth, Vec<ResolveError>> {
        Ok(match self {
            AuthSpec::None => ResolvedAuth::None,
            AuthSpec::Bearer { token_env } => {
                let token = env_value(token_env, env).map_err(|e| vec![e])?;
                secrets.push(token.clone());
                ResolvedAuth::Bearer(token)
            }
            AuthSpec::ClientCredentials {
                token_url,
                client_id,
                client_secret_env,
                scope,
            } => {
                let (token_url, client_secret) = both(
                    checked_token_url(base_url, token_url),
                    env_value(client_secret_env, env),
                )?;
                secrets.push(client_secret.clone());
                ResolvedAuth::ClientCredentials {
                    token_url,
                    client_id: client_id.clone(),
                    client_secret,
                    scope: scope.clone(),
                }
            }
            AuthSpec::SmartBackend {
                token_url,
                client_id,
                key,
                algorithm,
                kid,
                jku,
                scope,
            } => {
                let (token_url, key_pem) = both(
                    checked_token_url(base_url, token_url),
                    key.read(*algorithm, env),
                )?;
                secrets.extend(pem_secrets(&key_pem));
                ResolvedAuth::SmartBackend {
                    token_url,
                    client_id: client_id.clone(),
                    key_pem,
                    algorithm: *algorithm,
                    kid: kid.clone(),
                    jku: jku.clone(),
                    scope: scope.clone(),
                }
            }
        })
    }
}

impl KeySource {
    /// The key's PEM, checked to be one `algorithm` can sign with.
    fn read(
        &self,
        algorithm: JwtAlgorithm,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<u8>, ResolveError> {
        let pem = match self {
            KeySource::File(f) => read_file(f)?,
            KeySource::Env(e) => env_value(e, env)?.into_bytes(),
        };
        check_private_key(&pem, algorithm).map_err(|e| match self {
            KeySource::File(f) => f.error(e),
            KeySource::Env(s) => s.error(e),
        })?;
        Ok(pem)
    }
}

/// Both values, or the errors of both, so one run names every bad setting.
fn both<A, B>(
    a: Result<A, ResolveError>,
    b: Result<B, ResolveError>,
) -> Result<(A, B), Vec<ResolveError>> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(a.err().into_iter().chain(b.err()).collect()),
    }
}

/// The token URL as written, once it is known to join the base URL: relative ones are
/// joined to the real base URL later ([`ResolvedAuth::absolute`]).
fn checked_token_url(base_url: &str, url: &Setting<String>) -> Result<String, ResolveError> {
    absolute_url(base_url, &url.value)
        .map(|_| url.value.clone())
        .map_err(|e| url.error(e.into()))
}

/// A CA file must hold at least one PEM certificate.
fn read_ca(ca: &Setting<PathBuf>) -> Result<Vec<u8>, ResolveError> {
    let pem = read_file(ca)?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| ca.error(ResolveErrorKind::NotACertificate(e.to_string())))?;
    if certs.is_empty() {
        Err(ca.error(ResolveErrorKind::NoCertificate))
    } else {
        Ok(pem)
    }
}

/// The client certificate and key as one PEM, the form reqwest takes; the key's lines
/// join `secrets`.
fn read_identity(
    cert: &Setting<PathBuf>,
    key: &Setting<PathBuf>,
    secrets: &mut Vec<String>,
) -> Result<Vec<u8>, Vec<ResolveError>> {
    let (mut pem, key_pem) = both(read_file(cert), read_file(key))?;
    secrets.extend(pem_secrets(&key_pem));
    pem.push(b'\n');
    pem.extend_from_slice(&key_pem);
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        vec![
            cert.error(ResolveErrorKind::NotAnIdentity(crate::diag::error_chain(
                &e,
            ))),
        ]
    })?;
    Ok(pem)
}

/// A private key is a secret line by line: each base64 line of the PEM body, and the
/// whole text, are masked wherever they could appear.
fn pem_secrets(pem: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(pem);
    let mut out = vec![text.trim().to_owned()];
    out.extend(
        text.lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----") && l.len() >= 16)
            .map(str::to_owned),
    );
    out
}

fn check_private_key(pem: &[u8], alg: JwtAlgorithm) -> Result<(), ResolveErrorKind> {
    let result = match alg {
        JwtAlgorithm::RS384 => jsonwebtoken::EncodingKey::from_rsa_pem(pem).map(|_| ()),
        JwtAlgorithm::ES384 => jsonwebtoken::EncodingKey::from_ec_pem(pem).map(|_| ()),
    };
    result.map_err(|e| ResolveErrorKind::NotAKey {
        expected: match alg {
            JwtAlgorithm::RS384 => "RSA (PKCS#1 or PKCS#8)",
            JwtAlgorithm::ES384 => "P-384 EC (PKCS#8)",
        },
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> TargetFile {
        parse("t.yaml", text, Path::new("/cfg")).unwrap_or_else(|d| panic!("{d:#?}"))
    }

    fn parse_err(text: &str) -> String {
        parse("t.yaml", text, Path::new("/cfg"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_builtin_sandbox_target_is_valid_and_starts_the_sandbox() {
        let t = builtin_sandbox();
        assert_eq!(t.base_url, None);
        assert_eq!(t.auth, AuthSpec::None);
        assert!(t.vars.contains_key("patient_id"));
    }

    #[test]
    fn reads_every_setting() {
        let t = parse_ok(
            "base_url: https://x.example/fhir/\nauth:\n  type: client_credentials\n  token_url: auth/token\n  client_id: ci\n  client_secret_env: CI_SECRET\n  scope: system/*.read\nheaders: { X-Tenant: acme, X-N: 3 }\nvars: { patient_id: p1 }\nsecret_vars: { api_key: API_KEY }\nfeatures: { versioning: true, double_booking: forbidden }\ntimeout: 5\nrate_limit: 2.5\nretry_budget: 10\ntls: { ca_file: ca.pem }\n",
        );
        assert_eq!(t.base_url.as_deref(), Some("https://x.example/fhir"));
        assert_eq!(
            t.headers,
            vec![
                ("X-Tenant".into(), "acme".into()),
                ("X-N".into(), "3".into())
            ]
        );
        assert_eq!(t.features["versioning"], "true");
        assert_eq!(t.timeout_secs, Some(5.0));
        assert_eq!(t.rate_limit, Some(2.5));
        assert_eq!(t.retry_budget_secs, Some(10.0));
        assert_eq!(
            t.tls.ca_file.as_ref().map(|s| s.value.clone()),
            Some(PathBuf::from("/cfg/ca.pem"))
        );
        let AuthSpec::ClientCredentials {
            token_url,
            client_secret_env,
            ..
        } = &t.auth
        else {
            panic!("{:?}", t.auth)
        };
        assert_eq!(token_url.at, "t.yaml:4:14");
        assert_eq!(client_secret_env.value, "CI_SECRET");
    }

    #[test]
    fn unknown_keys_and_wrong_types_point_at_the_spot() {
        let e = parse_err("base_url: http://x\ntimeuot: 3\n");
        assert!(e.contains("t.yaml:2:1"), "{e}");
        assert!(e.contains("did you mean `timeout`"), "{e}");
        let e = parse_err("base_url: http://x\ntimeout: soon\n");
        assert!(e.contains("t.yaml:2:10"), "{e}");
        let e = parse_err("base_url: http://x\nauth:\n  type: bearer\n  token: abc\n");
        assert!(e.contains("t.yaml:4:3") && e.contains("token_env"), "{e}");
        let e = parse_err("base_url: http://x\nauth: { type: oauth }\n");
        assert!(e.contains("client_credentials"), "{e}");
    }

    #[test]
    fn auth_settings_must_fit_the_type() {
        let e = parse_err("auth: { type: bearer }\n");
        assert!(e.contains("`auth.token_env` is required"), "{e}");
        let e = parse_err("auth: { type: bearer, token_env: T, client_id: x }\n");
        assert!(e.contains("`auth.client_id` does not apply"), "{e}");
        let e = parse_err("auth: { type: bearer, token_env: 'eyJhbGciOi.x.y' }\n");
        assert!(e.contains("not a variable name"), "{e}");
        let e = parse_err(
            "auth: { type: smart_backend, token_url: t, client_id: c, algorithm: RS384, kid: k }\n",
        );
        assert!(e.contains("private_key_file"), "{e}");
        let e = parse_err(
            "auth: { type: smart_backend, token_url: t, client_id: c, algorithm: HS256, kid: k, private_key_env: K }\n",
        );
        assert!(e.contains("RS384"), "{e}");
        let e = parse_err("headers: { Authorization: Bearer x }\n");
        assert!(e.contains("cannot set Authorization"), "{e}");
        let e = parse_err("base_url: ftp://x\n");
        assert!(e.contains("http(s) URL"), "{e}");
        let e = parse_err("rate_limit: 0\n");
        assert!(e.contains("from 0.001 to 100000, found 0"), "{e}");
        // Too small to turn into a time between requests: refused, not a panic.
        let e = parse_err("rate_limit: 1e-300\n");
        assert!(e.contains("found 1e-300"), "{e}");
        for bad in [
            "timeout: .nan",
            "timeout: .inf",
            "retry_budget: -1",
            "retry_budget: 1e300",
        ] {
            assert!(
                parse_err(&format!("{bad}\n")).contains("must be a number from"),
                "{bad}"
            );
        }
        let e = parse_err("tls: { client_cert: c.pem }\n");
        assert!(e.contains("go together"), "{e}");
    }

    #[test]
    fn resolving_names_the_missing_setting() {
        let t = parse_ok(
            "base_url: http://x\nauth: { type: bearer, token_env: NOPE_TOKEN }\nsecret_vars: { k: NOPE_KEY }\n",
        );
        let errors: Vec<String> = t
            .resolve("http://x", &|_| None)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("secret_vars.k: environment variable `NOPE_KEY` is not set"));
        assert!(
            errors[1].starts_with(
                "auth.token_env: environment variable `NOPE_TOKEN` is not set\n  --> t.yaml:2:"
            ),
            "{}",
            errors[1]
        );
        let ok = t
            .resolve("http://x", &|n| Some(format!("value-of-{n}")))
            .unwrap();
        assert!(ok.secrets.contains(&"value-of-NOPE_TOKEN".to_owned()));
        assert_eq!(
            ok.secret_vars,
            vec![("k".into(), "value-of-NOPE_KEY".into())]
        );
        assert!(!format!("{:?}", ok.auth).contains("value-of"));
    }

    #[test]
    fn unreadable_and_bad_key_files_are_named() {
        let t = parse_ok(
            "auth: { type: smart_backend, token_url: auth/token, client_id: c, algorithm: ES384, kid: k, private_key_file: missing.pem }\n",
        );
        let errors = t.resolve("http://x", &|_| None).unwrap_err();
        assert!(matches!(
            errors[0].kind,
            ResolveErrorKind::File(crate::files::FileError::Io { .. })
        ));
        let e = errors[0].to_string();
        assert!(
            e.starts_with("auth.private_key_file: cannot read /cfg/missing.pem: no such file"),
            "{e}"
        );
        let t = parse_ok(
            "auth: { type: smart_backend, token_url: auth/token, client_id: c, algorithm: ES384, kid: k, private_key_env: K }\n",
        );
        let e = t
            .resolve("http://x", &|_| Some("not a key".into()))
            .unwrap_err()[0]
            .to_string();
        assert!(e.contains("not a P-384 EC (PKCS#8) private key"), "{e}");
    }

    #[test]
    fn relative_token_urls_join_the_base() {
        assert_eq!(
            absolute_url("http://h:1/fhir", "auth/token").unwrap(),
            "http://h:1/fhir/auth/token"
        );
        assert_eq!(
            absolute_url("http://h:1/fhir/", "/auth/token").unwrap(),
            "http://h:1/fhir/auth/token"
        );
        assert_eq!(
            absolute_url("http://h:1", "https://idp/t").unwrap(),
            "https://idp/t"
        );
    }
}
