//! Ctrl-C and SIGTERM, which escalate:
//!
//! - before the first scenario starts (the token fetch, `/metadata`), a signal ends the
//!   run: nothing ran, no report is written, exit 130;
//! - during the scenarios, the first one stops new steps from starting (in-flight
//!   requests are abandoned) and gives the cleanups of started scenarios the cleanup
//!   budget, counted from the signal (cleanups already in flight included); then the
//!   reports are written and the run exits 130;
//! - the second one abandons the cleanups still running: the reports of what finished
//!   are written at once (within [`REPORT_GRACE`], or the process exits without them);
//! - the third one exits at once.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// After the second signal, how long writing the reports may take before the process
/// exits without them.
pub const REPORT_GRACE: Duration = Duration::from_secs(5);

/// No signal; scenarios not started yet.
const CONNECTING: u8 = 0;
/// No signal; scenarios started.
const RUNNING: u8 = 1;
/// A signal before the first scenario: the run ends without running any.
const STOPPED_BEFORE: u8 = 2;
/// One signal during the scenarios: cleanups run within the budget.
const STOPPING: u8 = 3;
/// Two signals during the scenarios: cleanups are abandoned.
const ABANDONING: u8 = 4;

#[derive(Debug, Default)]
struct Inner {
    state: AtomicU8,
    notify: Notify,
    /// When the first signal came.
    since: OnceLock<Instant>,
    /// Which signal it was, as the terminal says it.
    signal: OnceLock<&'static str>,
}

/// The run's interruption state, shared by the signal listener, the app and the runner.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<Inner>);

/// What a signal did, given when it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    /// Before the first scenario: the run ends, nothing ran.
    BeforeScenarios,
    /// The first during the scenarios: no new step; cleanups within the budget.
    Stop,
    /// The second during the scenarios: cleanups abandoned, reports written.
    Abandon,
    /// One more: exit at once.
    Exit,
}

/// Why a cleanup step was cut short after a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The cleanup budget, counted from the first signal, is spent.
    Budget,
    /// A second signal abandoned the cleanups.
    Abandoned,
}

impl Interrupt {
    /// A signal came: moves to the next state, wakes every waiter, and says what to do.
    pub fn escalate(&self, signal: &'static str) -> Escalation {
        let inner = &self.0;
        inner.since.get_or_init(Instant::now);
        inner.signal.get_or_init(|| signal);
        let mut current = inner.state.load(Ordering::SeqCst);
        loop {
            let (next, what) = match current {
                CONNECTING => (STOPPED_BEFORE, Escalation::BeforeScenarios),
                RUNNING => (STOPPING, Escalation::Stop),
                STOPPING => (ABANDONING, Escalation::Abandon),
                _ => return Escalation::Exit,
            };
            match inner
                .state
                .compare_exchange(current, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    inner.notify.notify_waiters();
                    return what;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Marks the start of the scenarios; false when a signal came first (then no
    /// scenario may start).
    pub fn start_scenarios(&self) -> bool {
        match self
            .0
            .state
            .compare_exchange(CONNECTING, RUNNING, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(actual) => actual == RUNNING,
        }
    }

    /// Whether a signal came.
    pub fn is_set(&self) -> bool {
        self.0.state.load(Ordering::SeqCst) >= STOPPED_BEFORE
    }

    /// Whether a second signal abandoned the cleanups.
    pub fn is_abandoned(&self) -> bool {
        self.0.state.load(Ordering::SeqCst) == ABANDONING
    }

    /// The first signal's name (`interrupted (SIGINT)`), once one came.
    pub fn signal(&self) -> Option<&'static str> {
        self.0.signal.get().copied()
    }

    /// Resolves once a signal came.
    pub async fn wait(&self) {
        self.wait_for(Self::is_set).await;
    }

    /// Resolves once a second signal abandoned the cleanups.
    async fn wait_abandoned(&self) {
        self.wait_for(Self::is_abandoned).await;
    }

    async fn wait_for(&self, done: fn(&Self) -> bool) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a signal in between is not missed.
            notified.as_mut().enable();
            if done(self) {
                return;
            }
            notified.await;
        }
    }

    /// When the cleanups must be done: `budget` after the first signal.
    fn deadline(&self, budget: Duration) -> Option<Instant> {
        self.0.since.get().map(|since| *since + budget)
    }

    /// Whether a cleanup step must not start, and why: the cleanups were abandoned, or
    /// the budget after the signal is spent.
    pub fn cut_already(&self, budget: Duration) -> Option<Cut> {
        if self.is_abandoned() {
            return Some(Cut::Abandoned);
        }
        match self.deadline(budget) {
            Some(at) if self.is_set() && Instant::now() >= at => Some(Cut::Budget),
            _ => None,
        }
    }

    /// Resolves when a cleanup step in flight must be cut: `budget` after the first
    /// signal, or at the second, whichever comes first. Never resolves without a signal.
    pub async fn cut(&self, budget: Duration) -> Cut {
        self.wait().await;
        let at = self
            .deadline(budget)
            .unwrap_or_else(|| Instant::now() + budget);
        tokio::select! {
            () = self.wait_abandoned() => Cut::Abandoned,
            () = tokio::time::sleep_until(at) => Cut::Budget,
        }
    }

    /// Listens for SIGINT and SIGTERM on `runtime` for the rest of the process, and
    /// says on stderr what each one does. Before the scenarios it says nothing: the run
    /// says, in one line, that nothing ran.
    pub fn listen(&self, runtime: &tokio::runtime::Handle, cleanup_budget: Duration) {
        let this = self.clone();
        runtime.spawn(async move {
            loop {
                let which = next_signal().await;
                match this.escalate(which) {
                    Escalation::BeforeScenarios => {}
                    Escalation::Stop => eprintln!(
                        "\n{which}: no new steps start; the cleanups of started scenarios have {} s, then the reports are written (a second signal abandons the cleanups)",
                        seconds(cleanup_budget)
                    ),
                    Escalation::Abandon => {
                        eprintln!(
                            "\n{which} again: abandoning cleanups, writing the reports of what finished (a third signal exits at once, without them)"
                        );
                        exit_after_grace();
                    }
                    Escalation::Exit => {
                        eprintln!("\n{which} again: exiting now, without reports");
                        std::process::exit(i32::from(crate::exit::INTERRUPTED));
                    }
                }
            }
        });
    }
}

/// A bound on writing the reports after the second signal: if they are not written
/// within [`REPORT_GRACE`], the process exits anyway, saying so. A plain thread, so a
/// busy runtime cannot delay it.
fn exit_after_grace() {
    let spawned = std::thread::Builder::new()
        .name("fhirconf-report-grace".to_owned())
        .spawn(|| {
            std::thread::sleep(REPORT_GRACE);
            eprintln!(
                "the reports were not written within {} s of the second signal: exiting without the rest of them",
                seconds(REPORT_GRACE)
            );
            std::process::exit(i32::from(crate::exit::INTERRUPTED));
        });
    if spawned.is_err() {
        // No thread for the bound: a third signal still exits at once.
        eprintln!("warning: cannot bound the writing of the reports; a third signal exits at once");
    }
}

/// A duration in seconds as people write it: `10`, `1.5`.
pub fn seconds(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

#[cfg(unix)]
async fn next_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => "interrupted (SIGINT)",
            _ = term.recv() => "terminated (SIGTERM)",
        },
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            "interrupted (SIGINT)"
        }
    }
}

#[cfg(not(unix))]
async fn next_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "interrupted (Ctrl-C)"
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNAL: &str = "interrupted (SIGINT)";

    #[tokio::test]
    async fn waiters_wake_on_a_signal_and_late_ones_return_at_once() {
        let i = Interrupt::default();
        assert!(i.start_scenarios());
        let waiter = tokio::spawn({
            let i = i.clone();
            async move { i.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!i.is_set());
        assert_eq!(i.escalate(SIGNAL), Escalation::Stop);
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the waiter wakes")
            .unwrap();
        i.wait().await;
        assert_eq!(i.signal(), Some(SIGNAL));
    }

    #[test]
    fn signals_escalate_from_stop_to_abandon_to_exit() {
        let i = Interrupt::default();
        assert!(i.start_scenarios());
        assert!(i.start_scenarios(), "a second call changes nothing");
        assert_eq!(i.escalate(SIGNAL), Escalation::Stop);
        assert!(i.is_set() && !i.is_abandoned());
        assert_eq!(i.escalate("terminated (SIGTERM)"), Escalation::Abandon);
        assert!(i.is_abandoned());
        assert_eq!(i.escalate(SIGNAL), Escalation::Exit);
        assert_eq!(i.signal(), Some(SIGNAL), "the first signal's name is kept");
    }

    #[test]
    fn a_signal_before_the_scenarios_keeps_them_from_starting() {
        let i = Interrupt::default();
        assert_eq!(i.escalate(SIGNAL), Escalation::BeforeScenarios);
        assert!(i.is_set());
        assert!(!i.start_scenarios());
        assert_eq!(i.escalate(SIGNAL), Escalation::Exit);
    }

    #[tokio::test]
    async fn a_cleanup_is_cut_at_the_budget_after_the_signal_or_at_the_second() {
        let budget = Duration::from_millis(200);
        let i = Interrupt::default();
        i.start_scenarios();
        assert_eq!(i.cut_already(budget), None);
        let cut = tokio::spawn({
            let i = i.clone();
            async move { i.cut(budget).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!cut.is_finished(), "no signal, no cut");
        let signalled = Instant::now();
        i.escalate(SIGNAL);
        let why = tokio::time::timeout(Duration::from_secs(10), cut)
            .await
            .expect("the cut comes")
            .unwrap();
        assert_eq!(why, Cut::Budget);
        assert!(signalled.elapsed() >= budget);
        assert_eq!(i.cut_already(budget), Some(Cut::Budget));
        assert_eq!(i.cut_already(Duration::from_secs(600)), None);

        let long = Duration::from_secs(600);
        let cut = tokio::spawn({
            let i = i.clone();
            async move { i.cut(long).await }
        });
        tokio::task::yield_now().await;
        i.escalate(SIGNAL);
        let why = tokio::time::timeout(Duration::from_secs(10), cut)
            .await
            .expect("the second signal cuts at once")
            .unwrap();
        assert_eq!(why, Cut::Abandoned);
        assert_eq!(i.cut_already(long), Some(Cut::Abandoned));
    }
}
