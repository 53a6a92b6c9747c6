//! What the engine reports (store changes, samples and their reports, write outcomes,
//! the driver's steps, failed tasks), applied to the state.

use crate::app::state::{
    AppState, AutoView, Conn, Dialog, Entry, HISTORY_LEN, HistoryPoint, Screen, ToastLevel,
};
use crate::domain::actions::Action;
use crate::domain::health::{GateReport, HealthSample};
use crate::domain::units::format_elapsed;
use crate::engine::driver::{LeaseState, Step};
use crate::engine::{Command as EngineCommand, DriverUpdate, EngineEvent, WriteOutcome};
use crate::present;
use crate::store::{StoreChange, StoredRollout};

use super::dialogs::{open_dialog, refresh_dialog};
use super::{Effect, clamp_selection, toast};

pub(super) fn on_engine(state: &mut AppState, event: EngineEvent) -> Vec<Effect> {
    match event {
        EngineEvent::Store(change) => {
            // A resync repeats documents that did not change: nothing to draw for those.
            let same = matches!(&change, StoreChange::Upserted(stored)
                if state.entry(&stored.id).is_some_and(|e| e.stored == *stored));
            state.dirty |= !same;
            on_store(state, change)
        }
        EngineEvent::History { id, samples } => {
            state.dirty |= state.shows(&id);
            on_history(state, &id, samples);
            vec![]
        }
        EngineEvent::ReportWritten { id, result } => {
            let id = crate::present::escape(&id).into_owned();
            match result {
                // Written, but with metrics missing: said as loudly as a failure.
                Ok(written) => {
                    let path =
                        crate::present::escape(&written.path.display().to_string()).into_owned();
                    match written.warnings.first() {
                        None => toast(
                            state,
                            ToastLevel::Info,
                            format!("report of {id} written to {path}"),
                        ),
                        Some(w) => toast(
                            state,
                            ToastLevel::Error,
                            format!(
                                "report of {id} written to {path}, with gaps: {}",
                                crate::present::escape(w)
                            ),
                        ),
                    }
                }
                Err(why) => toast(
                    state,
                    ToastLevel::Error,
                    format!(
                        "report of {id} not written: {}",
                        crate::present::escape(&why)
                    ),
                ),
            }
            vec![]
        }
        EngineEvent::Health { id, sample, report } => {
            state.dirty |= state.shows(&id);
            on_health(state, &id, sample, report);
            vec![]
        }
        EngineEvent::Events { id, result } => {
            match result {
                Ok(events) => {
                    if let Some(e) = state.entry_mut(&id)
                        && e.events != events
                    {
                        e.events = events;
                        state.dirty = true;
                    }
                }
                Err(why) => toast(
                    state,
                    ToastLevel::Error,
                    format!("{id}: cannot load events: {why}"),
                ),
            }
            vec![]
        }
        EngineEvent::Freeze(flag) => {
            if state.freeze != flag {
                state.freeze = flag;
                state.dirty = true;
            }
            vec![]
        }
        EngineEvent::NotifyProblem(problem) => {
            if state.notify_problem != problem {
                state.notify_problem = problem;
                state.dirty = true;
            }
            vec![]
        }
        EngineEvent::Traffic(view) => super::traffic::on_view(state, view),
        EngineEvent::TrafficPlanned { id, split, result } => {
            super::traffic::on_planned(state, &id, &split, result)
        }
        EngineEvent::TrafficSynced { id, result } => super::traffic::on_synced(state, &id, result),
        EngineEvent::FreezeWritten(result) => {
            match result {
                Ok(flag) => {
                    let said = match &flag {
                        Some(_) => "frozen: nothing advances until someone unfreezes",
                        None => "unfrozen: rollouts may advance again",
                    };
                    state.freeze = flag;
                    toast(state, ToastLevel::Info, said.to_string());
                }
                Err(why) => toast(
                    state,
                    ToastLevel::Error,
                    format!("the freeze flag was not changed: {why}"),
                ),
            }
            state.dirty = true;
            vec![]
        }
        EngineEvent::Lease { id, lease } => {
            if let Some(e) = state.entry_mut(&id)
                && e.lease != lease
            {
                e.lease = lease;
                state.dirty = true;
            }
            vec![]
        }
        EngineEvent::Written {
            id,
            action,
            outcome,
        } => {
            state.dirty = true;
            on_performed(state, id, action, outcome)
        }
        EngineEvent::Driver { id, update } => {
            state.dirty = true;
            on_driver(state, id, update)
        }
        EngineEvent::AutoConfirmed { id, result } => {
            match result {
                Ok(summary) => toast(state, ToastLevel::Info, format!("{id}: {summary}")),
                Err(why) => toast(
                    state,
                    ToastLevel::Error,
                    format!("{id}: not advanced: {why}"),
                ),
            }
            vec![EngineCommand::LoadEvents(id).into()]
        }
        EngineEvent::AutoUnavailable { id, why } => {
            if let Some(e) = state.entry_mut(&id) {
                e.auto = None;
            }
            toast(
                state,
                ToastLevel::Error,
                format!("{id}: auto-progression unavailable: {why}"),
            );
            vec![]
        }
        EngineEvent::TaskFailed {
            task,
            error,
            restart_in,
        } => {
            let next = match restart_in {
                Some(wait) => format!("restarting in {}", format_elapsed(wait)),
                None => "not restarted".to_string(),
            };
            toast(
                state,
                ToastLevel::Error,
                format!("{task} failed ({error}); {next}"),
            );
            vec![]
        }
    }
}

fn on_store(state: &mut AppState, change: StoreChange) -> Vec<Effect> {
    match change {
        StoreChange::Upserted(stored) => {
            state.store_seen_at = Some(state.now);
            let id = stored.id.clone();
            upsert(state, stored);
            clamp_selection(state);
            refresh_dialog(state, &id);
            // The open rollout's audit log follows every change, whoever made it.
            if state.screen == Screen::Detail
                && state.selected_entry().is_some_and(|e| e.id() == id)
            {
                return vec![Effect::Engine(EngineCommand::LoadEvents(id))];
            }
        }
        StoreChange::Removed(id) => {
            let selected = state.selected_entry().map(|e| e.id().to_string());
            state.rollouts.retain(|e| e.id() != id);
            if selected.as_deref() == Some(id.as_str()) && state.screen == Screen::Detail {
                state.screen = Screen::Overview;
                toast(
                    state,
                    ToastLevel::Info,
                    format!("{id} was deleted by someone else"),
                );
            }
            clamp_selection(state);
        }
        StoreChange::Disconnected(why) => {
            if state.store_conn == Conn::Connected {
                state.store_conn = Conn::Disconnected {
                    since: state.now - silent_for(&why),
                    why,
                };
            }
        }
        StoreChange::Reconnected => {
            state.store_conn = Conn::Connected;
            state.store_seen_at = Some(state.now);
        }
    }
    vec![]
}

/// A store that noticed silence says how long it heard nothing ("no word from the
/// store for 20 s", the Firestore store): the data on screen is as old as the last
/// word, not as the notice.
fn silent_for(why: &str) -> chrono::Duration {
    why.split_once("no word from the store for ")
        .and_then(|(_, rest)| rest.split_once(" s"))
        .and_then(|(secs, _)| secs.parse().ok())
        .map_or_else(chrono::Duration::zero, chrono::Duration::seconds)
}

fn upsert(state: &mut AppState, stored: StoredRollout) {
    let rollout = stored.parse();
    match state.rollouts.binary_search_by(|e| e.id().cmp(&stored.id)) {
        Ok(i) => {
            let e = &mut state.rollouts[i];
            e.rollout = rollout;
            e.stored = stored;
        }
        Err(i) => {
            // Keep the cursor on the rollout it was on when another one appears above it.
            let keep = state.selected_entry().map(|e| e.id().to_string());
            let auto = state
                .auto_on_start
                .contains(&stored.id)
                .then(AutoView::default);
            state.rollouts.insert(
                i,
                Entry {
                    stored,
                    rollout,
                    health: Default::default(),
                    events: vec![],
                    lease: None,
                    auto,
                    traffic: None,
                },
            );
            if let Some(id) = keep
                && let Some(pos) = state
                    .visible()
                    .iter()
                    .position(|&j| state.rollouts[j].id() == id)
            {
                state.selected = pos;
            }
        }
    }
}

/// A sample and the engine's report of it: the screen shows the judgment the driver acts
/// on, never a second one of its own.
fn on_health(state: &mut AppState, id: &str, sample: HealthSample, report: GateReport) {
    let Some(entry) = state.entry_mut(id) else {
        return;
    };
    let point = HistoryPoint::of(&sample);
    let h = &mut entry.health;
    if h.history.len() == HISTORY_LEN {
        h.history.pop_front();
    }
    h.history.push_back(point);
    if sample.stable.is_some() && sample.canary.is_some() {
        h.last_good = Some(sample.clone());
        h.last_good_verdict = Some(report.verdict);
    }
    h.latest = Some(sample);
    h.report = Some(report);
}

/// Past samples fetched when the screen opened: they go before what was sampled since,
/// never replacing a live point and never judged by the gates.
fn on_history(state: &mut AppState, id: &str, samples: Vec<HealthSample>) {
    let Some(entry) = state.entry_mut(id) else {
        return;
    };
    let history = &mut entry.health.history;
    let first_live = history.front().and_then(|p| p.at);
    let older: Vec<HistoryPoint> = samples
        .iter()
        .filter(|s| first_live.is_none_or(|t| s.taken_at < t))
        .map(HistoryPoint::of)
        .collect();
    for point in older.into_iter().rev() {
        if history.len() == HISTORY_LEN {
            break;
        }
        history.push_front(point);
    }
}

fn on_driver(state: &mut AppState, id: String, update: DriverUpdate) -> Vec<Effect> {
    let now = state.now;
    let Some(entry) = state.entry_mut(&id) else {
        return vec![];
    };
    let Some(auto) = entry.auto.as_mut() else {
        return vec![];
    };
    auto.lease = Some(update.lease.clone());
    auto.decision = Some(update.decision.clone());
    match &update.lease {
        LeaseState::Held(l) | LeaseState::HeldByOther(l) => entry.lease = Some(l.clone()),
        LeaseState::Unavailable(_) => {}
    }
    let mut effects = vec![];
    if let Some(result) = &update.acted {
        if let Some(auto) = entry.auto.as_mut() {
            auto.acted = Some(result.clone());
        }
        effects.push(Effect::Engine(EngineCommand::LoadEvents(id.clone())));
        let (level, text) = match present::auto_acted(&id, result) {
            Ok(text) => (ToastLevel::Info, text),
            Err(text) => (ToastLevel::Error, text),
        };
        toast(state, level, text);
    }
    // A question waits for the operator; it never replaces a dialog they are using.
    if state.dialog.is_none() {
        match update.step {
            Step::AskConfirmation(next) => {
                let asked = (id.clone(), next.index);
                if state.notify_terminal != crate::notify::TerminalNotify::Off
                    && state.alerted.as_ref() != Some(&asked)
                {
                    effects.push(Effect::Alert(crate::notify::terminal::confirmation_awaits(
                        state.notify_terminal,
                        &id,
                        &next,
                    )));
                    state.alerted = Some(asked);
                }
                open_dialog(
                    state,
                    Dialog::AutoConfirm {
                        id,
                        next,
                        evidence: update.evidence,
                        since: now,
                    },
                );
            }
            Step::ProposeRollback(why) => {
                let mut body = vec![why.clone()];
                body.extend(update.evidence);
                open_dialog(
                    state,
                    Dialog::Confirm {
                        id: id.clone(),
                        title: format!("Auto-progression proposes: ROLL BACK {id}"),
                        body,
                        action: Action::Rollback {
                            reason: format!("proposed by auto-progression, confirmed: {why}"),
                        },
                    },
                );
            }
            _ => {}
        }
    }
    effects
}

fn on_performed(
    state: &mut AppState,
    id: String,
    action: Action,
    outcome: WriteOutcome,
) -> Vec<Effect> {
    state.pending_writes = state.pending_writes.saturating_sub(1);
    match outcome {
        WriteOutcome::Done {
            summary, stored, ..
        } => {
            upsert(state, stored);
            clamp_selection(state);
            toast(state, ToastLevel::Info, format!("{id}: {summary}"));
            vec![Effect::Engine(EngineCommand::LoadEvents(id))]
        }
        WriteOutcome::Conflict {
            changed,
            current,
            by,
        } => {
            upsert(state, current);
            open_dialog(
                state,
                Dialog::Conflict {
                    id,
                    action,
                    changed,
                    by: by.map(|b| *b),
                },
            );
            vec![]
        }
        WriteOutcome::Failed(why) => {
            let what = present::action_label(&action);
            toast(
                state,
                ToastLevel::Error,
                format!("{id}: {what} FAILED: {why}"),
            );
            vec![]
        }
    }
}
