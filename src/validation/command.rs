//! `fhirconf validate FILES...`: local FHIR JSON resources and Bundles checked offline
//! against FHIR R4 (and profiles), issues printed rustc-style. The validation itself is
//! the `fhir-check` workspace crate, compiled only with the `validation` feature; the
//! default build keeps the command and says how to get it.

#[cfg(not(feature = "validation"))]
pub fn run(_: &crate::cli::ValidateArgs) -> u8 {
    eprintln!("error: {}", super::HOW_TO_ENABLE);
    crate::exit::VALIDATION_NOT_BUILT
}

#[cfg(feature = "validation")]
pub use with_validation::run;

#[cfg(feature = "validation")]
mod with_validation {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use fhir_check::{Issue, Severity, Validator};
    use serde_json::Value;

    use crate::cli::ValidateArgs;
    use crate::exit;
    use crate::files::{MAX_FHIR_JSON_BYTES, display_path, read_bytes};

    #[derive(Default)]
    struct Counts {
        errors: usize,
        warnings: usize,
        notes: usize,
        files_with_errors: usize,
        unreadable: usize,
    }

    pub fn run(args: &ValidateArgs) -> u8 {
        let started = Instant::now();
        let mut validator = match Validator::new() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::for_validation(true, 0);
            }
        };
        if let Err(e) = crate::validation::profiles::built_in(&mut validator) {
            eprintln!("error: {e}");
            return exit::for_validation(true, 0);
        }
        for package in &args.package {
            if let Err(message) = crate::validation::profiles::load(&mut validator, package) {
                eprintln!("error: {message}");
                return exit::for_validation(true, 0);
            }
        }
        if let Some(profile) = &args.profile
            && !validator.has_profile(profile)
        {
            eprintln!(
                "error: profile {profile} is not loaded: give the file that defines it with --package \
(the FHIR R4 core definitions and the US Core STU3.1.1 Practitioner profile are built in)"
            );
            return exit::for_validation(true, 0);
        }

        if let Some(rounds) = args.bench {
            return bench(&validator, args, started.elapsed(), rounds.max(1));
        }
        let mut counts = Counts::default();
        for file in &args.files {
            let shown = display_path(file);
            let value = match read_bytes(file, MAX_FHIR_JSON_BYTES) {
                Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                    Ok(value) => value,
                    Err(e) => {
                        println!(
                            "error: not JSON: {e}\n  --> {shown}:{}:{}\n",
                            e.line(),
                            e.column()
                        );
                        counts.errors += 1;
                        counts.files_with_errors += 1;
                        continue;
                    }
                },
                Err(e) => {
                    eprintln!("error: {e}");
                    counts.unreadable += 1;
                    continue;
                }
            };
            let issues = validator.validate(&value, args.profile.as_deref());
            let mut errors_here = 0;
            for issue in &issues {
                match issue.severity {
                    Severity::Error => {
                        counts.errors += 1;
                        errors_here += 1;
                    }
                    Severity::Warning => counts.warnings += 1,
                    Severity::Information => counts.notes += 1,
                }
                if issue.severity != Severity::Information || args.verbose {
                    println!("{}", render(&shown, issue));
                }
            }
            if errors_here > 0 {
                counts.files_with_errors += 1;
            }
        }
        println!("{}", summary(args.files.len(), &counts, args.verbose));
        exit::for_validation(counts.unreadable > 0, counts.errors)
    }

    /// `--bench ROUNDS`: the one-time load, then per file the median time of a
    /// validation (after a few warm-up rounds: parse caches, allocator).
    fn bench(validator: &Validator, args: &ValidateArgs, load: Duration, rounds: u32) -> u8 {
        println!(
            "load: {:.1} ms (R4 packs and --package)",
            load.as_secs_f64() * 1e3
        );
        for file in &args.files {
            let value = match read_json(file) {
                Ok(value) => value,
                Err(message) => {
                    eprintln!("error: {message}");
                    return exit::for_validation(true, 0);
                }
            };
            let profile = args.profile.as_deref();
            let issues = validator.validate(&value, profile).len();
            for _ in 0..rounds.min(20) {
                drop(validator.validate(&value, profile));
            }
            let mut times: Vec<Duration> = (0..rounds)
                .map(|_| {
                    let t = Instant::now();
                    drop(validator.validate(&value, profile));
                    t.elapsed()
                })
                .collect();
            times.sort();
            println!(
                "{}: {:.1} us median over {rounds} rounds ({issues} issues)",
                display_path(file),
                times[times.len() / 2].as_secs_f64() * 1e6
            );
        }
        exit::SUCCESS
    }

    /// One issue, rustc-style:
    /// ```text
    /// error[app-3]: Only proposed or cancelled appointments can be missing start/end dates
    ///   --> appointment.json: Appointment
    ///    = profile: http://...
    /// ```
    fn render(file: &str, issue: &Issue) -> String {
        let level = match issue.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "note",
        };
        let rule = issue
            .rule
            .as_deref()
            .map(|r| format!("[{r}]"))
            .unwrap_or_default();
        let location = if issue.path.is_empty() {
            file.to_owned()
        } else {
            format!("{file}: {}", issue.path)
        };
        let mut text = format!("{level}{rule}: {}\n  --> {location}\n", issue.message);
        if let Some(profile) = &issue.profile {
            text.push_str(&format!("   = profile: {profile}\n"));
        }
        text
    }

    fn summary(files: usize, c: &Counts, verbose: bool) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let mut text = format!(
            "validate: {}, {} with errors: {}, {}",
            plural(files, "file", "files"),
            c.files_with_errors,
            plural(c.errors, "error", "errors"),
            plural(c.warnings, "warning", "warnings"),
        );
        if c.notes > 0 {
            text.push_str(&format!(", {}", plural(c.notes, "note", "notes")));
            if !verbose {
                text.push_str(" (--verbose shows them)");
            }
        }
        if c.unreadable > 0 {
            text.push_str(&format!(
                "; {} not read",
                plural(c.unreadable, "file", "files")
            ));
        }
        text
    }

    fn read_json(path: &Path) -> Result<Value, String> {
        crate::validation::profiles::read_json(path).map_err(|e| e.to_string())
    }
}
