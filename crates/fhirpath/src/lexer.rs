//! Tokens of FHIRPath source text, each with the byte offset where it starts.

use crate::ParseError;

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An identifier or keyword (`name`, `and`, `true`); `delimited` when it was
    /// written in backticks, so it is never a keyword.
    Ident {
        name: String,
        delimited: bool,
    },
    /// A string literal, escapes resolved.
    Str(String),
    /// A number as written (`12`, `1.50`).
    Num(String),
    /// `@2012-04-15`, `@2012-04-15T10:00Z`, `@T12:00`: the text after `@`.
    DateTime(String),
    /// `%name`, `%'quoted'`, `%\`delimited\``.
    Var(String),
    /// `$this`, `$index`, `$total`.
    Special(String),
    /// Operators and punctuation.
    Punct(&'static str),
    Eof,
}

/// A token and where it starts.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub offset: usize,
}

const PUNCT: [&str; 22] = [
    "<=", ">=", "!=", "!~", ".", "(", ")", "[", "]", "{", "}", ",", "+", "-", "*", "/", "&", "|",
    "<", ">", "=", "~",
];

fn err(offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        message: message.into(),
    }
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            i = src[i..].find('\n').map_or(bytes.len(), |n| i + n);
            continue;
        }
        if src[i..].starts_with("/*") {
            match src[i + 2..].find("*/") {
                Some(n) => i = i + 2 + n + 2,
                None => return Err(err(i, "expected '*/' to close the comment")),
            }
            continue;
        }
        let start = i;
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            Tok::Ident {
                name: src[start..i].to_string(),
                delimited: false,
            }
        } else if c == b'`' {
            let (s, end) = quoted(src, i, '`')?;
            i = end;
            Tok::Ident {
                name: s,
                delimited: true,
            }
        } else if c == b'\'' {
            let (s, end) = quoted(src, i, '\'')?;
            i = end;
            Tok::Str(s)
        } else if c.is_ascii_digit() {
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
            }
            Tok::Num(src[start..i].to_string())
        } else if c == b'@' {
            i = date_time_end(bytes, i + 1);
            if i == start + 1 {
                return Err(err(start, "expected a date, date-time or time after '@'"));
            }
            if bytes.get(start + 1) == Some(&b'T') && tz_end(bytes, i) != i {
                return Err(err(i, "a time literal cannot have a time zone"));
            }
            Tok::DateTime(src[start + 1..i].to_string())
        } else if c == b'%' {
            i += 1;
            match bytes.get(i) {
                Some(b'\'') => {
                    let (s, end) = quoted(src, i, '\'')?;
                    i = end;
                    Tok::Var(s)
                }
                Some(b'`') => {
                    let (s, end) = quoted(src, i, '`')?;
                    i = end;
                    Tok::Var(s)
                }
                Some(b) if b.is_ascii_alphabetic() || *b == b'_' => {
                    let s = i;
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
                    {
                        i += 1;
                    }
                    Tok::Var(src[s..i].to_string())
                }
                _ => return Err(err(start, "expected a variable name after '%'")),
            }
        } else if c == b'$' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let name = &src[start..i];
            match name {
                "$this" | "$index" | "$total" => Tok::Special(name.to_string()),
                _ => return Err(err(start, "expected $this, $index or $total")),
            }
        } else if let Some(p) = PUNCT.iter().find(|p| src[i..].starts_with(**p)) {
            i += p.len();
            Tok::Punct(p)
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(err(i, format!("unexpected character '{ch}'")));
        };
        out.push(Token { tok, offset: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        offset: src.len(),
    });
    Ok(out)
}

/// A quoted string or delimited identifier starting at `start` (the quote): its
/// text with escapes resolved, and the offset after the closing quote.
fn quoted(src: &str, start: usize, q: char) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((n, ch)) = chars.next() {
        let at = start + 1 + n;
        if ch == q {
            return Ok((out, at + 1));
        }
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some((_, e)) => match e {
                '\'' | '"' | '`' | '\\' | '/' => out.push(e),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let mut code = 0u32;
                    for _ in 0..4 {
                        match chars.next().and_then(|(_, h)| h.to_digit(16)) {
                            Some(d) => code = code * 16 + d,
                            None => return Err(err(at, "expected four hex digits after '\\u'")),
                        }
                    }
                    match char::from_u32(code) {
                        Some(c) => out.push(c),
                        None => return Err(err(at, "invalid unicode escape")),
                    }
                }
                other => return Err(err(at, format!("invalid escape '\\{other}'"))),
            },
            None => break,
        }
    }
    let what = if q == '`' { "identifier" } else { "string" };
    Err(err(start, format!("expected {q} to close the {what}")))
}

fn digits(b: &[u8], i: usize, n: usize) -> bool {
    i + n <= b.len() && b[i..i + n].iter().all(u8::is_ascii_digit)
}

/// The end of a date/time literal body starting at `i` (after `@`).
fn date_time_end(b: &[u8], mut i: usize) -> usize {
    if b.get(i) == Some(&b'T') {
        return time_end(b, i + 1).unwrap_or(i);
    }
    if !digits(b, i, 4) {
        return i;
    }
    i += 4;
    for _ in 0..2 {
        if b.get(i) == Some(&b'-') && digits(b, i + 1, 2) {
            i += 3;
        } else {
            break;
        }
    }
    if b.get(i) == Some(&b'T') {
        i += 1;
        if let Some(end) = time_end(b, i) {
            i = end;
        }
        i = tz_end(b, i);
    }
    i
}

fn time_end(b: &[u8], mut i: usize) -> Option<usize> {
    if !digits(b, i, 2) {
        return None;
    }
    i += 2;
    for _ in 0..2 {
        if b.get(i) == Some(&b':') && digits(b, i + 1, 2) {
            i += 3;
        } else {
            break;
        }
    }
    if b.get(i) == Some(&b'.') && digits(b, i + 1, 1) {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    Some(i)
}

fn tz_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'Z') => i + 1,
        Some(b'+' | b'-')
            if digits(b, i + 1, 2) && b.get(i + 3) == Some(&b':') && digits(b, i + 4, 2) =>
        {
            i + 6
        }
        _ => i,
    }
}
