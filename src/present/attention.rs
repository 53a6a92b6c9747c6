//! Triage: which rollouts need an operator first, the words that say why, and the
//! overview's sort orders. Pure: the signals come in, the judgment goes out.

use chrono::{DateTime, Duration, Utc};

use crate::domain::health::Verdict;
use crate::domain::rollout::{Plan, Rollout, Status};
use crate::domain::units::Percent;

use super::time::minutes;

/// How long a rollback stays at the top of the list: long enough to be seen by the next
/// shift's first look, short enough that old rollbacks do not bury what is live.
pub fn recent_rollback() -> Duration {
    Duration::hours(1)
}

/// Why a rollout needs attention, most urgent first (the derived order is the sort order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Attention {
    /// Rolled back within `recent_rollback()`.
    RolledBack,
    /// The gates fail.
    Failing,
    /// The document cannot be read: nothing but a rollback can act on it.
    Unreadable,
    /// Auto-progression is ready for the next stage and waits for a yes.
    AwaitingConfirmation,
    /// A canary at a non-zero percentage has had no requests for longer than the
    /// freshness limit: nothing judges it, so it must not read as a quiet "wait".
    NoTraffic,
    Paused,
    /// Nothing to do.
    Quiet,
}

impl Attention {
    pub fn needs_attention(self) -> bool {
        self != Attention::Quiet
    }

    /// The word a row shows (empty for a quiet one).
    pub fn word(self) -> &'static str {
        match self {
            Attention::RolledBack => "rolled back",
            Attention::Failing => "failing",
            Attention::Unreadable => "unreadable",
            Attention::AwaitingConfirmation => "confirm?",
            Attention::NoTraffic => "no traffic",
            Attention::Paused => "paused",
            Attention::Quiet => "",
        }
    }
}

/// What triage looks at for one rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Signals {
    /// None when the document does not parse.
    pub status: Option<Status>,
    pub percent: Percent,
    pub verdict: Option<Verdict>,
    pub rolled_back_at: Option<DateTime<Utc>>,
    pub awaiting_confirmation: bool,
    /// Since when the canary has answered zero requests in every sample (None: it had
    /// traffic in the newest sample, or nothing is known).
    pub canary_silent_since: Option<DateTime<Utc>>,
    /// The gates' freshness limit (max staleness plus the source's delay).
    pub freshness_limit: Duration,
}

/// The one rule that ranks rollouts for the overview and `n`.
pub fn classify(s: &Signals, now: DateTime<Utc>) -> Attention {
    let Some(status) = s.status else {
        return Attention::Unreadable;
    };
    match status {
        Status::RolledBack => {
            return if s
                .rolled_back_at
                .is_some_and(|t| now - t <= recent_rollback())
            {
                Attention::RolledBack
            } else {
                Attention::Quiet
            };
        }
        Status::Complete | Status::Planned => return Attention::Quiet,
        Status::Canary | Status::Progressive | Status::Paused => {}
    }
    if s.verdict == Some(Verdict::Fail) {
        return Attention::Failing;
    }
    if s.awaiting_confirmation {
        return Attention::AwaitingConfirmation;
    }
    let silent = s
        .canary_silent_since
        .is_some_and(|since| now - since > s.freshness_limit);
    if s.percent > Percent::ZERO && silent {
        return Attention::NoTraffic;
    }
    if status == Status::Paused {
        return Attention::Paused;
    }
    Attention::Quiet
}

/// The overview's orders; the sort key cycles through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Needing attention first (see `Attention`), then the rest; by id within a group.
    #[default]
    Attention,
    Id,
    /// Most recently changed first.
    Updated,
}

impl SortKey {
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Attention => SortKey::Id,
            SortKey::Id => SortKey::Updated,
            SortKey::Updated => SortKey::Attention,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Attention => "attention",
            SortKey::Id => "id",
            SortKey::Updated => "updated",
        }
    }
}

/// The last move of a rollout, as a row shows it: "advanced 12m ago", "rolled back 3m ago".
/// Times come from the document (`paused_at` from the audit log when it is loaded: a pause
/// writes no time of its own); an unknown time leaves the bare word.
pub fn last_transition(
    r: &Rollout,
    rolled_back_at: Option<DateTime<Utc>>,
    paused_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> String {
    let (word, at) = match r.status {
        Status::RolledBack => ("rolled back", rolled_back_at),
        Status::Complete => ("completed", r.completed_at),
        Status::Paused => ("paused", paused_at),
        Status::Planned => ("planned", None),
        Status::Canary | Status::Progressive => match r.current_stage {
            Some(i) if i > 0 => ("advanced", r.stage_entered_at),
            _ => ("started", r.stage_entered_at.or(r.started_at)),
        },
    };
    match at {
        Some(t) => format!("{word} {} ago", minutes(now - t)),
        None => word.to_string(),
    }
}

/// When a stage was entered, compactly: "08:56" today (UTC), "02-27" before.
pub fn entry_time(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%m-%d").to_string()
    }
}

/// A plan as steps of one line, each with its entry time where known: "✓ 0% 08:20",
/// "▶ 5% 08:56" (the current stage), "25%" (not reached yet). `entered[i]` is when
/// stage `i` was last entered.
pub fn stage_steps(
    plan: &Plan,
    current: Option<usize>,
    entered: &[Option<DateTime<Utc>>],
    now: DateTime<Utc>,
) -> Vec<String> {
    plan.stages
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mark = match current {
                Some(c) if i == c => "▶ ",
                Some(c) if i < c => "✓ ",
                _ => "",
            };
            let at = match (current, entered.get(i).copied().flatten()) {
                (Some(c), Some(t)) if i <= c => format!(" {}", entry_time(t, now)),
                _ => String::new(),
            };
            format!("{mark}{}{at}", s.percent)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-03-01T09:00:00Z".parse().unwrap()
    }

    fn running(status: Status, percent: u16) -> Signals {
        Signals {
            status: Some(status),
            percent: Percent::from_hundredths(percent * 100).unwrap(),
            verdict: Some(Verdict::Pass),
            rolled_back_at: None,
            awaiting_confirmation: false,
            canary_silent_since: None,
            freshness_limit: Duration::minutes(3),
        }
    }

    #[test]
    fn each_signal_lands_in_its_group() {
        let at = |f: &dyn Fn(&mut Signals)| {
            let mut s = running(Status::Progressive, 5);
            f(&mut s);
            classify(&s, now())
        };
        assert_eq!(at(&|_| {}), Attention::Quiet);
        assert_eq!(
            at(&|s| {
                s.status = Some(Status::RolledBack);
                s.rolled_back_at = Some(now() - Duration::minutes(3));
            }),
            Attention::RolledBack
        );
        assert_eq!(
            at(&|s| {
                s.status = Some(Status::RolledBack);
                s.rolled_back_at = Some(now() - Duration::hours(3));
            }),
            Attention::Quiet,
            "an old rollback no longer heads the list"
        );
        assert_eq!(at(&|s| s.verdict = Some(Verdict::Fail)), Attention::Failing);
        assert_eq!(at(&|s| s.status = None), Attention::Unreadable);
        assert_eq!(
            at(&|s| s.awaiting_confirmation = true),
            Attention::AwaitingConfirmation
        );
        assert_eq!(at(&|s| s.status = Some(Status::Paused)), Attention::Paused);
        assert_eq!(
            at(&|s| {
                s.status = Some(Status::Complete);
                s.verdict = Some(Verdict::Fail);
            }),
            Attention::Quiet,
            "a finished rollout has nothing left to act on"
        );
    }

    #[test]
    fn a_silent_canary_is_flagged_only_past_the_freshness_limit_and_above_zero() {
        let silent = |percent: u16, for_secs: i64| {
            let mut s = running(Status::Progressive, percent);
            // The gates call a silent canary inconclusive: it must not hide as "wait".
            s.verdict = Some(Verdict::Inconclusive);
            s.canary_silent_since = Some(now() - Duration::seconds(for_secs));
            classify(&s, now())
        };
        assert_eq!(silent(5, 181), Attention::NoTraffic);
        assert_eq!(
            silent(5, 180),
            Attention::Quiet,
            "at the limit, not past it"
        );
        assert_eq!(
            silent(0, 3600),
            Attention::Quiet,
            "canary users only: no share of traffic is owed"
        );
        let mut paused = running(Status::Paused, 5);
        paused.canary_silent_since = Some(now() - Duration::minutes(10));
        assert_eq!(
            classify(&paused, now()),
            Attention::NoTraffic,
            "a paused canary still serves its share"
        );
    }

    #[test]
    fn groups_sort_in_the_documented_order() {
        let mut groups = [
            Attention::Quiet,
            Attention::Paused,
            Attention::NoTraffic,
            Attention::AwaitingConfirmation,
            Attention::Unreadable,
            Attention::Failing,
            Attention::RolledBack,
        ];
        groups.sort();
        assert_eq!(
            groups.map(Attention::word),
            [
                "rolled back",
                "failing",
                "unreadable",
                "confirm?",
                "no traffic",
                "paused",
                ""
            ]
        );
        assert!(!Attention::Quiet.needs_attention());
        assert!(Attention::NoTraffic.needs_attention());
    }

    #[test]
    fn the_sort_key_cycles() {
        let k = SortKey::default();
        assert_eq!(k, SortKey::Attention);
        assert_eq!(
            [k.next(), k.next().next(), k.next().next().next()],
            [SortKey::Id, SortKey::Updated, SortKey::Attention]
        );
        assert_eq!(SortKey::Updated.label(), "updated");
    }

    #[test]
    fn last_transitions_and_stage_steps() {
        use crate::domain::rollout::PlanPreset;
        let plan = Plan::preset(PlanPreset::Canary);
        let fields = serde_json::json!({
            "version": "2", "status": "progressive", "rolloutPercentage": 5,
            "plan": plan.to_json(), "currentStage": 1,
            "stageEnteredAt": "2026-03-01T08:48:00Z", "startedAt": "2026-02-28T07:00:00Z",
        });
        let r = Rollout::from_fields("web", fields.as_object().unwrap()).unwrap();
        assert_eq!(last_transition(&r, None, None, now()), "advanced 12m ago");
        let mut back = r.clone();
        back.status = Status::RolledBack;
        let three_ago = Some(now() - Duration::minutes(3));
        assert_eq!(
            last_transition(&back, three_ago, None, now()),
            "rolled back 3m ago"
        );
        let mut paused = r.clone();
        paused.status = Status::Paused;
        assert_eq!(last_transition(&paused, None, None, now()), "paused");
        let entered = [r.started_at, r.stage_entered_at];
        assert_eq!(
            stage_steps(&plan, Some(1), &entered, now()),
            ["✓ 0% 02-28", "▶ 5% 08:48", "25%", "50%", "100%"]
        );
    }
}
