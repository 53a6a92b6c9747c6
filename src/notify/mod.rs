//! Notifications: a halt, a rollback, a confirmation that waits, a completion, an override, a
//! freeze, a lost lease or a long outage, told to webhooks (generic JSON or Slack) once per
//! transition.
//!
//! The engine's front end feeds a `Notifier` what it sees on every refresh: new audit events
//! (`observe_events`) and the conditions that hold now (`observe_state`). The `Tracker` decides
//! what is news; each target has its own bounded queue and a background task that POSTs with
//! retries, so observing never waits for the network, and a dead target never delays another.
//! `status()` says what was sent and what failed, for the screen; failures are logged too.

pub mod config;
pub mod deliver;
pub mod message;
pub mod terminal;
pub mod track;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

pub use config::{NotifyConfig, NotifyEvent, Target, TargetKind, TerminalNotify, masked_url};
pub use deliver::{Retry, SendError};
pub use message::{Notice, RolloutState};
pub use terminal::terminal_notification;
pub use track::{Condition, Tracker, classify};

use crate::domain::event::Event;
use crate::domain::rollout::Rollout;

/// Messages waiting per target; past this the oldest is dropped (and counted), so a target
/// that is down for hours holds a bounded amount of memory.
pub const QUEUE_PER_TARGET: usize = 64;

/// How messages are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub retry: Retry,
    pub queue: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            retry: Retry::default(),
            queue: QUEUE_PER_TARGET,
        }
    }
}

/// What happened to one target's messages.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetStatus {
    /// `notify[0] slack https://hooks.slack.com/***` (never the whole URL).
    pub label: String,
    /// Messages delivered.
    pub sent: u64,
    /// Messages given up on, after their tries.
    pub failed: u64,
    /// Messages dropped unsent because the queue was full.
    pub dropped: u64,
    /// POSTs made, retries included.
    pub attempts: u64,
    /// Messages waiting, the one being sent included.
    pub queued: usize,
    pub last_sent_at: Option<DateTime<Utc>>,
    /// The last failure, scrubbed of secrets.
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub last_dropped_at: Option<DateTime<Utc>>,
}

impl TargetStatus {
    /// A message was given up on or dropped after the last one delivered.
    pub fn failing(&self) -> bool {
        let lost = self.last_error_at.max(self.last_dropped_at);
        lost.is_some() && lost > self.last_sent_at
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifyStatus {
    pub targets: Vec<TargetStatus>,
}

impl NotifyStatus {
    /// One line for the screen when a target is failing, naming it and its last error. Escaped.
    pub fn problem(&self) -> Option<String> {
        let failing: Vec<&TargetStatus> = self.targets.iter().filter(|t| t.failing()).collect();
        let first = failing.first()?;
        let more = match failing.len() {
            1 => String::new(),
            n => format!(" (and {} more targets)", n - 1),
        };
        let why = first
            .last_error
            .as_deref()
            .unwrap_or("messages dropped while it was unreachable");
        Some(
            crate::domain::text::escape(&format!(
                "notifications failing: {}: {why}; {} sent, {} failed, {} dropped{more}",
                first.label, first.sent, first.failed, first.dropped
            ))
            .into_owned(),
        )
    }
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Notice>,
    /// A message taken from the queue and not yet settled.
    sending: bool,
}

struct Lane {
    target: Target,
    queue: Mutex<Queue>,
    wake: Notify,
    status: Mutex<TargetStatus>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Turns observations into messages and sends them in the background. Needs a tokio runtime
/// to start; its tasks end when it is dropped.
pub struct Notifier {
    tracker: Mutex<Tracker>,
    lanes: Vec<Arc<Lane>>,
    capacity: usize,
    /// Woken whenever a message settles, for `settle`.
    settled: Arc<Notify>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Notifier {
    /// Validates `entries` (as `Config::validate` did) and starts one sender per target.
    /// Events from before `since` are history and never sent.
    pub fn from_config(entries: &[NotifyConfig], since: DateTime<Utc>) -> Result<Notifier, String> {
        Notifier::start(config::targets(entries)?, since, Delivery::default())
    }

    pub fn start(
        targets: Vec<Target>,
        since: DateTime<Utc>,
        delivery: Delivery,
    ) -> Result<Notifier, String> {
        let client = deliver::client()?;
        let settled = Arc::new(Notify::new());
        let lanes: Vec<Arc<Lane>> = targets
            .iter()
            .map(|t| {
                Arc::new(Lane {
                    target: t.clone(),
                    queue: Mutex::default(),
                    wake: Notify::new(),
                    status: Mutex::new(TargetStatus {
                        label: t.label(),
                        ..TargetStatus::default()
                    }),
                })
            })
            .collect();
        let workers = lanes
            .iter()
            .map(|lane| {
                tokio::spawn(send_loop(
                    lane.clone(),
                    client.clone(),
                    delivery.retry,
                    settled.clone(),
                ))
            })
            .collect();
        Ok(Notifier {
            tracker: Mutex::new(Tracker::new(targets, since)),
            lanes,
            capacity: delivery.queue.max(1),
            settled,
            workers,
        })
    }

    /// No target is configured: observing does nothing.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// New audit events of a rollout (any number of times, any overlap): each halt, rollback,
    /// completion or override is sent once. `rollout` is its document as now read, for the
    /// state in the message. Never waits.
    pub fn observe_events(&self, rollout: Option<&Rollout>, events: &[Event]) {
        if self.is_empty() {
            return;
        }
        let outgoing = lock(&self.tracker).events(rollout, events);
        self.enqueue(outgoing);
    }

    /// Every condition that holds now for `rollout` (None: the whole system, for a store
    /// outage or a freeze). Call it on every refresh: a condition is sent once when it
    /// starts (an outage once it has lasted a target's `outage_after`), and again only after
    /// an observation without it. Never waits.
    pub fn observe_state(
        &self,
        rollout: Option<&Rollout>,
        active: &[Condition],
        now: DateTime<Utc>,
    ) {
        if self.is_empty() {
            return;
        }
        let outgoing = lock(&self.tracker).state(rollout, active, now);
        self.enqueue(outgoing);
    }

    /// A rollout was removed from the store: its conditions end, so a new rollout of the
    /// same id is told about afresh.
    pub fn forget(&self, rollout_id: &str) {
        lock(&self.tracker).forget(rollout_id);
    }

    fn enqueue(&self, outgoing: Vec<track::Outgoing>) {
        for (index, notice) in outgoing {
            let Some(lane) = self.lanes.get(index) else {
                continue;
            };
            let dropped = {
                let mut q = lock(&lane.queue);
                q.waiting.push_back(notice);
                (q.waiting.len() > self.capacity).then(|| q.waiting.pop_front())
            };
            if let Some(Some(old)) = dropped {
                let count = {
                    let mut s = lock(&lane.status);
                    s.dropped += 1;
                    s.last_dropped_at = Some(Utc::now());
                    s.dropped
                };
                tracing::warn!(
                    to = %lane.target.label(),
                    dropped = count,
                    event = old.event.as_str(),
                    "notification queue full: the oldest message was dropped unsent"
                );
            }
            lane.wake.notify_one();
        }
    }

    /// What each target's messages came to.
    pub fn status(&self) -> NotifyStatus {
        NotifyStatus {
            targets: self
                .lanes
                .iter()
                .map(|lane| {
                    let queued = {
                        let q = lock(&lane.queue);
                        q.waiting.len() + usize::from(q.sending)
                    };
                    TargetStatus {
                        queued,
                        ..lock(&lane.status).clone()
                    }
                })
                .collect(),
        }
    }

    /// Waits until every queued message is delivered or given up on, or `limit` passes
    /// (quitting right after a rollback should still tell people). True when all settled.
    pub async fn settle(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.settled.notified();
            if self.status().targets.iter().all(|t| t.queued == 0) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        for w in &self.workers {
            w.abort();
        }
    }
}

async fn send_loop(lane: Arc<Lane>, client: reqwest::Client, retry: Retry, settled: Arc<Notify>) {
    loop {
        let next = {
            let mut q = lock(&lane.queue);
            let next = q.waiting.pop_front();
            q.sending = next.is_some();
            next
        };
        let Some(notice) = next else {
            // `notify_one` keeps a wake-up for a task that is not waiting yet: none is lost.
            lane.wake.notified().await;
            continue;
        };
        let body = deliver::body(&lane.target, &notice);
        let (tries, outcome) = deliver::post_with_retry(&client, &lane.target, &body, retry).await;
        {
            let mut s = lock(&lane.status);
            s.attempts += u64::from(tries);
            match &outcome {
                Ok(()) => {
                    s.sent += 1;
                    s.last_sent_at = Some(Utc::now());
                }
                Err(e) => {
                    s.failed += 1;
                    s.last_error = Some(e.text().to_string());
                    s.last_error_at = Some(Utc::now());
                }
            }
        }
        match outcome {
            Ok(()) => tracing::info!(
                to = %lane.target.label(),
                event = notice.event.as_str(),
                tries,
                "notification sent"
            ),
            Err(e) => tracing::warn!(
                to = %lane.target.label(),
                event = notice.event.as_str(),
                tries,
                error = %e.text(),
                "notification not delivered"
            ),
        }
        lock(&lane.queue).sending = false;
        settled.notify_waiters();
    }
}
