//! What the target declares: interactions from its CapabilityStatement, features from
//! the target settings. A scenario whose `requires` is not met is skipped, with the
//! reason.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::http::{BaseUrl, HttpClient, NoAnswer, PreparedRequest};
use crate::record::ServerInfo;
use crate::scenario::model::Requirement;

#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    /// `(resource, interaction)` pairs the CapabilityStatement declares.
    pub interactions: BTreeSet<(String, String)>,
    /// Its `format`s, as written (`json`, `application/fhir+xml`...).
    pub formats: Vec<String>,
    /// Why `/metadata` could not be used; then no interaction counts as declared.
    pub error: Option<MetadataError>,
    /// The server's software and FHIR version, for the run record.
    pub server: Option<ServerInfo>,
    /// The statement itself, which the capability suite is generated from.
    pub statement: Option<std::sync::Arc<Value>>,
}

/// Why the CapabilityStatement could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MetadataError {
    #[error("{0}")]
    NoAnswer(NoAnswer),
    #[error("GET /metadata answered {0}")]
    Status(u16),
    #[error("the /metadata body is not JSON: {0}")]
    NotJson(String),
    #[error("the /metadata body is not a CapabilityStatement")]
    NotAStatement,
}

impl Capabilities {
    pub fn from_statement(doc: &Value) -> Result<Self, MetadataError> {
        if doc.get("resourceType").and_then(Value::as_str) != Some("CapabilityStatement") {
            return Err(MetadataError::NotAStatement);
        }
        let mut interactions = BTreeSet::new();
        let rests = doc
            .get("rest")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for rest in rests
            .iter()
            .filter(|r| r.get("mode").and_then(Value::as_str) != Some("client"))
        {
            for res in rest
                .get("resource")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let Some(ty) = res.get("type").and_then(Value::as_str) else {
                    continue;
                };
                for i in res
                    .get("interaction")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    if let Some(code) = i.get("code").and_then(Value::as_str) {
                        interactions.insert((ty.to_owned(), code.to_owned()));
                    }
                }
            }
        }
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let software = doc.get("software");
        let server = ServerInfo {
            software_name: text(software.and_then(|s| s.get("name"))),
            software_version: text(software.and_then(|s| s.get("version"))),
            fhir_version: text(doc.get("fhirVersion")),
        };
        let formats = doc
            .get("format")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Capabilities {
            interactions,
            formats,
            error: None,
            server: Some(server),
            statement: None,
        })
    }

    /// Reads `{base}/metadata` once; failure is recorded, not fatal.
    pub async fn fetch(client: &HttpClient, base_url: &BaseUrl) -> Self {
        let request = PreparedRequest {
            method: "GET".to_owned(),
            url: base_url.join("metadata"),
            headers: vec![("Accept".to_owned(), "application/fhir+json".to_owned())],
            body: None,
        };
        let outcome = match client.send(request).await {
            Err((_, why)) => Err(MetadataError::NoAnswer(why)),
            Ok(ex) if ex.response.status != 200 => Err(MetadataError::Status(ex.response.status)),
            Ok(ex) => serde_json::from_slice::<Value>(&ex.response.body)
                .map_err(|e| MetadataError::NotJson(e.to_string()))
                .and_then(|doc| {
                    let mut caps = Self::from_statement(&doc)?;
                    caps.statement = Some(std::sync::Arc::new(doc));
                    Ok(caps)
                }),
        };
        outcome.unwrap_or_else(|e| Capabilities {
            interactions: BTreeSet::new(),
            formats: Vec::new(),
            error: Some(e),
            server: None,
            statement: None,
        })
    }

    /// Why `req` is not met, or `None` when it is.
    pub fn unmet(&self, req: &Requirement, features: &BTreeMap<String, String>) -> Option<String> {
        match req {
            Requirement::Interaction {
                resource,
                interaction,
            } => {
                if self
                    .interactions
                    .contains(&(resource.clone(), interaction.clone()))
                {
                    return None;
                }
                Some(match &self.error {
                    Some(e) => format!("{req} cannot be confirmed: {e}"),
                    None => format!("{req} not in CapabilityStatement"),
                })
            }
            // A format (`format=xml`) is the CapabilityStatement's to declare, unless
            // the target says.
            Requirement::Feature {
                name,
                value: Some(want),
            } if name == "format" && !features.contains_key(name) => {
                let declared = self.formats.iter().any(|f| {
                    let f = f
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase();
                    f == *want
                        || f.ends_with(&format!("+{want}"))
                        || f.ends_with(&format!("/{want}"))
                });
                if declared {
                    return None;
                }
                Some(match &self.error {
                    Some(e) => format!("{req} cannot be confirmed: {e}"),
                    None => format!(
                        "{req} not in CapabilityStatement (format: {})",
                        if self.formats.is_empty() {
                            "none".to_owned()
                        } else {
                            self.formats.join(", ")
                        }
                    ),
                })
            }
            Requirement::Feature { name, value } => match (features.get(name), value) {
                (None, _) => Some(format!(
                    "needs feature {req}, which the target does not declare"
                )),
                (Some(have), Some(want)) if have != want => Some(format!(
                    "needs feature {req}; the target declares {name}={have}"
                )),
                (Some(have), None) if matches!(have.as_str(), "false" | "off" | "no" | "0") => {
                    Some(format!(
                        "needs feature {name}; the target declares {name}={have}"
                    ))
                }
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_interactions_and_judges_requirements() {
        let caps = Capabilities::from_statement(
            &json!({"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
            {"type": "Appointment", "interaction": [{"code": "read"}, {"code": "update"}]}]}]}),
        )
        .unwrap();
        let features = BTreeMap::from([
            ("double_booking".to_owned(), "allowed".to_owned()),
            ("versioning".to_owned(), "false".to_owned()),
        ]);
        let interaction = |r: &str, i: &str| Requirement::Interaction {
            resource: r.into(),
            interaction: i.into(),
        };
        let feature = |n: &str, v: Option<&str>| Requirement::Feature {
            name: n.into(),
            value: v.map(Into::into),
        };
        assert_eq!(
            caps.unmet(&interaction("Appointment", "update"), &features),
            None
        );
        assert_eq!(
            caps.unmet(&interaction("Appointment", "create"), &features)
                .as_deref(),
            Some("Appointment.create not in CapabilityStatement")
        );
        assert_eq!(
            caps.unmet(&feature("double_booking", Some("allowed")), &features),
            None
        );
        assert_eq!(
            caps.unmet(&feature("double_booking", Some("forbidden")), &features)
                .as_deref(),
            Some(
                "needs feature double_booking=forbidden; the target declares double_booking=allowed"
            )
        );
        assert!(
            caps.unmet(&feature("versioning", None), &features)
                .is_some()
        );
        assert!(
            caps.unmet(&feature("auth", None), &features)
                .unwrap()
                .contains("does not declare")
        );
        assert!(Capabilities::from_statement(&json!({"resourceType": "Patient"})).is_err());
    }

    #[test]
    fn keeps_software_and_fhir_version_and_leaves_missing_ones_out() {
        let caps = Capabilities::from_statement(&json!({"resourceType": "CapabilityStatement",
            "software": {"name": "Acme FHIR", "version": "7.2"}, "fhirVersion": "4.0.1"}))
        .unwrap();
        assert_eq!(
            caps.server,
            Some(ServerInfo {
                software_name: Some("Acme FHIR".into()),
                software_version: Some("7.2".into()),
                fhir_version: Some("4.0.1".into()),
            })
        );
        let caps = Capabilities::from_statement(&json!({"resourceType": "CapabilityStatement",
            "software": {"name": "Acme FHIR"}}))
        .unwrap();
        let server = caps.server.unwrap();
        assert_eq!(server.software_version, None);
        assert_eq!(server.fhir_version, None);
        assert_eq!(
            server.to_string(),
            "Acme FHIR (version not stated) (FHIR version not stated)"
        );
    }

    #[test]
    fn a_format_requirement_reads_the_statement_s_formats() {
        let caps = Capabilities::from_statement(&json!({
            "resourceType": "CapabilityStatement",
            "format": ["json", "application/fhir+json"]
        }))
        .unwrap();
        let none = BTreeMap::new();
        let req = |v: &str| Requirement::Feature {
            name: "format".into(),
            value: Some(v.into()),
        };
        assert_eq!(caps.unmet(&req("json"), &none), None);
        assert_eq!(
            caps.unmet(&req("xml"), &none).as_deref(),
            Some("format=xml not in CapabilityStatement (format: json, application/fhir+json)")
        );
        let mime = Capabilities::from_statement(&json!({
            "resourceType": "CapabilityStatement",
            "format": ["application/fhir+xml; charset=utf-8"]
        }))
        .unwrap();
        assert_eq!(mime.unmet(&req("xml"), &none), None);
        // The target may say otherwise.
        let said: BTreeMap<String, String> = [("format".to_owned(), "xml".to_owned())].into();
        assert_eq!(caps.unmet(&req("xml"), &said), None);
    }
}
