//! `fhirconf init`: a starter target file from what a server says of itself. It reads
//! the CapabilityStatement (and the SMART configuration, when there is one) and writes
//! what it can infer; every input the suites need is listed, commented, with what it is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::http::{BaseUrl, HttpClient, PreparedRequest};

/// What the server answered, each `None` when it could not be read.
#[derive(Debug, Default)]
pub struct Advertised {
    pub metadata: Option<Value>,
    pub smart: Option<Value>,
}

/// Reads `{base}/metadata` and `{base}/.well-known/smart-configuration`.
pub async fn fetch(client: &HttpClient, base: &BaseUrl) -> Advertised {
    let get = |path: &str| PreparedRequest {
        method: "GET".to_owned(),
        url: base.join(path),
        headers: vec![("Accept".to_owned(), "application/json".to_owned())],
        body: None,
    };
    let json = |answer: Result<crate::http::Exchange, _>| match answer {
        Ok(ex) if ex.response.status == 200 => serde_json::from_slice(&ex.response.body).ok(),
        _ => None,
    };
    Advertised {
        metadata: json(client.send(get("metadata")).await),
        smart: json(client.send(get(".well-known/smart-configuration")).await),
    }
}

const OAUTH_URIS: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris";

/// The token endpoint: the SMART configuration's, else the CapabilityStatement's
/// `oauth-uris` extension.
fn token_url(ad: &Advertised) -> Option<String> {
    let smart = ad
        .smart
        .as_ref()
        .and_then(|s| s.get("token_endpoint"))
        .and_then(Value::as_str);
    let rests = ad
        .metadata
        .as_ref()
        .and_then(|m| m.get("rest"))
        .and_then(Value::as_array);
    let from_statement = rests.into_iter().flatten().find_map(|rest| {
        let ext = rest.pointer("/security/extension")?.as_array()?;
        let uris = ext
            .iter()
            .find(|e| e.get("url").and_then(Value::as_str) == Some(OAUTH_URIS))?;
        uris.get("extension")?.as_array()?.iter().find_map(|e| {
            (e.get("url").and_then(Value::as_str) == Some("token"))
                .then(|| e.get("valueUri").and_then(Value::as_str))
                .flatten()
        })
    });
    smart.or(from_statement).map(str::to_owned)
}

/// Whether any resource is declared `versioned-update` (If-Match is honoured).
fn versioned(ad: &Advertised) -> bool {
    let rests = ad
        .metadata
        .as_ref()
        .and_then(|m| m.get("rest"))
        .and_then(Value::as_array);
    rests.into_iter().flatten().any(|rest| {
        rest.get("resource")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|r| r.get("versioning").and_then(Value::as_str) == Some("versioned-update"))
    })
}

/// Whether the SMART configuration offers `private_key_jwt` (SMART Backend Services).
fn backend_services(ad: &Advertised) -> bool {
    ad.smart
        .as_ref()
        .and_then(|s| s.get("token_endpoint_auth_methods_supported"))
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|v| v.as_str() == Some("private_key_jwt")))
}

/// What each input of the built-in suites is (the README's table).
pub const INPUT_DOCS: &[(&str, &str)] = &[
    ("patient_id", "an existing Patient"),
    ("patient_id_2", "a second existing Patient"),
    ("location_id", "an existing Location"),
    (
        "practitioner_id",
        "an existing active, scheduleable Practitioner",
    ),
    (
        "practitioner_id_2",
        "a second existing active, scheduleable Practitioner",
    ),
    ("practitioner_inactive_id", "an inactive Practitioner"),
    (
        "practitioner_nonschedulable_id",
        "an active Practitioner that is not scheduleable",
    ),
    (
        "appointment_type_system",
        "a scheduleable appointment type's system (SNOMED)",
    ),
    (
        "appointment_type_code",
        "a scheduleable appointment type's code",
    ),
    (
        "appointment_type_internal_system",
        "a scheduleable INTERNAL appointment type's system",
    ),
    (
        "appointment_type_internal_code",
        "a scheduleable INTERNAL appointment type's code",
    ),
    (
        "appointment_type_unschedulable_system",
        "an appointment type that is not scheduleable: system",
    ),
    (
        "appointment_type_unschedulable_code",
        "an appointment type that is not scheduleable: code",
    ),
    (
        "reason_code_system",
        "an existing structured reason for visit: system",
    ),
    (
        "reason_code_code",
        "an existing structured reason for visit: code",
    ),
    (
        "ppr_issuer",
        "an identifier system (issuer) of the provider registry",
    ),
    ("ppr_issuer_2", "a second issuer of the provider registry"),
    (
        "ppr_shared_value",
        "an identifier value registered under both issuers, for two different practitioners",
    ),
    (
        "ppr_practitioner_id",
        "the practitioner of ppr_shared_value under ppr_issuer",
    ),
    (
        "ppr_practitioner_id_2",
        "the practitioner of ppr_shared_value under ppr_issuer_2",
    ),
    ("ppr_family", "a family name the registry search finds"),
    (
        "auth_client_id",
        "a client with every scope, for the auth scenarios' own tokens",
    ),
    (
        "auth_client_secret",
        "its secret (a secret_vars entry: from the environment)",
    ),
    (
        "auth_limited_client_id",
        "a client with only system/Patient.read",
    ),
    (
        "auth_limited_client_secret",
        "its secret (a secret_vars entry: from the environment)",
    ),
];

/// The starter target file: `inputs` maps each input the suites need to how many
/// scenarios need it.
pub fn starter_target(base: &BaseUrl, ad: &Advertised, inputs: &BTreeMap<String, usize>) -> String {
    let mut out = String::new();
    let server = ad
        .metadata
        .as_ref()
        .and_then(|m| m.pointer("/software/name"))
        .and_then(Value::as_str)
        .unwrap_or("the server");
    let _ = writeln!(
        out,
        "# A target for {server}, written by `fhirconf init` from what it advertises."
    );
    let _ = writeln!(
        out,
        "# Check every line; `fhirconf inputs --target THIS_FILE` says what is still unset."
    );
    if ad.metadata.is_none() {
        let _ = writeln!(
            out,
            "# Its CapabilityStatement ({}) could not be read: nothing was inferred.",
            base.join("metadata")
        );
    }
    let _ = writeln!(out, "base_url: {base}");
    let token = token_url(ad);
    auth_block(&mut out, ad, token.as_deref());
    let mut features = Vec::new();
    if token.is_some() {
        features
            .push("  auth: \"on\"   # a token endpoint is advertised: the auth scenarios apply");
    }
    if versioned(ad) {
        features.push("  versioning: true   # resources are declared versioned-update");
    }
    if features.is_empty() {
        let _ = writeln!(
            out,
            "features: {{}}   # e.g. double_booking: forbidden (see README, Targets)"
        );
    } else {
        let _ = writeln!(
            out,
            "features:   # also e.g. double_booking: forbidden (see README, Targets)\n{}",
            features.join("\n")
        );
    }
    let _ = writeln!(out, "vars:");
    let docs: BTreeMap<&str, &str> = INPUT_DOCS.iter().copied().collect();
    for (name, n) in inputs.iter().filter(|(n, _)| !n.ends_with("_secret")) {
        let what = docs
            .get(name.as_str())
            .copied()
            .unwrap_or("an input of the suites");
        let _ = writeln!(
            out,
            "  # {name}: \"\"   # {what} ({n} scenario{})",
            if *n == 1 { "" } else { "s" }
        );
    }
    let secrets: Vec<&String> = inputs.keys().filter(|n| n.ends_with("_secret")).collect();
    if !secrets.is_empty() {
        let _ = writeln!(
            out,
            "secret_vars:   # name: the environment variable holding the value"
        );
        for name in secrets {
            let _ = writeln!(out, "  # {name}: {}", name.to_ascii_uppercase());
        }
    }
    out
}

fn auth_block(out: &mut String, ad: &Advertised, token_url: Option<&str>) {
    let Some(token_url) = token_url else {
        let _ = writeln!(
            out,
            "# auth: no token endpoint is advertised; see README, Targets, for bearer tokens"
        );
        return;
    };
    let _ = writeln!(out, "auth:");
    if backend_services(ad) {
        let _ = writeln!(
            out,
            "  type: smart_backend   # the server offers private_key_jwt"
        );
        let _ = writeln!(out, "  token_url: {token_url}");
        let _ = writeln!(out, "  client_id: CHANGE-ME");
        let _ = writeln!(out, "  algorithm: ES384");
        let _ = writeln!(out, "  kid: CHANGE-ME");
        let _ = writeln!(out, "  private_key_env: FHIRCONF_PRIVATE_KEY");
    } else {
        let _ = writeln!(out, "  type: client_credentials");
        let _ = writeln!(out, "  token_url: {token_url}");
        let _ = writeln!(out, "  client_id: CHANGE-ME");
        let _ = writeln!(out, "  client_secret_env: FHIRCONF_CLIENT_SECRET");
    }
}
