//! Guard rails that match the risk: confirmations that follow the document, conflict
//! dialogs that say who and never offer a redo that cannot apply, a hint line that follows
//! the rollout, feedback on unknown keys, a pause reason, several users at once, and the
//! `w` which-side lookup. Driven through the reducer as the runtime drives it.

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use chrono::{DateTime, Utc};
use cockpit_fixture::*;
use crossterm::event::KeyCode;
use rollout_tui::app::state::{AppState, Dialog, Panel, Screen, ToastLevel};
use rollout_tui::app::update::{Effect, Msg, input_problem, update};
use rollout_tui::domain::actions::{self, Action, Context, UserList};
use rollout_tui::domain::assign;
use rollout_tui::domain::event::Event;
use rollout_tui::engine::WriteOutcome;
use rollout_tui::ops::diff_fields;
use rollout_tui::store::{Revision, StoredRollout};

/// The hint line: the last-but-one row at 80x24.
fn hints(state: &AppState) -> String {
    screen(state, 80, 24)
        .lines()
        .nth(22)
        .unwrap_or("")
        .to_string()
}

fn detail(id: &str) -> AppState {
    let mut s = demo_state();
    open(&mut s, id);
    s
}

/// `id` as another operator (`bob`) leaves it after `action`: the stored document one
/// revision on, and the audit event the change wrote.
fn changed_by_bob(
    s: &AppState,
    id: &str,
    action: Action,
    at: DateTime<Utc>,
) -> (StoredRollout, Event) {
    let stored = s.entry(id).unwrap().stored.clone();
    let r = stored.parse().unwrap();
    let ctx = Context {
        actor: "bob",
        now: at,
        default_plan: &s.default_plan,
        freeze_windows: &[],
    };
    let t = actions::apply(&r, &stored.fields, &action, ctx).unwrap();
    let mut fields = stored.fields.clone();
    t.patch.apply_to(&mut fields);
    let revision: u64 = stored.revision.0.parse().unwrap();
    (
        StoredRollout {
            id: id.into(),
            revision: Revision((revision + 1).to_string()),
            fields,
            defect: None,
        },
        t.event,
    )
}

fn body(s: &AppState) -> Vec<String> {
    match &s.dialog {
        Some(Dialog::Confirm { body, .. }) => body.clone(),
        other => panic!("a confirmation should be open, got {other:?}"),
    }
}

fn stages(s: &AppState, id: &str) -> usize {
    let r = s.entry(id).unwrap().rollout.clone().unwrap();
    r.plan
        .unwrap_or_else(|| s.default_plan.clone())
        .stages
        .len()
}

// ---------------------------------------------------------------- 1. refresh

#[test]
fn an_open_confirmation_follows_the_document_and_says_so() {
    let mut s = detail("current");
    ch(&mut s, 'a');
    let before = body(&s);
    assert!(!s.dialog_refreshed);

    // Bob adds a canary user meanwhile: the same move, asked about his revision.
    let (with_user, _) = changed_by_bob(
        &s,
        "current",
        Action::AddUsers {
            list: UserList::Canary,
            keys: vec!["new@example.com".into()],
        },
        t0(),
    );
    upsert(&mut s, with_user.clone());
    assert_eq!(body(&s), before);
    assert!(s.dialog_refreshed);
    assert_eq!(s.dialog_seen.as_ref(), Some(&with_user));
    let text = screen(&s, 80, 24);
    assert!(
        text.contains("the rollout changed while this was open"),
        "{text}"
    );
    insta::assert_snapshot!("refreshed_confirm_80x24", text);

    // Confirming now writes against the revision the operator was shown.
    let effects = press(&mut s, KeyCode::Enter);
    let [Effect::Engine(EngineCommand::Perform { seen, action, .. })] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!((**seen == with_user, action), (true, &Action::Advance));
}

#[test]
fn an_open_advance_is_rebuilt_for_the_stage_it_would_now_leave() {
    let mut s = detail("current");
    ch(&mut s, 'a');
    let n = stages(&s, "current");
    assert!(
        body(&s)[0].contains(&format!("stage 1/{n}")),
        "{:?}",
        body(&s)
    );

    // Bob advances first: the question is now about leaving stage 2, whose bake time has
    // not been served, so it becomes the override question.
    let (advanced, _) = changed_by_bob(&s, "current", Action::Advance, t0());
    upsert(&mut s, advanced.clone());
    let Some(Dialog::Override { body, risks, .. }) = &s.dialog else {
        panic!("the rebuilt question is an override, got {:?}", s.dialog);
    };
    assert!(body[0].contains(&format!("from stage 2/{n}")), "{body:?}");
    assert!(risks.iter().any(|r| r.contains("bake time")), "{risks:?}");
    assert!(s.dialog_refreshed);
    assert_eq!(s.dialog_seen.as_ref(), Some(&advanced));
    type_text(&mut s, "hotfix");
    let effects = press(&mut s, KeyCode::Enter);
    let [Effect::Engine(EngineCommand::Perform { seen, .. })] = effects.as_slice() else {
        panic!("{effects:?}");
    };
    assert_eq!(**seen, advanced);
}

#[test]
fn an_open_confirmation_closes_with_the_reason_when_the_move_no_longer_applies() {
    let mut s = detail("current");
    ch(&mut s, 'a');
    let (rolled_back, _) = changed_by_bob(
        &s,
        "current",
        Action::Rollback {
            reason: "errors".into(),
        },
        t0(),
    );
    upsert(&mut s, rolled_back);
    assert!(s.dialog.is_none(), "the advance question closed");
    let t = s.toast.as_ref().expect("a message says why");
    assert_eq!(t.level, ToastLevel::Error);
    assert!(t.text.contains("now rolled back"), "{}", t.text);
    assert!(t.text.contains("nothing was done"), "{}", t.text);
}

#[test]
fn a_change_to_another_rollout_leaves_the_dialog_alone() {
    let mut s = detail("current");
    ch(&mut s, 'a');
    let before = body(&s);
    let (other, _) = changed_by_bob(&s, "ocr-fallback", Action::Pause { reason: None }, t0());
    upsert(&mut s, other);
    assert_eq!(body(&s), before);
    assert!(!s.dialog_refreshed);
}

#[test]
fn what_was_typed_survives_a_refresh_and_a_percent_input_closes_on_rollback() {
    let mut s = detail("current");
    ch(&mut s, 'P');
    type_text(&mut s, "curr");
    let (with_user, _) = changed_by_bob(
        &s,
        "current",
        Action::AddUsers {
            list: UserList::Canary,
            keys: vec!["new@example.com".into()],
        },
        t0(),
    );
    upsert(&mut s, with_user);
    let Some(Dialog::TypedConfirm { input, .. }) = &s.dialog else {
        panic!("the promote question stays, got {:?}", s.dialog);
    };
    assert_eq!(input.value(), "curr");
    assert!(s.dialog_refreshed);
    press(&mut s, KeyCode::Esc);

    ch(&mut s, '%');
    assert!(matches!(s.dialog, Some(Dialog::SetPercent { .. })));
    assert!(!s.dialog_refreshed, "a new dialog starts unmarked");
    let (rolled_back, _) = changed_by_bob(
        &s,
        "current",
        Action::Rollback {
            reason: "errors".into(),
        },
        t0(),
    );
    upsert(&mut s, rolled_back);
    assert!(s.dialog.is_none());
    let t = s.toast.as_ref().expect("a message says why");
    assert!(t.text.contains("now rolled back"), "{}", t.text);
}

// ---------------------------------------------------------------- 2. conflicts

fn conflict(s: &mut AppState, action: Action, now_doc: StoredRollout, by: Option<Event>) {
    let before = s.entry("current").unwrap().stored.clone();
    update(
        s,
        Msg::Engine(EngineEvent::Written {
            id: "current".into(),
            action,
            outcome: WriteOutcome::Conflict {
                changed: diff_fields(&before.fields, &now_doc.fields),
                current: now_doc,
                by: by.map(Box::new),
            },
        }),
    );
}

#[test]
fn a_conflict_counts_stages_from_one_and_says_who() {
    let mut s = detail("current");
    let n = stages(&s, "current");
    let (advanced, event) = changed_by_bob(&s, "current", Action::Advance, t0());
    conflict(&mut s, Action::Advance, advanced, Some(event));
    let text = screen(&s, 80, 24);
    assert!(text.contains(&format!("stage 1/{n} -> 2/{n}")), "{text}");
    assert!(!text.contains("currentStage 0"), "{text}");
    assert!(text.contains("Changed by bob (advance"), "{text}");
    assert!(text.contains("r: redo"), "{text}");
    insta::assert_snapshot!("conflict_80x24", text);
}

#[test]
fn a_conflict_without_an_audit_event_says_who_is_not_known() {
    let mut s = detail("current");
    let (advanced, _) = changed_by_bob(&s, "current", Action::Advance, t0());
    conflict(&mut s, Action::Advance, advanced, None);
    let text = screen(&s, 80, 24);
    assert!(text.contains("Who changed it is not known"), "{text}");
}

#[test]
fn a_conflict_after_a_rollback_offers_no_redo() {
    let mut s = detail("current");
    let (rolled_back, event) = changed_by_bob(
        &s,
        "current",
        Action::Rollback {
            reason: "errors".into(),
        },
        t0(),
    );
    conflict(&mut s, Action::Advance, rolled_back, Some(event));
    let text = screen(&s, 80, 24);
    assert!(
        text.contains("No redo: current is now rolled back."),
        "{text}"
    );
    assert!(!text.contains("r: redo"), "{text}");
    assert!(ch(&mut s, 'r').is_empty(), "r does nothing");
    assert!(matches!(s.dialog, Some(Dialog::Conflict { .. })));
    assert_eq!(s.pending_writes, 0);
    press(&mut s, KeyCode::Esc);
    assert!(s.dialog.is_none());
}

// ---------------------------------------------------------------- 3. hints, keys, pause

#[test]
fn the_hint_line_follows_the_rollout() {
    let mut s = detail("current");
    let running = hints(&s);
    assert!(running.contains("p pause"), "{running}");
    assert!(running.contains("a advance"), "{running}");
    assert!(running.ends_with("? help"), "{running}");

    let (paused, _) = changed_by_bob(&s, "current", Action::Pause { reason: None }, t0());
    upsert(&mut s, paused);
    let line = hints(&s);
    assert!(line.contains("p resume"), "{line}");
    assert!(!line.contains("p pause"), "{line}");
    assert!(line.ends_with("? help"), "{line}");

    let (done, _) = changed_by_bob(
        &s,
        "current",
        Action::Rollback {
            reason: "errors".into(),
        },
        t0(),
    );
    upsert(&mut s, done);
    let line = hints(&s);
    for gone in ["a advance", "% percent", "P promote", "p pause", "p resume"] {
        assert!(
            !line.contains(gone),
            "{gone} on a rolled-back rollout: {line}"
        );
    }
    assert!(line.ends_with("? help"), "{line}");

    // The overview's line follows the selected rollout too.
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.screen, Screen::Overview);
    let line = hints(&s);
    assert!(!line.contains("a advance"), "{line}");
    assert!(line.ends_with("? help"), "{line}");
    select(&mut s, "ocr-fallback");
    let line = hints(&s);
    assert!(line.contains("a advance"), "{line}");
    assert!(line.ends_with("? help"), "{line}");
}

#[test]
fn an_unknown_key_says_so_briefly() {
    let mut s = demo_state();
    assert!(ch(&mut s, 'z').is_empty());
    let t = s.toast.as_ref().expect("feedback");
    assert_eq!(t.text, "z: no such key here — ? for help");
    assert_eq!(t.level, ToastLevel::Info);
    assert!(s.dialog.is_none());

    // A users-panel key elsewhere says where it works.
    assert!(ch(&mut s, 'i').is_empty());
    let t = s.toast.as_ref().expect("feedback");
    assert_eq!(t.text, "i: works in the users panel (u opens it)");
    assert!(s.dialog.is_none());
}

#[test]
fn p_asks_for_a_reason_and_records_it_and_resume_stays_one_key() {
    let mut s = detail("current");
    ch(&mut s, 'p');
    assert!(matches!(s.dialog, Some(Dialog::Pause { .. })));
    type_text(&mut s, "waiting for the db migration");
    let effects = press(&mut s, KeyCode::Enter);
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Engine(EngineCommand::Perform { action: Action::Pause { reason: Some(r) }, .. })]
                if r == "waiting for the db migration"
        ),
        "{effects:?}"
    );

    let (paused, _) = changed_by_bob(&s, "current", Action::Pause { reason: None }, t0());
    upsert(&mut s, paused);
    let effects = ch(&mut s, 'p');
    assert!(
        matches!(
            effects.as_slice(),
            [Effect::Engine(EngineCommand::Perform {
                action: Action::Resume,
                ..
            })]
        ),
        "{effects:?}"
    );
    assert!(s.dialog.is_none());
}

#[test]
fn p_on_a_rolled_back_rollout_is_refused_without_asking() {
    let mut s = detail("current");
    let (done, _) = changed_by_bob(
        &s,
        "current",
        Action::Rollback {
            reason: "errors".into(),
        },
        t0(),
    );
    upsert(&mut s, done);
    assert!(ch(&mut s, 'p').is_empty());
    assert!(s.dialog.is_none());
    assert_eq!(s.toast.as_ref().map(|t| t.level), Some(ToastLevel::Error));
}

// ---------------------------------------------------------------- 4. several users

fn add_dialog() -> AppState {
    let mut s = detail("current");
    ch(&mut s, 'u');
    assert_eq!(s.focus, Panel::Users);
    ch(&mut s, 'i');
    assert!(matches!(s.dialog, Some(Dialog::AddUser { .. })));
    s
}

fn added(effects: &[Effect]) -> Vec<String> {
    match effects {
        [
            Effect::Engine(EngineCommand::Perform {
                action: Action::AddUsers { list, keys },
                ..
            }),
        ] => {
            assert_eq!(*list, UserList::Canary);
            keys.clone()
        }
        other => panic!("one AddUsers write expected, got {other:?}"),
    }
}

#[test]
fn several_users_typed_with_commas_and_spaces_are_one_write() {
    let mut s = add_dialog();
    type_text(&mut s, "ann@example.com, bo@example.com  user-7,");
    assert_eq!(input_problem(&s, s.dialog.as_ref().unwrap()), None);
    let keys = added(&press(&mut s, KeyCode::Enter));
    assert_eq!(keys, ["ann@example.com", "bo@example.com", "user-7"]);
}

#[test]
fn pasted_users_one_a_line_are_one_write() {
    let mut s = add_dialog();
    update(
        &mut s,
        Msg::Paste("ann@example.com\nbo@example.com\r\nuser-7\n".into()),
    );
    let keys = added(&press(&mut s, KeyCode::Enter));
    assert_eq!(keys, ["ann@example.com", "bo@example.com", "user-7"]);
}

#[test]
fn one_bad_key_among_several_is_named_and_nothing_is_written() {
    let mut s = add_dialog();
    type_text(&mut s, "ann@example.com, bad@@example.com, user-7");
    let problem = input_problem(&s, s.dialog.as_ref().unwrap()).expect("refused");
    assert!(problem.contains("bad@@example.com"), "{problem}");
    assert!(press(&mut s, KeyCode::Enter).is_empty());
    assert!(matches!(s.dialog, Some(Dialog::AddUser { .. })));

    // A key already listed is named too.
    let mut s = add_dialog();
    type_text(&mut s, "ann@example.com qa-team-1");
    let problem = input_problem(&s, s.dialog.as_ref().unwrap()).expect("refused");
    assert_eq!(problem, "qa-team-1 is already in this list");
}

// ---------------------------------------------------------------- 5. which side

fn which(s: &mut AppState, user: &str) -> Vec<String> {
    ch(s, 'w');
    assert!(
        matches!(s.dialog, Some(Dialog::Which { .. })),
        "w opens the lookup"
    );
    type_text(s, user);
    assert!(
        press(s, KeyCode::Enter).is_empty(),
        "a lookup writes nothing"
    );
    let Some(Dialog::Info { body, .. }) = &s.dialog else {
        panic!("the answer is shown, got {:?}", s.dialog);
    };
    let body = body.clone();
    press(s, KeyCode::Esc);
    assert!(s.dialog.is_none());
    body
}

#[test]
fn w_says_which_side_a_user_is_on_and_why() {
    let mut s = detail("current");
    let listed = which(&mut s, "alec@getaifactory.com");
    assert!(
        listed[0].contains("is on CANARY: canary user"),
        "{listed:?}"
    );
    let excluded = which(&mut s, "ci-bot");
    assert!(
        excluded[0].contains("is on stable: excluded user"),
        "{excluded:?}"
    );

    // Anyone else by bucket, with the same answer as the domain's assignment.
    let r = s.entry("current").unwrap().rollout.clone().unwrap();
    let a = assign::assign(&r, "someone@example.com").unwrap();
    let bucket = a.bucket().expect("decided by bucket");
    let lines = which(&mut s, "someone@example.com");
    let text = lines.join("\n");
    assert!(
        text.contains(&format!("bucket {bucket} of 10000")),
        "{text}"
    );
    assert!(
        text.contains("fractional-v1: bucket = (murmur3_x86_32"),
        "{text}"
    );
    assert!(text.contains("is on stable"), "{text}");
}
