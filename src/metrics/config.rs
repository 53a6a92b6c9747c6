//! The `[metrics]` table: which source, where, and its queries, globally or per rollout.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::health::duration_text;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// No source: no health, so nothing can look healthy and auto-progression holds.
    #[default]
    None,
    Simulator,
    CloudMonitoring,
    Prometheus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Credentials {
    /// Application Default Credentials (access tokens with the scope the API needs:
    /// monitoring.read for metrics, cloud-platform for the Cloud Run actuator).
    Adc,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    pub kind: SourceKind,
    /// Google Cloud project: required for cloud-monitoring; for prometheus it selects
    /// Cloud Monitoring's PromQL endpoint when no `endpoint` is set.
    pub project_id: Option<String>,
    /// Cloud Run service name (cloud-monitoring).
    pub service: Option<String>,
    /// Cloud Run region filter (cloud-monitoring); unset means every region.
    pub region: Option<String>,
    /// The window each sample covers.
    #[serde(with = "duration_text")]
    pub window: Duration,
    /// How often the cockpit samples each rollout.
    #[serde(with = "duration_text")]
    pub refresh: Duration,
    /// Bound on one sample, retries included.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// Extra tries after a 429, a 5xx or a connection failure.
    pub retries: u32,
    /// Base URL override: Cloud Monitoring's API root or the Prometheus server.
    pub endpoint: Option<String>,
    /// Unset: "adc" for cloud-monitoring and for Google's PromQL endpoint, else "none".
    pub credentials: Option<Credentials>,
    /// Largest answer body read; a larger one makes the sample inconclusive.
    pub max_response_bytes: usize,
    /// How old the newest point normally is when it first shows up. Unset: the source's
    /// known delay (`default_ingestion_delay`). It widens the freshness limit and the query
    /// window, so a source that is late by design is neither stale nor short of data.
    #[serde(
        default,
        with = "optional_duration_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingestion_delay: Option<Duration>,
    pub prometheus: PrometheusQueries,
    pub simulator: SimulatorConfig,
    /// Per-rollout overrides: any key of this table, merged over it.
    pub rollouts: BTreeMap<String, toml::Table>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            kind: SourceKind::None,
            project_id: None,
            service: None,
            region: None,
            window: Duration::from_secs(5 * 60),
            refresh: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            retries: 2,
            endpoint: None,
            credentials: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            ingestion_delay: None,
            prometheus: PrometheusQueries::default(),
            simulator: SimulatorConfig::default(),
            rollouts: BTreeMap::new(),
        }
    }
}

/// PromQL templates. Placeholders: `{revision}`, `{side}` (stable or canary), `{window}`
/// (PromQL duration), and in `latency` also `{quantile}` (0.5 ... 0.99).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusQueries {
    /// Requests in the window; an empty result means no data for the revision.
    pub requests: String,
    /// Failed requests in the window; must return a value (use `or vector(0)`).
    pub errors: String,
    /// A latency quantile in milliseconds; NaN or an empty result is "unknown".
    pub latency: String,
    /// Unix time of the newest sample, for staleness; "" uses the query time.
    pub newest: String,
    /// A latency histogram's cumulative buckets by `le`, asked over the stage for the
    /// requests over stable's p99; "" judges latency on the window alone.
    pub buckets: String,
    /// Milliseconds in one unit of the buckets' `le` (1000 for seconds).
    pub bucket_unit_ms: f64,
}

impl Default for PrometheusQueries {
    fn default() -> Self {
        PrometheusQueries {
            requests: r#"sum(increase(http_requests_total{revision="{revision}"}[{window}]))"#
                .into(),
            errors: r#"sum(increase(http_requests_total{revision="{revision}",code=~"5.."}[{window}])) or vector(0)"#.into(),
            latency: r#"histogram_quantile({quantile}, sum by (le) (rate(http_request_duration_seconds_bucket{revision="{revision}"}[{window}]))) * 1000"#.into(),
            newest: r#"max(timestamp(http_requests_total{revision="{revision}"}))"#.into(),
            buckets: r#"sum by (le) (increase(http_request_duration_seconds_bucket{revision="{revision}"}[{window}]))"#.into(),
            bucket_unit_ms: 1000.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    pub seed: u64,
    /// Requests per second to the whole service, split by the rollout percentage.
    pub requests_per_second: f64,
    /// Extra canary requests per second for each canary user (on top of the percentage).
    pub canary_user_requests_per_second: f64,
    /// Simulated seconds per real second of `Simulator::now`, for demos.
    pub time_compression: f64,
    pub stable: SimulatedSide,
    pub canary: SimulatedSide,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            seed: 1,
            requests_per_second: 50.0,
            canary_user_requests_per_second: 0.5,
            time_compression: 1.0,
            stable: SimulatedSide::default(),
            canary: SimulatedSide::default(),
        }
    }
}

/// Latencies are log-normal: `median * exp(sigma * z)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatedSide {
    pub error_rate: f64,
    pub latency_median_ms: f64,
    pub latency_sigma: f64,
}

impl Default for SimulatedSide {
    fn default() -> Self {
        SimulatedSide {
            error_rate: 0.002,
            latency_median_ms: 120.0,
            latency_sigma: 0.5,
        }
    }
}

pub const PLACEHOLDERS: [&str; 3] = ["revision", "side", "window"];
pub const DEFAULT_CM_ENDPOINT: &str = "https://monitoring.googleapis.com";

/// Real answers are a few KiB (a handful of series of one-minute points); 4 MiB leaves
/// room for long windows and many response classes.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
const MIN_RESPONSE_BYTES: usize = 1024;
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Cloud Run writes a point a minute and Cloud Monitoring shows it up to 3 minutes later,
/// so the newest one-minute point is normally 2 to 4 minutes old when it is read.
pub const CLOUD_MONITORING_DELAY: Duration = Duration::from_secs(4 * 60);
const MAX_INGESTION_DELAY: Duration = Duration::from_secs(60 * 60);

/// An optional duration as "5m"-style text.
mod optional_duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::health::duration_text;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => duration_text::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "duration_text")] Duration);
        Ok(Some(Wrap::deserialize(d)?.0))
    }
}

/// `{name}` spans that are placeholders: a lowercase identifier between braces. PromQL's
/// own braces hold matchers (`{a="b"}`) or repetition counts (`{2}`), which never match.
pub fn placeholders(template: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let bytes = template.as_bytes();
    let mut i = 0;
    while let Some(open) = template[i..].find('{').map(|o| o + i) {
        let rest = &template[open + 1..];
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_' || b.is_ascii_digit())
            .count();
        if len > 0 && bytes[open + 1].is_ascii_lowercase() && rest[len..].starts_with('}') {
            out.push((open, &rest[..len]));
        }
        i = open + 1;
    }
    out
}

/// Fills placeholders; `vars` must cover every placeholder (checked by `validate`).
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut last = 0;
    for (at, name) in placeholders(template) {
        if let Some((_, v)) = vars.iter().find(|(k, _)| *k == name) {
            out.push_str(&template[last..at]);
            out.push_str(v);
            last = at + name.len() + 2;
        }
    }
    out.push_str(&template[last..]);
    out
}

impl MetricsConfig {
    /// The configuration for one rollout: its `[metrics.rollouts.<id>]` table merged over
    /// this one.
    pub fn for_rollout(&self, rollout_id: &str) -> Result<MetricsConfig, String> {
        let mut base = self.clone();
        base.rollouts.clear();
        let Some(over) = self.rollouts.get(rollout_id) else {
            return Ok(base);
        };
        let mut value = toml::Value::try_from(&base)
            .map_err(|e| format!("metrics.rollouts.{rollout_id}: {e}"))?;
        merge(&mut value, toml::Value::Table(over.clone()));
        let merged: MetricsConfig = value.try_into().map_err(|e: toml::de::Error| {
            format!("metrics.rollouts.{rollout_id}: {}", e.message())
        })?;
        if !merged.rollouts.is_empty() {
            return Err(format!(
                "metrics.rollouts.{rollout_id} must not hold its own `rollouts` table"
            ));
        }
        Ok(merged)
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> Option<String> {
        if let Some(e) = &self.endpoint {
            return Some(e.trim_end_matches('/').to_string());
        }
        match self.kind {
            SourceKind::CloudMonitoring => Some(DEFAULT_CM_ENDPOINT.into()),
            SourceKind::Prometheus => self.project_id.as_ref().map(|p| {
                format!("{DEFAULT_CM_ENDPOINT}/v1/projects/{p}/location/global/prometheus")
            }),
            _ => None,
        }
    }

    /// Whether requests go to Google (Cloud Monitoring's REST API or its PromQL endpoint,
    /// known by its host or by its path behind a proxy).
    fn is_google(&self) -> bool {
        match self.kind {
            SourceKind::CloudMonitoring => true,
            SourceKind::Prometheus => self.base_url().is_some_and(|u| {
                u.contains("monitoring.googleapis.com")
                    || u.ends_with("/location/global/prometheus")
            }),
            _ => false,
        }
    }

    /// How old the newest point normally is: `ingestion_delay` if set, else the source's
    /// known delay. Cloud Monitoring (REST or PromQL) reports Cloud Run a few minutes late;
    /// a Prometheus server scrapes every 15 s to 1 m, which `gates.max_staleness` already
    /// covers; the simulator is never late.
    pub fn effective_ingestion_delay(&self) -> Duration {
        self.ingestion_delay.unwrap_or(if self.is_google() {
            CLOUD_MONITORING_DELAY
        } else {
            Duration::ZERO
        })
    }

    /// The span each query covers: the window plus the ingestion delay, so a sample holds
    /// about a full window of data even though its last minutes have not arrived yet.
    pub fn query_span(&self) -> Duration {
        self.window + self.effective_ingestion_delay()
    }

    pub fn effective_credentials(&self) -> Credentials {
        self.credentials.unwrap_or(match self.kind {
            SourceKind::CloudMonitoring => Credentials::Adc,
            SourceKind::Prometheus if self.endpoint.is_none() && self.project_id.is_some() => {
                Credentials::Adc
            }
            // Google's PromQL endpoint written out in full needs Google credentials too.
            SourceKind::Prometheus
                if self
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.contains("monitoring.googleapis.com")) =>
            {
                Credentials::Adc
            }
            _ => Credentials::None,
        })
    }

    /// Errors never quote a secret (an endpoint's `user:password@`, say).
    pub fn validate(&self) -> Result<(), String> {
        self.validate_all()
            .map_err(|e| super::redact::secrets(&e, &[]))
    }

    fn validate_all(&self) -> Result<(), String> {
        self.validate_one("metrics")?;
        for id in self.rollouts.keys() {
            let prefix = format!("metrics.rollouts.{id}");
            self.for_rollout(id)?.validate_one(&prefix)?;
        }
        Ok(())
    }

    fn validate_one(&self, at: &str) -> Result<(), String> {
        for (name, d, min) in [
            ("window", self.window, 1),
            ("refresh", self.refresh, 1),
            ("timeout", self.timeout, 1),
        ] {
            if d.as_secs() < min || d.subsec_nanos() != 0 {
                return Err(format!(
                    "{at}.{name} = {d:?} must be a whole number of seconds, at least {min}s"
                ));
            }
        }
        if self.retries > 10 {
            return Err(format!("{at}.retries = {} is more than 10", self.retries));
        }
        if !(MIN_RESPONSE_BYTES..=MAX_RESPONSE_BYTES).contains(&self.max_response_bytes) {
            return Err(format!(
                "{at}.max_response_bytes = {} must be between {MIN_RESPONSE_BYTES} and {MAX_RESPONSE_BYTES} (default {DEFAULT_MAX_RESPONSE_BYTES}, 4 MiB)",
                self.max_response_bytes
            ));
        }
        if let Some(d) = self.ingestion_delay
            && (d > MAX_INGESTION_DELAY || d.subsec_nanos() != 0)
        {
            return Err(format!(
                "{at}.ingestion_delay = {d:?} must be whole seconds, at most 1h (\"0s\" makes gates.max_staleness an absolute limit)"
            ));
        }
        let name_ok = |v: &str| {
            !v.trim().is_empty()
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        };
        for (name, v) in [
            ("project_id", &self.project_id),
            ("service", &self.service),
            ("region", &self.region),
        ] {
            if let Some(v) = v
                && !name_ok(v)
            {
                return Err(format!(
                    "{at}.{name} = '{v}' must be a non-empty name of letters, digits, '-', '_', '.' or ':'"
                ));
            }
        }
        if let Some(e) = &self.endpoint {
            let shown = super::redact::secrets(e, &[]);
            check_url(e).map_err(|why| format!("{at}.endpoint = '{shown}' {why}"))?;
        }
        match self.kind {
            SourceKind::None => {}
            SourceKind::Simulator => self.simulator.validate(&format!("{at}.simulator"))?,
            SourceKind::CloudMonitoring => {
                if self.project_id.is_none() {
                    return Err(format!(
                        "{at}.project_id is required when {at}.kind = \"cloud-monitoring\""
                    ));
                }
                if self.service.is_none() {
                    return Err(format!(
                        "{at}.service (the Cloud Run service) is required when {at}.kind = \"cloud-monitoring\""
                    ));
                }
                if self.window.as_secs() < 60 {
                    return Err(format!(
                        "{at}.window must be at least 1m for cloud-monitoring (Cloud Run reports once a minute)"
                    ));
                }
            }
            SourceKind::Prometheus => {
                if self.endpoint.is_none() && self.project_id.is_none() {
                    return Err(format!(
                        "{at}.endpoint (the Prometheus server, such as http://127.0.0.1:9090) is required when {at}.kind = \"prometheus\", unless {at}.project_id selects Cloud Monitoring's PromQL endpoint"
                    ));
                }
                self.prometheus.validate(&format!("{at}.prometheus"))?;
            }
        }
        Ok(())
    }
}

pub(crate) fn check_url(text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("must be http or https, not {}", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not hold credentials (user:password@); use credentials = \"adc\" or a proxy that adds them".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must be a base URL without ?query or #fragment".into());
    }
    Ok(())
}

impl PrometheusQueries {
    fn validate(&self, at: &str) -> Result<(), String> {
        for (name, t, optional) in [
            ("requests", &self.requests, false),
            ("errors", &self.errors, false),
            ("latency", &self.latency, false),
            ("newest", &self.newest, true),
            ("buckets", &self.buckets, true),
        ] {
            if t.trim().is_empty() {
                if optional {
                    continue;
                }
                return Err(format!("{at}.{name} must not be empty"));
            }
            let found = placeholders(t);
            for (_, p) in &found {
                let allowed = PLACEHOLDERS.contains(p) || (name == "latency" && *p == "quantile");
                if !allowed {
                    let extra = if name == "latency" {
                        ", {quantile}"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "{at}.{name} has an unknown placeholder {{{p}}}; expected {{revision}}, {{side}}, {{window}}{extra}"
                    ));
                }
            }
            if !found.iter().any(|(_, p)| *p == "revision" || *p == "side") {
                return Err(format!(
                    "{at}.{name} has neither {{revision}} nor {{side}}, so stable and canary would get the same numbers"
                ));
            }
            if name == "latency" && !found.iter().any(|(_, p)| *p == "quantile") {
                return Err(format!("{at}.latency needs a {{quantile}} placeholder"));
            }
            if !balanced(t) {
                return Err(format!("{at}.{name} has unbalanced brackets: {t}"));
            }
        }
        if !(self.bucket_unit_ms.is_finite() && self.bucket_unit_ms > 0.0) {
            return Err(format!(
                "{at}.bucket_unit_ms must be a positive number of milliseconds (1000 when the buckets' le is in seconds, 1 in milliseconds), not {}",
                self.bucket_unit_ms
            ));
        }
        Ok(())
    }
}

impl SimulatorConfig {
    fn validate(&self, at: &str) -> Result<(), String> {
        let non_negative = |name: &str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(format!("{at}.{name} = {v} must be a number >= 0"))
            }
        };
        non_negative("requests_per_second", self.requests_per_second)?;
        non_negative(
            "canary_user_requests_per_second",
            self.canary_user_requests_per_second,
        )?;
        if !(self.time_compression.is_finite() && self.time_compression >= 1.0) {
            return Err(format!(
                "{at}.time_compression = {} must be at least 1 (1 = real time)",
                self.time_compression
            ));
        }
        if self.seed > i64::MAX as u64 {
            return Err(format!("{at}.seed is larger than {}", i64::MAX));
        }
        for (side, s) in [("stable", &self.stable), ("canary", &self.canary)] {
            if !(0.0..=1.0).contains(&s.error_rate) {
                return Err(format!(
                    "{at}.{side}.error_rate = {} must be between 0 and 1",
                    s.error_rate
                ));
            }
            if !(s.latency_median_ms.is_finite() && s.latency_median_ms > 0.0) {
                return Err(format!(
                    "{at}.{side}.latency_median_ms = {} must be a positive number",
                    s.latency_median_ms
                ));
            }
            if !(s.latency_sigma.is_finite() && (0.0..=5.0).contains(&s.latency_sigma)) {
                return Err(format!(
                    "{at}.{side}.latency_sigma = {} must be between 0 and 5",
                    s.latency_sigma
                ));
            }
        }
        Ok(())
    }
}

/// Brackets pair up outside PromQL string literals; a cheap check before a server says so.
fn balanced(t: &str) -> bool {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in t.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' | '`' => quote = Some(c),
                '(' | '[' | '{' => stack.push(c),
                ')' | ']' | '}' => {
                    let want = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    if stack.pop() != Some(want) {
                        return false;
                    }
                }
                _ => {}
            },
        }
    }
    stack.is_empty() && quote.is_none()
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MetricsConfig, String> {
        let cfg: MetricsConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn placeholders_skip_promql_braces() {
        let t = r#"sum(rate(x{code=~"5[0-9]{2}",rev="{revision}"}[{window}]))"#;
        let names: Vec<_> = placeholders(t).into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["revision", "window"]);
        assert_eq!(
            fill(t, &[("revision", "r-1"), ("window", "5m")]),
            r#"sum(rate(x{code=~"5[0-9]{2}",rev="r-1"}[5m]))"#
        );
    }

    #[test]
    fn bad_configs_name_the_problem() {
        let cases = [
            (
                "kind = \"cloud-monitoring\"\nservice = \"s\"",
                "metrics.project_id is required",
            ),
            (
                "kind = \"cloud-monitoring\"\nproject_id = \"p\"",
                "metrics.service",
            ),
            ("kind = \"prometheus\"", "metrics.endpoint"),
            (
                "kind = \"prometheus\"\nendpoint = \"ftp://x\"",
                "must be http or https",
            ),
            (
                "kind = \"prometheus\"\nendpoint = \"not a url\"",
                "is not a URL",
            ),
            (
                "kind = \"prometheus\"\nendpoint = \"http://p:9090\"\n[prometheus]\nrequests = 'sum(x{rev=\"{revison}\"})'",
                "unknown placeholder {revison}",
            ),
            (
                "kind = \"prometheus\"\nendpoint = \"http://p:9090\"\n[prometheus]\nlatency = 'histogram_quantile(0.9, x{r=\"{revision}\"})'",
                "needs a {quantile}",
            ),
            (
                "kind = \"prometheus\"\nendpoint = \"http://p:9090\"\n[prometheus]\nerrors = 'sum(x)'",
                "neither {revision} nor {side}",
            ),
            (
                "kind = \"prometheus\"\nendpoint = \"http://p:9090\"\n[prometheus]\nbuckets = 'sum by (le) (x{r=\"{revision}\"}[{quantile}])'",
                "buckets has an unknown placeholder {quantile}",
            ),
            (
                "kind = \"prometheus\"\nendpoint = \"http://p:9090\"\n[prometheus]\nbuckets = 'sum by (le) (x)'",
                "buckets has neither {revision} nor {side}",
            ),
            (
                "kind = \"prometheus\"\nendpoint = \"http://p:9090\"\n[prometheus]\nbucket_unit_ms = 0.0",
                "bucket_unit_ms must be a positive number",
            ),
            (
                "kind = \"simulator\"\n[simulator.canary]\nerror_rate = 2.0",
                "metrics.simulator.canary.error_rate",
            ),
            ("window = \"0s\"", "metrics.window"),
            ("kind = \"graphite\"", "unknown variant"),
            (
                "[rollouts.web]\nkind = \"prometheus\"",
                "metrics.rollouts.web.endpoint",
            ),
            (
                "[rollouts.web]\nwindoww = \"1m\"",
                "metrics.rollouts.web: unknown field `windoww`",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{text}\n=> {err}\n(wanted {needle})");
        }
    }

    #[test]
    fn brackets_are_checked_outside_strings() {
        assert!(balanced(
            r#"sum(rate(x{a=~"5[0-9]{2}\\(",b="{revision}"}[{window}]))"#
        ));
        assert!(!balanced("sum(rate(x[5m])"));
        assert!(!balanced("sum(x])"));
        assert!(!balanced(r#"x{a="b}"#));
    }

    #[test]
    fn per_rollout_overrides_merge_deeply() {
        let cfg = parse(
            "kind = \"simulator\"\nwindow = \"10m\"\n[simulator]\nseed = 7\n\
             [rollouts.api]\nkind = \"prometheus\"\nendpoint = \"http://127.0.0.1:9090\"\n\
             [rollouts.api.prometheus]\nrequests = 'sum(increase(r{rev=\"{revision}\"}[{window}]))'\n",
        )
        .unwrap();
        let api = cfg.for_rollout("api").unwrap();
        assert_eq!(api.kind, SourceKind::Prometheus);
        assert_eq!(api.window, Duration::from_secs(600));
        assert!(api.prometheus.requests.starts_with("sum(increase(r{"));
        assert_eq!(api.prometheus.errors, PrometheusQueries::default().errors);
        assert_eq!(api.effective_credentials(), Credentials::None);
        let other = cfg.for_rollout("web").unwrap();
        assert_eq!(other.kind, SourceKind::Simulator);
        assert_eq!(other.simulator.seed, 7);
    }

    #[test]
    fn each_source_has_its_ingestion_delay() {
        let delay = |text: &str| parse(text).unwrap().effective_ingestion_delay();
        let four = Duration::from_secs(240);
        assert_eq!(
            delay("kind = \"cloud-monitoring\"\nproject_id = \"p\"\nservice = \"s\""),
            four
        );
        assert_eq!(delay("kind = \"prometheus\"\nproject_id = \"p\""), four);
        assert_eq!(
            delay(
                "kind = \"prometheus\"\nendpoint = \"http://proxy:8080/v1/projects/p/location/global/prometheus\""
            ),
            four
        );
        assert_eq!(
            delay("kind = \"prometheus\"\nendpoint = \"http://prom:9090\""),
            Duration::ZERO
        );
        assert_eq!(delay("kind = \"simulator\""), Duration::ZERO);
        // The operator's word wins, per rollout too.
        let cfg = parse(
            "kind = \"cloud-monitoring\"\nproject_id = \"p\"\nservice = \"s\"\ningestion_delay = \"0s\"\n\
             [rollouts.web]\ningestion_delay = \"90s\"\n",
        )
        .unwrap();
        assert_eq!(cfg.effective_ingestion_delay(), Duration::ZERO);
        assert_eq!(cfg.query_span(), Duration::from_secs(300));
        let web = cfg.for_rollout("web").unwrap();
        assert_eq!(web.effective_ingestion_delay(), Duration::from_secs(90));
        assert_eq!(web.query_span(), Duration::from_secs(390));
        let err = parse("ingestion_delay = \"2h\"").unwrap_err();
        assert!(err.contains("metrics.ingestion_delay"), "{err}");
    }

    #[test]
    fn secrets_in_endpoints_are_not_repeated() {
        for text in [
            "kind = \"prometheus\"\nendpoint = \"http://alice:s3cret-pw@prom:9090\"",
            "kind = \"prometheus\"\nendpoint = \"http://alice:s3cret-pw@prom:9090/?x=1\"",
            "[rollouts.web]\nkind = \"prometheus\"\nendpoint = \"https://alice:s3cret-pw@prom/\"",
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains("[redacted]@prom"), "{err}");
            assert!(!err.contains("s3cret-pw"), "{err}");
        }
    }

    #[test]
    fn google_promql_endpoint_from_project() {
        let cfg = parse("kind = \"prometheus\"\nproject_id = \"my-proj\"").unwrap();
        assert_eq!(
            cfg.base_url().unwrap(),
            "https://monitoring.googleapis.com/v1/projects/my-proj/location/global/prometheus"
        );
        assert_eq!(cfg.effective_credentials(), Credentials::Adc);
        let spelled_out = parse(
            "kind = \"prometheus\"\nendpoint = \"https://monitoring.googleapis.com/v1/projects/p/location/global/prometheus\"",
        )
        .unwrap();
        assert_eq!(spelled_out.effective_credentials(), Credentials::Adc);
        let own = parse("kind = \"prometheus\"\nendpoint = \"http://prom:9090\"").unwrap();
        assert_eq!(own.effective_credentials(), Credentials::None);
    }
}
