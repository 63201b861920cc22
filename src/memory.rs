//! A memory budget for work a scenario controls: [`bounded`] runs a closure on a thread
//! of its own, and the global allocator ([`Counting`], installed by the binary) counts
//! what that thread allocates. An allocation past the budget never happens: the
//! thread stops there for good, holding at most the budget, and [`bounded`] returns an
//! error at once. Templates go through it (MiniJinja has no memory limit of its own:
//! a short expression can build gigabytes through `~`, `namespace()`, a repeated list
//! or a loop), so running out of memory, which aborts the whole run with no report,
//! becomes one failed step.
//!
//! Rust cannot fail an allocation gracefully or unwind out of an allocator, which is
//! why the thread is parked rather than the allocation refused. Each stopped thread
//! keeps its memory until the process ends, so after [`MAX_STOPPED`] of them every
//! later [`bounded`] call is refused without running.
//!
//! The only `unsafe` in the crate is here: a `GlobalAlloc` must be an `unsafe impl`,
//! and it forwards every call unchanged to the system allocator. No crate offers a
//! per-thread budget that stops the thread instead of aborting the process (`cap` and
//! `limit-alloc` fail the allocation, which aborts).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The global allocator of the `fhirconf` binary: the system allocator, counting the
/// bytes of threads running under [`bounded`].
pub struct Counting;

/// Set by the first allocation through [`Counting`]; without it, nothing is counted
/// and [`bounded`] runs its closure inline.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Threads stopped at their budget (or abandoned after [`bounded`]'s time limit).
static STOPPED: AtomicUsize = AtomicUsize::new(0);

/// Stopped threads a run may leave behind before [`bounded`] refuses to start more.
pub const MAX_STOPPED: usize = 16;

thread_local! {
    /// The budget of this thread; `usize::MAX` when it runs unbounded.
    static LIMIT: Cell<usize> = const { Cell::new(usize::MAX) };
    /// Bytes this thread allocated and has not freed since its budget was set.
    static HELD: Cell<usize> = const { Cell::new(0) };
    /// The [`Outcome`] to trip when this thread goes over its budget.
    static OUTCOME: Cell<*const Outcome> = const { Cell::new(std::ptr::null()) };
    /// Above zero while the thread holds a lock others need: going over the budget
    /// there is let through, and the thread stops at its next allocation instead.
    static CRITICAL: Cell<u32> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// bookkeeping touches only const-initialised thread locals (no allocation, no
// destructor) through `try_with`, which cannot panic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        refund(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            charge(new_size - layout.size());
        } else {
            refund(layout.size() - new_size);
        }
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn charge(bytes: usize) {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
    let limit = LIMIT.try_with(Cell::get).unwrap_or(usize::MAX);
    if limit == usize::MAX {
        return;
    }
    let held = HELD.try_with(Cell::get).unwrap_or(0).saturating_add(bytes);
    // A panicking thread holds the lock of the panic output (and the test harness's
    // capture): stopping it there would stop every thread that prints.
    let critical = CRITICAL.try_with(Cell::get).unwrap_or(0) > 0 || std::thread::panicking();
    if held > limit && !critical {
        stop_here();
    }
    let _ = HELD.try_with(|h| h.set(held));
}

fn refund(bytes: usize) {
    if LIMIT.try_with(Cell::get).unwrap_or(usize::MAX) == usize::MAX {
        return;
    }
    let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(bytes)));
}

/// Over budget: tell the waiting caller, then never return (no allocation happens).
fn stop_here() -> ! {
    let outcome = OUTCOME.try_with(Cell::get).unwrap_or(std::ptr::null());
    if !outcome.is_null() {
        // SAFETY: `bounded` stores a pointer into an `Arc<Outcome>` that this thread
        // owns a clone of for its whole life (it is never dropped: we loop below).
        unsafe { (*outcome).set(State::OverBudget) };
    }
    loop {
        std::thread::park();
    }
}

/// Runs `f` with the budget check suspended (for code that holds a lock other threads
/// take: stopping there would stop them too). Going over is caught at the thread's
/// next allocation outside.
pub fn critical<T>(f: impl FnOnce() -> T) -> T {
    let _ = CRITICAL.try_with(|c| c.set(c.get() + 1));
    let out = f();
    let _ = CRITICAL.try_with(|c| c.set(c.get().saturating_sub(1)));
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Done,
    OverBudget,
}

struct Outcome {
    state: Mutex<State>,
    changed: Condvar,
}

impl Outcome {
    fn set(&self, state: State) {
        let mut now = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if *now == State::Running {
            *now = state;
        }
        drop(now);
        self.changed.notify_all();
    }
}

/// Why [`bounded`] has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("it needed more than {0} bytes of memory")]
    OverBudget(usize),
    #[error("it did not finish within {} s", .0.as_secs())]
    TooSlow(Duration),
    #[error("{MAX_STOPPED} earlier ones were stopped in this run, so no more are started")]
    TooManyStopped,
    #[error("it panicked")]
    Panicked,
    #[error("no thread could be started for it: {0}")]
    NoThread(String),
}

/// Runs `f` on a thread of its own that may hold at most `budget` bytes and run for at
/// most `time`; without the counting allocator installed (library use, unit tests), on
/// the calling thread with no bound.
pub fn bounded<T, F>(budget: usize, time: Duration, f: F) -> Result<T, Stopped>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if !INSTALLED.load(Ordering::Relaxed) {
        return Ok(f());
    }
    if STOPPED.load(Ordering::Relaxed) >= MAX_STOPPED {
        return Err(Stopped::TooManyStopped);
    }
    let outcome = Arc::new(Outcome {
        state: Mutex::new(State::Running),
        changed: Condvar::new(),
    });
    let result: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let (theirs, their_result) = (Arc::clone(&outcome), Arc::clone(&result));
    let spawned = std::thread::Builder::new()
        .name("fhirconf-bounded".to_owned())
        .spawn(move || {
            let _ = OUTCOME.try_with(|o| o.set(Arc::as_ptr(&theirs)));
            let _ = HELD.try_with(|h| h.set(0));
            let _ = LIMIT.try_with(|l| l.set(budget));
            let value = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = LIMIT.try_with(|l| l.set(usize::MAX));
            // A panic leaves the result empty: Done with nothing is Panicked.
            if let Ok(value) = value {
                *their_result.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
            }
            theirs.set(State::Done);
        });
    let thread = match spawned {
        Ok(thread) => thread,
        Err(e) => return Err(Stopped::NoThread(e.to_string())),
    };
    let deadline = Instant::now() + time;
    let mut state = outcome.state.lock().unwrap_or_else(|e| e.into_inner());
    while *state == State::Running {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        state = outcome
            .changed
            .wait_timeout(state, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    let finished = *state;
    drop(state);
    match finished {
        // Joined, so the thread has exited (its thread-local destructors run and freed)
        // before the caller goes on: a stopped or abandoned thread is left as it is.
        State::Done => {
            let _ = thread.join();
            result
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .ok_or(Stopped::Panicked)
        }
        State::OverBudget => {
            STOPPED.fetch_add(1, Ordering::Relaxed);
            Err(Stopped::OverBudget(budget))
        }
        State::Running => {
            STOPPED.fetch_add(1, Ordering::Relaxed);
            Err(Stopped::TooSlow(time))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Found by the `templates` fuzz target: LeakSanitizer saw the bounded thread's
    /// thread-local destructor list still allocated after `bounded` had returned, because
    /// the thread was not yet gone. A finished thread is now joined first.
    #[test]
    fn a_finished_thread_has_exited_when_bounded_returns() {
        struct OnExit(Arc<AtomicBool>);
        impl Drop for OnExit {
            fn drop(&mut self) {
                // Slow, so a `bounded` that returned without waiting would see `false`.
                std::thread::sleep(Duration::from_millis(50));
                self.0.store(true, Ordering::SeqCst);
            }
        }
        thread_local! {
            static EXIT: RefCell<Option<OnExit>> = const { RefCell::new(None) };
        }
        assert!(INSTALLED.load(Ordering::Relaxed), "unit tests use Counting");
        for _ in 0..3 {
            let exited = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&exited);
            let out = bounded(1 << 20, Duration::from_secs(10), move || {
                EXIT.with(|e| *e.borrow_mut() = Some(OnExit(flag)));
            });
            assert_eq!(out, Ok(()));
            assert!(exited.load(Ordering::SeqCst), "the thread had not exited");
        }
    }
}
