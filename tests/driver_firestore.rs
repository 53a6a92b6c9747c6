//! The auto-progression scenarios of `driver_local.rs`, on the official Firestore
//! emulator (loud skip without it; a failure under `ROLLOUT_TUI_REQUIRE_EMULATOR=1`).

#[path = "support/driver_rig.rs"]
mod driver_rig;
mod support;

use std::sync::Arc;

use rollout_tui::domain::rollout::Status;
use rollout_tui::store::RolloutStore;
use support::emulator;

/// A fresh project on the shared emulator, or None (after the skip notice).
fn store(name: &str) -> Option<Arc<dyn RolloutStore>> {
    let e = emulator::shared()?;
    Some(Arc::new(e.store(&emulator::project(name))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_canary_reaches_full() {
    let Some(s) = store("drv-healthy") else {
        return;
    };
    driver_rig::healthy_canary_reaches_full(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_spike_at_25_halts() {
    let Some(s) = store("drv-spike") else { return };
    driver_rig::error_spike_at_25(s, 0.03, Status::Paused).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn severe_error_spike_at_25_rolls_back() {
    let Some(s) = store("drv-severe") else { return };
    driver_rig::error_spike_at_25(s, 0.2, Status::RolledBack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_regression_halts() {
    let Some(s) = store("drv-latency") else {
        return;
    };
    driver_rig::latency_regression_halts(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breach_seen_before_auto_carries_over() {
    let Some(s) = store("drv-carry") else { return };
    driver_rig::breach_seen_before_auto_carries_over(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_canary_traffic_never_advances() {
    let Some(s) = store("drv-zero") else { return };
    driver_rig::zero_canary_traffic_never_advances(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_driver_is_taken_over() {
    let Some(s) = store("drv-killed") else { return };
    driver_rig::killed_driver_is_taken_over(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declined_confirmation_holds() {
    let Some(s) = store("drv-declined") else {
        return;
    };
    driver_rig::declined_confirmation_holds(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_advance_during_a_sample_is_not_doubled() {
    let Some(s) = store("drv-raced") else {
        return;
    };
    driver_rig::operator_advance_during_a_sample_is_not_doubled(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn severe_spike_without_auto_rollback_pauses_and_proposes_once() {
    let Some(s) = store("drv-propose") else {
        return;
    };
    driver_rig::severe_spike_without_auto_rollback_pauses_and_proposes_once(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_without_store_or_metrics_stops_acting() {
    let Some(s) = store("drv-outage") else {
        return;
    };
    driver_rig::a_driver_without_store_or_metrics_stops_acting(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_document_gates_are_never_acted_on() {
    let Some(s) = store("drv-bad-gates") else {
        return;
    };
    driver_rig::invalid_document_gates_are_never_acted_on(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_records_and_changes_nothing() {
    let Some(s) = store("drv-shadow") else { return };
    driver_rig::shadow_mode_records_and_changes_nothing(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_regression_pauses_in_place_with_the_pause_policy() {
    let Some(s) = store("drv-pause-policy") else {
        return;
    };
    driver_rig::latency_regression_pauses_in_place_with_the_pause_policy(s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_regression_rolls_back_with_the_rollback_policy() {
    let Some(s) = store("drv-rollback-policy") else {
        return;
    };
    driver_rig::latency_regression_rolls_back_with_the_rollback_policy(s).await;
}
