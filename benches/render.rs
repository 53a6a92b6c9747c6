//! Rendering cost: the detail view at 200x60 with 10,000 canary users among 200
//! rollouts, and the overview. Prints p50/p99 of single renders after criterion.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rollout_tui::app::state::{AppState, Panel, Screen};
use rollout_tui::app::update::{Msg, update};
use rollout_tui::domain::actions::{self, NewRollout};
use rollout_tui::domain::health::{HealthSample, SideStats};
use rollout_tui::domain::rollout::{Hashing, Plan, PlanPreset};
use rollout_tui::engine::EngineEvent;
use rollout_tui::store::{Revision, StoreChange, StoredRollout};
use rollout_tui::ui::{Theme, render};

fn state() -> AppState {
    let now = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let mut state = AppState::new(
        "bench",
        "sqlite bench.db".into(),
        Some("simulator".into()),
        now,
    );
    for i in 0..200 {
        let users = if i == 0 { 10_000 } else { 3 };
        let new = NewRollout {
            id: format!("rollout-{i:03}"),
            version: "2.0.0".into(),
            stable_version: Some("1.9.0".into()),
            plan: Plan::preset(PlanPreset::Canary),
            hashing: Hashing::FractionalV1,
            stable_revision: Some("svc-1".into()),
            canary_revision: Some("svc-2".into()),
            canary_users: (0..users).map(|u| format!("user{u}@example.com")).collect(),
            on_breach: None,
        };
        let (fields, _) = actions::create(&new, "bench", now).unwrap();
        let stored = StoredRollout {
            id: new.id.clone(),
            revision: Revision("1".into()),
            fields,
            defect: None,
        };
        update(
            &mut state,
            Msg::Engine(EngineEvent::Store(StoreChange::Upserted(stored))),
        );
        for t in 0..120 {
            let side = |requests: u64, errors: u64, p99: f64| SideStats {
                requests,
                errors,
                p50_ms: Some(p99 / 3.0),
                p75_ms: Some(p99 / 2.0),
                p95_ms: Some(p99 * 0.8),
                p99_ms: Some(p99),
                newest_point_at: Some(now),
            };
            let sample = HealthSample {
                taken_at: now + chrono::Duration::seconds(t * 15),
                window: Duration::from_secs(300),
                stable: Some(side(20_000, 30 + t as u64 % 7, 240.0 + (t % 5) as f64)),
                canary: Some(side(1_000, 2 + t as u64 % 3, 250.0 + (t % 9) as f64)),
                source_error: None,
                ingestion_delay: std::time::Duration::ZERO,
                stage: None,
            };
            if i == 0 || t == 119 {
                let report =
                    rollout_tui::domain::health::evaluate(&sample, &state.gates, sample.taken_at);
                update(
                    &mut state,
                    Msg::Engine(EngineEvent::Health {
                        id: new.id.clone(),
                        sample,
                        report,
                    }),
                );
            }
        }
    }
    state.now = now + chrono::Duration::minutes(30);
    state
}

fn bench(c: &mut Criterion) {
    let theme = Theme::with_color(true);
    let mut detail = state();
    detail.screen = Screen::Detail;
    detail.focus = Panel::Users;
    detail.user_cursor = 5_000;
    let mut overview = state();
    overview.screen = Screen::Overview;
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    c.bench_function("render detail 200x60 (10k users, 200 rollouts)", |b| {
        b.iter(|| {
            terminal
                .draw(|f| render(black_box(&detail), theme, f))
                .unwrap();
        })
    });
    c.bench_function("render overview 200x60 (200 rollouts)", |b| {
        b.iter(|| {
            terminal
                .draw(|f| render(black_box(&overview), theme, f))
                .unwrap();
        })
    });
    let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap();
    c.bench_function("render detail 80x24 (10k users)", |b| {
        b.iter(|| {
            small
                .draw(|f| render(black_box(&detail), theme, f))
                .unwrap();
        })
    });

    // Criterion reports means; the issue asks for the p99 of a single render.
    let mut times: Vec<Duration> = (0..5_000)
        .map(|_| {
            let start = Instant::now();
            terminal.draw(|f| render(&detail, theme, f)).unwrap();
            start.elapsed()
        })
        .collect();
    times.sort();
    let q = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize];
    println!(
        "detail 200x60 single render over {} runs: p50 {:?}, p99 {:?}, max {:?}",
        times.len(),
        q(0.50),
        q(0.99),
        times[times.len() - 1]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
