//! Secrets never reach output: every string bound for the terminal or a report goes
//! through a [`Redactor`] first.

/// Headers whose values are always hidden.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];
pub const MASK: &str = "[redacted]";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Values shorter than 4 characters are not treated as secrets (they would mask
    /// ordinary text everywhere).
    pub fn new(mut secrets: Vec<String>) -> Self {
        secrets.retain(|s| s.len() >= 4);
        // Longest first, so a secret that contains another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
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
    }
}
