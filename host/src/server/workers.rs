//! Request workers: one OS thread per core, each running its own single-threaded tokio
//! runtime, and the hand-off that gives each accepted connection to the least busy of them.
//!
//! Why: on a shared work-stealing runtime a request's tasks (the client connection, the
//! upstream connection, the wakeups between them) hop between cores, and each hop costs a
//! cross-core wakeup and a reschedule interrupt: measured at ~20 µs of CPU per request on two
//! cores, a fifth of the gateway's own cost. A connection served start to end on one thread
//! never hops: its upstream connections come from that thread's own pool
//! (`upstream::Upstream` keeps one per thread) and whatever it spawns runs beside it. The
//! acceptor stays on the control runtime; connections (not requests) are what moves between
//! threads, once each.
//!
//! The cost: no work stealing, so one connection's CPU-heavy request delays the others on its
//! thread (a plugin call is cut at its time limit, `timeout_ms`, 100 ms by default). nginx and
//! Envoy make the same trade. A worker that runs out of work spins briefly before it sleeps
//! (`spin`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::IntGauge;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

use super::spin;

/// A connection to serve: called on its worker's thread, inside its runtime, it returns the
/// future that serves the connection to its end.
pub type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

struct Worker {
    jobs: mpsc::UnboundedSender<Job>,
    /// Connections this worker serves now: `freeway_worker_connections{worker="i"}`.
    connections: IntGauge,
}

/// The worker threads. Dropping the pool ends each worker once its queue is empty; the
/// connections it serves are waited for by the listener's graceful shutdown, not here.
pub struct Workers {
    workers: Vec<Worker>,
    /// Where the search for the least busy worker starts, so ties take turns.
    next: AtomicUsize,
}

impl Workers {
    /// Start `threads` workers (0: one per core), each spinning for `idle_spin` before it
    /// sleeps (zero: never; see `spin`), counting their connections in `metrics`.
    pub fn start(threads: usize, idle_spin: Duration, metrics: &Metrics) -> anyhow::Result<Self> {
        let threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let mut workers = Vec::with_capacity(threads);
        for index in 0..threads {
            let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
            // The runtime is built on its own thread (a runtime dropped inside another one
            // panics), which says whether it started.
            let (started, start_result) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
            std::thread::Builder::new()
                .name(format!("freeway-worker-{index}"))
                .spawn(move || {
                    let mut builder = tokio::runtime::Builder::new_current_thread();
                    builder.enable_all();
                    if !idle_spin.is_zero() {
                        builder.on_thread_unpark(spin::woke);
                    }
                    let runtime = match builder.build() {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            let _ = started.send(Err(error));
                            return;
                        }
                    };
                    let _ = started.send(Ok(()));
                    runtime.block_on(async move {
                        if !idle_spin.is_zero() {
                            tokio::spawn(spin::spinner(idle_spin));
                        }
                        while let Some(job) = queue.recv().await {
                            tokio::spawn(job());
                        }
                    });
                })
                .and_then(|_| {
                    start_result
                        .recv()
                        .unwrap_or_else(|_| Err(std::io::Error::other("the thread ended")))
                })
                .map_err(|e| anyhow::anyhow!("cannot start request worker {index}: {e}"))?;
            workers.push(Worker {
                jobs,
                connections: metrics
                    .worker_connections
                    .with_label_values(&[index.to_string()]),
            });
        }
        Ok(Workers {
            workers,
            next: AtomicUsize::new(0),
        })
    }

    /// How many worker threads serve connections.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Give a connection to the worker serving the fewest: the socket moves to that worker's
    /// reactor and `serve` is called there with it; the worker's count drops when the future
    /// it returns ends.
    pub fn dispatch<F, Fut>(&self, stream: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // Out of this runtime's reactor, to be registered with the worker's.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!("cannot hand the connection to a worker: {error}");
                return;
            }
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.workers.len();
        let worker = (0..count)
            .map(|offset| &self.workers[(start + offset) % count])
            .min_by_key(|worker| worker.connections.get())
            .expect("at least one worker");
        let counted = Counted::new(worker.connections.clone());
        let job: Job = Box::new(move || {
            Box::pin(async move {
                match TcpStream::from_std(stream) {
                    Ok(stream) => serve(stream).await,
                    Err(error) => tracing::debug!("cannot serve the connection: {error}"),
                }
                drop(counted);
            })
        });
        if worker.jobs.send(job).is_err() {
            // The worker's thread is gone (it only ends when the pool is dropped, or if it
            // panicked): the connection is closed by dropping it.
            tracing::error!("a request worker has stopped; connection dropped");
        }
    }
}

/// One connection in a worker's count, for as long as it lives (a panic or a dropped job
/// included).
struct Counted(IntGauge);

impl Counted {
    fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        Counted(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}
