//! The hedge budget: hedged attempts as a share of a model's requests over the last minute
//! (`models.<m>.hedge_budget`, 10% by default), so a slow provider cannot double the load on
//! free tiers. A sliding window of six ten-second slots per model, counted in this instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

const SLOT_SECS: u64 = 10;
const SLOTS: usize = 6;

#[derive(Default, Clone, Copy)]
struct Slot {
    /// Which ten seconds since the budget was made this slot counts.
    epoch: u64,
    requests: u32,
    hedges: u32,
}

#[derive(Default)]
struct Window([Slot; SLOTS]);

impl Window {
    fn slot(&mut self, epoch: u64) -> &mut Slot {
        let slot = &mut self.0[(epoch % SLOTS as u64) as usize];
        if slot.epoch != epoch {
            *slot = Slot {
                epoch,
                ..Slot::default()
            };
        }
        slot
    }

    fn totals(&self, epoch: u64) -> (u32, u32) {
        self.0
            .iter()
            .filter(|s| s.epoch + SLOTS as u64 > epoch)
            .fold((0, 0), |(r, h), s| (r + s.requests, h + s.hedges))
    }
}

pub struct HedgeBudgets {
    started: Instant,
    windows: Mutex<HashMap<String, Window>>,
}

impl Default for HedgeBudgets {
    fn default() -> Self {
        HedgeBudgets {
            started: Instant::now(),
            windows: Mutex::default(),
        }
    }
}

impl HedgeBudgets {
    fn epoch(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs() / SLOT_SECS + SLOTS as u64
    }

    /// Count a request to a hedging model.
    pub fn request(&self, model: &str, now: Instant) {
        let epoch = self.epoch(now);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows
            .entry(model.to_string())
            .or_default()
            .slot(epoch)
            .requests += 1;
    }

    /// Take one hedge if the model stays within `share` of its requests; `false` otherwise.
    pub fn spend(&self, model: &str, share: f64, now: Instant) -> bool {
        let epoch = self.epoch(now);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let window = windows.entry(model.to_string()).or_default();
        let (requests, hedges) = window.totals(epoch);
        if f64::from(hedges + 1) > share * f64::from(requests.max(1)) {
            return false;
        }
        window.slot(epoch).hedges += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_tenth_of_the_requests_may_hedge_and_the_window_slides() {
        let budgets = HedgeBudgets::default();
        let t0 = Instant::now();
        for _ in 0..20 {
            budgets.request("m", t0);
        }
        assert!(budgets.spend("m", 0.1, t0));
        assert!(budgets.spend("m", 0.1, t0));
        assert!(!budgets.spend("m", 0.1, t0), "2 of 20 is the budget");
        let later = t0 + Duration::from_secs(61);
        for _ in 0..10 {
            budgets.request("m", later);
        }
        assert!(budgets.spend("m", 0.1, later), "the old hedges slid out");
        assert!(!budgets.spend("m", 0.1, later));
        assert!(
            !budgets.spend("other", 0.1, later),
            "no requests, no hedges"
        );
    }
}
