//! Waiting for capacity (`models.<m>.queue_wait_ms`): when every target of a model is
//! rate-limited or cooling down and the gateway knows when one frees up, the request waits
//! instead of failing. Each model has one line, first come first served: the request at its
//! head sleeps until the known refill or cooldown end (a timer at that time, so it works the
//! same when the buckets live in Redis), tries again, and keeps its turn until it is served or
//! gives up; the others wait behind it on a fair lock. A request's [`Place`] is a drop guard:
//! a client that goes away drops the request future and with it its place, so the line, the
//! depth gauge and the wait-time histogram stay right.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus::{Gauge, Histogram};
use tokio::sync::OwnedMutexGuard;

use crate::metrics::Metrics;

#[derive(Default)]
struct Line {
    turn: Arc<tokio::sync::Mutex<()>>,
    waiting: AtomicUsize,
}

/// Every model's line of waiting requests.
#[derive(Default)]
pub struct WaitingRoom {
    lines: Mutex<HashMap<String, Arc<Line>>>,
}

/// The line is as long as the model allows.
pub struct LineFull {
    pub waiting: usize,
}

impl WaitingRoom {
    /// Join `model`'s line, unless `max_waiting` requests already wait in it.
    pub fn join(
        &self,
        model: &str,
        max_waiting: usize,
        metrics: &Metrics,
    ) -> Result<Place, LineFull> {
        let line = self
            .lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(model.to_string())
            .or_default()
            .clone();
        let before = line.waiting.fetch_add(1, Ordering::SeqCst);
        if before >= max_waiting {
            line.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(LineFull { waiting: before });
        }
        let depth = metrics.queue_depth.with_label_values(&[model]);
        depth.inc();
        Ok(Place {
            line,
            turn: None,
            joined: Instant::now(),
            depth,
            wait: metrics.queue_wait.with_label_values(&[model]),
        })
    }

    /// Requests waiting for `model` now.
    pub fn waiting(&self, model: &str) -> usize {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(model)
            .map_or(0, |line| line.waiting.load(Ordering::SeqCst))
    }
}

/// One request's place in a model's line.
pub struct Place {
    line: Arc<Line>,
    turn: Option<OwnedMutexGuard<()>>,
    joined: Instant,
    depth: Gauge,
    wait: Histogram,
}

impl Place {
    /// Wait until this request is at the head of its line; `false` when `until` comes first.
    pub async fn head(&mut self, until: tokio::time::Instant) -> bool {
        if self.turn.is_some() {
            return true;
        }
        let turn = self.line.turn.clone().lock_owned();
        match tokio::time::timeout_at(until, turn).await {
            Ok(guard) => {
                self.turn = Some(guard);
                true
            }
            Err(_) => false,
        }
    }

    /// How long this request has waited so far.
    pub fn waited(&self) -> std::time::Duration {
        self.joined.elapsed()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.line.waiting.fetch_sub(1, Ordering::SeqCst);
        self.depth.dec();
        self.wait.observe(self.joined.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn first_come_first_served_and_a_dropped_place_leaves_the_line() {
        let room = WaitingRoom::default();
        let metrics = Metrics::new();
        let mut first = room.join("m", 2, &metrics).ok().expect("room");
        let mut second = room.join("m", 2, &metrics).ok().expect("room");
        assert!(room.join("m", 2, &metrics).is_err(), "the line is full");
        let soon = tokio::time::Instant::now() + Duration::from_millis(50);
        assert!(first.head(soon).await);
        assert!(
            !second.head(soon).await,
            "the second waits behind the first"
        );
        drop(first);
        assert!(
            second
                .head(tokio::time::Instant::now() + Duration::from_millis(50))
                .await
        );
        assert_eq!(room.waiting("m"), 1);
        drop(second);
        assert_eq!(room.waiting("m"), 0);
        assert!(
            metrics
                .render()
                .contains("freeway_queue_depth{model=\"m\"} 0")
        );
    }
}
