//! `htmlChecks()`: the narrative rules of FHIR R4 (txt-1): a well-formed XHTML
//! `<div>` in the XHTML namespace, with only the basic formatting elements and their
//! attributes: no scripts, forms, frames, objects, or event-handler attributes, and
//! no `javascript:` links.

/// Elements FHIR narrative allows (HTML 4 chapters 7-11 and 15, links, images).
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "b",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "samp",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
];

/// Attributes allowed on any element.
const COMMON_ATTRS: &[&str] = &[
    "id",
    "class",
    "style",
    "title",
    "lang",
    "xml:lang",
    "dir",
    "xmlns",
    "accesskey",
    "tabindex",
];

/// Attributes allowed on specific elements.
fn element_attr_ok(el: &str, attr: &str) -> bool {
    match el {
        "a" => matches!(
            attr,
            "href" | "name" | "rel" | "rev" | "charset" | "hreflang" | "type" | "shape" | "coords"
        ),
        "img" => matches!(
            attr,
            "src"
                | "alt"
                | "width"
                | "height"
                | "longdesc"
                | "border"
                | "hspace"
                | "vspace"
                | "align"
                | "usemap"
                | "ismap"
        ),
        "table" => matches!(
            attr,
            "summary"
                | "width"
                | "border"
                | "frame"
                | "rules"
                | "cellspacing"
                | "cellpadding"
                | "align"
                | "bgcolor"
        ),
        "td" | "th" => matches!(
            attr,
            "abbr"
                | "axis"
                | "headers"
                | "scope"
                | "rowspan"
                | "colspan"
                | "align"
                | "char"
                | "charoff"
                | "valign"
                | "nowrap"
                | "bgcolor"
                | "width"
                | "height"
        ),
        "tr" | "tbody" | "thead" | "tfoot" => {
            matches!(attr, "align" | "char" | "charoff" | "valign" | "bgcolor")
        }
        "col" | "colgroup" => matches!(
            attr,
            "span" | "width" | "align" | "char" | "charoff" | "valign"
        ),
        "ol" => matches!(attr, "start" | "type" | "compact"),
        "ul" => matches!(attr, "type" | "compact"),
        "li" => matches!(attr, "value" | "type"),
        "q" | "blockquote" | "del" | "ins" => matches!(attr, "cite" | "datetime"),
        "p" | "div" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "caption" => attr == "align",
        "hr" => matches!(attr, "align" | "noshade" | "size" | "width"),
        "br" => attr == "clear",
        "pre" => attr == "width",
        _ => false,
    }
}

/// Checks `xhtml`; `Err` says what is wrong.
pub(crate) fn check(xhtml: &str) -> Result<(), String> {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = xhtml.trim_start();
    // An XML declaration is allowed before the div.
    if rest.starts_with("<?xml") {
        let end = rest.find("?>").ok_or("unterminated XML declaration")?;
        rest = rest[end + 2..].trim_start();
    }
    let mut seen_root = false;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or("unterminated comment")?;
            rest = &after[end + 3..];
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            return Err("DOCTYPE, CDATA and processing instructions are not allowed".into());
        }
        if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or("unterminated end tag")?;
            let name = after[..end].trim();
            match stack.pop() {
                Some(open) if open == name => {}
                Some(open) => return Err(format!("</{name}> closes <{open}>")),
                None => return Err(format!("</{name}> without a start tag")),
            }
            rest = &after[end + 1..];
            if stack.is_empty() {
                if !rest.trim().is_empty() {
                    return Err("content after the root element".into());
                }
                return Ok(());
            }
            continue;
        }
        if let Some(after) = rest.strip_prefix('<') {
            let (name, attrs, self_closing, remaining) = start_tag(after)?;
            if !seen_root {
                if name != "div" {
                    return Err(format!("the root element is <{name}>, not <div>"));
                }
                if !attrs
                    .iter()
                    .any(|(k, v)| k == "xmlns" && v == "http://www.w3.org/1999/xhtml")
                {
                    return Err("the div is not in the XHTML namespace".into());
                }
                seen_root = true;
            } else if stack.is_empty() {
                return Err("more than one root element".into());
            }
            if !ELEMENTS.contains(&name.as_str()) {
                return Err(format!("the element <{name}> is not allowed in narrative"));
            }
            for (k, v) in &attrs {
                let lower = k.to_ascii_lowercase();
                if lower.starts_with("on") {
                    return Err(format!("the event attribute {k} is not allowed"));
                }
                if !(COMMON_ATTRS.contains(&k.as_str())
                    || element_attr_ok(&name, k)
                    || k.starts_with("xmlns:"))
                {
                    return Err(format!("the attribute {k} is not allowed on <{name}>"));
                }
                let value = v.trim().to_ascii_lowercase();
                if (k == "href" || k == "src")
                    && (value.starts_with("javascript:") || value.starts_with("vbscript:"))
                {
                    return Err(format!("a script URL in {k}"));
                }
            }
            rest = remaining;
            if self_closing {
                if stack.is_empty() {
                    return if rest.trim().is_empty() {
                        Ok(())
                    } else {
                        Err("content after the root element".into())
                    };
                }
            } else {
                stack.push(name);
            }
            continue;
        }
        if !seen_root {
            return Err("text before the root div".into());
        }
        let end = rest.find('<').unwrap_or(rest.len());
        check_text(&rest[..end])?;
        rest = &rest[end..];
    }
    if seen_root {
        Err(format!(
            "<{}> is not closed",
            stack.last().map_or("div", String::as_str)
        ))
    } else {
        Err("no div element".into())
    }
}

type Attrs = Vec<(String, String)>;

/// Parses a start tag after `<`: name, attributes, whether it ends with `/>`, and
/// the text after it.
fn start_tag(s: &str) -> Result<(String, Attrs, bool, &str), String> {
    let name_end = s
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .ok_or("unterminated start tag")?;
    let name = &s[..name_end];
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_')
    {
        return Err(format!("invalid element name '{name}'"));
    }
    let mut rest = &s[name_end..];
    let mut attrs = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("/>") {
            return Ok((name.to_string(), attrs, true, r));
        }
        if let Some(r) = rest.strip_prefix('>') {
            return Ok((name.to_string(), attrs, false, r));
        }
        let eq = rest.find('=').ok_or("an attribute without a value")?;
        let key = rest[..eq].trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_')
        {
            return Err(format!("invalid attribute name '{key}'"));
        }
        rest = rest[eq + 1..].trim_start();
        let quote = rest.chars().next().ok_or("unterminated attribute")?;
        if quote != '"' && quote != '\'' {
            return Err(format!("the value of {key} is not quoted"));
        }
        let body = &rest[1..];
        let end = body.find(quote).ok_or("unterminated attribute value")?;
        let value = &body[..end];
        if value.contains('<') {
            return Err(format!("'<' in the value of {key}"));
        }
        if attrs.iter().any(|(k, _): &(String, String)| k == key) {
            return Err(format!("the attribute {key} is repeated"));
        }
        attrs.push((key.to_string(), value.to_string()));
        rest = &body[end + 1..];
    }
}

/// Text content: entity references must be well-formed.
fn check_text(t: &str) -> Result<(), String> {
    let mut rest = t;
    while let Some(i) = rest.find('&') {
        let after = &rest[i + 1..];
        let end = after.find(';').ok_or("an unterminated entity reference")?;
        let ent = &after[..end];
        let ok = if let Some(n) = ent.strip_prefix('#') {
            match n.strip_prefix(['x', 'X']) {
                Some(h) => !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()),
                None => !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
            }
        } else {
            !ent.is_empty() && ent.chars().all(|c| c.is_ascii_alphanumeric())
        };
        if !ok {
            return Err(format!("an invalid entity reference '&{ent};'"));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}
