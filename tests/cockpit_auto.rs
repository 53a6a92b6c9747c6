//! The cockpit's side of auto-progression: `A` starts and stops the driver, the
//! driver's questions become a prominent dialog with the evidence, answers go back
//! to the driver, and the stages panel says who drives and why the machine holds.

#[path = "support/cockpit_fixture.rs"]
mod cockpit_fixture;

use chrono::Duration;
use cockpit_fixture::*;
use crossterm::event::KeyCode;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rollout_tui::app::state::{AppState, Dialog, Panel};
use rollout_tui::app::update::{Effect, Msg, update};
use rollout_tui::domain::actions::Action;
use rollout_tui::domain::progression::{Because, Decision, NextStage};
use rollout_tui::domain::units::Percent;
use rollout_tui::engine::DriverUpdate;
use rollout_tui::engine::driver::{LeaseState, Step};
use rollout_tui::store::Lease;
use rollout_tui::ui::{Theme, render};

fn screen(state: &AppState, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| render(state, Theme::with_color(false), f))
        .unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| {
            (0..w)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn lease(holder: &str) -> Lease {
    Lease {
        rollout_id: "current".into(),
        holder: holder.into(),
        acquired_at: t0(),
        expires_at: t0() + Duration::seconds(30),
    }
}

fn next_stage() -> NextStage {
    NextStage {
        index: 2,
        name: "25%".into(),
        percent: Percent::from_hundredths(2_500).unwrap(),
        because: None,
    }
}

fn driver_msg(step: Step, decision: Decision) -> Msg {
    Msg::Engine(EngineEvent::Driver {
        id: "current".into(),
        update: DriverUpdate {
            lease: LeaseState::Held(lease("me@host#1")),
            decision,
            step,
            acted: None,
            evidence: vec!["✔ pass error-rate: canary error rate 0.08 % <= 1.00 %".into()],
        },
    })
}

fn driving() -> AppState {
    let mut s = demo_state_current_at_5();
    open(&mut s, "current");
    assert_eq!(
        ch(&mut s, 'A'),
        vec![Effect::Engine(EngineCommand::StartAuto("current".into()))]
    );
    s
}

#[test]
fn a_toggles_auto_progression() {
    let mut s = driving();
    assert!(s.entry("current").unwrap().auto.is_some());
    assert_eq!(
        ch(&mut s, 'A'),
        vec![Effect::Engine(EngineCommand::StopAuto("current".into()))]
    );
    assert!(s.entry("current").unwrap().auto.is_none());
}

#[test]
fn a_question_opens_the_dialog_and_y_answers_yes() {
    let mut s = driving();
    let effects = update(
        &mut s,
        driver_msg(
            Step::AskConfirmation(next_stage()),
            Decision::AwaitConfirmation(next_stage()),
        ),
    );
    assert!(effects.is_empty());
    assert!(matches!(&s.dialog, Some(Dialog::AutoConfirm { next, .. }) if next.index == 2));
    // The question is prominent and carries the evidence and the waiting time.
    tick(&mut s, t0() + Duration::seconds(75));
    let text = screen(&s, 80, 24);
    assert!(text.contains("AUTO-PROGRESSION"), "{text}");
    assert!(text.contains("Advance to stage 3 '25%' (25%)?"), "{text}");
    assert!(text.contains("waiting for you 1m15s"), "{text}");
    assert!(text.contains("canary error rate 0.08 %"), "{text}");
    insta::assert_snapshot!("auto_confirm_80x24", text);
    // Other keys leave it up; y answers yes to exactly that stage.
    assert!(ch(&mut s, 'a').is_empty());
    assert_eq!(
        ch(&mut s, 'y'),
        vec![Effect::Engine(EngineCommand::AutoAnswer {
            id: "current".into(),
            stage: 2,
            yes: true
        })]
    );
    assert!(s.dialog.is_none());
}

#[test]
fn n_or_esc_answers_no() {
    for key in [KeyCode::Char('n'), KeyCode::Esc] {
        let mut s = driving();
        update(
            &mut s,
            driver_msg(
                Step::AskConfirmation(next_stage()),
                Decision::AwaitConfirmation(next_stage()),
            ),
        );
        assert_eq!(
            press(&mut s, key),
            vec![Effect::Engine(EngineCommand::AutoAnswer {
                id: "current".into(),
                stage: 2,
                yes: false
            })]
        );
        assert!(s.dialog.is_none());
    }
}

#[test]
fn a_question_never_replaces_the_operators_dialog() {
    let mut s = driving();
    ch(&mut s, 'R');
    update(
        &mut s,
        driver_msg(
            Step::AskConfirmation(next_stage()),
            Decision::AwaitConfirmation(next_stage()),
        ),
    );
    assert!(
        matches!(s.dialog, Some(Dialog::Rollback { .. })),
        "the rollback dialog stays"
    );
}

#[test]
fn a_proposed_rollback_is_one_key_away() {
    let mut s = driving();
    let why = "canary error rate 8.00 % > 1.00 %, severe (>= 5.00 %)".to_string();
    update(
        &mut s,
        driver_msg(
            Step::ProposeRollback(why.clone()),
            Decision::Rollback(why.clone()),
        ),
    );
    let effects = ch(&mut s, 'y');
    let [
        Effect::Engine(EngineCommand::Perform {
            id,
            action: Action::Rollback { reason },
            ..
        }),
    ] = effects.as_slice()
    else {
        panic!("y performs the rollback, got {effects:?}");
    };
    assert_eq!(id, "current");
    assert!(reason.contains(&why), "{reason}");
}

#[test]
fn the_stages_panel_says_who_drives_and_why_it_holds() {
    let mut s = driving();
    let why = "waiting 4m12s more in stage".to_string();
    update(&mut s, driver_msg(Step::Nothing, Decision::Hold(why)));
    s.focus = Panel::Timeline;
    let text = screen(&s, 80, 24);
    assert!(
        text.contains("AUTO ● driving (lease until 09:00:30)"),
        "{text}"
    );
    assert!(
        text.contains("holding: waiting 4m12s more in stage"),
        "{text}"
    );
    // Another cockpit that does not drive sees the driver through the lease poll.
    let mut other = demo_state_current_at_5();
    open(&mut other, "current");
    update(
        &mut other,
        Msg::Engine(EngineEvent::Lease {
            id: "current".into(),
            lease: Some(lease("alice@bastion#42")),
        }),
    );
    let text = screen(&other, 80, 24);
    assert!(
        text.contains("auto: driven by alice@bastion#42 (lease until 09:00:30)"),
        "{text}"
    );
    assert!(text.contains("driver: alice@bastion#42"), "{text}");
    // An expired lease names nobody.
    tick(&mut other, t0() + Duration::seconds(31));
    let text = screen(&other, 80, 24);
    assert!(!text.contains("alice@bastion"), "{text}");
}

/// With every gate failing, their wrapped details fill the short 80x24 panel: who drives
/// and why the machine holds still show, because they come first.
#[test]
fn at_80x24_the_driver_lines_survive_long_gate_details() {
    let mut s = driving();
    feed_samples(&mut s, "current", 20, t0(), failing_sample);
    let why = "canary error rate 2.10 % > 1.00 % for 3m of 5m".to_string();
    update(&mut s, driver_msg(Step::Nothing, Decision::Hold(why)));
    s.focus = Panel::Timeline;
    let text = screen(&s, 80, 24);
    assert!(text.contains("✖ FAIL"), "the gates are shown too:\n{text}");
    assert!(text.contains("AUTO ● driving"), "{text}");
    assert!(
        text.contains("holding: canary error rate 2.10 % > 1.00 % for 3m of 5m"),
        "{text}"
    );
}

#[test]
fn an_unavailable_driver_is_switched_off_with_the_reason() {
    let mut s = driving();
    update(
        &mut s,
        Msg::Engine(EngineEvent::AutoUnavailable {
            id: "current".into(),
            why: "no metrics source is configured".into(),
        }),
    );
    assert!(s.entry("current").unwrap().auto.is_none());
    assert!(screen(&s, 80, 24).contains("auto-progression unavailable: no metrics source"));
}

/// Asked because the evidence stayed short, the operator has three answers: advance, keep
/// waiting, or roll back; r answers no (nothing widens meanwhile) and asks the rollback's
/// reason at once.
#[test]
fn a_question_on_thin_evidence_says_why_and_r_rolls_back() {
    let mut s = driving();
    let asked = NextStage {
        because: Some(Because::ThinEvidence(
            "still not enough evidence 30m00s past the stage's minimum time: advance anyway, keep waiting, or roll back?".into(),
        )),
        ..next_stage()
    };
    update(
        &mut s,
        driver_msg(
            Step::AskConfirmation(asked.clone()),
            Decision::AwaitConfirmation(asked),
        ),
    );
    let text = screen(&s, 80, 24);
    assert!(
        text.contains("AUTO-PROGRESSION: current asks you"),
        "{text}"
    );
    assert!(text.contains("still not enough evidence 30m00s"), "{text}");
    assert!(text.contains("r: roll back"), "{text}");
    assert_eq!(
        ch(&mut s, 'r'),
        vec![Effect::Engine(EngineCommand::AutoAnswer {
            id: "current".into(),
            stage: 2,
            yes: false
        })]
    );
    assert!(
        matches!(&s.dialog, Some(Dialog::Rollback { id, .. }) if id == "current"),
        "{:?}",
        s.dialog
    );
}

/// Quitting stops auto-progression, so it asks while a driver holds the lease and while
/// it is starting (its first tick may already act before it reports), not once another
/// cockpit drives.
#[test]
fn quitting_asks_while_auto_starts_or_drives() {
    let quit_dialog = |s: &AppState| match &s.dialog {
        Some(Dialog::Quit { driving }) => Some(driving.clone()),
        _ => None,
    };
    let mut s = driving();
    assert!(ch(&mut s, 'q').is_empty());
    assert_eq!(quit_dialog(&s), Some(vec!["current".to_string()]));
    press(&mut s, KeyCode::Esc);
    assert_eq!(quit_dialog(&s), None);

    let mut s = driving();
    update(
        &mut s,
        driver_msg(Step::Nothing, Decision::Hold("waiting".into())),
    );
    assert!(ch(&mut s, 'q').is_empty());
    assert_eq!(quit_dialog(&s), Some(vec!["current".to_string()]));

    let mut s = driving();
    update(
        &mut s,
        Msg::Engine(EngineEvent::Driver {
            id: "current".into(),
            update: DriverUpdate {
                lease: LeaseState::HeldByOther(lease("other@host#2")),
                decision: Decision::Hold("driven elsewhere".into()),
                step: Step::Nothing,
                acted: None,
                evidence: vec![],
            },
        }),
    );
    assert_eq!(ch(&mut s, 'q'), vec![Effect::Quit]);
}
