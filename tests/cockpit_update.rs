//! The cockpit's reducer driven by key events and messages, as the runtime drives
//! it: what asks first, what performs at once, what is refused and why.

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use std::collections::BTreeMap;

use cockpit_fixture::*;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use rollout_tui::app::state::{AppState, Conn, Dialog, HISTORY_LEN, Panel, Screen, ToastLevel};
use rollout_tui::app::update::{Effect, Msg, input_problem, update};
use rollout_tui::domain::actions::{Action, UserList};
use rollout_tui::domain::units::Percent;
use rollout_tui::engine::WriteOutcome;
use rollout_tui::keys::{Command, KeySetting, Keymap};
use rollout_tui::metrics::Regression;
use rollout_tui::ops::diff_fields;
use rollout_tui::report::Written;
use rollout_tui::store::{Revision, StoreChange, StoredRollout};

fn pct(text: &str) -> Percent {
    text.parse().unwrap()
}

/// The write a key should lead to: compare-and-set against the document as shown.
fn perform(s: &AppState, id: &str, action: Action) -> Vec<Effect> {
    vec![Effect::Engine(EngineCommand::Perform {
        id: id.into(),
        action,
        seen: Box::new(s.entry(id).expect("the rollout is shown").stored.clone()),
    })]
}

fn detail(id: &str) -> AppState {
    let mut s = demo_state();
    open(&mut s, id);
    s
}

fn detail_at_5(id: &str) -> AppState {
    let mut s = demo_state_current_at_5();
    open(&mut s, id);
    s
}

/// `current` at 5 % with its stage's 10 minute minimum served (11 minutes in).
fn detail_at_5_baked(id: &str) -> AppState {
    let mut s = detail_at_5(id);
    tick(&mut s, t0() + mins(7));
    s
}

fn users_panel(mut s: AppState) -> AppState {
    ch(&mut s, 'u');
    assert_eq!((s.screen, s.focus), (Screen::Detail, Panel::Users));
    s
}

fn problem(s: &AppState) -> Option<String> {
    input_problem(s, s.dialog.as_ref().expect("a dialog is open"))
}

fn dialog_kind(s: &AppState) -> &'static str {
    // `matches!` rather than `match`, so a new dialog kind elsewhere does not break this.
    let d = s.dialog.as_ref();
    if d.is_none() {
        "none"
    } else if matches!(d, Some(Dialog::Confirm { .. })) {
        "confirm"
    } else if matches!(d, Some(Dialog::TypedConfirm { .. })) {
        "typed-confirm"
    } else if matches!(d, Some(Dialog::Rollback { .. })) {
        "rollback"
    } else if matches!(d, Some(Dialog::SetPercent { .. })) {
        "set-percent"
    } else if matches!(d, Some(Dialog::AddUser { .. })) {
        "add-user"
    } else if matches!(d, Some(Dialog::Fault { .. })) {
        "fault"
    } else if matches!(d, Some(Dialog::Conflict { .. })) {
        "conflict"
    } else if matches!(d, Some(Dialog::Override { .. })) {
        "override"
    } else if matches!(d, Some(Dialog::Pause { .. })) {
        "pause"
    } else {
        "other"
    }
}

// ---------------------------------------------------------------- navigation

#[test]
fn open_loads_events_and_esc_goes_back() {
    let mut s = demo_state();
    select(&mut s, "ocr-fallback");
    let effects = press(&mut s, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![Effect::Engine(EngineCommand::LoadEvents(
            "ocr-fallback".into()
        ))]
    );
    assert_eq!((s.screen, s.focus), (Screen::Detail, Panel::Timeline));
    for panel in [Panel::Health, Panel::Users, Panel::Events, Panel::Timeline] {
        press(&mut s, KeyCode::Tab);
        assert_eq!(s.focus, panel);
    }
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.screen, Screen::Overview);
    assert_eq!(s.selected_entry().unwrap().id(), "ocr-fallback");
}

#[test]
fn cursor_keys_stop_at_the_ends() {
    let mut s = demo_state();
    for _ in 0..5 {
        ch(&mut s, 'j');
    }
    assert_eq!(s.selected, 2);
    press(&mut s, KeyCode::Up);
    assert_eq!(s.selected, 1);
    ch(&mut s, 'k');
    ch(&mut s, 'k');
    assert_eq!(s.selected, 0);
}

#[test]
fn key_releases_are_ignored() {
    let mut s = demo_state();
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert!(update(&mut s, Msg::Key(release)).is_empty());
    assert!(!s.quit);
}

#[test]
fn q_quits_and_ctrl_c_quits_even_in_a_dialog() {
    let mut s = demo_state();
    assert_eq!(ch(&mut s, 'q'), vec![Effect::Quit]);
    assert!(s.quit);

    let mut s = detail("current");
    ch(&mut s, 'R');
    // A 'q' typed into a text field is text, not quit.
    assert!(type_text(&mut s, "q").is_empty());
    assert!(!s.quit);
    let effects = update(
        &mut s,
        Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
    );
    assert_eq!(effects, vec![Effect::Quit]);
    assert!(s.quit);
}

#[test]
fn slash_filters_by_id() {
    let mut s = demo_state();
    ch(&mut s, '/');
    assert!(s.filter_input.is_some());
    // Typed letters are filter text, not commands ('a' would be advance, 'q' quit).
    assert!(type_text(&mut s, "qa").is_empty());
    assert!(!s.quit && s.dialog.is_none());
    assert!(s.visible().is_empty());
    let text = screen(&s, 80, 24);
    assert!(
        text.contains("No rollout id contains 'qa' (Esc clears the filter)"),
        "{text}"
    );
    for _ in 0..2 {
        press(&mut s, KeyCode::Backspace);
    }
    type_text(&mut s, "RANK");
    let ids: Vec<&str> = s.visible().iter().map(|&i| s.rollouts[i].id()).collect();
    assert_eq!(ids, ["search-ranking-v2"], "case-insensitive match");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.filter, "RANK");
    assert!(s.filter_input.is_none());
    assert_eq!(s.selected_entry().unwrap().id(), "search-ranking-v2");
    // Esc on the overview clears the kept filter.
    press(&mut s, KeyCode::Esc);
    assert!(s.filter.is_empty());
    assert_eq!(s.visible().len(), 3);

    // Esc while typing drops what was typed and keeps the previous filter.
    ch(&mut s, '/');
    type_text(&mut s, "ocr");
    press(&mut s, KeyCode::Enter);
    ch(&mut s, '/');
    type_text(&mut s, "zzz");
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.filter, "ocr");
    assert_eq!(s.visible().len(), 1);
}

#[test]
fn help_opens_and_closes_and_swallows_keys() {
    let mut s = demo_state();
    ch(&mut s, '?');
    assert!(s.help_open);
    assert!(ch(&mut s, 'a').is_empty());
    assert!(s.dialog.is_none(), "keys do not act under the help overlay");
    press(&mut s, KeyCode::Esc);
    assert!(!s.help_open);
    ch(&mut s, '?');
    ch(&mut s, '?');
    assert!(!s.help_open);
}

// ---------------------------------------------------------------- advance

#[test]
fn advance_asks_first_and_performs_only_after_y() {
    let mut s = detail("current");
    assert!(ch(&mut s, 'a').is_empty());
    let Some(Dialog::Confirm { title, body, .. }) = &s.dialog else {
        panic!("advance should ask first, got {}", dialog_kind(&s));
    };
    assert_eq!(title, "Advance current?");
    assert!(
        body[0].contains("stage 1/5 'canary users' (0%)"),
        "{body:?}"
    );
    assert!(body[1].contains("stage 2/5 '5%' (5%)"), "{body:?}");
    assert!(
        body.iter().any(|l| l == "health: all gates pass"),
        "{body:?}"
    );
    // Unrelated keys keep the question open and do nothing.
    assert!(ch(&mut s, 'a').is_empty());
    assert!(ch(&mut s, 'z').is_empty());
    assert_eq!(dialog_kind(&s), "confirm");
    assert_eq!(s.pending_writes, 0);
    assert_eq!(ch(&mut s, 'y'), perform(&s, "current", Action::Advance));
    assert!(s.dialog.is_none());
    assert_eq!(s.pending_writes, 1);
}

/// A change that arrives while a dialog is open never becomes what the write builds on
/// unseen: the question is asked again about it (marked as changed), and the write is
/// compare-and-set against the document the dialog shows.
#[test]
fn a_dialog_writes_against_the_document_it_shows() {
    let mut s = detail("current");
    let opened_on = s.entry("current").unwrap().stored.clone();
    ch(&mut s, 'a');
    assert_eq!(s.dialog_seen.as_ref(), Some(&opened_on));
    let mut changed = current().stored;
    changed.fields.insert("rolloutPercentage".into(), 5.into());
    changed.revision = Revision("99".into());
    upsert(&mut s, changed.clone());
    assert_eq!(dialog_kind(&s), "confirm", "the question stays open");
    assert!(s.dialog_refreshed, "and says the rollout changed");
    let effects = ch(&mut s, 'y');
    let [Effect::Engine(EngineCommand::Perform { seen, action, .. })] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(*action, Action::Advance);
    assert_eq!(**seen, changed, "the document the refreshed dialog showed");

    // Without a dialog, a key acts on what is shown now, not on an earlier dialog's view.
    ch(&mut s, '%');
    press(&mut s, KeyCode::Esc);
    let mut newer = current().stored;
    newer.revision = Revision("100".into());
    upsert(&mut s, newer.clone());
    let shown = s.entry("current").unwrap().stored.clone();
    assert_eq!(shown, newer);
    ch(&mut s, 'p');
    let effects = press(&mut s, KeyCode::Enter);
    let [Effect::Engine(EngineCommand::Perform { seen, .. })] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(**seen, shown);
}

#[test]
fn advance_enter_also_confirms() {
    let mut s = detail("current");
    ch(&mut s, 'a');
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        perform(&s, "current", Action::Advance)
    );
}

#[test]
fn advance_n_and_esc_cancel_without_effect() {
    for cancel in [KeyCode::Char('n'), KeyCode::Char('N'), KeyCode::Esc] {
        let mut s = detail("current");
        ch(&mut s, 'a');
        assert!(press(&mut s, cancel).is_empty(), "{cancel:?}");
        assert!(s.dialog.is_none(), "{cancel:?} should close the dialog");
        assert_eq!(s.pending_writes, 0);
        assert_eq!(
            s.screen,
            Screen::Detail,
            "{cancel:?} only closes the dialog"
        );
    }
}

#[test]
fn advance_with_failing_health_needs_a_typed_reason_and_records_the_override() {
    let mut s = detail("search-ranking-v2");
    ch(&mut s, 'a');
    let Some(Dialog::Override {
        title, body, risks, ..
    }) = &s.dialog
    else {
        panic!(
            "a failing advance must ask for a reason, got {}",
            dialog_kind(&s)
        );
    };
    assert_eq!(title, "OVERRIDE: Advance search-ranking-v2?");
    assert!(
        body.iter()
            .any(|l| l.starts_with("health: FAIL: ") && l.contains("2.10 %")),
        "{body:?}"
    );
    assert!(risks.contains(&"error-rate FAIL".to_string()), "{risks:?}");
    // 20 h of a 48 h minimum served.
    assert!(
        risks.contains(&"1d4h of bake time skipped".to_string()),
        "{risks:?}"
    );
    let risks = risks.clone();
    // The safe choice is the default: Enter without a reason and `y` do not advance.
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    assert_eq!(dialog_kind(&s), "override");
    assert_eq!(
        problem(&s).as_deref(),
        Some("type why this cannot wait, or Esc to stay")
    );
    assert!(
        ch(&mut s, 'y').is_empty(),
        "y is typed, it does not confirm"
    );
    assert_eq!(s.pending_writes, 0);
    // Esc stays.
    let mut cancelled = s.clone();
    assert!(press(&mut cancelled, KeyCode::Esc).is_empty());
    assert!(cancelled.dialog.is_none());
    assert_eq!(cancelled.pending_writes, 0);
    // A control character in the reason is refused as it is typed.
    let mut hostile = s.clone();
    type_text(&mut hostile, "\u{1b}[2J");
    assert!(press(&mut hostile, KeyCode::Enter).is_empty());
    assert!(problem(&hostile).unwrap().contains("control character"));
    // A reason performs the advance as an override carrying the gate report seen.
    type_text(&mut s, "es, hotfix for INC-42");
    let report = s
        .entry("search-ranking-v2")
        .unwrap()
        .health
        .report
        .as_ref()
        .unwrap()
        .to_json();
    let expected = perform(
        &s,
        "search-ranking-v2",
        Action::Overridden {
            action: Box::new(Action::Advance),
            risks,
            reason: "yes, hotfix for INC-42".into(),
            gate_report: Some(report),
        },
    );
    assert_eq!(press(&mut s, KeyCode::Enter), expected);
    assert!(s.dialog.is_none());
    assert_eq!(s.pending_writes, 1);
}

#[test]
fn a_healthy_advance_after_its_bake_time_stays_one_key_and_a_confirmation() {
    let mut s = detail_at_5_baked("current");
    ch(&mut s, 'a');
    assert_eq!(dialog_kind(&s), "confirm");
    assert_eq!(ch(&mut s, 'y'), perform(&s, "current", Action::Advance));
}

#[test]
fn raising_the_percentage_during_bake_time_needs_a_reason_lowering_does_not() {
    let mut s = detail_at_5("current");
    assert!(set_percent(&mut s, "10").is_empty());
    let Some(Dialog::Override { title, risks, .. }) = &s.dialog else {
        panic!(
            "raising in bake time must ask for a reason, got {}",
            dialog_kind(&s)
        );
    };
    assert_eq!(title, "OVERRIDE: Set current to 10%?");
    assert_eq!(risks, &vec!["6m00s of bake time skipped".to_string()]);
    let mut s = detail_at_5("current");
    assert_eq!(
        set_percent(&mut s, "1"),
        perform(&s, "current", Action::SetPercent(pct("1")))
    );
}

#[test]
fn promote_over_an_inconclusive_canary_asks_for_a_reason_instead_of_the_id() {
    let mut s = detail("ocr-fallback");
    ch(&mut s, 'P');
    let Some(Dialog::Override { risks, action, .. }) = &s.dialog else {
        panic!("got {}", dialog_kind(&s));
    };
    assert_eq!(action, &Action::Promote);
    assert!(
        risks.iter().any(|r| r.ends_with("inconclusive")),
        "{risks:?}"
    );
}

// ---------------------------------------------------------------- set percent

fn set_percent(s: &mut AppState, text: &str) -> Vec<Effect> {
    assert!(ch(s, '%').is_empty());
    assert_eq!(dialog_kind(s), "set-percent");
    let mut effects = type_text(s, text);
    effects.extend(press(s, KeyCode::Enter));
    effects
}

#[test]
fn percent_5_from_0_performs_at_once() {
    let mut s = detail("current");
    assert_eq!(
        set_percent(&mut s, "5"),
        perform(&s, "current", Action::SetPercent(pct("5")))
    );
    assert!(s.dialog.is_none());
}

#[test]
fn percent_jump_over_25_points_asks_first() {
    let mut s = detail_at_5_baked("current");
    assert!(set_percent(&mut s, "50").is_empty());
    let Some(Dialog::Confirm { title, body, .. }) = &s.dialog else {
        panic!("a 45-point jump should ask, got {}", dialog_kind(&s));
    };
    assert_eq!(title, "Set current to 50%?");
    assert_eq!(
        body,
        &vec![
            "a jump from 5% to 50%".to_string(),
            "health: all gates pass".to_string()
        ]
    );
    assert_eq!(
        ch(&mut s, 'y'),
        perform(&s, "current", Action::SetPercent(pct("50")))
    );
}

#[test]
fn percent_jump_of_exactly_25_points_does_not_ask() {
    let mut s = detail_at_5_baked("current");
    assert_eq!(
        set_percent(&mut s, "30"),
        perform(&s, "current", Action::SetPercent(pct("30")))
    );
    // Going down by any amount does not ask either.
    let mut s = detail_at_5("current");
    assert_eq!(
        set_percent(&mut s, "0"),
        perform(&s, "current", Action::SetPercent(pct("0")))
    );
}

#[test]
fn percent_100_asks_first_even_from_a_small_jump() {
    let mut s = detail("current");
    assert!(set_percent(&mut s, "100").is_empty());
    assert_eq!(dialog_kind(&s), "confirm");
    assert!(ch(&mut s, 'n').is_empty());
    assert!(s.dialog.is_none());

    // 80 % -> 100 % is 20 points, and still asks.
    let mut s = detail_at_5_baked("current");
    set_percent(&mut s, "30");
    let stored = {
        let mut b = current_at_5().stored;
        b.fields.insert("rolloutPercentage".into(), 80.into());
        b.revision = Revision("9".into());
        b
    };
    upsert(&mut s, stored);
    assert!(set_percent(&mut s, "100").is_empty());
    assert_eq!(dialog_kind(&s), "confirm");
    assert_eq!(
        ch(&mut s, 'y'),
        perform(&s, "current", Action::SetPercent(Percent::FULL))
    );
}

#[test]
fn invalid_percentages_keep_the_dialog_open_with_the_reason() {
    for (text, why) in [
        ("", "type a percentage"),
        ("101", "outside"),
        ("-1", "outside"),
        ("abc", "not a number"),
        ("5.123", "more than two decimals"),
        ("1e1", "not a number"),
        ("0", "already at 0%"),
    ] {
        let mut s = detail("current");
        assert!(set_percent(&mut s, text).is_empty(), "{text:?}");
        assert_eq!(dialog_kind(&s), "set-percent", "{text:?} closed the dialog");
        let p = problem(&s).unwrap_or_else(|| panic!("{text:?} is accepted"));
        assert!(p.contains(why), "{text:?}: {p:?} should say {why:?}");
        assert_eq!(s.pending_writes, 0);
        // Esc still cancels.
        assert!(press(&mut s, KeyCode::Esc).is_empty());
        assert!(s.dialog.is_none());
    }
}

#[test]
fn percent_validates_as_you_type() {
    let mut s = detail("current");
    ch(&mut s, '%');
    type_text(&mut s, "1");
    assert_eq!(problem(&s), None);
    type_text(&mut s, "01");
    assert!(problem(&s).unwrap().contains("outside"));
    press(&mut s, KeyCode::Backspace);
    press(&mut s, KeyCode::Backspace);
    assert_eq!(problem(&s), None);
    type_text(&mut s, ".5");
    assert_eq!(problem(&s), None);
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        perform(&s, "current", Action::SetPercent(pct("1.5")))
    );
}

// ---------------------------------------------------------------- rollback and promote

#[test]
fn rollback_needs_a_reason_and_then_performs_at_once() {
    let mut s = detail("search-ranking-v2");
    ch(&mut s, 'R');
    assert_eq!(dialog_kind(&s), "rollback");
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    assert_eq!(dialog_kind(&s), "rollback", "an empty reason keeps it open");
    type_text(&mut s, "   ");
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    assert_eq!(problem(&s).as_deref(), Some("a reason is required"));
    for _ in 0..3 {
        press(&mut s, KeyCode::Backspace);
    }
    type_text(&mut s, "error spike on checkout ");
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        perform(
            &s,
            "search-ranking-v2",
            Action::Rollback {
                reason: "error spike on checkout".into()
            }
        ),
        "Enter with a reason rolls back with no further question"
    );
    assert!(s.dialog.is_none());
}

/// A reason the store would refuse is said while typing, and the dialog stays open.
#[test]
fn a_rollback_reason_over_the_limit_is_refused_while_typing() {
    let mut s = detail("search-ranking-v2");
    ch(&mut s, 'R');
    type_text(&mut s, &"x".repeat(2001));
    let p = problem(&s).expect("a problem");
    assert!(p.contains("2001 characters long; the limit is 2000"), "{p}");
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    assert_eq!(dialog_kind(&s), "rollback");
    press(&mut s, KeyCode::Backspace);
    assert_eq!(problem(&s), None);
}

#[test]
fn rollback_esc_cancels() {
    let mut s = detail("current");
    ch(&mut s, 'R');
    type_text(&mut s, "oops");
    assert!(press(&mut s, KeyCode::Esc).is_empty());
    assert!(s.dialog.is_none());
    assert_eq!(s.pending_writes, 0);
}

#[test]
fn promote_performs_only_after_the_exact_id() {
    let mut s = detail("current");
    ch(&mut s, 'P');
    assert_eq!(dialog_kind(&s), "typed-confirm");
    for wrong in ["", "curren", "Current", "current2", "y"] {
        type_text(&mut s, wrong);
        assert!(press(&mut s, KeyCode::Enter).is_empty(), "{wrong:?}");
        assert_eq!(dialog_kind(&s), "typed-confirm", "{wrong:?}");
        assert_eq!(problem(&s).as_deref(), Some("type current to confirm"));
        for _ in 0..wrong.len() {
            press(&mut s, KeyCode::Backspace);
        }
    }
    type_text(&mut s, "current");
    assert_eq!(problem(&s), None);
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        perform(&s, "current", Action::Promote)
    );
}

#[test]
fn pause_asks_for_an_optional_reason_and_enter_pauses_without_one() {
    let mut s = detail("current");
    assert!(ch(&mut s, 'p').is_empty());
    assert_eq!(dialog_kind(&s), "pause");
    let effects = press(&mut s, KeyCode::Enter);
    assert!(matches!(
        effects.as_slice(),
        [Effect::Engine(EngineCommand::Perform {
            action: Action::Pause { reason: None },
            ..
        })]
    ));
}

// ---------------------------------------------------------------- users

#[test]
fn u_then_i_adds_a_canary_user() {
    let mut s = users_panel(detail("current"));
    ch(&mut s, 'i');
    let Some(Dialog::AddUser { list, .. }) = &s.dialog else {
        panic!("i should open the add dialog, got {}", dialog_kind(&s));
    };
    assert_eq!(*list, UserList::Canary);
    type_text(&mut s, "new.tester@example.com");
    assert_eq!(problem(&s), None);
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        perform(
            &s,
            "current",
            Action::AddUsers {
                list: UserList::Canary,
                keys: vec!["new.tester@example.com".into()]
            }
        )
    );
}

#[test]
fn u_works_from_the_overview() {
    let mut s = demo_state();
    select(&mut s, "ocr-fallback");
    assert_eq!(
        ch(&mut s, 'u'),
        vec![Effect::Engine(EngineCommand::LoadEvents(
            "ocr-fallback".into()
        ))]
    );
    assert_eq!((s.screen, s.focus), (Screen::Detail, Panel::Users));
    assert_eq!(s.selected_entry().unwrap().id(), "ocr-fallback");
    assert_eq!(
        ch(&mut s, 'e'),
        vec![Effect::Engine(EngineCommand::LoadEvents(
            "ocr-fallback".into()
        ))]
    );
    assert_eq!(s.focus, Panel::Events);
}

#[test]
fn user_keys_only_work_on_the_users_panel() {
    let mut s = detail("current");
    for c in ['i', 'd', 'x'] {
        assert!(ch(&mut s, c).is_empty());
        assert!(s.dialog.is_none(), "{c} outside the users panel");
    }
    assert_eq!(s.user_list, UserList::Canary);
}

#[test]
fn duplicates_are_refused_as_you_type() {
    let mut s = users_panel(detail("current"));
    ch(&mut s, 'i');
    type_text(&mut s, "qa-team-");
    assert_eq!(problem(&s), None);
    type_text(&mut s, "1");
    assert_eq!(
        problem(&s).as_deref(),
        Some("qa-team-1 is already in this list")
    );
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    assert_eq!(dialog_kind(&s), "add-user");
    // Emails compare without case.
    press(&mut s, KeyCode::Esc);
    ch(&mut s, 'i');
    type_text(&mut s, "ALEC@getaifactory.COM");
    assert!(problem(&s).unwrap().contains("already in this list"));
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    // A user on the other list is refused with where it is.
    press(&mut s, KeyCode::Esc);
    ch(&mut s, 'i');
    type_text(&mut s, "ci-bot");
    assert!(problem(&s).unwrap().contains("other list"));
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    // Not a user key at all.
    press(&mut s, KeyCode::Esc);
    ch(&mut s, 'i');
    type_text(&mut s, "a@b@c");
    assert!(problem(&s).unwrap().contains("not a valid user key"));
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    assert_eq!(s.pending_writes, 0);
}

#[test]
fn d_removes_the_selected_user_after_confirmation() {
    let mut s = users_panel(detail("current"));
    press(&mut s, KeyCode::Down);
    assert_eq!(s.user_cursor, 1);
    assert!(ch(&mut s, 'd').is_empty());
    let Some(Dialog::Confirm { title, .. }) = &s.dialog else {
        panic!("d should ask, got {}", dialog_kind(&s));
    };
    assert_eq!(title, "Remove qa-team-1?");
    assert!(ch(&mut s, 'n').is_empty());
    assert!(s.dialog.is_none());
    ch(&mut s, 'd');
    assert_eq!(
        ch(&mut s, 'y'),
        perform(
            &s,
            "current",
            Action::RemoveUsers {
                list: UserList::Canary,
                keys: vec!["qa-team-1".into()]
            }
        )
    );
}

#[test]
fn x_toggles_the_excluded_list_for_add_and_remove() {
    let mut s = users_panel(detail("current"));
    ch(&mut s, 'x');
    assert_eq!(s.user_list, UserList::Excluded);
    assert_eq!(s.user_cursor, 0);
    ch(&mut s, 'd');
    let Some(Dialog::Confirm { title, action, .. }) = &s.dialog else {
        panic!("no confirm");
    };
    assert_eq!(title, "Remove ci-bot?");
    assert_eq!(
        action,
        &Action::RemoveUsers {
            list: UserList::Excluded,
            keys: vec!["ci-bot".into()]
        }
    );
    press(&mut s, KeyCode::Esc);
    ch(&mut s, 'i');
    type_text(&mut s, "qa-team-1");
    assert!(problem(&s).unwrap().contains("other list"));
    for _ in 0.."qa-team-1".len() {
        press(&mut s, KeyCode::Backspace);
    }
    type_text(&mut s, "loadtest-7");
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        perform(
            &s,
            "current",
            Action::AddUsers {
                list: UserList::Excluded,
                keys: vec!["loadtest-7".into()]
            }
        )
    );
    ch(&mut s, 'x');
    assert_eq!(s.user_list, UserList::Canary);
}

#[test]
fn user_cursor_stops_at_the_list_ends() {
    let mut s = users_panel(detail_at_5("current"));
    for _ in 0..10 {
        press(&mut s, KeyCode::Down);
    }
    assert_eq!(s.user_cursor, 2);
    press(&mut s, KeyCode::PageUp);
    assert_eq!(s.user_cursor, 0);
}

/// After the last user of the list is removed, the cursor is past the end: the view
/// highlights the new last user, so `d` must act on that user.
#[test]
fn d_after_removing_the_last_user_acts_on_the_highlighted_one() {
    let mut s = users_panel(detail_at_5("current"));
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    assert_eq!(s.user_cursor, 2);
    ch(&mut s, 'd');
    let effects = ch(&mut s, 'y');
    assert_eq!(effects.len(), 1);
    // The store answers: beta-tester@example.com is gone.
    let mut after = current_at_5().stored;
    after.fields.insert(
        "canaryUsers".into(),
        serde_json::json!(["alec@getaifactory.com", "qa-team-1"]),
    );
    after.revision = Revision("9".into());
    update(
        &mut s,
        Msg::Engine(EngineEvent::Written {
            id: "current".into(),
            action: Action::RemoveUsers {
                list: UserList::Canary,
                keys: vec!["beta-tester@example.com".into()],
            },
            outcome: WriteOutcome::Done {
                summary: "removed 1 canary user".into(),
                stored: after,
                event: Box::new(current().events[0].clone()),
            },
        }),
    );
    let text = screen(&s, 80, 24);
    assert!(text.contains("▶ qa-team-1"), "{text}");
    ch(&mut s, 'd');
    assert!(
        matches!(&s.dialog, Some(Dialog::Confirm { title, .. }) if title == "Remove qa-team-1?"),
        "d on the highlighted user opened {}\n{text}",
        dialog_kind(&s)
    );
}

/// `u` on another rollout starts its user list at the top.
#[test]
fn u_on_another_rollout_starts_at_its_first_user() {
    let mut s = users_panel(detail_at_5("current"));
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Esc);
    select(&mut s, "search-ranking-v2");
    ch(&mut s, 'u');
    let text = screen(&s, 80, 24);
    assert!(text.contains("▶ ana@example.com"), "{text}");
    ch(&mut s, 'd');
    assert_eq!(
        dialog_kind(&s),
        "confirm",
        "d on the highlighted ana@example.com did nothing\n{text}"
    );
}

// ---------------------------------------------------------------- help and keymap

#[test]
fn help_overlay_lists_the_real_keys() {
    let mut s = demo_state();
    ch(&mut s, '?');
    let text = screen(&s, 200, 60);
    for (key, what) in s.keys.help_rows() {
        let line = format!(" {key:<8}  {what}");
        assert!(text.contains(&line), "help lacks {line:?}:\n{text}");
    }
    assert!(text.contains(" R         ROLL BACK (give a reason)"));
}

#[test]
fn rebinding_changes_the_keys_and_the_help() {
    let mut overrides = BTreeMap::new();
    overrides.insert("rollback".to_string(), KeySetting::One("ctrl-r".into()));
    overrides.insert("toggle_excluded".to_string(), KeySetting::One("X".into()));
    overrides.insert(
        "advance".to_string(),
        KeySetting::Many(vec!["+".into(), "f5".into()]),
    );
    let keys = Keymap::with_overrides(&overrides).expect("valid overrides");
    let mut s = demo_state();
    s.keys = keys;
    open(&mut s, "current");

    // The help shows the new keys, and not the old ones.
    ch(&mut s, '?');
    let text = screen(&s, 200, 60);
    assert!(
        text.contains(" ctrl-r    ROLL BACK (give a reason)"),
        "{text}"
    );
    assert!(text.contains(" +/f5      advance a stage (asks)"), "{text}");
    assert!(!text.contains(" R         roll back"), "{text}");
    assert!(!text.contains(" a         advance"), "{text}");
    press(&mut s, KeyCode::Esc);
    // So does the hint line.
    let hints = screen(&s, 200, 60);
    assert!(hints.contains("ctrl-r rollback"), "{hints}");
    assert!(hints.contains("+/f5 advance"), "{hints}");

    // The old keys do nothing; the new ones act.
    assert!(ch(&mut s, 'R').is_empty());
    assert!(ch(&mut s, 'a').is_empty());
    assert!(s.dialog.is_none());
    update(
        &mut s,
        Msg::Key(KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL)),
    );
    assert_eq!(dialog_kind(&s), "rollback");
    press(&mut s, KeyCode::Esc);
    press(&mut s, KeyCode::F(5));
    assert_eq!(dialog_kind(&s), "confirm");
    press(&mut s, KeyCode::Esc);
    ch(&mut s, '+');
    assert_eq!(dialog_kind(&s), "confirm");
    press(&mut s, KeyCode::Esc);
    // Panel titles name the configured keys too.
    ch(&mut s, 'u');
    let users = screen(&s, 200, 60);
    assert!(
        users.contains("Canary users (2) · X: excluded (1)"),
        "{users}"
    );
}

#[test]
fn duplicate_bindings_are_refused() {
    let mut overrides = BTreeMap::new();
    overrides.insert("quit".to_string(), KeySetting::One("a".into()));
    let err = Keymap::with_overrides(&overrides).unwrap_err();
    assert!(
        err.contains("'a'") && err.contains("quit") && err.contains("advance"),
        "{err}"
    );
    // Every command has a key by default.
    let k = Keymap::default();
    for c in Command::ALL {
        assert!(!k.keys(c).is_empty(), "{c:?} has no key");
    }
}

// ---------------------------------------------------------------- write outcomes

fn conflicted() -> (AppState, StoredRollout) {
    let mut s = detail("current");
    ch(&mut s, 'a');
    assert_eq!(ch(&mut s, 'y'), perform(&s, "current", Action::Advance));
    let before = current().stored;
    let mut fields = before.fields.clone();
    fields.insert("rolloutPercentage".into(), 5.into());
    fields.insert("status".into(), "progressive".into());
    fields.insert("currentStage".into(), 1.into());
    let now_doc = StoredRollout {
        id: "current".into(),
        revision: Revision("3".into()),
        fields,
        defect: None,
    };
    let effects = update(
        &mut s,
        Msg::Engine(EngineEvent::Written {
            id: "current".into(),
            action: Action::Advance,
            outcome: WriteOutcome::Conflict {
                changed: diff_fields(&before.fields, &now_doc.fields),
                current: now_doc.clone(),
                by: None,
            },
        }),
    );
    assert!(effects.is_empty());
    (s, now_doc)
}

#[test]
fn conflict_opens_a_dialog_and_r_asks_again_for_a_relative_advance() {
    let (mut s, now_doc) = conflicted();
    assert_eq!(s.pending_writes, 0);
    let Some(Dialog::Conflict {
        id,
        action,
        changed,
        ..
    }) = &s.dialog
    else {
        panic!("a conflict should open its dialog, got {}", dialog_kind(&s));
    };
    assert_eq!((id.as_str(), action), ("current", &Action::Advance));
    let fields: Vec<&str> = changed.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["currentStage", "rolloutPercentage", "status"]);
    // The screen shows the document as it is now.
    assert_eq!(s.entry("current").unwrap().stored, now_doc);
    // Other keys leave the dialog up.
    assert!(ch(&mut s, 'y').is_empty());
    assert_eq!(dialog_kind(&s), "conflict");
    // Advance is relative: redo asks again, showing the move it would make now
    // (someone else already went 0 % -> 5 %, so this one is 5 % -> 25 %). The 5 % stage's
    // minimum has not been served since, so asking again means asking for a reason.
    assert!(ch(&mut s, 'r').is_empty());
    let Some(Dialog::Override {
        title,
        body,
        action,
        risks,
        ..
    }) = &s.dialog
    else {
        panic!(
            "redo of an advance should ask again, got {}",
            dialog_kind(&s)
        );
    };
    assert_eq!(
        (title.as_str(), action),
        ("OVERRIDE: Advance current?", &Action::Advance)
    );
    assert!(risks[0].ends_with("of bake time skipped"), "{risks:?}");
    let risks = risks.clone();
    assert!(
        body[0].contains("(5%)") && body[1].contains("(25%)"),
        "{body:?}"
    );
    assert_eq!(s.pending_writes, 0);
    type_text(&mut s, "second opinion");
    let gate_report = s
        .entry("current")
        .unwrap()
        .health
        .report
        .as_ref()
        .map(|r| r.to_json());
    let expected = perform(
        &s,
        "current",
        Action::Overridden {
            action: Box::new(Action::Advance),
            risks,
            reason: "second opinion".into(),
            gate_report,
        },
    );
    assert_eq!(press(&mut s, KeyCode::Enter), expected);
    assert_eq!(s.pending_writes, 1);
}

#[test]
fn conflict_redo_of_an_absolute_action_performs_it_again() {
    let (mut s, _) = conflicted();
    let Some(Dialog::Conflict {
        id, changed, by, ..
    }) = s.dialog.clone()
    else {
        panic!("conflict dialog")
    };
    let action = Action::SetPercent("50".parse().unwrap());
    s.dialog = Some(Dialog::Conflict {
        id,
        action: action.clone(),
        changed,
        by,
    });
    assert_eq!(ch(&mut s, 'r'), perform(&s, "current", action));
    assert!(s.dialog.is_none());
    assert_eq!(s.pending_writes, 1);
}

#[test]
fn conflict_esc_dismisses() {
    let (mut s, _) = conflicted();
    assert!(press(&mut s, KeyCode::Esc).is_empty());
    assert!(s.dialog.is_none());
}

#[test]
fn failed_write_shows_an_error_toast_that_expires() {
    let mut s = detail("current");
    ch(&mut s, 'R');
    type_text(&mut s, "bad");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.pending_writes, 1);
    let effects = update(
        &mut s,
        Msg::Engine(EngineEvent::Written {
            id: "current".into(),
            action: Action::Rollback {
                reason: "bad".into(),
            },
            outcome: WriteOutcome::Failed("store unavailable: disk I/O error".into()),
        }),
    );
    assert!(effects.is_empty());
    assert_eq!(s.pending_writes, 0);
    let toast = s.toast.clone().expect("a toast");
    assert_eq!(toast.level, ToastLevel::Error);
    assert_eq!(
        toast.text,
        "current: rollback FAILED: store unavailable: disk I/O error"
    );
    assert!(screen(&s, 200, 60).contains("✖ current: rollback FAILED"));
    tick(&mut s, t0() + chrono::Duration::seconds(7));
    assert!(s.toast.is_some());
    tick(&mut s, t0() + chrono::Duration::seconds(8));
    assert!(s.toast.is_none(), "toasts expire after 8 s");
}

#[test]
fn done_write_updates_the_rollout_toasts_and_reloads_events() {
    let mut s = detail("current");
    set_percent(&mut s, "5");
    let mut after = current().stored;
    after.fields.insert("rolloutPercentage".into(), 5.into());
    after.revision = Revision("3".into());
    let effects = update(
        &mut s,
        Msg::Engine(EngineEvent::Written {
            id: "current".into(),
            action: Action::SetPercent(pct("5")),
            outcome: WriteOutcome::Done {
                summary: "set to 5%".into(),
                stored: after,
                event: Box::new(current().events[0].clone()),
            },
        }),
    );
    assert_eq!(
        effects,
        vec![Effect::Engine(EngineCommand::LoadEvents("current".into()))]
    );
    assert_eq!(s.pending_writes, 0);
    let r = s.entry("current").unwrap().rollout.clone().unwrap();
    assert_eq!(r.percentage, pct("5"));
    let toast = s.toast.as_ref().unwrap();
    assert_eq!(
        (toast.level, toast.text.as_str()),
        (ToastLevel::Info, "current: set to 5%")
    );
}

#[test]
fn actions_on_a_malformed_document_are_refused_with_a_reason() {
    let mut s = demo_state();
    upsert(&mut s, malformed());
    open(&mut s, "billing-export");
    for c in ['a', 'p', '%', 'P'] {
        assert!(ch(&mut s, c).is_empty(), "{c}");
        assert!(
            s.dialog.is_none(),
            "{c} opened a dialog on a malformed document"
        );
        let t = s.toast.as_ref().expect("a toast says why");
        assert_eq!(t.level, ToastLevel::Error);
        assert!(t.text.contains("rolloutPercentage"), "{}", t.text);
    }
}

/// A finished rollout cannot advance, change percentage or be promoted: the key says why
/// at once instead of asking a question whose answer can only fail.
#[test]
fn actions_a_finished_rollout_refuses_are_refused_before_asking() {
    let mut s = detail("current");
    let mut done = current().stored;
    done.fields.insert("status".into(), "rolled-back".into());
    done.fields.insert("rollbackReason".into(), "errors".into());
    done.revision = Revision("9".into());
    upsert(&mut s, done);
    for c in ['a', '%', 'P'] {
        assert!(ch(&mut s, c).is_empty(), "{c}");
        assert_eq!(dialog_kind(&s), "none", "{c} asked anyway");
        let t = s.toast.as_ref().expect("a toast says why");
        assert_eq!(t.level, ToastLevel::Error);
        assert!(t.text.contains("rolled-back"), "{c}: {}", t.text);
    }
}

/// A refusal long enough to wrap still leaves the dialog's keys on screen at 80x24.
#[test]
fn a_wrapped_refusal_keeps_the_dialog_hint_visible() {
    let mut s = users_panel(detail("current"));
    ch(&mut s, 'i');
    type_text(&mut s, &format!("someone@{}", "x".repeat(60)));
    let text = screen(&s, 80, 24);
    assert!(text.contains("✖"), "the refusal is shown:\n{text}");
    assert!(text.contains("Enter: add   Esc: cancel"), "{text}");
}

#[test]
fn rollback_stays_reachable_on_a_malformed_document() {
    let mut s = demo_state();
    upsert(&mut s, malformed());
    open(&mut s, "billing-export");
    ch(&mut s, 'R');
    assert_eq!(dialog_kind(&s), "rollback");
    type_text(&mut s, "bad export");
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        perform(
            &s,
            "billing-export",
            Action::Rollback {
                reason: "bad export".into()
            }
        )
    );
    assert!(s.dialog.is_none());
}

// ---------------------------------------------------------------- live data

#[test]
fn store_disconnect_and_reconnect_toggle_the_banner() {
    let mut s = demo_state();
    assert_eq!(s.store_conn, Conn::Connected);
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Disconnected("gone".into()))),
    );
    assert_eq!(
        s.store_conn,
        Conn::Disconnected {
            since: t0(),
            why: "gone".into()
        }
    );
    assert!(screen(&s, 200, 60).contains("STORE DISCONNECTED"));
    // A second report keeps when the outage began.
    tick(&mut s, t0() + chrono::Duration::seconds(30));
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Disconnected(
            "still gone".into(),
        ))),
    );
    assert!(matches!(&s.store_conn, Conn::Disconnected { since, .. } if *since == t0()));
    assert!(screen(&s, 200, 60).contains("STORE DISCONNECTED 30s"));
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Reconnected)),
    );
    assert_eq!(s.store_conn, Conn::Connected);
    assert_eq!(s.store_seen_at, Some(t0() + chrono::Duration::seconds(30)));
    let text = screen(&s, 200, 60);
    assert!(!text.contains("DISCONNECTED"), "{text}");
    assert!(text.contains("● connected"), "{text}");
}

/// During a store outage the banner gives the age of the rollout documents, which
/// stop at the outage; metrics samples that keep arriving are not store data.
#[test]
fn store_outage_banner_ages_the_store_data() {
    let mut s = demo_state();
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Disconnected("gone".into()))),
    );
    let end = t0() + chrono::Duration::minutes(2);
    feed_samples(&mut s, "current", 8, end, healthy_sample);
    let text = screen(&s, 200, 60);
    let banner = text
        .lines()
        .find(|l| l.contains("STORE DISCONNECTED"))
        .expect("banner");
    assert!(
        banner.contains("data 2m00s old"),
        "the documents on screen are 2 minutes old: {banner}"
    );
}

/// A store that went silent notices only after a while; the data was already that
/// old when it said so.
#[test]
fn a_silent_store_ages_the_data_from_its_last_word() {
    let mut s = demo_state();
    let why =
        "no word from the store for 20 s (the Firestore emulator at 127.0.0.1:1 stopped answering)";
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Disconnected(why.into()))),
    );
    assert!(
        matches!(&s.store_conn, Conn::Disconnected { since, .. } if *since == t0() - chrono::Duration::seconds(20))
    );
    tick(&mut s, t0() + chrono::Duration::seconds(5));
    let text = screen(&s, 200, 60);
    let banner = text
        .lines()
        .find(|l| l.contains("STORE DISCONNECTED"))
        .expect("banner");
    assert!(
        banner.contains("data 25s old") && banner.contains("no word from the store for 20 s"),
        "{banner}"
    );
}

#[test]
fn live_upsert_reloads_events_of_the_open_rollout_only() {
    let mut s = detail("current");
    let mut changed = current().stored;
    changed.fields.insert("rolloutPercentage".into(), 7.into());
    changed.revision = Revision("5".into());
    assert_eq!(
        upsert(&mut s, changed),
        vec![Effect::Engine(EngineCommand::LoadEvents("current".into()))]
    );
    assert_eq!(
        s.entry("current")
            .unwrap()
            .rollout
            .as_ref()
            .unwrap()
            .percentage,
        pct("7")
    );
    assert!(upsert(&mut s, ocr_fallback().stored).is_empty());
    press(&mut s, KeyCode::Esc);
    let mut again = current().stored;
    again.revision = Revision("6".into());
    assert!(
        upsert(&mut s, again).is_empty(),
        "no events to load on the overview"
    );
}

#[test]
fn a_new_rollout_above_keeps_the_cursor_on_the_same_one() {
    let mut s = demo_state();
    select(&mut s, "ocr-fallback");
    let b = Spec::new(
        "aaa-first",
        rollout_tui::domain::rollout::PlanPreset::Canary,
        t0(),
    )
    .build();
    upsert(&mut s, b.stored);
    assert_eq!(s.selected_entry().unwrap().id(), "ocr-fallback");
}

#[test]
fn removed_while_open_goes_back_with_a_note() {
    let mut s = detail("search-ranking-v2");
    update(
        &mut s,
        Msg::Engine(EngineEvent::Store(StoreChange::Removed(
            "search-ranking-v2".into(),
        ))),
    );
    assert_eq!(s.screen, Screen::Overview);
    assert_eq!(s.rollouts.len(), 2);
    assert!(
        s.toast
            .as_ref()
            .unwrap()
            .text
            .contains("deleted by someone else")
    );
    assert!(s.selected < s.visible().len());
}

#[test]
fn history_is_bounded() {
    let mut s = demo_state();
    let end = t0() + chrono::Duration::hours(2);
    feed_samples(&mut s, "current", HISTORY_LEN * 3 + 7, end, healthy_sample);
    let h = &s.entry("current").unwrap().health;
    assert_eq!(h.history.len(), HISTORY_LEN);
    assert_eq!(h.history.back().unwrap().at, Some(end));
    assert_eq!(h.latest.as_ref().unwrap().taken_at, end);
}

#[test]
fn a_metrics_outage_keeps_the_last_good_sample() {
    let mut s = demo_state();
    let good_at = s
        .entry("current")
        .unwrap()
        .health
        .latest
        .as_ref()
        .unwrap()
        .taken_at;
    let later = t0() + chrono::Duration::seconds(60);
    tick(&mut s, later);
    let msg = health_msg(&s, "current", outage_sample(later));
    update(&mut s, msg);
    let h = &s.entry("current").unwrap().health;
    assert_eq!(h.last_good.as_ref().unwrap().taken_at, good_at);
    assert!(h.source_error().unwrap().contains("connection refused"));
    assert_eq!(
        h.verdict(),
        Some(rollout_tui::domain::health::Verdict::Inconclusive)
    );
    open(&mut s, "current");
    press(&mut s, KeyCode::Tab);
    let text = screen(&s, 200, 60);
    assert!(text.contains("LAST GOOD sample 1m00s ago"), "{text}");
    assert!(text.contains("METRICS UNAVAILABLE for current"), "{text}");
}

#[test]
fn without_any_good_sample_nothing_is_called_last_good() {
    let mut s = empty_state();
    add(&mut s, &current());
    let msg = health_msg(&s, "current", outage_sample(t0()));
    update(&mut s, msg);
    assert!(s.entry("current").unwrap().health.last_good.is_none());
    open(&mut s, "current");
    press(&mut s, KeyCode::Tab);
    let text = screen(&s, 200, 60);
    assert!(
        text.contains("NO GOOD SAMPLE YET") && text.contains("connection refused"),
        "{text}"
    );
    assert!(!text.contains("LAST GOOD"), "{text}");
}

#[test]
fn faults_are_injected_from_a_dialog_with_the_simulator_only() {
    let mut s = detail("current");
    assert!(ch(&mut s, '!').is_empty());
    assert!(s.dialog.is_none(), "no simulator, no fault dialog");
    assert!(s.toast.as_ref().unwrap().text.contains("traffic simulator"));

    s.simulated = true;
    ch(&mut s, '!');
    assert_eq!(dialog_kind(&s), "fault");
    assert!(screen(&s, 80, 24).contains("1  error spike"));
    assert!(ch(&mut s, 'z').is_empty(), "other keys keep it open");
    assert_eq!(
        ch(&mut s, '1'),
        vec![Effect::Engine(EngineCommand::Fault {
            id: "current".into(),
            fault: Some(Regression::ErrorSpike { error_rate: 0.2 })
        })]
    );
    assert!(s.dialog.is_none());
    press(&mut s, KeyCode::Tab);
    let text = screen(&s, 200, 60);
    assert!(
        text.contains("SIMULATED FAULT: error spike (20 % of requests fail)"),
        "{text}"
    );
    ch(&mut s, '!');
    assert_eq!(
        ch(&mut s, '0'),
        vec![Effect::Engine(EngineCommand::Fault {
            id: "current".into(),
            fault: None
        })]
    );
    assert!(!screen(&s, 200, 60).contains("SIMULATED FAULT"));
}

/// Backfilled history goes before the live points, never over them, and never past the
/// sparkline's length; it is not judged by the gates.
#[test]
fn history_backfills_the_sparklines_before_the_live_points() {
    let mut s = empty_state();
    add(&mut s, &current());
    feed_samples(&mut s, "current", 3, t0(), healthy_sample);
    let live: Vec<_> = s
        .entry("current")
        .unwrap()
        .health
        .history
        .iter()
        .map(|p| p.at)
        .collect();
    let report = s.entry("current").unwrap().health.report.clone();
    // 200 past samples, the newest overlapping the live ones.
    let past: Vec<_> = (0..200)
        .map(|i| healthy_sample(t0() - mins(200 - i), i as usize))
        .collect();
    update(
        &mut s,
        Msg::Engine(EngineEvent::History {
            id: "current".into(),
            samples: past,
        }),
    );
    let h = &s.entry("current").unwrap().health;
    assert_eq!(h.history.len(), rollout_tui::app::state::HISTORY_LEN);
    let times: Vec<_> = h.history.iter().map(|p| p.at.unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let tail: Vec<_> = h.history.iter().rev().take(3).rev().map(|p| p.at).collect();
    assert_eq!(tail, live, "the live points stay last");
    assert_eq!(h.report, report, "history is not judged");
}

/// At 80 columns a long store path keeps its useful end (the file name), not its start.
#[test]
fn the_status_line_keeps_the_end_of_a_long_store_path() {
    let mut s = demo_state();
    s.store_desc = format!(
        "sqlite {}/rollouts.db",
        "/home/operator/.local/share".repeat(3)
    );
    let text = screen(&s, 80, 24);
    let last = text.lines().last().unwrap();
    assert!(last.contains("● connected"), "{last}");
    assert!(last.trim_end().ends_with("rollouts.db"), "{last}");
    assert!(!last.contains("sqlite /home"), "{last}");
    let wide = screen(&s, 200, 60);
    assert!(
        wide.lines()
            .last()
            .unwrap()
            .trim_end()
            .ends_with("rollouts.db")
    );
}

#[test]
fn countdown_ticks_only_on_a_running_detail_view() {
    let mut s = demo_state_current_at_5();
    assert!(!s.countdown_visible(), "not on the overview");
    open(&mut s, "current");
    assert!(s.countdown_visible());
    assert!(screen(&s, 200, 60).contains("may advance in 6m00s"));
    tick(&mut s, t0() + chrono::Duration::seconds(61));
    assert!(screen(&s, 200, 60).contains("may advance in 4m59s"));
    tick(&mut s, t0() + chrono::Duration::minutes(7));
    assert!(screen(&s, 200, 60).contains("minimum time met"));
}

#[test]
fn the_fixture_has_200_rollouts_and_10000_users() {
    let s = big_state();
    assert_eq!(s.rollouts.len(), 200);
    assert_eq!(s.screen, Screen::Detail);
    assert_eq!(s.focus, Panel::Users);
    let e = s.selected_entry().unwrap();
    assert_eq!(e.id(), "huge-canary");
    assert_eq!(e.rollout.as_ref().unwrap().canary_users.len(), 10_000);
    let text = screen(&s, 200, 60);
    assert!(text.contains("Canary users (10000)"), "{text}");
}

#[test]
fn the_report_key_writes_the_open_rollouts_report_and_says_where() {
    let mut s = detail("current");
    assert_eq!(ch(&mut s, 'o'), vec![], "nowhere to write: nothing asked");
    assert_eq!(s.toast.as_ref().map(|t| t.level), Some(ToastLevel::Error));
    s.reports_dir = Some("/data/reports".into());
    let effects = ch(&mut s, 'o');
    assert_eq!(
        effects,
        vec![Effect::Engine(EngineCommand::WriteReport {
            id: "current".into(),
            dir: "/data/reports".into(),
        })]
    );
    update(
        &mut s,
        Msg::Engine(EngineEvent::ReportWritten {
            id: "current".into(),
            result: Ok(Written {
                path: "/data/reports/current-20260110-100000.svg".into(),
                warnings: vec![],
            }),
        }),
    );
    let toast = s.toast.clone().expect("a toast");
    assert_eq!(toast.level, ToastLevel::Info);
    assert_eq!(
        toast.text,
        "report of current written to /data/reports/current-20260110-100000.svg"
    );
    // Metrics that could not be read: written all the same, and said loudly.
    update(
        &mut s,
        Msg::Engine(EngineEvent::ReportWritten {
            id: "current".into(),
            result: Ok(Written {
                path: "/data/reports/current-20260110-100500.svg".into(),
                warnings: vec!["metrics 10:00–10:05: Prometheus did not answer".into()],
            }),
        }),
    );
    let toast = s.toast.clone().expect("a toast");
    assert_eq!(toast.level, ToastLevel::Error);
    assert!(
        toast
            .text
            .ends_with("with gaps: metrics 10:00–10:05: Prometheus did not answer"),
        "{}",
        toast.text
    );
    update(
        &mut s,
        Msg::Engine(EngineEvent::ReportWritten {
            id: "current".into(),
            result: Err("cannot write /data/reports/x.svg: Permission denied".into()),
        }),
    );
    let toast = s.toast.clone().expect("a toast");
    assert_eq!(toast.level, ToastLevel::Error);
    assert!(toast.text.contains("Permission denied"), "{}", toast.text);
}
