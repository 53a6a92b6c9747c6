//! Everything the cockpit shows, in one value. `update` changes it; `ui::render`
//! draws it and never changes it.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use tui_input::Input;

use crate::actuator::acting::TrafficView;
use crate::actuator::cloud_run::TargetSplit;
use crate::domain::actions::{self, Action, UserList};
use crate::domain::event::Event;
use crate::domain::freeze::{self, Freeze, FreezeWindow, Frozen};
use crate::domain::health::{GateConfig, GateReport, HealthSample, Verdict};
use crate::domain::progression::{Decision, NextStage, Policy};
use crate::domain::rollout::{DocError, Plan, Rollout, Status};
use crate::domain::text::{MAX_REASON_CHARS, validate_line};
use crate::domain::units::Percent;
use crate::keys::Keymap;
use crate::metrics::Regression;
use crate::ops::FieldChange;
use crate::present::{self, Attention, Signals, SortKey, WallStatus, WallWord};
use crate::store::LeaseState;
use crate::store::{Lease, StoredRollout};

/// How long a message stays in the status line, in real seconds.
pub const TOAST_SECONDS: i64 = 8;

/// A message's lifetime on the cockpit's clock (a compressed demo clock runs faster).
pub fn toast_lifetime(clock_rate: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((TOAST_SECONDS as f64 * 1000.0 * clock_rate) as i64)
}

/// How many health points each rollout keeps for sparklines (bounded for long runs).
pub const HISTORY_LEN: usize = 120;
/// Events kept per rollout for the detail view.
pub const EVENTS_SHOWN: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Overview,
    Detail,
}

/// One audit event opened from the events panel, read in full (Esc returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView {
    /// The event, by its time and kind: a newer event arriving while it is read shifts
    /// the list, not what is open.
    pub at: DateTime<Utc>,
    pub kind: crate::domain::event::EventKind,
    /// Wrapped lines scrolled past (the view clamps it to what there is).
    pub scroll: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Timeline,
    Health,
    Users,
    Events,
}

impl Panel {
    pub const ALL: [Panel; 4] = [Panel::Timeline, Panel::Health, Panel::Users, Panel::Events];

    pub fn next(self) -> Panel {
        let i = Panel::ALL.iter().position(|p| *p == self).unwrap_or(0);
        Panel::ALL[(i + 1) % Panel::ALL.len()]
    }

    pub fn title(self) -> &'static str {
        match self {
            Panel::Timeline => "Stages",
            Panel::Health => "Stable vs canary",
            Panel::Users => "Users",
            Panel::Events => "Events",
        }
    }
}

/// One point of a sparkline series, per side.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HistoryPoint {
    pub at: Option<DateTime<Utc>>,
    pub stable_error_rate: Option<f64>,
    pub canary_error_rate: Option<f64>,
    pub stable_p99: Option<f64>,
    pub canary_p99: Option<f64>,
    pub stable_rps: Option<f64>,
    pub canary_rps: Option<f64>,
}

impl HistoryPoint {
    pub fn of(sample: &HealthSample) -> HistoryPoint {
        let window = sample.window.as_secs_f64().max(1.0);
        let (s, c) = (sample.stable.as_ref(), sample.canary.as_ref());
        HistoryPoint {
            at: Some(sample.taken_at),
            stable_error_rate: s.and_then(|s| s.error_rate()),
            canary_error_rate: c.and_then(|s| s.error_rate()),
            stable_p99: s.and_then(|s| s.p99_ms),
            canary_p99: c.and_then(|s| s.p99_ms),
            stable_rps: s.map(|s| s.requests as f64 / window),
            canary_rps: c.map(|s| s.requests as f64 / window),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Health {
    /// The newest sample, good or not.
    pub latest: Option<HealthSample>,
    /// The newest sample that had both sides: stays visible, marked with its age, through outages.
    pub last_good: Option<HealthSample>,
    /// The verdict on `last_good`: what the wall says the data said once it turns stale.
    pub last_good_verdict: Option<Verdict>,
    pub report: Option<GateReport>,
    pub history: VecDeque<HistoryPoint>,
}

impl Health {
    pub fn verdict(&self) -> Option<Verdict> {
        self.report.as_ref().map(|r| r.verdict)
    }

    pub fn source_error(&self) -> Option<&str> {
        self.latest.as_ref().and_then(|s| s.source_error.as_deref())
    }

    /// Since when every sample has counted zero canary requests: None when the newest
    /// sample saw canary traffic or has no canary numbers (an outage is not a silence).
    /// The silence starts at the last sample with traffic, else at the first silent one.
    pub fn canary_silent_since(&self) -> Option<DateTime<Utc>> {
        let mut since = None;
        for p in self.history.iter().rev() {
            match p.canary_rps {
                Some(rps) if rps <= 0.0 => since = p.at.or(since),
                // The last sample with traffic: the silence began after it.
                Some(_) => return since.and(p.at),
                None => break,
            }
        }
        since
    }
}

/// Auto-progression as the cockpit sees it (the driver runs in a background task).
#[derive(Debug, Clone, Default)]
pub struct AutoView {
    pub lease: Option<LeaseState>,
    pub decision: Option<Decision>,
    /// The last automatic write: its summary, or why it failed.
    pub acted: Option<Result<String, String>>,
}

/// The split a dialog's move would set, and Cloud Run's dry-run answer (None while asked).
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficPlan {
    pub id: String,
    /// None when the move cannot be set as a split at all (the answer says why).
    pub split: Option<TargetSplit>,
    pub answer: Option<Result<String, String>>,
}

impl TrafficPlan {
    /// The dialog's line about it.
    pub fn line(&self) -> String {
        match (&self.answer, &self.split) {
            (None, Some(split)) => format!("{} (checking with Cloud Run…)", split.describe()),
            (None, None) => String::new(),
            (Some(Ok(planned)), split) => format!(
                "Cloud Run dry run OK: {planned}{}",
                split
                    .as_ref()
                    .map(TargetSplit::document_note)
                    .unwrap_or_default()
            ),
            (Some(Err(e)), Some(_)) => format!("Cloud Run dry run FAILED: {e}"),
            (Some(Err(e)), None) => e.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub stored: StoredRollout,
    pub rollout: Result<Rollout, DocError>,
    pub health: Health,
    pub events: Vec<Event>,
    pub lease: Option<Lease>,
    /// Some while this cockpit runs auto-progression for the rollout.
    pub auto: Option<AutoView>,
    /// What Cloud Run serves, where `[actuator]` sets the rollout's split.
    pub traffic: Option<TrafficView>,
}

impl Entry {
    pub fn id(&self) -> &str {
        &self.stored.id
    }

    /// When the rollout was rolled back: `rolledBackAt`, else its last update (documents
    /// other tools rolled back may lack the field).
    pub fn rolled_back_at(&self) -> Option<DateTime<Utc>> {
        self.stored
            .fields
            .get(crate::domain::rollout::field::ROLLED_BACK_AT)
            .and_then(|v| crate::domain::rollout::parse_time(v).ok())
            .or_else(|| self.rollout.as_ref().ok()?.last_updated_at)
    }

    /// The newest decision auto-progression recorded with its evidence (a halt, a
    /// rollback, an advance, a held or proposed move): the event carries the gate report.
    pub fn last_auto_decision(&self) -> Option<&Event> {
        self.events
            .iter()
            .find(|ev| present::is_automatic(ev) && ev.gate_report.is_some())
    }

    /// When the rollout was last paused, from its audit log (a pause stores no time).
    pub fn paused_at(&self) -> Option<DateTime<Utc>> {
        self.events
            .iter()
            .find(|ev| ev.kind == crate::domain::event::EventKind::Pause)
            .map(|ev| ev.at)
    }

    /// When each stage of the plan was last entered, as far as is known: the current one
    /// from the document, earlier ones from the audit log when it is loaded, the first
    /// from the start.
    pub fn stage_entries(&self, r: &Rollout) -> Vec<Option<DateTime<Utc>>> {
        let Some(plan) = &r.plan else {
            return Vec::new();
        };
        let mut entered = vec![None; plan.stages.len()];
        // Newest first: the first event that put the rollout in a stage is its last entry.
        for ev in &self.events {
            let after = |f: &str| ev.after.get(f);
            if let (Some(i), Some(at)) = (
                after(crate::domain::rollout::field::CURRENT_STAGE).and_then(|v| v.as_u64()),
                after(crate::domain::rollout::field::STAGE_ENTERED_AT)
                    .and_then(|v| crate::domain::rollout::parse_time(v).ok()),
            ) && let Some(slot) = entered.get_mut(i as usize)
                && slot.is_none()
            {
                *slot = Some(at);
            }
        }
        if let Some(first) = entered.first_mut()
            && first.is_none()
        {
            *first = r.started_at;
        }
        if let (Some((i, _)), Some(at)) = (r.stage(), r.stage_entered_at) {
            entered[i] = Some(at);
        }
        entered
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Conn {
    Connected,
    Disconnected { since: DateTime<Utc>, why: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastLevel {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub text: String,
    pub level: ToastLevel,
    pub at: DateTime<Utc>,
}

/// A dialog owns the action it will perform: confirmations are data.
#[derive(Debug, Clone)]
pub enum Dialog {
    /// y/Enter performs, n/Esc cancels.
    Confirm {
        id: String,
        title: String,
        body: Vec<String>,
        action: Action,
    },
    /// The operator must type the rollout id.
    TypedConfirm {
        id: String,
        title: String,
        body: Vec<String>,
        action: Action,
        input: Input,
    },
    /// A widening move over failing or unknown health or unserved bake time: the operator
    /// must type why. Enter with a reason performs (recorded as an override); Esc, the
    /// safe choice, stays.
    Override {
        id: String,
        title: String,
        body: Vec<String>,
        risks: Vec<String>,
        action: Action,
        input: Input,
    },
    /// A reason is required; Enter with a non-empty reason rolls back at once.
    Rollback {
        id: String,
        input: Input,
    },
    SetPercent {
        id: String,
        input: Input,
    },
    AddUser {
        id: String,
        list: UserList,
        input: Input,
    },
    /// A write lost a compare-and-set race.
    Conflict {
        id: String,
        action: Action,
        changed: Vec<FieldChange>,
        /// The newest audit event recorded after the revision the write was based on: who
        /// changed the rollout, as far as the audit log knows.
        by: Option<Event>,
    },
    /// `p` on a running rollout: an optional reason, then Enter pauses.
    Pause {
        id: String,
        input: Input,
    },
    /// `w`: which side a user key lands on; Enter shows the answer in an `Info` dialog.
    Which {
        id: String,
        input: Input,
    },
    /// Something to read; any of Esc, Enter or q closes it.
    Info {
        title: String,
        body: Vec<String>,
    },
    /// Simulator only: pick a fault to inject into the rollout's canary (or clear them).
    Fault {
        id: String,
    },
    /// Quitting would stop auto-progression this cockpit runs: y quits (the leases are
    /// released, so another cockpit can take over), n stays.
    Quit {
        driving: Vec<String>,
    },
    /// `F` when not frozen: the reason is required; Enter freezes every rollout.
    Freeze {
        input: Input,
    },
    /// `F` while frozen: y lifts the freeze, n/Esc keeps it.
    Unfreeze {
        freeze: Freeze,
    },
    /// `T`: y sets the service's traffic split to what the document says.
    SyncTraffic {
        id: String,
        view: TrafficView,
    },
    /// Auto-progression is ready for the next stage and asks: y advances, n holds.
    AutoConfirm {
        id: String,
        next: NextStage,
        evidence: Vec<String>,
        since: DateTime<Utc>,
    },
}

impl Dialog {
    /// The rollout the dialog is about (none for the quit question).
    pub fn rollout_id(&self) -> Option<&str> {
        match self {
            Dialog::Confirm { id, .. }
            | Dialog::TypedConfirm { id, .. }
            | Dialog::Override { id, .. }
            | Dialog::Rollback { id, .. }
            | Dialog::SetPercent { id, .. }
            | Dialog::AddUser { id, .. }
            | Dialog::Conflict { id, .. }
            | Dialog::Pause { id, .. }
            | Dialog::Which { id, .. }
            | Dialog::Fault { id }
            | Dialog::SyncTraffic { id, .. }
            | Dialog::AutoConfirm { id, .. } => Some(id),
            Dialog::Quit { .. }
            | Dialog::Info { .. }
            | Dialog::Freeze { .. }
            | Dialog::Unfreeze { .. } => None,
        }
    }
}

/// Wall-screen (`watch`) mode: read-only, rotating between rollouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Wall {
    pub rotate_every: std::time::Duration,
    /// The rollout shown when they do not all fit in a grid.
    pub index: usize,
    pub last_rotate: DateTime<Utc>,
    pub paused: bool,
    /// Data older than this is flagged STALE.
    pub stale_after: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub title: String,
    pub store_desc: String,
    pub metrics_desc: Option<String>,
    pub actor: String,
    pub keys: Keymap,
    pub gates: GateConfig,
    pub default_plan: Plan,
    pub policy: Policy,
    /// The store's freeze flag, as last read.
    pub freeze: Option<Freeze>,
    /// The config's freeze windows.
    pub freeze_windows: Vec<FreezeWindow>,
    /// The dry run of the split the open dialog's move would set (Cloud Run's `validateOnly`).
    pub traffic_plan: Option<TrafficPlan>,
    /// A notification target that is failing, as one line.
    pub notify_problem: Option<String>,
    /// How this terminal is told a confirmation awaits (`[cockpit] notify_terminal`).
    pub notify_terminal: crate::notify::TerminalNotify,
    /// The confirmation the terminal was last alerted about (rollout, stage).
    pub alerted: Option<(String, usize)>,
    /// Rollouts to drive from the start (`--auto ID`).
    pub auto_on_start: Vec<String>,
    pub rollouts: Vec<Entry>,
    /// Index into `visible()`.
    pub selected: usize,
    /// The overview's order (the sort key cycles it).
    pub sort: SortKey,
    /// Rollout ids in the order the overview lists them. `update` re-sorts after every
    /// message and keeps the cursor on its rollout, so a row never moves under a key.
    pub order: Vec<String>,
    pub filter: String,
    /// Some while the filter is being typed.
    pub filter_input: Option<Input>,
    pub screen: Screen,
    pub focus: Panel,
    pub user_list: UserList,
    pub user_cursor: usize,
    pub event_offset: usize,
    /// Some while one event is open in full.
    pub event_view: Option<EventView>,
    /// Per rollout, the time of the automatic decision whose card the operator dismissed:
    /// a newer decision brings the card back.
    pub dismissed_cards: std::collections::BTreeMap<String, DateTime<Utc>>,
    pub dialog: Option<Dialog>,
    /// The rollout as it was when the open dialog opened (see `update::open_dialog`).
    pub dialog_seen: Option<StoredRollout>,
    /// The open dialog was rebuilt because its rollout changed while it was open.
    pub dialog_refreshed: bool,
    /// Simulated seconds per real second (a compressed demo clock); messages meant to be
    /// read stay up for their real time.
    pub clock_rate: f64,
    /// The metrics come from the traffic simulator, so faults can be injected (`!`).
    pub simulated: bool,
    /// Faults injected into each rollout's simulated canary, as shown in its header.
    pub faults: std::collections::BTreeMap<String, Vec<crate::metrics::Regression>>,
    pub help_open: bool,
    pub store_conn: Conn,
    /// When the store last delivered anything (a snapshot or a change).
    pub store_seen_at: Option<DateTime<Utc>>,
    pub toast: Option<Toast>,
    /// Writes sent and not yet answered.
    pub pending_writes: usize,
    pub now: DateTime<Utc>,
    pub quit: bool,
    /// Something visible changed since the last draw (set by `update`, cleared by the runtime).
    pub dirty: bool,
    /// Some in watch mode: nothing can be written, whatever the keys.
    pub wall: Option<Wall>,
    /// Where the report key writes (the data directory's `reports/`); None: nowhere.
    pub reports_dir: Option<std::path::PathBuf>,
}

impl AppState {
    /// The context a move is checked in before a dialog asks about it (the store's freeze
    /// and the config's windows are checked where the write happens).
    pub fn action_context(&self) -> actions::Context<'_> {
        actions::Context {
            actor: &self.actor,
            now: self.now,
            default_plan: &self.default_plan,
            freeze_windows: &[],
        }
    }

    pub fn new(
        title: &str,
        store_desc: String,
        metrics_desc: Option<String>,
        now: DateTime<Utc>,
    ) -> AppState {
        AppState {
            title: title.to_string(),
            store_desc,
            metrics_desc,
            actor: String::new(),
            keys: Keymap::default(),
            gates: GateConfig::default(),
            default_plan: Plan::preset(crate::domain::rollout::PlanPreset::Canary),
            policy: Policy::default(),
            freeze: None,
            freeze_windows: Vec::new(),
            traffic_plan: None,
            notify_problem: None,
            notify_terminal: crate::notify::TerminalNotify::default(),
            alerted: None,
            auto_on_start: Vec::new(),
            rollouts: Vec::new(),
            selected: 0,
            sort: SortKey::default(),
            order: Vec::new(),
            filter: String::new(),
            filter_input: None,
            screen: Screen::Overview,
            focus: Panel::Timeline,
            user_list: UserList::Canary,
            user_cursor: 0,
            event_offset: 0,
            event_view: None,
            dismissed_cards: Default::default(),
            dialog: None,
            dialog_seen: None,
            dialog_refreshed: false,
            clock_rate: 1.0,
            simulated: false,
            faults: Default::default(),
            help_open: false,
            store_conn: Conn::Connected,
            store_seen_at: None,
            toast: None,
            pending_writes: 0,
            now,
            quit: false,
            dirty: true,
            wall: None,
            reports_dir: None,
        }
    }

    /// Whether anything of rollout `id` is on screen now (its row, its detail, its tile).
    pub fn shows(&self, id: &str) -> bool {
        if self.wall.is_some() {
            return true;
        }
        match self.screen {
            Screen::Detail => self.selected_entry().is_some_and(|e| e.id() == id),
            Screen::Overview => self.visible().iter().any(|&i| self.rollouts[i].id() == id),
        }
    }

    /// The rollouts this cockpit's auto-progression drives now (it holds their lease) or is
    /// starting to (its first tick, which may already act, has not reported yet).
    pub fn driving(&self) -> Vec<String> {
        self.rollouts
            .iter()
            .filter(|e| {
                matches!(
                    e.auto.as_ref().map(|a| a.lease.as_ref()),
                    Some(None | Some(LeaseState::Held(_)))
                )
            })
            .map(|e| e.id().to_string())
            .collect()
    }

    /// The filter in effect: what is being typed, else the kept filter.
    pub fn filter_text(&self) -> &str {
        self.filter_input
            .as_ref()
            .map_or(self.filter.as_str(), Input::value)
    }

    /// Indices into `rollouts` that pass the filter, in display order (`order`; a rollout
    /// not sorted yet comes last, by id).
    pub fn visible(&self) -> Vec<usize> {
        let needle = self.filter_text().to_lowercase();
        let mut shown: Vec<usize> = self
            .rollouts
            .iter()
            .enumerate()
            .filter(|(_, e)| needle.is_empty() || e.id().to_lowercase().contains(&needle))
            .map(|(i, _)| i)
            .collect();
        if !self.order.is_empty() {
            let rank: std::collections::HashMap<&str, usize> = self
                .order
                .iter()
                .enumerate()
                .map(|(i, id)| (id.as_str(), i))
                .collect();
            shown.sort_by_key(|&i| {
                rank.get(self.rollouts[i].id())
                    .copied()
                    .unwrap_or(usize::MAX)
            });
        }
        shown
    }

    /// Every rollout id in the order of the sort key, at `now` (`rollouts` is kept by id,
    /// and the sorts are stable, so ties stay in id order).
    pub fn sorted_ids(&self) -> Vec<String> {
        let mut entries: Vec<&Entry> = self.rollouts.iter().collect();
        match self.sort {
            SortKey::Id => {}
            SortKey::Attention => entries.sort_by_cached_key(|e| self.attention(e)),
            SortKey::Updated => entries.sort_by_key(|e| {
                std::cmp::Reverse(e.rollout.as_ref().ok().and_then(|r| r.last_updated_at))
            }),
        }
        entries.iter().map(|e| e.id().to_string()).collect()
    }

    /// What triage sees of a rollout now.
    pub fn signals(&self, e: &Entry) -> Signals {
        let r = e.rollout.as_ref().ok();
        let gates = r.map_or_else(|| self.gates.clone(), |r| r.gates_in_effect(&self.gates));
        let delay = e
            .health
            .latest
            .as_ref()
            .map(|s| s.ingestion_delay)
            .unwrap_or_default();
        let freshness_limit = chrono::Duration::from_std(gates.max_staleness.saturating_add(delay))
            .unwrap_or(chrono::Duration::MAX);
        let awaiting_confirmation = e
            .auto
            .as_ref()
            .is_some_and(|a| matches!(a.decision, Some(Decision::AwaitConfirmation(_))))
            || matches!(&self.dialog, Some(Dialog::AutoConfirm { id, .. }) if id == e.id());
        // A silence is counted from the stage's start at the earliest: a canary that has
        // just been given a share has not had the time to answer yet.
        let canary_silent_since = e
            .health
            .canary_silent_since()
            .map(|t| r.and_then(|r| r.stage_entered_at).map_or(t, |s| t.max(s)));
        Signals {
            status: r.map(|r| r.status),
            percent: r.map_or(crate::domain::units::Percent::ZERO, |r| r.percentage),
            verdict: e.health.verdict(),
            rolled_back_at: e.rolled_back_at(),
            awaiting_confirmation,
            canary_silent_since,
            freshness_limit,
        }
    }

    /// Why the rollout needs attention now, if it does.
    pub fn attention(&self, e: &Entry) -> Attention {
        present::classify(&self.signals(e), self.now)
    }

    /// The automatic decision whose evidence stays on `e`'s detail view until dismissed.
    pub fn decision_card<'a>(&self, e: &'a Entry) -> Option<&'a Event> {
        let ev = e.last_auto_decision()?;
        match self.dismissed_cards.get(e.id()) {
            Some(dismissed) if *dismissed >= ev.at => None,
            _ => Some(ev),
        }
    }

    /// The event open in full and its place in the list, if it is still loaded.
    pub fn open_event(&self) -> Option<(usize, &Event)> {
        let view = self.event_view?;
        self.selected_entry()?
            .events
            .iter()
            .enumerate()
            .find(|(_, ev)| ev.at == view.at && ev.kind == view.kind)
    }

    pub fn selected_entry(&self) -> Option<&Entry> {
        self.visible()
            .get(self.selected)
            .map(|&i| &self.rollouts[i])
    }

    pub fn entry(&self, id: &str) -> Option<&Entry> {
        self.rollouts.iter().find(|e| e.id() == id)
    }

    pub fn entry_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.rollouts.iter_mut().find(|e| e.id() == id)
    }

    /// A countdown is on screen: the rollout shown is running (or paused) in a stage, its
    /// clock in seconds; or auto-progression's question shows how long it has waited.
    pub fn countdown_visible(&self) -> bool {
        if matches!(self.dialog, Some(Dialog::AutoConfirm { .. })) {
            return true;
        }
        let in_stage = |e: &Entry| {
            e.rollout.as_ref().is_ok_and(|r| {
                matches!(
                    r.status,
                    Status::Canary | Status::Progressive | Status::Paused
                )
            })
        };
        self.wall.is_none()
            && self.screen == Screen::Detail
            && self.selected_entry().is_some_and(in_stage)
    }

    /// When the screen next changes by the passing of time alone (a clock, a countdown, a
    /// message expiring, data turning stale, the wall rotating); None when only a message
    /// can change it. The runtime sleeps until then: an idle wall wakes once a minute.
    pub fn next_clock_change(&self) -> Option<DateTime<Utc>> {
        let second = self.now
            + chrono::Duration::milliseconds(1000 - self.now.timestamp_subsec_millis() as i64);
        let mut next: Option<DateTime<Utc>> = None;
        let mut at = |t: DateTime<Utc>| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(t) = &self.toast {
            at(t.at + toast_lifetime(self.clock_rate));
        }
        if self.countdown_visible() {
            at(second);
        }
        // The overview and the wall show stage times to the minute, and re-rank a rollout
        // the moment its canary's silence passes the limit or its rollback stops being recent.
        let minute = self.now + chrono::Duration::seconds(60 - self.now.timestamp() % 60)
            - chrono::Duration::nanoseconds(self.now.timestamp_subsec_nanos() as i64);
        if self.wall.is_some() || self.screen == Screen::Overview {
            at(minute);
            for t in self.attention_changes() {
                at(t);
            }
        }
        if let Some(wall) = &self.wall {
            if matches!(self.store_conn, Conn::Disconnected { .. }) {
                at(second);
            }
            if !wall.paused && self.rollouts.len() > 1 {
                at(wall.last_rotate
                    + chrono::Duration::from_std(wall.rotate_every).unwrap_or_default());
            }
            // The moment any rollout's data turns stale, its tile must say so.
            let limit = chrono::Duration::from_std(wall.stale_after).unwrap_or_default();
            for e in &self.rollouts {
                if let Some(sample) = &e.health.last_good {
                    let turns_stale = sample.taken_at + limit + chrono::Duration::milliseconds(1);
                    if turns_stale > self.now {
                        at(turns_stale);
                    }
                }
            }
        }
        next
    }

    /// The future moments at which a rollout's attention changes by time alone.
    fn attention_changes(&self) -> Vec<DateTime<Utc>> {
        let just_after = chrono::Duration::milliseconds(1);
        self.rollouts
            .iter()
            .flat_map(|e| {
                let s = self.signals(e);
                [
                    s.canary_silent_since
                        .map(|t| t + s.freshness_limit + just_after),
                    s.rolled_back_at
                        .map(|t| t + present::recent_rollback() + just_after),
                ]
            })
            .flatten()
            .filter(|t| *t > self.now)
            .collect()
    }

    /// The freeze in force now: the store's flag, else a config window.
    pub fn frozen(&self) -> Option<Frozen> {
        freeze::frozen_now(self.freeze.as_ref(), &self.freeze_windows, self.now)
    }

    /// The next freeze window, when it starts within a day (shown ahead of time).
    pub fn freeze_ahead(&self) -> Option<freeze::Occurrence> {
        freeze::next_window(&self.freeze_windows, self.now)
            .filter(|o| o.start - self.now <= chrono::Duration::hours(24))
    }

    /// The line every screen shows about the freeze: the freeze in force, or a window
    /// starting within a day.
    pub fn freeze_line(&self) -> Option<String> {
        match (self.frozen(), self.freeze_ahead()) {
            (Some(frozen), _) => Some(format!(" {} ", present::frozen_banner(&frozen))),
            (None, Some(next)) => Some(format!(" {} ", present::freeze_ahead(&next, self.now))),
            (None, None) => None,
        }
    }

    /// What rollout `e`'s wall tile says first. Stale data (the rollout's newest good
    /// sample, or the store while it is down, older than `stale_after`) never shows as
    /// its old verdict: the tile says STALE and what the data said.
    pub fn wall_status(&self, e: &Entry, stale_after: std::time::Duration) -> WallStatus {
        let limit = chrono::Duration::from_std(stale_after).unwrap_or(chrono::Duration::MAX);
        let Ok(r) = &e.rollout else {
            return WallStatus::fresh(WallWord::Error);
        };
        let store_age = match &self.store_conn {
            Conn::Connected => chrono::Duration::zero(),
            Conn::Disconnected { since, .. } => self.now - *since,
        };
        let h = &e.health;
        let health_age = h
            .last_good
            .as_ref()
            .filter(|_| self.metrics_desc.is_some())
            .map(|s| self.now - s.taken_at);
        // The overview's rule: silent past the freshness limit. Before that the gates
        // already call a silent canary inconclusive, never PASS.
        let no_traffic = self.attention(e) == Attention::NoTraffic;
        let judged = |verdict: Option<Verdict>| match verdict {
            // A failing canary still serves its share while paused: FAIL comes first.
            Some(Verdict::Fail) => WallWord::Fail,
            _ if r.status == Status::Paused => WallWord::Paused,
            _ if no_traffic => WallWord::NoTraffic,
            Some(_) if h.last_good.is_none() => WallWord::NoData,
            Some(Verdict::Inconclusive) => WallWord::Inconclusive,
            Some(Verdict::Pass) => WallWord::Pass,
            None => WallWord::NoData,
        };
        let stale = |was: WallWord, age: chrono::Duration| {
            if age > limit {
                WallStatus::stale(was, age)
            } else {
                WallStatus::fresh(was)
            }
        };
        match r.status {
            Status::RolledBack => stale(WallWord::RolledBack, store_age),
            Status::Complete => stale(WallWord::Complete, store_age),
            Status::Planned => stale(WallWord::Planned, store_age),
            Status::Canary | Status::Progressive | Status::Paused => {
                let age = health_age.unwrap_or_default().max(store_age);
                if age > limit {
                    WallStatus::stale(judged(h.last_good_verdict), age)
                } else {
                    WallStatus::fresh(judged(h.verdict()))
                }
            }
        }
    }

    /// Age of the newest data on screen: the metrics' newest sample when a source is
    /// configured, and the time since the store stream was lost while it is down. A
    /// connected store is live even when nothing changes, so it adds no age.
    pub fn data_age(&self) -> Option<chrono::Duration> {
        let store_age = match &self.store_conn {
            Conn::Connected => chrono::Duration::zero(),
            Conn::Disconnected { since, .. } => self.now - *since,
        };
        if self.metrics_desc.is_none() {
            return self.store_seen_at.map(|_| store_age);
        }
        // A sample the source failed to fill says nothing fresh: only good samples count.
        let newest_sample = self
            .rollouts
            .iter()
            .filter_map(|e| e.health.last_good.as_ref().map(|s| s.taken_at))
            .max()?;
        Some((self.now - newest_sample).max(store_age))
    }
}

/// The faults the fault dialog offers, by key (`0` clears them).
pub const FAULT_CHOICES: [(char, Regression); 3] = [
    ('1', Regression::ErrorSpike { error_rate: 0.2 }),
    ('2', Regression::LatencyShift { ms: 400.0 }),
    ('3', Regression::TrafficDrop),
];

/// What is wrong with the text in an input dialog, checked as the operator types.
pub fn input_problem(state: &AppState, dialog: &Dialog) -> Option<String> {
    match dialog {
        Dialog::SetPercent { id, input } => {
            let text = input.value();
            if text.trim().is_empty() {
                return Some("type a percentage, e.g. 5, 25 or 0.5".into());
            }
            let p = match text.parse::<Percent>() {
                Ok(p) => p,
                Err(e) => return Some(e.to_string()),
            };
            let r = state.entry(id)?.rollout.as_ref().ok()?;
            if p > r.percentage
                && let Some(frozen) = state.frozen()
            {
                return Some(format!(
                    "{}: only a lower percentage can be set",
                    frozen.describe()
                ));
            }
            actions::check_set_percent(r, p)
                .err()
                .map(|e| e.to_string())
        }
        Dialog::AddUser { id, list, input } => {
            let keys = split_user_keys(input.value());
            if keys.is_empty() {
                return Some(
                    "type email addresses or user ids (comma, space or newline between)".into(),
                );
            }
            let r = state.entry(id)?.rollout.as_ref().ok();
            let mut seen: Vec<String> = Vec::new();
            for text in keys {
                let key = match actions::validate_user_key(text) {
                    Ok(k) => k,
                    Err(e) => return Some(e.to_string()),
                };
                if seen.iter().any(|u| actions::same_user(u, &key)) {
                    return Some(format!("{key} is typed twice"));
                }
                if let Some(r) = r {
                    let (same, other) = match list {
                        UserList::Canary => (&r.canary_users, &r.excluded_users),
                        UserList::Excluded => (&r.excluded_users, &r.canary_users),
                    };
                    if same.iter().any(|u| actions::same_user(u, &key)) {
                        return Some(format!("{key} is already in this list"));
                    }
                    if other.iter().any(|u| actions::same_user(u, &key)) {
                        return Some(format!("{key} is in the other list; remove it there first"));
                    }
                }
                seen.push(key);
            }
            None
        }
        Dialog::Pause { input, .. } => {
            validate_line("the pause reason", input.value(), MAX_REASON_CHARS).err()
        }
        Dialog::Which { input, .. } => crate::domain::assign::normalize_key(input.value())
            .err()
            .map(|e| e.to_string()),
        Dialog::Rollback { input, .. } => {
            match validate_line("the rollback reason", input.value(), MAX_REASON_CHARS) {
                Ok("") => Some("a reason is required".to_string()),
                Ok(_) => None,
                Err(e) => Some(e),
            }
        }
        Dialog::TypedConfirm { id, input, .. } => {
            (input.value().trim() != id).then(|| format!("type {id} to confirm"))
        }
        Dialog::Override { input, .. } => {
            match validate_line("the override reason", input.value(), MAX_REASON_CHARS) {
                Ok("") => Some("type why this cannot wait, or Esc to stay".to_string()),
                Ok(_) => None,
                Err(e) => Some(e),
            }
        }
        Dialog::Freeze { input } => {
            match validate_line("the freeze reason", input.value(), MAX_REASON_CHARS) {
                Ok("") => Some("type why (every screen shows it), or Esc to cancel".to_string()),
                Ok(_) => None,
                Err(e) => Some(e),
            }
        }
        Dialog::Confirm { .. }
        | Dialog::Conflict { .. }
        | Dialog::AutoConfirm { .. }
        | Dialog::Quit { .. }
        | Dialog::Info { .. }
        | Dialog::Unfreeze { .. }
        | Dialog::SyncTraffic { .. }
        | Dialog::Fault { .. } => None,
    }
}

/// The user keys typed or pasted into the add-user dialog: commas, spaces and newlines
/// separate them.
pub fn split_user_keys(text: &str) -> Vec<&str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|k| !k.is_empty())
        .collect()
}

/// Why the write a conflict dialog would redo can no longer apply to the rollout as it is
/// now (rolled back, complete, or the move refused); None when `r` may redo it.
pub fn redo_blocker(state: &AppState, id: &str, action: &Action) -> Option<String> {
    let Some(entry) = state.entry(id) else {
        return Some(format!("{id} no longer exists"));
    };
    let r = match &entry.rollout {
        Ok(r) => r,
        Err(e) => return Some(format!("the document no longer parses: {e}")),
    };
    match r.status {
        Status::RolledBack => return Some(format!("{id} is now rolled back")),
        Status::Complete => return Some(format!("{id} is now complete")),
        _ => {}
    }
    actions::apply(r, &entry.stored.fields, action, state.action_context())
        .err()
        .map(|e| e.to_string())
}
