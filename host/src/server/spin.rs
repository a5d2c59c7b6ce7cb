//! Spin before sleeping: a request worker that runs out of work keeps checking its sockets,
//! without blocking, for a short window (`server.idle_spin_us`) before it sleeps in the kernel.
//!
//! Why: a worker that sleeps between a request's legs (after writing upstream, after
//! answering) pays for being woken when the next event comes — the wakeup itself, and the
//! cycles its code and data need to come back into a core that went idle. Measured on the
//! 2-core VM the benchmark runs on, one connection at a time against a fast upstream: a
//! worker that spins serves a request in ~130 µs end to end where one that sleeps takes
//! ~210 µs, with the same work. Glommio (`spin_before_park`) and Seastar make the same trade.
//!
//! The price is bounded: spinning starts only when the worker wakes for an event (a request,
//! an upstream answer, a timer) and stops after the worker has found nothing to do for the
//! whole window, so an idle gateway sleeps and uses no CPU, and a busy one was not going to
//! sleep anyway. At a light load a worker spends up to one window of CPU after each burst of
//! events. Each empty turn also yields the core to any other thread waiting for it
//! (`sched_yield`), so a spinning worker does not keep the upstream or a client on the same
//! machine off the CPU.
//!
//! How: one task per worker runtime, the spinner. While it spins it yields to the runtime,
//! which then polls its sockets and timers with a zero timeout before running it again; a
//! long gap between two of its turns means other tasks ran (work), which restarts the window.
//! When the window passes it parks itself, the runtime sleeps, and the runtime's
//! after-unpark hook ([`woke`]) starts it again.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Longer than one empty turn (a zero-timeout `epoll_wait`, a `sched_yield`: a few µs at most
/// on a VM), shorter than serving anything: a gap this long between two turns was work.
const WORK_GAP: Duration = Duration::from_micros(10);

thread_local! {
    /// The parked spinner of this thread's runtime, to be started by [`woke`].
    static PARKED: RefCell<Option<Waker>> = const { RefCell::new(None) };
    /// Set by [`woke`]: the parked spinner may run.
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

/// The runtime's after-unpark hook: the worker woke for an event, so spin once it runs out
/// of work again.
pub fn woke() {
    if let Some(waker) = PARKED.with(|parked| parked.borrow_mut().take()) {
        STARTED.set(true);
        waker.wake();
    }
}

/// The spinner: runs on its worker's runtime for as long as the runtime does.
pub async fn spinner(window: Duration) {
    loop {
        parked().await;
        let mut last_turn = Instant::now();
        let mut idle_since = last_turn;
        loop {
            tokio::task::yield_now().await;
            let now = Instant::now();
            if now.duration_since(last_turn) > WORK_GAP {
                idle_since = now;
            }
            if now.duration_since(idle_since) >= window {
                break;
            }
            // Offer the core to any other thread that wants it; if one took it, the core is
            // not idle and spinning would only slow that thread down: sleep instead.
            std::thread::yield_now();
            last_turn = Instant::now();
            if last_turn.duration_since(now) > WORK_GAP {
                break;
            }
        }
    }
}

/// Wait until [`woke`] starts the spinner.
async fn parked() {
    poll_fn(|cx| {
        if STARTED.replace(false) {
            return Poll::Ready(());
        }
        PARKED.with(|parked| *parked.borrow_mut() = Some(cx.waker().clone()));
        Poll::Pending
    })
    .await
}
