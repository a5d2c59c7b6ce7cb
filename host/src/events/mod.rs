//! The live feed the operator dashboard reads: every finished request and every reload, as
//! events with a sequence number, kept in bounded rings (the recent past a newly opened page
//! starts from) and broadcast to live subscribers.
//!
//! Publishing never waits: a ring push under a short lock and a `broadcast::send`, which
//! overwrites the oldest event a slow subscriber has not read rather than blocking. A browser
//! that falls behind learns it missed events (`lagged`) and reloads its view; it can never
//! slow a request. The feed holds no prompt or answer text and no secret: only what the
//! request's log line holds.
//!
//! This layer imports nothing: the pipeline and the reloader fill plain records, the admin
//! API serves them.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// How many finished requests the ring keeps.
pub const RECENT_REQUESTS: usize = 500;
/// How many reloads the ring keeps.
pub const RECENT_RELOADS: usize = 50;
/// How many events a live subscriber may fall behind before it misses some.
const LIVE_BUFFER: usize = 1024;
/// Live subscribers at once (each is an open dashboard tab).
pub const MAX_SUBSCRIBERS: usize = 16;

/// One step of a request's route: a target and what happened to it.
#[derive(Debug, Clone, Serialize)]
pub struct RouteStep {
    pub target: String,
    /// `ok`, `failed`, `skipped`, `cooling`, `over-limit` or `incapable`.
    pub verdict: &'static str,
    /// The explanation, as the `x-freeway-route` header gives it for this target.
    pub detail: String,
}

/// A finished request, as its log line describes it (sizes and counts, never text).
#[derive(Debug, Clone, Serialize)]
pub struct RequestEvent {
    pub id: String,
    /// Unix milliseconds when it finished.
    pub ts: i64,
    pub key: Option<String>,
    pub model: String,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub status: u16,
    /// `ok`, `interrupted`, or the error's code.
    pub outcome: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub stream: bool,
    pub attempts: usize,
    pub latency_ms: f64,
    pub ttft_ms: Option<f64>,
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
    pub cost_usd: Option<f64>,
    /// The route explanation (`x-freeway-route`).
    pub route: String,
    pub steps: Vec<RouteStep>,
}

/// A reload, applied or refused.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadEvent {
    /// Unix milliseconds when it finished.
    pub ts: i64,
    /// What started it (`file change`, `admin request`, ...).
    pub trigger: String,
    pub ok: bool,
    /// What changed, or why it was refused.
    pub message: String,
    pub took_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EventKind {
    /// Boxed: a request event is four times the size of a reload event.
    Request(Box<RequestEvent>),
    Reload(ReloadEvent),
}

/// One event of the feed; `seq` grows by one per event, so a subscriber that starts from a
/// ring snapshot knows which live events it already has.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub seq: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Default)]
struct Rings {
    requests: VecDeque<Arc<Event>>,
    reloads: VecDeque<Arc<Event>>,
}

/// The feed: rings of the recent past and a broadcast of what happens next.
pub struct Feed {
    seq: AtomicU64,
    rings: Mutex<Rings>,
    live: broadcast::Sender<Arc<Event>>,
    subscribers: Arc<AtomicUsize>,
    closed: watch::Sender<bool>,
}

impl Default for Feed {
    fn default() -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Feed {
            seq: AtomicU64::new(0),
            rings: Mutex::default(),
            live,
            subscribers: Arc::default(),
            closed: watch::Sender::new(false),
        }
    }
}

/// A live subscription: the recent past, then events as they happen.
pub struct Subscription {
    /// Ring contents at subscription time, oldest first (reloads, then requests).
    pub backlog: Vec<Arc<Event>>,
    /// The last sequence number in (or before) the backlog: live events at or below it are
    /// already in the backlog.
    pub last_seq: u64,
    pub live: broadcast::Receiver<Arc<Event>>,
    /// Turns true when the gateway shuts down: the subscriber should end.
    pub closed: watch::Receiver<bool>,
    _slot: SubscriberSlot,
}

/// Holds one of the `MAX_SUBSCRIBERS` places until dropped.
struct SubscriberSlot(Arc<AtomicUsize>);

impl Drop for SubscriberSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Rings> {
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, kind: EventKind) {
        let mut rings = self.lock();
        // Numbered under the lock, so ring order and sequence order agree.
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let event = Arc::new(Event { seq, kind });
        let (ring, cap) = match event.kind {
            EventKind::Request(_) => (&mut rings.requests, RECENT_REQUESTS),
            EventKind::Reload(_) => (&mut rings.reloads, RECENT_RELOADS),
        };
        if ring.len() == cap {
            ring.pop_front();
        }
        ring.push_back(event.clone());
        // No subscriber is not an error; a full buffer overwrites, it never waits.
        let _ = self.live.send(event);
    }

    pub fn request(&self, event: RequestEvent) {
        self.publish(EventKind::Request(Box::new(event)));
    }

    pub fn reload(&self, event: ReloadEvent) {
        self.publish(EventKind::Reload(event));
    }

    /// The recent requests, newest first.
    pub fn recent_requests(&self) -> Vec<Arc<Event>> {
        self.lock().requests.iter().rev().cloned().collect()
    }

    /// The recent reloads, newest first.
    pub fn recent_reloads(&self) -> Vec<Arc<Event>> {
        self.lock().reloads.iter().rev().cloned().collect()
    }

    /// Subscribe, unless `MAX_SUBSCRIBERS` are already live.
    pub fn subscribe(&self) -> Option<Subscription> {
        let taken = self.subscribers.fetch_add(1, Ordering::Relaxed);
        let slot = SubscriberSlot(self.subscribers.clone());
        if taken >= MAX_SUBSCRIBERS {
            return None;
        }
        let rings = self.lock();
        // Subscribed under the ring lock: nothing can be published between the snapshot and
        // the receiver's start, so nothing is missed or seen twice.
        let live = self.live.subscribe();
        let backlog: Vec<Arc<Event>> = rings
            .reloads
            .iter()
            .chain(rings.requests.iter())
            .cloned()
            .collect();
        let last_seq = self.seq.load(Ordering::Relaxed);
        drop(rings);
        Some(Subscription {
            backlog,
            last_seq,
            live,
            closed: self.closed.subscribe(),
            _slot: slot,
        })
    }

    /// End every live subscription (at shutdown, so open dashboards do not hold the drain).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str) -> RequestEvent {
        RequestEvent {
            id: id.into(),
            ts: 0,
            key: None,
            model: "m".into(),
            provider: None,
            upstream_model: None,
            status: 200,
            outcome: "ok".into(),
            error: None,
            stream: false,
            attempts: 1,
            latency_ms: 1.0,
            ttft_ms: None,
            prompt_tokens: None,
            completion_tokens: None,
            cost_usd: None,
            route: String::new(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn ring_keeps_the_newest_and_numbers_in_order() {
        let feed = Feed::default();
        for i in 0..RECENT_REQUESTS + 5 {
            feed.request(request(&format!("r{i}")));
        }
        let recent = feed.recent_requests();
        assert_eq!(recent.len(), RECENT_REQUESTS);
        assert_eq!(recent[0].seq, (RECENT_REQUESTS + 5) as u64);
        assert!(recent.windows(2).all(|w| w[0].seq == w[1].seq + 1));
    }

    #[tokio::test]
    async fn subscriber_gets_backlog_then_live_and_never_blocks_publishers() {
        let feed = Feed::default();
        feed.request(request("before"));
        let mut sub = feed.subscribe().expect("a place");
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(sub.last_seq, 1);
        feed.request(request("after"));
        assert_eq!(sub.live.recv().await.expect("live").seq, 2);
        // A subscriber that never reads: publishing still returns at once, and the reader
        // is told it lagged.
        for i in 0..LIVE_BUFFER * 2 {
            feed.request(request(&format!("flood{i}")));
        }
        assert!(matches!(
            sub.live.recv().await,
            Err(broadcast::error::RecvError::Lagged(_))
        ));
    }

    #[test]
    fn subscribers_are_bounded_and_places_come_back() {
        let feed = Feed::default();
        let held: Vec<Subscription> = (0..MAX_SUBSCRIBERS)
            .map(|_| feed.subscribe().expect("a place"))
            .collect();
        assert!(feed.subscribe().is_none());
        drop(held);
        assert!(feed.subscribe().is_some());
    }
}
