//! Containing a plugin that keeps failing: after `quarantine_after` (default 5) consecutive
//! faults (traps, timeouts, memory, output the host refuses) a plugin is quarantined — its calls fail at
//! once, without instantiating it — for a backoff that starts at [`FIRST_BACKOFF`] and
//! doubles on each quarantine up to [`MAX_BACKOFF`]. When the backoff ends calls flow again on
//! probation: one success ends the quarantine (and resets the backoff), one more fault starts
//! the next, longer one. An operator can end it early (`POST /admin/plugins/NAME/release`),
//! and a reload that loads a new file starts the plugin afresh.
//!
//! Why: a plugin that loops costs `timeout_ms` of a worker on every call, and one that traps
//! costs an instantiation on every call; a quarantine turns both into a cheap refusal the
//! failover loop skips. The check on the call path is one atomic load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct Quarantine {
    /// Consecutive faults that start a quarantine; 0 never does.
    threshold: u32,
    /// Start of the clock `until_ms` counts from.
    epoch: Instant,
    /// Milliseconds after `epoch` when the current quarantine ends; 0 when there is none.
    until_ms: AtomicU64,
    consecutive: AtomicU32,
    /// How many times the plugin was quarantined since it was loaded.
    pub times: AtomicU64,
    /// The length of the next quarantine.
    backoff: Mutex<Duration>,
}

/// What the operator sees.
#[derive(Debug, Clone, Copy)]
pub struct QuarantineView {
    /// Time left in quarantine, when quarantined.
    pub left: Option<Duration>,
    pub consecutive_faults: u32,
    pub times: u64,
}

impl Quarantine {
    pub fn new(threshold: u32) -> Self {
        Quarantine {
            threshold,
            epoch: Instant::now(),
            until_ms: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            times: AtomicU64::new(0),
            backoff: Mutex::new(FIRST_BACKOFF),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// `Err(time left)` while quarantined.
    pub fn check(&self) -> Result<(), Duration> {
        let until = self.until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return Ok(());
        }
        let now = self.now_ms();
        if now < until {
            Err(Duration::from_millis(until - now))
        } else {
            Ok(())
        }
    }

    /// A call succeeded: the fault streak (and a finished quarantine) ends.
    pub fn success(&self) {
        if self.consecutive.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.consecutive.store(0, Ordering::Relaxed);
        if self.until_ms.swap(0, Ordering::Relaxed) != 0
            && let Ok(mut backoff) = self.backoff.lock()
        {
            *backoff = FIRST_BACKOFF;
        }
    }

    /// A call faulted; `Some(length)` when this fault starts a quarantine.
    pub fn fault(&self) -> Option<Duration> {
        let streak = self.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        if self.threshold == 0 || streak < self.threshold {
            return None;
        }
        let mut backoff = self.backoff.lock().ok()?;
        let length = *backoff;
        *backoff = (length * 2).min(MAX_BACKOFF);
        self.until_ms
            .store(self.now_ms() + length.as_millis() as u64, Ordering::Relaxed);
        // On probation once it ends: the next fault quarantines again.
        self.consecutive
            .store(self.threshold - 1, Ordering::Relaxed);
        self.times.fetch_add(1, Ordering::Relaxed);
        Some(length)
    }

    /// The operator's way back: calls flow again at once, the backoff starts over.
    pub fn release(&self) -> bool {
        let was = self.check().is_err();
        self.until_ms.store(0, Ordering::Relaxed);
        self.consecutive.store(0, Ordering::Relaxed);
        if let Ok(mut backoff) = self.backoff.lock() {
            *backoff = FIRST_BACKOFF;
        }
        was
    }

    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    pub fn view(&self) -> QuarantineView {
        QuarantineView {
            left: self.check().err(),
            consecutive_faults: self.consecutive.load(Ordering::Relaxed),
            times: self.times.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarantines_after_the_threshold_and_doubles_on_probation() {
        const THRESHOLD: u32 = 5;
        let mut q = Quarantine::new(THRESHOLD);
        // A clock that started a while ago, so "ended at 1 ms" is in the past.
        q.epoch = Instant::now()
            .checked_sub(Duration::from_secs(60))
            .expect("the machine has been up a minute");
        for _ in 0..THRESHOLD - 1 {
            assert_eq!(q.fault(), None);
        }
        assert!(q.check().is_ok());
        assert_eq!(q.fault(), Some(FIRST_BACKOFF));
        assert!(q.check().is_err());
        // The backoff ends (simulated by the operator's release keeping probation off) …
        q.until_ms.store(1, Ordering::Relaxed);
        assert!(q.check().is_ok());
        // … and one more fault on probation starts a longer quarantine.
        assert_eq!(q.fault(), Some(FIRST_BACKOFF * 2));
        q.until_ms.store(1, Ordering::Relaxed);
        q.success();
        assert_eq!(q.view().consecutive_faults, 0);
        for _ in 0..THRESHOLD - 1 {
            assert_eq!(q.fault(), None);
        }
        assert_eq!(
            q.fault(),
            Some(FIRST_BACKOFF),
            "a success resets the backoff"
        );
        assert!(q.release());
        assert!(q.check().is_ok());
        assert_eq!(q.view().times, 3);
    }

    #[test]
    fn zero_never_quarantines() {
        let q = Quarantine::new(0);
        for _ in 0..100 {
            assert_eq!(q.fault(), None);
        }
        assert!(q.check().is_ok());
    }
}
