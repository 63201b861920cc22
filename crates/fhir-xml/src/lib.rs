//! FHIR R4 XML to FHIR JSON text.
//!
//! [`to_json`] reads a resource in the FHIR XML representation and writes the same
//! resource in the FHIR JSON representation, typed by the R4 model of the
//! `r4-model` crate:
//!
//! - the root element's name is the `resourceType`; every FHIR element must be in
//!   the `http://hl7.org/fhir` namespace;
//! - a primitive's `value` attribute becomes a JSON `true`/`false` (boolean), a
//!   number written exactly as in the XML once checked (integer, unsignedInt,
//!   positiveInt, decimal: `1.50` stays `1.50`), or a string; its `id` attribute and
//!   `extension` children go to the `_name` twin, aligned with `null`s for a
//!   repeating primitive;
//! - an element that may repeat is an array even with one item; a choice element
//!   (`valueQuantity`) keeps its name; `id` and an extension's `url` attributes are
//!   properties;
//! - a resource inside `contained`, `Bundle.entry.resource`, `Parameters.parameter.resource`...
//!   is an object with `resourceType` first;
//! - `Narrative.div` is the XHTML element serialised again as a string (markup kept,
//!   references decoded then re-escaped; its comments are kept, as the FHIR reference
//!   serialisers keep them);
//! - references are decoded everywhere; comments, processing instructions and
//!   whitespace-only text outside the narrative are ignored.
//!
//! Properties come in document order after `resourceType`, which for valid FHIR XML
//! is the definition order. Anything else is an [`XmlError`] with the line and column
//! where it is: malformed XML, an element the model does not know, a value that is
//! not of its type, a non-repeating element given twice, text where only elements
//! belong, nesting deeper than [`MAX_DEPTH`]. The reader never panics.

mod json;
mod text;
mod write;

pub use write::to_xml;

use std::borrow::Cow;
use std::fmt;

use json::Json;
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use r4_model::{Kind, Model};

/// The namespace of every FHIR element.
pub const FHIR_NS: &str = "http://hl7.org/fhir";
/// The namespace of the narrative (`<div xmlns="http://www.w3.org/1999/xhtml">`).
pub const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
/// How deeply elements may nest (the deepest R4 example is about 15).
pub const MAX_DEPTH: usize = 1000;

/// Why a document could not be read, and where: 1-based line and column (in
/// characters) of the element, attribute value or text at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for XmlError {}

/// The FHIR JSON text, compact, of the FHIR XML resource `xml`.
pub fn to_json(xml: &str) -> Result<String, XmlError> {
    convert(xml, None)
}

/// The FHIR JSON text of `xml` indented by two spaces, like `serde_json::to_string_pretty`.
pub fn to_json_pretty(xml: &str) -> Result<String, XmlError> {
    convert(xml, Some(2))
}

fn convert(xml: &str, indent: Option<usize>) -> Result<String, XmlError> {
    // A byte order mark is not part of the document.
    let src = xml.strip_prefix('\u{feff}').unwrap_or(xml);
    let mut parser = Parser::new(src);
    let value = parser.document().map_err(|fail| {
        let (line, column) = text::line_column(src, fail.offset);
        XmlError {
            line,
            column,
            message: fail.message,
        }
    })?;
    let mut out = String::with_capacity(src.len());
    value.write(&mut out, indent);
    Ok(out)
}

/// An error at a byte offset of the source.
struct Fail {
    offset: usize,
    message: String,
}

fn fail<T>(offset: usize, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        offset,
        message: message.into(),
    })
}

/// The namespace an element is in.
#[derive(Debug, PartialEq)]
enum Ns {
    Fhir,
    Xhtml,
    None,
    Other(String),
}

impl Ns {
    fn of(resolved: &ResolveResult<'_>) -> Ns {
        match resolved {
            ResolveResult::Bound(ns) if ns.as_ref() == FHIR_NS.as_bytes() => Ns::Fhir,
            ResolveResult::Bound(ns) if ns.as_ref() == XHTML_NS.as_bytes() => Ns::Xhtml,
            ResolveResult::Bound(ns) => Ns::Other(String::from_utf8_lossy(ns.as_ref()).into()),
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Unknown(prefix) => Ns::Other(format!(
                "undeclared prefix '{}'",
                String::from_utf8_lossy(prefix)
            )),
        }
    }

    fn describe(&self) -> String {
        match self {
            Ns::Fhir => FHIR_NS.into(),
            Ns::Xhtml => XHTML_NS.into(),
            Ns::None => "no namespace".into(),
            Ns::Other(ns) => ns.clone(),
        }
    }
}

/// An element's start tag as read: where it is, its namespace, and whether it is
/// empty (`<a/>`), which means no end tag follows.
struct Tag<'i> {
    offset: usize,
    ns: Ns,
    start: BytesStart<'i>,
    empty: bool,
}

impl Tag<'_> {
    /// The element's name as written (`f:Patient`).
    fn qname(&self) -> String {
        String::from_utf8_lossy(self.start.name().as_ref()).into_owned()
    }

    /// The element's name without its prefix.
    fn local(&self) -> String {
        String::from_utf8_lossy(self.start.local_name().as_ref()).into_owned()
    }
}

/// One JSON property being collected: the items of a repeating element, or the one
/// value; for a primitive also the `_name` twins, `Json::Null` where absent.
struct Prop {
    key: String,
    /// The model element's name (`value` for `valueQuantity`), to find repeats.
    element: &'static str,
    many: bool,
    primitive: bool,
    values: Vec<Json>,
    twins: Vec<Json>,
}

#[derive(Default)]
struct Props(Vec<Prop>);

impl Props {
    fn has_element(&self, element: &str) -> bool {
        self.0.iter().any(|p| p.element == element)
    }

    fn add(
        &mut self,
        key: &str,
        element: &'static str,
        many: bool,
        value: Json,
        twin: Option<Json>,
    ) {
        let primitive = twin.is_some();
        if many && let Some(p) = self.0.iter_mut().find(|p| p.key == key) {
            p.values.push(value);
            p.twins.push(twin.unwrap_or(Json::Null));
            return;
        }
        self.0.push(Prop {
            key: key.into(),
            element,
            many,
            primitive,
            values: vec![value],
            twins: vec![twin.unwrap_or(Json::Null)],
        });
    }

    /// A complex value (object) or a fixed string (`resourceType`).
    fn add_value(&mut self, key: &str, element: &'static str, many: bool, value: Json) {
        self.add(key, element, many, value, None);
    }

    /// A primitive: its value and twin, each `Json::Null` when absent.
    fn add_primitive(
        &mut self,
        key: &str,
        element: &'static str,
        many: bool,
        value: Json,
        twin: Json,
    ) {
        self.add(key, element, many, value, Some(twin));
    }

    fn finish(self) -> Json {
        fn pack(mut items: Vec<Json>, many: bool) -> Json {
            if many {
                Json::Array(items)
            } else {
                items.pop().unwrap_or(Json::Null)
            }
        }
        let mut out = Vec::with_capacity(self.0.len());
        for p in self.0 {
            if !p.primitive {
                out.push((p.key, pack(p.values, p.many)));
                continue;
            }
            let has_twin = p.twins.iter().any(|t| *t != Json::Null);
            if p.values.iter().any(|v| *v != Json::Null) {
                out.push((p.key.clone(), pack(p.values, p.many)));
            }
            if has_twin {
                out.push((format!("_{}", p.key), pack(p.twins, p.many)));
            }
        }
        Json::Object(out)
    }
}

struct Parser<'i> {
    src: &'i str,
    reader: NsReader<&'i [u8]>,
    model: &'static Model,
    /// How deeply the element being read is nested.
    depth: usize,
}

/// An element being read, on the parser's stack: what it collects, its name and
/// position for messages, and where its value goes once its end tag is read.
struct Frame {
    kind: FrameKind,
    /// The element's name as written, and without its prefix.
    qname: String,
    local: String,
    offset: usize,
    slot: Slot,
}

enum FrameKind {
    /// A resource, datatype or backbone element, collecting its properties.
    Object {
        type_name: &'static str,
        props: Props,
    },
    /// A primitive: its typed value (or `Json::Null`), and the parts of its twin.
    Primitive {
        type_code: &'static str,
        value: Json,
        id: Option<String>,
        extensions: Vec<Json>,
    },
    /// An element holding a resource (`contained`, `Bundle.entry.resource`...).
    Holder { resource: Option<Json> },
}

/// Where a finished element's value goes.
enum Slot {
    /// It is the document's resource.
    Root,
    /// A property of the object below it on the stack.
    Property {
        key: String,
        element: &'static str,
        many: bool,
    },
    /// An extension of the primitive below it.
    Extension,
    /// The resource of the holder below it.
    Resource,
}

fn utf8(bytes: &[u8], offset: usize) -> Result<&str, Fail> {
    std::str::from_utf8(bytes).or_else(|_| fail(offset, "invalid UTF-8"))
}

fn leading_space(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_whitespace()).count()
}

fn is_whitespace(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

impl<'i> Parser<'i> {
    fn new(src: &'i str) -> Parser<'i> {
        Parser {
            src,
            reader: NsReader::from_str(src),
            model: r4_model::r4(),
            depth: 0,
        }
    }

    /// The next event, its offset and, for tags, its namespace.
    fn next(&mut self) -> Result<(usize, Ns, Event<'i>), Fail> {
        let offset = usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX);
        match self.reader.read_resolved_event() {
            Ok((resolved, event)) => {
                let ns = Ns::of(&resolved);
                Ok((offset, ns, event))
            }
            Err(e) => {
                let at = usize::try_from(self.reader.error_position()).unwrap_or(offset);
                fail(at, format!("malformed XML: {e}"))
            }
        }
    }

    /// Where `slice`, borrowed from the source, starts in it.
    fn offset_of(&self, slice: &[u8]) -> Option<usize> {
        let base = self.src.as_ptr() as usize;
        let at = slice.as_ptr() as usize;
        (at >= base && at <= base + self.src.len()).then(|| at - base)
    }

    fn enter(&mut self, offset: usize) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return fail(
                offset,
                format!("elements nested more than {MAX_DEPTH} deep"),
            );
        }
        Ok(())
    }

    /// The document: one resource, read with an explicit stack of open elements
    /// (no recursion, so deep nesting costs heap, not thread stack).
    fn document(&mut self) -> Result<Json, Fail> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut root: Option<Json> = None;
        loop {
            let (offset, ns, event) = self.next()?;
            let (start, empty) = match event {
                Event::Start(start) => (start, false),
                Event::Empty(start) => (start, true),
                Event::End(_) => {
                    // quick-xml checks that end tags match their start tags.
                    let Some(frame) = stack.pop() else {
                        return fail(offset, "an end tag without its start tag");
                    };
                    self.close(frame, &mut stack, &mut root)?;
                    continue;
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
                Event::Text(t) if is_whitespace(&t) => continue,
                Event::CData(t) if is_whitespace(&t) => continue,
                Event::Text(t) => {
                    return self.text_not_allowed(offset + leading_space(&t), stack.last());
                }
                Event::CData(_) | Event::GeneralRef(_) => {
                    return self.text_not_allowed(offset, stack.last());
                }
                Event::DocType(_) => return fail(offset, "a DOCTYPE is not allowed in FHIR XML"),
                Event::Eof => {
                    if let Some(frame) = stack.last() {
                        return fail(
                            offset,
                            format!("the document ends before </{}>", frame.qname),
                        );
                    }
                    return match root {
                        Some(root) => Ok(root),
                        None => fail(offset, "no root element: expected a FHIR resource"),
                    };
                }
            };
            let tag = Tag {
                offset,
                ns,
                start,
                empty,
            };
            self.depth = stack.len();
            let frame = match stack.last_mut() {
                None if root.is_some() => {
                    return fail(
                        offset,
                        format!(
                            "a second root element <{}>: a document holds one resource",
                            tag.qname()
                        ),
                    );
                }
                None => Some(self.open_root(&tag)?),
                Some(parent) => self.open_child(parent, &tag)?,
            };
            let Some(frame) = frame else { continue };
            if empty {
                self.close(frame, &mut stack, &mut root)?;
            } else {
                self.enter(offset)?;
                stack.push(frame);
            }
        }
    }

    fn open_root(&mut self, tag: &Tag<'i>) -> Result<Frame, Fail> {
        let name = tag.local();
        if tag.ns != Ns::Fhir {
            return fail(
                tag.offset,
                format!(
                    "the root element <{}> is not in the FHIR namespace {FHIR_NS} ({})",
                    tag.qname(),
                    tag.ns.describe()
                ),
            );
        }
        self.open_resource(tag, &name, Slot::Root)
    }

    /// A resource element: `resourceType` first, then its elements.
    fn open_resource(&mut self, tag: &Tag<'i>, name: &str, slot: Slot) -> Result<Frame, Fail> {
        let type_name = match self.model.type_def(name) {
            Some(t) if self.model.is_resource(name) => t.name,
            _ => {
                return fail(
                    tag.offset,
                    format!("<{name}> is not a FHIR R4 resource type"),
                );
            }
        };
        self.attributes(tag, type_name, &mut |_, _, _| Ok(false))?;
        let mut props = Props::default();
        props.add_value(
            "resourceType",
            "resourceType",
            false,
            Json::String(type_name.into()),
        );
        Ok(self.frame(tag, FrameKind::Object { type_name, props }, slot))
    }

    fn frame(&self, tag: &Tag<'i>, kind: FrameKind, slot: Slot) -> Frame {
        Frame {
            kind,
            qname: tag.qname(),
            local: tag.local(),
            offset: tag.offset,
            slot,
        }
    }

    /// The start of a child element of `parent`: the frame that will collect it,
    /// or None when it has been read whole (the narrative div).
    fn open_child(&mut self, parent: &mut Frame, tag: &Tag<'i>) -> Result<Option<Frame>, Fail> {
        match &mut parent.kind {
            FrameKind::Object { type_name, props } => {
                let type_name: &'static str = type_name;
                self.open_element(type_name, props, tag)
            }
            FrameKind::Primitive { type_code, .. } => {
                if tag.ns != Ns::Fhir || tag.start.local_name().as_ref() != b"extension" {
                    return fail(
                        tag.offset,
                        format!(
                            "<{}> is a primitive ({type_code}): <{}> is not allowed in it, only <extension>",
                            parent.local,
                            tag.qname()
                        ),
                    );
                }
                self.open_complex("Extension", tag, Slot::Extension)
                    .map(Some)
            }
            FrameKind::Holder { resource } => {
                let name = tag.local();
                if resource.is_some() {
                    return fail(
                        tag.offset,
                        format!(
                            "<{}> holds one resource, <{name}> is a second",
                            parent.local
                        ),
                    );
                }
                if tag.ns != Ns::Fhir || !self.model.is_resource(&name) {
                    return fail(
                        tag.offset,
                        format!(
                            "<{}> must contain a FHIR resource, not <{name}> ({})",
                            parent.local,
                            tag.ns.describe()
                        ),
                    );
                }
                self.open_resource(tag, &name, Slot::Resource).map(Some)
            }
        }
    }

    /// A datatype or backbone element: its `id` (and an extension's `url`)
    /// attributes now, its elements as they come.
    fn open_complex(
        &mut self,
        type_name: &'static str,
        tag: &Tag<'i>,
        slot: Slot,
    ) -> Result<Frame, Fail> {
        let mut props = Props::default();
        let is_extension = type_name == "Extension";
        self.attributes(tag, type_name, &mut |name, value, _| match name {
            "id" => {
                props.add_value("id", "id", false, Json::String(value.into()));
                Ok(true)
            }
            "url" if is_extension => {
                props.add_value("url", "url", false, Json::String(value.into()));
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(self.frame(tag, FrameKind::Object { type_name, props }, slot))
    }

    /// A primitive element: its `value` (typed) and `id` attributes now, its
    /// extensions as they come.
    fn open_primitive(
        &mut self,
        type_code: &'static str,
        tag: &Tag<'i>,
        slot: Slot,
    ) -> Result<Frame, Fail> {
        let mut value = Json::Null;
        let mut id = None;
        self.attributes(tag, type_code, &mut |name, text, at| match name {
            "value" => {
                value = typed(type_code, text).or_else(|m| fail(at, m))?;
                Ok(true)
            }
            "id" => {
                id = Some(text.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        })?;
        let kind = FrameKind::Primitive {
            type_code,
            value,
            id,
            extensions: Vec::new(),
        };
        Ok(self.frame(tag, kind, slot))
    }

    /// A child element of an object of type `type_name`, resolved by the model.
    fn open_element(
        &mut self,
        type_name: &'static str,
        props: &mut Props,
        tag: &Tag<'i>,
    ) -> Result<Option<Frame>, Fail> {
        let name = tag.local();
        if tag.ns == Ns::Xhtml && name == "div" {
            let is_narrative = self
                .model
                .element(type_name, "div")
                .is_some_and(|e| e.types.iter().any(|t| t.code == "xhtml"));
            if !is_narrative {
                return fail(
                    tag.offset,
                    format!("{type_name} has no element 'div' (XHTML)"),
                );
            }
            if props.has_element("div") {
                return fail(
                    tag.offset,
                    format!("{type_name}.div does not repeat but is given twice"),
                );
            }
            let div = self.xhtml(tag)?;
            props.add_primitive("div", "div", false, Json::String(div), Json::Null);
            return Ok(None);
        }
        if tag.ns != Ns::Fhir {
            return fail(
                tag.offset,
                format!(
                    "<{}> is not in the FHIR namespace {FHIR_NS} ({})",
                    tag.qname(),
                    tag.ns.describe()
                ),
            );
        }
        let Some(property) = self.model.property(type_name, &name) else {
            return fail(tag.offset, format!("{type_name} has no element '{name}'"));
        };
        let element = property.element;
        let type_code = property.type_code;
        if !element.many && props.has_element(element.name) {
            let shown = if element.choice {
                format!("{}[x]", element.name)
            } else {
                element.name.to_owned()
            };
            return fail(
                tag.offset,
                format!("{type_name}.{shown} does not repeat but is given twice"),
            );
        }
        if type_code == "xhtml" {
            return fail(
                tag.offset,
                format!("<{name}> must be an XHTML div (xmlns=\"{XHTML_NS}\")"),
            );
        }
        let slot = Slot::Property {
            key: name,
            element: element.name,
            many: element.many,
        };
        let frame = if type_code.starts_with("System.") {
            // Resource.id is an element; Element.id and Extension.url are attributes.
            let is_resource = self
                .model
                .type_def(type_name)
                .is_some_and(|t| t.kind == Kind::Resource);
            if !(is_resource && element.name == "id") {
                return fail(
                    tag.offset,
                    format!(
                        "'{}' is an attribute in FHIR XML, not an element ({type_name})",
                        element.name
                    ),
                );
            }
            self.open_primitive("id", tag, slot)?
        } else if self.model.is_primitive(type_code) {
            self.open_primitive(type_code, tag, slot)?
        } else if self.model.is_a(type_code, "Resource") {
            self.attributes(tag, "Resource", &mut |_, _, _| Ok(false))?;
            self.frame(tag, FrameKind::Holder { resource: None }, slot)
        } else {
            self.open_complex(type_code, tag, slot)?
        };
        Ok(Some(frame))
    }

    /// The end of `frame`'s element: its value, checked, put where it belongs.
    fn close(
        &mut self,
        frame: Frame,
        stack: &mut [Frame],
        root: &mut Option<Json>,
    ) -> Result<(), Fail> {
        let (value, twin) = match frame.kind {
            FrameKind::Object { props, .. } => (props.finish(), None),
            FrameKind::Primitive {
                type_code,
                value,
                id,
                extensions,
            } => {
                let mut parts = Vec::new();
                if let Some(id) = id {
                    parts.push(("id".to_owned(), Json::String(id)));
                }
                if !extensions.is_empty() {
                    parts.push(("extension".to_owned(), Json::Array(extensions)));
                }
                if value == Json::Null && parts.is_empty() {
                    return fail(
                        frame.offset,
                        format!(
                            "<{}> ({type_code}) has no value attribute, id or extension",
                            frame.local
                        ),
                    );
                }
                let twin = if parts.is_empty() {
                    Json::Null
                } else {
                    Json::Object(parts)
                };
                (value, Some(twin))
            }
            FrameKind::Holder { resource } => match resource {
                Some(resource) => (resource, None),
                None => {
                    return fail(
                        frame.offset,
                        format!("<{}> must contain a resource", frame.local),
                    );
                }
            },
        };
        let parent = stack.last_mut().map(|p| &mut p.kind);
        match (frame.slot, parent) {
            (Slot::Root, _) => *root = Some(value),
            (Slot::Property { key, element, many }, Some(FrameKind::Object { props, .. })) => {
                match twin {
                    Some(twin) => props.add_primitive(&key, element, many, value, twin),
                    None => props.add_value(&key, element, many, value),
                }
            }
            (Slot::Extension, Some(FrameKind::Primitive { extensions, .. })) => {
                extensions.push(value)
            }
            (Slot::Resource, Some(FrameKind::Holder { resource })) => *resource = Some(value),
            // A slot always matches the frame it was opened under.
            _ => return fail(frame.offset, "internal error: element closed out of place"),
        }
        Ok(())
    }

    /// Calls `known` with each attribute's local name, decoded value and offset; an
    /// attribute it does not take (returns false) is an error. Namespace
    /// declarations and attributes with a prefix (`xsi:schemaLocation`) are skipped.
    fn attributes(
        &self,
        tag: &Tag<'i>,
        owner: &str,
        known: &mut dyn FnMut(&str, &str, usize) -> Result<bool, Fail>,
    ) -> Result<(), Fail> {
        for attr in tag.start.attributes() {
            let attr = match attr {
                Ok(attr) => attr,
                Err(e) => return fail(tag.offset, format!("malformed XML: {e}")),
            };
            let key = attr.key.as_ref();
            if key.starts_with(b"xmlns") || key.contains(&b':') {
                continue;
            }
            let key = utf8(key, tag.offset)?;
            let at = match &attr.value {
                Cow::Borrowed(raw) => self.offset_of(raw).unwrap_or(tag.offset),
                Cow::Owned(_) => tag.offset,
            };
            let raw = utf8(&attr.value, at)?;
            let value = text::attribute_value(raw).or_else(|(i, m)| fail(at + i, m))?;
            if !known(key, &value, at)? {
                return fail(
                    tag.offset,
                    format!(
                        "unexpected attribute '{key}' on <{}> ({owner})",
                        tag.local()
                    ),
                );
            }
        }
        Ok(())
    }

    fn text_not_allowed<T>(&self, offset: usize, inside: Option<&Frame>) -> Result<T, Fail> {
        match inside {
            Some(frame) => fail(
                offset,
                format!(
                    "text is not allowed in <{}>: FHIR XML has values in value attributes",
                    frame.local
                ),
            ),
            None => fail(offset, "text outside the root element"),
        }
    }

    /// The narrative `div`, serialised again: XHTML elements under their local name,
    /// the div with its namespace declaration first, attributes double-quoted, text
    /// and attribute values re-escaped, comments kept, processing instructions dropped.
    fn xhtml(&mut self, tag: &Tag<'i>) -> Result<String, Fail> {
        let mut out = String::new();
        self.open_tag(&mut out, tag, true)?;
        if tag.empty {
            return Ok(out);
        }
        let base_depth = self.depth;
        self.enter(tag.offset)?;
        let mut open = vec![self.output_name(tag)?];
        let mut chars = String::new();
        while let Some(name) = open.last().cloned() {
            let (offset, ns, event) = self.next()?;
            match event {
                Event::Start(start) => {
                    self.enter(offset)?;
                    let child = Tag {
                        offset,
                        ns,
                        start,
                        empty: false,
                    };
                    self.open_tag(&mut out, &child, false)?;
                    open.push(self.output_name(&child)?);
                }
                Event::Empty(start) => {
                    let child = Tag {
                        offset,
                        ns,
                        start,
                        empty: true,
                    };
                    self.open_tag(&mut out, &child, false)?;
                }
                Event::End(_) => {
                    out.push_str("</");
                    out.push_str(&name);
                    out.push('>');
                    open.pop();
                    self.depth -= 1;
                }
                Event::Text(t) => {
                    chars.clear();
                    text::push_text(&mut chars, utf8(&t, offset)?);
                    text::escape_text(&mut out, &chars);
                }
                Event::CData(t) => {
                    chars.clear();
                    text::push_text(&mut chars, utf8(&t, offset)?);
                    text::escape_text(&mut out, &chars);
                }
                Event::GeneralRef(r) => {
                    let c =
                        text::resolve_reference(utf8(&r, offset)?).or_else(|m| fail(offset, m))?;
                    text::escape_text(&mut out, c.encode_utf8(&mut [0; 4]));
                }
                // Kept, as the FHIR reference serialisers keep them in the narrative.
                Event::Comment(c) => {
                    out.push_str("<!--");
                    text::push_text(&mut out, utf8(&c, offset)?);
                    out.push_str("-->");
                }
                Event::PI(_) => {}
                Event::Eof => return fail(offset, format!("the document ends before </{name}>")),
                Event::Decl(_) | Event::DocType(_) => {
                    return fail(offset, "an XML or DOCTYPE declaration inside an element");
                }
            }
        }
        debug_assert_eq!(self.depth, base_depth);
        Ok(out)
    }

    /// The name an XHTML element is written under: the local name for the XHTML
    /// namespace (the div declares it the default), else as written.
    fn output_name(&self, tag: &Tag<'i>) -> Result<String, Fail> {
        let name = if tag.ns == Ns::Xhtml {
            tag.start.local_name().into_inner()
        } else {
            tag.start.name().into_inner()
        };
        Ok(utf8(name, tag.offset)?.to_owned())
    }

    fn open_tag(&self, out: &mut String, tag: &Tag<'i>, is_div: bool) -> Result<(), Fail> {
        out.push('<');
        out.push_str(&self.output_name(tag)?);
        if is_div {
            out.push_str(" xmlns=\"");
            out.push_str(XHTML_NS);
            out.push('"');
        }
        for attr in tag.start.attributes() {
            let attr = match attr {
                Ok(attr) => attr,
                Err(e) => return fail(tag.offset, format!("malformed XML: {e}")),
            };
            let key = utf8(attr.key.as_ref(), tag.offset)?;
            if is_div && key == "xmlns" {
                continue;
            }
            let at = match &attr.value {
                Cow::Borrowed(raw) => self.offset_of(raw).unwrap_or(tag.offset),
                Cow::Owned(_) => tag.offset,
            };
            let value =
                text::attribute_value(utf8(&attr.value, at)?).or_else(|(i, m)| fail(at + i, m))?;
            out.push(' ');
            out.push_str(key);
            out.push_str("=\"");
            text::escape_attribute(out, &value);
            out.push('"');
        }
        out.push_str(if tag.empty { "/>" } else { ">" });
        Ok(())
    }
}

/// A primitive's `value` attribute as JSON for its type; the error message if it is
/// not a value of that type.
fn typed(type_code: &str, text: &str) -> Result<Json, String> {
    let (min, max) = match type_code {
        "boolean" => {
            return match text.trim_matches(|c: char| c.is_ascii_whitespace()) {
                "true" => Ok(Json::Bool(true)),
                "false" => Ok(Json::Bool(false)),
                _ => Err(format!("invalid boolean '{text}': expected true or false")),
            };
        }
        "decimal" => {
            let number = text.trim_matches(|c: char| c.is_ascii_whitespace());
            return if json::is_json_number(number) {
                Ok(Json::Number(number.into()))
            } else {
                Err(format!("invalid decimal '{text}'"))
            };
        }
        "integer" => (i64::from(i32::MIN), i64::from(i32::MAX)),
        "unsignedInt" => (0, i64::from(i32::MAX)),
        "positiveInt" => (1, i64::from(i32::MAX)),
        _ => return Ok(Json::String(text.into())),
    };
    let number = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let in_range = json::is_json_number(number)
        && !number.contains(['.', 'e', 'E'])
        && number
            .parse::<i64>()
            .is_ok_and(|n| (min..=max).contains(&n));
    if in_range {
        Ok(Json::Number(number.into()))
    } else {
        Err(format!(
            "invalid {type_code} '{text}': expected a whole number from {min} to {max}"
        ))
    }
}
