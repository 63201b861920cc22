//! XML character data: references, attribute-value normalisation, line ends, and
//! escaping for the XHTML narrative written back out.

use std::borrow::Cow;

/// What a reference (`lt`, `#38`, `#x26`, the text between `&` and `;`) stands
/// for. FHIR XML has no DTD, so only the five predefined entities exist.
pub(crate) fn resolve_reference(name: &str) -> Result<char, String> {
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse::<u32>().ok()
            } else {
                return Err(format!(
                    "unknown entity reference '&{name};' (FHIR XML has no DTD: only &lt; &gt; &amp; &quot; &apos; and character references)"
                ));
            };
            // A leading sign is accepted by from_str_radix/parse but not by XML.
            let digits_only = name
                .trim_start_matches("#x")
                .trim_start_matches('#')
                .bytes()
                .all(|b| b.is_ascii_hexdigit());
            match code.filter(|_| digits_only).and_then(char::from_u32) {
                Some(c) if is_xml_char(c) => c,
                _ => return Err(format!("invalid character reference '&{name};'")),
            }
        }
    };
    Ok(c)
}

/// XML 1.0 `Char`: what a character reference may stand for.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The value of an attribute as written between its quotes: references decoded and,
/// as XML requires, each literal tab, line end (`\r\n` counting as one) or newline
/// turned into a space (a `&#10;` stays a newline). On error, the byte offset in
/// `raw` and the message.
pub(crate) fn attribute_value(raw: &str) -> Result<Cow<'_, str>, (usize, String)> {
    if !raw.contains(['&', '<', '\t', '\n', '\r']) {
        return Ok(Cow::Borrowed(raw));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let at = raw.len() - rest.len() + i;
        match rest.as_bytes()[i] {
            b'&' => {
                let Some(end) = rest[i..].find(';') else {
                    return Err((at, "'&' not followed by a reference ending in ';'".into()));
                };
                let name = &rest[i + 1..i + end];
                out.push(resolve_reference(name).map_err(|m| (at, m))?);
                rest = &rest[i + end + 1..];
                continue;
            }
            b'<' => return Err((at, "'<' is not allowed in an attribute value".into())),
            b'\r' if rest.as_bytes().get(i + 1) == Some(&b'\n') => {
                out.push(' ');
                rest = &rest[i + 2..];
                continue;
            }
            _ => out.push(' '),
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Character data as XML hands it on: `\r\n` and a lone `\r` become `\n`.
pub(crate) fn push_text(out: &mut String, raw: &str) {
    if !raw.contains('\r') {
        out.push_str(raw);
        return;
    }
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
}

/// Text re-escaped for XHTML element content.
pub(crate) fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// Text re-escaped for a double-quoted XHTML attribute value. Tabs and newlines
/// that came from character references stay characters references, so that reading
/// the result back gives the same value.
pub(crate) fn escape_attribute(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `src`.
pub(crate) fn line_column(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_decode() {
        assert_eq!(
            attribute_value("a &amp; b &gt; c &lt;&quot;&apos;").unwrap(),
            "a & b > c <\"'"
        );
        assert_eq!(
            attribute_value("&#233;&#xE9;&#x1F600;").unwrap(),
            "éé\u{1F600}"
        );
        assert_eq!(attribute_value("plain").unwrap(), "plain");
        assert!(matches!(
            attribute_value("plain").unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn bad_references_are_errors_with_their_offset() {
        assert_eq!(attribute_value("ab&nbsp;").unwrap_err().0, 2);
        assert!(attribute_value("a & b").is_err());
        assert!(attribute_value("&#0;").is_err());
        assert!(attribute_value("&#xD800;").is_err());
        assert!(attribute_value("&#-5;").is_err());
        assert!(attribute_value("&#x+5;").is_err());
        assert!(attribute_value("&#;").is_err());
        assert!(attribute_value("a<b").is_err());
    }

    #[test]
    fn attribute_whitespace_is_normalised_but_references_are_kept() {
        assert_eq!(attribute_value("a\r\nb\nc\td\re").unwrap(), "a b c d e");
        assert_eq!(attribute_value("a&#10;b&#9;c").unwrap(), "a\nb\tc");
    }

    #[test]
    fn text_line_ends() {
        let mut s = String::new();
        push_text(&mut s, "a\r\nb\rc\nd");
        assert_eq!(s, "a\nb\nc\nd");
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        escape_text(&mut s, "a<b>&\"c\"");
        assert_eq!(s, "a&lt;b&gt;&amp;\"c\"");
        let mut s = String::new();
        escape_attribute(&mut s, "a<\"&\n");
        assert_eq!(s, "a&lt;&quot;&amp;&#10;");
    }

    #[test]
    fn positions_are_one_based_in_characters() {
        let src = "ab\ncdé\nf";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 3), (2, 1));
        assert_eq!(line_column(src, 7), (2, 4));
        assert_eq!(line_column(src, 8), (3, 1));
        assert_eq!(line_column(src, 6), (2, 3), "inside é: its start");
        assert_eq!(line_column(src, 999), (3, 2));
    }
}
