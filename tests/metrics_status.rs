//! `status --json` with a metrics source, through the real binary: the `health` object per
//! rollout, Google credentials from ADC against a Cloud Monitoring fake, and a token that
//! never shows up in what the tool prints or logs.

#[path = "support/cli_harness.rs"]
mod cli_harness;
#[path = "support/http_fake.rs"]
mod http_fake;

use std::collections::BTreeSet;

use chrono::Utc;
use cli_harness::{Cli, ok_cmd, parse_json};
use http_fake::{FakeServer, Request, Response};
use serde_json::{Value, json};

const TOKEN: &str = "ya29.fake-access-token-for-tests-0123456789";
const SIDE_KEYS: [&str; 7] = [
    "requests",
    "errors",
    "errorRate",
    "p50Ms",
    "p95Ms",
    "p99Ms",
    "newestPointAt",
];

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

fn set(k: &[&str]) -> BTreeSet<String> {
    k.iter().map(|s| s.to_string()).collect()
}

fn status_with(cli: &Cli, config: &str) -> Value {
    let path = cli.write_file("config.toml", config);
    let out = cli.ok(&["--config", path.to_str().unwrap(), "status", "--json"]);
    parse_json(&out, "status --json")
}

fn check_health_shape(h: &Value) {
    let mut want = set(&["stable", "canary", "gates", "verdict"]);
    if h.get("sourceError").is_some() {
        want.insert("sourceError".into());
    }
    assert_eq!(keys(h), want, "{h}");
    for side in ["stable", "canary"] {
        if !h[side].is_null() {
            assert_eq!(keys(&h[side]), set(&SIDE_KEYS), "{side}: {h}");
        }
    }
    for g in h["gates"].as_array().unwrap() {
        assert_eq!(keys(g), set(&["name", "verdict", "detail"]), "{g}");
        assert!(["pass", "fail", "inconclusive"].contains(&g["verdict"].as_str().unwrap()));
    }
    assert!(["pass", "fail", "inconclusive"].contains(&h["verdict"].as_str().unwrap()));
}

fn gate<'a>(h: &'a Value, name: &str) -> &'a Value {
    h["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no gate {name}: {h}"))
}

#[test]
fn simulator_health_per_rollout_and_none_without_a_source() {
    let cli = Cli::new();
    cli.ok(&[
        "create",
        "web",
        "--version",
        "2.0.0",
        "--stable-revision",
        "web-1",
        "--canary-revision",
        "web-2",
    ]);
    cli.ok(&["create", "api", "--version", "1.1.0"]);
    cli.ok(&["advance", "api"]); // 5 %
    cli.put_doc("broken", json!({"version": "1", "status": "flying"}));

    let v = status_with(&cli, "[metrics]\nkind = \"simulator\"\n");
    let list = v["rollouts"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for r in list {
        match r["id"].as_str().unwrap() {
            "broken" => {
                assert!(
                    r.get("health").is_none(),
                    "an unreadable rollout gets no health: {r}"
                );
                assert!(r["_error"].is_string());
            }
            "web" => {
                let h = &r["health"];
                check_health_shape(h);
                // 0 % and no canary users: no canary traffic, which is never healthy.
                assert_eq!(h["canary"]["requests"], 0);
                assert_eq!(h["canary"]["errorRate"], Value::Null);
                assert_eq!(h["canary"]["p99Ms"], Value::Null);
                assert!(h["stable"]["requests"].as_u64().unwrap() > 10_000);
                assert!(h["stable"]["newestPointAt"].is_string());
                assert_eq!(gate(h, "min-requests")["verdict"], "inconclusive");
                assert_eq!(h["verdict"], "inconclusive");
            }
            "api" => {
                let h = &r["health"];
                check_health_shape(h);
                assert!(h["canary"]["requests"].as_u64().unwrap() > 500, "{h}");
                assert!(h["canary"]["p99Ms"].as_f64().unwrap() > 0.0);
                assert_eq!(gate(h, "error-rate")["verdict"], "pass", "{h}");
            }
            other => panic!("unexpected rollout {other}"),
        }
    }
    // The rollout's own gates win over the config's.
    let v = status_with(
        &cli,
        "[metrics]\nkind = \"simulator\"\n[gates]\nmin_requests = 0\nmax_p99_ms = 1.0\n",
    );
    let web = v["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "api")
        .unwrap();
    assert_eq!(gate(&web["health"], "p99")["verdict"], "fail");

    // No source configured: no health key at all.
    for r in cli.json(&["status", "--json"])["rollouts"]
        .as_array()
        .unwrap()
    {
        assert!(r.get("health").is_none(), "{r}");
    }
}

fn cm_answer(req: &Request) -> Response {
    let end = (Utc::now() - chrono::Duration::seconds(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let point = |v: Value| json!({"interval": {"endTime": end}, "value": v});
    let filter = req.param("filter").unwrap_or_default();
    let series: Vec<Value> =
        if filter.contains("request_count") {
            [
                ("web-1", "2xx", "990"),
                ("web-1", "5xx", "10"),
                ("web-2", "2xx", "498"),
                ("web-2", "5xx", "2"),
            ]
            .iter()
            .map(|(rev, class, n)| {
                json!({
                    "metric": {"labels": {"response_code_class": class}},
                    "resource": {"labels": {"revision_name": rev}},
                    "points": [point(json!({"int64Value": n}))],
                })
            })
            .collect()
        } else {
            let opts = json!({"explicitBuckets": {"bounds": [100.0, 200.0, 400.0]}});
            ["web-1", "web-2"]
            .iter()
            .map(|rev| json!({
                "resource": {"labels": {"revision_name": rev}},
                "points": [point(json!({"distributionValue": {
                    "count": "100", "bucketOptions": opts, "bucketCounts": ["50", "40", "10"]
                }}))],
            }))
            .collect()
        };
    Response::json(200, json!({"timeSeries": series}).to_string())
}

/// A Cloud Monitoring fake that also plays Google's OAuth token endpoint for an
/// `authorized_user` ADC file; `fail` makes the list calls answer 500 and echo the
/// Authorization header, as a careless proxy might.
fn google_fake(fail: bool) -> FakeServer {
    FakeServer::start(move |req| {
        if req.path == "/token" {
            return Response::json(
                200,
                json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})
                    .to_string(),
            );
        }
        if fail {
            let echo = req.header("authorization").unwrap_or_default();
            return Response::json(500, json!({"error": {"code": 500, "message": format!("backend error; you sent {echo}")}}).to_string());
        }
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Response::json(401, r#"{"error":{"code":401,"message":"no credentials"}}"#);
        }
        cm_answer(req)
    })
}

/// Application Default Credentials (an authorized user) whose token comes from `server`.
fn adc_file(cli: &Cli, server: &FakeServer) -> std::path::PathBuf {
    cli.write_file(
        "adc.json",
        &json!({
            "type": "authorized_user", "client_id": "id.apps.googleusercontent.com",
            "client_secret": "client-secret", "refresh_token": "refresh-token",
            "token_uri": format!("{}/token", server.url()),
        })
        .to_string(),
    )
}

fn cm_status(cli: &Cli, server: &FakeServer) -> cli_harness::Ran {
    cm_run(cli, server, &["status", "--json"])
}

fn cm_run(cli: &Cli, server: &FakeServer, args: &[&str]) -> cli_harness::Ran {
    let adc = adc_file(cli, server);
    let config = cli.write_file(
        "config.toml",
        &format!(
            "[metrics]\nkind = \"cloud-monitoring\"\nproject_id = \"proj-1\"\nservice = \"web\"\n\
             endpoint = \"{}\"\ncredentials = \"adc\"\nretries = 1\n[log]\nlevel = \"debug\"\n",
            server.url()
        ),
    );
    let mut full = vec!["--config", config.to_str().unwrap()];
    full.extend(args);
    let mut cmd = cli.command(&full);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &adc);
    cli_harness::exec_cmd(&mut cmd)
}

fn created(cli: &Cli) {
    cli.ok(&[
        "create",
        "web",
        "--version",
        "2.0.0",
        "--stable-revision",
        "web-1",
        "--canary-revision",
        "web-2",
    ]);
    cli.ok(&["advance", "web"]);
}

#[test]
fn cloud_monitoring_with_adc_through_the_binary() {
    let cli = Cli::new();
    created(&cli);
    let server = google_fake(false);
    let ran = cm_status(&cli, &server);
    assert!(ran.success(), "{ran}");
    let v = parse_json(&ran.stdout, "status --json");
    let h = &v["rollouts"][0]["health"];
    check_health_shape(h);
    assert!(h.get("sourceError").is_none(), "{h}");
    assert_eq!(h["stable"]["requests"], 1000);
    assert_eq!(h["stable"]["errors"], 10);
    assert_eq!(h["stable"]["errorRate"], 0.01);
    assert_eq!(h["canary"]["requests"], 500);
    assert_eq!(h["canary"]["errorRate"], 0.004);
    // Buckets (-inf,100) [100,200) [200,400): 50/40/10 -> p50 = 100, p95 = 200 + 200 * 0.5.
    assert_eq!(h["canary"]["p50Ms"], 100.0);
    assert_eq!(h["canary"]["p95Ms"], 300.0);
    assert_eq!(gate(h, "error-rate")["verdict"], "pass");
    assert_eq!(gate(h, "p99-vs-stable")["verdict"], "pass");
    // Cloud Run's points arrive minutes late: the limit allows for it, and says so.
    let fresh = gate(h, "freshness");
    assert_eq!(fresh["verdict"], "pass", "{fresh}");
    assert!(
        fresh["detail"]
            .as_str()
            .unwrap()
            .ends_with("old (limit 7m = 3m + 4m source delay)"),
        "{fresh}"
    );

    let reqs = server.requests();
    let token_req = reqs
        .iter()
        .find(|r| r.path == "/token")
        .expect("a token request");
    let body = String::from_utf8_lossy(&token_req.body);
    assert!(body.contains("monitoring.read"), "scope: {body}");
    let lists: Vec<&Request> = reqs
        .iter()
        .filter(|r| r.path.ends_with("/timeSeries"))
        .collect();
    assert_eq!(lists.len(), 2);
    for r in lists {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }

    // `status ID` shows the data's age and the source's delay.
    let ran = cm_run(&cli, &server, &["status", "web"]);
    assert!(ran.success(), "{ran}");
    assert!(
        ran.stdout
            .contains("(metrics: Cloud Monitoring: Cloud Run service web, project proj-1 (5m window, data ~4m behind))"),
        "{ran}"
    );
    let fresh = ran
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("pass freshness"))
        .unwrap_or_else(|| panic!("no freshness line\n{ran}"));
    assert!(
        fresh.contains("newest points ")
            && fresh.contains(" old (limit 7m = 3m + 4m source delay)"),
        "{fresh}"
    );
}

#[test]
fn the_token_never_reaches_output_or_logs() {
    let cli = Cli::new();
    created(&cli);
    let server = google_fake(true);
    let ran = cm_status(&cli, &server);
    assert!(ran.success(), "{ran}");
    let v = parse_json(&ran.stdout, "status --json");
    let h = &v["rollouts"][0]["health"];
    check_health_shape(h);
    let e = h["sourceError"].as_str().unwrap();
    assert!(
        e.contains("500") && e.contains("backend error") && e.contains("[redacted]"),
        "{e}"
    );
    assert_eq!(h["verdict"], "inconclusive");
    assert!(h["stable"].is_null() && h["canary"].is_null());
    // The server did get the token, and echoed it; the tool must not repeat it.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.header("authorization").is_some_and(|a| a.contains(TOKEN)))
    );
    assert!(!ran.stdout.contains(TOKEN) && !ran.stderr.contains(TOKEN));
    for entry in walk(&cli.data_dir()) {
        let text = String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()).into_owned();
        assert!(!text.contains(TOKEN), "token in {}", entry.display());
    }
}

/// How the echoing fake gives the credentials it was sent back.
#[derive(Clone, Copy, Debug)]
enum Echo {
    /// A 200 whose JSON has the Authorization header where a count belongs.
    InAField,
    /// A 200 that is not JSON at all (a proxy's HTML page) quoting the header.
    NotJson,
    /// A 200 with `executionErrors` quoting the header.
    ExecutionError,
    /// A 500 whose message puts the header just where the 300-character cut falls.
    CutByTruncation,
}

/// A JWT this process never sent (a service account's signed assertion, say) that the
/// fake quotes too: only generic redaction can catch it.
const OTHER_JWT: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJyb2xsb3V0QHByb2otMS5pYW0iLCJzY29wZSI6Im1vbml0b3JpbmcifQ.b3RoZXItc2lnbmF0dXJlLWJ5dGVzLW5ldmVyLXNlbnQ";

/// A Cloud Monitoring fake (and token endpoint) that echoes the Authorization header it
/// gets in the request_count answers, the way `echo` says.
fn echoing_fake(echo: Echo) -> FakeServer {
    FakeServer::start(move |req| {
        if req.path == "/token" {
            return Response::json(
                200,
                json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})
                    .to_string(),
            );
        }
        if !req
            .param("filter")
            .unwrap_or_default()
            .contains("request_count")
        {
            return cm_answer(req);
        }
        let auth = req.header("authorization").unwrap_or("none").to_string();
        let said = format!("{auth} (assertion {OTHER_JWT})");
        match echo {
            Echo::InAField => {
                let end = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                Response::json(
                    200,
                    json!({"timeSeries": [{
                        "resource": {"labels": {"revision_name": "web-1"}},
                        "metric": {"labels": {"response_code_class": "2xx"}},
                        "points": [{"interval": {"endTime": end}, "value": {"int64Value": said}}],
                    }]})
                    .to_string(),
                )
            }
            Echo::NotJson => Response::text(
                200,
                format!("<html><body>proxy debug: Authorization: {said}</body></html>"),
            ),
            Echo::ExecutionError => Response::json(
                200,
                json!({"timeSeries": [], "executionErrors": [{"code": 7, "message": format!("caller sent {said}")}]})
                    .to_string(),
            ),
            Echo::CutByTruncation => {
                let pad = "x".repeat(260);
                Response::json(
                    500,
                    json!({"error": {"code": 500, "message": format!("{pad} you sent {said}")}})
                        .to_string(),
                )
            }
        }
    })
}

/// A service-account key made for this run with Debian's `openssl`: with it as ADC the
/// client signs its own JWT and sends that as the bearer token.
fn service_account_file(cli: &Cli) -> std::path::PathBuf {
    let key = cli.path("sa-key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("run openssl (Debian's openssl package) to make a test key");
    assert!(out.status.success(), "openssl genpkey: {out:?}");
    let pem = std::fs::read_to_string(&key).unwrap();
    cli.write_file(
        "sa.json",
        &json!({
            "type": "service_account", "project_id": "proj-1",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": pem,
            "client_email": "rollout@proj-1.iam.gserviceaccount.com",
            "client_id": "123456789012345678901",
            "token_uri": "http://127.0.0.1:9/token",
        })
        .to_string(),
    )
}

/// `status`, `status --json` and `status web` against `server` with `adc` as the
/// credentials, logging everything.
fn every_status(
    cli: &Cli,
    server: &FakeServer,
    adc: &std::path::Path,
) -> Vec<(String, cli_harness::Ran)> {
    let config = cli.write_file(
        "config.toml",
        &format!(
            "[metrics]\nkind = \"cloud-monitoring\"\nproject_id = \"proj-1\"\nservice = \"web\"\n\
             endpoint = \"{}\"\ncredentials = \"adc\"\nretries = 0\n[log]\nlevel = \"trace\"\n",
            server.url()
        ),
    );
    let config = config.to_str().unwrap();
    [
        vec!["status"],
        vec!["status", "--json"],
        vec!["status", "web"],
    ]
    .into_iter()
    .map(|args| {
        let mut full = vec!["--config", config];
        full.extend(&args);
        let mut cmd = cli.command(&full);
        cmd.env("GOOGLE_APPLICATION_CREDENTIALS", adc);
        (args.join(" "), cli_harness::exec_cmd(&mut cmd))
    })
    .collect()
}

/// The bearer token the fake saw.
fn sent_token(server: &FakeServer) -> String {
    server
        .requests()
        .iter()
        .find_map(|r| r.header("authorization").map(str::to_string))
        .expect("a request with credentials")
        .strip_prefix("Bearer ")
        .expect("a bearer token")
        .to_string()
}

#[test]
fn no_echo_of_a_token_reaches_any_output_or_the_log() {
    for service_account in [false, true] {
        for echo in [
            Echo::InAField,
            Echo::NotJson,
            Echo::ExecutionError,
            Echo::CutByTruncation,
        ] {
            let what = format!("{echo:?}, service account: {service_account}");
            let cli = Cli::new();
            created(&cli);
            let server = echoing_fake(echo);
            let adc = if service_account {
                service_account_file(&cli)
            } else {
                adc_file(&cli, &server)
            };
            let runs = every_status(&cli, &server, &adc);
            let token = sent_token(&server);
            if service_account {
                assert!(token.starts_with("eyJ"), "a self-signed JWT: {token}");
            } else {
                assert_eq!(token, TOKEN);
            }
            // The whole token, its start (left by a cut), and a JWT's signature.
            let mut secrets = vec![token.clone(), token[..16].to_string(), OTHER_JWT.into()];
            secrets.extend(token.rsplit('.').next().map(str::to_string));
            secrets.extend(OTHER_JWT.rsplit('.').next().map(str::to_string));
            for (args, ran) in &runs {
                assert!(ran.success(), "{what}: {args}\n{ran}");
                for s in &secrets {
                    assert!(
                        !ran.stdout.contains(s.as_str()) && !ran.stderr.contains(s.as_str()),
                        "{what}: `{args}` printed {s}\n{ran}"
                    );
                }
            }
            let log = cli.data_dir().join("logs").join("rollout-tui.log");
            assert!(log.is_file(), "{what}: no log at {}", log.display());
            for file in walk(&cli.data_dir()) {
                let text =
                    String::from_utf8_lossy(&std::fs::read(&file).unwrap_or_default()).into_owned();
                for s in &secrets {
                    assert!(
                        !text.contains(s.as_str()),
                        "{what}: {s} in {}",
                        file.display()
                    );
                }
            }
            // Still useful: the reason is there, with the secret replaced.
            let v = parse_json(&runs[1].1.stdout, "status --json");
            let h = &v["rollouts"][0]["health"];
            assert_eq!(h["verdict"], "inconclusive", "{what}: {h}");
            let e = h["sourceError"].as_str().unwrap_or_default();
            match echo {
                Echo::NotJson => assert!(e.contains("malformed answer"), "{what}: {e}"),
                _ => assert!(e.contains("[redacted]"), "{what}: {e}"),
            }
            assert!(
                runs[2].1.stdout.contains("request_count"),
                "{what}: `status web` names the failure\n{}",
                runs[2].1.stdout
            );
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn check_config_reports_metrics_mistakes() {
    let cli = Cli::new();
    let cases = [
        (
            "[metrics]\nkind = \"cloud-monitoring\"\nservice = \"web\"\n",
            "metrics.project_id is required",
        ),
        (
            "[metrics]\nkind = \"prometheus\"\nendpoint = \"http://127.0.0.1:9090\"\n[metrics.prometheus]\nerrors = 'sum(x{rev=\"{revsion}\"})'\n",
            "unknown placeholder {revsion}",
        ),
        (
            "[metrics]\nkind = \"prometheus\"\nendpoint = \"localhost:9090\"\n",
            "metrics.endpoint",
        ),
        (
            "[metrics.rollouts.web]\nkind = \"simulator\"\n[metrics.rollouts.web.simulator]\ntime_compression = 0.5\n",
            "metrics.rollouts.web.simulator.time_compression",
        ),
        (
            "[metrics]\nkind = \"prometheus\"\nendpoint = \"http://alice:s3cret-pw@127.0.0.1:9090\"\n",
            "metrics.endpoint = 'http://[redacted]@127.0.0.1:9090' must not hold credentials",
        ),
        (
            "[metrics.rollouts.web]\nkind = \"prometheus\"\nendpoint = \"https://bob:s3cret-pw@prom.example/\"\n",
            "must not hold credentials",
        ),
        (
            "[metrics]\nkind = \"prometheus\"\nendpont = \"http://alice:s3cret-pw@127.0.0.1:9090\"\n",
            "unknown field `endpont`",
        ),
        (
            "[metrics]\nmax_response_bytes = 10\n",
            "metrics.max_response_bytes = 10 must be between 1024",
        ),
    ];
    for (text, needle) in cases {
        let path = cli.write_file("bad.toml", text);
        let mut cmd = cli.command(&["--config", path.to_str().unwrap(), "check-config"]);
        let ran = cli_harness::exec_cmd(&mut cmd);
        assert!(
            ran.is_clean_failure() && ran.stderr.contains(needle),
            "{text}\n{ran}"
        );
        assert!(!ran.stderr.contains("s3cret-pw"), "{text}\n{ran}");
    }
    let good = cli.write_file(
        "good.toml",
        "[metrics]\nkind = \"simulator\"\n[metrics.rollouts.web]\nwindow = \"10m\"\n",
    );
    let out = ok_cmd(&mut cli.command(&["--config", good.to_str().unwrap(), "check-config"]));
    let line = out
        .lines()
        .find(|l| l.starts_with("metrics:"))
        .unwrap_or_else(|| panic!("no metrics line:\n{out}"));
    assert!(line.contains("simulator (seed 1"), "{line}");
}

#[test]
fn text_status_shows_health_when_a_source_is_configured() {
    let cli = Cli::new();
    cli.ok(&["create", "web", "--version", "2.0.0"]);
    cli.ok(&["create", "api", "--version", "1.1.0"]);
    cli.ok(&["advance", "api"]); // 5 %
    let config = cli.write_file(
        "config.toml",
        "[metrics]\nkind = \"simulator\"\n[metrics.simulator.canary]\nerror_rate = 0.2\n",
    );
    let config = config.to_str().unwrap();

    let table = cli.ok(&["--config", config, "status"]);
    let line = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no row for {id}:\n{table}"))
            .to_string()
    };
    assert!(table.lines().next().unwrap().ends_with("HEALTH"), "{table}");
    assert!(
        line("api").contains("FAIL") && line("api").contains("error-rate"),
        "{table}"
    );
    // 0 % and no canary users: no canary traffic is inconclusive, never healthy.
    assert!(
        line("web").contains("inconclusive") && line("web").contains("min-requests"),
        "{table}"
    );

    let detail = cli.ok(&["--config", config, "status", "api"]);
    assert!(
        detail.contains("  health       FAIL (metrics: simulator"),
        "{detail}"
    );
    assert!(detail.contains("    canary  requests "), "{detail}");
    assert!(
        detail
            .lines()
            .any(|l| l.trim_start().starts_with("FAIL error-rate ")),
        "{detail}"
    );

    // Without a source the table has no HEALTH column and the detail no health section.
    assert!(!cli.ok(&["status"]).contains("HEALTH"));
    assert!(!cli.ok(&["status", "api"]).contains("health"));
}

#[test]
fn relative_gates_are_off_at_full_rollout_as_in_the_cockpit() {
    let cli = Cli::new();
    cli.ok(&["create", "full", "--version", "3.0.0"]);
    cli.ok(&["promote", "full", "--force"]);
    let v = status_with(&cli, "[metrics]\nkind = \"simulator\"\n");
    let h = &v["rollouts"][0]["health"];
    check_health_shape(h);
    let names: Vec<&str> = h["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert!(names.contains(&"error-rate"), "{h}");
    assert!(
        !names.contains(&"p99-vs-stable") && !names.contains(&"error-rate-vs-stable"),
        "no stable side to compare with at 100 %: {h}"
    );
}

/// The Prometheus source against Cloud Monitoring's PromQL endpoint: only `project_id`
/// is given, so the base URL is Google's and every query carries an ADC bearer token.
#[test]
fn prometheus_source_on_googles_promql_endpoint_with_adc() {
    let cli = Cli::new();
    created(&cli);
    let server = FakeServer::start(|req| {
        if req.path == "/token" {
            return Response::json(
                200,
                json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})
                    .to_string(),
            );
        }
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Response::json(
                401,
                r#"{"status":"error","errorType":"unauthorized","error":"no credentials"}"#,
            );
        }
        // One query per template for every revision (`revision=~"a|b"`), answered per
        // revision as Prometheus does.
        let q = req.param("query").unwrap_or_default();
        let now = Utc::now().timestamp();
        let Some((_, rest)) = q.split_once("revision=~\"") else {
            return Response::json(400, r#"{"status":"error","error":"not grouped"}"#);
        };
        let revisions = rest.split_once('"').map_or(rest, |(r, _)| r).split('|');
        let v = if q.contains("code=~") {
            "3".to_string()
        } else if q.contains("(timestamp(") {
            now.to_string()
        } else if q.starts_with("histogram_quantile") {
            "120".to_string()
        } else {
            "600".to_string()
        };
        let result: Vec<Value> = revisions
            .map(|r| json!({"metric": {"revision": r}, "value": [now, v]}))
            .collect();
        Response::json(
            200,
            json!({"status": "success", "data": {"resultType": "vector", "result": result}})
                .to_string(),
        )
    });
    let adc = adc_file(&cli, &server);
    // The endpoint override stands in for monitoring.googleapis.com; the path is Google's.
    let config = cli.write_file(
        "config.toml",
        &format!(
            "[metrics]\nkind = \"prometheus\"\nproject_id = \"proj-1\"\n\
             endpoint = \"{}/v1/projects/proj-1/location/global/prometheus\"\ncredentials = \"adc\"\n",
            server.url()
        ),
    );
    let mut cmd = cli.command(&["--config", config.to_str().unwrap(), "status", "--json"]);
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &adc);
    let ran = cli_harness::exec_cmd(&mut cmd);
    assert!(ran.success(), "{ran}");
    let v = parse_json(&ran.stdout, "status --json");
    let h = &v["rollouts"][0]["health"];
    check_health_shape(h);
    assert!(h.get("sourceError").is_none(), "{h}");
    assert_eq!(h["canary"]["requests"], 600);
    assert_eq!(h["canary"]["errors"], 3);
    assert_eq!(h["canary"]["p99Ms"], 120.0);
    let reqs = server.requests();
    let token = reqs
        .iter()
        .find(|r| r.path == "/token")
        .expect("a token request");
    assert!(String::from_utf8_lossy(&token.body).contains("monitoring.read"));
    let queries: Vec<&Request> = reqs.iter().filter(|r| r.path != "/token").collect();
    // One per template for both sides, and the stage's requests, errors and latency
    // buckets per side (the rollout's stage began at its creation; the range reaches back
    // over the 4m delay too).
    assert_eq!(queries.len(), 13, "{queries:#?}");
    let stage_ranges = queries
        .iter()
        .filter(|r| {
            let q = r.param("query").unwrap_or_default();
            q.contains("s]))") && q.contains("{revision=\"")
        })
        .count();
    assert_eq!(stage_ranges, 6, "{queries:#?}");
    // Google's PromQL endpoint is as late as its REST API: ranges reach back 5m + 4m.
    assert!(
        queries
            .iter()
            .any(|r| r.param("query").unwrap_or_default().contains("[9m]")),
        "{queries:#?}"
    );
    for r in queries {
        assert_eq!(
            r.path,
            "/v1/projects/proj-1/location/global/prometheus/api/v1/query"
        );
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[test]
fn status_of_one_rollout_shows_the_stage_s_evidence_under_stage_judgment() {
    let cli = Cli::new();
    let entered = (Utc::now() - chrono::Duration::minutes(20))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    cli.put_doc(
        "quiet",
        json!({
            "version": "2.0.0", "status": "progressive", "rolloutPercentage": 5,
            "stableRevision": "q-1", "canaryRevision": "q-2", "stageEnteredAt": entered,
        }),
    );
    // A canary that never errs: whatever minutes the clock lands on, its rate is under the
    // tolerated one, so the evidence gate always says how many more requests it needs.
    let config = cli.write_file(
        "config.toml",
        "[metrics]\nkind = \"simulator\"\n[metrics.simulator]\nrequests_per_second = 1.0\n\
         [metrics.simulator.canary]\nerror_rate = 0.0\n[gates]\njudgment = \"stage\"\n",
    );
    let out = cli.ok(&["--config", config.to_str().unwrap(), "status", "quiet"]);
    let stage = out
        .lines()
        .find(|l| l.trim_start().starts_with("stage   since "))
        .unwrap_or_else(|| panic!("no stage line:\n{out}"));
    assert!(stage.contains(": canary "), "{stage}");
    // The simulator counts requests over stable's configured p99 (384 ms) too.
    assert!(stage.contains("; over 384 ms: canary "), "{stage}");
    let evidence = out
        .lines()
        .find(|l| l.contains("min-requests"))
        .unwrap_or_else(|| panic!("no evidence gate:\n{out}"));
    // About 60 canary requests in 20 minutes: far from enough, and it says how far.
    assert!(
        evidence.contains("inconclusive: needs about ")
            && evidence.contains(" more canary requests: ~")
            && evidence.contains(" at the current rate (to show the canary error rate <= "),
        "{evidence}"
    );
    let relative = out
        .lines()
        .find(|l| l.contains("error-rate-vs-stable"))
        .unwrap_or_else(|| panic!("no relative gate:\n{out}"));
    assert!(relative.contains("this stage"), "{relative}");
    assert!(relative.contains("sequential test at 95 %"), "{relative}");

    // Window judgment of the same rollout: no stage evidence in the gates' words.
    let config = cli.write_file(
        "window.toml",
        "[metrics]\nkind = \"simulator\"\n[metrics.simulator]\nrequests_per_second = 1.0\n\
         [gates]\njudgment = \"window\"\n",
    );
    let out = cli.ok(&["--config", config.to_str().unwrap(), "status", "quiet"]);
    assert!(!out.contains("needs about"), "{out}");
    assert!(out.contains("requests < 200 minimum"), "{out}");
}
