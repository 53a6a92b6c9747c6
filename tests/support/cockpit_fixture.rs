//! Deterministic cockpit states, built without IO: fixed times, rollouts made by
//! the real domain actions (`create` + `apply`), fed to the reducer as the store
//! and the engine would feed them (`EngineEvent::Store`, `EngineEvent::Health`,
//! `EngineEvent::Events`). Include with `#[path = "support/cockpit_fixture.rs"] mod cockpit_fixture;`.
#![allow(dead_code)]

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::{Value, json};

use rollout_tui::app::state::{AppState, Screen};
use rollout_tui::app::update::{Effect, Msg, update};
use rollout_tui::domain::actions::{self, Action, Context, NewRollout, UserList};
use rollout_tui::domain::event::Event;
use rollout_tui::domain::health::{HealthSample, SideStats};
use rollout_tui::domain::rollout::{Fields, Hashing, Plan, PlanPreset, Rollout};
#[allow(unused_imports)]
pub use rollout_tui::engine::{Command as EngineCommand, EngineEvent};
use rollout_tui::store::{Revision, StoreChange, StoredRollout};
use rollout_tui::ui::{Theme, render};

pub const ACTOR: &str = "tester";
pub const STORE_DESC: &str = "sqlite /srv/rollouts/rollouts.db";
pub const METRICS_DESC: &str = "prometheus http://127.0.0.1:9090";
/// The window every fixed sample covers.
pub const WINDOW: StdDuration = StdDuration::from_secs(60);
/// Samples arrive this often in the fixture's history.
pub const SAMPLE_EVERY_SECS: i64 = 15;

/// The fixed "now" of every fixture: 2026-03-01T09:00:00Z.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

pub fn mins(m: i64) -> Duration {
    Duration::minutes(m)
}

// ---------------------------------------------------------------- rollouts

/// A rollout as a store would hold it, plus the audit events its life produced
/// (newest first, like `list_events`).
#[derive(Debug, Clone)]
pub struct Built {
    pub stored: StoredRollout,
    pub events: Vec<Event>,
}

impl Built {
    pub fn rollout(&self) -> Rollout {
        self.stored.parse().expect("fixture rollouts parse")
    }
}

/// What a fixture rollout looks like; `steps` are applied in order after `create`.
pub struct Spec {
    pub id: String,
    pub version: String,
    pub stable_version: Option<String>,
    pub preset: PlanPreset,
    pub canary_users: Vec<String>,
    pub created: DateTime<Utc>,
    pub steps: Vec<(Action, DateTime<Utc>)>,
}

impl Spec {
    pub fn new(id: &str, preset: PlanPreset, created: DateTime<Utc>) -> Spec {
        Spec {
            id: id.to_string(),
            version: "1.0.1".into(),
            stable_version: Some("1.0.0".into()),
            preset,
            canary_users: vec![],
            created,
            steps: vec![],
        }
    }

    pub fn version(mut self, version: &str, stable: &str) -> Spec {
        self.version = version.into();
        self.stable_version = Some(stable.into());
        self
    }

    pub fn users(mut self, users: &[&str]) -> Spec {
        self.canary_users = users.iter().map(|u| u.to_string()).collect();
        self
    }

    pub fn step(mut self, action: Action, at: DateTime<Utc>) -> Spec {
        self.steps.push((action, at));
        self
    }

    pub fn build(&self) -> Built {
        let plan = Plan::preset(self.preset);
        let new = NewRollout {
            id: self.id.clone(),
            version: self.version.clone(),
            stable_version: self.stable_version.clone(),
            plan: plan.clone(),
            hashing: Hashing::FractionalV1,
            stable_revision: Some(format!("{}-00041-a1b", short(&self.id))),
            canary_revision: Some(format!("{}-00042-c3d", short(&self.id))),
            canary_users: self.canary_users.clone(),
            on_breach: None,
        };
        let (mut fields, event) =
            actions::create(&new, "alice", self.created).expect("fixture create");
        let mut events = vec![event];
        let mut revision = 1u64;
        for (action, at) in &self.steps {
            let rollout = Rollout::from_fields(&self.id, &fields).expect("fixture parse");
            let ctx = Context {
                actor: "alice",
                now: *at,
                default_plan: &plan,
                freeze_windows: &[],
            };
            let t = actions::apply(&rollout, &fields, action, ctx)
                .unwrap_or_else(|e| panic!("fixture step {action:?} on {}: {e}", self.id));
            t.patch.apply_to(&mut fields);
            events.push(t.event);
            revision += 1;
        }
        events.reverse();
        Built {
            stored: StoredRollout {
                id: self.id.clone(),
                revision: Revision(revision.to_string()),
                fields,
                defect: None,
            },
            events,
        }
    }
}

fn short(id: &str) -> String {
    id.split('-').next().unwrap_or(id).to_string()
}

/// `current`: the canary plan, stage 0 (canary users only, 0 %), two canary users and
/// one excluded, created 4 minutes before `t0` (as `demo` seeds it).
pub fn current() -> Built {
    Spec::new("current", PlanPreset::Canary, t0() - mins(4))
        .version("0.1.1", "0.1.0")
        .users(&["alec@getaifactory.com", "qa-team-1"])
        .step(
            Action::AddUsers {
                list: UserList::Excluded,
                keys: vec!["ci-bot".into()],
            },
            t0() - mins(4),
        )
        .build()
}

/// `search-ranking-v2`: the tiers plan, 1 % internal for 20 h of its 48 h minimum.
pub fn search_ranking() -> Built {
    Spec::new(
        "search-ranking-v2",
        PlanPreset::Tiers,
        t0() - Duration::hours(20),
    )
    .version("2.0.0", "1.9.4")
    .users(&["ana@example.com"])
    .build()
}

/// `ocr-fallback`: the cohorts plan, advanced to 'friendly' (5 %) 7 hours ago.
pub fn ocr_fallback() -> Built {
    Spec::new(
        "ocr-fallback",
        PlanPreset::Cohorts,
        t0() - Duration::hours(30),
    )
    .version("1.4.0", "1.3.2")
    .users(&["pilot-partner-7", "maria@example.org"])
    .step(
        Action::AddUsers {
            list: UserList::Excluded,
            keys: vec!["loadtest@example.com".into()],
        },
        t0() - Duration::hours(30),
    )
    .step(Action::Advance, t0() - Duration::hours(7))
    .build()
}

/// `current` some time later: 5 %, stage 2/5 entered 4 minutes before `t0`, with a
/// countdown (10 m minimum) on screen.
pub fn current_at_5() -> Built {
    Spec::new("current", PlanPreset::Canary, t0() - mins(40))
        .version("0.1.1", "0.1.0")
        .users(&["alec@getaifactory.com", "qa-team-1"])
        .step(
            Action::AddUsers {
                list: UserList::Excluded,
                keys: vec!["ci-bot".into()],
            },
            t0() - mins(39),
        )
        .step(
            Action::AddUsers {
                list: UserList::Canary,
                keys: vec!["beta-tester@example.com".into()],
            },
            t0() - mins(20),
        )
        .step(Action::Advance, t0() - mins(4))
        .build()
}

/// A document another tool broke: `rolloutPercentage` is text.
pub fn malformed() -> StoredRollout {
    let fields: Fields = match json!({
        "version": "3.0.0",
        "status": "progressive",
        "canaryUsers": [],
        "rolloutPercentage": "lots",
        "rolloutStrategy": "manual",
        "startedAt": "2026-02-28T12:00:00Z",
    }) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    StoredRollout {
        id: "billing-export".into(),
        revision: Revision("7".into()),
        fields,
        defect: None,
    }
}

// ---------------------------------------------------------------- health

fn side(requests: u64, errors: u64, p50: f64, p95: f64, p99: f64, at: DateTime<Utc>) -> SideStats {
    SideStats {
        requests,
        errors,
        p50_ms: Some(p50),
        p75_ms: Some((p50 + p95) / 2.0),
        p95_ms: Some(p95),
        p99_ms: Some(p99),
        newest_point_at: Some(at - Duration::seconds(5)),
    }
}

/// A small deterministic wobble (0..=7) so sparklines have shape.
fn wobble(i: usize) -> u64 {
    [0, 2, 5, 7, 4, 1, 3, 6, 2, 5][i % 10]
}

/// Both sides healthy: canary 0.17 %-ish errors vs stable 0.15 %, similar latency.
pub fn healthy_sample(at: DateTime<Utc>, i: usize) -> HealthSample {
    let w = wobble(i);
    HealthSample {
        taken_at: at,
        window: WINDOW,
        stable: Some(side(
            12_000 + 150 * w,
            18,
            41.0,
            120.0,
            180.0 + w as f64,
            at,
        )),
        canary: Some(side(
            1_200 + 40 * w,
            1 + w / 3,
            43.0,
            125.0,
            185.0 + 3.0 * w as f64,
            at,
        )),
        source_error: None,
        ingestion_delay: std::time::Duration::ZERO,
        stage: None,
    }
}

/// Canary error rate 2.10 % (42 of 2000) against stable 0.15 % (30 of 20000).
pub fn failing_sample(at: DateTime<Utc>, i: usize) -> HealthSample {
    let w = wobble(i);
    HealthSample {
        taken_at: at,
        window: WINDOW,
        stable: Some(side(20_000, 30, 40.0, 118.0, 175.0 + w as f64, at)),
        canary: Some(side(2_000, 42, 44.0, 140.0, 210.0 + 2.0 * w as f64, at)),
        source_error: None,
        ingestion_delay: std::time::Duration::ZERO,
        stage: None,
    }
}

/// Too little canary traffic to judge: 14 canary requests.
pub fn inconclusive_sample(at: DateTime<Utc>, i: usize) -> HealthSample {
    let w = wobble(i);
    HealthSample {
        taken_at: at,
        window: WINDOW,
        stable: Some(side(9_000 + 100 * w, 9 + w, 38.0, 110.0, 160.0, at)),
        canary: Some(side(14, 0, 40.0, 100.0, 150.0 + w as f64, at)),
        source_error: None,
        ingestion_delay: std::time::Duration::ZERO,
        stage: None,
    }
}

/// The metrics source is down: no sides, only why.
pub fn outage_sample(at: DateTime<Utc>) -> HealthSample {
    HealthSample {
        taken_at: at,
        window: WINDOW,
        stable: None,
        canary: None,
        source_error: Some("prometheus http://127.0.0.1:9090: connection refused".into()),
        ingestion_delay: std::time::Duration::ZERO,
        stage: None,
    }
}

/// Feeds `n` samples for `id`, one every `SAMPLE_EVERY_SECS`, the last one at `end`;
/// `make(at, i)` builds the i-th. The clock follows the samples (`Msg::Tick`) and is
/// left at `end`.
pub fn feed_samples(
    state: &mut AppState,
    id: &str,
    n: usize,
    end: DateTime<Utc>,
    make: impl Fn(DateTime<Utc>, usize) -> HealthSample,
) {
    for i in 0..n {
        let at = end - Duration::seconds(SAMPLE_EVERY_SECS * (n - 1 - i) as i64);
        tick(state, at);
        let msg = health_msg(state, id, make(at, i));
        update(state, msg);
    }
}

thread_local! {
    /// The engine's judges for this test (each test runs on its own thread).
    static JUDGES: rollout_tui::engine::judge::Judges = Default::default();
}

/// A sample as the engine sends it: judged by the rollout's one judge.
pub fn health_msg(state: &AppState, id: &str, sample: HealthSample) -> Msg {
    let report = match state.entry(id).and_then(|e| e.rollout.as_ref().ok()) {
        Some(r) => JUDGES.with(|j| j.judge(r, &sample, &state.gates)),
        None => rollout_tui::domain::health::evaluate(&sample, &state.gates, sample.taken_at),
    };
    Msg::Engine(EngineEvent::Health {
        id: id.into(),
        sample,
        report,
    })
}

// ---------------------------------------------------------------- states

/// An empty cockpit at `t0`, with a metrics source configured.
pub fn empty_state() -> AppState {
    let mut s = AppState::new(
        "rollout-tui",
        STORE_DESC.into(),
        Some(METRICS_DESC.into()),
        t0(),
    );
    s.actor = ACTOR.into();
    // The fixture's samples are windows without stage totals (as Prometheus gives): the
    // screens are drawn from the window gates' words.
    s.gates.judgment = rollout_tui::domain::health::Judgment::Window;
    s
}

pub fn tick(state: &mut AppState, now: DateTime<Utc>) {
    update(state, Msg::Tick(now));
}

pub fn upsert(state: &mut AppState, stored: StoredRollout) -> Vec<Effect> {
    update(
        state,
        Msg::Engine(EngineEvent::Store(StoreChange::Upserted(stored))),
    )
}

pub fn add(state: &mut AppState, built: &Built) {
    upsert(state, built.stored.clone());
    update(
        state,
        Msg::Engine(EngineEvent::Events {
            id: built.stored.id.clone(),
            result: Ok(built.events.clone()),
        }),
    );
}

/// The three demo rollouts at `t0`: `current` healthy, `search-ranking-v2` failing
/// (a breach for 3 of the 5 required minutes), `ocr-fallback` inconclusive. Every one
/// has 32 samples (8 minutes) of history; the clock ends at `t0`.
pub fn demo_state() -> AppState {
    let mut s = empty_state();
    for b in [current(), search_ranking(), ocr_fallback()] {
        add(&mut s, &b);
    }
    fill_demo_health(&mut s);
    tick(&mut s, t0());
    s
}

fn fill_demo_health(s: &mut AppState) {
    feed_samples(s, "current", 32, t0(), healthy_sample);
    // Healthy for 5 minutes, then failing for the last 3.
    feed_samples(s, "search-ranking-v2", 32, t0(), |at, i| {
        if at < t0() - mins(3) {
            healthy_sample(at, i)
        } else {
            failing_sample(at, i)
        }
    });
    feed_samples(s, "ocr-fallback", 32, t0(), inconclusive_sample);
}

/// Like `demo_state`, with `current` at 5 % and a countdown running.
pub fn demo_state_current_at_5() -> AppState {
    let mut s = empty_state();
    for b in [current_at_5(), search_ranking(), ocr_fallback()] {
        add(&mut s, &b);
    }
    fill_demo_health(&mut s);
    tick(&mut s, t0());
    s
}

/// Selects `id` on the overview (through the reducer's own cursor keys).
pub fn select(state: &mut AppState, id: &str) {
    if state.screen == Screen::Detail {
        press(state, KeyCode::Esc);
    }
    let pos = state
        .visible()
        .iter()
        .position(|&i| state.rollouts[i].id() == id)
        .unwrap_or_else(|| panic!("{id} is not visible"));
    while state.selected > pos {
        press(state, KeyCode::Up);
    }
    while state.selected < pos {
        press(state, KeyCode::Down);
    }
    assert_eq!(
        state.selected_entry().map(|e| e.id().to_string()),
        Some(id.to_string())
    );
}

/// Opens `id`'s detail view with Enter, as an operator would.
pub fn open(state: &mut AppState, id: &str) -> Vec<Effect> {
    select(state, id);
    press(state, KeyCode::Enter)
}

// ---------------------------------------------------------------- keys

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn press(state: &mut AppState, code: KeyCode) -> Vec<Effect> {
    update(state, Msg::Key(key(code)))
}

pub fn ch(state: &mut AppState, c: char) -> Vec<Effect> {
    press(state, KeyCode::Char(c))
}

/// Types `text` one character at a time; returns every effect produced.
pub fn type_text(state: &mut AppState, text: &str) -> Vec<Effect> {
    text.chars().flat_map(|c| ch(state, c)).collect()
}

// ---------------------------------------------------------------- big data

/// 200 rollouts (mixed plans, stages, health) plus `huge-canary` with 10,000 canary
/// users, open in the detail view on its users panel. For render benchmarks.
pub fn big_state() -> AppState {
    let mut s = empty_state();
    let presets = [PlanPreset::Canary, PlanPreset::Tiers, PlanPreset::Cohorts];
    for n in 0..199 {
        let preset = presets[n % 3];
        let created = t0() - Duration::hours(50) + Duration::minutes(n as i64);
        let mut spec = Spec::new(&format!("svc-{n:03}"), preset, created)
            .users(&["alec@getaifactory.com", "qa-team-1"]);
        for k in 0..(n % 3) {
            spec = spec.step(Action::Advance, created + Duration::hours(k as i64 * 2 + 1));
        }
        let b = spec.build();
        add(&mut s, &b);
    }
    let huge = huge_canary();
    add(&mut s, &huge);
    for (n, id) in s
        .rollouts
        .iter()
        .map(|e| e.id().to_string())
        .collect::<Vec<_>>()
        .into_iter()
        .enumerate()
    {
        let make = match n % 3 {
            0 => healthy_sample,
            1 => failing_sample,
            _ => inconclusive_sample,
        };
        feed_samples(&mut s, &id, 40, t0(), make);
    }
    tick(&mut s, t0());
    open(&mut s, "huge-canary");
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::Tab);
    s
}

/// A rollout with 10,000 canary users (`user-00000@example.com` ...). Created with
/// no users; the list is then written into the document directly, as a bulk import
/// by another tool would (adding them one by one through the actions is quadratic).
pub fn huge_canary() -> Built {
    let mut b = Spec::new("huge-canary", PlanPreset::Canary, t0() - Duration::hours(2))
        .step(Action::Advance, t0() - mins(30))
        .build();
    let users: Vec<Value> = (0..10_000)
        .map(|i| Value::from(format!("user-{i:05}@example.com")))
        .collect();
    b.stored
        .fields
        .insert("canaryUsers".into(), Value::Array(users));
    assert_eq!(b.rollout().canary_users.len(), 10_000);
    b
}

// ---------------------------------------------------------------- drawing

/// `state` drawn into a fresh test terminal, with the 16 colours or none.
pub fn draw(state: &AppState, width: u16, height: u16, color: bool) -> ratatui::buffer::Buffer {
    draw_with(state, width, height, Theme::with_color(color))
}

/// `state` drawn into a fresh test terminal with `theme` (ASCII, a colour depth).
pub fn draw_with(
    state: &AppState,
    width: u16,
    height: u16,
    theme: Theme,
) -> ratatui::buffer::Buffer {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = ratatui::Terminal::new(backend).expect("test terminal");
    terminal.draw(|f| render(state, theme, f)).expect("draw");
    terminal.backend().buffer().clone()
}

/// The screen without colour, as text.
pub fn screen(state: &AppState, width: u16, height: u16) -> String {
    screen_text(&draw(state, width, height, false))
}

/// The cells of one row as text; the cells a wide character covers are skipped.
pub fn row_text(buf: &ratatui::buffer::Buffer, y: u16) -> String {
    let mut out = String::new();
    let mut skip = 0usize;
    for x in 0..buf.area.width {
        let sym = buf[(x, y)].symbol();
        if skip == 0 {
            out.push_str(sym);
        }
        skip = skip
            .max(ratatui::text::Span::raw(sym).width())
            .saturating_sub(1);
    }
    out
}

/// The screen as text, one line per row, trailing blanks trimmed.
pub fn screen_text(buf: &ratatui::buffer::Buffer) -> String {
    (0..buf.area.height)
        .map(|y| row_text(buf, y).trim_end().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
