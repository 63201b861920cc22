//! Secrets never reach output: every string bound for the terminal or a report goes
//! through a [`Redactor`] first.

use std::sync::{Arc, RwLock};

/// Headers whose values are always hidden.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
pub const MASK: &str = "[redacted]";

/// Secrets shorter than this cannot be masked without masking ordinary text
/// everywhere: configured ones are refused at load ([`too_short`]).
pub const MIN_SECRET_LEN: usize = 4;

/// Why a configured secret cannot be used: too short to be masked safely.
pub fn too_short(secret: &str) -> bool {
    secret.chars().count() < MIN_SECRET_LEN
}

/// The forms a secret takes in what the harness writes or a server echoes: percent-
/// encoded (a query or form value, `+` or `%20` for a space), JSON-escaped (inside a
/// body), HTML- and XML-escaped (a page or report echoing it), and base64 (standard
/// and URL-safe, as Basic auth and JWTs write). Each form that differs from the
/// secret itself.
pub fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let json = |text: &str| {
        serde_json::to_string(text)
            .map(|q| q[1..q.len() - 1].to_owned())
            .unwrap_or_default()
    };
    let mut forms = vec![
        form.replace('+', "%20"),
        form,
        json(secret),
        // A JSON body shown inside a JSON document (an echo, a transcript of one).
        json(&json(secret)),
    ];
    // The ways HTML and XML writers escape quotes (minijinja also escapes `/`).
    for (quot, apos, slash) in [
        ("&quot;", "&#x27;", Some("&#x2f;")),
        ("&quot;", "&apos;", None),
        ("&#34;", "&#39;", None),
    ] {
        forms.push(markup_escape(secret, quot, apos, slash));
    }
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        forms.push(engine.encode(secret));
    }
    forms.retain(|f| f != secret && !f.is_empty());
    forms.sort();
    forms.dedup();
    forms
}

/// `text` with `&`, `<` and `>` escaped, and `"`, `'` and (if given) `/` as given.
fn markup_escape(text: &str, quot: &str, apos: &str, slash: Option<&str>) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match (c, slash) {
            ('&', _) => out.push_str("&amp;"),
            ('<', _) => out.push_str("&lt;"),
            ('>', _) => out.push_str("&gt;"),
            ('"', _) => out.push_str(quot),
            ('\'', _) => out.push_str(apos),
            ('/', Some(slash)) => out.push_str(slash),
            _ => out.push(c),
        }
    }
    out
}

/// `at`, or the nearest char boundary before it, within `text`.
pub(crate) fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Shared by everything that writes output: clones see secrets added later (a token
/// fetched mid-run is masked in every report from then on).
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Arc<RwLock<Vec<String>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The count, never the values.
        let n = self.secrets.read().map_or(0, |s| s.len());
        write!(f, "Redactor({n} secrets)")
    }
}

impl Redactor {
    /// Values shorter than 4 characters are not treated as secrets (they would mask
    /// ordinary text everywhere).
    pub fn new(secrets: Vec<String>) -> Self {
        let r = Redactor::default();
        for s in secrets {
            r.add(s);
        }
        r
    }

    /// Masks `secret` from now on, and every form the harness or a server may write
    /// it in ([`encodings`]).
    pub fn add(&self, secret: String) {
        if secret.len() < MIN_SECRET_LEN {
            return;
        }
        // Known already (the same token on every request): no encoding, no write lock.
        if self
            .secrets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&secret)
        {
            return;
        }
        let mut forms = encodings(&secret);
        forms.push(secret);
        let mut secrets = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        for form in forms {
            if form.len() >= MIN_SECRET_LEN && !secrets.contains(&form) {
                secrets.push(form);
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Masks the value of a credential header a request carries (Authorization,
    /// Cookie, ...) and its parts (the token after the scheme, each cookie value), so a
    /// server that echoes one back does not leak it.
    pub fn add_header(&self, name: &str, value: &str) {
        if !SECRET_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return;
        }
        self.add(value.trim().to_owned());
        if let Some((_, credentials)) = value.trim().split_once(' ') {
            self.add(credentials.trim().to_owned());
        }
        for pair in value.split(';') {
            if let Some((_, v)) = pair.split_once('=') {
                self.add(v.trim().to_owned());
            }
        }
    }

    pub fn text(&self, text: &str) -> String {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_owned();
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }

    /// The length of the longest secret (0 when there is none).
    pub fn longest(&self) -> usize {
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        secrets.first().map_or(0, String::len)
    }

    /// Where to cut `text` at `limit` bytes or before, on a char boundary and never
    /// inside a secret, so the kept part can be masked whole. `text` should run at
    /// least [`longest`](Self::longest) bytes past `limit` for a secret that starts
    /// before the limit to be seen.
    pub fn cut_before_secrets(&self, text: &str, limit: usize) -> usize {
        let mut end = floor_boundary(text, limit);
        let secrets = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        'again: loop {
            for s in secrets.iter() {
                let from = floor_boundary(text, end.saturating_sub(s.len() - 1));
                let to = floor_boundary(text, end + s.len() - 1);
                if let Some((at, _)) = text[from..to]
                    .match_indices(s.as_str())
                    .find(|(at, _)| from + at < end)
                {
                    // Moving left only, so this ends.
                    end = from + at;
                    continue 'again;
                }
            }
            return end;
        }
    }

    pub fn header(&self, name: &str, value: &str) -> String {
        if SECRET_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            MASK.to_owned()
        } else {
            self.text(value)
        }
    }

    pub fn value(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.value(v)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (self.text(k), self.value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_longest_secret_first_and_ignores_tiny_values() {
        let r = Redactor::new(vec!["abcd".into(), "abcdefgh".into(), "x".into()]);
        assert_eq!(
            r.text("k=abcdefgh; j=abcd; x"),
            "k=[redacted]; j=[redacted]; x"
        );
        assert_eq!(r.header("Cookie", "a=b"), MASK);
        assert_eq!(r.header("Accept", "abcd"), MASK);
        assert_eq!(
            r.value(&serde_json::json!({"t": ["abcd"]})),
            serde_json::json!({"t": [MASK]})
        );
        let clone = r.clone();
        r.add("late-token".into());
        assert_eq!(clone.text("a late-token"), "a [redacted]");
        r.add_header("Cookie", "sid=cookie-1234; theme=dark");
        r.add_header("Authorization", "Basic dXNlcjpwYXNz");
        r.add_header("Accept", "text/plain-secretish");
        assert_eq!(
            r.text("sid=cookie-1234 dXNlcjpwYXNz text/plain-secretish dark"),
            "sid=[redacted] [redacted] text/plain-secretish [redacted]"
        );
    }
}

#[cfg(test)]
mod encoding_tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_masked() {
        let r = Redactor::new(vec!["p@ss w/\"ord\"&<x>".to_owned()]);
        for shown in [
            "p%40ss+w%2F%22ord%22%26%3Cx%3E",
            "p%40ss%20w%2F%22ord%22%26%3Cx%3E",
            "p@ss w/\\\"ord\\\"&<x>",
            "p@ss w&#x2f;&quot;ord&quot;&amp;&lt;x&gt;",
            "p@ss w/&quot;ord&quot;&amp;&lt;x&gt;",
            "cEBzcyB3LyJvcmQiJjx4Pg==",
        ] {
            assert_eq!(r.text(&format!("[{shown}]")), "[[redacted]]", "{shown}");
        }
        assert!(too_short("abc") && !too_short("abcd"));
    }
}
