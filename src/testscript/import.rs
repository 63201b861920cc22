//! `fhirconf import testscript FILES --out DIR`: one YAML scenario file per script,
//! its fixtures as JSON files in `<name>.fixtures/` beside it. Every file written is
//! loaded back before the command says it is done.

use std::path::{Path, PathBuf};

use crate::cli::ImportArgs;
use crate::diag::Diagnostic;
use crate::exit;
use crate::files::{MAX_INPUT_BYTES, display_path, read_text};

pub fn import(args: &ImportArgs) -> u8 {
    let mut problems = Vec::new();
    let mut written = 0;
    for file in &args.files {
        match import_one(file, &args.out, args.force) {
            Ok(yaml) => {
                println!("{} -> {}", display_path(file), display_path(&yaml));
                written += 1;
            }
            Err(mut d) => problems.append(&mut d),
        }
    }
    for d in &problems {
        eprintln!("{d}\n");
    }
    if problems.is_empty() {
        println!(
            "{written} TestScript(s) imported into {}",
            display_path(&args.out)
        );
        exit::SUCCESS
    } else {
        eprintln!(
            "error: {} of {} TestScript(s) not imported",
            args.files.len() - written,
            args.files.len()
        );
        exit::INVALID
    }
}

fn import_one(file: &Path, out: &Path, force: bool) -> Result<PathBuf, Vec<Diagnostic>> {
    let display = display_path(file);
    let Some(xml) = super::format_of(file) else {
        return Err(vec![Diagnostic::file(
            &display,
            "a TestScript file ends in .json or .xml",
        )]);
    };
    let text = read_text(file, &display, MAX_INPUT_BYTES).map_err(|d| vec![d])?;
    let Some(script) = super::read_script(&display, &text, xml).map_err(|d| vec![d])? else {
        return Err(vec![Diagnostic::whole_file(
            &display,
            "not a TestScript resource",
        )]);
    };
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("testscript")
        .to_owned();
    let fixtures_dir = format!("{stem}.fixtures");
    let base = file.parent().unwrap_or(Path::new("."));
    let translated = super::translate(
        &display,
        &script,
        base,
        super::Fixtures::Files(fixtures_dir.clone()),
    )?;
    let yaml_path = out.join(format!("{stem}.yaml"));
    let mut targets = vec![(yaml_path.clone(), translated.yaml.clone())];
    for (rel, json) in &translated.fixture_files {
        targets.push((out.join(rel), json.clone()));
    }
    if !force && let Some((existing, _)) = targets.iter().find(|(p, _)| p.exists()) {
        return Err(vec![Diagnostic::file(
            display_path(existing),
            "already exists (--force overwrites)",
        )]);
    }
    let write = |path: &Path, content: &str| -> Result<(), Vec<Diagnostic>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                vec![Diagnostic::file(
                    display_path(dir),
                    format!("cannot create: {e}"),
                )]
            })?;
        }
        std::fs::write(path, content).map_err(|e| {
            vec![Diagnostic::file(
                display_path(path),
                format!("cannot write: {e}"),
            )]
        })
    };
    for (path, content) in &targets {
        write(path, content)?;
    }
    // What was written must load as it is: a file that does not is our bug.
    crate::scenario::load::load_file(&yaml_path, &Default::default()).map_err(|errors| {
        errors
            .into_iter()
            .map(|mut d| {
                d.message = format!(
                    "the imported file does not load (a fhirconf bug): {}",
                    d.message
                );
                d
            })
            .collect::<Vec<_>>()
    })?;
    Ok(yaml_path)
}
