//! Ctrl-C and SIGTERM: the first one stops new steps from starting (in-flight requests
//! are abandoned), lets every started scenario run its cleanup within a bound, and
//! lets the run write its reports and exit 130. A second one exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Interrupt {
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Resolves once the run is interrupted.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a trigger in between is not missed.
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    /// Listens for SIGINT and SIGTERM on `runtime` for the rest of the process.
    pub fn listen(&self, runtime: &tokio::runtime::Handle) {
        let this = self.clone();
        runtime.spawn(async move {
            let mut first = true;
            loop {
                let which = next_signal().await;
                if !first {
                    eprintln!("\n{which} again: exiting now, without cleanup or reports");
                    std::process::exit(i32::from(crate::exit::INTERRUPTED));
                }
                first = false;
                eprintln!(
                    "\n{which}: no new steps start; running the cleanups of started scenarios, then writing reports ({which} again to exit at once)"
                );
                this.trigger();
            }
        });
    }
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

    #[tokio::test]
    async fn waiters_wake_on_trigger_and_late_ones_return_at_once() {
        let i = Interrupt::default();
        let waiter = tokio::spawn({
            let i = i.clone();
            async move { i.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!i.is_set());
        i.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("the waiter wakes")
            .unwrap();
        i.wait().await;
    }
}
