//! A memory budget for work a scenario controls: [`bounded`] runs a closure on a worker
//! thread (one per calling thread, reused), and the global allocator ([`Counting`],
//! installed by the binary) counts what the worker allocates for each job. An allocation past the budget never happens: the
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
//! and it forwards every call unchanged to mimalloc (faster than the system allocator
//! here: docs/performance.md, "Speed, round two"). No crate offers a
//! per-thread budget that stops the thread instead of aborting the process (`cap` and
//! `limit-alloc` fail the allocation, which aborts).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;

/// The global allocator of the `fhirconf` binary: mimalloc, counting the
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
    /// The [`Outcome`] of the job this worker runs, to trip when it goes over its budget.
    static OUTCOME: Cell<*const Outcome> = const { Cell::new(std::ptr::null()) };
    /// Above zero while the thread holds a lock others need: going over the budget
    /// there is let through, and the thread stops at its next allocation instead.
    static CRITICAL: Cell<u32> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `MiMalloc` with the caller's arguments unchanged; the
// bookkeeping touches only const-initialised thread locals (no allocation, no
// destructor) through `try_with`, which cannot panic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: forwarded as is (see the impl).
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.dealloc(ptr, layout) };
        refund(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            charge(new_size - layout.size());
        } else {
            refund(layout.size() - new_size);
        }
        // SAFETY: forwarded as is.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_t`, the same in
/// mimalloc 2 and 3; the Rust binding names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc to give freed memory back to the OS at once instead of 10 ms later
/// (its default): with the default, peak RSS of a 4,000-step run was 38.6 MiB instead
/// of 32.2 (first run of the file; 29.6 against 27.3 with the model cache warm), for
/// the same CPU per step within noise (docs/performance.md, "Speed, round two").
/// Called first thing in `main`, before any other thread starts.
pub fn tune_allocator() {
    // SAFETY: sets one process-wide option (a plain write in mimalloc), from `main`
    // before any other thread exists, with an index and value mimalloc accepts.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
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
        // SAFETY: the worker sets this pointer into the running job's `Arc<Outcome>`,
        // which the job it holds keeps alive while it runs, and the job never ends:
        // the loop below does not return.
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

/// One piece of bounded work for a worker thread.
struct Job {
    run: Box<dyn FnOnce() + Send>,
    budget: usize,
    outcome: Arc<Outcome>,
}

thread_local! {
    /// The worker that runs this thread's bounded work, started on first use and
    /// replaced when one is stopped (a thread per call would cost tens of µs each).
    static WORKER: std::cell::RefCell<Option<std::sync::mpsc::Sender<Job>>> =
        const { std::cell::RefCell::new(None) };
}

/// A worker: runs jobs one at a time, each under its own budget, until its sender is
/// dropped or a job stops it for good.
fn start_worker() -> std::io::Result<std::sync::mpsc::Sender<Job>> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("fhirconf-bounded".to_owned())
        .spawn(move || {
            for job in rx {
                let _ = OUTCOME.try_with(|o| o.set(Arc::as_ptr(&job.outcome)));
                let _ = HELD.try_with(|h| h.set(0));
                let _ = LIMIT.try_with(|l| l.set(job.budget));
                // A panic leaves the job's result empty: Done with nothing is Panicked.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job.run));
                let _ = LIMIT.try_with(|l| l.set(usize::MAX));
                let _ = OUTCOME.try_with(|o| o.set(std::ptr::null()));
                job.outcome.set(State::Done);
            }
        })?;
    Ok(tx)
}

/// Hands `job` to this thread's worker, starting one when there is none (or the last
/// one is gone).
fn submit(job: Job) -> Result<(), Stopped> {
    WORKER.with(|slot| {
        let mut slot = slot.borrow_mut();
        let job = match slot.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                Err(std::sync::mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let tx = start_worker().map_err(|e| Stopped::NoThread(e.to_string()))?;
        tx.send(job)
            .map_err(|_| Stopped::NoThread("the worker ended at once".to_owned()))?;
        *slot = Some(tx);
        Ok(())
    })
}

/// Forgets this thread's worker: it was stopped for good (over budget or too slow).
fn abandon_worker() {
    let _ = WORKER.try_with(|slot| slot.borrow_mut().take());
    STOPPED.fetch_add(1, Ordering::Relaxed);
}

/// Runs `f` on a worker thread where it may hold at most `budget` bytes and run for at
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
    let theirs = Arc::clone(&result);
    submit(Job {
        run: Box::new(move || {
            let value = f();
            *theirs.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        }),
        budget,
        outcome: Arc::clone(&outcome),
    })?;
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
        State::Done => result
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(Stopped::Panicked),
        State::OverBudget => {
            abandon_worker();
            Err(Stopped::OverBudget(budget))
        }
        State::Running => {
            abandon_worker();
            Err(Stopped::TooSlow(time))
        }
    }
}
