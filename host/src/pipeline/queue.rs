//! Waiting for capacity (`models.<m>.queue_wait_ms`, a key's `queue_wait_ms`): when every
//! target of a model is rate-limited or cooling down and the gateway knows when one frees up,
//! the request waits instead of failing. Each model has one line. The request at its head
//! sleeps until the known refill or cooldown end (a timer at that time, so it works the same
//! when the buckets live in Redis), tries again, and keeps its turn until it is served or gives
//! up. When the head leaves, the turn goes to the next request in this order: the highest
//! priority first; within a priority, the gateway keys take turns (round robin), so one key
//! that queued a hundred requests does not hold another key's single request behind all of
//! them; within one key, first come first served. The handover is an event (a one-shot
//! channel the leaving head fires), never a polling loop.
//!
//! A request's [`Place`] is a drop guard: a client that goes away drops the request future
//! and with it its place, so the line, the depth gauge and the wait-time histogram stay right.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use prometheus::{Gauge, Histogram};
use tokio::sync::oneshot;

use crate::metrics::Metrics;

pub use crate::store::keys::{DEFAULT_PRIORITY, HIGHEST_PRIORITY};

/// A request's priority in the line: what its `x-freeway-priority` asks for, never above what
/// its key allows (the key's `priority`, else [`DEFAULT_PRIORITY`]); a header may only lower it.
pub fn priority(requested: Option<u8>, key_allows: Option<u8>) -> u8 {
    let ceiling = key_allows.unwrap_or(DEFAULT_PRIORITY);
    requested.map_or(ceiling, |asked| asked.min(ceiling))
}

/// Who waits, for the order of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    /// Higher is served first.
    pub priority: u8,
    /// The gateway key's name (`None`: no key), the unit of round robin.
    pub key: Option<String>,
}

/// One request that waits for the turn, and how to hand it over.
struct Pending {
    id: u64,
    wake: oneshot::Sender<()>,
}

/// The requests of one priority: a queue per key, and the order in which keys take turns.
#[derive(Default)]
struct Level {
    rotation: VecDeque<Option<String>>,
    by_key: HashMap<Option<String>, VecDeque<Pending>>,
}

impl Level {
    fn push(&mut self, key: Option<String>, pending: Pending) {
        let queue = self.by_key.entry(key.clone()).or_default();
        if queue.is_empty() {
            self.rotation.push_back(key);
        }
        queue.push_back(pending);
    }

    /// The next key's oldest request; that key moves to the back of the rotation.
    fn pop(&mut self) -> Option<Pending> {
        let key = self.rotation.pop_front()?;
        let queue = self.by_key.get_mut(&key)?;
        let next = queue.pop_front();
        if queue.is_empty() {
            self.by_key.remove(&key);
        } else {
            self.rotation.push_back(key);
        }
        next
    }

    fn remove(&mut self, key: &Option<String>, id: u64) {
        let Some(queue) = self.by_key.get_mut(key) else {
            return;
        };
        queue.retain(|pending| pending.id != id);
        if queue.is_empty() {
            self.by_key.remove(key);
            self.rotation.retain(|k| k != key);
        }
    }

    fn is_empty(&self) -> bool {
        self.rotation.is_empty()
    }
}

/// Who holds a model's turn and who waits for it.
#[derive(Default)]
struct LineState {
    head: Option<u64>,
    /// Keyed by priority; the highest is served first.
    levels: BTreeMap<u8, Level>,
    members: usize,
    next_id: u64,
}

impl LineState {
    /// Give the turn to the next waiting request whose future still listens; none: the line
    /// is free.
    fn hand_over(&mut self) {
        self.head = None;
        while let Some((&priority, level)) = self.levels.iter_mut().next_back() {
            let next = level.pop();
            if level.is_empty() {
                self.levels.remove(&priority);
            }
            let Some(next) = next else { continue };
            if next.wake.send(()).is_ok() {
                self.head = Some(next.id);
                return;
            }
        }
    }

    fn forget(&mut self, waiter: &Waiter, id: u64) {
        if let Some(level) = self.levels.get_mut(&waiter.priority) {
            level.remove(&waiter.key, id);
            if level.is_empty() {
                self.levels.remove(&waiter.priority);
            }
        }
    }
}

#[derive(Default)]
struct Line {
    state: Mutex<LineState>,
}

impl Line {
    fn state(&self) -> MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
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
    /// Join `model`'s line as `waiter`, unless `max_waiting` requests already wait in it.
    pub fn join(
        &self,
        model: &str,
        waiter: Waiter,
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
        let id = {
            let mut state = line.state();
            if state.members >= max_waiting {
                return Err(LineFull {
                    waiting: state.members,
                });
            }
            state.members += 1;
            state.next_id += 1;
            state.next_id
        };
        let depth = metrics.queue_depth.with_label_values(&[model]);
        depth.inc();
        Ok(Place {
            line,
            id,
            waiter,
            at_head: false,
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
            .map_or(0, |line| line.state().members)
    }
}

/// One request's place in a model's line.
pub struct Place {
    line: Arc<Line>,
    id: u64,
    waiter: Waiter,
    at_head: bool,
    joined: Instant,
    depth: Gauge,
    wait: Histogram,
}

impl Place {
    /// Wait until this request is at the head of its line; `false` when `until` comes first.
    pub async fn head(&mut self, until: tokio::time::Instant) -> bool {
        if self.at_head {
            return true;
        }
        let handed = {
            let mut state = self.line.state();
            if state.head.is_none() {
                state.head = Some(self.id);
                self.at_head = true;
                return true;
            }
            let (wake, handed) = oneshot::channel();
            let pending = Pending { id: self.id, wake };
            state
                .levels
                .entry(self.waiter.priority)
                .or_default()
                .push(self.waiter.key.clone(), pending);
            handed
        };
        if tokio::time::timeout_at(until, handed).await.is_ok() {
            self.at_head = true;
            return true;
        }
        let mut state = self.line.state();
        if state.head == Some(self.id) {
            // Handed the turn just as the time ran out: take it rather than waste it.
            self.at_head = true;
            return true;
        }
        state.forget(&self.waiter, self.id);
        false
    }

    /// How long this request has waited so far.
    pub fn waited(&self) -> std::time::Duration {
        self.joined.elapsed()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        {
            let mut state = self.line.state();
            state.members -= 1;
            if state.head == Some(self.id) {
                state.hand_over();
            } else {
                state.forget(&self.waiter, self.id);
            }
        }
        self.depth.dec();
        self.wait.observe(self.joined.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn waiter(priority: u8, key: &str) -> Waiter {
        Waiter {
            priority,
            key: Some(key.to_string()),
        }
    }

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(50)
    }

    #[tokio::test]
    async fn first_come_first_served_and_a_dropped_place_leaves_the_line() {
        let room = WaitingRoom::default();
        let metrics = Metrics::new();
        let join = |room: &WaitingRoom| room.join("m", waiter(5, "a"), 2, &metrics);
        let mut first = join(&room).ok().expect("room");
        let mut second = join(&room).ok().expect("room");
        assert!(join(&room).is_err(), "the line is full");
        assert!(first.head(soon()).await);
        assert!(
            !second.head(soon()).await,
            "the second waits behind the first"
        );
        drop(first);
        assert!(second.head(soon()).await);
        assert_eq!(room.waiting("m"), 1);
        drop(second);
        assert_eq!(room.waiting("m"), 0);
        assert!(
            metrics
                .render()
                .contains("freeway_queue_depth{model=\"m\"} 0")
        );
    }

    /// Joins `waiters` behind a head, lets each wait, and returns the order the turn went in.
    async fn order_of_service(waiters: Vec<Waiter>) -> Vec<usize> {
        let room = Arc::new(WaitingRoom::default());
        let metrics = Arc::new(Metrics::new());
        let mut head = room
            .join("m", waiter(0, "head"), 100, &metrics)
            .ok()
            .expect("room");
        assert!(head.head(soon()).await);
        let (served, mut order) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (index, waiter) in waiters.into_iter().enumerate() {
            let mut place = room.join("m", waiter, 100, &metrics).ok().expect("room");
            let served = served.clone();
            tasks.push(tokio::spawn(async move {
                let far = tokio::time::Instant::now() + Duration::from_secs(5);
                assert!(place.head(far).await);
                // Sent while holding the turn; dropping the place hands it on.
                served.send(index).expect("listening");
            }));
            // Each joins the line before the next (the order within a key is arrival).
            while room.line_len("m") < index + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(head);
        let mut seen = Vec::new();
        for _ in 0..tasks.len() {
            seen.push(order.recv().await.expect("served"));
        }
        for task in tasks {
            task.await.expect("task");
        }
        seen
    }

    impl WaitingRoom {
        fn line_len(&self, model: &str) -> usize {
            let lines = self.lines.lock().expect("lines");
            let state = lines[model].state();
            state
                .levels
                .values()
                .flat_map(|level| level.by_key.values())
                .map(VecDeque::len)
                .sum()
        }
    }

    #[tokio::test]
    async fn a_higher_priority_goes_first_and_keys_take_turns_within_a_priority() {
        let order = order_of_service(vec![
            waiter(5, "busy"),
            waiter(5, "busy"),
            waiter(5, "busy"),
            waiter(5, "quiet"),
            waiter(9, "urgent"),
            waiter(1, "batch"),
        ])
        .await;
        assert_eq!(order, vec![4, 0, 3, 1, 2, 5]);
    }

    #[test]
    fn a_header_lowers_but_never_raises_the_keys_priority() {
        assert_eq!(priority(None, None), DEFAULT_PRIORITY);
        assert_eq!(priority(Some(9), None), DEFAULT_PRIORITY);
        assert_eq!(priority(Some(2), None), 2);
        assert_eq!(priority(None, Some(8)), 8);
        assert_eq!(priority(Some(9), Some(8)), 8);
        assert_eq!(priority(Some(0), Some(8)), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_is_skipped() {
        let room = WaitingRoom::default();
        let metrics = Metrics::new();
        let mut head = room
            .join("m", waiter(5, "a"), 9, &metrics)
            .ok()
            .expect("room");
        assert!(head.head(soon()).await);
        let mut impatient = room
            .join("m", waiter(5, "b"), 9, &metrics)
            .ok()
            .expect("room");
        assert!(!impatient.head(soon()).await);
        let mut patient = room
            .join("m", waiter(5, "c"), 9, &metrics)
            .ok()
            .expect("room");
        drop(impatient);
        let far = tokio::time::Instant::now() + Duration::from_secs(5);
        let waiting = tokio::spawn(async move { patient.head(far).await });
        tokio::task::yield_now().await;
        drop(head);
        assert!(
            waiting.await.expect("task"),
            "the turn skips the one that left"
        );
        assert_eq!(room.waiting("m"), 0);
    }
}
