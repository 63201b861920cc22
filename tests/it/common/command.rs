//! A builder for running the real `fhirconf` binary and asserting on what it did, in
//! the spirit of casey/just's test builder:
//!
//! ```ignore
//! Fhirconf::new()
//!     .args(["run", "tests/cases/passing", "--base-url", &server.base_url])
//!     .reports(&dir)
//!     .run()
//!     .expect_code(0)
//!     .stdout_contains("6 passed");
//! ```

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{root, text};

/// The reports `reports()` adds, each with the flag that names it.
const REPORTS: [(&str, &str); 4] = [
    ("--junit", "junit.xml"),
    ("--json", "run.json"),
    ("--markdown", "summary.md"),
    ("--html", "index.html"),
];

/// One invocation of `fhirconf`, run from the crate root without our own
/// FHIRCONF_TARGET and the CI job summary variable (so tests run under GitHub Actions
/// do not write to its summary), and with its model cache in the target folder,
/// unless `env` sets them.
#[must_use]
#[derive(Clone, Debug, Default)]
pub struct Fhirconf {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    reports: Option<PathBuf>,
}

impl Fhirconf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// Every report into `dir`: right after the subcommand (`run`) come `--color never`
    /// and the flag of each report the arguments do not name themselves.
    pub fn reports(mut self, dir: &Path) -> Self {
        self.reports = Some(dir.to_owned());
        self
    }

    /// The command line after the program name.
    fn argv(&self) -> Vec<OsString> {
        let Some(dir) = &self.reports else {
            return self.args.clone();
        };
        let (subcommand, rest) = self.args.split_first().expect("reports() needs `run`");
        let mut argv = vec![subcommand.clone(), "--color".into(), "never".into()];
        for (flag, file) in REPORTS {
            if !self.args.iter().any(|a| a == flag) {
                argv.push(flag.into());
                argv.push(dir.join(file).into());
            }
        }
        argv.extend(rest.iter().cloned());
        argv
    }

    /// The command, not yet started (to spawn it, or to pipe its output).
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fhirconf"));
        command
            .args(self.argv())
            .env_remove("FHIRCONF_TARGET")
            .env_remove("GITHUB_STEP_SUMMARY")
            // The model cache in the target folder, not the user's cache folder.
            .env(
                "FHIRCONF_CACHE",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("model-cache"),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(root());
        command
    }

    /// Runs it to the end.
    pub fn run(&self) -> Ran {
        let output = self
            .command()
            .output()
            .unwrap_or_else(|e| panic!("cannot run fhirconf: {e}"));
        Ran {
            argv: self.argv(),
            output,
        }
    }
}

/// What a finished `fhirconf` did. Its `expect_*` and `*_contains` methods panic with
/// the command line, the exit code and the whole stdout and stderr.
#[derive(Debug)]
pub struct Ran {
    argv: Vec<OsString>,
    output: Output,
}

impl Ran {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stdout(&self) -> String {
        text(&self.output.stdout)
    }

    pub fn stderr(&self) -> String {
        text(&self.output.stderr)
    }

    pub fn output(&self) -> &Output {
        &self.output
    }

    /// The command line, the exit code, stdout and stderr, for a failure message.
    pub fn transcript(&self) -> String {
        let argv: Vec<_> = self.argv.iter().map(|a| a.to_string_lossy()).collect();
        format!(
            "fhirconf {}\nstatus {:?}\nstdout:\n{}\nstderr:\n{}",
            argv.join(" "),
            self.code(),
            self.stdout(),
            self.stderr()
        )
    }

    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code(), Some(code), "{}", self.transcript());
        self
    }

    #[track_caller]
    pub fn stdout_contains(self, wanted: &str) -> Self {
        assert!(
            self.stdout().contains(wanted),
            "no `{wanted}` in stdout:\n{}",
            self.transcript()
        );
        self
    }

    #[track_caller]
    pub fn stderr_contains(self, wanted: &str) -> Self {
        assert!(
            self.stderr().contains(wanted),
            "no `{wanted}` in stderr:\n{}",
            self.transcript()
        );
        self
    }
}
