//! A step's request template, rendered with the scenario's variables: the
//! [`PreparedRequest`] that goes to the client (different from what went over the
//! wire, which is [`crate::http::Exchange::request`]).

use serde_json::{Map, Value};

use crate::http::{BaseUrl, PreparedRequest};
use crate::scenario::model::{BodySpec, FHIR_JSON, Request, Target};
use crate::template::{TemplateError, Templates, value_to_text};

/// Why a step's request could not be built: nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A template in `part` (`` `path` ``, ``query `name` ``, `body`, ...) failed.
    #[error("{part}: {source}")]
    Template {
        part: String,
        #[source]
        source: TemplateError,
    },
    #[error("`{url}` is not a valid URL: {detail}")]
    Url { url: String, detail: String },
    #[error("body: {0}")]
    Json(String),
}

fn in_part(part: impl Into<String>) -> impl FnOnce(TemplateError) -> PrepareError {
    let part = part.into();
    move |source| PrepareError::Template { part, source }
}

/// Renders `request` with `vars`: the URL (a path joined to `base_url`, or a whole
/// URL), the query, the headers and the body, with the body's content type unless the
/// step gives one.
pub fn prepare(
    request: &Request,
    vars: &Map<String, Value>,
    templates: &Templates,
    base_url: &BaseUrl,
) -> Result<PreparedRequest, PrepareError> {
    let mut url = match &request.target {
        Target::Url(u) => templates.render_string(u, vars).map_err(in_part("`url`"))?,
        Target::Path(p) => base_url.join(
            &templates
                .render_string(p, vars)
                .map_err(in_part("`path`"))?,
        ),
    };
    if !request.query.is_empty() {
        url = with_query(url, &request.query, vars, templates)?;
    }
    let mut headers = Vec::with_capacity(request.headers.len() + 1);
    for (name, value) in &request.headers {
        let value = templates
            .render_value(value, vars)
            .map_err(in_part(format!("header `{name}`")))?;
        headers.push((name.clone(), value_to_text(&value)));
    }
    let (body, default_type) = body(&request.body, vars, templates)?;
    // A length the step sets is replaced by the body's real one: a wrong one would
    // frame the request falsely, and the transcript shows what is sent.
    let length = body.as_ref().map_or(0, Vec::len).to_string();
    for (name, value) in &mut headers {
        if name.eq_ignore_ascii_case("content-length") {
            value.clone_from(&length);
        }
    }
    let has_content_type = headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if !has_content_type
        && body.is_some()
        && let Some(ct) = request.content_type.as_deref().or(default_type)
    {
        headers.push(("Content-Type".to_owned(), ct.to_owned()));
    }
    Ok(PreparedRequest {
        method: request.method.as_str().to_owned(),
        url,
        headers,
        body,
    })
}

/// `url` with the rendered query parameters appended: a list repeats the parameter,
/// null leaves it out.
fn with_query(
    url: String,
    query: &[(String, Value)],
    vars: &Map<String, Value>,
    templates: &Templates,
) -> Result<String, PrepareError> {
    let mut pairs = Vec::with_capacity(query.len());
    for (name, value) in query {
        let value = templates
            .render_value(value, vars)
            .map_err(in_part(format!("query `{name}`")))?;
        match value {
            Value::Array(items) => {
                pairs.extend(items.iter().map(|i| (name.clone(), value_to_text(i))))
            }
            Value::Null => {}
            other => pairs.push((name.clone(), value_to_text(&other))),
        }
    }
    let mut parsed = reqwest::Url::parse(&url).map_err(|e| PrepareError::Url {
        url: url.clone(),
        detail: e.to_string(),
    })?;
    parsed.query_pairs_mut().extend_pairs(pairs);
    Ok(parsed.to_string())
}

type Body = (Option<Vec<u8>>, Option<&'static str>);

/// The rendered body and the content type it goes with unless the step says otherwise.
fn body(
    spec: &BodySpec,
    vars: &Map<String, Value>,
    templates: &Templates,
) -> Result<Body, PrepareError> {
    Ok(match spec {
        BodySpec::None => (None, None),
        BodySpec::Json(doc) => {
            let doc = templates.render_value(doc, vars).map_err(in_part("body"))?;
            let bytes = serde_json::to_vec(&doc).map_err(|e| PrepareError::Json(e.to_string()))?;
            (Some(bytes), Some(FHIR_JSON))
        }
        BodySpec::Raw { text } => {
            let text = templates
                .render_string(text, vars)
                .map_err(in_part("body"))?;
            (Some(text.into_bytes()), None)
        }
        BodySpec::Form(fields) => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (name, value) in fields {
                let value = templates
                    .render_value(value, vars)
                    .map_err(in_part(format!("form `{name}`")))?;
                form.append_pair(name, &value_to_text(&value));
            }
            (
                Some(form.finish().into_bytes()),
                Some("application/x-www-form-urlencoded"),
            )
        }
    })
}
