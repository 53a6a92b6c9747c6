//! Auto-progression setting Cloud Run's split: the driver walks a healthy canary to 100 %
//! and rolls back a broken one, each move's PATCH checked against the loopback Admin API v2
//! stand-in; a move whose split Cloud Run refuses leaves the document where it was.

#[path = "support/cloud_run_standin.rs"]
mod cloud_run_standin;
#[path = "support/driver_rig.rs"]
#[allow(dead_code)]
mod driver_rig;
#[path = "support/http_fake.rs"]
mod http_fake;

use std::sync::Arc;
use std::time::Duration;

use cloud_run_standin::{CloudRunStandin, PROJECT, REGION, SERVICE, Target};
use driver_rig::{ID, Rig, policy};
use rollout_tui::actuator::{ActuatorConfig, Actuators};
use rollout_tui::domain::progression::ConfirmPolicy;
use rollout_tui::domain::rollout::Status;
use rollout_tui::metrics::simulator::Regression;
use rollout_tui::store::RolloutStore;
use rollout_tui::store::local::LocalStore;
use serde_json::{Value, json};

const STABLE: &str = "svc-00001-aaa";
const CANARY: &str = "svc-00002-bbb";

fn store() -> (tempfile::TempDir, Arc<dyn RolloutStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(&dir.path().join("rollouts.db")).unwrap();
    (dir, Arc::new(store))
}

/// The stand-in serving what the rig's rollout starts at (5 %), and the clients for it.
fn service() -> (CloudRunStandin, Actuators) {
    let standin = CloudRunStandin::start(STABLE, &[STABLE, CANARY]);
    standin.set_split(vec![
        Target::revision(STABLE, 95),
        Target::revision(CANARY, 5),
    ]);
    // Operations finish after a poll, as Cloud Run's do.
    standin.with(|s| s.op_polls = 1);
    let cfg: ActuatorConfig = toml::from_str(&format!(
        "kind = \"cloud-run\"\nproject_id = \"{PROJECT}\"\nregion = \"{REGION}\"\nservice = \"{SERVICE}\"\n\
         endpoint = \"{}\"\ncredentials = \"none\"\noperation_timeout = \"20s\"\n",
        standin.url()
    ))
    .unwrap();
    let actuators =
        Actuators::new(&cfg).polling(Duration::from_millis(10), Duration::from_millis(50));
    (standin, actuators)
}

fn patches(standin: &CloudRunStandin) -> Vec<Value> {
    standin
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["traffic"].clone())
        .collect()
}

fn target(rev: &str, percent: u32, tag: Option<&str>) -> Value {
    let mut t = json!({"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION", "revision": rev, "percent": percent});
    if let Some(tag) = tag {
        t["tag"] = json!(tag);
    }
    t
}

fn serving(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
    let mut v: Vec<_> = pairs.iter().map(|(r, p)| (r.to_string(), *p)).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_walks_the_split_to_100_and_every_patch_is_the_stage() {
    let (_d, s) = store();
    let (standin, actuators) = service();
    let mut rig = Rig::new(s);
    rig.create_at_five_percent().await;
    let mut d = rig
        .driver("cockpit-a", policy(ConfirmPolicy::Risky))
        .acting_on(actuators);
    rig.run(&mut d, 2_000, true, |r| r.status == Status::Complete)
        .await;
    assert_eq!(rig.rollout().await.status, Status::Complete);
    assert_eq!(
        patches(&standin),
        vec![
            json!([target(STABLE, 75, None), target(CANARY, 25, Some("canary"))]),
            json!([target(STABLE, 50, None), target(CANARY, 50, Some("canary"))]),
            json!([target(CANARY, 100, Some("canary"))]),
        ]
    );
    assert_eq!(standin.serving(), serving(&[(CANARY, 100)]));
    // Each automatic move's event names the split it confirmed, beside the gate report.
    let moves: Vec<_> = rig
        .events()
        .await
        .into_iter()
        .filter(|e| e.after.get("cloudRunTraffic").is_some())
        .collect();
    assert_eq!(moves.len(), 3);
    for e in &moves {
        assert!(e.actor.starts_with("auto:"), "{e:?}");
        assert!(e.gate_report.is_some(), "{e:?}");
        assert_eq!(e.after["cloudRunTraffic"]["confirmed"], json!(true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_severe_regression_rolls_the_split_back_to_stable() {
    let (_d, s) = store();
    let (standin, actuators) = service();
    let mut rig = Rig::new(s);
    rig.create_at_five_percent().await;
    let mut d = rig
        .driver("cockpit-a", policy(ConfirmPolicy::Never))
        .acting_on(actuators);
    rig.run(&mut d, 500, false, |r| r.percentage.as_f64() >= 25.0)
        .await;
    assert_eq!(standin.serving(), serving(&[(STABLE, 75), (CANARY, 25)]));
    rig.sim
        .inject(ID, Regression::ErrorSpike { error_rate: 0.5 });
    rig.run(&mut d, 200, false, |r| r.status.is_terminal())
        .await;
    assert_eq!(rig.rollout().await.status, Status::RolledBack);
    assert_eq!(
        patches(&standin).last().unwrap(),
        &json!([target(STABLE, 100, None)])
    );
    assert_eq!(standin.serving(), serving(&[(STABLE, 100)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_cloud_run_refuses_leaves_the_rollout_where_it_was() {
    let (_d, s) = store();
    let (standin, actuators) = service();
    standin.with(|s| s.forbid_updates = Some("Permission 'run.services.update' denied".into()));
    let mut rig = Rig::new(s);
    rig.create_at_five_percent().await;
    let mut d = rig
        .driver("cockpit-a", policy(ConfirmPolicy::Never))
        .acting_on(actuators);
    // Past the 5 % stage's 10 minutes: the driver wants 25 % and keeps being refused.
    let reports = rig.run(&mut d, 80, false, |_| false).await;
    let refused: Vec<_> = reports
        .iter()
        .filter_map(|t| t.acted.as_ref()?.as_ref().err())
        .collect();
    assert!(!refused.is_empty());
    assert!(
        refused
            .iter()
            .all(|e| e.contains("run.services.update") && e.contains("nothing was written")),
        "{refused:?}"
    );
    let r = rig.rollout().await;
    assert_eq!(r.percentage.as_f64(), 5.0);
    assert_eq!(standin.serving(), serving(&[(STABLE, 95), (CANARY, 5)]));
}
