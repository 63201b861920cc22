//! Errors that point into a file: `file:line:col`, what was found, what was expected.
//!
//! ```text
//! error: unknown field `stauts`, expected one of status, headers, json, ...
//!   --> scenarios/demo.yaml:7:7
//!    |
//!  7 |       stauts: 200
//!    |       ^
//!    = help: did you mean `status`?
//! ```

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: u64,
    pub column: u64,
    pub message: String,
    pub help: Option<String>,
    /// The offending source line, when known.
    pub source_line: Option<String>,
}

impl Diagnostic {
    pub fn file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            help: None,
            source_line: None,
        }
    }

    /// A problem with the file's content as a whole (too large, not text): reported at
    /// its first position, so every content error has a `file:line:col`.
    pub fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            line: 1,
            column: 1,
            ..Diagnostic::file(file, message)
        }
    }

    /// The `line:column` (1-based, in characters) of byte `offset` of `text`.
    pub fn position(text: &str, offset: usize) -> (u64, u64) {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() as u64 + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
        (line, column)
    }

    pub fn at(
        file: impl Into<String>,
        text: &str,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> Self {
        let source_line = (line > 0)
            .then(|| {
                text.lines()
                    .nth((line - 1) as usize)
                    .map(|l| l.chars().take(200).collect())
            })
            .flatten();
        Diagnostic {
            file: file.into(),
            line,
            column,
            message: message.into(),
            help: None,
            source_line,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col`, or the file alone.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        write!(f, "  --> {}", self.location())?;
        if let Some(src) = &self.source_line {
            let gutter = self.line.to_string().len();
            let pad = " ".repeat(gutter);
            let caret_at = src
                .chars()
                .take(self.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' });
            write!(
                f,
                "\n{pad} |\n{} | {src}\n{pad} | {}^",
                self.line,
                caret_at.collect::<String>()
            )?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// The closest candidate to a misspelled name, if one is close enough to suggest.
pub fn did_you_mean<'a>(
    found: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(found, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The whole `source()` chain of an error on one line: reqwest's own message alone
/// rarely says what went wrong.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rustc_style_with_caret_and_help() {
        let text = "name: x\nsteps:\n  - stauts: 1\n";
        let d = Diagnostic::at("a.yaml", text, 3, 5, "unknown field `stauts`")
            .with_help("did you mean `status`?");
        assert_eq!(
            d.to_string(),
            "error: unknown field `stauts`\n  --> a.yaml:3:5\n  |\n3 |   - stauts: 1\n  |     ^\n  = help: did you mean `status`?"
        );
    }

    #[test]
    fn whole_file_errors_have_no_snippet() {
        assert_eq!(
            Diagnostic::file("b.yaml", "not UTF-8").to_string(),
            "error: not UTF-8\n  --> b.yaml"
        );
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(
            did_you_mean("stauts", ["status", "headers", "json"]),
            Some("status")
        );
        assert_eq!(
            did_you_mean("json_subst", ["json", "json_subset"]),
            Some("json_subset")
        );
        assert_eq!(did_you_mean("zzz", ["status", "headers"]), None);
    }
}
