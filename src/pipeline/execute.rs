//! The fourth stage: the selected scenarios run, each as a libtest-mimic trial (which
//! prints the terminal lines) whose work runs on that thread's own single-thread tokio
//! runtime (or, where there cannot be one, as a task on the shared runtime).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use super::select::{Selected, Selection};
use crate::cli::{Color, RunArgs};
use crate::record::{ScenarioRecord, Verdict};
use crate::runner::Runner;
use crate::scenario::Scenario;

/// How the terminal shows the run.
#[derive(Debug, Clone, Copy)]
pub struct Terminal {
    pub jobs: usize,
    pub quiet: bool,
    pub color: Color,
}

/// Scenario ids that failed in the `--baseline` run: when they fail again, the
/// terminal gives them one line each (the reports keep everything), so a CI log of a
/// server with many known failures stays readable.
pub type KnownFailures = std::collections::HashSet<String>;

impl Terminal {
    pub fn from_args(args: &RunArgs) -> Self {
        Terminal {
            jobs: args.jobs,
            quiet: args.quiet,
            color: args.color,
        }
    }

    /// libtest-mimic's arguments: selection is done already ([`super::select`]), so
    /// it filters nothing. It never starts more threads than there are scenarios.
    fn arguments(&self, trials: usize, list: bool) -> Arguments {
        Arguments {
            list,
            test_threads: Some(self.jobs.clamp(1, trials.max(1))),
            quiet: self.quiet,
            color: Some(match self.color {
                Color::Auto => libtest_mimic::ColorSetting::Auto,
                Color::Always => libtest_mimic::ColorSetting::Always,
                Color::Never => libtest_mimic::ColorSetting::Never,
            }),
            ..Arguments::default()
        }
    }
}

/// `run --list`: the scenarios of the run, as libtest lists them.
pub fn list(selected: &[Selected], terminal: &Terminal) {
    let trials: Vec<Trial> = in_run(selected)
        .map(|s| Trial::test(s.scenario.id.clone(), || Ok(())))
        .collect();
    // The listing is all that is wanted: its conclusion counts nothing.
    let _ = libtest_mimic::run(&terminal.arguments(trials.len(), true), trials);
}

fn in_run(selected: &[Selected]) -> impl Iterator<Item = &Selected> {
    selected
        .iter()
        .filter(|s| !matches!(s.selection, Selection::Out(_)))
}

/// The record of a scenario that does not run, or `None` when it runs.
fn without_running(s: &Selected) -> Option<ScenarioRecord> {
    match &s.selection {
        Selection::Run | Selection::Out(_) => None,
        Selection::Skip(reason) => Some(Runner::not_run(
            &s.scenario,
            Verdict::Skipped,
            reason.clone(),
        )),
        Selection::NeedsInputs(missing) => {
            let mut record = Runner::not_run(
                &s.scenario,
                Verdict::Skipped,
                super::select::needs_inputs_reason(missing),
            );
            record.missing_inputs.clone_from(missing);
            Some(record)
        }
        Selection::Fail(reason) => Some(Runner::not_run(
            &s.scenario,
            Verdict::Failed,
            reason.clone(),
        )),
    }
}

/// Runs the scenarios of the run on `handle`, `terminal.jobs` at a time, printing a
/// line each; returns their records in run order.
pub fn execute(
    runner: &Arc<Runner>,
    selected: &[Selected],
    terminal: &Terminal,
    known: &Arc<KnownFailures>,
    handle: &tokio::runtime::Handle,
) -> Vec<ScenarioRecord> {
    let results: Arc<Mutex<BTreeMap<usize, ScenarioRecord>>> = Arc::default();
    let trials: Vec<Trial> = in_run(selected)
        .enumerate()
        .map(|(i, s)| {
            let (runner, results, handle, known) = (
                Arc::clone(runner),
                Arc::clone(&results),
                handle.clone(),
                Arc::clone(known),
            );
            let (scenario, ready) = (Arc::clone(&s.scenario), without_running(s));
            Trial::ignorable_test(s.scenario.id.clone(), move || {
                let record =
                    ready.unwrap_or_else(|| run_one(&runner, Arc::clone(&scenario), &handle));
                let outcome = outcome_of(&record, known.contains(&record.id));
                if let Ok(mut map) = results.lock() {
                    map.insert(i, record);
                }
                outcome
            })
        })
        .collect();
    let count = trials.len();
    // The records decide the exit code, not libtest's conclusion. A closed stdout
    // stops the progress lines (libtest-mimic panics on EPIPE), not the run: what ran
    // is in `results`, what had not run yet runs below without them.
    let arguments = terminal.arguments(count, false);
    crate::exit::PRINTING_PROGRESS.store(true, std::sync::atomic::Ordering::SeqCst);
    let printed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        libtest_mimic::run(&arguments, trials)
    }));
    crate::exit::PRINTING_PROGRESS.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut done = results
        .lock()
        .map(|mut m| std::mem::take(&mut *m))
        .unwrap_or_else(|poisoned| std::mem::take(&mut *poisoned.into_inner()));
    if printed.is_err() {
        // The trials that had not run when the printing stopped run now, quietly.
        let (at, rest): (Vec<usize>, Vec<Selected>) = in_run(selected)
            .enumerate()
            .filter(|(i, _)| !done.contains_key(i))
            .map(|(i, s)| (i, s.clone()))
            .unzip();
        let records = handle.block_on(execute_quietly(runner, &rest, terminal.jobs));
        done.extend(at.into_iter().zip(records));
    }
    in_run(selected)
        .enumerate()
        .map(|(i, s)| {
            done.remove(&i).unwrap_or_else(|| {
                Runner::not_run(&s.scenario, Verdict::Skipped, "not run".to_owned())
            })
        })
        .collect()
}

/// One scenario, on this thread's own runtime with its own connection pool: the
/// scenario and its connections share the thread, so a request needs no hand-over
/// between threads (docs/performance.md, "Speed, round two"). Without one (inside a
/// runtime already), as a task on the shared runtime beside its connection tasks.
fn run_one(
    runner: &Arc<Runner>,
    scenario: Arc<Scenario>,
    handle: &tokio::runtime::Handle,
) -> ScenarioRecord {
    if runner.interrupt().is_set() {
        return Runner::not_run(
            &scenario,
            Verdict::Skipped,
            "not run: the run was interrupted".to_owned(),
        );
    }
    let work = |runner: &Arc<Runner>| {
        let (runner, scenario) = (Arc::clone(runner), Arc::clone(&scenario));
        async move { runner.run(&scenario).await }
    };
    let joined = on_own_runtime(runner, handle, |rt, own| rt.block_on(rt.spawn(work(own))))
        .unwrap_or_else(|| handle.block_on(handle.spawn(work(runner))));
    joined.unwrap_or_else(|e| {
        Runner::not_run(
            &scenario,
            Verdict::Error,
            format!("the scenario's task failed: {e}"),
        )
    })
}

thread_local! {
    /// This libtest-mimic thread's own single-thread runtime and runner (with its own
    /// connection pool): a scenario and its connection then share one thread, with no
    /// wake-up across threads per step.
    static OWN: std::cell::RefCell<Option<(tokio::runtime::Runtime, Arc<Runner>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `run` with this thread's own runtime and runner, made on first use; `None` when
/// there cannot be one (the caller then uses the shared runtime).
fn on_own_runtime<T>(
    runner: &Runner,
    shared: &tokio::runtime::Handle,
    run: impl FnOnce(&tokio::runtime::Runtime, &Arc<Runner>) -> T,
) -> Option<T> {
    // Inside a runtime already (a caller's `block_on`), another cannot start here.
    if tokio::runtime::Handle::try_current().is_ok() {
        return None;
    }
    OWN.with(|own| {
        let mut own = own.try_borrow_mut().ok()?;
        if own.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            let local = Arc::new(runner.with_own_pool(shared.clone()).ok()?);
            *own = Some((rt, local));
        }
        let (rt, local) = own.as_ref()?;
        Some(run(rt, local))
    })
}

fn outcome_of(record: &ScenarioRecord, known: bool) -> Result<Completion, Failed> {
    match record.verdict {
        Verdict::Passed => Ok(Completion::Completed),
        Verdict::Skipped => Ok(Completion::ignored_with(
            record.reason.clone().unwrap_or_default(),
        )),
        Verdict::Failed | Verdict::Error if known => Err(Failed::from(format!(
            "known failure (it failed in the baseline too; the reports have its details): {}",
            record.reason.as_deref().unwrap_or("")
        ))),
        Verdict::Failed | Verdict::Error => {
            let details = crate::report::details(record);
            let text = if details.is_empty() {
                record.reason.clone().unwrap_or_default()
            } else {
                details
            };
            // libtest-mimic's line says FAILED for both; the text says which it was.
            Err(Failed::from(if record.verdict == Verdict::Error {
                format!(
                    "ERROR, not a failure: the server gave no answer to judge (exit 3 when nothing failed)\n{text}"
                )
            } else {
                text
            }))
        }
    }
}

/// Runs the scenarios of the run on the current runtime, `jobs` at a time (at least
/// one), without terminal output: for tests and front ends that judge the records
/// themselves, and for the rest of a run whose progress lines could not be printed.
/// `jobs` is a promise to the server as much as `--jobs` is: unbounded, a suite of a
/// thousand scenarios opened a thousand connections at once, more than a listen queue
/// holds (the in-process sandbox reset some of them).
pub async fn execute_quietly(
    runner: &Arc<Runner>,
    selected: &[Selected],
    jobs: usize,
) -> Vec<ScenarioRecord> {
    let slots = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in in_run(selected).enumerate() {
        let (runner, scenario, ready, slots) = (
            Arc::clone(runner),
            Arc::clone(&s.scenario),
            without_running(s),
            Arc::clone(&slots),
        );
        tasks.spawn(async move {
            let record = match ready {
                Some(record) => record,
                None => {
                    // The semaphore is never closed: a permit always comes.
                    let _slot = slots.acquire_owned().await.ok();
                    runner.run(&scenario).await
                }
            };
            (i, record)
        });
    }
    let mut records: Vec<(usize, ScenarioRecord)> = tasks.join_all().await;
    records.sort_by_key(|(i, _)| *i);
    records.into_iter().map(|(_, r)| r).collect()
}
