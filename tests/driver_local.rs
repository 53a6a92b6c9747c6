//! Auto-progression scenarios on the embedded store (see `support/driver_rig.rs`).

#[path = "support/driver_rig.rs"]
mod driver_rig;

use std::sync::Arc;

use rollout_tui::domain::rollout::Status;
use rollout_tui::store::RolloutStore;
use rollout_tui::store::local::LocalStore;

fn store() -> (tempfile::TempDir, Arc<dyn RolloutStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("rollouts.db")).unwrap();
    (dir, Arc::new(store))
}

#[tokio::test]
async fn healthy_canary_reaches_full() {
    let (_d, s) = store();
    driver_rig::healthy_canary_reaches_full(s).await;
}

#[tokio::test]
async fn error_spike_at_25_halts() {
    let (_d, s) = store();
    driver_rig::error_spike_at_25(s, 0.03, Status::Paused).await;
}

#[tokio::test]
async fn severe_error_spike_at_25_rolls_back() {
    let (_d, s) = store();
    driver_rig::error_spike_at_25(s, 0.2, Status::RolledBack).await;
}

#[tokio::test]
async fn latency_regression_halts() {
    let (_d, s) = store();
    driver_rig::latency_regression_halts(s).await;
}

#[tokio::test]
async fn breach_seen_before_auto_carries_over() {
    let (_d, s) = store();
    driver_rig::breach_seen_before_auto_carries_over(s).await;
}

#[tokio::test]
async fn zero_canary_traffic_never_advances() {
    let (_d, s) = store();
    driver_rig::zero_canary_traffic_never_advances(s).await;
}

#[tokio::test]
async fn killed_driver_is_taken_over() {
    let (_d, s) = store();
    driver_rig::killed_driver_is_taken_over(s).await;
}

#[tokio::test]
async fn declined_confirmation_holds() {
    let (_d, s) = store();
    driver_rig::declined_confirmation_holds(s).await;
}

#[tokio::test]
async fn operator_advance_during_a_sample_is_not_doubled() {
    let (_d, s) = store();
    driver_rig::operator_advance_during_a_sample_is_not_doubled(s).await;
}

#[tokio::test]
async fn severe_spike_without_auto_rollback_pauses_and_proposes_once() {
    let (_d, s) = store();
    driver_rig::severe_spike_without_auto_rollback_pauses_and_proposes_once(s).await;
}

/// A driver that samples once a minute holds its lease across the gap between ticks.
#[tokio::test]
async fn a_slow_refresh_gets_a_lease_that_outlasts_two_ticks() {
    let (_d, s) = store();
    let rig = driver_rig::Rig::new(s.clone());
    rig.create_at_five_percent().await;
    let policy = driver_rig::policy(rollout_tui::domain::progression::ConfirmPolicy::Never);
    let mut d = rig
        .driver("cockpit-a", policy.clone())
        .ticking_every(std::time::Duration::from_secs(60));
    assert_eq!(d.lease_ttl(), std::time::Duration::from_secs(120));
    d.tick(rig.now).await;
    let lease = s.get_lease(driver_rig::ID).await.unwrap().unwrap();
    assert_eq!(lease.expires_at - rig.now, chrono::Duration::seconds(120));
    // The default refresh keeps the 30 s lease.
    let fast = rig
        .driver("cockpit-b", policy)
        .ticking_every(std::time::Duration::from_secs(15));
    assert_eq!(fast.lease_ttl(), rollout_tui::engine::driver::LEASE_TTL);
}

#[tokio::test]
async fn a_driver_without_store_or_metrics_stops_acting() {
    let (_d, s) = store();
    driver_rig::a_driver_without_store_or_metrics_stops_acting(s).await;
}

/// `--auto` with a mistyped id: the driver says so and keeps no lease for it.
#[tokio::test]
async fn a_driver_for_a_missing_rollout_holds_no_lease() {
    let (_d, s) = store();
    let rig = driver_rig::Rig::new(s.clone());
    let mut d = rollout_tui::engine::driver::Driver::new(
        s.clone(),
        rig.sim.clone(),
        "no-such-rollout",
        "cockpit-a",
        driver_rig::policy(rollout_tui::domain::progression::ConfirmPolicy::Never),
        rollout_tui::domain::health::GateConfig::default(),
        rollout_tui::domain::rollout::Plan::preset(
            rollout_tui::domain::rollout::PlanPreset::Canary,
        ),
    );
    let t = d.tick(rig.now).await;
    assert!(
        matches!(&t.lease, rollout_tui::engine::driver::LeaseState::Unavailable(w) if w.contains("does not exist")),
        "{:?}",
        t.lease
    );
    assert!(s.get_lease("no-such-rollout").await.unwrap().is_none());
}

#[tokio::test]
async fn invalid_document_gates_are_never_acted_on() {
    let (_d, s) = store();
    driver_rig::invalid_document_gates_are_never_acted_on(s).await;
}

#[tokio::test]
async fn shadow_mode_records_and_changes_nothing() {
    let (_d, s) = store();
    driver_rig::shadow_mode_records_and_changes_nothing(s).await;
}

#[tokio::test]
async fn latency_regression_pauses_in_place_with_the_pause_policy() {
    let (_d, s) = store();
    driver_rig::latency_regression_pauses_in_place_with_the_pause_policy(s).await;
}

#[tokio::test]
async fn latency_regression_rolls_back_with_the_rollback_policy() {
    let (_d, s) = store();
    driver_rig::latency_regression_rolls_back_with_the_rollback_policy(s).await;
}
