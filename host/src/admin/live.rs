//! `GET /admin/events`: the dashboard's live feed as Server-Sent Events, and `GET
//! /admin/requests`: the recent requests it starts from.
//!
//! A subscriber first gets `hello`, the recent past (`reload` and `request` events, oldest
//! first) and the `targets` view; then every new request and reload as it happens, and
//! `targets` again whenever that view changes (checked every second, and soon after each
//! request, when state usually moves). Each subscriber has its own task writing into a small
//! bounded channel that hyper drains as the browser reads: a slow browser stalls only its own
//! task, whose broadcast receiver then skips ahead and sends `lagged` (the page reloads its
//! view). Requests never wait for a dashboard. The stream ends when the client goes away or
//! the gateway shuts down.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval};

use crate::events::{Event, EventKind, MAX_SUBSCRIBERS, RECENT_REQUESTS, Subscription};
use crate::http::{ResponseBody, json_response, response};
use crate::pipeline::Gateway;

use super::targets;

/// Frames waiting for a slow browser, at most.
const FRAMES_QUEUED: usize = 64;
/// How often target state is compared with what was last sent.
const TARGETS_EVERY: Duration = Duration::from_secs(1);
/// How soon after a request the target view is checked again (at most this often).
const TARGETS_AFTER_REQUEST: Duration = Duration::from_millis(200);
/// A comment line this often keeps proxies from closing an idle stream and notices a client
/// that went away.
const PING_EVERY: Duration = Duration::from_secs(15);

/// `GET /admin/requests`: the recent requests, newest first.
pub fn recent_requests(gateway: &Gateway) -> Response<ResponseBody> {
    let recent = gateway.feed.recent_requests();
    let recent: Vec<&Event> = recent.iter().map(|e| e.as_ref()).collect();
    json_response(
        StatusCode::OK,
        &json!({"capacity": RECENT_REQUESTS, "requests": recent}),
    )
}

/// `GET /admin/events`.
pub fn subscribe(gateway: &Arc<Gateway>) -> Response<ResponseBody> {
    let Some(subscription) = gateway.feed.subscribe() else {
        let body = json!({"error": {
            "message": format!("{MAX_SUBSCRIBERS} live feeds are open already; close a dashboard tab"),
            "type": "server_error", "param": null, "code": "too_many_subscribers",
        }});
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &body);
    };
    let (frames, receiver) = mpsc::channel(FRAMES_QUEUED);
    tokio::spawn(pump(gateway.clone(), subscription, frames));
    let mut answer = response(
        StatusCode::OK,
        "text/event-stream",
        ResponseBody::new(FrameBody(receiver)),
    );
    let headers = answer.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    answer
}

fn frame(name: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn event_frame(event: &Event) -> Bytes {
    let name = match event.kind {
        EventKind::Request(_) => "request",
        EventKind::Reload(_) => "reload",
    };
    frame(name, &serde_json::to_string(event).unwrap_or_default())
}

/// One subscriber's writer: `None` from a send means stop (client gone or shutting down).
struct Writer {
    frames: mpsc::Sender<Bytes>,
    subscription: Subscription,
}

impl Writer {
    async fn send(&mut self, bytes: Bytes) -> Option<()> {
        let closed = &mut self.subscription.closed;
        tokio::select! {
            sent = self.frames.send(bytes) => sent.ok(),
            _ = closed.wait_for(|closed| *closed) => None,
        }
    }
}

async fn pump(gateway: Arc<Gateway>, subscription: Subscription, frames: mpsc::Sender<Bytes>) {
    let mut writer = Writer {
        frames,
        subscription,
    };
    let _ = run(&gateway, &mut writer).await;
}

async fn run(gateway: &Gateway, writer: &mut Writer) -> Option<()> {
    let hello = json!({"last_seq": writer.subscription.last_seq, "capacity": RECENT_REQUESTS});
    writer.send(frame("hello", &hello.to_string())).await?;
    for event in std::mem::take(&mut writer.subscription.backlog) {
        writer.send(event_frame(&event)).await?;
    }
    let mut last_targets = String::new();
    let mut targets_checked = Instant::now();
    send_targets_if_changed(gateway, writer, &mut last_targets).await?;
    let mut tick = interval(TARGETS_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut ping = interval(PING_EVERY);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Set by a request: check targets once `TARGETS_AFTER_REQUEST` has passed.
    let mut recheck_at: Option<Instant> = None;
    loop {
        let recheck = async {
            match recheck_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let closed = &mut writer.subscription.closed;
        let wake = tokio::select! {
            _ = closed.wait_for(|closed| *closed) => return None,
            _ = writer.frames.closed() => return None,
            received = writer.subscription.live.recv() => Wake::Event(received),
            _ = recheck => Wake::Targets,
            _ = tick.tick() => Wake::Targets,
            _ = ping.tick() => Wake::Ping,
        };
        match wake {
            Wake::Event(Ok(event)) => {
                if event.seq <= writer.subscription.last_seq {
                    continue;
                }
                writer.send(event_frame(&event)).await?;
                if recheck_at.is_none() {
                    recheck_at =
                        Some((targets_checked + TARGETS_AFTER_REQUEST).max(Instant::now()));
                }
            }
            Wake::Event(Err(RecvError::Lagged(missed))) => {
                writer
                    .send(frame("lagged", &json!({"missed": missed}).to_string()))
                    .await?;
            }
            Wake::Event(Err(RecvError::Closed)) => return None,
            Wake::Targets => {
                recheck_at = None;
                targets_checked = Instant::now();
                send_targets_if_changed(gateway, writer, &mut last_targets).await?;
            }
            Wake::Ping => writer.send(Bytes::from_static(b": ping\n\n")).await?,
        }
    }
}

/// What woke a subscriber's task.
enum Wake {
    Event(Result<Arc<Event>, RecvError>),
    Targets,
    Ping,
}

async fn send_targets_if_changed(
    gateway: &Gateway,
    writer: &mut Writer,
    last: &mut String,
) -> Option<()> {
    let snapshot = gateway.snapshot.load_full();
    let view = targets::view(gateway, &snapshot).await.to_string();
    if view != *last {
        writer.send(frame("targets", &view)).await?;
        *last = view;
    }
    Some(())
}

/// The response body: frames as the subscriber's task writes them.
struct FrameBody(mpsc::Receiver<Bytes>);

impl Body for FrameBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|bytes| bytes.map(|b| Ok(Frame::data(b))))
    }
}
