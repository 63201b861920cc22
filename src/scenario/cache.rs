//! The model cache: a scenario file's loaded, validated model, kept between runs so
//! that a file already loaded is not parsed again (parsing YAML was a quarter of the
//! CPU of a run, docs/performance.md).
//!
//! It is meant to be invisible. An entry is used only when everything the model was
//! built from is what it was: the file's bytes (SHA-256), every fixture and
//! `each_file` it read (read again and compared), its display path and folder, the
//! variables the run supplies, and the fhirconf binary itself (version, size, mtime).
//! A missing, unreadable, corrupt or foreign entry is a miss: the file is parsed as
//! without a cache, and the entry written anew. Only models that loaded without a
//! problem are kept (diagnostics always come from parsing), and only YAML files
//! (a TestScript is translated first).
//!
//! An entry is written the second time a file is loaded, not the first: the first
//! leaves an empty marker (`<key>.seen`). Writing an entry (serialize, read back to
//! check, write) made a run on an empty cache 13 % dearer than one without a cache
//! (docs/performance.md), and that is every CI run on a fresh machine, whose cache is
//! thrown away; a marker costs one small file. An entry already there for the file (of
//! an earlier version of it, or corrupt) counts as a sighting: it is replaced at once.
//!
//! Where: `$FHIRCONF_CACHE` (a folder, or `off` for no cache), else
//! `$XDG_CACHE_HOME/fhirconf/models`, else `~/.cache/fhirconf/models`. One entry per
//! scenario file and binary (an edited file replaces its entry), private to the user
//! (0700 folder, 0600 files); entries not written for 30 days are removed by the next
//! run that writes one, and the folder may be deleted at any time.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::load::{LoadOptions, MAX_FILE_BYTES};
use super::model::{FixtureFile, Scenario, Step, SuiteFile};
use crate::files::{read_bytes, read_text, sha256_hex};

/// The environment variable that moves or turns off the cache.
pub const ENV: &str = "FHIRCONF_CACHE";

/// Changed whenever the layout of an entry changes (the binary's identity covers
/// changes of the model's types).
const FORMAT: &str = "fhirconf model cache 1";

/// An entry not written for this long is removed by the next run that writes one.
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// `<64 hex digits>.json` (an entry) or `.seen` (a first sighting's marker): the only
/// files the cache removes besides its own temporary ones.
fn is_entry_name(name: &str) -> bool {
    name.strip_suffix(".json")
        .or_else(|| name.strip_suffix(".seen"))
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An entry larger than this is neither read nor written.
const MAX_ENTRY_BYTES: u64 = 8 * MAX_FILE_BYTES;

#[derive(Debug)]
pub struct ModelCache {
    dir: PathBuf,
    /// What identifies the running binary: a rebuilt fhirconf never reads the entries
    /// of another build.
    binary: String,
}

/// Which entry a file has, and the text the entry must hold to be its own.
pub struct Key {
    name: String,
    text: String,
}

impl ModelCache {
    /// The cache the environment asks for, or `None` (turned off, no home folder, or
    /// the binary cannot be identified).
    pub fn from_env() -> Option<Arc<ModelCache>> {
        let dir = match std::env::var_os(ENV) {
            Some(v) if v == "off" || v == "0" || v == "false" => return None,
            Some(v) if !v.is_empty() => PathBuf::from(v),
            _ => default_dir()?,
        };
        ModelCache::in_dir(dir).map(Arc::new)
    }

    /// A cache in `dir` (created when the first entry is written).
    pub fn in_dir(dir: PathBuf) -> Option<ModelCache> {
        Some(ModelCache {
            dir,
            binary: binary_identity()?,
        })
    }

    /// The entry of the file shown as `display`, read from `base`, under `opts`.
    pub fn key(&self, display: &str, base: &Path, opts: &LoadOptions) -> Key {
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_owned());
        let text = serde_json::to_string(&(
            FORMAT,
            &self.binary,
            display,
            format!("{base:?}"),
            &opts.known_vars,
        ))
        .unwrap_or_default();
        Key {
            name: sha256_hex(text.as_bytes()),
            text,
        }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.json", key.name))
    }

    fn marker(&self, key: &Key) -> PathBuf {
        self.dir.join(format!("{}.seen", key.name))
    }

    /// Whether the file of `key` is worth an entry after a miss: it was loaded before
    /// (a marker or an entry of it is there). The first time, leaves the marker and
    /// says no.
    pub fn seen_before(&self, key: &Key) -> bool {
        if self.path(key).exists() {
            return true;
        }
        // Creating the marker is the test for it: one call where a file seen before has
        // one, and the folder is made only when it is missing.
        let create = || {
            let mut file = std::fs::OpenOptions::new();
            file.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
            file.open(self.marker(key))
        };
        let made = create().or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => self.create_dir().and_then(|()| create()),
            _ => Err(e),
        });
        made.is_err_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists)
    }

    /// The model kept for `key` when the file's bytes had this SHA-256 and every other
    /// file it read is unchanged; `None` otherwise (never an error).
    pub fn get(&self, key: &Key, sha256: &str) -> Option<SuiteFile> {
        let bytes = read_bytes(&self.path(key), MAX_ENTRY_BYTES).ok()?;
        let newline = bytes.iter().position(|b| *b == b'\n')?;
        let (digest, body) = (&bytes[..newline], &bytes[newline + 1..]);
        if digest != sha256_hex(body).as_bytes() {
            return None;
        }
        let entry: EntryIn = serde_json::from_slice(body).ok()?;
        if entry.key != key.text || entry.sha256 != sha256 {
            return None;
        }
        for (path, digest) in &entry.read {
            let text = read_text(path, "", MAX_FILE_BYTES).ok()?;
            if sha256_hex(text.as_bytes()) != *digest {
                return None;
            }
        }
        entry.into_suite(sha256)
    }

    /// Keeps `suite` for `key`; `read` are the other files it was built from. Does
    /// nothing when the model would not come back the same, or cannot be written.
    pub fn put(&self, key: &Key, suite: &SuiteFile, read: &[(PathBuf, String)]) {
        if suite.testscript.is_some() {
            return;
        }
        let Some(body) = EntryOut::of(key, suite, read).and_then(|e| e.to_json()) else {
            return;
        };
        // What is read back must be what was kept: a number that would not parse back
        // to the same bits, or anything else lossy, means no entry for this file. The
        // second serialization is compared as it is made, not kept.
        if body.len() as u64 >= MAX_ENTRY_BYTES {
            return;
        }
        let Ok(back) = serde_json::from_str::<EntryIn>(&body) else {
            return;
        };
        let mut same = SameAs {
            expected: body.as_bytes(),
            at: 0,
        };
        if serde_json::to_writer(&mut same, &back.as_out()).is_err() || same.at != body.len() {
            return;
        }
        drop(back);
        if self.write(key, &body).is_ok() {
            let _ = std::fs::remove_file(self.marker(key));
            self.prune_once();
        }
    }

    /// Removes, once per process and only after a write (a run that reads only
    /// entries lists nothing), entries not written for [`MAX_AGE`] (an entry in use is
    /// rewritten then, at the cost of one parse) and temporary files a killed run
    /// left: entries of files that no longer exist, or of older binaries, go away.
    fn prune_once(&self) {
        static PRUNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !PRUNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.prune();
        }
    }

    fn prune(&self) {
        let Ok(list) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = std::time::SystemTime::now();
        for entry in list.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let max_age = if is_entry_name(&name) {
                MAX_AGE
            } else if name.starts_with(".entry.") && name.ends_with(".tmp") {
                std::time::Duration::from_secs(24 * 3600)
            } else {
                continue;
            };
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > max_age);
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// The cache's folder, private to the user, made if missing.
    fn create_dir(&self) -> std::io::Result<()> {
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(&self.dir)
    }

    fn write(&self, key: &Key, body: &str) -> std::io::Result<()> {
        self.create_dir()?;
        // A private temporary file (0600), renamed over the entry: a reader sees the
        // old entry or the new one, never half of one.
        let mut tmp = tempfile::Builder::new()
            .prefix(".entry.")
            .suffix(".tmp")
            .tempfile_in(&self.dir)?;
        {
            let mut w = std::io::BufWriter::new(tmp.as_file_mut());
            w.write_all(sha256_hex(body.as_bytes()).as_bytes())?;
            w.write_all(b"\n")?;
            w.write_all(body.as_bytes())?;
            w.flush()?;
        }
        tmp.persist(self.path(key)).map(drop).map_err(|e| e.error)
    }
}

/// A writer that fails as soon as what is written differs from `expected`.
struct SameAs<'a> {
    expected: &'a [u8],
    at: usize,
}

impl Write for SameAs<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.at + buf.len();
        if self.expected.get(self.at..end) != Some(buf) {
            return Err(std::io::Error::other("differs"));
        }
        self.at = end;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `$XDG_CACHE_HOME/fhirconf/models` (an absolute path only, as the spec says), else
/// `$HOME/.cache/fhirconf/models`.
fn default_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = match xdg {
        Some(dir) => dir,
        None => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".cache"),
    };
    Some(base.join("fhirconf").join("models"))
}

/// The version, and the size, modification time and inode of the running executable.
fn binary_identity() -> Option<String> {
    static IDENTITY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            let meta = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
            let modified = meta
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&meta);
            #[cfg(not(unix))]
            let inode = 0;
            Some(format!(
                "{} {} {} {inode}",
                env!("CARGO_PKG_VERSION"),
                meta.len(),
                modified.as_nanos()
            ))
        })
        .clone()
}

/// An entry as written. Steps shared by the scenarios of an `each:` are kept once
/// (`lists`), each scenario naming its steps and cleanup by index (`shared`).
#[derive(Serialize)]
struct EntryOut<'a> {
    key: &'a str,
    sha256: &'a str,
    read: &'a [(PathBuf, String)],
    display: &'a str,
    fixtures: &'a [FixtureFile],
    scenarios: &'a [Scenario],
    lists: Vec<&'a Vec<Step>>,
    shared: Vec<(usize, usize)>,
}

/// An entry as read.
#[derive(Deserialize)]
struct EntryIn {
    key: String,
    sha256: String,
    read: Vec<(PathBuf, String)>,
    display: String,
    fixtures: Vec<FixtureFile>,
    scenarios: Vec<Scenario>,
    lists: Vec<Vec<Step>>,
    shared: Vec<(usize, usize)>,
}

impl<'a> EntryOut<'a> {
    fn of(key: &'a Key, suite: &'a SuiteFile, read: &'a [(PathBuf, String)]) -> Option<Self> {
        let mut index: HashMap<*const Vec<Step>, usize> = HashMap::new();
        let mut lists = Vec::new();
        let mut place = |list: &'a Arc<Vec<Step>>| {
            *index.entry(Arc::as_ptr(list)).or_insert_with(|| {
                lists.push(&**list);
                lists.len() - 1
            })
        };
        let shared = suite
            .scenarios
            .iter()
            .map(|s| (place(&s.steps), place(&s.cleanup)))
            .collect();
        Some(EntryOut {
            key: &key.text,
            sha256: &suite.sha256,
            read,
            display: &suite.display,
            fixtures: &suite.fixtures,
            scenarios: &suite.scenarios,
            lists,
            shared,
        })
    }

    fn to_json(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
}

impl EntryIn {
    fn as_out(&self) -> EntryOut<'_> {
        EntryOut {
            key: &self.key,
            sha256: &self.sha256,
            read: &self.read,
            display: &self.display,
            fixtures: &self.fixtures,
            scenarios: &self.scenarios,
            lists: self.lists.iter().collect(),
            shared: self.shared.clone(),
        }
    }

    fn into_suite(self, sha256: &str) -> Option<SuiteFile> {
        if self.shared.len() != self.scenarios.len() {
            return None;
        }
        let lists: Vec<Arc<Vec<Step>>> = self.lists.into_iter().map(Arc::new).collect();
        let mut scenarios = self.scenarios;
        for (scenario, (steps, cleanup)) in scenarios.iter_mut().zip(self.shared) {
            scenario.steps = Arc::clone(lists.get(steps)?);
            scenario.cleanup = Arc::clone(lists.get(cleanup)?);
        }
        Some(SuiteFile {
            display: self.display,
            sha256: sha256.to_owned(),
            fixtures: self.fixtures,
            scenarios,
            testscript: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::load::load_file;
    use crate::scenario::model::BodySpec;

    fn cached(dir: &Path) -> LoadOptions {
        LoadOptions {
            cache: Some(Arc::new(
                ModelCache::in_dir(dir.join("cache")).expect("the test binary has an identity"),
            )),
            ..LoadOptions::default()
        }
    }

    /// The cache's files whose names end in `suffix`.
    fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
        let Ok(list) = std::fs::read_dir(dir.join("cache")) else {
            return Vec::new();
        };
        list.map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect()
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        files(dir, ".json")
    }

    fn markers(dir: &Path) -> Vec<PathBuf> {
        files(dir, ".seen")
    }

    fn body_of(suite: &SuiteFile) -> serde_json::Value {
        match &suite.scenarios[0].steps[0].request.body {
            BodySpec::Json(v) => v.clone(),
            other => panic!("{other:?}"),
        }
    }

    const SCENARIO: &str = "name: first\nsteps:\n  - request: { method: POST, path: /Patient, json_file: p.json }\n    expect: { status: 201 }\n";

    /// A folder with [`SCENARIO`] and its fixture, and load options with a cache in it.
    fn scenario_in_cached_dir() -> (tempfile::TempDir, PathBuf, LoadOptions) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, SCENARIO).unwrap();
        std::fs::write(dir.path().join("p.json"), "{}").unwrap();
        let opts = cached(dir.path());
        (dir, file, opts)
    }

    #[test]
    fn an_unchanged_file_comes_from_the_cache_and_a_changed_one_never_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        std::fs::write(&file, SCENARIO).unwrap();
        std::fs::write(
            dir.path().join("p.json"),
            r#"{"resourceType":"Patient","n":1.1}"#,
        )
        .unwrap();
        let opts = cached(dir.path());

        let first = load_file(&file, &opts).unwrap();
        let second = load_file(&file, &opts).unwrap();
        assert_eq!(entries(dir.path()).len(), 1, "written the second time");
        let third = load_file(&file, &opts).unwrap();
        assert_eq!(format!("{first:?}"), format!("{second:?}"));
        assert_eq!(format!("{first:?}"), format!("{third:?}"));
        assert_eq!(third.scenarios[0].name, "first");

        // It is the entry that is served: one altered (and signed anew) shows.
        let entry = entries(dir.path()).remove(0);
        let kept = std::fs::read_to_string(&entry).unwrap();
        let body = kept
            .split_once('\n')
            .unwrap()
            .1
            .replace("\"name\":\"first\"", "\"name\":\"kept\"");
        std::fs::write(&entry, format!("{}\n{body}", sha256_hex(body.as_bytes()))).unwrap();
        assert_eq!(load_file(&file, &opts).unwrap().scenarios[0].name, "kept");

        // The same size, another name: never the kept model.
        std::fs::write(&file, SCENARIO.replace("first", "other")).unwrap();
        assert_eq!(load_file(&file, &opts).unwrap().scenarios[0].name, "other");
        assert_eq!(
            entries(dir.path()).len(),
            1,
            "an edited file replaces its entry"
        );

        // A fixture changed, the scenario file not.
        std::fs::write(
            dir.path().join("p.json"),
            r#"{"resourceType":"Patient","n":2.2}"#,
        )
        .unwrap();
        let changed = load_file(&file, &opts).unwrap();
        assert_eq!(body_of(&changed)["n"], serde_json::json!(2.2));
        assert_eq!(
            changed.fixtures,
            load_file(&file, &LoadOptions::default()).unwrap().fixtures
        );

        // Other variables supplied: another entry (the second time).
        let mut more = opts.clone();
        more.known_vars.insert("id".to_owned());
        load_file(&file, &more).unwrap();
        load_file(&file, &more).unwrap();
        assert_eq!(entries(dir.path()).len(), 2);

        // A file that does not load is reported as without a cache, and not kept.
        std::fs::write(&file, "name: broken\nsteps: [ {").unwrap();
        let without = load_file(&file, &LoadOptions::default()).unwrap_err();
        let with = load_file(&file, &opts).unwrap_err();
        assert_eq!(format!("{with:?}"), format!("{without:?}"));
    }

    #[test]
    fn the_first_load_leaves_a_marker_and_the_second_writes_the_entry() {
        let (dir, file, opts) = scenario_in_cached_dir();
        load_file(&file, &opts).unwrap();
        let marker = markers(dir.path());
        assert_eq!(marker.len(), 1);
        assert!(
            entries(dir.path()).is_empty(),
            "a first sighting writes no entry"
        );
        assert_eq!(std::fs::metadata(&marker[0]).unwrap().len(), 0);
        load_file(&file, &opts).unwrap();
        assert_eq!(entries(dir.path()).len(), 1);
        assert!(
            markers(dir.path()).is_empty(),
            "the entry replaces the marker"
        );
        // An edited file has an entry already: replaced at once, no marker first.
        std::fs::write(&file, SCENARIO.replace("first", "edited")).unwrap();
        load_file(&file, &opts).unwrap();
        assert!(markers(dir.path()).is_empty());
        let kept = std::fs::read_to_string(&entries(dir.path())[0]).unwrap();
        assert!(kept.contains("edited"), "{kept}");
        // Without a cache folder that can be made, loading works and writes nothing.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, "a file, not a folder").unwrap();
        let opts = LoadOptions {
            cache: Some(Arc::new(ModelCache::in_dir(blocked.join("cache")).unwrap())),
            ..LoadOptions::default()
        };
        load_file(&file, &opts).unwrap();
        load_file(&file, &opts).unwrap();
    }

    #[test]
    fn each_file_rows_are_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.yaml");
        std::fs::write(
            &file,
            "name: rows\neach_file: rows.csv\nsteps:\n  - request: { method: GET, path: \"/Patient/{{ id }}\" }\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rows.csv"), "id\na\nb\n").unwrap();
        let opts = cached(dir.path());
        assert_eq!(load_file(&file, &opts).unwrap().scenarios.len(), 2);
        assert_eq!(load_file(&file, &opts).unwrap().scenarios.len(), 2);
        let hit = load_file(&file, &opts).unwrap();
        assert_eq!(hit.scenarios.len(), 2);
        assert!(Arc::ptr_eq(
            &hit.scenarios[0].steps,
            &hit.scenarios[1].steps
        ));
        std::fs::write(dir.path().join("rows.csv"), "id\na\nb\nc\n").unwrap();
        assert_eq!(load_file(&file, &opts).unwrap().scenarios.len(), 3);
    }

    #[test]
    fn a_corrupt_or_foreign_entry_is_ignored_and_replaced() {
        let (dir, file, opts) = scenario_in_cached_dir();
        let expected = format!("{:?}", load_file(&file, &opts).unwrap());
        load_file(&file, &opts).unwrap();
        let entry = entries(dir.path()).remove(0);
        let good = std::fs::read(&entry).unwrap();

        let body = br#"{"key":"x"}"#;
        let foreign = [sha256_hex(body).as_bytes(), b"\n", body].concat();
        let truncated = good[..good.len() / 2].to_vec();
        let mut flipped = good.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        for bad in [
            Vec::new(),
            b"\n\n\xff".to_vec(),
            foreign,
            truncated,
            flipped,
        ] {
            std::fs::write(&entry, &bad).unwrap();
            assert_eq!(format!("{:?}", load_file(&file, &opts).unwrap()), expected);
            assert_eq!(std::fs::read(&entry).unwrap(), good, "written anew");
        }
        // An entry that cannot be read (a folder in its place) is a miss too.
        std::fs::remove_file(&entry).unwrap();
        std::fs::create_dir(&entry).unwrap();
        assert_eq!(format!("{:?}", load_file(&file, &opts).unwrap()), expected);
    }

    #[test]
    fn entries_not_written_for_a_month_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let aged = |name: &str, days: u64| {
            let path = dir.path().join(name);
            let file = std::fs::File::create(&path).unwrap();
            let age = std::time::Duration::from_secs(days * 86_400);
            file.set_modified(std::time::SystemTime::now() - age)
                .unwrap();
            path
        };
        let old = aged(&format!("{}.json", "a".repeat(64)), 31);
        let recent = aged(&format!("{}.json", "b".repeat(64)), 29);
        let old_marker = aged(&format!("{}.seen", "c".repeat(64)), 31);
        let recent_marker = aged(&format!("{}.seen", "d".repeat(64)), 29);
        let old_tmp = aged(".entry.x.tmp", 2);
        let new_tmp = aged(".entry.y.tmp", 0);
        let not_ours = aged("notes.json", 400);
        ModelCache::in_dir(dir.path().to_owned()).unwrap().prune();
        assert!(!old.exists() && !old_tmp.exists() && !old_marker.exists());
        assert!(recent.exists() && new_tmp.exists() && not_ours.exists() && recent_marker.exists());
    }

    #[cfg(unix)]
    #[test]
    fn entries_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, file, opts) = scenario_in_cached_dir();
        load_file(&file, &opts).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("cache")), 0o700);
        assert_eq!(mode(&markers(dir.path())[0]), 0o600);
        load_file(&file, &opts).unwrap();
        assert_eq!(mode(&entries(dir.path())[0]), 0o600);
    }
}
