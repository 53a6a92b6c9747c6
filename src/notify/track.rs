//! Which observations are news: one message per transition, however many times the same
//! events and the same state are seen. Pure and synchronous (time passed in), so the rule is
//! tested without a network; `Notifier` wraps it and queues what it returns.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};

use super::config::{NotifyEvent, Target};
use super::message::Notice;
use crate::domain::event::{Event, EventKind};
use crate::domain::health::GateReport;
use crate::domain::progression::{Decision, NextStage};
use crate::domain::rollout::{Rollout, Status};
use crate::present::{self, escape};

/// A state that is worth one message when it starts: present in every observation while it
/// lasts, absent once it ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Auto-progression waits for an operator's yes before `next`, on this gate report.
    AwaitingConfirmation {
        next: NextStage,
        report: Option<GateReport>,
    },
    /// This process's driver held the rollout's lease and does not any more.
    LeaseLost { why: String },
    /// The store has been unreachable since `since`.
    StoreOutage { since: DateTime<Utc>, error: String },
    /// The metrics source has failed every sample since `since`.
    MetricsOutage { since: DateTime<Utc>, error: String },
    /// Every rollout is frozen.
    Frozen {
        by: String,
        reason: String,
        since: DateTime<Utc>,
    },
}

/// What makes two observations the same episode of a condition. A wait for a different stage
/// is a new transition, even when no observation without a wait came between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ConditionKey {
    AwaitingConfirmation(usize),
    LeaseLost,
    StoreOutage,
    MetricsOutage,
    Frozen,
}

impl Condition {
    /// The waiting confirmation a driver's decision means, if it means one.
    pub fn awaiting(decision: &Decision, report: Option<&GateReport>) -> Option<Condition> {
        match decision {
            Decision::AwaitConfirmation(next) => Some(Condition::AwaitingConfirmation {
                next: next.clone(),
                report: report.cloned(),
            }),
            _ => None,
        }
    }

    fn key(&self) -> ConditionKey {
        match self {
            Condition::AwaitingConfirmation { next, .. } => {
                ConditionKey::AwaitingConfirmation(next.index)
            }
            Condition::LeaseLost { .. } => ConditionKey::LeaseLost,
            Condition::StoreOutage { .. } => ConditionKey::StoreOutage,
            Condition::MetricsOutage { .. } => ConditionKey::MetricsOutage,
            Condition::Frozen { .. } => ConditionKey::Frozen,
        }
    }

    pub fn event(&self) -> NotifyEvent {
        match self {
            Condition::AwaitingConfirmation { .. } => NotifyEvent::AwaitingConfirmation,
            Condition::LeaseLost { .. } => NotifyEvent::LeaseLost,
            Condition::StoreOutage { .. } | Condition::MetricsOutage { .. } => NotifyEvent::Outage,
            Condition::Frozen { .. } => NotifyEvent::Freeze,
        }
    }

    /// When an outage began: it is reported to a target once it has lasted that target's
    /// `outage_after`. Other conditions are reported at once.
    fn outage_since(&self) -> Option<DateTime<Utc>> {
        match self {
            Condition::StoreOutage { since, .. } | Condition::MetricsOutage { since, .. } => {
                Some(*since)
            }
            _ => None,
        }
    }

    fn notice(&self, rollout: Option<&Rollout>, now: DateTime<Utc>) -> Notice {
        let prefix = rollout
            .map(|r| format!("{}: ", escape(&r.id)))
            .unwrap_or_default();
        let clean = |text: &str| escape(&crate::metrics::redact::secrets(text, &[])).into_owned();
        let (headline, report) = match self {
            Condition::AwaitingConfirmation { next, report } => (
                format!(
                    "{prefix}auto-progression is ready for {} and waits for an operator's confirmation",
                    escape(&next.phrase())
                ),
                report.as_ref(),
            ),
            Condition::LeaseLost { why } => (
                format!(
                    "{prefix}auto-progression lost its lease and stopped driving: {}",
                    clean(why)
                ),
                None,
            ),
            Condition::StoreOutage { since, error } => (
                format!(
                    "{prefix}the store has been unreachable for {} (since {} UTC): {}",
                    present::since(now - *since),
                    present::clock(*since),
                    clean(error)
                ),
                None,
            ),
            Condition::MetricsOutage { since, error } => (
                format!(
                    "{prefix}the metrics source has been failing for {} (since {} UTC): {}",
                    present::since(now - *since),
                    present::clock(*since),
                    clean(error)
                ),
                None,
            ),
            Condition::Frozen { by, reason, since } => (
                format!(
                    "{prefix}FROZEN by {} at {} UTC: {} — nothing advances until unfrozen",
                    escape(by),
                    present::clock(*since),
                    escape(reason)
                ),
                None,
            ),
        };
        Notice::from_condition(self.event(), headline, rollout, report, now)
    }
}

/// Which notification an audit event is, if any. An override is named as such whatever the
/// move was; a pause is a halt, by the driver or by an operator.
pub fn classify(e: &Event) -> Option<NotifyEvent> {
    if e.reason
        .as_deref()
        .is_some_and(|r| r.starts_with(OVERRIDE_PREFIX))
    {
        return Some(NotifyEvent::Override);
    }
    let completes = e
        .after
        .get(crate::domain::rollout::field::STATUS)
        .and_then(|s| s.as_str())
        == Some(Status::Complete.as_str());
    match e.kind {
        EventKind::Pause => Some(NotifyEvent::Halt),
        EventKind::Rollback => Some(NotifyEvent::Rollback),
        EventKind::Complete | EventKind::Promote => Some(NotifyEvent::Complete),
        _ if completes => Some(NotifyEvent::Complete),
        _ => None,
    }
}

/// How `guard::override_reason` starts every override's recorded reason.
const OVERRIDE_PREFIX: &str = "override: ";

/// Audit events are told apart by what the store keeps of them (they have no id).
type EventKey = (String, DateTime<Utc>, EventKind, String);

/// Events remembered as sent; notifiable events are rare, so this is hours of a busy session.
const REMEMBERED_EVENTS: usize = 4096;

/// A delivery the tracker decided on: the target's position and the message.
pub type Outgoing = (usize, Notice);

pub struct Tracker {
    targets: Vec<Target>,
    /// Events from before this are history (the log a screen loads when it opens), not news.
    since: DateTime<Utc>,
    sent_events: HashSet<EventKey>,
    sent_order: VecDeque<EventKey>,
    /// Conditions under way, per rollout (None: the whole system), with the targets told.
    episodes: HashMap<(Option<String>, ConditionKey), Vec<bool>>,
}

impl Tracker {
    pub fn new(targets: Vec<Target>, since: DateTime<Utc>) -> Tracker {
        Tracker {
            targets,
            since,
            sent_events: HashSet::new(),
            sent_order: VecDeque::new(),
            episodes: HashMap::new(),
        }
    }

    /// A rollout that was removed: its conditions end with it.
    pub fn forget(&mut self, rollout_id: &str) {
        self.episodes
            .retain(|(scope, _), _| scope.as_deref() != Some(rollout_id));
    }

    /// Messages for events not seen before (any order, any repetition); `rollout` is the
    /// rollout's document as now read, for its state.
    pub fn events(&mut self, rollout: Option<&Rollout>, events: &[Event]) -> Vec<Outgoing> {
        let mut out = Vec::new();
        for e in events {
            if e.at < self.since {
                continue;
            }
            let Some(kind) = classify(e) else { continue };
            let key = (e.rollout_id.clone(), e.at, e.kind, e.actor.clone());
            if !self.sent_events.insert(key.clone()) {
                continue;
            }
            self.sent_order.push_back(key);
            if self.sent_order.len() > REMEMBERED_EVENTS
                && let Some(old) = self.sent_order.pop_front()
            {
                self.sent_events.remove(&old);
            }
            // The event's own rollout: a caller that passed another document gets no mix-up.
            let rollout = rollout.filter(|r| r.id == e.rollout_id);
            let notice = Notice::from_event(kind, e, rollout);
            out.extend(
                self.targets
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.wants(kind))
                    .map(|(i, _)| (i, notice.clone())),
            );
        }
        out
    }

    /// Messages for conditions that started (or, for an outage, crossed a target's
    /// `outage_after`) since the last observation of this scope. `active` is every condition
    /// of the scope now: one left out has ended, and reports again only when it starts anew.
    pub fn state(
        &mut self,
        rollout: Option<&Rollout>,
        active: &[Condition],
        now: DateTime<Utc>,
    ) -> Vec<Outgoing> {
        let scope = rollout.map(|r| r.id.clone());
        let keys: HashSet<ConditionKey> = active.iter().map(Condition::key).collect();
        self.episodes
            .retain(|(s, k), _| *s != scope || keys.contains(k));
        let mut out = Vec::new();
        for condition in active {
            let told = self
                .episodes
                .entry((scope.clone(), condition.key()))
                .or_insert_with(|| vec![false; self.targets.len()]);
            let event = condition.event();
            let mut notice = None;
            for (i, target) in self.targets.iter().enumerate() {
                let due = match condition.outage_since() {
                    Some(since) => chrono::Duration::from_std(target.outage_after)
                        .is_ok_and(|after| now - since >= after),
                    None => true,
                };
                if told[i] || !target.wants(event) || !due {
                    continue;
                }
                told[i] = true;
                let n = notice.get_or_insert_with(|| condition.notice(rollout, now));
                out.push((i, n.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::units::Percent;
    use crate::notify::config::{NotifyConfig, targets};
    use serde_json::{Value, json};

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::minutes(minutes)
    }

    fn tracker(entries: &[(&str, &[&str], u64)]) -> Tracker {
        let configs: Vec<NotifyConfig> = entries
            .iter()
            .map(|(url, events, outage_minutes)| NotifyConfig {
                kind: "webhook".into(),
                url: url.to_string(),
                events: events.iter().map(|e| e.to_string()).collect(),
                outage_after: std::time::Duration::from_secs(outage_minutes * 60),
            })
            .collect();
        Tracker::new(targets(&configs).unwrap(), at(0))
    }

    fn event(kind: EventKind, minute: i64, reason: Option<&str>, after: Value) -> Event {
        Event {
            rollout_id: "web".into(),
            kind,
            actor: "alice".into(),
            at: at(minute),
            before: json!({}),
            after,
            reason: reason.map(str::to_string),
            gate_report: None,
        }
    }

    #[test]
    fn events_are_classified_as_operators_name_them() {
        let cases = [
            (
                event(EventKind::Pause, 1, None, json!({})),
                Some(NotifyEvent::Halt),
            ),
            (
                event(EventKind::Rollback, 1, Some("bad"), json!({})),
                Some(NotifyEvent::Rollback),
            ),
            (
                event(EventKind::Promote, 1, None, json!({})),
                Some(NotifyEvent::Complete),
            ),
            (
                event(EventKind::Advance, 1, None, json!({"status": "complete"})),
                Some(NotifyEvent::Complete),
            ),
            (
                event(
                    EventKind::Advance,
                    1,
                    None,
                    json!({"status": "progressive"}),
                ),
                None,
            ),
            (
                event(
                    EventKind::Advance,
                    1,
                    Some(&crate::domain::guard::override_reason(
                        &["gates failing".into()],
                        "hotfix",
                    )),
                    json!({}),
                ),
                Some(NotifyEvent::Override),
            ),
            (
                event(
                    EventKind::Decision,
                    1,
                    Some("asked to confirm"),
                    json!(null),
                ),
                None,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(classify(&e), want, "{e:?}");
        }
    }

    #[test]
    fn an_event_is_sent_once_and_history_never() {
        let mut t = tracker(&[("http://a/x", &["halt", "rollback"], 5)]);
        let old = event(EventKind::Rollback, -10, Some("old"), json!({}));
        let halt = event(EventKind::Pause, 2, None, json!({}));
        let both = [old.clone(), halt.clone()];
        assert_eq!(t.events(None, &both).len(), 1);
        for _ in 0..50 {
            assert!(t.events(None, &both).is_empty());
        }
        // The same kind at another time is another transition.
        let again = event(EventKind::Pause, 3, None, json!({}));
        assert_eq!(t.events(None, &[again]).len(), 1);
    }

    #[test]
    fn a_condition_reports_when_it_starts_and_again_only_after_it_ended() {
        let mut t = tracker(&[("http://a/x", &["awaiting_confirmation"], 5)]);
        let wait = |index| Condition::AwaitingConfirmation {
            next: NextStage {
                index,
                name: "25%".into(),
                percent: Percent::from_hundredths(2500).unwrap(),
                because: None,
            },
            report: None,
        };
        assert_eq!(t.state(None, &[wait(1)], at(1)).len(), 1);
        for m in 0..200 {
            assert!(t.state(None, &[wait(1)], at(2 + m)).is_empty());
        }
        // The next stage's wait is a new transition.
        assert_eq!(t.state(None, &[wait(2)], at(300)).len(), 1);
        assert!(t.state(None, &[], at(301)).is_empty());
        assert_eq!(t.state(None, &[wait(2)], at(302)).len(), 1);
    }

    #[test]
    fn an_outage_reports_to_each_target_after_its_own_threshold() {
        let mut t = tracker(&[
            ("http://a/x", &["outage"], 2),
            ("http://b/y", &["outage"], 10),
        ]);
        let down = [Condition::StoreOutage {
            since: at(0),
            error: "connection refused".into(),
        }];
        assert!(t.state(None, &down, at(1)).is_empty());
        let first = t.state(None, &down, at(2));
        assert_eq!(first.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0]);
        assert!(
            first[0].1.headline.contains("unreachable for 2m"),
            "{}",
            first[0].1.headline
        );
        assert!(t.state(None, &down, at(9)).is_empty());
        let second = t.state(None, &down, at(10));
        assert_eq!(second.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
        assert!(t.state(None, &down, at(60)).is_empty());
    }
}
