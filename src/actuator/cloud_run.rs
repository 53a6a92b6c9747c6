//! The Cloud Run Admin API v2 client that sets a service's traffic split between a stable and a
//! canary revision.
//!
//! One change is: read the service (for a fresh `etag`), `PATCH ...?updateMask=traffic` with
//! the two revision targets, wait on the returned long-running operation, and read the service
//! again to confirm `trafficStatuses` serve the split. `template` is never sent: only `traffic`
//! changes, so no revision is created and Cloud Run never answers 409 for a reused revision
//! name. A 409 (another writer moved the etag) is retried once after a fresh read.
//!
//! Revision names compare by their last path segment: the API writes `svc-00098-xyz` in
//! traffic targets and `projects/.../revisions/svc-00098-xyz` in `latestReadyRevision`.
//!
//! Every text taken from an answer is scrubbed of secrets and bounded before it is kept.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::config::CloudRunSettings;
use crate::domain::units::{Percent, format_duration};
use crate::metrics::http::{CLOUD_PLATFORM, Http, HttpFailure};
use crate::metrics::redact;

pub const TRAFFIC_REVISION: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION";
pub const TRAFFIC_LATEST: &str = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST";
/// Permission a traffic change needs; reading needs `run.services.get`.
pub const UPDATE_PERMISSION: &str = "run.services.update";
pub const GET_PERMISSION: &str = "run.services.get";
/// A Service resource is a few KiB; an answer this large is not one.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Extra tries of one request after a 429, a 5xx or a connection failure.
const REQUEST_RETRIES: u32 = 2;
/// Longest revision name or operation name kept from an answer (Cloud Run's are under 100).
const NAME_CHARS: usize = 120;
const DEFAULT_POLL_FIRST: Duration = Duration::from_millis(500);
const DEFAULT_POLL_CAP: Duration = Duration::from_secs(5);
/// Reads of the service after its operation finished, while what serves is still settling.
const CONFIRM_READS: u32 = 3;

/// Why a percentage cannot be set as a Cloud Run split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "Cloud Run routes whole percents: {} cannot be set there; use a whole percentage (a stage below 1 % is sent as 1 %)",
    spaced(*.0)
)]
pub struct NotRoutable(pub Percent);

/// The whole percent Cloud Run gets for a document percentage.
///
/// A stage below 1 % (a 0.5 % cohort) is sent as 1 %: the smallest share Cloud Run can route.
/// Rounding it down to 0 would send the canary no traffic at all and make the stage a silent
/// no-op; refusing would make such plans unusable. The document keeps its own value and the
/// confirm dialog shows both (`describe`). Any other fraction (12.5 %) is refused rather than
/// rounded: up would widen exposure beyond what the operator chose, down would quietly lag
/// behind the document, and a plan can always be written in whole percents.
pub fn cloud_run_percent(p: Percent) -> Result<u8, NotRoutable> {
    let h = p.hundredths();
    if h.is_multiple_of(100) {
        Ok((h / 100) as u8)
    } else if h < 100 {
        Ok(1)
    } else {
        Err(NotRoutable(p))
    }
}

/// "0.5 %", "25 %": the percent sign spaced as in the rest of the actuator's texts.
fn spaced(p: Percent) -> String {
    format!("{} %", p.to_string().trim_end_matches('%'))
}

/// The last path segment: `projects/p/locations/r/revisions/svc-1` -> `svc-1`.
pub fn short_name(name: &str) -> &str {
    name.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(name)
}

/// A split to set: the stable revision gets `100 - canary_percent`, the canary the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSplit {
    pub stable: String,
    /// None on a rollback: the canary is left out of the traffic list entirely, so a canary
    /// revision that no longer exists cannot make Cloud Run refuse the rollback.
    pub canary: Option<String>,
    pub canary_percent: u8,
    /// The document's percentage, kept when it differs from what Cloud Run gets.
    pub document: Option<Percent>,
}

impl TargetSplit {
    /// The split for a document percentage, through `cloud_run_percent`.
    pub fn for_percent(
        stable: &str,
        canary: &str,
        percent: Percent,
    ) -> Result<TargetSplit, ActuatorError> {
        let stable = short_name(stable.trim());
        let canary = short_name(canary.trim());
        if stable.is_empty() || canary.is_empty() {
            return Err(ActuatorError::Revisions(
                "the rollout names no stable or no canary revision (stableRevision, canaryRevision)"
                    .into(),
            ));
        }
        if stable == canary {
            return Err(ActuatorError::Revisions(format!(
                "the stable and canary revisions are both {stable}; a split needs two revisions"
            )));
        }
        let canary_percent = cloud_run_percent(percent)?;
        Ok(TargetSplit {
            stable: stable.to_string(),
            canary: Some(canary.to_string()),
            canary_percent,
            document: (Percent::from_hundredths(u16::from(canary_percent) * 100) != Some(percent))
                .then_some(percent),
        })
    }

    /// 100 % to the stable revision and nothing else.
    pub fn rollback(stable: &str) -> Result<TargetSplit, ActuatorError> {
        let stable = short_name(stable.trim());
        if stable.is_empty() {
            return Err(ActuatorError::Revisions(
                "the rollout names no stable revision (stableRevision) to roll back to".into(),
            ));
        }
        Ok(TargetSplit {
            stable: stable.to_string(),
            canary: None,
            canary_percent: 0,
            document: None,
        })
    }

    pub fn stable_percent(&self) -> u8 {
        100 - self.canary_percent
    }

    /// " (document 0.5 %)" when Cloud Run gets another share than the document says.
    pub fn document_note(&self) -> String {
        self.document
            .map(|d| format!(" (document {})", spaced(d)))
            .unwrap_or_default()
    }

    /// For a confirm dialog: "Cloud Run: svc-00097-6cg 99 % · svc-00098-xyz 1 % (document 0.5 %)".
    pub fn describe(&self) -> String {
        let mut text = format!("Cloud Run: {} {} %", self.stable, self.stable_percent());
        if let Some(c) = &self.canary {
            text.push_str(&format!(" · {c} {} %", self.canary_percent));
        }
        text.push_str(&self.document_note());
        text
    }

    /// The `traffic` list sent: revision targets only, never `LATEST` (a new deploy would move
    /// traffic by itself). A 0 % target is sent only to carry the canary tag.
    pub fn traffic(&self, canary_tag: Option<&str>) -> Vec<Value> {
        let mut targets = Vec::new();
        if self.stable_percent() > 0 {
            targets.push(json!({
                "type": TRAFFIC_REVISION,
                "revision": self.stable,
                "percent": self.stable_percent(),
            }));
        }
        if let Some(c) = &self.canary
            && (self.canary_percent > 0 || canary_tag.is_some())
        {
            let mut t = json!({
                "type": TRAFFIC_REVISION,
                "revision": c,
                "percent": self.canary_percent,
            });
            if let Some(tag) = canary_tag {
                t["tag"] = json!(tag);
            }
            targets.push(t);
        }
        targets
    }

    /// The PATCH body: the etag for optimistic concurrency and the traffic list, nothing else.
    pub fn body(&self, canary_tag: Option<&str>, etag: &str) -> Value {
        json!({ "etag": etag, "traffic": self.traffic(canary_tag) })
    }
}

/// `describe_split(&split)`: the text a confirm dialog shows for a planned split.
pub fn describe_split(split: &TargetSplit) -> String {
    split.describe()
}

/// Who gets what, read from the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSplit {
    pub stable_revision: String,
    pub canary_revision: Option<String>,
    pub stable_percent: u8,
    pub canary_percent: u8,
    /// Other revisions with a share above 0, by short name.
    pub others: Vec<(String, u8)>,
    /// The service's etag when read; the next PATCH sends it.
    pub etag: String,
    /// The configured `traffic` differs from what serves (`trafficStatuses`): a change is
    /// still being applied.
    pub settling: bool,
}

impl LiveSplit {
    /// Whether it serves exactly `split`.
    pub fn serves(&self, split: &TargetSplit) -> bool {
        self.stable_percent == split.stable_percent()
            && self.canary_percent == split.canary_percent
            && self.others.is_empty()
    }

    /// "svc-00097-6cg 95 % · svc-00098-xyz 5 %", shares above 0 only (stable always shown).
    pub fn describe(&self) -> String {
        let mut parts = vec![format!(
            "{} {} %",
            self.stable_revision, self.stable_percent
        )];
        if let Some(c) = &self.canary_revision
            && self.canary_percent > 0
        {
            parts.push(format!("{c} {} %", self.canary_percent));
        }
        for (rev, p) in &self.others {
            parts.push(format!("{rev} {p} %"));
        }
        parts.join(" · ")
    }
}

/// Whether the live split is the one the rollout expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    None,
    Changed { live: LiveSplit, expected: u8 },
}

impl Drift {
    /// The text for the screen, or None without drift.
    pub fn message(&self) -> Option<String> {
        match self {
            Drift::None => None,
            Drift::Changed { live, expected } => Some(format!(
                "Cloud Run serves {} but the rollout expects {} {} % · {} {expected} %: the split was changed outside rollout-tui",
                live.describe(),
                live.stable_revision,
                100 - expected,
                live.canary_revision.as_deref().unwrap_or("canary"),
            )),
        }
    }
}

/// Compares the live split with the canary share the rollout expects (`cloud_run_percent` of
/// its percentage). Only what serves counts: a change still settling is judged once it serves.
pub fn drift(live: &LiveSplit, expected_canary: u8) -> Drift {
    let expected_canary = expected_canary.min(100);
    let matches = live.canary_percent == expected_canary
        && live.stable_percent == 100 - expected_canary
        && live.others.is_empty();
    if matches {
        Drift::None
    } else {
        Drift::Changed {
            live: live.clone(),
            expected: expected_canary,
        }
    }
}

/// What went wrong, with what to do about it. Every text from an answer is scrubbed and bounded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActuatorError {
    #[error(transparent)]
    NotRoutable(#[from] NotRoutable),
    #[error("Cloud Run: {0}")]
    Revisions(String),
    #[error(
        "Cloud Run: {service} changed while its traffic was being set (etag stale twice, after a fresh read): {detail}. Someone else is changing the service; read the split and retry"
    )]
    StaleEtag { service: String, detail: String },
    #[error(
        "Cloud Run refused: the account rollout-tui runs as needs permission {permission} on {service} (roles/run.developer has it): {detail}"
    )]
    PermissionDenied {
        permission: &'static str,
        service: String,
        detail: String,
    },
    #[error(
        "Cloud Run: service {service} not found: {detail}. Check actuator.project_id, region and service"
    )]
    ServiceNotFound { service: String, detail: String },
    #[error(
        "Cloud Run: revision {revision} does not exist in {service}: {detail}. Check the rollout's stableRevision and canaryRevision"
    )]
    RevisionNotFound {
        revision: String,
        service: String,
        detail: String,
    },
    #[error("Cloud Run: the traffic change failed (operation {operation}): {detail}")]
    OperationFailed { operation: String, detail: String },
    #[error(
        "Cloud Run: {what} did not finish within {after} (actuator.operation_timeout); the change may still apply: read the split before retrying"
    )]
    Timeout { what: String, after: String },
    #[error("Cloud Run: after the change it serves {live}, not {expected}; re-apply or roll back")]
    NotConfirmed { expected: String, live: String },
    #[error("Cloud Run: {0}")]
    Request(String),
    #[error("Cloud Run answered something unexpected: {0}")]
    Malformed(String),
}

/// A dry run: what the service serves now and what Cloud Run would configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub current: LiveSplit,
    pub planned: LiveSplit,
}

/// A confirmed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub live: LiveSplit,
    /// Admin API requests this change made (reads, PATCHes, operation polls).
    pub calls: u32,
    /// PATCHes answered 409 and redone after a fresh read (0 or 1).
    pub stale_etag_retries: u32,
}

pub struct CloudRunActuator {
    http: Http,
    base: String,
    service_name: String,
    canary_tag: Option<String>,
    operation_timeout: Duration,
    poll_first: Duration,
    poll_cap: Duration,
    calls: AtomicU32,
}

impl fmt::Debug for CloudRunActuator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudRunActuator")
            .field("service", &self.service_name)
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceDoc {
    #[serde(default)]
    etag: String,
    #[serde(default)]
    traffic: Vec<TrafficEntry>,
    #[serde(default)]
    traffic_statuses: Vec<TrafficEntry>,
    #[serde(default)]
    latest_ready_revision: String,
}

/// A `TrafficTarget` or `TrafficTargetStatus`; proto3 JSON leaves out zero values (a 0 %
/// target has no `percent`).
#[derive(Deserialize)]
struct TrafficEntry {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    revision: String,
    #[serde(default)]
    percent: u32,
}

#[derive(Deserialize)]
struct Operation {
    #[serde(default)]
    name: String,
    #[serde(default)]
    done: bool,
    error: Option<OperationError>,
    response: Option<Value>,
}

#[derive(Deserialize)]
struct OperationError {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    message: String,
}

/// gRPC codes an operation error may carry.
const CODE_INVALID_ARGUMENT: i32 = 3;
const CODE_NOT_FOUND: i32 = 5;
const CODE_PERMISSION_DENIED: i32 = 7;

impl CloudRunActuator {
    pub fn new(settings: &CloudRunSettings) -> Result<CloudRunActuator, String> {
        let http = Http::new(settings.credentials, REQUEST_RETRIES, MAX_ANSWER_BYTES)?
            .with_scope(CLOUD_PLATFORM)
            .with_max_body_key(None);
        Ok(CloudRunActuator {
            http,
            base: settings.endpoint.trim_end_matches('/').to_string(),
            service_name: settings.service_name(),
            canary_tag: settings.canary_tag.clone(),
            operation_timeout: settings.operation_timeout,
            poll_first: DEFAULT_POLL_FIRST,
            poll_cap: DEFAULT_POLL_CAP,
            calls: AtomicU32::new(0),
        })
    }

    /// How often an operation is polled: `first`, doubling (with jitter) up to `cap`.
    pub fn with_poll_interval(mut self, first: Duration, cap: Duration) -> CloudRunActuator {
        self.poll_first = first;
        self.poll_cap = cap.max(first);
        self
    }

    /// One line: which service, where.
    pub fn describe(&self) -> String {
        format!(
            "Cloud Run {} via {} (tag {})",
            self.service_name,
            self.base,
            self.canary_tag.as_deref().unwrap_or("none")
        )
    }

    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// Admin API requests made so far by this client.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The live split (`trafficStatuses`) between `stable` and `canary`.
    pub async fn read(
        &self,
        stable: &str,
        canary: Option<&str>,
    ) -> Result<LiveSplit, ActuatorError> {
        let deadline = Instant::now() + self.operation_timeout;
        let doc = self.get_service(deadline, &mut 0).await?;
        Ok(self.split_of(&doc, &doc.traffic_statuses, stable, canary))
    }

    /// A server-side dry run (`validateOnly=true`): Cloud Run checks the change (revisions,
    /// permissions, etag) and answers the split it would configure; nothing changes.
    pub async fn plan(&self, split: &TargetSplit) -> Result<Planned, ActuatorError> {
        let deadline = Instant::now() + self.operation_timeout;
        let calls = &mut 0;
        let (doc, op, _) = self
            .patch_with_fresh_etag(split, true, deadline, calls)
            .await?;
        let current = self.split_of(
            &doc,
            &doc.traffic_statuses,
            &split.stable,
            split.canary.as_deref(),
        );
        let op = self.wait(op, split, deadline, calls).await?;
        let planned = match op.response.map(serde_json::from_value::<ServiceDoc>) {
            Some(Ok(resp)) if !resp.traffic.is_empty() => {
                self.split_of(&resp, &resp.traffic, &split.stable, split.canary.as_deref())
            }
            // An answer without the service: what was sent is what would be configured.
            _ => LiveSplit {
                stable_revision: split.stable.clone(),
                canary_revision: split.canary.clone(),
                stable_percent: split.stable_percent(),
                canary_percent: split.canary_percent,
                others: Vec::new(),
                etag: current.etag.clone(),
                settling: false,
            },
        };
        Ok(Planned { current, planned })
    }

    /// Sets `split` and returns once Cloud Run serves it.
    pub async fn apply(&self, split: &TargetSplit) -> Result<Applied, ActuatorError> {
        let calls = &mut 0;
        let deadline = Instant::now() + self.operation_timeout;
        let (_, op, stale_etag_retries) = self
            .patch_with_fresh_etag(split, false, deadline, calls)
            .await?;
        self.wait(op, split, deadline, calls).await?;
        // A finished operation normally serves the new split already; while the configured
        // split still differs from what serves, a few more reads give it time.
        let mut reads = 0;
        let live = loop {
            let doc = self.get_service(deadline, calls).await?;
            let live = self.split_of(
                &doc,
                &doc.traffic_statuses,
                &split.stable,
                split.canary.as_deref(),
            );
            reads += 1;
            let wait = crate::backoff::jittered(self.poll_first, self.poll_cap, reads);
            if live.serves(split)
                || !live.settling
                || reads >= CONFIRM_READS
                || Instant::now() + wait >= deadline
            {
                break live;
            }
            tokio::time::sleep(wait).await;
        };
        if !live.serves(split) {
            return Err(ActuatorError::NotConfirmed {
                expected: split
                    .describe()
                    .trim_start_matches("Cloud Run: ")
                    .to_string(),
                live: live.describe(),
            });
        }
        tracing::info!(service = %self.service_name, split = %split.describe(), calls = *calls, "traffic split confirmed");
        Ok(Applied {
            live,
            calls: *calls,
            stale_etag_retries,
        })
    }

    /// 100 % to `stable`, the canary left out (see `TargetSplit::rollback`).
    pub async fn rollback(&self, stable: &str) -> Result<Applied, ActuatorError> {
        self.apply(&TargetSplit::rollback(stable)?).await
    }

    fn url_for(&self, name: &str) -> Result<Url, ActuatorError> {
        let text = format!("{}/v2/{name}", self.base);
        Url::parse(&text)
            .map_err(|e| ActuatorError::Request(self.http.scrub(&format!("bad URL {text}: {e}"))))
    }

    /// Counts one Admin API request, for this client and for the change making it.
    fn count(&self, calls: &mut u32) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        *calls += 1;
    }

    async fn get_service(
        &self,
        deadline: Instant,
        calls: &mut u32,
    ) -> Result<ServiceDoc, ActuatorError> {
        let url = self.url_for(&self.service_name)?;
        self.count(calls);
        let body = self
            .http
            .send(Method::GET, url, None, deadline)
            .await
            .map_err(|f| self.failure(f, GET_PERMISSION, None, "reading the service"))?;
        serde_json::from_str(&body).map_err(|e| {
            ActuatorError::Malformed(format!("the service {}: {e}", self.service_name))
        })
    }

    /// Reads the service for its etag and PATCHes the split; a 409 is redone once after a
    /// fresh read. Returns the service as read before the PATCH, the operation, and how many
    /// 409s were redone.
    async fn patch_with_fresh_etag(
        &self,
        split: &TargetSplit,
        validate_only: bool,
        deadline: Instant,
        calls: &mut u32,
    ) -> Result<(ServiceDoc, Operation, u32), ActuatorError> {
        let mut retries = 0;
        loop {
            let doc = self.get_service(deadline, calls).await?;
            let mut url = self.url_for(&self.service_name)?;
            url.set_query(Some(if validate_only {
                "updateMask=traffic&validateOnly=true"
            } else {
                "updateMask=traffic"
            }));
            let body = split.body(self.canary_tag.as_deref(), &doc.etag);
            self.count(calls);
            match self
                .http
                .send(Method::PATCH, url, Some(&body), deadline)
                .await
            {
                Ok(text) => {
                    let op = self.operation(&text)?;
                    return Ok((doc, op, retries));
                }
                // ALREADY_EXISTS is about a revision name in `template`, which is never sent:
                // not a stale etag, and a retry would not help.
                Err(f)
                    if f.status == Some(409) && f.reason.as_deref() != Some("ALREADY_EXISTS") =>
                {
                    if retries == 0 {
                        retries += 1;
                        tracing::info!(service = %self.service_name, "Cloud Run answered 409 (stale etag); reading the service again");
                        continue;
                    }
                    return Err(ActuatorError::StaleEtag {
                        service: self.service_name.clone(),
                        detail: f.detail,
                    });
                }
                Err(f) => {
                    return Err(self.failure(f, UPDATE_PERMISSION, Some(split), "setting traffic"));
                }
            }
        }
    }

    fn operation(&self, text: &str) -> Result<Operation, ActuatorError> {
        let op: Operation = serde_json::from_str(text)
            .map_err(|e| ActuatorError::Malformed(format!("an operation: {e}")))?;
        if !op.done && !valid_operation_name(&op.name) {
            return Err(ActuatorError::Malformed(format!(
                "an operation named '{}'",
                self.clean_name(&op.name)
            )));
        }
        Ok(op)
    }

    /// Polls `op` until done or `deadline`; an operation ending in `error` is a failure.
    async fn wait(
        &self,
        mut op: Operation,
        split: &TargetSplit,
        deadline: Instant,
        calls: &mut u32,
    ) -> Result<Operation, ActuatorError> {
        let mut attempt = 0;
        while !op.done {
            let wait = crate::backoff::jittered(self.poll_first, self.poll_cap, attempt);
            if Instant::now() + wait >= deadline {
                return Err(ActuatorError::Timeout {
                    what: format!("operation {}", self.clean_name(&op.name)),
                    after: format_duration(self.operation_timeout),
                });
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
            let url = self.url_for(&op.name)?;
            self.count(calls);
            let text = self
                .http
                .send(Method::GET, url, None, deadline)
                .await
                .map_err(|f| match f.status {
                    // Not the service: the operation itself is gone.
                    Some(404) => {
                        ActuatorError::Request(format!("waiting on the operation: {}", f.text))
                    }
                    _ => self.failure(f, GET_PERMISSION, Some(split), "waiting on the operation"),
                })?;
            op = self.operation(&text)?;
        }
        let Some(err) = &op.error else {
            return Ok(op);
        };
        let detail = self.http.scrub_body_text(&err.message);
        let operation = self.clean_name(&op.name);
        if matches!(err.code, CODE_NOT_FOUND | CODE_INVALID_ARGUMENT)
            && let Some(revision) = named_revision(&detail, split)
        {
            return Err(ActuatorError::RevisionNotFound {
                revision,
                service: self.service_name.clone(),
                detail,
            });
        }
        if err.code == CODE_PERMISSION_DENIED {
            return Err(ActuatorError::PermissionDenied {
                permission: UPDATE_PERMISSION,
                service: self.service_name.clone(),
                detail,
            });
        }
        Err(ActuatorError::OperationFailed { operation, detail })
    }

    /// A failed request as a typed error; `split` names the revisions a 400/404 may be about.
    fn failure(
        &self,
        f: HttpFailure,
        permission: &'static str,
        split: Option<&TargetSplit>,
        what: &str,
    ) -> ActuatorError {
        let service = self.service_name.clone();
        if f.timed_out {
            return ActuatorError::Timeout {
                what: what.to_string(),
                after: format_duration(self.operation_timeout),
            };
        }
        let revision = match f.status {
            Some(400 | 404) => split.and_then(|s| named_revision(&f.detail, s)),
            _ => None,
        };
        if let Some(revision) = revision {
            return ActuatorError::RevisionNotFound {
                revision,
                service,
                detail: f.detail,
            };
        }
        match f.status {
            Some(403) => ActuatorError::PermissionDenied {
                permission,
                service,
                detail: f.detail,
            },
            Some(404) => ActuatorError::ServiceNotFound {
                service,
                detail: f.detail,
            },
            _ => ActuatorError::Request(format!("{what}: {}", f.text)),
        }
    }

    fn clean_name(&self, name: &str) -> String {
        redact::clip(&self.http.scrub(name), NAME_CHARS)
    }

    /// The split `entries` describe, between `stable` and `canary`. A `LATEST` entry counts
    /// for the latest ready revision.
    fn split_of(
        &self,
        doc: &ServiceDoc,
        entries: &[TrafficEntry],
        stable: &str,
        canary: Option<&str>,
    ) -> LiveSplit {
        let stable = short_name(stable);
        let canary = canary.map(short_name);
        let shares = |list: &[TrafficEntry]| {
            let mut by_rev: BTreeMap<String, u32> = BTreeMap::new();
            for e in list {
                let rev = if e.kind == TRAFFIC_LATEST || e.revision.is_empty() {
                    short_name(&doc.latest_ready_revision)
                } else {
                    short_name(&e.revision)
                };
                *by_rev.entry(rev.to_string()).or_default() += e.percent;
            }
            by_rev
        };
        let live = shares(entries);
        let percent = |rev: &str| live.get(rev).map_or(0, |p| (*p).min(100) as u8);
        let others = live
            .iter()
            .filter(|(rev, p)| **p > 0 && rev.as_str() != stable && Some(rev.as_str()) != canary)
            .map(|(rev, p)| (self.clean_name(rev), (*p).min(100) as u8))
            .collect();
        LiveSplit {
            stable_revision: stable.to_string(),
            canary_revision: canary.map(str::to_string),
            stable_percent: percent(stable),
            canary_percent: canary.map_or(0, percent),
            others,
            etag: doc.etag.clone(),
            settling: shares(&doc.traffic) != shares(&doc.traffic_statuses),
        }
    }
}

/// Which of the split's revisions a message names (Cloud Run names the missing one).
fn named_revision(detail: &str, split: &TargetSplit) -> Option<String> {
    let named = |rev: &str| {
        detail.match_indices(rev).any(|(at, _)| {
            let before = detail[..at].chars().next_back();
            let after = detail[at + rev.len()..].chars().next();
            let edge = |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'));
            edge(before) && edge(after)
        })
    };
    split
        .canary
        .iter()
        .chain(std::iter::once(&split.stable))
        .find(|rev| named(rev))
        .cloned()
}

/// `projects/P/locations/R/operations/ID`: safe to put in a request path.
fn valid_operation_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    parts.len() == 6
        && parts[0] == "projects"
        && parts[2] == "locations"
        && parts[4] == "operations"
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(h: u16) -> Percent {
        Percent::from_hundredths(h).unwrap()
    }

    #[test]
    fn whole_percents_pass_below_one_rounds_up_other_fractions_refused() {
        assert_eq!(cloud_run_percent(pct(0)), Ok(0));
        assert_eq!(cloud_run_percent(pct(500)), Ok(5));
        assert_eq!(cloud_run_percent(pct(10_000)), Ok(100));
        assert_eq!(cloud_run_percent(pct(1)), Ok(1));
        assert_eq!(cloud_run_percent(pct(50)), Ok(1));
        assert_eq!(cloud_run_percent(pct(99)), Ok(1));
        let err = cloud_run_percent(pct(1_250)).unwrap_err();
        assert_eq!(err, NotRoutable(pct(1_250)));
        assert!(err.to_string().contains("12.5 % cannot be set"), "{err}");
        assert!(cloud_run_percent(pct(9_950)).is_err());
    }

    #[test]
    fn the_confirm_text_shows_both_sides_and_the_document() {
        let half = TargetSplit::for_percent("svc-00097-6cg", "svc-00098-xyz", pct(50)).unwrap();
        assert_eq!(
            describe_split(&half),
            "Cloud Run: svc-00097-6cg 99 % · svc-00098-xyz 1 % (document 0.5 %)"
        );
        let five = TargetSplit::for_percent(
            "projects/p/locations/r/revisions/svc-00097-6cg",
            "svc-00098-xyz",
            pct(500),
        )
        .unwrap();
        assert_eq!(
            five.describe(),
            "Cloud Run: svc-00097-6cg 95 % · svc-00098-xyz 5 %"
        );
        assert_eq!(
            TargetSplit::rollback("svc-00097-6cg").unwrap().describe(),
            "Cloud Run: svc-00097-6cg 100 %"
        );
        assert!(matches!(
            TargetSplit::for_percent("a", "a", pct(500)),
            Err(ActuatorError::Revisions(_))
        ));
        assert!(matches!(
            TargetSplit::for_percent("a", "b", pct(250)),
            Err(ActuatorError::NotRoutable(_))
        ));
    }

    #[test]
    fn bodies_hold_revision_targets_and_the_etag_only() {
        let split = TargetSplit::for_percent("s", "c", pct(2_500)).unwrap();
        let body = split.body(Some("canary"), "\"e1\"");
        assert_eq!(
            body,
            json!({"etag": "\"e1\"", "traffic": [
                {"type": TRAFFIC_REVISION, "revision": "s", "percent": 75},
                {"type": TRAFFIC_REVISION, "revision": "c", "percent": 25, "tag": "canary"},
            ]})
        );
        // At 0 % the canary stays reachable by its tag; at 100 % the stable has no target.
        let zero = TargetSplit::for_percent("s", "c", pct(0)).unwrap();
        assert_eq!(zero.traffic(Some("canary")).len(), 2);
        assert_eq!(zero.traffic(None).len(), 1);
        let full = TargetSplit::for_percent("s", "c", pct(10_000)).unwrap();
        assert_eq!(
            full.traffic(Some("canary")),
            vec![
                json!({"type": TRAFFIC_REVISION, "revision": "c", "percent": 100, "tag": "canary"})
            ]
        );
        let back = TargetSplit::rollback("s").unwrap();
        assert_eq!(
            back.traffic(Some("canary")),
            vec![json!({"type": TRAFFIC_REVISION, "revision": "s", "percent": 100})]
        );
    }

    fn live(stable: u8, canary: u8, others: &[(&str, u8)]) -> LiveSplit {
        LiveSplit {
            stable_revision: "svc-1".into(),
            canary_revision: Some("svc-2".into()),
            stable_percent: stable,
            canary_percent: canary,
            others: others.iter().map(|(r, p)| (r.to_string(), *p)).collect(),
            etag: "e".into(),
            settling: false,
        }
    }

    #[test]
    fn drift_is_any_difference_from_the_expected_split() {
        assert_eq!(drift(&live(95, 5, &[]), 5), Drift::None);
        assert_eq!(drift(&live(100, 0, &[]), 0), Drift::None);
        let moved = drift(&live(90, 10, &[]), 5);
        assert!(matches!(moved, Drift::Changed { expected: 5, .. }));
        assert_eq!(
            moved.message().unwrap(),
            "Cloud Run serves svc-1 90 % · svc-2 10 % but the rollout expects svc-1 95 % · svc-2 5 %: the split was changed outside rollout-tui"
        );
        let third = drift(&live(90, 5, &[("svc-0", 5)]), 5);
        assert!(third.message().unwrap().contains("svc-0 5 %"), "{third:?}");
        assert_eq!(Drift::None.message(), None);
    }

    #[test]
    fn revisions_are_found_in_messages_as_whole_names() {
        let split = TargetSplit::for_percent("svc-1", "svc-12", pct(500)).unwrap();
        assert_eq!(
            named_revision("Revision 'svc-12' does not exist.", &split).as_deref(),
            Some("svc-12")
        );
        assert_eq!(
            named_revision("Revision svc-1 not found", &split).as_deref(),
            Some("svc-1")
        );
        assert_eq!(named_revision("Revision svc-123 not found", &split), None);
    }

    #[test]
    fn operation_names_must_be_operation_paths() {
        assert!(valid_operation_name(
            "projects/p-1/locations/europe-west1/operations/1b2c-3d"
        ));
        assert!(!valid_operation_name(
            "projects/p/locations/r/operations/../x"
        ));
        assert!(!valid_operation_name("https://evil/x"));
        assert!(!valid_operation_name(
            "projects/p/locations/r/operations/a?b"
        ));
    }
}
