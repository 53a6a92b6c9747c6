//! Every write also sets Cloud Run's traffic split (`[actuator] kind = "cloud-run"`): traffic
//! first, then the document, the audit event naming both; a split that cannot be set leaves
//! the document as it was; a rollback is never blocked; `status` tells the truth after each
//! failure and `sync-traffic` puts the two back together. The real binary against the
//! loopback Admin API v2 stand-in.

#[path = "support/cli_harness.rs"]
mod cli_harness;
#[path = "support/cloud_run_standin.rs"]
mod cloud_run_standin;
#[path = "support/http_fake.rs"]
mod http_fake;

use cli_harness::{Cli, Ran};
use cloud_run_standin::{CloudRunStandin, Target, actuator_section, create_web};
use serde_json::{Value, json};

fn config(cli: &Cli, endpoint: &str) -> String {
    cli.write_file("actuator.toml", &actuator_section(endpoint, "20s"))
        .display()
        .to_string()
}

struct World {
    standin: CloudRunStandin,
    cli: Cli,
    config: String,
}

impl World {
    /// `web` at its first stage (0 %), svc-1 stable and serving everything, svc-2 canary.
    fn new(canary: &str) -> World {
        let standin = CloudRunStandin::start("svc-1", &["svc-1", "svc-2"]);
        let cli = Cli::new();
        let config = config(&cli, &standin.url());
        let world = World {
            standin,
            cli,
            config,
        };
        world.ok(&create_web(canary));
        world
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--config", self.config.as_str()];
        all.extend_from_slice(args);
        all
    }

    fn ok(&self, args: &[&str]) -> String {
        self.cli.ok(&self.args(args))
    }

    fn fail(&self, args: &[&str]) -> Ran {
        self.cli.fail(&self.args(args))
    }

    fn percent(&self) -> f64 {
        self.cli.rollout("web")["rolloutPercentage"]
            .as_f64()
            .unwrap()
    }

    fn cloud_run(&self) -> Value {
        let v = self.cli.json(&self.args(&["status", "web", "--json"]));
        v["rollouts"][0]["cloudRun"].clone()
    }

    /// The traffic lists of the PATCHes sent since the last call (dry runs aside).
    fn patches(&self, seen: &mut usize) -> Vec<Value> {
        let reqs = self.standin.requests();
        let new: Vec<Value> = reqs[*seen..]
            .iter()
            .filter(|r| r.method == "PATCH")
            .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["traffic"].clone())
            .collect();
        *seen = reqs.len();
        new
    }

    fn newest_event(&self) -> Value {
        self.cli.events("web").first().cloned().unwrap()
    }
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

#[test]
fn every_percentage_change_sets_the_split_before_the_document() {
    let w = World::new("svc-2");
    // Operations that finish after a few polls, as Cloud Run's do.
    w.standin.with(|s| s.op_polls = 2);
    let mut seen = 0;
    assert!(
        w.patches(&mut seen).is_empty(),
        "creating a rollout at 0 % changes no traffic"
    );

    // Advance through the canary plan to the end: one PATCH per stage, each body exactly the
    // two revision targets with the canary tag, then the split confirmed as served.
    let mut stages = 0;
    loop {
        let out = w.ok(&["advance", "web"]);
        stages += 1;
        let p = w.percent() as u32;
        let patches = w.patches(&mut seen);
        let mut expected = Vec::new();
        if p < 100 {
            expected.push(target("svc-1", 100 - p, None));
        }
        expected.push(target("svc-2", p, Some("canary")));
        assert_eq!(
            patches,
            vec![Value::Array(expected)],
            "stage {stages}: {out}"
        );
        let mut live = vec![("svc-2", p)];
        if p < 100 {
            live.push(("svc-1", 100 - p));
        }
        assert_eq!(w.standin.serving(), serving(&live), "{out}");
        assert!(out.contains("confirmed"), "{out}");
        // The audit event names the document change and the split.
        let event = w.newest_event();
        assert_eq!(event["after"]["rolloutPercentage"], json!(p), "{event}");
        let split = &event["after"]["cloudRunTraffic"];
        assert_eq!(split["canary"]["percent"], json!(p), "{event}");
        assert_eq!(split["confirmed"], json!(true), "{event}");
        assert!(split["calls"].as_u64().unwrap() >= 4, "{event}");
        if p == 100 {
            break;
        }
        assert!(stages < 10, "the plan never reached 100 %");
    }
    assert_eq!(w.cloud_run()["drift"], json!(false));

    // A rollback sets 100 % stable first, the canary left out of the list.
    let out = w.ok(&["rollback", "web", "--reason", "errors in checkout"]);
    assert_eq!(
        w.patches(&mut seen),
        vec![json!([target("svc-1", 100, None)])],
        "{out}"
    );
    assert_eq!(w.standin.serving(), serving(&[("svc-1", 100)]));
    assert_eq!(w.cli.rollout("web")["status"], json!("rolled-back"));
    let c = w.cloud_run();
    assert_eq!(c["drift"], json!(false), "{c}");
}

/// How the stand-in is made to refuse a change.
type Breakage = Box<dyn Fn(&mut cloud_run_standin::State)>;

#[test]
fn a_split_that_cannot_be_set_leaves_the_document_as_it_was() {
    let w = World::new("svc-2");
    w.ok(&["advance", "web"]);
    assert_eq!(w.percent(), 5.0);
    let mut seen = w.standin.requests().len();

    // Whole percents only: 12.5 % is refused before anything is sent.
    let ran = w.fail(&["set-percent", "web", "12.5"]);
    assert!(
        ran.stderr.contains("Cloud Run routes whole percents"),
        "{ran}"
    );
    assert!(w.patches(&mut seen).is_empty());

    let cases: Vec<(&str, Breakage, &str)> = vec![
        (
            "no permission",
            Box::new(|s| s.forbid_updates = Some("Permission 'run.services.update' denied".into())),
            "needs permission run.services.update",
        ),
        (
            "operation error",
            Box::new(|s| s.op_error = Some((13, "internal error while routing".into()))),
            "the traffic change failed",
        ),
        (
            "stale etag twice",
            Box::new(|s| s.stale_patches = 2),
            "etag stale twice",
        ),
    ];
    for (name, break_it, said) in cases {
        w.standin.with(|s| break_it(s));
        let ran = w.fail(&["advance", "web"]);
        assert!(ran.stderr.contains(said), "{name}: {ran}");
        assert!(ran.stderr.contains("nothing was written"), "{name}: {ran}");
        assert_eq!(w.percent(), 5.0, "{name}: the document must not move");
        assert_eq!(
            w.standin.serving(),
            serving(&[("svc-1", 95), ("svc-2", 5)]),
            "{name}"
        );
        let c = w.cloud_run();
        assert_eq!(c["drift"], json!(false), "{name}: {c}");
        w.standin.with(|s| {
            s.forbid_updates = None;
            s.op_error = None;
            s.stale_patches = 0;
        });
    }

    // An operation that finishes but the split never serves: not confirmed, and the split the
    // document describes is put back, so status shows no disagreement.
    w.standin.with(|s| s.serve_unchanged = true);
    let ran = w.fail(&["advance", "web"]);
    assert!(ran.stderr.contains("re-apply or roll back"), "{ran}");
    assert!(ran.stderr.contains("is served again"), "{ran}");
    assert_eq!(w.percent(), 5.0);
    w.standin.with(|s| s.serve_unchanged = false);
    assert_eq!(w.cloud_run()["drift"], json!(false));

    // Everything works again: the same advance goes through.
    w.ok(&["advance", "web"]);
    assert_eq!(w.percent(), 25.0);
    assert_eq!(
        w.standin.serving(),
        serving(&[("svc-1", 75), ("svc-2", 25)])
    );
}

#[test]
fn a_canary_revision_that_does_not_exist_blocks_advancing_but_not_rollback() {
    let w = World::new("svc-9");
    let ran = w.fail(&["advance", "web"]);
    assert!(
        ran.stderr.contains("revision svc-9 does not exist"),
        "{ran}"
    );
    assert_eq!(w.percent(), 0.0);
    let mut seen = w.standin.requests().len();
    w.ok(&["rollback", "web", "--reason", "wrong revision"]);
    assert_eq!(
        w.patches(&mut seen),
        vec![json!([target("svc-1", 100, None)])]
    );
    assert_eq!(w.cli.rollout("web")["status"], json!("rolled-back"));
}

#[test]
fn a_rollback_is_never_blocked_and_sync_traffic_repairs_the_split() {
    let w = World::new("svc-2");
    w.ok(&["advance", "web"]);
    w.standin
        .with(|s| s.forbid_updates = Some("Permission 'run.services.update' denied on svc".into()));

    // Cloud Run refuses; the document is rolled back all the same, and the output says so.
    let out = w.ok(&["rollback", "web", "--reason", "latency"]);
    assert!(
        out.contains("BUT the split of") && out.contains("NOT set"),
        "{out}"
    );
    assert!(out.contains("sync-traffic web"), "{out}");
    assert_eq!(w.cli.rollout("web")["status"], json!("rolled-back"));
    let event = w.newest_event();
    assert_eq!(event["kind"], json!("rollback"));
    assert_eq!(
        event["after"]["cloudRunTraffic"]["confirmed"],
        json!(false),
        "{event}"
    );
    assert!(
        event["after"]["cloudRunTraffic"]["error"]
            .as_str()
            .unwrap()
            .contains("run.services.update"),
        "{event}"
    );

    // `status` shows the disagreement and the two ways out.
    let text = w.ok(&["status", "web"]);
    assert!(
        text.contains("DRIFT: Cloud Run serves svc-1 95 % · svc-2 5 %"),
        "{text}"
    );
    assert!(text.contains("sync-traffic web"), "{text}");
    let c = w.cloud_run();
    assert_eq!(c["drift"], json!(true), "{c}");

    // Permission restored: sync-traffic sets the document's split and records it.
    let ran = w.fail(&["sync-traffic", "web"]);
    assert!(ran.stderr.contains("run.services.update"), "{ran}");
    w.standin.with(|s| s.forbid_updates = None);
    let out = w.ok(&["sync-traffic", "web"]);
    assert!(out.contains("traffic re-applied"), "{out}");
    assert_eq!(w.standin.serving(), serving(&[("svc-1", 100)]));
    assert_eq!(w.cloud_run()["drift"], json!(false));
    let event = w.newest_event();
    assert_eq!(event["kind"], json!("decision"), "{event}");
    assert!(
        event["reason"]
            .as_str()
            .unwrap()
            .contains("it served svc-1 95 % · svc-2 5 %"),
        "{event}"
    );
}

#[test]
fn a_split_changed_by_someone_else_is_shown_and_put_back_but_not_widened_while_frozen() {
    let w = World::new("svc-2");
    w.ok(&["advance", "web"]);
    w.standin.set_split(vec![
        Target::revision("svc-1", 100),
        Target::revision("svc-2", 0),
    ]);
    let c = w.cloud_run();
    assert_eq!(c["drift"], json!(true), "{c}");

    // Putting the canary's 5 % back widens it: refused while frozen.
    w.ok(&["freeze", "--reason", "incident 42"]);
    let ran = w.fail(&["sync-traffic", "web"]);
    assert!(ran.stderr.contains("FROZEN"), "{ran}");
    assert_eq!(w.standin.serving(), serving(&[("svc-1", 100)]));
    w.ok(&["unfreeze"]);

    w.ok(&["sync-traffic", "web"]);
    assert_eq!(w.standin.serving(), serving(&[("svc-1", 95), ("svc-2", 5)]));
    assert_eq!(w.cloud_run()["drift"], json!(false));
}
