//! An HTTP client for one built-in sandbox started in the test process, as a black-box
//! client sees it. `sandbox.rs` (the rule probes, which return a `Check`) and
//! `sandbox_generic.rs` (which asserts) share it; each adds its own assertions on
//! [`Resp`] through a trait of its own.

use std::collections::HashMap;
use std::net::SocketAddr;

use fhirconf::sandbox::{self, RunningSandbox, SandboxConfig};
use reqwest::header::HeaderMap;
use reqwest::{Client, Method};
use serde_json::Value;

/// One answer, read whole.
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    /// The body as JSON (`null` when it is not).
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The status and the first 400 characters of the body, for a failure message.
    pub fn describe(&self) -> String {
        let text: String = self.text.chars().take(400).collect();
        format!("{} {text}", self.status)
    }

    /// The URL of a Bundle's link with this relation.
    pub fn link(&self, relation: &str) -> Option<String> {
        self.body["link"]
            .as_array()?
            .iter()
            .find(|l| l["relation"] == relation)
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned)
    }
}

/// A sandbox on a free loopback port, with its seed variables and, once set, a token
/// that every request sends unless told not to.
pub struct Sbx {
    pub server: RunningSandbox,
    pub http: Client,
    vars: HashMap<&'static str, String>,
    pub token: Option<String>,
}

/// A sandbox configuration with these features and defects.
pub fn config(features: &[(&str, &str)], defects: &[&str]) -> SandboxConfig {
    SandboxConfig {
        features: features
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        defects: defects.iter().map(|d| d.to_string()).collect(),
        ..SandboxConfig::default()
    }
}

impl Sbx {
    /// Starts a sandbox; no token is fetched, even with `auth=on`.
    pub async fn launch(config: SandboxConfig) -> Self {
        let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = sandbox::start(config, bind).await.expect("sandbox starts");
        Sbx {
            server,
            http: Client::new(),
            vars: sandbox::seed_vars().into_iter().collect(),
            token: None,
        }
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }

    /// A seed variable (`patient_id`, `auth_client_id`, ...).
    pub fn var(&self, name: &str) -> String {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("no seed var {name}"))
            .clone()
    }

    /// `path` joined to the base URL; an absolute URL (a Bundle link) as it is.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.server.base_url())
        }
    }

    /// A token from `POST /auth/token` for this client (auth=on).
    pub async fn token_for(&self, id: &str, secret: &str, scope: Option<&str>) -> String {
        let mut form =
            format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
        if let Some(scope) = scope {
            form.push_str(&format!(
                "&scope={}",
                scope.replace(' ', "+").replace('/', "%2F")
            ));
        }
        let r = self
            .send_as(
                Method::POST,
                "/auth/token",
                &[("content-type", "application/x-www-form-urlencoded")],
                Some(form.into_bytes()),
                false,
            )
            .await;
        assert_eq!(r.status, 200, "token: {}", r.describe());
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// One request; the token goes with it when `with_token` and one is set.
    pub async fn send_as(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        with_token: bool,
    ) -> Resp {
        let mut req = self.http.request(method, self.url(path));
        if with_token && let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let response = req.send().await.expect("the sandbox answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    /// One request with the token, if one is set.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        self.send_as(method, path, headers, body, true).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, &[], None).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send(Method::GET, path, headers, None).await
    }

    /// A FHIR JSON body with `method`, plus `extra` headers.
    pub async fn write(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut headers = vec![("content-type", "application/fhir+json")];
        headers.extend_from_slice(extra);
        self.send(method, path, &headers, Some(body.to_string().into_bytes()))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.write(Method::POST, path, body, &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.write(Method::PUT, path, body, &[]).await
    }

    pub async fn put_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.write(Method::PUT, path, body, headers).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, &[], None).await
    }
}
