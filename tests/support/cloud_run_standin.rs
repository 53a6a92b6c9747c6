//! A loopback stand-in for the Cloud Run Admin API v2, enough for traffic changes: one
//! service (`GET`/`PATCH .../services/S`) and its long-running operations (`GET
//! .../operations/ID`), answering with the documented shapes: a Service with `etag`, `traffic`,
//! `trafficStatuses` and `latestReadyRevision` (proto3 JSON: a 0 % target has no `percent`),
//! an Operation with `name`, `done`, `error` or `response`, and Google's error object.
//! Needs `mod http_fake` beside it in the test crate.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::http_fake::{FakeServer, Request, Response};

pub const PROJECT: &str = "proj-1";
pub const REGION: &str = "europe-west1";
pub const SERVICE: &str = "svc";
pub const REVISION: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION";
pub const LATEST: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST";

/// The `[actuator]` section pointing rollout-tui at `endpoint` (a stand-in's URL, or where
/// nothing answers), which waits at most `operation_timeout` for an operation.
pub fn actuator_section(endpoint: &str, operation_timeout: &str) -> String {
    format!(
        "[actuator]\nkind = \"cloud-run\"\nproject_id = \"{PROJECT}\"\nregion = \"{REGION}\"\n\
         service = \"{SERVICE}\"\nendpoint = \"{endpoint}\"\ncredentials = \"none\"\n\
         operation_timeout = \"{operation_timeout}\"\n"
    )
}

/// `create web` on the stand-in's revisions: stable svc-1, canary `canary`.
pub fn create_web(canary: &str) -> [&str; 8] {
    [
        "create",
        "web",
        "--version",
        "2.0.0",
        "--stable-revision",
        "svc-1",
        "--canary-revision",
        canary,
    ]
}

/// One traffic entry as the API writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub kind: String,
    pub revision: String,
    pub percent: u32,
    pub tag: String,
}

impl Target {
    pub fn revision(rev: &str, percent: u32) -> Target {
        Target {
            kind: REVISION.into(),
            revision: rev.into(),
            percent,
            tag: String::new(),
        }
    }

    fn json(&self, status: bool) -> Value {
        let mut v = json!({ "type": self.kind });
        if !self.revision.is_empty() {
            v["revision"] = json!(self.revision);
        }
        if self.percent > 0 {
            v["percent"] = json!(self.percent);
        }
        if !self.tag.is_empty() {
            v["tag"] = json!(self.tag);
            if status {
                v["uri"] = json!(format!(
                    "https://{}---{SERVICE}-abc123-ew.a.run.app",
                    self.tag
                ));
            }
        }
        v
    }
}

struct PendingOp {
    polls_left: u32,
    /// The traffic it sets when it succeeds.
    traffic: Vec<Target>,
    failure: Option<(i32, String)>,
    done: bool,
}

/// What the stand-in holds and how it misbehaves.
pub struct State {
    pub revisions: BTreeSet<String>,
    pub latest_ready: String,
    /// Configured (`traffic`) and serving (`trafficStatuses`) splits.
    pub traffic: Vec<Target>,
    pub statuses: Vec<Target>,
    pub generation: u64,
    /// Polls an operation answers `done: false` before it finishes.
    pub op_polls: u32,
    /// The next operation ends with this `error` (gRPC code, message) instead.
    pub op_error: Option<(i32, String)>,
    /// This many coming PATCHes find the etag moved by another writer: 409 ABORTED.
    pub stale_patches: u32,
    /// PATCHes are refused with 403 PERMISSION_DENIED and this message (reading is allowed).
    pub forbid_updates: Option<String>,
    /// Operations finish but the service keeps serving what it served.
    pub serve_unchanged: bool,
    /// The traffic list of every PATCH that changed something.
    pub applied: Vec<Vec<Target>>,
    ops: BTreeMap<String, PendingOp>,
    next_op: u64,
}

impl State {
    fn etag(&self) -> String {
        format!("\"gen-{}\"", self.generation)
    }

    fn service_json(&self) -> Value {
        let name = format!("projects/{PROJECT}/locations/{REGION}/services/{SERVICE}");
        json!({
            "name": name,
            "uid": "0b7a6e1e-5a0d-4d8f-9d1e-2f4c8a6b1c3d",
            "generation": self.generation.to_string(),
            "observedGeneration": self.generation.to_string(),
            "etag": self.etag(),
            "template": {
                "containers": [{"image": "europe-docker.pkg.dev/proj-1/app/svc:2.0.0"}]
            },
            "traffic": self.traffic.iter().map(|t| t.json(false)).collect::<Vec<_>>(),
            "trafficStatuses": self.statuses.iter().map(|t| t.json(true)).collect::<Vec<_>>(),
            "latestReadyRevision": format!("projects/{PROJECT}/locations/{REGION}/revisions/{}", self.latest_ready),
            "latestCreatedRevision": format!("projects/{PROJECT}/locations/{REGION}/revisions/{}", self.latest_ready),
            "uri": format!("https://{SERVICE}-abc123-ew.a.run.app"),
            "reconciling": self.traffic != self.statuses,
        })
    }
}

pub struct CloudRunStandin {
    pub server: FakeServer,
    pub state: Arc<Mutex<State>>,
}

fn error(code: u16, status: &str, message: &str) -> Response {
    Response::json(
        code,
        json!({"error": {"code": code, "message": message, "status": status}}).to_string(),
    )
}

impl CloudRunStandin {
    /// A service serving 100 % to `stable`, with `revisions` existing (stable included).
    pub fn start(stable: &str, revisions: &[&str]) -> CloudRunStandin {
        let mut set: BTreeSet<String> = revisions.iter().map(|r| r.to_string()).collect();
        set.insert(stable.to_string());
        let start = vec![Target::revision(stable, 100)];
        let state = Arc::new(Mutex::new(State {
            latest_ready: set.iter().next_back().cloned().unwrap_or_default(),
            revisions: set,
            traffic: start.clone(),
            statuses: start,
            generation: 1,
            op_polls: 0,
            op_error: None,
            stale_patches: 0,
            forbid_updates: None,
            serve_unchanged: false,
            applied: Vec::new(),
            ops: BTreeMap::new(),
            next_op: 1,
        }));
        let s = state.clone();
        let server = FakeServer::start(move |req| answer(&mut s.lock().unwrap(), req));
        CloudRunStandin { server, state }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// A config for the cockpit or the wall acting on (or reading) this stand-in, without
    /// metrics, refreshed every second.
    pub fn screen_config(&self) -> String {
        format!(
            "[metrics]\nkind = \"none\"\nrefresh = \"1s\"\n\n{}",
            actuator_section(&self.url(), "20s")
        )
    }

    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }

    /// Another tool changes the split: configured and serving at once, with a new etag.
    pub fn set_split(&self, targets: Vec<Target>) {
        let mut st = self.state.lock().unwrap();
        st.traffic = targets.clone();
        st.statuses = targets;
        st.generation += 1;
    }

    /// The serving split as (revision, percent), shares above 0.
    pub fn serving(&self) -> Vec<(String, u32)> {
        let st = self.state.lock().unwrap();
        let mut out: Vec<_> = st
            .statuses
            .iter()
            .filter(|t| t.percent > 0)
            .map(|t| (t.revision.clone(), t.percent))
            .collect();
        out.sort();
        out
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }
}

fn answer(st: &mut State, req: &Request) -> Response {
    let service_path = format!("/v2/projects/{PROJECT}/locations/{REGION}/services/");
    let ops_path = format!("/v2/projects/{PROJECT}/locations/{REGION}/operations/");
    if let Some(name) = req.path.strip_prefix(&service_path) {
        if name != SERVICE {
            return error(
                404,
                "NOT_FOUND",
                &format!(
                    "Resource '{name}' of kind 'SERVICE' in region '{REGION}' in project '{PROJECT}' does not exist."
                ),
            );
        }
        return match req.method.as_str() {
            "GET" => Response::json(200, st.service_json().to_string()),
            "PATCH" => patch(st, req),
            _ => error(405, "UNIMPLEMENTED", "method not allowed"),
        };
    }
    if let Some(id) = req.path.strip_prefix(&ops_path)
        && req.method == "GET"
    {
        return poll(st, id);
    }
    error(404, "NOT_FOUND", &format!("no such resource: {}", req.path))
}

fn patch(st: &mut State, req: &Request) -> Response {
    if let Some(msg) = &st.forbid_updates {
        return error(403, "PERMISSION_DENIED", msg);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    };
    if req.param("updateMask") != Some("traffic") {
        return error(
            400,
            "INVALID_ARGUMENT",
            "update_mask must be 'traffic' here",
        );
    }
    if body.get("template").is_some() {
        // What Cloud Run answers when a template names a revision that exists.
        return error(
            409,
            "ALREADY_EXISTS",
            "Revision named 'svc-00097-6cg' with different configuration already exists.",
        );
    }
    if st.stale_patches > 0 {
        st.stale_patches -= 1;
        st.generation += 1;
    }
    if body.get("etag").and_then(Value::as_str) != Some(&st.etag()) {
        return error(
            409,
            "ABORTED",
            "The etag provided does not match the current etag of the resource; it was modified concurrently.",
        );
    }
    let mut targets = Vec::new();
    for t in body["traffic"].as_array().cloned().unwrap_or_default() {
        let kind = t["type"].as_str().unwrap_or("").to_string();
        let revision = t["revision"].as_str().unwrap_or("").to_string();
        if kind != REVISION && kind != LATEST {
            return error(
                400,
                "INVALID_ARGUMENT",
                &format!("unknown traffic type '{kind}'"),
            );
        }
        if kind == REVISION && !st.revisions.contains(&revision) {
            return error(
                400,
                "INVALID_ARGUMENT",
                &format!("Revision '{revision}' does not exist."),
            );
        }
        let percent = t["percent"].as_u64().unwrap_or(0) as u32;
        targets.push(Target {
            kind,
            revision,
            percent,
            tag: t["tag"].as_str().unwrap_or("").to_string(),
        });
    }
    let total: u32 = targets.iter().map(|t| t.percent).sum();
    if total != 100 {
        return error(
            400,
            "INVALID_ARGUMENT",
            &format!("Traffic percents must add up to 100, not {total}."),
        );
    }
    let op_name = format!(
        "projects/{PROJECT}/locations/{REGION}/operations/op-{:04}",
        st.next_op
    );
    st.next_op += 1;
    if req.param("validateOnly") == Some("true") {
        let mut planned = st.service_json();
        planned["traffic"] = Value::Array(targets.iter().map(|t| t.json(false)).collect());
        return Response::json(
            200,
            json!({"name": op_name, "done": true, "response": planned}).to_string(),
        );
    }
    st.traffic = targets.clone();
    st.generation += 1;
    st.applied.push(targets.clone());
    let op = PendingOp {
        polls_left: st.op_polls,
        traffic: targets,
        failure: st.op_error.take(),
        done: false,
    };
    st.ops.insert(op_name.clone(), op);
    if st.op_polls == 0 {
        return finish(st, &op_name);
    }
    Response::json(200, running(&op_name).to_string())
}

fn running(name: &str) -> Value {
    json!({
        "name": name,
        "metadata": {"@type": "type.googleapis.com/google.cloud.run.v2.Service"},
        "done": false,
    })
}

fn poll(st: &mut State, id: &str) -> Response {
    let name = format!("projects/{PROJECT}/locations/{REGION}/operations/{id}");
    let Some(op) = st.ops.get_mut(&name) else {
        return error(404, "NOT_FOUND", &format!("Operation '{name}' not found."));
    };
    if !op.done && op.polls_left > 0 {
        op.polls_left -= 1;
        return Response::json(200, running(&name).to_string());
    }
    finish(st, &name)
}

fn finish(st: &mut State, name: &str) -> Response {
    let op = st.ops.get_mut(name).expect("operation exists");
    op.done = true;
    if let Some((code, message)) = op.failure.clone() {
        // The change did not happen: the configured split goes back to what serves.
        st.traffic = st.statuses.clone();
        return Response::json(
            200,
            json!({"name": name, "done": true, "error": {"code": code, "message": message}})
                .to_string(),
        );
    }
    if !st.serve_unchanged {
        st.statuses = op.traffic.clone();
    }
    let service = st.service_json();
    Response::json(
        200,
        json!({"name": name, "done": true, "response": service}).to_string(),
    )
}
