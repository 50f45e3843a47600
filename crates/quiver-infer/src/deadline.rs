//! Inference deadlines: every backend call has one, in every mode.
//!
//! A valid model can still run for ever (an ONNX `Loop` with a trip count of
//! 10^12 is a few hundred bytes). So each call of a [`crate::LoadedModel`]
//! runs against its model's deadline ([`crate::ModelSpec::deadline`], else
//! the loader's: [`DEFAULT_DEADLINE`] in replay, `models verify` and the
//! benches, the inference timeout in live). A call over it fails with
//! [`InferError::DeadlineExceeded`] and takes that model version out of
//! service for good: later calls are refused without running
//! ([`InferError::OutOfService`]) until a new version is loaded.
//!
//! How a call is held to its deadline depends on the backend:
//!
//! - ONNX Runtime is interrupted: the call arms the process's one
//!   [`Watchdog`] thread, which sets the run's terminate flag when the
//!   deadline passes; ONNX Runtime checks it between kernels, inside a
//!   `Loop`'s body too, and the call returns within a few kernels.
//! - tract cannot be interrupted (it has no cancellation hook): its calls are
//!   timed, and one that returns after its deadline fails and takes the
//!   model out of service — but it did run to its end, however long that
//!   took. tract refuses `Loop` at load, so the models that hang ONNX Runtime
//!   never reach it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::error::InferError;
use crate::predictor::Predictor;

/// The deadline of one inference call when neither the registry nor the
/// caller gives one: replay, `models verify`, the benches. Generous: the
/// shipped models answer a 64-row call in well under a millisecond.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(1);

/// The longest deadline a registry entry may declare (`deadline_ms`).
pub const MAX_DEADLINE: Duration = Duration::from_secs(3600);

/// `1000 ms`, `0.5 ms`: a deadline as messages show it.
pub fn millis(d: Duration) -> String {
    let micros = d.as_micros();
    if micros.is_multiple_of(1000) {
        format!("{} ms", micros / 1000)
    } else {
        let text = format!("{:.3}", micros as f64 / 1000.0);
        format!("{} ms", text.trim_end_matches('0'))
    }
}

/// What the watchdog does to a call whose deadline passed. Called on the
/// watchdog's thread, under its lock: it must only raise a flag.
pub trait Interrupt: Send + Sync {
    fn interrupt(&self);
}

struct Watch {
    id: u64,
    deadline: Instant,
    target: Arc<dyn Interrupt>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// Calls running now: a handful (one per worker at most), so a scan
    /// beats a map, and the vector's capacity is kept between calls.
    armed: Vec<Watch>,
    /// When the watchdog thread wakes next (`None`: only when notified).
    wake_at: Option<Instant>,
}

/// One thread for the whole process that interrupts calls past their
/// deadline. Arming and disarming take a lock and never block on a call.
pub struct Watchdog {
    state: Mutex<State>,
    changed: Condvar,
}

static WATCHDOG: OnceLock<Result<Arc<Watchdog>, String>> = OnceLock::new();

impl Watchdog {
    /// The process's watchdog, started on first use. `Err` (the reason) when
    /// its thread could not be started: callers then refuse to run a model
    /// they could not stop.
    pub fn global() -> Result<&'static Arc<Watchdog>, String> {
        WATCHDOG
            .get_or_init(|| {
                let dog = Arc::new(Watchdog {
                    state: Mutex::new(State::default()),
                    changed: Condvar::new(),
                });
                let thread_dog = Arc::clone(&dog);
                std::thread::Builder::new()
                    .name("quiver-infer-watchdog".into())
                    .spawn(move || thread_dog.run())
                    .map(|_| dog)
                    .map_err(|e| format!("cannot start the inference watchdog thread: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics under this lock (interrupts only raise flags); a
        // poisoned state is still a consistent list.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches a call: `target` is interrupted once `deadline` passes, unless
    /// the returned guard was disarmed (or dropped) before.
    pub fn arm(&self, deadline: Instant, target: Arc<dyn Interrupt>) -> Armed<'_> {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        // Waking the thread costs a context switch per call; it only needs
        // one when this deadline comes before the wake-up it already has.
        let earliest = state.wake_at.is_none_or(|at| deadline < at);
        state.armed.push(Watch {
            id,
            deadline,
            target,
        });
        drop(state);
        if earliest {
            self.changed.notify_one();
        }
        Armed {
            dog: self,
            id,
            done: false,
        }
    }

    /// Removes watch `id`; `true` when it was no longer there, i.e. the
    /// watchdog had already interrupted it.
    fn disarm(&self, id: u64) -> bool {
        let mut state = self.lock();
        match state.armed.iter().position(|w| w.id == id) {
            Some(i) => {
                state.armed.swap_remove(i);
                false
            }
            None => true,
        }
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            // Interrupting under the lock: a call that disarms afterwards
            // finds its watch gone and knows it was interrupted, and no call
            // is interrupted after it disarmed.
            let mut i = 0;
            while i < state.armed.len() {
                if state.armed[i].deadline <= now {
                    state.armed.swap_remove(i).target.interrupt();
                } else {
                    i += 1;
                }
            }
            state.wake_at = state.armed.iter().map(|w| w.deadline).min();
            state = match state.wake_at {
                None => self.changed.wait(state).unwrap_or_else(|p| p.into_inner()),
                Some(next) => {
                    self.changed
                        .wait_timeout(state, next.saturating_duration_since(now))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

/// A call being watched. [`Armed::disarm`] when the call returns.
pub struct Armed<'d> {
    dog: &'d Watchdog,
    id: u64,
    done: bool,
}

impl Armed<'_> {
    /// Stops watching; `true` when the call was interrupted.
    pub fn disarm(mut self) -> bool {
        self.done = true;
        self.dog.disarm(self.id)
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        // A call that unwound: never interrupt whatever runs next.
        if !self.done {
            self.dog.disarm(self.id);
        }
    }
}

/// Runs `predictor` on `rows` within `deadline` of now: the one way a
/// backend call is made (warm-up, serving, verify). A call the backend
/// stopped ([`InferError::Interrupted`]) or that returned late is
/// [`InferError::DeadlineExceeded`]; a late success is not a success.
pub(crate) fn call_within(
    predictor: &dyn Predictor,
    model: &str,
    deadline: Duration,
    rows: &[f32],
    out: &mut [f32],
) -> Result<usize, InferError> {
    let started = Instant::now();
    let result = predictor.predict_within(rows, out, started + deadline);
    let elapsed = started.elapsed();
    let interrupted = matches!(result, Err(InferError::Interrupted { .. }));
    if interrupted || elapsed > deadline {
        return Err(InferError::DeadlineExceeded {
            model: model.to_owned(),
            backend: predictor.backend().as_str(),
            deadline,
            elapsed,
            interrupted,
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    struct Flag(AtomicBool, Mutex<Option<mpsc::Sender<Instant>>>);

    impl Interrupt for Flag {
        fn interrupt(&self) {
            self.0.store(true, Ordering::SeqCst);
            if let Some(tx) = self.1.lock().unwrap().take() {
                let _ = tx.send(Instant::now());
            }
        }
    }

    fn flag() -> (Arc<Flag>, mpsc::Receiver<Instant>) {
        let (tx, rx) = mpsc::channel();
        (
            Arc::new(Flag(AtomicBool::new(false), Mutex::new(Some(tx)))),
            rx,
        )
    }

    #[test]
    fn millis_shows_whole_and_fractional_milliseconds() {
        assert_eq!(millis(Duration::from_secs(1)), "1000 ms");
        assert_eq!(millis(Duration::from_micros(500)), "0.5 ms");
        assert_eq!(millis(Duration::from_micros(1250)), "1.25 ms");
        assert_eq!(millis(Duration::ZERO), "0 ms");
    }

    #[test]
    fn the_watchdog_interrupts_at_the_deadline_and_not_after_a_disarm() {
        let dog = Watchdog::global().unwrap();
        let start = Instant::now();
        let (late, fired) = flag();
        let (early, _never) = flag();
        let (later, later_fired) = flag();
        let a = dog.arm(start + Duration::from_millis(50), late.clone());
        // An earlier deadline armed second still fires first.
        let c = dog.arm(start + Duration::from_millis(300), later.clone());
        let b = dog.arm(start + Duration::from_millis(20), early.clone());
        assert!(!b.disarm(), "disarmed before its deadline");
        let at = fired.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(at >= start + Duration::from_millis(50));
        assert!(a.disarm(), "the interrupted call learns it was");
        let at = later_fired.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(at >= start + Duration::from_millis(300));
        assert!(c.disarm());
        assert!(!early.0.load(Ordering::SeqCst), "never interrupted");
        // A guard dropped without disarming (a call that unwound) is gone.
        let (dropped, dropped_fired) = flag();
        drop(dog.arm(Instant::now() + Duration::from_millis(10), dropped.clone()));
        assert!(dropped_fired
            .recv_timeout(Duration::from_millis(100))
            .is_err());
        assert!(!dropped.0.load(Ordering::SeqCst));
    }
}
