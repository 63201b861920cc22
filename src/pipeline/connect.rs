//! The second stage: secrets read, the sandbox started (when it is the target), the
//! HTTP client built, credentials fetched and the CapabilityStatement read. What it
//! returns, a [`Connection`], is everything the runner needs to reach the server; the
//! sandbox inside it stops when the connection is dropped.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::plan::{Plan, TargetKind};
use crate::auth::{Auth, AuthError};
use crate::capability::{Capabilities, MetadataError};
use crate::http::{BaseUrl, ClientError, HttpClient, HttpSettings, NoAnswer};
use crate::redact::Redactor;
use crate::sandbox::{self, RunningSandbox, SandboxConfig};
use crate::target::{ResolveError, ResolvedAuth, UrlError};

/// A reachable server and the means to talk to it.
#[derive(Debug)]
pub struct Connection {
    pub base_url: BaseUrl,
    pub client: HttpClient,
    pub auth: Arc<Auth>,
    /// Knows every secret of the run; learns tokens as they are fetched.
    pub redactor: Redactor,
    pub capabilities: Capabilities,
    /// The features the target declares (for the sandbox: its configuration's).
    pub features: BTreeMap<String, String>,
    /// Every variable of the run, secret ones included.
    pub vars: Map<String, Value>,
    /// The built-in sandbox, when it is the target: stopped when this is dropped.
    pub sandbox: Option<RunningSandbox>,
}

/// Why the server cannot be reached or used; nothing was run.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Settings of the target whose secrets or files cannot be used, all of them.
    #[error("the target is not usable; nothing was run")]
    Resolve(Vec<ResolveError>),
    #[error("cannot start the built-in sandbox: {0}")]
    Sandbox(std::io::Error),
    #[error("{0}")]
    Client(#[from] ClientError),
    #[error("auth.token_url: {0}")]
    TokenUrl(#[from] UrlError),
    #[error("auth: {0}")]
    Auth(#[from] AuthError),
    #[error("tls: cannot connect to {base_url}: {detail} ({})", if *.closed_after_handshake {
        "the server closed the connection after the TLS handshake; if it requires a client certificate, set `tls.client_cert` and `tls.client_key` in the target"
    } else {
        "trust its CA with `tls.ca_file` in the target"
    })]
    Tls {
        base_url: String,
        detail: String,
        closed_after_handshake: bool,
    },
}

/// Reads the target's secrets, starts the sandbox if it is the target, and builds the
/// client and the credentials; [`Connection::handshake`] then uses them.
pub async fn connect(plan: &Plan) -> Result<Connection, ConnectError> {
    let base_for_urls = match &plan.kind {
        TargetKind::External(url) => url.as_str().to_owned(),
        TargetKind::Sandbox(_) => "http://127.0.0.1".to_owned(),
    };
    let resolved = plan
        .target
        .resolve(&base_for_urls, &|name| std::env::var(name).ok())
        .map_err(ConnectError::Resolve)?;
    let mut secrets = resolved.secrets.clone();
    let mut vars = plan.vars.clone();
    // The target's secret variables, then `--var` and `--secret-var`, which win.
    for (k, v) in resolved
        .secret_vars
        .iter()
        .chain(&plan.var_args)
        .chain(&plan.secret_args)
    {
        vars.insert(k.clone(), Value::String(v.clone()));
    }
    secrets.extend(plan.secret_args.iter().map(|(_, v)| v.clone()));
    let http = HttpSettings {
        ca_pem: resolved.ca_pem.clone(),
        identity_pem: resolved.identity_pem.clone(),
        ..plan.http.clone()
    };
    let started = match &plan.kind {
        TargetKind::External(url) => (url.clone(), plan.target.features.clone(), None),
        TargetKind::Sandbox(config) => start_sandbox(config.clone()).await?,
    };
    let method = resolved.auth.clone().absolute(started.0.as_str())?;
    connection(started, http, method, secrets, vars)
}

/// A connection once the server's address is known: the client, the credentials, and
/// the `auth` template variable among `vars`.
fn connection(
    (base_url, features, sandbox): Started,
    http: HttpSettings,
    method: ResolvedAuth,
    secrets: Vec<String>,
    mut vars: Map<String, Value>,
) -> Result<Connection, ConnectError> {
    let client = HttpClient::new(http)?;
    let redactor = Redactor::new(secrets);
    vars.insert("auth".to_owned(), auth_var(&method));
    let auth = Arc::new(Auth::new(
        method,
        client.reqwest().clone(),
        redactor.clone(),
    ));
    Ok(Connection {
        base_url,
        client,
        auth,
        redactor,
        capabilities: Capabilities::default(),
        features,
        vars,
        sandbox,
    })
}

impl Connection {
    /// Fetches the credentials (a refused client stops the run before any scenario),
    /// then reads the CapabilityStatement. A TLS failure stops the run; any other
    /// metadata failure is kept in [`Capabilities::error`] and the run goes on.
    pub async fn handshake(&mut self) -> Result<(), ConnectError> {
        self.auth.header().await?;
        self.capabilities = Capabilities::fetch(&self.client, &self.base_url).await;
        if let Some(MetadataError::NoAnswer(NoAnswer::Tls {
            detail,
            closed_after_handshake,
        })) = &self.capabilities.error
        {
            return Err(ConnectError::Tls {
                base_url: self.base_url.to_string(),
                detail: self.redactor.text(detail),
                closed_after_handshake: *closed_after_handshake,
            });
        }
        Ok(())
    }

    /// A connection to a sandbox started here, for tests and other front ends:
    /// no auth, the seed data's variables.
    pub async fn to_sandbox(config: SandboxConfig) -> Result<Connection, ConnectError> {
        let http = HttpSettings {
            default_headers: vec![("Accept".to_owned(), "application/fhir+json".to_owned())],
            ..HttpSettings::default()
        };
        let vars = sandbox::seed_vars()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        let started = start_sandbox(config).await?;
        let mut connection = connection(started, http, ResolvedAuth::None, Vec::new(), vars)?;
        connection.handshake().await?;
        Ok(connection)
    }

    /// Stops the sandbox, if there is one, waiting for it to finish.
    pub async fn stop_sandbox(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            sandbox.stop().await;
        }
    }
}

/// The `auth` template variable: how the target authenticates, without its secrets,
/// so scenarios that fetch tokens themselves use the target's token endpoint
/// (`{{ auth.token_url }}`, `null` when the target has none).
fn auth_var(method: &ResolvedAuth) -> Value {
    let (kind, token_url, client_id, scope) = match method {
        ResolvedAuth::None => ("none", None, None, None),
        ResolvedAuth::Bearer(_) => ("bearer", None, None, None),
        ResolvedAuth::ClientCredentials {
            token_url,
            client_id,
            scope,
            ..
        } => (
            "client_credentials",
            Some(token_url),
            Some(client_id),
            scope.as_ref(),
        ),
        ResolvedAuth::SmartBackend {
            token_url,
            client_id,
            scope,
            ..
        } => (
            "smart_backend",
            Some(token_url),
            Some(client_id),
            scope.as_ref(),
        ),
    };
    serde_json::json!({
        "type": kind,
        "token_url": token_url,
        "client_id": client_id,
        "scope": scope,
    })
}

type Started = (BaseUrl, BTreeMap<String, String>, Option<RunningSandbox>);

/// The sandbox on a free loopback port.
async fn start_sandbox(config: SandboxConfig) -> Result<Started, ConnectError> {
    let features = config.declared_features();
    let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let server = sandbox::start(config, loopback)
        .await
        .map_err(ConnectError::Sandbox)?;
    let base_url = BaseUrl::parse(server.base_url()).map_err(|e| {
        ConnectError::Sandbox(std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    })?;
    Ok((base_url, features, Some(server)))
}
