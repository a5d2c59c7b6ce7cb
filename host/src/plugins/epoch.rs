//! The epoch ticker: the thread that advances the engine's epoch, which is what cuts a plugin
//! call at its deadline (`timeout_ms`, in whole ticks), and the guard that keeps it ticking.
//!
//! Guest code only runs under an [`Awake`] (every lease holds one, instantiation included, and
//! the load-time smoke test does), so once no guard has been held for a while the ticker sleeps
//! until the next one: an idle gateway does not wake 500 times a second for nothing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch ticks; per-call deadlines are whole multiples of it.
pub(super) const EPOCH_TICK: Duration = Duration::from_millis(2);
/// Ticks without a guard after which the ticker sleeps until the next one (100 ms).
const IDLE_TICKS_BEFORE_PARKING: u32 = 50;

/// The epoch ticker's state.
#[derive(Default)]
pub(super) struct Ticker {
    /// Live [`Awake`] guards.
    holders: AtomicUsize,
    /// Whether the ticker is asleep, under the lock its wakeup is sent under (so a guard only
    /// pays for a wakeup when the ticker sleeps).
    parked: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
}

impl Ticker {
    pub(super) fn run(&self, engine: &Engine) {
        let mut idle_ticks = 0;
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(EPOCH_TICK);
            engine.increment_epoch();
            if self.holders.load(Ordering::SeqCst) > 0 {
                idle_ticks = 0;
                continue;
            }
            idle_ticks += 1;
            if idle_ticks < IDLE_TICKS_BEFORE_PARKING {
                continue;
            }
            let Ok(mut parked) = self.parked.lock() else {
                continue;
            };
            *parked = true;
            let Ok(mut parked) = self.wake.wait_while(parked, |_| {
                self.holders.load(Ordering::SeqCst) == 0 && !self.stop.load(Ordering::Relaxed)
            }) else {
                continue;
            };
            *parked = false;
            idle_ticks = 0;
        }
    }

    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _parked = self.parked.lock();
        self.wake.notify_one();
    }
}

/// Keeps the epoch ticking (so plugin deadlines hold) for as long as it lives.
pub struct Awake(Arc<Ticker>);

impl Awake {
    pub(super) fn new(ticker: &Arc<Ticker>) -> Self {
        if ticker.holders.fetch_add(1, Ordering::SeqCst) == 0
            && let Ok(parked) = ticker.parked.lock()
            && *parked
        {
            ticker.wake.notify_one();
        }
        Awake(ticker.clone())
    }
}

impl Drop for Awake {
    fn drop(&mut self) {
        self.0.holders.fetch_sub(1, Ordering::SeqCst);
    }
}
