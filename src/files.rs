//! File helpers every part of the harness shares: reading a regular file with a size
//! cap, the path as users see it, YAML errors in our words, SHA-256, the folder walk
//! for scenario files, and atomic writes. Depends on nothing of the crate but
//! [`crate::diag`], so any module may use it without an import cycle.

use std::collections::HashSet;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_saphyr::Location;

use crate::diag::{Diagnostic, did_you_mean};

/// The most any input file (scenario, fixture, target, key) may hold; larger ones are
/// refused before they are read.
pub const MAX_INPUT_BYTES: u64 = 4 * 1024 * 1024;

/// The most a FHIR JSON file given to `fhirconf validate` (a resource, a Bundle of a
/// server's sample data, a StructureDefinition) may hold.
#[cfg_attr(not(feature = "validation"), allow(dead_code))]
pub const MAX_FHIR_JSON_BYTES: u64 = 64 * 1024 * 1024;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("cannot read {path}: not a regular file")]
    NotRegular { path: String },
    #[error("cannot read {path}: it is {size} bytes, more than the {max} this file may have")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("cannot read {path}: not valid UTF-8")]
    NotUtf8 { path: String },
}

impl FileError {
    fn io(path: &Path, e: &std::io::Error) -> Self {
        FileError::Io {
            path: display_path(path),
            reason: io_reason(e),
        }
    }
}

/// Reads a regular file of at most `max_bytes`: a FIFO, a device or a folder is
/// refused before anything is read, and a file that grows past the cap while it is
/// read is refused too (nothing endless is ever read into memory).
pub fn read_bytes(path: &Path, max_bytes: u64) -> Result<Vec<u8>, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| FileError::io(path, &e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: display_path(path),
        });
    }
    let too_large = |size| FileError::TooLarge {
        path: display_path(path),
        size,
        max: max_bytes,
    };
    if meta.len() > max_bytes {
        return Err(too_large(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| FileError::io(path, &e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::io(path, &e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The SHA-256 (lower hex) of a regular file, read in pieces: a FIFO, a device, a
/// symlink or a folder is refused before anything is read, and at most the size the
/// file had when checked (plus one byte, to notice growth) is read.
pub fn sha256_file(path: &Path) -> Result<String, FileError> {
    use sha2::Digest;
    let meta = std::fs::symlink_metadata(path).map_err(|e| FileError::io(path, &e))?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: display_path(path),
        });
    }
    let file = std::fs::File::open(path).map_err(|e| FileError::io(path, &e))?;
    let mut limited = file.take(meta.len().saturating_add(1));
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FileError::io(path, &e)),
        }
    }
    Ok(lower_hex(&hasher.finalize()))
}

/// [`read_bytes`] for a text file.
pub fn read_string(path: &Path, max_bytes: u64) -> Result<String, FileError> {
    String::from_utf8(read_bytes(path, max_bytes)?).map_err(|_| FileError::NotUtf8 {
        path: display_path(path),
    })
}

/// Lowercase hex SHA-256, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    lower_hex(&sha2::Sha256::digest(bytes))
}

/// `bytes` as lowercase hex.
pub fn lower_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Writes a file through a uniquely named temporary file beside `path`, renamed over
/// `path` once complete: a reader never sees half a file, and two writers (two reports
/// of one run, or two runs) never share a temporary file.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir
        }
        None => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // A report is for anyone who may read the folder (0644 under the usual umask), not
    // private as temporary files are by default.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir)?;
    {
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, tmp.as_file_mut());
        fill(&mut w)?;
        w.flush()?;
    }
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

/// Expands folders (recursively, `*.yaml`/`*.yml`, hidden folders skipped) into files,
/// sorted, each once.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut seen_dirs = HashSet::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut seen_dirs, &mut files, &mut errors),
            Ok(_) => files.push(path.clone()),
            Err(e) => errors.push(Diagnostic::file(
                display_path(path),
                format!("cannot read: {}", io_reason(&e)),
            )),
        }
    }
    let mut unique = HashSet::new();
    files.retain(|f| unique.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    if errors.is_empty() {
        Ok(files)
    } else {
        Err(errors)
    }
}

/// Whether a `.json` or `.xml` file found in a folder is a TestScript.
fn is_testscript_file(path: &Path) -> bool {
    let Some(xml) = crate::testscript::format_of(path) else {
        return false;
    };
    std::fs::read_to_string(path).is_ok_and(|text| crate::testscript::is_testscript(&text, xml))
}

fn walk(
    dir: &Path,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<Diagnostic>,
) {
    let canonical = match std::fs::canonicalize(dir) {
        Ok(c) => c,
        Err(e) => {
            errors.push(Diagnostic::file(
                display_path(dir),
                format!("cannot read folder: {}", io_reason(&e)),
            ));
            return;
        }
    };
    if !seen.insert(canonical) {
        return; // a symlink back into a folder already walked
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(Diagnostic::file(
                display_path(dir),
                format!("cannot read folder: {}", io_reason(&e)),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, seen, files, errors),
            Ok(_)
                if matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                ) =>
            {
                files.push(path)
            }
            // A TestScript beside scenarios runs too; other JSON and XML (fixtures)
            // stays out.
            Ok(meta) if meta.len() <= MAX_INPUT_BYTES && is_testscript_file(&path) => {
                files.push(path)
            }
            Ok(_) => {}
            Err(e) => errors.push(Diagnostic::file(
                display_path(&path),
                format!("cannot read: {}", io_reason(&e)),
            )),
        }
    }
}

pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// Forward slashes, no leading `./`.
pub fn display_path(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "/");
    text.strip_prefix("./").map(str::to_owned).unwrap_or(text)
}

/// Reads a UTF-8 file of bounded size; `display` names it in errors.
pub fn read_text(path: &Path, display: &str, max_bytes: u64) -> Result<String, Diagnostic> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Diagnostic::file(display, format!("cannot read: {}", io_reason(&e))))?;
    if !meta.is_file() {
        return Err(Diagnostic::file(display, "not a regular file"));
    }
    if meta.len() > max_bytes {
        return Err(Diagnostic::whole_file(
            display,
            format!(
                "file is {} bytes; files of this kind may be at most {max_bytes}",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::file(display, format!("cannot read: {}", io_reason(&e))))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = String::from_utf8_lossy(valid);
        let (line, column) = Diagnostic::position(&text, text.len());
        Diagnostic {
            file: display.to_owned(),
            line,
            column,
            message: "file is not valid UTF-8".to_owned(),
            help: None,
            source_line: None,
        }
    })
}

/// A NUL byte means a binary file, not YAML (`what`: "scenario", "target"); it is
/// reported where it is.
pub fn no_nul_byte(display: &str, text: &str, what: &str) -> Result<(), Vec<Diagnostic>> {
    match text.find('\0') {
        None => Ok(()),
        Some(nul) => {
            let (line, column) = Diagnostic::position(text, nul);
            Err(vec![Diagnostic::at(
                display,
                text,
                line,
                column,
                format!("file contains a NUL byte: not a YAML {what}"),
            )])
        }
    }
}

/// The YAML parser's limits for scenario and target files. The file-size cap comes
/// first ([`MAX_INPUT_BYTES`]); these are sized so that any file under it with plain
/// structure loads (a node takes at least two bytes), and only nesting, aliases and
/// tags are limited further.
pub const YAML_MAX_NODES: usize = MAX_INPUT_BYTES as usize / 2;
/// Nesting deeper than this is refused (scenario files need a handful of levels).
pub const YAML_MAX_DEPTH: usize = 64;
/// Alias uses (`*name`) a file may have.
pub const YAML_MAX_ALIASES: usize = 10_000;

/// How scenario and target files are parsed: tags the format does not use (`!Env`,
/// `!!binary`) are errors, not silently changed strings; the budgets above.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        reject_unsupported_tags: true,
        budget: serde_saphyr::budget! {
            max_nodes: YAML_MAX_NODES,
            max_events: 2 * YAML_MAX_NODES,
            max_depth: YAML_MAX_DEPTH,
            max_aliases: YAML_MAX_ALIASES,
        },
    }
}

/// The first YAML tag in `text` other than the core schema's plain types (`!!str`,
/// `!!int`, `!!float`, `!!bool`, `!!null`, `!!seq`, `!!map`), as an error at its
/// position. The format uses no tags, and the parser would otherwise turn `!!binary`
/// into decoded text and pass `!Env HOME` on as the string `HOME`.
pub fn refuse_tags(file: &str, text: &str) -> Result<(), Diagnostic> {
    const PLAIN: [&str; 7] = ["str", "int", "float", "bool", "null", "seq", "map"];
    // A tag is a token that starts with `!` (after a space, a line start or a flow
    // indicator). Without one anywhere, the second parse is skipped: it cost ~10 us
    // per step of a file. `!=` in an expression does not count.
    static MAYBE_TAG: OnceLock<regex::Regex> = OnceLock::new();
    let maybe = MAYBE_TAG
        .get_or_init(|| regex::Regex::new(r"(?m)(?:^|[\s\[{,:-])![^\s=]").expect("static regex"));
    if !maybe.is_match(text) {
        return Ok(());
    }
    for event in serde_saphyr::granit_parser::Parser::new_from_str(text) {
        // A syntax error is the deserializer's to report, with its own words.
        let Ok((event, span)) = event else {
            return Ok(());
        };
        let Some(tag) = event.tag() else {
            continue;
        };
        if tag.core_suffix().is_some_and(|s| PLAIN.contains(&s)) {
            continue;
        }
        let written = tag.original();
        return Err(Diagnostic::at(
            file,
            text,
            span.start.line() as u64,
            span.start.col() as u64 + 1,
            format!("`{written}`: YAML tags are not part of the format; write the value itself"),
        ));
    }
    Ok(())
}

/// The limit a budget error hit, in words that name it and its value.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Depth { .. } => format!("nesting is deeper than {YAML_MAX_DEPTH} levels"),
        B::Nodes { .. } | B::Events { .. } => format!(
            "the file has more than {YAML_MAX_NODES} YAML nodes (keys, values and items); split it into several files"
        ),
        B::Aliases { .. } | B::AliasAnchorRatio { .. } => format!(
            "the file uses YAML aliases (`*name`) more than {YAML_MAX_ALIASES} times or far more often than it defines anchors"
        ),
        B::RecordedAnchorEvents { .. } | B::RecordedAnchorBytes { .. } | B::MergeKeys { .. } => {
            "the document is too large once its YAML aliases and merge keys are expanded".to_owned()
        }
        B::Documents { .. } => {
            "a file holds one YAML document; this one has a second (`---`)".to_owned()
        }
        other => format!("the file is beyond a limit of the YAML parser ({other:?})"),
    }
}

pub fn yaml_error(file: &str, text: &str, err: &serde_saphyr::Error) -> Diagnostic {
    let mut message = err.without_snippet().to_string();
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    let (line, mut column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    let mut help = None;
    if let Some((reason, at)) = jsonpath_problem(&message) {
        // Point at the character the query breaks at, past the value's opening quote.
        let source = text
            .lines()
            .nth(line.saturating_sub(1) as usize)
            .unwrap_or("");
        let quoted = matches!(
            source.chars().nth(column.saturating_sub(1) as usize),
            Some('"' | '\'')
        );
        column += at.saturating_sub(1) + u64::from(quoted);
        message = format!(
            "{}: {reason}",
            message.split(": Failed to parse").next().unwrap_or("")
        );
    } else if let Some(key) = folded_key(&message) {
        help = Some(format!(
            "`{key}` reads as part of this value: if it is a key, indent it as its siblings are (keys of one mapping start at the same column)"
        ));
    }
    // The loader's words for its limits, in ours (its advice names its own API).
    if let serde_saphyr::Error::Budget { breach, .. } = err.without_snippet() {
        message = budget_message(breach);
    } else if message.starts_with("multiple YAML documents") {
        message = "a file holds one YAML document; this one has a second (`---`)".to_owned();
    } else if message == "recursion limit exceeded" {
        message = "nesting is too deep".to_owned();
    } else if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim();
        message = format!("duplicate key `{key}`");
    }
    for (raw, plain) in [
        ("expected sequence start", "expected a list"),
        (
            "expected mapping start",
            "expected a map of keys and values",
        ),
        ("expected string scalar", "expected a single string"),
    ] {
        if message == raw {
            message = plain.to_owned();
        }
    }
    let mut diag = Diagnostic::at(file, text, line, column, message);
    diag.help = help;
    let suggestion = match err.without_snippet() {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => did_you_mean(field, expected.iter().copied()),
        serde_saphyr::Error::SerdeUnknownVariant {
            variant, expected, ..
        } => did_you_mean(variant, expected.iter().copied()).or_else(|| {
            expected
                .iter()
                .copied()
                .find(|e| e.eq_ignore_ascii_case(variant))
        }),
        _ => None,
    };
    if let Some(s) = suggestion {
        diag = diag.with_help(format!("did you mean `{s}`?"));
    }
    diag
}

/// A JSONPath parse error's reason and the (1-based) character of the query it is at,
/// from the parser's own text (`... Failed to parse rule: --> 1:5 | ... | = expected
/// selector`).
fn jsonpath_problem(message: &str) -> Option<(String, u64)> {
    if !message.starts_with("invalid JSONPath") {
        return None;
    }
    let rest = message.split("--> 1:").nth(1)?;
    let at: u64 = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let reason = message.rsplit("= ").next().unwrap_or("").trim().to_owned();
    Some((reason, at))
}

/// The key a mis-indented line folded into the value before it: YAML reads
/// `status: 200` followed by a deeper `json:` as the value "200 json". Only for values
/// the schema refuses, whose later word is one of the format's keys.
fn folded_key(message: &str) -> Option<&'static str> {
    const KEYS: &[&str] = &[
        "status",
        "headers",
        "json",
        "json_subset",
        "operation_outcome",
        "bundle",
        "capture",
        "expect",
        "request",
        "method",
        "path",
        "url",
        "query",
        "body",
        "form",
        "name",
    ];
    let value = message.split('`').nth(1)?;
    let mut words = value.split_whitespace();
    words.next()?;
    let later: Vec<&str> = words.map(|w| w.trim_end_matches(':')).collect();
    KEYS.iter().copied().find(|k| later.contains(k))
}

/// Adds a diagnostic at a YAML location and returns it, for a `help` to be added.
pub(crate) fn push_at<'e>(
    errors: &'e mut Vec<Diagnostic>,
    file: &str,
    text: &str,
    loc: Location,
    message: impl Into<String>,
) -> &'e mut Diagnostic {
    errors.push(Diagnostic::at(
        file,
        text,
        loc.line(),
        loc.column(),
        message,
    ));
    errors.last_mut().expect("just pushed")
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_found_wherever_they_stand_and_not_equal_signs() {
        for (text, tagged) in [
            ("a: \"{{ x != y }}\"\n", false),
            ("a: x != y\n", false),
            ("a: !!binary aGk=\n", true),
            ("- !Env HOME\n", true),
            ("a: [!foo x]\n", true),
            ("a: {b: !bar 1}\n", true),
            ("a: !!str 12\n", false),
            ("a: \"x !y\"\n", false),
        ] {
            assert_eq!(
                super::refuse_tags("f.yaml", text).is_err(),
                tagged,
                "{text}"
            );
        }
    }

    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_readable_as_any_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/report.xml");
        write_atomic(&path, |w| w.write_all(b"first")).unwrap();
        write_atomic(&path, |w| w.write_all(b"second")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["report.xml"], "no temporary file is left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let plain = dir.path().join("plain");
            std::fs::write(&plain, b"x").unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode(&path),
                mode(&plain),
                "the umask decides, as for any file"
            );
        }
    }

    #[test]
    fn reads_refuse_what_is_not_a_bounded_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 100]).unwrap();
        assert!(matches!(
            read_bytes(&big, 10),
            Err(FileError::TooLarge { size: 100, .. })
        ));
        assert_eq!(read_bytes(&big, 100).unwrap().len(), 100);
        assert!(matches!(
            read_bytes(dir.path(), 10),
            Err(FileError::NotRegular { .. })
        ));
        assert!(matches!(
            read_bytes(&dir.path().join("missing"), 10),
            Err(FileError::Io { .. })
        ));
    }
}
