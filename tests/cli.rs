//! End-to-end tests of the `rollout-tui` binary: every headless subcommand on
//! its happy path, invalid input refused without touching the store, config
//! errors, malformed and foreign documents, and how flags, environment
//! variables and config files combine.

#[path = "support/cli_harness.rs"]
mod cli_harness;

use chrono::DateTime;
use cli_harness::{ACTOR, Cli, exec_cmd, ok_cmd, parse_json, rollout_ids};
use serde_json::{Value, json};

const ALEC: &str = "alec@getaifactory.com";
const EVE: &str = "eve@example.com";

/// The canary preset as documents store it: (name, percent, minDuration, confirm).
const CANARY_STAGES: [(&str, f64, &str, bool); 5] = [
    ("canary users", 0.0, "0s", false),
    ("5%", 5.0, "10m", false),
    ("25%", 25.0, "30m", false),
    ("50%", 50.0, "1h", false),
    ("100%", 100.0, "0s", true),
];

/// The kinds of a rollout's events, newest first.
fn kinds(cli: &Cli, id: &str) -> Vec<String> {
    cli.events(id)
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn pct(r: &Value) -> f64 {
    r["rolloutPercentage"]
        .as_f64()
        .unwrap_or_else(|| panic!("rolloutPercentage is not a number: {r}"))
}

fn assert_timestamp(v: &Value, what: &str) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{what} = {s:?} is not RFC 3339: {e}"));
}

fn assert_canary_plan(r: &Value) {
    let stages = r["plan"]["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no plan.stages: {r}"));
    let seen: Vec<(&str, f64, &str, bool)> = stages
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["percent"].as_f64().unwrap(),
                s["minDuration"].as_str().unwrap(),
                s["confirm"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, CANARY_STAGES, "{r}");
}

/// A harness with one rollout `web` created from the canary plan.
fn with_web(extra: &[&str]) -> Cli {
    let cli = Cli::new();
    let mut args = vec![
        "create",
        "web",
        "--version",
        "2.0.0",
        "--canary-revision",
        "c1",
    ];
    args.extend_from_slice(extra);
    cli.ok(&args);
    cli
}

/// Rollouts in every interesting state:
/// - `web`: canary plan, fractional-v1, in stage 2 (5 %), canary user ALEC, excluded EVE;
/// - `unl`: tiers plan, unleash-v1, at 1 %;
/// - `paused`: paused at 0 %; `rb`: rolled back; `done`: complete.
fn fixture() -> Cli {
    let cli = with_web(&["--canary-user", ALEC]);
    cli.ok(&["users", "add", "web", EVE, "--excluded"]);
    cli.ok(&["advance", "web"]);
    cli.ok(&[
        "create",
        "unl",
        "--version",
        "1",
        "--plan",
        "tiers",
        "--hashing",
        "unleash-v1",
    ]);
    for (id, then) in [
        ("paused", &["pause", "paused"][..]),
        ("rb", &["rollback", "rb", "--reason", "errors"][..]),
        ("done", &["promote", "done", "--force"][..]),
    ] {
        cli.ok(&["create", id, "--version", "1"]);
        cli.ok(then);
    }
    cli
}

// ---------------------------------------------------------------- happy paths

#[test]
fn create_writes_the_documented_document() {
    let cli = Cli::new();
    let out = cli.ok(&[
        "create",
        "web",
        "--version",
        "2.0.0",
        "--plan",
        "canary",
        "--hashing",
        "fractional-v1",
        "--stable-revision",
        "svc-00097-6cg",
        "--canary-revision",
        "svc-00098-xyz",
        "--canary-user",
        ALEC,
        "--canary-user",
        "user-42",
    ]);
    assert!(out.contains("web: created version 2.0.0"), "{out}");

    let status = cli.json(&["status", "--json"]);
    assert_eq!(rollout_ids(&status), ["web"]);
    let r = &status["rollouts"][0];
    assert_eq!(r["version"], "2.0.0");
    assert_eq!(r["status"], "canary");
    assert_eq!(r["canaryUsers"], json!([ALEC, "user-42"]));
    assert_eq!(r["excludedUsers"], json!([]));
    assert_eq!(pct(r), 0.0);
    assert_eq!(r["rolloutStrategy"], "manual");
    assert_eq!(r["stableRevision"], "svc-00097-6cg");
    assert_eq!(r["canaryRevision"], "svc-00098-xyz");
    assert_eq!(r["currentStage"], 0);
    assert_eq!(r["hashing"], "fractional-v1");
    for t in ["startedAt", "lastUpdatedAt", "stageEnteredAt"] {
        assert_timestamp(&r[t], t);
    }
    assert!(r.get("_error").is_none(), "{r}");
    assert_canary_plan(r);
    assert_eq!(
        &cli.rollout("web"),
        r,
        "status ID --json shows the same document"
    );
}

#[test]
fn create_defaults_and_other_plans() {
    let cli = Cli::new();
    cli.ok(&["create", "plain", "--version", "1"]);
    let r = cli.rollout("plain");
    assert_eq!(
        (r["hashing"].as_str(), r["status"].as_str(), pct(&r)),
        (Some("fractional-v1"), Some("canary"), 0.0)
    );
    assert_canary_plan(&r);
    assert!(
        r.get("stableRevision").is_none() && r.get("canaryRevision").is_none(),
        "{r}"
    );

    cli.ok(&[
        "create",
        "tiers",
        "--version",
        "1",
        "--plan",
        "tiers",
        "--hashing",
        "unleash-v1",
    ]);
    let r = cli.rollout("tiers");
    assert_eq!(
        (r["hashing"].as_str(), r["status"].as_str(), pct(&r)),
        (Some("unleash-v1"), Some("progressive"), 1.0)
    );
    assert_eq!(r["plan"]["stages"][0]["name"], "internal");
    assert_eq!(r["plan"]["stages"].as_array().unwrap().len(), 4);

    cli.ok(&["create", "cohorts", "--version", "1", "--plan", "cohorts"]);
    let r = cli.rollout("cohorts");
    assert_eq!(
        (r["status"].as_str(), pct(&r), r["currentStage"].as_u64()),
        (Some("progressive"), 0.5, Some(0))
    );
    assert_eq!(r["plan"]["stages"][3]["name"], "GA");
}

#[test]
fn status_table_and_detail() {
    let cli = fixture();
    let table = cli.ok(&["status"]);
    let header = table.lines().next().unwrap_or_default();
    for col in [
        "ID", "STATUS", "STAGE", "PERCENT", "CANARY", "VERSION", "UPDATED",
    ] {
        assert!(header.contains(col), "{table}");
    }
    for (id, status) in [
        ("web", "progressive"),
        ("unl", "progressive"),
        ("paused", "paused"),
        ("rb", "rolled-back"),
        ("done", "complete"),
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no row {id}:\n{table}"));
        assert!(line.contains(status), "{line}");
    }
    let detail = cli.ok(&["status", "web"]);
    for needle in [
        "rollout web",
        "version      2.0.0",
        "status       progressive",
        "percentage   5%",
        ALEC,
        EVE,
    ] {
        assert!(detail.contains(needle), "missing {needle:?}:\n{detail}");
    }
    assert_eq!(rollout_ids(&cli.json(&["status", "--json"])).len(), 5);

    // A store with no rollouts (no store at all is an error: tests/store_faults.rs).
    let empty = Cli::new();
    drop(empty.store());
    assert_eq!(
        empty.json(&["status", "--json"]),
        json!({"frozen": null, "rollouts": []})
    );
    assert!(empty.ok(&["status"]).contains("no rollouts"));
}

#[test]
fn set_percent_takes_exact_percentages() {
    let cli = with_web(&[]);
    cli.ok(&["set-percent", "web", "0.5"]);
    let r = cli.rollout("web");
    assert_eq!(
        (pct(&r), r["status"].as_str(), r["currentStage"].as_u64()),
        (0.5, Some("progressive"), Some(0))
    );
    let e = &cli.events("web")[0];
    assert_eq!(
        (e["kind"].as_str(), e["after"]["rolloutPercentage"].as_f64()),
        (Some("set-percent"), Some(0.5))
    );

    // The stage follows the percentage: 30 % is in the 25 % stage.
    cli.ok(&["set-percent", "web", "30"]);
    let r = cli.rollout("web");
    assert_eq!((pct(&r), r["currentStage"].as_u64()), (30.0, Some(2)));
    cli.ok(&["set-percent", "web", "33.33"]);
    assert_eq!(pct(&cli.rollout("web")), 33.33);
    cli.ok(&["set-percent", "web", "0"]);
    let r = cli.rollout("web");
    assert_eq!(
        (pct(&r), r["status"].as_str(), r["currentStage"].as_u64()),
        (0.0, Some("canary"), Some(0))
    );

    let unl = Cli::new();
    unl.ok(&["create", "u", "--version", "1", "--hashing", "unleash-v1"]);
    unl.ok(&["set-percent", "u", "7"]);
    assert_eq!(pct(&unl.rollout("u")), 7.0);
}

#[test]
fn set_revisions_restarts_the_plan_on_a_new_canary() {
    let cli = with_web(&["--stable-revision", "s1"]);
    cli.ok(&["advance", "web"]);
    cli.ok(&["advance", "web"]);
    let before = cli.rollout("web");
    assert_eq!(
        (pct(&before), before["currentStage"].as_u64()),
        (25.0, Some(2))
    );

    // A new stable revision alone does not move the rollout.
    cli.ok(&["set-revisions", "web", "--stable", "s2"]);
    let r = cli.rollout("web");
    assert_eq!(
        (
            r["stableRevision"].as_str(),
            pct(&r),
            r["currentStage"].as_u64()
        ),
        (Some("s2"), 25.0, Some(2))
    );

    cli.ok(&["set-revisions", "web", "--canary", "c2"]);
    let r = cli.rollout("web");
    assert_eq!(r["canaryRevision"], "c2");
    assert_eq!(r["stableRevision"], "s2");
    assert_eq!(
        (r["currentStage"].as_u64(), pct(&r), r["status"].as_str()),
        (Some(0), 0.0, Some("canary"))
    );
    let e = &cli.events("web")[0];
    assert_eq!(e["kind"], "set-revisions");
    assert_eq!(
        (
            e["before"]["canaryRevision"].as_str(),
            e["after"]["canaryRevision"].as_str()
        ),
        (Some("c1"), Some("c2"))
    );

    // On the tiers plan the first stage is 1 %.
    cli.ok(&[
        "create",
        "t",
        "--version",
        "1",
        "--plan",
        "tiers",
        "--canary-revision",
        "a",
    ]);
    cli.ok(&["advance", "t"]);
    cli.ok(&["set-revisions", "t", "--stable", "x", "--canary", "b"]);
    let r = cli.rollout("t");
    assert_eq!(
        (r["currentStage"].as_u64(), pct(&r), r["status"].as_str()),
        (Some(0), 1.0, Some("progressive"))
    );
    assert_eq!(
        (r["stableRevision"].as_str(), r["canaryRevision"].as_str()),
        (Some("x"), Some("b"))
    );

    // A rolled-back rollout gets a fresh start with a new build.
    cli.ok(&["rollback", "t", "--reason", "bad build"]);
    cli.ok(&["set-revisions", "t", "--canary", "c"]);
    let r = cli.rollout("t");
    assert_eq!((r["status"].as_str(), pct(&r)), (Some("progressive"), 1.0));
    assert!(r.get("rollbackReason").is_none(), "{r}");
}

#[test]
fn users_add_remove_list() {
    let cli = with_web(&[]);
    cli.ok(&["users", "add", "web", ALEC, "user-42"]);
    cli.ok(&["users", "add", "web", "  bob@example.com  "]);
    cli.ok(&["users", "add", "web", EVE, "--excluded"]);
    let r = cli.rollout("web");
    assert_eq!(
        r["canaryUsers"],
        json!([ALEC, "user-42", "bob@example.com"])
    );
    assert_eq!(r["excludedUsers"], json!([EVE]));

    assert_eq!(
        cli.ok(&["users", "list", "web"]),
        format!("{ALEC}\nuser-42\nbob@example.com\n")
    );
    assert_eq!(
        cli.json(&["users", "list", "web", "--json"]),
        json!({"users": [ALEC, "user-42", "bob@example.com"]})
    );
    assert_eq!(
        cli.json(&["users", "list", "web", "--excluded", "--json"]),
        json!({"users": [EVE]})
    );

    // Emails are removed case-insensitively.
    cli.ok(&["users", "remove", "web", "Alec@GetAIFactory.com", "user-42"]);
    cli.ok(&["users", "remove", "web", EVE, "--excluded"]);
    let r = cli.rollout("web");
    assert_eq!(r["canaryUsers"], json!(["bob@example.com"]));
    assert_eq!(r["excludedUsers"], json!([]));

    assert_eq!(
        kinds(&cli, "web"),
        [
            "remove-users",
            "remove-users",
            "add-users",
            "add-users",
            "add-users",
            "create"
        ]
    );
}

#[test]
fn advance_walks_every_stage_to_complete() {
    let cli = with_web(&[]);
    let mut seen = vec![(
        pct(&cli.rollout("web")),
        cli.rollout("web")["currentStage"].as_u64().unwrap(),
    )];
    for _ in 1..CANARY_STAGES.len() {
        cli.ok(&["advance", "web"]);
        let r = cli.rollout("web");
        assert_eq!(r["status"], "progressive", "{r}");
        seen.push((pct(&r), r["currentStage"].as_u64().unwrap()));
    }
    assert_eq!(seen, [(0.0, 0), (5.0, 1), (25.0, 2), (50.0, 3), (100.0, 4)]);

    let out = cli.ok(&["advance", "web"]);
    assert!(out.contains("completed"), "{out}");
    let r = cli.rollout("web");
    assert_eq!(
        (r["status"].as_str(), pct(&r), r["approvedBy"].as_str()),
        (Some("complete"), 100.0, Some(ACTOR))
    );
    assert_timestamp(&r["completedAt"], "completedAt");
    assert_eq!(
        kinds(&cli, "web"),
        [
            "advance", "advance", "advance", "advance", "advance", "create"
        ]
    );
}

#[test]
fn pause_and_resume() {
    let cli = with_web(&[]);
    cli.ok(&["advance", "web"]);
    cli.ok(&["pause", "web", "--reason", "looking at a dashboard"]);
    let r = cli.rollout("web");
    assert_eq!((r["status"].as_str(), pct(&r)), (Some("paused"), 5.0));
    assert_eq!(r["pauseReason"], "looking at a dashboard");
    assert_eq!(cli.events("web")[0]["reason"], "looking at a dashboard");

    cli.ok(&["resume", "web"]);
    let r = cli.rollout("web");
    assert_eq!((r["status"].as_str(), pct(&r)), (Some("progressive"), 5.0));
    assert!(r.get("pauseReason").is_none(), "{r}");

    // Without a reason, and at 0 % (resumes as canary).
    cli.ok(&["create", "zero", "--version", "1"]);
    cli.ok(&["pause", "zero"]);
    assert_eq!(cli.rollout("zero")["status"], "paused");
    cli.ok(&["resume", "zero"]);
    assert_eq!(cli.rollout("zero")["status"], "canary");
}

#[test]
fn rollback_sends_everyone_to_stable() {
    let cli = with_web(&["--canary-user", ALEC]);
    cli.ok(&["advance", "web"]);
    cli.ok(&["advance", "web"]);
    cli.ok(&["rollback", "web", "--reason", "  p99 doubled  "]);
    let r = cli.rollout("web");
    assert_eq!((r["status"].as_str(), pct(&r)), (Some("rolled-back"), 0.0));
    assert_eq!(r["rollbackReason"], "p99 doubled");
    assert_timestamp(&r["rolledBackAt"], "rolledBackAt");
    let e = &cli.events("web")[0];
    assert_eq!(
        (e["kind"].as_str(), e["reason"].as_str()),
        (Some("rollback"), Some("p99 doubled"))
    );

    // A complete rollout can still be rolled back.
    cli.ok(&["create", "done", "--version", "1"]);
    cli.ok(&["promote", "done", "--force"]);
    cli.ok(&["rollback", "done", "--reason", "late regression"]);
    assert_eq!(cli.rollout("done")["status"], "rolled-back");
}

#[test]
fn promote_force_completes() {
    let cli = with_web(&[]);
    cli.ok(&["advance", "web"]);
    cli.ok(&["promote", "web", "--force"]);
    let r = cli.rollout("web");
    assert_eq!(
        (pct(&r), r["status"].as_str(), r["approvedBy"].as_str()),
        (100.0, Some("complete"), Some(ACTOR))
    );
    assert_eq!(r["currentStage"], 4);
    assert_timestamp(&r["completedAt"], "completedAt");
    assert_eq!(cli.events("web")[0]["kind"], "promote");
}

/// fractional-v1 as ARCHITECTURE.md defines it, computed independently.
fn fractional_bucket(rollout_id: &str, user: &str) -> u64 {
    let h =
        murmur3::murmur3_32(&mut std::io::Cursor::new(format!("{rollout_id}{user}")), 0).unwrap();
    (u64::from(h) * 10_000) >> 32
}

#[test]
fn assign_explains_the_side() {
    let cli = fixture();
    let assign = |id: &str, user: &str| cli.json(&["assign", id, user, "--json"]);

    let a = assign("web", ALEC);
    assert_eq!(
        (a["side"].as_str(), a["bucket"].is_null()),
        (Some("canary"), true),
        "{a}"
    );
    assert!(a["reason"].as_str().unwrap().contains("canary user"), "{a}");
    assert_eq!(
        assign("web", "  ALEC@getaifactory.com ")["side"],
        "canary",
        "emails compare case-insensitively"
    );

    let a = assign("web", EVE);
    assert_eq!(
        (a["side"].as_str(), a["bucket"].is_null()),
        (Some("stable"), true),
        "{a}"
    );
    assert!(a["reason"].as_str().unwrap().contains("excluded"), "{a}");

    // Everyone else by bucket, at 5 %: compare with the documented formula.
    for user in ["user-1", "user-2", "user-3", "someone@example.com"] {
        let a = assign("web", user);
        let bucket = fractional_bucket("web", user);
        assert_eq!(a["bucket"].as_u64(), Some(bucket), "{user}: {a}");
        let side = if bucket < 500 { "canary" } else { "stable" };
        assert_eq!(a["side"], side, "{user}: {a}");
        assert!(
            a["reason"].as_str().unwrap().contains("fractional-v1"),
            "{a}"
        );
        assert_eq!(assign("web", user), a, "deterministic");
        assert_eq!(
            assign("done", user)["side"],
            "canary",
            "everyone is on canary at 100 %"
        );
    }

    let a = assign("rb", ALEC);
    assert_eq!(
        (a["side"].as_str(), a["bucket"].is_null()),
        (Some("stable"), true),
        "{a}"
    );
    assert!(a["reason"].as_str().unwrap().contains("rolled back"), "{a}");

    let text = cli.ok(&["assign", "web", ALEC]);
    assert!(text.starts_with(&format!("{ALEC}: canary")), "{text}");
}

/// `assign` says what decided the side: the bucket against the threshold with the hashing
/// scheme (text and JSON), and an unknown rollout fails with exit code 1 as documented.
#[test]
fn assign_shows_the_bucket_threshold_and_scheme() {
    let cli = fixture();
    let user = "someone@example.com";
    let a = cli.json(&["assign", "web", user, "--json"]);
    let bucket = fractional_bucket("web", user);
    assert_eq!(
        (
            a["bucket"].as_u64(),
            a["threshold"].as_u64(),
            a["percentage"].as_f64(),
            a["hashing"].as_str()
        ),
        (Some(bucket), Some(500), Some(5.0), Some("fractional-v1")),
        "{a}"
    );
    let listed = cli.json(&["assign", "web", ALEC, "--json"]);
    assert!(listed["threshold"].is_null(), "{listed}");

    let text = cli.ok(&["assign", "web", user]);
    let side = if bucket < 500 { "canary" } else { "stable" };
    assert!(text.starts_with(&format!("{user}: {side}")), "{text}");
    assert!(
        text.contains(&format!("bucket {bucket} of 10000")),
        "{text}"
    );
    assert!(text.contains("rollout at 5%"), "{text}");
    assert!(
        text.contains("fractional-v1: bucket = (murmur3_x86_32(id + key) * 10000) >> 32"),
        "{text}"
    );

    let unl = cli.ok(&["assign", "unl", user]);
    assert!(
        unl.contains("unleash-v1: n = murmur3_x86_32(id + \":\" + key) % 100 + 1"),
        "{unl}"
    );

    let missing = cli.fail(&["assign", "nope", user]);
    assert_eq!(missing.code, Some(1), "{missing}");
    assert!(
        missing.stderr.contains("'nope' does not exist"),
        "{missing}"
    );
    let missing = cli.fail(&["assign", "nope", user, "--json"]);
    assert_eq!(missing.code, Some(1), "{missing}");
}

#[test]
fn events_newest_first_with_limit() {
    let cli = with_web(&[]);
    cli.ok(&["advance", "web"]);
    cli.ok(&["rollback", "web", "--reason", "errors spiked"]);

    let limited = cli.json(&["events", "web", "--limit", "2", "--json"]);
    let list = limited["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{limited}"));
    assert_eq!(list.len(), 2, "{limited}");
    let (rollback, advance) = (&list[0], &list[1]);
    for e in list {
        assert_eq!(
            (e["rolloutId"].as_str(), e["actor"].as_str()),
            (Some("web"), Some(ACTOR)),
            "{e}"
        );
        assert_timestamp(&e["at"], "at");
    }
    assert!(
        rollback["at"].as_str() >= advance["at"].as_str(),
        "newest first: {limited}"
    );
    assert_eq!(rollback["kind"], "rollback");
    assert_eq!(rollback["reason"], "errors spiked");
    assert_eq!(rollback["before"]["rolloutPercentage"], 5);
    assert_eq!(rollback["after"]["rolloutPercentage"], 0);
    assert_eq!(rollback["after"]["status"], "rolled-back");
    assert_eq!(advance["kind"], "advance");
    assert_eq!(
        (
            advance["before"]["currentStage"].as_u64(),
            advance["after"]["currentStage"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert!(advance.get("reason").is_none(), "{advance}");

    let all = cli.events("web");
    assert_eq!(all.len(), 3);
    assert_eq!(
        (all[2]["kind"].as_str(), all[2]["before"].is_null()),
        (Some("create"), true)
    );
    assert_eq!(all[2]["after"]["version"], "2.0.0");

    let text = cli.ok(&["events", "web"]);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().next().unwrap().contains("rollback") && text.contains("errors spiked"),
        "{text}"
    );
}

#[test]
fn check_config_validates_and_shows_the_config() {
    let cli = Cli::new();
    let out = cli.ok(&["check-config"]);
    assert!(
        out.contains("config OK") && out.contains("built-in defaults"),
        "{out}"
    );
    assert!(out.contains(&format!("actor:        {ACTOR}")), "{out}");
    let db = cli.data_dir().join("rollouts.db");
    assert!(
        out.contains(&format!("store:        local ({})", db.display())),
        "{out}"
    );
    assert!(out.contains("metrics:      none"), "{out}");
    assert!(out.contains("actuator:     none"), "{out}");

    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.toml");
    let out = cli.ok(&["check-config", "--config", example]);
    assert!(out.contains("config OK") && out.contains(example), "{out}");

    // Relative to the repository root, as the README runs it.
    let out = ok_cmd(
        cli.command(&["check-config", "--config", "config.example.toml"])
            .current_dir(env!("CARGO_MANIFEST_DIR")),
    );
    assert!(out.contains("config OK"), "{out}");
}

#[test]
fn check_config_shows_the_actuator_and_names_its_mistakes() {
    let cli = Cli::new();
    let good = cli.write_file(
        "actuator.toml",
        "[actuator]\nkind = \"cloud-run\"\nproject_id = \"proj-1\"\nregion = \"europe-west1\"\nservice = \"web\"\n\
         [actuator.rollouts.api]\nservice = \"api\"\n",
    );
    let out = ok_cmd(&mut cli.command(&["--config", good.to_str().unwrap(), "check-config"]));
    assert!(
        out.contains(
            "actuator:     cloud-run projects/proj-1/locations/europe-west1/services/web via https://run.googleapis.com (tag canary, wait up to 2m); per rollout api: projects/proj-1/locations/europe-west1/services/api"
        ),
        "{out}"
    );
    let bad = cli.write_file(
        "bad-actuator.toml",
        "[actuator]\nkind = \"cloud-run\"\nproject_id = \"proj-1\"\nregion = \"europe-west1\"\n",
    );
    let ran = exec_cmd(&mut cli.command(&["--config", bad.to_str().unwrap(), "check-config"]));
    assert!(
        ran.is_clean_failure()
            && ran
                .stderr
                .contains("actuator.service (the Cloud Run service) is required"),
        "{ran}"
    );
}

// ------------------------------------------------------------- invalid input

#[test]
fn set_percent_rejects_bad_values() {
    let cli = fixture();
    cli.rejects_all(&[
        (&["set-percent", "web", "101"], "101"),
        (&["set-percent", "web", "-1"], "-1"),
        (&["set-percent", "web", "5.123"], "5.123"),
        (&["set-percent", "web", "abc"], "abc"),
        (&["set-percent", "web", ""], "not a number"),
        (&["set-percent", "web", "NaN"], "NaN"),
        (&["set-percent", "web", "100.001"], "two decimals"),
        (&["set-percent", "web", "5"], "already at 5%"),
        (&["set-percent", "unl", "0.5"], "whole percent"),
        (&["set-percent", "unl", "2.25"], "unleash-v1"),
    ]);
}

#[test]
fn set_percent_rejects_exponent_notation() {
    let cli = fixture();
    cli.rejects_all(&[
        (&["set-percent", "web", "1e1"], "1e1"),
        (&["set-percent", "web", "+7"], "+7"),
    ]);
}

#[test]
fn users_add_rejects_malformed_keys() {
    let cli = fixture();
    let long = "k".repeat(300);
    cli.rejects_all(&[
        (&["users", "add", "web", "bad key"], "bad key"),
        (
            &["users", "add", "web", "a@b"],
            "'a@b' is not a valid user key",
        ),
        (&["users", "add", "web", "@example.com"], "@example.com"),
        (&["users", "add", "web", "x@@y.com"], "x@@y.com"),
        (&["users", "add", "web", ""], "empty"),
        (&["users", "add", "web", "   "], "empty"),
        (&["users", "add", "web", long.as_str()], "longer than 256"),
        (
            &["users", "add", "web", "tab\there"],
            "spaces or control characters",
        ),
        (&["users", "add", "web", "a@-bad-.com"], "a@-bad-.com"),
        // One bad key refuses the whole command: the good one is not added either.
        (&["users", "add", "web", "good-user", "bad key"], "bad key"),
        (
            &["users", "add", "web", "x@@y.com", "--excluded"],
            "x@@y.com",
        ),
    ]);
}

#[test]
fn users_add_rejects_duplicates_and_cross_list_conflicts() {
    let cli = fixture();
    cli.rejects_all(&[
        (&["users", "add", "web", ALEC], "already in canary users"),
        (
            &["users", "add", "web", "Alec@GetAIFactory.com"],
            "already in canary users",
        ),
        (
            &["users", "add", "web", "new-user", "new-user"],
            "'new-user' is given twice",
        ),
        (
            &["users", "add", "web", "kim@example.com", "Kim@Example.com"],
            "is given twice",
        ),
        (&["events", "web", "--limit", "0"], "--limit"),
        (&["users", "add", "web", EVE], "excluded users"),
        (
            &["users", "add", "web", "EVE@Example.com"],
            "excluded users",
        ),
        (
            &["users", "add", "web", ALEC, "--excluded"],
            "remove it there first",
        ),
        (
            &["users", "add", "web", EVE, "--excluded"],
            "already in excluded users",
        ),
    ]);
}

#[test]
fn users_remove_rejects_unknown_keys() {
    let cli = fixture();
    cli.rejects_all(&[
        (
            &["users", "remove", "web", "nobody@example.com"],
            "nobody@example.com",
        ),
        (&["users", "remove", "web", EVE], "is not in canary users"),
        (
            &["users", "remove", "web", ALEC, "--excluded"],
            "is not in excluded users",
        ),
        (
            &["users", "remove", "web", ALEC, "nobody"],
            "'nobody' is not in canary users",
        ),
    ]);
}

#[test]
fn lifecycle_refusals() {
    let cli = fixture();
    cli.rejects_all(&[
        (&["rollback", "web"], "--reason"),
        (&["rollback", "web", "--reason", "   "], "needs a reason"),
        (&["rollback", "web", "--reason", ""], "needs a reason"),
        (
            &["rollback", "rb", "--reason", "again"],
            "already rolled back",
        ),
        (&["promote", "web"], "--force"),
        (&["promote", "done", "--force"], "complete"),
        (&["promote", "rb", "--force"], "rolled-back"),
        (&["advance", "paused"], "resume it"),
        (&["pause", "paused"], "only a running rollout"),
        (&["resume", "web"], "only a paused rollout can be resumed"),
        (&["advance", "rb"], "rolled-back"),
        (&["advance", "done"], "complete"),
        (&["set-percent", "rb", "5"], "rolled-back"),
        (&["set-percent", "done", "5"], "complete"),
        (&["pause", "rb"], "rolled-back"),
        (&["pause", "done"], "complete"),
    ]);
}

#[test]
fn create_refusals() {
    let cli = fixture();
    cli.rejects_all(&[
        (
            &["create", "web", "--version", "9.9.9"],
            "'web' already exists",
        ),
        (
            &["create", "a/b", "--version", "1"],
            "'a/b' is not a valid rollout id",
        ),
        (&["create", "", "--version", "1"], "not a valid rollout id"),
        (
            &["create", "__x__", "--version", "1"],
            "'__x__' is not a valid rollout id",
        ),
        (
            &["create", "..", "--version", "1"],
            "not a valid rollout id",
        ),
        (&["create", "new", "--version", ""], "--version"),
        (&["create", "new", "--version", "   "], "--version"),
        (&["create", "new"], "--version"),
        (
            &["create", "new", "--version", "1", "--plan", "yolo"],
            "yolo",
        ),
        (
            &["create", "new", "--version", "1", "--hashing", "md5"],
            "md5",
        ),
        (
            &[
                "create",
                "new",
                "--version",
                "1",
                "--plan",
                "cohorts",
                "--hashing",
                "unleash-v1",
            ],
            "unleash-v1",
        ),
        (
            &[
                "create",
                "new",
                "--version",
                "1",
                "--canary-user",
                "bad key",
            ],
            "bad key",
        ),
        (
            &[
                "create",
                "new",
                "--version",
                "1",
                "--canary-user",
                ALEC,
                "--canary-user",
                "ALEC@getaifactory.com",
            ],
            "given twice",
        ),
        (
            &[
                "create",
                "new",
                "--version",
                "1",
                "--canary-revision",
                "c 1",
            ],
            "'c 1' is not a revision name",
        ),
    ]);
    assert_eq!(
        cli.rollout("web")["version"],
        "2.0.0",
        "the first document is unchanged"
    );
}

#[test]
fn set_revisions_refusals() {
    let cli = fixture();
    cli.rejects_all(&[
        (&["set-revisions", "web"], "--stable"),
        (
            &["set-revisions", "web", "--canary", "c 2"],
            "'c 2' is not a revision name",
        ),
        (
            &["set-revisions", "web", "--stable", ""],
            "not a revision name",
        ),
        (
            &[
                "set-revisions",
                "web",
                "--stable",
                "ok",
                "--canary",
                "bad rev",
            ],
            "bad rev",
        ),
        (
            &["set-revisions", "web", "--canary", "c1"],
            "nothing to change",
        ),
    ]);
}

#[test]
fn every_command_on_a_missing_rollout() {
    let cli = fixture();
    let commands: [&[&str]; 15] = [
        &["status", "nope"],
        &["status", "nope", "--json"],
        &["set-percent", "nope", "5"],
        &["set-revisions", "nope", "--canary", "c2"],
        &["users", "add", "nope", "bob"],
        &["users", "remove", "nope", "bob"],
        &["users", "list", "nope"],
        &["advance", "nope"],
        &["pause", "nope"],
        &["resume", "nope"],
        &["rollback", "nope", "--reason", "r"],
        &["promote", "nope", "--force"],
        &["assign", "nope", "bob", "--json"],
        &["events", "nope", "--json"],
        &["events", "nope"],
    ];
    let cases: Vec<(&[&str], &str)> = commands
        .iter()
        .map(|c| (*c, "'nope' does not exist"))
        .collect();
    cli.rejects_all(&cases);
    assert_eq!(
        rollout_ids(&cli.json(&["status", "--json"])).len(),
        5,
        "nothing was created"
    );
}

#[test]
fn assign_rejects_an_empty_user_key() {
    let cli = fixture();
    cli.rejects_all(&[
        (&["assign", "web", "  ", "--json"], "empty"),
        (&["assign", "web", ""], "empty"),
    ]);
}

// ------------------------------------------------------------- config errors

const BAD_CONFIGS: [(&str, &str, &str); 6] = [
    ("unknown-key.toml", "colour = true\n", "colour"),
    (
        "unknown-gate.toml",
        "[gates]\nmax_eror_rate = 0.1\n",
        "max_eror_rate",
    ),
    (
        "rate.toml",
        "[gates]\nmax_error_rate = 3.0\n",
        "gates.max_error_rate",
    ),
    (
        "plan.toml",
        "[defaults]\nplan = \"yolo\"\n",
        "defaults.plan = 'yolo'",
    ),
    ("syntax.toml", "[gates\nmax_error_rate = 0.1\n", "line 1"),
    (
        "hashing.toml",
        "[defaults]\nhashing = \"md5\"\n",
        "defaults.hashing",
    ),
];

/// Checks a refused config: clean failure whose stderr names the file and the problem.
fn assert_config_refused(ran: &cli_harness::Ran, file: &std::path::Path, needle: &str) {
    assert!(ran.is_clean_failure(), "{ran}");
    assert!(
        ran.stderr.contains(&file.display().to_string()),
        "stderr should name {}:\n{ran}",
        file.display()
    );
    assert!(
        ran.stderr.contains(needle),
        "stderr should mention {needle:?}:\n{ran}"
    );
}

#[test]
fn bad_config_is_refused_before_anything_is_created() {
    let cli = Cli::new();
    let missing = cli.path("missing.toml");
    let mut cases: Vec<(std::path::PathBuf, &str)> = vec![(missing, "does not exist")];
    for (name, text, needle) in BAD_CONFIGS {
        cases.push((cli.write_file(name, text), needle));
    }
    for (file, needle) in &cases {
        for args in [
            &["status"][..],
            &["status", "--json"],
            &["check-config"],
            &["create", "x", "--version", "1"],
        ] {
            let ran = cli.exec(&[&["--config", file.to_str().unwrap()][..], args].concat());
            assert_config_refused(&ran, file, needle);
            assert!(
                !cli.data_dir().exists(),
                "`{args:?}` with {} created {}",
                file.display(),
                cli.data_dir().display()
            );
        }
        // The same file through ROLLOUT_TUI_CONFIG.
        let ran = exec_cmd(cli.command(&["status"]).env("ROLLOUT_TUI_CONFIG", file));
        assert_config_refused(&ran, file, needle);
        assert!(!cli.db_path().exists());
    }
}

#[test]
fn bad_config_leaves_an_existing_store_unchanged() {
    let cli = fixture();
    for (name, text, needle) in BAD_CONFIGS {
        let file = cli.write_file(name, text);
        let path = file.to_str().unwrap();
        for args in [
            &["set-percent", "web", "25"][..],
            &["rollback", "web", "--reason", "r"],
            &["advance", "web"],
        ] {
            let ran = cli.rejects(&[&["--config", path][..], args].concat(), needle);
            assert_config_refused(&ran, &file, needle);
        }
    }
}

// ---------------------------------------------------- documents from elsewhere

fn healthy_doc(version: &str) -> Value {
    json!({
        "version": version, "status": "progressive", "canaryUsers": [], "excludedUsers": [],
        "rolloutPercentage": 5, "rolloutStrategy": "manual", "startedAt": "2025-12-03T10:00:00Z"
    })
}

#[test]
fn a_malformed_document_is_a_per_rollout_error() {
    let cli = with_web(&[]);
    let mut bad = healthy_doc("1.0.0");
    bad["rolloutPercentage"] = json!("lots");
    let stored = cli.put_doc("bad", bad);

    let ran = cli.exec(&["status"]);
    assert!(!ran.stderr.contains("panicked"), "{ran}");
    let all = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        all.lines()
            .any(|l| l.starts_with("web ") && l.contains("canary")),
        "healthy row missing:\n{ran}"
    );
    let err = all
        .lines()
        .find(|l| l.contains("error") && l.contains("'bad'"))
        .unwrap_or_else(|| panic!("no error line:\n{ran}"));
    assert!(err.contains("rolloutPercentage"), "{err}");

    let status = cli.json(&["status", "--json"]);
    let list = status["rollouts"].as_array().unwrap();
    let find = |id: &str| {
        list.iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {status}"))
    };
    assert!(find("web").get("_error").is_none(), "{status}");
    let b = find("bad");
    assert!(
        b["_error"]
            .as_str()
            .unwrap_or_default()
            .contains("rolloutPercentage"),
        "{b}"
    );
    assert_eq!(
        b["rolloutPercentage"], "lots",
        "the stored value is shown as is"
    );

    let detail = cli.fail(&["status", "bad"]);
    assert!(detail.stderr.contains("rolloutPercentage"), "{detail}");

    for args in [
        &["set-percent", "bad", "5"][..],
        &["advance", "bad"],
        &["users", "add", "bad", "bob"],
        &["promote", "bad", "--force"],
        &["assign", "bad", "bob"],
    ] {
        let ran = cli.rejects(args, "rolloutPercentage");
        assert!(ran.stderr.contains("'bad'"), "{ran}");
    }
    assert_eq!(
        cli.stored("bad"),
        stored,
        "the malformed document is untouched"
    );
    assert_eq!(cli.events("bad").len(), 1, "only the creating tool's event");
}

/// A status another tool spells with an alias is rewritten only when it really changes.
#[test]
fn an_alias_status_survives_a_percentage_change() {
    let cli = Cli::new();
    let mut doc = healthy_doc("1.0.0");
    doc["status"] = json!("in_progress");
    cli.put_doc("legacy", doc);
    cli.ok(&["set-percent", "legacy", "10"]);
    let stored = cli.stored("legacy");
    assert_eq!(stored.fields["rolloutPercentage"], 10);
    assert_eq!(
        stored.fields["status"], "in_progress",
        "unchanged, so not rewritten"
    );
    let set = &cli.events("legacy")[0];
    assert!(set["after"].get("status").is_none(), "{set}");
    // Back to canary users only is a real change of status.
    cli.ok(&["set-percent", "legacy", "0"]);
    assert_eq!(cli.stored("legacy").fields["status"], "canary");
}

/// `status | head` closes the pipe early: the command ends quietly, not with a panic.
#[test]
fn a_closed_output_pipe_ends_quietly() {
    let cli = with_web(&[]);
    for args in [&["status"][..], &["check-config"], &["events", "web"]] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // closed before anything is written: every write fails with EPIPE
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollout-tui"))
            .arg("--data-dir")
            .arg(cli.data_dir())
            .args(args)
            .env("HOME", cli.home())
            .env("XDG_CONFIG_HOME", cli.path("xdg-config"))
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// Without a terminal `demo` refuses before it seeds anything.
#[test]
fn demo_without_a_terminal_leaves_the_data_dir_alone() {
    let cli = Cli::new();
    let ran = cli.fail(&["demo"]);
    assert!(ran.stderr.contains("needs a terminal"), "{ran}");
    assert!(
        !cli.data_dir().join("rollouts.db").exists(),
        "demo seeded a store it could not show"
    );
}

/// Rollback is the one action a malformed document does not block: it writes only the
/// rollback fields and leaves the unreadable one for the operator to fix.
#[test]
fn rollback_works_on_a_malformed_document() {
    let cli = with_web(&[]);
    let mut bad = healthy_doc("1.0.0");
    bad["rolloutPercentage"] = json!(25);
    bad["plan"] = json!("fast please");
    bad["ownerTeam"] = json!("payments");
    cli.put_doc("bad", bad);

    cli.rejects(&["rollback", "bad", "--reason", "  "], "reason");
    let out = cli.ok(&["rollback", "bad", "--reason", "checkout errors"]);
    assert!(out.contains("rolled back from 25%"), "{out}");
    let stored = cli.stored("bad");
    assert_eq!(stored.fields["status"], "rolled-back");
    assert_eq!(stored.fields["rolloutPercentage"], 0);
    assert_eq!(stored.fields["rollbackReason"], "checkout errors");
    assert_eq!(
        stored.fields["plan"], "fast please",
        "the bad field is left as it was"
    );
    assert_eq!(stored.fields["ownerTeam"], "payments");
    let events = cli.events("bad");
    let rollback = &events[0];
    assert_eq!(rollback["kind"], "rollback", "{events:?}");
    assert_eq!(rollback["reason"], "checkout errors");
    assert_eq!(rollback["before"]["rolloutPercentage"], 25);
    assert_eq!(rollback["after"]["status"], "rolled-back");

    let again = cli.rejects(
        &["rollback", "bad", "--reason", "twice"],
        "already rolled back",
    );
    assert!(again.stderr.contains("'bad'"), "{again}");
}

/// The `current` document as the existing deployment tooling writes it.
fn seed_doc() -> Value {
    json!({
        "version": "0.1.1", "status": "canary", "canaryUsers": [ALEC],
        "rolloutPercentage": 0, "rolloutStrategy": "manual",
        "stableRevision": "svc-00097-6cg", "canaryRevision": "svc-00098-xyz",
        "startedAt": "2025-12-03T10:00:00Z", "canaryErrors": 0, "stableErrors": 0,
        "owner": {"team": "payments", "oncall": {"primary": "ana", "pager": [1, 2, 3]}, "weight": 0.25},
        "labels": ["blue", {"k": "v"}, null, true, 1234567890123_i64]
    })
}

const UNKNOWN_FIELDS: [&str; 4] = ["canaryErrors", "stableErrors", "owner", "labels"];

#[test]
fn the_seed_document_is_read_changed_and_kept_whole() {
    let cli = Cli::new();
    let seed = seed_doc();
    cli.put_doc("current", seed.clone());

    let r = cli.rollout("current");
    assert!(r.get("_error").is_none(), "{r}");
    for (k, v) in seed.as_object().unwrap() {
        assert_eq!(&r[k], v, "status --json shows {k}");
    }
    let detail = cli.ok(&["status", "current"]);
    assert!(detail.contains("plan         none"), "{detail}");

    cli.ok(&["set-percent", "current", "5"]);
    let r = cli.rollout("current");
    assert_eq!(
        (pct(&r), r["status"].as_str(), r["currentStage"].as_u64()),
        (5.0, Some("progressive"), Some(1))
    );
    assert_canary_plan(&r);

    cli.ok(&["users", "add", "current", "bob@example.com"]);
    assert_eq!(
        cli.rollout("current")["canaryUsers"],
        json!([ALEC, "bob@example.com"])
    );
    let assigned = cli.ok(&["assign", "current", "BOB@example.com"]);
    assert!(assigned.contains(": canary (canary user)"), "{assigned}");

    let stored = cli.stored("current").fields;
    for k in UNKNOWN_FIELDS.into_iter().chain([
        "version",
        "startedAt",
        "stableRevision",
        "canaryRevision",
        "rolloutStrategy",
    ]) {
        assert_eq!(stored.get(k), seed.get(k), "{k} survives the writes");
    }
    let shown = cli.rollout("current");
    for k in UNKNOWN_FIELDS {
        assert_eq!(shown[k], seed[k], "status --json still shows {k}");
    }
}

#[test]
fn a_document_without_a_plan_adopts_the_configured_default_plan() {
    let cli = Cli::new();
    cli.put_doc("current", seed_doc());
    let config = cli.write_file("tiers.toml", "[defaults]\nplan = \"tiers\"\n");
    cli.ok(&[
        "--config",
        config.to_str().unwrap(),
        "set-percent",
        "current",
        "10",
    ]);
    let r = cli.rollout("current");
    assert_eq!(r["plan"]["stages"][0]["name"], "internal", "{r}");
    assert_eq!(
        (pct(&r), r["currentStage"].as_u64()),
        (10.0, Some(1)),
        "10 % is the early adopters stage"
    );
    for k in UNKNOWN_FIELDS {
        assert_eq!(r[k], seed_doc()[k], "{k} survives");
    }
}

#[test]
fn advance_from_below_the_first_stage_enters_the_first_stage() {
    let cli = Cli::new();
    cli.put_doc("current", seed_doc());
    let config = cli.write_file("tiers.toml", "[defaults]\nplan = \"tiers\"\n");
    cli.ok(&["--config", config.to_str().unwrap(), "advance", "current"]);
    let r = cli.rollout("current");
    // At 0 % with no stage index, the rollout is before the tiers plan's first stage (internal, 1 %).
    assert_eq!((pct(&r), r["currentStage"].as_u64()), (1.0, Some(0)), "{r}");
}

// ---------------------------------------------------- flags, env and config

#[test]
fn data_dir_comes_from_the_flag_then_the_environment_then_the_config() {
    let cli = Cli::new();
    let from_env = cli.path("env-data");
    let in_env =
        |args: &[&str]| ok_cmd(cli.bare().env("ROLLOUT_TUI_DATA_DIR", &from_env).args(args));

    in_env(&["--actor", ACTOR, "create", "e", "--version", "1"]);
    assert!(
        from_env.join("rollouts.db").is_file(),
        "ROLLOUT_TUI_DATA_DIR is used without --data-dir"
    );
    assert!(!cli.data_dir().exists());

    // --data-dir wins over the variable.
    ok_cmd(
        cli.command(&["create", "f", "--version", "1"])
            .env("ROLLOUT_TUI_DATA_DIR", &from_env),
    );
    assert_eq!(rollout_ids(&cli.json(&["status", "--json"])), ["f"]);
    assert_eq!(
        rollout_ids(&parse_json(&in_env(&["status", "--json"]), "status --json")),
        ["e"]
    );

    // The config's data_dir comes last.
    let cfg_data = cli.path("cfg-data");
    let cfg = cli.write_file(
        "data.toml",
        &format!("data_dir = {:?}\n", cfg_data.to_str().unwrap()),
    );
    ok_cmd(cli.bare().args([
        "--config",
        cfg.to_str().unwrap(),
        "create",
        "g",
        "--version",
        "1",
    ]));
    assert!(cfg_data.join("rollouts.db").is_file());
}

#[test]
fn config_file_comes_from_the_flag_then_the_environment_then_the_platform_dir() {
    let cli = Cli::new();
    let tiers = cli.write_file(
        "tiers.toml",
        "[defaults]\nplan = \"tiers\"\nhashing = \"unleash-v1\"\n",
    );
    let cohorts = cli.write_file("cohorts.toml", "[defaults]\nplan = \"cohorts\"\n");
    let platform = cli.write_file(
        "xdg-config/rollout-tui/config.toml",
        "[defaults]\nplan = \"tiers\"\n",
    );
    let first_stage = |id: &str| {
        let r = cli.rollout(id);
        (r["plan"]["stages"][0]["name"].clone(), r["hashing"].clone())
    };
    let with_env_config =
        |args: &[&str]| ok_cmd(cli.command(args).env("ROLLOUT_TUI_CONFIG", &tiers));

    with_env_config(&["create", "a", "--version", "1"]);
    assert_eq!(
        first_stage("a"),
        (json!("internal"), json!("unleash-v1")),
        "ROLLOUT_TUI_CONFIG is read"
    );

    with_env_config(&[
        "--config",
        cohorts.to_str().unwrap(),
        "create",
        "b",
        "--version",
        "1",
    ]);
    assert_eq!(
        first_stage("b"),
        (json!("internal"), json!("fractional-v1")),
        "--config wins"
    );
    assert_eq!(cli.rollout("b")["plan"]["stages"][3]["name"], "GA");

    let out = cli.ok(&["check-config"]);
    assert!(
        out.contains(platform.to_str().unwrap()),
        "the platform config dir is read: {out}"
    );
    std::fs::write(&platform, "colour = 1\n").unwrap();
    let ran = cli.fail(&["status"]);
    assert!(
        ran.stderr.contains(platform.to_str().unwrap()) && ran.stderr.contains("colour"),
        "{ran}"
    );
}

#[test]
fn the_actor_comes_from_the_flag_then_the_environment_then_the_config() {
    let cli = Cli::new();
    let data = cli.data_dir();
    let config = cli.write_file("actor.toml", "actor = \"from-config\"\n");
    let cases: [(&str, Option<&str>, &[&str], &str); 3] = [
        (
            "flag",
            Some("from-env"),
            &["--actor", "from-flag"],
            "from-flag",
        ),
        ("env", Some("from-env"), &[], "from-env"),
        ("config", None, &[], "from-config"),
    ];
    for (id, env, flags, expected) in cases {
        let mut cmd = cli.bare();
        cmd.arg("--data-dir")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .args(flags);
        if let Some(v) = env {
            cmd.env("ROLLOUT_TUI_ACTOR", v);
        }
        ok_cmd(cmd.args(["create", id, "--version", "1"]));
        assert_eq!(cli.events(id)[0]["actor"], expected, "{id}");
    }
    // The harness's --actor reaches every kind of event.
    cli.ok(&["set-percent", "flag", "5"]);
    cli.ok(&["rollback", "flag", "--reason", "r"]);
    let actors: Vec<Value> = cli
        .events("flag")
        .iter()
        .map(|e| e["actor"].clone())
        .collect();
    assert_eq!(actors, [json!(ACTOR), json!(ACTOR), json!("from-flag")]);
}

// ------------------------------------------------- fields left behind by actions

#[test]
fn a_new_canary_after_completion_clears_the_completion_fields() {
    let cli = with_web(&[]);
    cli.ok(&["promote", "web", "--force"]);
    cli.ok(&["set-revisions", "web", "--canary", "c2"]);
    let r = cli.rollout("web");
    assert_eq!((r["status"].as_str(), pct(&r)), (Some("canary"), 0.0));
    assert!(r.get("completedAt").is_none(), "{r}");
    assert!(
        r.get("approvedBy").is_none(),
        "a restarted rollout is not approved: {r}"
    );
}

#[test]
fn rollback_of_a_paused_rollout_clears_the_pause_reason() {
    let cli = with_web(&[]);
    cli.ok(&["advance", "web"]);
    cli.ok(&["pause", "web", "--reason", "checking"]);
    cli.ok(&["rollback", "web", "--reason", "bad build"]);
    let r = cli.rollout("web");
    assert_eq!(r["status"], "rolled-back");
    assert!(r.get("pauseReason").is_none(), "{r}");
}

#[test]
fn status_json_shows_every_stored_field_as_stored() {
    let cli = Cli::new();
    let mut doc = healthy_doc("1");
    doc["revision"] = json!("written-by-another-tool");
    doc["error"] = json!(null);
    cli.put_doc("other", doc.clone());
    let r = cli.rollout("other");
    for (k, v) in doc.as_object().unwrap() {
        assert_eq!(&r[k], v, "{k}: {r}");
    }
}

#[test]
fn json_output_is_parseable_for_every_listing() {
    let cli = fixture();
    let (status, events) = cli.snapshot();
    let v = parse_json(&status, "status --json");
    for r in v["rollouts"].as_array().unwrap() {
        assert!(r.get("_error").is_none(), "{r}");
    }
    assert_eq!(events.lines().count(), 5);
}
