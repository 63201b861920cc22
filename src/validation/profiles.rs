//! Profiles for validation: the one built in (US Core STU3.1.1 Practitioner) and those
//! a run names (`--package`, the target's `profiles:`): a StructureDefinition JSON
//! file (or an array or Bundle of them), a folder of such files, or a FHIR NPM package
//! tarball (`.tgz`, the form IGs are published in).

/// A profile source that could not be loaded: the run stops before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ProfileError {
    /// The file as given (for a package, `package.tgz: package/StructureDefinition-x.json`).
    pub file: String,
    pub reason: String,
}

#[cfg(feature = "validation")]
pub(super) use loading::{built_in, load, read_json};

#[cfg(feature = "validation")]
mod loading {
    use std::io::Read;
    use std::path::{Path, PathBuf};

    use fhir_check::Validator;
    use serde_json::Value;

    use super::ProfileError;
    use crate::files::{MAX_FHIR_JSON_BYTES, display_path, io_reason, read_bytes};

    /// US Core STU3.1.1 Practitioner, as HL7 publishes it (CC0; `profiles/us-core-3.1.1/`).
    const US_CORE_PRACTITIONER: &str =
        include_str!("../../profiles/us-core-3.1.1/StructureDefinition-us-core-practitioner.json");

    /// All of a package's files together may unpack to at most this much.
    const MAX_PACKAGE_BYTES: u64 = 512 * 1024 * 1024;

    pub fn built_in(validator: &mut Validator) -> Result<(), ProfileError> {
        let error = |reason: String| ProfileError {
            file: "the built-in US Core Practitioner profile".to_owned(),
            reason,
        };
        let sd: Value =
            serde_json::from_str(US_CORE_PRACTITIONER).map_err(|e| error(e.to_string()))?;
        validator
            .add_profiles(vec![sd])
            .map_err(|e| error(e.to_string()))?;
        Ok(())
    }

    /// One JSON file, every `*.json` file directly in a folder (there, files that hold
    /// neither StructureDefinitions nor Bundles are skipped), or a `.tgz` package.
    pub fn load(validator: &mut Validator, path: &Path) -> Result<(), ProfileError> {
        let shown = display_path(path);
        let fail = |reason: String| ProfileError {
            file: shown.clone(),
            reason,
        };
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| fail(format!("cannot read the folder: {}", io_reason(&e))))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(fail("the folder holds no .json file".to_owned()));
            }
            for file in files {
                let value = read_json(&file)?;
                if holds_definitions(&value) {
                    add(validator, &display_path(&file), value)?;
                }
            }
            Ok(())
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with(".tgz"))
        {
            package(validator, path, &shown)
        } else {
            let value = read_json(path)?;
            add(validator, &shown, value)
        }
    }

    fn holds_definitions(value: &Value) -> bool {
        let kind = value.get("resourceType").and_then(Value::as_str);
        value.is_array() || matches!(kind, Some("StructureDefinition") | Some("Bundle"))
    }

    /// A FHIR NPM package: the StructureDefinitions of profiles (derivation
    /// `constraint`) directly in its `package/` folder. One that the converter cannot
    /// use is a warning naming it, not the end of the run: an IG carries many, and the
    /// others still apply.
    fn package(validator: &mut Validator, path: &Path, shown: &str) -> Result<(), ProfileError> {
        let fail = |reason: String| ProfileError {
            file: shown.to_owned(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| fail(io_reason(&e)))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let entries = archive
            .entries()
            .map_err(|e| fail(format!("not a gzipped tar archive: {e}")))?;
        let (mut total, mut profiles) = (0u64, 0usize);
        for entry in entries {
            let mut entry =
                entry.map_err(|e| fail(format!("not a readable gzipped tar archive: {e}")))?;
            let name = entry
                .path()
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let Some(file_name) = name.strip_prefix("package/") else {
                continue;
            };
            if file_name.contains('/')
                || !file_name.ends_with(".json")
                || !entry.header().entry_type().is_file()
                || file_name == "package.json"
                || file_name == ".index.json"
            {
                continue;
            }
            let size = entry.size();
            total = total.saturating_add(size);
            if size > MAX_FHIR_JSON_BYTES || total > MAX_PACKAGE_BYTES {
                return Err(fail(format!(
                    "{name} makes the package larger than fhirconf reads ({} MiB per file, {} MiB in all)",
                    MAX_FHIR_JSON_BYTES >> 20,
                    MAX_PACKAGE_BYTES >> 20
                )));
            }
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            (&mut entry)
                .take(MAX_FHIR_JSON_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| fail(format!("{name}: {e}")))?;
            let value: Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("warning: {shown}: {name}: not JSON ({e}); skipped");
                    continue;
                }
            };
            let is_profile = value.get("resourceType").and_then(Value::as_str)
                == Some("StructureDefinition")
                && value.get("derivation").and_then(Value::as_str) == Some("constraint");
            if !is_profile {
                continue;
            }
            match validator.add_profiles(vec![value]) {
                Ok(loaded) => profiles += loaded.profiles.len(),
                Err(e) => eprintln!("warning: {shown}: {name}: {e}; skipped"),
            }
        }
        if profiles == 0 {
            return Err(fail(
                "the package holds no profile (no StructureDefinition with derivation `constraint` in package/)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    pub(crate) fn read_json(path: &Path) -> Result<Value, ProfileError> {
        let shown = display_path(path);
        let bytes = read_bytes(path, MAX_FHIR_JSON_BYTES).map_err(|e| ProfileError {
            file: shown.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| ProfileError {
            file: format!("{shown}:{}:{}", e.line(), e.column()),
            reason: format!("not JSON: {e}"),
        })
    }

    fn add(validator: &mut Validator, shown: &str, value: Value) -> Result<(), ProfileError> {
        let loaded = validator
            .add_profiles(vec![value])
            .map_err(|e| ProfileError {
                file: shown.to_owned(),
                reason: e.to_string(),
            })?;
        for warning in loaded.warnings {
            eprintln!("warning: {shown}: {warning}");
        }
        Ok(())
    }
}
