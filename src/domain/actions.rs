//! Operator (and driver) actions as pure transitions: validate against the
//! rollout as read, and produce the field-masked patch plus its audit event.
//! Nothing here writes; the caller applies the patch with compare-and-set.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::event::{Event, EventKind};
use super::patch::Patch;
use super::rollout::{Fields, Hashing, Plan, Rollout, Status, field, stage_phrase, time_to_json};
use super::text::{
    MAX_LABEL_CHARS, MAX_REASON_CHARS, describe_char, is_hidden_format, validate_line,
};
use super::units::Percent;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserList {
    Canary,
    Excluded,
}

impl UserList {
    pub fn field(self) -> &'static str {
        match self {
            UserList::Canary => field::CANARY_USERS,
            UserList::Excluded => field::EXCLUDED_USERS,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            UserList::Canary => "canary users",
            UserList::Excluded => "excluded users",
        }
    }

    fn of(self, r: &Rollout) -> &[String] {
        match self {
            UserList::Canary => &r.canary_users,
            UserList::Excluded => &r.excluded_users,
        }
    }

    fn other(self) -> UserList {
        match self {
            UserList::Canary => UserList::Excluded,
            UserList::Excluded => UserList::Canary,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    SetPercent(Percent),
    AddUsers {
        list: UserList,
        keys: Vec<String>,
    },
    RemoveUsers {
        list: UserList,
        keys: Vec<String>,
    },
    /// Into the next stage; from the last stage, completes the rollout.
    Advance,
    Pause {
        reason: Option<String>,
    },
    Resume,
    /// A halt that limits exposure: back to the plan's canary-users stage at 0 % and paused.
    Retreat {
        reason: String,
    },
    Rollback {
        reason: String,
    },
    /// Straight to 100 % and complete, skipping the remaining stages.
    Promote,
    /// A new canary revision is a new build: the plan restarts at its first stage.
    SetRevisions {
        stable: Option<String>,
        canary: Option<String>,
    },
    /// A widening move made over failing or unknown health or unserved bake time (see
    /// `guard::widening_risks`): what it overrode and the operator's reason go into the
    /// audit event, with the gate report the operator saw.
    Overridden {
        action: Box<Action>,
        risks: Vec<String>,
        reason: String,
        gate_report: Option<Value>,
    },
}

impl Action {
    /// The move itself, without an override around it.
    pub fn base(&self) -> &Action {
        match self {
            Action::Overridden { action, .. } => action.base(),
            other => other,
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Action::Overridden { action, .. } => action.kind(),
            Action::SetPercent(_) => EventKind::SetPercent,
            Action::AddUsers { .. } => EventKind::AddUsers,
            Action::RemoveUsers { .. } => EventKind::RemoveUsers,
            Action::Advance => EventKind::Advance,
            // A retreat is a halt: the rollout ends up paused (at 0 %).
            Action::Pause { .. } | Action::Retreat { .. } => EventKind::Pause,
            Action::Resume => EventKind::Resume,
            Action::Rollback { .. } => EventKind::Rollback,
            Action::Promote => EventKind::Promote,
            Action::SetRevisions { .. } => EventKind::SetRevisions,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Invalid(String),
    #[error("rollout '{id}' is {status}: {hint}")]
    NotAllowed {
        id: String,
        status: Status,
        hint: String,
    },
    #[error("nothing to change: {0}")]
    NoChange(String),
}

/// What an action does to a document: the patch to write and the event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub patch: Patch,
    pub event: Event,
    /// One line for the operator: "advanced to stage 2/5 (25%)".
    pub summary: String,
}

impl Transition {
    /// Attaches the evidence behind an automatic decision.
    pub fn with_gate_report(mut self, report: Value) -> Self {
        self.event.gate_report = Some(report);
        self
    }
}

/// Everything an action needs besides the document.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub actor: &'a str,
    pub now: DateTime<Utc>,
    /// Used when a document has no plan of its own (documents written by older tools).
    pub default_plan: &'a Plan,
    /// Freeze windows from the config: while one is in force nothing widens a rollout
    /// (`ops` checks them and the store's freeze flag before every write).
    pub freeze_windows: &'a [crate::domain::freeze::FreezeWindow],
}

/// Applies an action to the rollout as read (`fields` is the same document, raw,
/// for the event's before-values).
pub fn apply(
    rollout: &Rollout,
    fields: &Fields,
    action: &Action,
    ctx: Context<'_>,
) -> Result<Transition, ActionError> {
    validate_actor(ctx.actor)?;
    if let Action::Overridden {
        action,
        risks,
        reason,
        gate_report,
    } = action
    {
        return overridden(rollout, fields, action, risks, reason, gate_report, ctx);
    }
    let mut patch = Patch::default();
    let mut reason = None;
    let summary = match action {
        Action::SetPercent(p) => set_percent(rollout, *p, &mut patch, ctx)?,
        Action::AddUsers { list, keys } => add_users(rollout, *list, keys, &mut patch)?,
        Action::RemoveUsers { list, keys } => remove_users(rollout, *list, keys, &mut patch)?,
        Action::Advance => advance(rollout, &mut patch, ctx)?,
        Action::Pause { reason: why } => {
            require_running(rollout, "only a running rollout can be paused")?;
            patch.set(field::STATUS, Value::from(Status::Paused.as_str()));
            let why = why
                .as_deref()
                .map(|w| validate_line("the pause reason", w, MAX_REASON_CHARS))
                .transpose()
                .map_err(ActionError::Invalid)?
                .filter(|s| !s.is_empty());
            if let Some(why) = why {
                patch.set(field::PAUSE_REASON, Value::from(why));
                reason = Some(why.to_string());
            }
            format!("paused at {}", rollout.percentage)
        }
        Action::Retreat { reason: why } => {
            require_running(rollout, "only a running rollout can retreat")?;
            let why = validate_line("the halt reason", why, MAX_REASON_CHARS)
                .map_err(ActionError::Invalid)?;
            patch.set(field::STATUS, Value::from(Status::Paused.as_str()));
            if !why.is_empty() {
                patch.set(field::PAUSE_REASON, Value::from(why));
                reason = Some(why.to_string());
            }
            retreat(rollout, &mut patch, ctx)
        }
        Action::Resume => {
            if rollout.status != Status::Paused {
                return Err(not_allowed(rollout, "only a paused rollout can be resumed"));
            }
            let status = Status::running_at(rollout.percentage);
            patch.set(field::STATUS, Value::from(status.as_str()));
            patch.delete(field::PAUSE_REASON);
            format!("resumed at {} ({status})", rollout.percentage)
        }
        Action::Rollback { reason: why } => {
            if rollout.status == Status::RolledBack {
                return Err(not_allowed(rollout, "it is already rolled back"));
            }
            reason = Some(rollback_changes(why, &mut patch, ctx)?);
            format!(
                "rolled back from {}: everyone is on stable",
                rollout.percentage
            )
        }
        Action::Promote => {
            if rollout.status.is_terminal() {
                return Err(not_allowed(
                    rollout,
                    "only an unfinished rollout can be promoted",
                ));
            }
            let plan = rollout.plan.as_ref().unwrap_or(ctx.default_plan);
            if rollout.plan.is_none() {
                patch.set(field::PLAN, plan.to_json());
            }
            patch.set(field::ROLLOUT_PERCENTAGE, Percent::FULL.to_json());
            patch.set(field::CURRENT_STAGE, Value::from(plan.last_index()));
            patch.set(field::STAGE_ENTERED_AT, time_to_json(ctx.now));
            patch.set(field::STATUS, Value::from(Status::Complete.as_str()));
            patch.set(field::COMPLETED_AT, time_to_json(ctx.now));
            patch.set(field::APPROVED_BY, Value::from(ctx.actor));
            patch.delete(field::PAUSE_REASON);
            format!("promoted from {} to 100% and completed", rollout.percentage)
        }
        Action::SetRevisions { stable, canary } => {
            set_revisions(rollout, stable, canary, &mut patch, ctx)?
        }
        Action::Overridden { .. } => unreachable!("handled above"),
    };
    patch.set(field::LAST_UPDATED_AT, time_to_json(ctx.now));
    let event = event_for(&rollout.id, fields, &patch, action.kind(), reason, ctx);
    Ok(Transition {
        patch,
        event,
        summary,
    })
}

/// A rollback of a document that does not parse. Rollback must stay reachable whatever
/// another tool wrote into `plan` or `gates`: it writes only the fields every rollback
/// writes and reads nothing but the raw status and percentage.
pub fn rollback_unparsed(
    id: &str,
    fields: &Fields,
    why: &str,
    ctx: Context<'_>,
) -> Result<Transition, ActionError> {
    validate_actor(ctx.actor)?;
    let raw_status = fields.get(field::STATUS).and_then(Value::as_str);
    if raw_status.and_then(Status::parse) == Some(Status::RolledBack) {
        return Err(ActionError::NotAllowed {
            id: id.to_string(),
            status: Status::RolledBack,
            hint: "it is already rolled back".into(),
        });
    }
    let mut patch = Patch::default();
    let reason = rollback_changes(why, &mut patch, ctx)?;
    patch.set(field::LAST_UPDATED_AT, time_to_json(ctx.now));
    let from = match fields.get(field::ROLLOUT_PERCENTAGE) {
        Some(Value::Number(n)) => format!("{n}%"),
        Some(other) => format!("an unreadable percentage ({other})"),
        None => "no recorded percentage".to_string(),
    };
    let event = event_for(id, fields, &patch, EventKind::Rollback, Some(reason), ctx);
    Ok(Transition {
        patch,
        event,
        summary: format!("rolled back from {from}: everyone is on stable"),
    })
}

/// What every rollback writes; returns the trimmed reason.
fn overridden(
    rollout: &Rollout,
    fields: &Fields,
    action: &Action,
    risks: &[String],
    reason: &str,
    gate_report: &Option<Value>,
    ctx: Context<'_>,
) -> Result<Transition, ActionError> {
    let reason = validate_line("the override reason", reason, MAX_REASON_CHARS)
        .map_err(ActionError::Invalid)?;
    if reason.is_empty() {
        return Err(ActionError::Invalid(
            "an override needs a reason: say why this cannot wait for healthy gates".into(),
        ));
    }
    let mut transition = apply(rollout, fields, action, ctx)?;
    transition.event.reason = Some(super::guard::override_reason(risks, reason));
    transition.event.gate_report = gate_report.clone();
    transition.summary = format!("{} (override recorded)", transition.summary);
    Ok(transition)
}

fn rollback_changes(why: &str, patch: &mut Patch, ctx: Context<'_>) -> Result<String, ActionError> {
    let why = validate_line("the rollback reason", why, MAX_REASON_CHARS)
        .map_err(ActionError::Invalid)?;
    if why.is_empty() {
        return Err(ActionError::Invalid("a rollback needs a reason".into()));
    }
    patch.set(field::STATUS, Value::from(Status::RolledBack.as_str()));
    patch.set(field::ROLLOUT_PERCENTAGE, Percent::ZERO.to_json());
    patch.set(field::ROLLBACK_REASON, Value::from(why));
    patch.set(field::ROLLED_BACK_AT, time_to_json(ctx.now));
    patch.delete(field::PAUSE_REASON);
    Ok(why.to_string())
}

fn not_allowed(rollout: &Rollout, hint: &str) -> ActionError {
    ActionError::NotAllowed {
        id: rollout.id.clone(),
        status: rollout.status,
        hint: hint.to_string(),
    }
}

fn require_running(rollout: &Rollout, hint: &str) -> Result<(), ActionError> {
    match rollout.status {
        Status::Canary | Status::Progressive => Ok(()),
        _ => Err(not_allowed(rollout, hint)),
    }
}

fn event_for(
    rollout_id: &str,
    fields: &Fields,
    patch: &Patch,
    kind: EventKind,
    reason: Option<String>,
    ctx: Context<'_>,
) -> Event {
    let mut before = Map::new();
    let mut after = Map::new();
    for (name, value) in &patch.changes {
        // lastUpdatedAt changes on every write and unchanged values say nothing: both are noise.
        let (old, new) = (
            fields.get(name).cloned().unwrap_or(Value::Null),
            value.clone().unwrap_or(Value::Null),
        );
        if name == field::LAST_UPDATED_AT || old == new {
            continue;
        }
        // A user list can hold 100,000 keys: the event records what changed, not both lists.
        if (name == field::CANARY_USERS || name == field::EXCLUDED_USERS)
            && let Some((was, is)) = list_change(&old, &new)
        {
            before.insert(name.clone(), was);
            after.insert(name.clone(), is);
            continue;
        }
        before.insert(name.clone(), old);
        after.insert(name.clone(), new);
    }
    Event {
        rollout_id: rollout_id.to_string(),
        kind,
        actor: ctx.actor.to_string(),
        at: ctx.now,
        before: Value::Object(before),
        after: Value::Object(after),
        reason,
        gate_report: None,
    }
}

/// A user list's change as an event records it: `{"count": n}` before, and after the new
/// count with the keys `added` and `removed` (each left out when empty). None unless both
/// sides are lists (or absent) of strings.
fn list_change(old: &Value, new: &Value) -> Option<(Value, Value)> {
    let keys = |v: &Value| -> Option<Vec<String>> {
        match v {
            Value::Null => Some(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => None,
        }
    };
    let (old, new) = (keys(old)?, keys(new)?);
    let (added, removed) = super::event::list_diff(&old, &new);
    let mut after = Map::new();
    after.insert("count".into(), Value::from(new.len()));
    if !added.is_empty() {
        after.insert("added".into(), Value::from(added));
    }
    if !removed.is_empty() {
        after.insert("removed".into(), Value::from(removed));
    }
    let mut before = Map::new();
    before.insert("count".into(), Value::from(old.len()));
    Some((Value::Object(before), Value::Object(after)))
}

/// Whether the rollout's percentage may be set at all (whatever the value).
pub fn check_percent_settable(rollout: &Rollout) -> Result<(), ActionError> {
    match rollout.status {
        Status::Canary | Status::Progressive | Status::Paused => Ok(()),
        Status::Planned => Err(not_allowed(
            rollout,
            "it has not started; `advance` starts it",
        )),
        _ => Err(not_allowed(
            rollout,
            "a finished rollout keeps its percentage; `set-revisions` starts a new one",
        )),
    }
}

/// Whether `p` may be set on the rollout: the one check behind `set-percent` and the
/// cockpit's percentage dialog (which runs it as the operator types).
pub fn check_set_percent(rollout: &Rollout, p: Percent) -> Result<(), ActionError> {
    check_percent_settable(rollout)?;
    if !rollout.hashing.allows(p) {
        return Err(ActionError::Invalid(format!(
            "{p} is not a whole percentage, and rollout '{}' uses {} hashing, which buckets by whole percents",
            rollout.id,
            Hashing::UnleashV1
        )));
    }
    if p == rollout.percentage {
        return Err(ActionError::NoChange(format!(
            "rollout '{}' is already at {p}",
            rollout.id
        )));
    }
    Ok(())
}

fn set_percent(
    rollout: &Rollout,
    p: Percent,
    patch: &mut Patch,
    ctx: Context<'_>,
) -> Result<String, ActionError> {
    check_set_percent(rollout, p)?;
    patch.set(field::ROLLOUT_PERCENTAGE, p.to_json());
    // Only a real change is written, so a status stored under an alias (`in_progress`)
    // is left as the tool that wrote it spelled it.
    let status = Status::running_at(p);
    if rollout.status != Status::Paused && rollout.status != status {
        patch.set(field::STATUS, Value::from(status.as_str()));
    }
    let plan = rollout.plan.as_ref().unwrap_or(ctx.default_plan);
    // The stage follows the percentage, so the next `advance` never goes down or skips one.
    let stage = plan.stage_for_percent(p).unwrap_or(0);
    if rollout.plan.is_none() {
        patch.set(field::PLAN, plan.to_json());
    }
    if rollout.current_stage != Some(stage) {
        patch.set(field::CURRENT_STAGE, Value::from(stage));
        patch.set(field::STAGE_ENTERED_AT, time_to_json(ctx.now));
    }
    Ok(format!("percentage {} -> {p}", rollout.percentage))
}

/// Moves a halted rollout back to the plan's canary-users stage (the first at 0 %, else the
/// first stage) at 0 %: only the canary users keep the new version.
fn retreat(rollout: &Rollout, patch: &mut Patch, ctx: Context<'_>) -> String {
    if rollout.percentage == Percent::ZERO {
        return "paused at 0% (only the canary users have the new version)".into();
    }
    let plan = rollout.plan.as_ref().unwrap_or(ctx.default_plan);
    if rollout.plan.is_none() {
        patch.set(field::PLAN, plan.to_json());
    }
    let index = plan
        .stages
        .iter()
        .position(|s| s.percent == Percent::ZERO)
        .unwrap_or(0);
    let stage = &plan.stages[index];
    patch.set(field::ROLLOUT_PERCENTAGE, Percent::ZERO.to_json());
    patch.set(field::CURRENT_STAGE, Value::from(index));
    patch.set(field::STAGE_ENTERED_AT, time_to_json(ctx.now));
    let to = if stage.percent == Percent::ZERO {
        stage_phrase(index, Some(plan.stages.len()), &stage.name, stage.percent)
    } else {
        "0% (before the first stage)".to_string()
    };
    format!(
        "retreated from {} to {to} and paused: only the canary users keep the new version",
        rollout.percentage
    )
}

fn advance(rollout: &Rollout, patch: &mut Patch, ctx: Context<'_>) -> Result<String, ActionError> {
    match rollout.status {
        Status::Planned | Status::Canary | Status::Progressive => {}
        Status::Paused => return Err(not_allowed(rollout, "resume it before advancing")),
        _ => return Err(not_allowed(rollout, "a finished rollout does not advance")),
    }
    let plan = rollout.plan.as_ref().unwrap_or(ctx.default_plan);
    if rollout.plan.is_none() {
        patch.set(field::PLAN, plan.to_json());
    }
    let next = rollout.next_stage_index(plan);
    let Some(stage) = plan.stages.get(next) else {
        patch.set(field::STATUS, Value::from(Status::Complete.as_str()));
        patch.set(field::COMPLETED_AT, time_to_json(ctx.now));
        patch.set(field::APPROVED_BY, Value::from(ctx.actor));
        return Ok(format!("completed at {}", rollout.percentage));
    };
    if !rollout.hashing.allows(stage.percent) {
        return Err(ActionError::Invalid(format!(
            "stage '{}' is at {}, which unleash-v1 hashing cannot express; edit the plan",
            stage.name, stage.percent
        )));
    }
    if rollout.status == Status::Planned && rollout.started_at.is_none() {
        patch.set(field::STARTED_AT, time_to_json(ctx.now));
    }
    patch.set(field::ROLLOUT_PERCENTAGE, stage.percent.to_json());
    patch.set(field::CURRENT_STAGE, Value::from(next));
    patch.set(field::STAGE_ENTERED_AT, time_to_json(ctx.now));
    patch.set(
        field::STATUS,
        Value::from(Status::running_at(stage.percent).as_str()),
    );
    Ok(format!(
        "advanced to {}",
        stage_phrase(next, Some(plan.stages.len()), &stage.name, stage.percent)
    ))
}

fn set_revisions(
    rollout: &Rollout,
    stable: &Option<String>,
    canary: &Option<String>,
    patch: &mut Patch,
    ctx: Context<'_>,
) -> Result<String, ActionError> {
    if stable.is_none() && canary.is_none() {
        return Err(ActionError::Invalid(
            "give --stable REVISION, --canary REVISION or both".into(),
        ));
    }
    let mut said = Vec::new();
    for (name, value, old) in [
        (field::STABLE_REVISION, stable, &rollout.stable_revision),
        (field::CANARY_REVISION, canary, &rollout.canary_revision),
    ] {
        let Some(value) = value else { continue };
        let value = validate_revision(value)?;
        if old.as_deref() == Some(value) {
            continue;
        }
        patch.set(name, Value::from(value));
        said.push(format!(
            "{name} {} -> {value}",
            old.as_deref().unwrap_or("(none)")
        ));
    }
    if said.is_empty() {
        return Err(ActionError::NoChange(
            "the revisions are already those".into(),
        ));
    }
    let canary_changed = patch.field_names().any(|f| f == field::CANARY_REVISION);
    if canary_changed {
        let plan = rollout.plan.as_ref().unwrap_or(ctx.default_plan);
        if rollout.plan.is_none() {
            patch.set(field::PLAN, plan.to_json());
        }
        let first = &plan.stages[0];
        patch.set(field::ROLLOUT_PERCENTAGE, first.percent.to_json());
        patch.set(field::CURRENT_STAGE, Value::from(0));
        patch.set(field::STAGE_ENTERED_AT, time_to_json(ctx.now));
        patch.set(field::STARTED_AT, time_to_json(ctx.now));
        patch.set(
            field::STATUS,
            Value::from(Status::running_at(first.percent).as_str()),
        );
        for stale in [
            field::COMPLETED_AT,
            field::ROLLBACK_REASON,
            field::ROLLED_BACK_AT,
            field::PAUSE_REASON,
            field::APPROVED_BY,
        ] {
            patch.delete(stale);
        }
        said.push(format!(
            "plan restarted at {}",
            stage_phrase(0, None, &first.name, first.percent)
        ));
    }
    Ok(said.join("; "))
}

fn validate_revision(value: &str) -> Result<&str, ActionError> {
    let v = value.trim();
    if v.is_empty() || v.len() > 256 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ActionError::Invalid(format!(
            "'{value}' is not a revision name (non-empty, at most 256 characters, no spaces)"
        )));
    }
    Ok(v)
}

/// Is this the same user key as `other` (emails compare case-insensitively)?
pub fn same_user(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a.contains('@') || b.contains('@') {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// A canary or excluded user: an email address or an opaque id, trimmed.
pub fn validate_user_key(key: &str) -> Result<String, ActionError> {
    let k = key.trim();
    let refuse = |why: &str| {
        Err(ActionError::Invalid(format!(
            "'{key}' is not a valid user key: {why}"
        )))
    };
    if k.is_empty() {
        return refuse("it is empty");
    }
    if k.len() > 256 {
        return refuse("it is longer than 256 bytes");
    }
    if k.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("it contains spaces or control characters");
    }
    if let Some(c) = k.chars().find(|c| is_hidden_format(*c)) {
        return refuse(&format!(
            "it contains an invisible formatting character ({}) that would make it display as another user",
            describe_char(c)
        ));
    }
    if k.contains('@') {
        let mut parts = k.split('@');
        let (local, domain) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if parts.next().is_some() {
            return refuse("an email address has exactly one '@'");
        }
        if local.is_empty() {
            return refuse("the email address has nothing before '@'");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return refuse("the part after '@' is not a domain such as example.com");
        }
    }
    Ok(k.to_string())
}

/// What makes two user keys the same user (see `same_user`): an email address compares
/// case-insensitively, an opaque id exactly. One hash lookup instead of a scan per key, so
/// editing a 100,000-user list with thousands of keys stays linear.
fn user_identity(key: &str) -> std::borrow::Cow<'_, str> {
    let k = key.trim();
    if k.contains('@') {
        std::borrow::Cow::Owned(k.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(k)
    }
}

/// "a, b, c" for a few keys; the first five and a count for many.
fn keys_summary(keys: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = keys
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        text.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    text
}

fn add_users(
    rollout: &Rollout,
    list: UserList,
    keys: &[String],
    patch: &mut Patch,
) -> Result<String, ActionError> {
    use std::collections::HashSet;
    if keys.is_empty() {
        return Err(ActionError::Invalid("give at least one user key".into()));
    }
    let in_list: HashSet<_> = list.of(rollout).iter().map(|u| user_identity(u)).collect();
    let in_other: HashSet<_> = list
        .other()
        .of(rollout)
        .iter()
        .map(|u| user_identity(u))
        .collect();
    let mut given = HashSet::new();
    let mut added: Vec<String> = Vec::new();
    for key in keys {
        let k = validate_user_key(key)?;
        let id = user_identity(&k).into_owned();
        if in_list.contains(id.as_str()) {
            return Err(ActionError::Invalid(format!(
                "'{k}' is already in {} of '{}'",
                list.label(),
                rollout.id
            )));
        }
        if in_other.contains(id.as_str()) {
            return Err(ActionError::Invalid(format!(
                "'{k}' is in {} of '{}'; remove it there first",
                list.other().label(),
                rollout.id
            )));
        }
        if !given.insert(id) {
            return Err(ActionError::Invalid(format!("'{k}' is given twice")));
        }
        added.push(k);
    }
    let mut users: Vec<String> = list.of(rollout).to_vec();
    users.extend(added.iter().cloned());
    patch.set(list.field(), Value::from(users));
    Ok(format!(
        "added to {}: {}",
        list.label(),
        keys_summary(&added)
    ))
}

fn remove_users(
    rollout: &Rollout,
    list: UserList,
    keys: &[String],
    patch: &mut Patch,
) -> Result<String, ActionError> {
    use std::collections::HashMap;
    if keys.is_empty() {
        return Err(ActionError::Invalid("give at least one user key".into()));
    }
    // Each key given removes one matching entry, the first in the list.
    let mut wanted: HashMap<std::borrow::Cow<'_, str>, usize> = HashMap::new();
    for key in keys {
        *wanted.entry(user_identity(key)).or_default() += 1;
    }
    let mut users = Vec::with_capacity(list.of(rollout).len());
    let mut removed = Vec::new();
    for u in list.of(rollout) {
        match wanted.get_mut(user_identity(u).as_ref()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                removed.push(u.clone());
            }
            _ => users.push(u.clone()),
        }
    }
    if let Some(missing) = keys.iter().find(|k| {
        wanted
            .get(user_identity(k).as_ref())
            .is_some_and(|n| *n > 0)
    }) {
        return Err(ActionError::Invalid(format!(
            "'{}' is not in {} of '{}'",
            missing.trim(),
            list.label(),
            rollout.id
        )));
    }
    patch.set(list.field(), Value::from(users));
    Ok(format!(
        "removed from {}: {}",
        list.label(),
        keys_summary(&removed)
    ))
}

/// The name recorded as who acted: one line of plain text.
pub fn validate_actor(actor: &str) -> Result<(), ActionError> {
    match validate_line("the actor name", actor, MAX_LABEL_CHARS) {
        Ok("") => Err(ActionError::Invalid("the actor name is empty".into())),
        Ok(_) => Ok(()),
        Err(e) => Err(ActionError::Invalid(e)),
    }
}

/// Rollout ids become Firestore document ids and file-safe names.
pub fn validate_rollout_id(id: &str) -> Result<(), ActionError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && id != "."
        && id != ".."
        && !(id.starts_with("__") && id.ends_with("__"));
    if ok {
        Ok(())
    } else {
        Err(ActionError::Invalid(format!(
            "'{id}' is not a valid rollout id: use 1-128 letters, digits, '-', '_' or '.'"
        )))
    }
}

/// Everything needed to create a rollout document.
#[derive(Debug, Clone)]
pub struct NewRollout {
    pub id: String,
    pub version: String,
    pub stable_version: Option<String>,
    pub plan: Plan,
    pub hashing: Hashing,
    pub stable_revision: Option<String>,
    pub canary_revision: Option<String>,
    pub canary_users: Vec<String>,
    /// What a sustained breach does to this rollout (`onBreach`); None: the policy's.
    pub on_breach: Option<crate::domain::progression::HaltPolicy>,
}

/// A new rollout starts in its plan's first stage (canary users only, for the canary plan).
pub fn create(
    new: &NewRollout,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(Fields, Event), ActionError> {
    validate_rollout_id(&new.id)?;
    validate_actor(actor)?;
    let version =
        validate_line("--version", &new.version, MAX_LABEL_CHARS).map_err(ActionError::Invalid)?;
    if version.is_empty() {
        return Err(ActionError::Invalid("--version must not be empty".into()));
    }
    let stable_version = new
        .stable_version
        .as_deref()
        .map(|v| validate_line("--stable-version", v, MAX_LABEL_CHARS))
        .transpose()
        .map_err(ActionError::Invalid)?;
    new.plan.validate().map_err(ActionError::Invalid)?;
    if let Some(s) = new
        .plan
        .stages
        .iter()
        .find(|s| !new.hashing.allows(s.percent))
    {
        return Err(ActionError::Invalid(format!(
            "stage '{}' is at {}, which {} hashing cannot express (whole percents only)",
            s.name, s.percent, new.hashing
        )));
    }
    let mut users: Vec<String> = Vec::new();
    for u in &new.canary_users {
        let k = validate_user_key(u)?;
        if users.iter().any(|x| same_user(x, &k)) {
            return Err(ActionError::Invalid(format!("'{k}' is given twice")));
        }
        users.push(k);
    }
    let first = &new.plan.stages[0];
    let mut f = Fields::new();
    f.insert(field::VERSION.into(), Value::from(version));
    if let Some(v) = stable_version.filter(|v| !v.is_empty()) {
        f.insert(field::STABLE_VERSION.into(), Value::from(v));
    }
    f.insert(
        field::STATUS.into(),
        Value::from(Status::running_at(first.percent).as_str()),
    );
    f.insert(field::CANARY_USERS.into(), Value::from(users));
    f.insert(field::EXCLUDED_USERS.into(), Value::Array(vec![]));
    f.insert(field::ROLLOUT_PERCENTAGE.into(), first.percent.to_json());
    f.insert(field::ROLLOUT_STRATEGY.into(), Value::from("manual"));
    for (name, rev) in [
        (field::STABLE_REVISION, &new.stable_revision),
        (field::CANARY_REVISION, &new.canary_revision),
    ] {
        if let Some(r) = rev {
            f.insert(name.into(), Value::from(validate_revision(r)?));
        }
    }
    f.insert(field::STARTED_AT.into(), time_to_json(now));
    f.insert(field::LAST_UPDATED_AT.into(), time_to_json(now));
    f.insert(field::PLAN.into(), new.plan.to_json());
    f.insert(field::CURRENT_STAGE.into(), Value::from(0));
    f.insert(field::STAGE_ENTERED_AT.into(), time_to_json(now));
    f.insert(field::HASHING.into(), Value::from(new.hashing.as_str()));
    if let Some(policy) = new.on_breach {
        f.insert(field::ON_BREACH.into(), Value::from(policy.as_str()));
    }
    // The document must read back as what we meant; a mismatch here is a bug, not user error.
    Rollout::from_fields(&new.id, &f).map_err(|e| ActionError::Invalid(e.to_string()))?;
    let mut after = f.clone();
    after.remove(field::LAST_UPDATED_AT);
    let event = Event {
        rollout_id: new.id.clone(),
        kind: EventKind::Create,
        actor: actor.to_string(),
        at: now,
        before: Value::Null,
        after: Value::Object(after),
        reason: None,
        gate_report: None,
    };
    Ok((f, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rollout_with(canary: Vec<String>, excluded: Vec<String>) -> (Rollout, Fields) {
        let new = NewRollout {
            id: "web".into(),
            version: "1.0".into(),
            stable_version: None,
            plan: Plan::preset(super::super::rollout::PlanPreset::Canary),
            hashing: Hashing::FractionalV1,
            stable_revision: None,
            canary_revision: None,
            canary_users: Vec::new(),
            on_breach: None,
        };
        let (mut f, _) = create(&new, "t", DateTime::<Utc>::UNIX_EPOCH).unwrap();
        f.insert(field::CANARY_USERS.into(), Value::from(canary));
        f.insert(field::EXCLUDED_USERS.into(), Value::from(excluded));
        (Rollout::from_fields("web", &f).unwrap(), f)
    }

    fn ctx(plan: &Plan) -> Context<'_> {
        Context {
            actor: "t",
            now: DateTime::<Utc>::UNIX_EPOCH,
            default_plan: plan,
            freeze_windows: &[],
        }
    }

    proptest! {
        /// The hash identity agrees with `same_user` on every pair.
        #[test]
        fn identity_is_same_user(a in "[a-zA-Z0-9@.]{1,8}", b in "[a-zA-Z0-9@.]{1,8}") {
            prop_assert_eq!(user_identity(&a) == user_identity(&b), same_user(&a, &b));
        }
    }

    #[test]
    fn an_override_records_what_it_overrode_and_the_gate_report() {
        let plan = Plan::preset(super::super::rollout::PlanPreset::Canary);
        let (r, f) = rollout_with(vec![], vec![]);
        let plain = apply(&r, &f, &Action::Advance, ctx(&plan)).unwrap();
        let report = serde_json::json!({ "verdict": "fail" });
        let overridden = |reason: &str| Action::Overridden {
            action: Box::new(Action::Advance),
            risks: vec![
                "p99-vs-stable FAIL".into(),
                "9m of bake time skipped".into(),
            ],
            reason: reason.into(),
            gate_report: Some(report.clone()),
        };
        let t = apply(&r, &f, &overridden("  hotfix INC-9 "), ctx(&plan)).unwrap();
        assert_eq!(t.patch, plain.patch, "the move itself is unchanged");
        assert_eq!(t.event.kind, EventKind::Advance);
        assert_eq!(
            t.event.reason.as_deref(),
            Some("override: p99-vs-stable FAIL, 9m of bake time skipped — hotfix INC-9")
        );
        assert_eq!(t.event.gate_report, Some(report.clone()));
        assert!(t.summary.ends_with("(override recorded)"), "{}", t.summary);
        for bad in ["", "  ", "a\u{7}b"] {
            assert!(
                matches!(
                    apply(&r, &f, &overridden(bad), ctx(&plan)),
                    Err(ActionError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn thousands_of_keys_on_a_100k_list_are_checked_one_by_one() {
        let plan = Plan::preset(super::super::rollout::PlanPreset::Canary);
        let list: Vec<String> = (0..100_000)
            .map(|i| format!("user{i}@example.com"))
            .collect();
        let (r, f) = rollout_with(list, vec!["Bot@Example.com".into()]);
        let keys: Vec<String> = (0..20_000).map(|i| format!("new{i}@example.com")).collect();
        let add = Action::AddUsers {
            list: UserList::Canary,
            keys: keys.clone(),
        };
        let t = apply(&r, &f, &add, ctx(&plan)).unwrap();
        assert_eq!(
            t.summary,
            "added to canary users: new0@example.com, new1@example.com, new2@example.com, new3@example.com, new4@example.com and 19995 more"
        );
        assert_eq!(t.event.after["canaryUsers"]["count"], 120_000);
        // Emails compare case-insensitively: already there, in the other list, given twice.
        for (keys, needle) in [
            (vec!["USER7@example.com"], "already in canary users"),
            (
                vec!["bot@example.com"],
                "in excluded users of 'web'; remove it there first",
            ),
            (vec!["a@x.com", "A@X.com"], "'A@X.com' is given twice"),
        ] {
            let add = Action::AddUsers {
                list: UserList::Canary,
                keys: keys.into_iter().map(String::from).collect(),
            };
            let e = apply(&r, &f, &add, ctx(&plan)).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let remove = Action::RemoveUsers {
            list: UserList::Canary,
            keys: (0..20_000)
                .map(|i| format!("USER{i}@example.com"))
                .collect(),
        };
        let t = apply(&r, &f, &remove, ctx(&plan)).unwrap();
        assert_eq!(t.event.after["canaryUsers"]["count"], 80_000);
        assert_eq!(
            t.event.after["canaryUsers"]["removed"][0],
            "user0@example.com"
        );
        let twice = Action::RemoveUsers {
            list: UserList::Canary,
            keys: vec!["user1@example.com".into(), "user1@example.com".into()],
        };
        let e = apply(&r, &f, &twice, ctx(&plan)).unwrap_err().to_string();
        assert!(
            e.contains("'user1@example.com' is not in canary users"),
            "{e}"
        );
    }
}
