//! `status` beside Cloud Run: with `[actuator] kind = "cloud-run"`, `status ID` and
//! `status --json` show what the service serves and flag drift from the document, against
//! the loopback Admin API v2 stand-in.

#[path = "support/cli_harness.rs"]
mod cli_harness;
#[path = "support/cloud_run_standin.rs"]
mod cloud_run_standin;
#[path = "support/http_fake.rs"]
mod http_fake;

use cli_harness::Cli;
use cloud_run_standin::{CloudRunStandin, Target, actuator_section};
use serde_json::Value;

fn config(cli: &Cli, name: &str, endpoint: &str) -> String {
    cli.write_file(
        name,
        &format!(
            "{}\n[actuator.rollouts.docs]\nkind = \"none\"\n",
            actuator_section(endpoint, "5s")
        ),
    )
    .display()
    .to_string()
}

fn cloud_run(cli: &Cli, config: &str, id: &str) -> Value {
    let v = cli.json(&["--config", config, "status", id, "--json"]);
    v["rollouts"][0]["cloudRun"].clone()
}

#[test]
fn status_shows_the_live_split_and_flags_drift_from_the_document() {
    let standin = CloudRunStandin::start("svc-1", &["svc-1", "svc-2"]);
    let cli = Cli::new();
    let config = config(&cli, "actuator.toml", &standin.url());
    for id in ["web", "docs"] {
        cli.ok(&[
            "--config",
            &config,
            "create",
            id,
            "--version",
            "2.0.0",
            "--stable-revision",
            "svc-1",
            "--canary-revision",
            "svc-2",
        ]);
    }

    // At 0 % the service serving everything on stable is what the document says.
    let text = cli.ok(&["--config", &config, "status", "web"]);
    assert!(text.contains("serving    svc-1 100 %"), "{text}");
    assert!(!text.contains("DRIFT"), "{text}");
    let c = cloud_run(&cli, &config, "web");
    assert_eq!(c["drift"], false, "{c}");
    assert_eq!(c["expectedCanaryPercent"], 0);
    assert_eq!(c["live"]["stable"]["percent"], 100);

    // The document moves to 5 % through a config that sets no traffic, so Cloud Run was
    // not told: drift, named, with the two ways out.
    cli.ok(&["advance", "web"]);
    let text = cli.ok(&["--config", &config, "status", "web"]);
    assert!(
        text.contains(
            "DRIFT: Cloud Run serves svc-1 100 % but the rollout expects svc-1 95 % · svc-2 5 %"
        ),
        "{text}"
    );
    assert!(
        text.contains("rollout-tui sync-traffic web · or roll back: rollout-tui rollback web"),
        "{text}"
    );
    let c = cloud_run(&cli, &config, "web");
    assert_eq!(c["drift"], true, "{c}");
    assert_eq!(c["expectedCanaryPercent"], 5);
    assert!(
        c["remedy"].as_str().unwrap().contains("sync-traffic web"),
        "{c}"
    );

    // Serving what the document says: no drift; someone else changes it: drift again.
    standin.set_split(vec![
        Target::revision("svc-1", 95),
        Target::revision("svc-2", 5),
    ]);
    assert_eq!(cloud_run(&cli, &config, "web")["drift"], false);
    standin.set_split(vec![
        Target::revision("svc-1", 50),
        Target::revision("svc-2", 50),
    ]);
    let c = cloud_run(&cli, &config, "web");
    assert_eq!(c["drift"], true, "{c}");
    assert_eq!(c["live"]["canary"]["percent"], 50, "{c}");

    // A rollout the actuator leaves alone has no Cloud Run view.
    assert_eq!(cloud_run(&cli, &config, "docs"), Value::Null);

    // The service cannot be read: said, and the rest of `status` still works.
    let down = config_pointing_nowhere(&cli);
    let text = cli.ok(&["--config", &down, "status", "web"]);
    assert!(text.contains("cannot read the split"), "{text}");
    assert!(text.contains("percentage   5%"), "{text}");
    let c = cloud_run(&cli, &down, "web");
    assert!(c["error"].is_string() && c["drift"].is_null(), "{c}");
}

/// The same actuator config, with an endpoint where nothing listens.
fn config_pointing_nowhere(cli: &Cli) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config(cli, "nowhere.toml", &format!("http://127.0.0.1:{port}"))
}
