//! Evidence folders: a run's reports and the exact files it read, with a manifest of
//! SHA-256 digests, optionally signed with Ed25519, so a certification run can be
//! handed over and checked later by `fhirconf verify`.
//!
//! ```text
//! evidence/
//!   run.json  junit.xml  summary.md       the reports, byte for byte as in reports/
//!   files/scenarios/r4-core/read.yaml     every scenario, fixture, target and baseline
//!   manifest.json                         path → sha256 of everything above
//!   manifest.sig                          Ed25519 signature of manifest.json (64 bytes)
//! ```
//!
//! A copy keeps the path the run read it from under `files/`; a path that would leave
//! the folder (absolute, or climbing out with `..`) is stored under `files/_absolute_/`
//! or `files/_outside_/` instead. The signature is raw bytes over the exact bytes of
//! `manifest.json`, so `openssl pkeyutl -verify -rawin` can check it too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::files::display_path;
use crate::record::{FileKind, InputFile, sha256_hex};

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const MANIFEST_VERSION: u32 = 1;
/// Where copies of the run's input files go inside the folder.
pub const FILES_DIR: &str = "files";

/// `manifest.json`: every file of the folder but the manifest and its signature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub harness: String,
    pub harness_version: String,
    pub created_at: String,
    pub files: Vec<ManifestEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Relative to the folder, forward slashes.
    pub path: String,
    pub sha256: String,
    /// For a copy: the path the run read it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FileKind>,
}

/// Why evidence cannot be written, or a folder cannot be checked.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("cannot {action} {path}: {reason}")]
    Io {
        action: &'static str,
        path: String,
        reason: String,
    },
    #[error("{0}")]
    File(#[from] crate::files::FileError),
    #[error("{path} is not {expected}: {detail}")]
    Key {
        path: String,
        expected: &'static str,
        detail: String,
    },
    /// `--evidence` names a place that must not be replaced.
    #[error("{0}")]
    Destination(String),
    #[error("{0}")]
    Manifest(String),
    #[error("{0} changed after the run read it; the evidence would not show what ran")]
    Changed(String),
    #[error("{0} is not a folder")]
    NotAFolder(String),
}

impl EvidenceError {
    fn io(action: &'static str, path: &Path, e: &std::io::Error) -> Self {
        EvidenceError::Io {
            action,
            path: display_path(path),
            reason: e.to_string(),
        }
    }
}

/// The Ed25519 key that signs `manifest.json`, from a PKCS#8 PEM file as
/// `openssl genpkey -algorithm ed25519` writes it.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, EvidenceError> {
    let shown = display_path(path);
    let text = crate::files::read_string(path, crate::files::MAX_INPUT_BYTES)?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| EvidenceError::Key {
        path: shown,
        expected: "an Ed25519 private key in PKCS#8 PEM (as `openssl genpkey -algorithm ed25519` writes)",
        detail: e.to_string(),
    })
}

/// The key that checks `manifest.sig`: an Ed25519 public key in PEM (as
/// `openssl pkey -pubout` writes it); the private key is accepted too.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, EvidenceError> {
    let shown = display_path(path);
    let text = crate::files::read_string(path, crate::files::MAX_INPUT_BYTES)?;
    VerifyingKey::from_public_key_pem(&text)
        .or_else(|_| SigningKey::from_pkcs8_pem(&text).map(|k| k.verifying_key()))
        .map_err(|e| EvidenceError::Key {
            path: shown,
            expected: "an Ed25519 public key in PEM (as `openssl pkey -pubout` writes)",
            detail: e.to_string(),
        })
}

/// Every regular file and symlink under `dir`, as forward-slash paths relative to it.
/// Symlinked folders are listed, not followed.
fn walk(dir: &Path) -> Result<Vec<String>, EvidenceError> {
    let mut out = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let here = dir.join(&rel);
        let entries =
            std::fs::read_dir(&here).map_err(|e| EvidenceError::io("read folder", &here, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| EvidenceError::io("read folder", &here, &e))?;
            let rel = rel.join(entry.file_name());
            let kind = entry
                .file_type()
                .map_err(|e| EvidenceError::io("read", &dir.join(&rel), &e))?;
            if kind.is_dir() {
                pending.push(rel);
            } else {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_manifest(dir: &Path) -> Result<(Vec<u8>, Manifest), EvidenceError> {
    let path = dir.join(MANIFEST);
    let shown = display_path(&path);
    let bytes = match crate::files::read_bytes(&path, crate::files::MAX_INPUT_BYTES) {
        Ok(b) => b,
        Err(crate::files::FileError::Io { .. }) if !path.exists() => {
            return Err(EvidenceError::Manifest(format!(
                "{shown} is missing: {} is not an evidence folder",
                display_path(dir)
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        EvidenceError::Manifest(format!("{shown} is not an evidence manifest: {e}"))
    })?;
    if manifest.harness != "fhirconf" || manifest.manifest_version != MANIFEST_VERSION {
        return Err(EvidenceError::Manifest(format!(
            "{shown} is a manifest of {} version {}; this fhirconf reads fhirconf version {MANIFEST_VERSION}",
            manifest.harness, manifest.manifest_version
        )));
    }
    Ok((bytes, manifest))
}

/// Whether evidence may be written to `dir`: it does not exist, is empty, or is an
/// earlier evidence folder holding nothing its manifest does not list (it is then
/// replaced whole). Anything else is refused, so no one's files are deleted.
pub fn check_destination(dir: &Path) -> Result<(), EvidenceError> {
    let shown = display_path(dir);
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(EvidenceError::Destination(format!(
                "cannot use {shown} for evidence: {e}"
            )));
        }
        Ok(m) if !m.is_dir() => {
            return Err(EvidenceError::Destination(format!(
                "cannot write evidence to {shown}: it exists and is not a folder"
            )));
        }
        Ok(_) => {}
    }
    if dir.file_name().is_none() {
        return Err(EvidenceError::Destination(format!(
            "cannot write evidence to {shown}: name a folder (it is replaced whole)"
        )));
    }
    let present = walk(dir)?;
    if present.is_empty() {
        return Ok(());
    }
    let refuse = || {
        EvidenceError::Destination(format!(
            "cannot write evidence to {shown}: it is not empty and not an earlier evidence folder; choose a new or empty folder"
        ))
    };
    let (_, manifest) = read_manifest(dir).map_err(|_| refuse())?;
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    if present
        .iter()
        .all(|p| p == MANIFEST || p == SIGNATURE || listed.contains(p.as_str()))
    {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// Where a copy of `original` goes, relative to the evidence folder: `files/` and the
/// path itself when it stays inside, else under `files/_absolute_/` or
/// `files/_outside_/`, with `..` written as `__`.
pub fn copy_path(original: &str) -> String {
    let text = original.replace('\\', "/");
    let (prefix, rest) = if let Some(r) = text.strip_prefix('/') {
        (Some("_absolute_"), r.to_owned())
    } else if text.len() >= 2 && text.as_bytes()[1] == b':' {
        // A Windows drive: `C:/x` is kept as `_absolute_/C/x`.
        (Some("_absolute_"), format!("{}{}", &text[..1], &text[2..]))
    } else {
        (None, text)
    };
    let mut parts: Vec<&str> = Vec::new();
    let mut escapes = false;
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else {
                    escapes = true;
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let parts: Vec<&str> = parts
        .into_iter()
        .map(|p| if p == ".." { "__" } else { p })
        .collect();
    let prefix = prefix.or(escapes.then_some("_outside_"));
    let mut out = String::from(FILES_DIR);
    for p in prefix.into_iter().chain(parts) {
        out.push('/');
        out.push_str(p);
    }
    out
}

/// What `write` was given: where the run's reports were written and the files the run
/// read.
pub struct Evidence<'a> {
    /// `run.json`, `junit.xml` and `summary.md`, each by its name in the folder.
    pub reports: [(&'static str, &'a Path); 3],
    pub files: &'a [InputFile],
    pub harness_version: &'a str,
    pub created_at: &'a str,
}

fn write_file(root: &Path, rel: &str, bytes: &[u8]) -> Result<(), EvidenceError> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| EvidenceError::io("create", parent, &e))?;
    }
    std::fs::write(&path, bytes).map_err(|e| EvidenceError::io("write", &path, &e))
}

/// Copies a report just written into the evidence a buffer at a time (`run.json`
/// grows with the run) and returns the SHA-256 of what it copied.
fn copy_hashed(from: &Path, to: &Path) -> Result<String, EvidenceError> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let mut input = std::fs::File::open(from).map_err(|e| EvidenceError::io("read", from, &e))?;
    let mut output = std::fs::File::create(to).map_err(|e| EvidenceError::io("write", to, &e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(EvidenceError::io("read", from, &e)),
        };
        hasher.update(&buf[..n]);
        output
            .write_all(&buf[..n])
            .map_err(|e| EvidenceError::io("write", to, &e))?;
    }
    Ok(crate::record::lower_hex(&hasher.finalize()))
}

/// Builds the folder beside `dir` and then puts it in place, so an interrupted run
/// never leaves half a folder at `dir`. Returns the number of files it holds.
pub fn write(
    dir: &Path,
    evidence: &Evidence,
    key: Option<&SigningKey>,
) -> Result<usize, EvidenceError> {
    check_destination(dir)?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| EvidenceError::io("create", parent, &e))?;
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let built = build(&staging, evidence, key).and_then(|n| {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .map_err(|e| EvidenceError::io("replace the earlier evidence in", dir, &e))?;
        }
        std::fs::rename(&staging, dir)
            .map_err(|e| EvidenceError::io("move the evidence into", dir, &e))?;
        Ok(n)
    });
    if built.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    built
}

fn build(
    root: &Path,
    evidence: &Evidence,
    key: Option<&SigningKey>,
) -> Result<usize, EvidenceError> {
    std::fs::create_dir_all(root).map_err(|e| EvidenceError::io("create", root, &e))?;
    let mut entries: BTreeMap<String, ManifestEntry> = BTreeMap::new();
    for (rel, report) in evidence.reports {
        let sha256 = copy_hashed(report, &root.join(rel))?;
        entries.insert(
            rel.to_owned(),
            ManifestEntry {
                path: rel.to_owned(),
                sha256,
                original: None,
                kind: None,
            },
        );
    }
    for file in evidence.files {
        // Read through the same guard as when the run loaded it (it may have been
        // replaced by a pipe since).
        let bytes = crate::files::read_bytes(Path::new(&file.path), crate::files::MAX_INPUT_BYTES)?;
        let sha256 = sha256_hex(&bytes);
        if sha256 != file.sha256 {
            return Err(EvidenceError::Changed(file.path.clone()));
        }
        let base = copy_path(&file.path);
        let mut rel = base.clone();
        let mut n = 1;
        while let Some(taken) = entries.get(&rel) {
            if taken.sha256 == sha256 && taken.original.as_deref() == Some(file.path.as_str()) {
                break;
            }
            n += 1;
            rel = format!("{base}~{n}");
        }
        if entries.contains_key(&rel) {
            continue;
        }
        write_file(root, &rel, &bytes)?;
        entries.insert(
            rel.clone(),
            ManifestEntry {
                path: rel,
                sha256,
                original: Some(file.path.clone()),
                kind: Some(file.kind),
            },
        );
    }
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        harness: "fhirconf".to_owned(),
        harness_version: evidence.harness_version.to_owned(),
        created_at: evidence.created_at.to_owned(),
        files: entries.into_values().collect(),
    };
    let mut bytes =
        serde_json::to_vec_pretty(&manifest).map_err(|e| EvidenceError::Manifest(e.to_string()))?;
    bytes.push(b'\n');
    write_file(root, MANIFEST, &bytes)?;
    if let Some(key) = key {
        write_file(root, SIGNATURE, &key.sign(&bytes).to_bytes())?;
    }
    Ok(manifest.files.len() + 1 + usize::from(key.is_some()))
}

/// One thing `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Listed, present, and its digest differs.
    Altered(String),
    /// Listed, and not there (or not a regular file).
    Missing(String),
    /// There, and not listed.
    Extra(String),
    /// Listed with a path that leaves the folder; not read.
    UnsafePath(String),
    /// `--key` was given and `manifest.sig` is not there.
    SignatureMissing,
    /// `manifest.sig` does not sign `manifest.json` with the given key.
    BadSignature,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Altered(p) => {
                write!(f, "altered: {p} (its SHA-256 differs from the manifest)")
            }
            Problem::Missing(p) => write!(f, "missing: {p}"),
            Problem::Extra(p) => write!(f, "extra:   {p} (not in the manifest)"),
            Problem::UnsafePath(p) => {
                write!(
                    f,
                    "invalid: the manifest lists {p:?}, which is outside the folder"
                )
            }
            Problem::SignatureMissing => {
                write!(f, "missing: {SIGNATURE} (the folder is not signed)")
            }
            Problem::BadSignature => write!(
                f,
                "altered: {MANIFEST} or {SIGNATURE} (the signature does not match this key)"
            ),
        }
    }
}

/// How the signature fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureCheck {
    /// `--key` was given and the signature holds.
    Valid,
    /// `--key` was given and the signature is missing or wrong (see the problems).
    Invalid,
    /// A signature is there, and no key was given to check it with.
    NotChecked,
    /// Neither a signature nor a key.
    Unsigned,
}

#[derive(Debug, Clone)]
pub struct Verification {
    /// Files listed in the manifest.
    pub listed: usize,
    pub problems: Vec<Problem>,
    pub signature: SignatureCheck,
    pub harness_version: String,
    pub created_at: String,
}

fn is_safe(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && !rel.contains('\\')
        && !rel.contains(':')
        && rel.split('/').all(|p| !matches!(p, "" | "." | ".."))
        && rel != MANIFEST
        && rel != SIGNATURE
}

/// Checks every file `dir`'s manifest lists, looks for files it does not list, and
/// with `key` checks the signature. `Err` means the folder cannot be checked at all.
pub fn verify(dir: &Path, key: Option<&VerifyingKey>) -> Result<Verification, EvidenceError> {
    let shown = display_path(dir);
    if !dir.is_dir() {
        return Err(EvidenceError::NotAFolder(shown));
    }
    let (manifest_bytes, manifest) = read_manifest(dir)?;
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for entry in &manifest.files {
        if !is_safe(&entry.path) {
            problems.push(Problem::UnsafePath(entry.path.clone()));
            continue;
        }
        listed.insert(entry.path.as_str());
        let path = dir.join(&entry.path);
        // A listed FIFO, device or symlink counts as missing: nothing is read from it.
        match crate::files::sha256_file(&path) {
            Ok(sha256) => {
                if sha256 != entry.sha256 {
                    problems.push(Problem::Altered(entry.path.clone()));
                }
            }
            Err(_) => problems.push(Problem::Missing(entry.path.clone())),
        }
    }
    for present in walk(dir)? {
        if present != MANIFEST && present != SIGNATURE && !listed.contains(present.as_str()) {
            problems.push(Problem::Extra(present));
        }
    }
    let signature_path = dir.join(SIGNATURE);
    let signed = signature_path.exists();
    let signature = match key {
        None if signed => SignatureCheck::NotChecked,
        None => SignatureCheck::Unsigned,
        Some(_) if !signed => {
            problems.push(Problem::SignatureMissing);
            SignatureCheck::Invalid
        }
        Some(key) => {
            // An Ed25519 signature is 64 bytes; nothing larger is read.
            let holds = crate::files::read_bytes(&signature_path, 64)
                .ok()
                .and_then(|bytes| Signature::from_slice(&bytes).ok())
                .is_some_and(|sig| key.verify_strict(&manifest_bytes, &sig).is_ok());
            if holds {
                SignatureCheck::Valid
            } else {
                problems.push(Problem::BadSignature);
                SignatureCheck::Invalid
            }
        }
    };
    Ok(Verification {
        listed: manifest.files.len(),
        problems,
        signature,
        harness_version: manifest.harness_version,
        created_at: manifest.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_stay_inside_the_folder() {
        assert_eq!(
            copy_path("scenarios/r4-core/read.yaml"),
            "files/scenarios/r4-core/read.yaml"
        );
        assert_eq!(copy_path("./a/./b.yaml"), "files/a/b.yaml");
        assert_eq!(copy_path("a/fixtures/../x.json"), "files/a/x.json");
        assert_eq!(
            copy_path("/tmp/x/leak.yaml"),
            "files/_absolute_/tmp/x/leak.yaml"
        );
        assert_eq!(
            copy_path("../other/a.yaml"),
            "files/_outside_/__/other/a.yaml"
        );
        assert_eq!(copy_path("a/../../b.yaml"), "files/_outside_/__/b.yaml");
        assert_eq!(
            copy_path("C:/suites/a.yaml"),
            "files/_absolute_/C/suites/a.yaml"
        );
        for p in ["/etc/passwd", "../../x", "a/../../..", "C:\\x\\..\\..\\y"] {
            assert!(is_safe(&copy_path(p)), "{p} → {}", copy_path(p));
        }
    }

    #[test]
    fn manifest_paths_that_leave_the_folder_are_unsafe() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "C:/x",
            MANIFEST,
            "a\\b",
        ] {
            assert!(!is_safe(bad), "{bad}");
        }
        assert!(is_safe("files/a.yaml"));
    }
}
