//! The `[actuator]` table: where applied percentages are also set as a traffic split, globally
//! or per rollout.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::health::duration_text;
use crate::domain::units::format_duration;
use crate::metrics::Credentials;
use crate::metrics::redact;

pub const DEFAULT_RUN_ENDPOINT: &str = "https://run.googleapis.com";
pub const DEFAULT_CANARY_TAG: &str = "canary";
/// A traffic change usually settles in 5 to 30 s; two minutes leaves room for a busy region.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(120);
const MIN_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_OPERATION_TIMEOUT: Duration = Duration::from_secs(3600);
/// Cloud Run builds `TAG---SERVICE-...run.app` from a tag: its length is limited.
const MAX_TAG_CHARS: usize = 46;
const MAX_SERVICE_CHARS: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActuatorKind {
    /// The rollout document alone says who gets the canary; nothing else is changed.
    #[default]
    None,
    /// The Cloud Run service's traffic split is set too (Admin API v2).
    CloudRun,
}

impl ActuatorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActuatorKind::None => "none",
            ActuatorKind::CloudRun => "cloud-run",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActuatorConfig {
    pub kind: ActuatorKind,
    pub project_id: Option<String>,
    pub region: Option<String>,
    /// The Cloud Run service whose traffic is split.
    pub service: Option<String>,
    /// Admin API root; unset means https://run.googleapis.com.
    pub endpoint: Option<String>,
    /// Unset means "adc" (the cloud-platform scope).
    pub credentials: Option<Credentials>,
    /// Tag kept on the canary revision so canary users reach it by URL; "" sets none.
    pub canary_tag: String,
    /// Bound on one change: the fresh read, the PATCH, waiting on its operation, the check.
    #[serde(with = "duration_text")]
    pub operation_timeout: Duration,
    /// Per-rollout overrides by rollout id.
    pub rollouts: BTreeMap<String, RolloutActuator>,
}

impl Default for ActuatorConfig {
    fn default() -> Self {
        ActuatorConfig {
            kind: ActuatorKind::None,
            project_id: None,
            region: None,
            service: None,
            endpoint: None,
            credentials: None,
            canary_tag: DEFAULT_CANARY_TAG.into(),
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
            rollouts: BTreeMap::new(),
        }
    }
}

/// `[actuator.rollouts.ID]`: a rollout on another service, region or project, or one the
/// actuator leaves alone (`kind = "none"`) or is the only one to act on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutActuator {
    pub kind: Option<ActuatorKind>,
    pub project_id: Option<String>,
    pub region: Option<String>,
    pub service: Option<String>,
}

/// Everything the Cloud Run client needs for one rollout, resolved and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudRunSettings {
    pub project_id: String,
    pub region: String,
    pub service: String,
    pub endpoint: String,
    pub credentials: Credentials,
    pub canary_tag: Option<String>,
    pub operation_timeout: Duration,
}

impl CloudRunSettings {
    /// `projects/P/locations/R/services/S`, the name the Admin API uses.
    pub fn service_name(&self) -> String {
        format!(
            "projects/{}/locations/{}/services/{}",
            self.project_id, self.region, self.service
        )
    }
}

impl ActuatorConfig {
    /// The Cloud Run settings for one rollout, or None when the actuator is off for it.
    pub fn for_rollout(&self, rollout_id: &str) -> Result<Option<CloudRunSettings>, String> {
        self.resolve(self.rollouts.get(rollout_id).map(|o| (rollout_id, o)))
    }

    fn resolve(
        &self,
        over: Option<(&str, &RolloutActuator)>,
    ) -> Result<Option<CloudRunSettings>, String> {
        let when = match over {
            Some((id, _)) => format!(
                "for rollout {id} (kind = \"cloud-run\"); set it under [actuator] or [actuator.rollouts.{id}]"
            ),
            None => "when actuator.kind = \"cloud-run\"".to_string(),
        };
        let over = over.map(|(_, o)| o);
        let kind = over.and_then(|o| o.kind).unwrap_or(self.kind);
        if kind == ActuatorKind::None {
            return Ok(None);
        }
        let pick = |own: Option<&String>, base: &Option<String>, key: &str, what: &str| {
            own.or(base.as_ref())
                .cloned()
                .ok_or_else(|| format!("actuator.{key} ({what}) is required {when}"))
        };
        let project_id = pick(
            over.and_then(|o| o.project_id.as_ref()),
            &self.project_id,
            "project_id",
            "the Google Cloud project",
        )?;
        let region = pick(
            over.and_then(|o| o.region.as_ref()),
            &self.region,
            "region",
            "the Cloud Run region, such as europe-west1",
        )?;
        let service = pick(
            over.and_then(|o| o.service.as_ref()),
            &self.service,
            "service",
            "the Cloud Run service",
        )?;
        Ok(Some(CloudRunSettings {
            project_id,
            region,
            service,
            endpoint: self
                .endpoint
                .as_deref()
                .unwrap_or(DEFAULT_RUN_ENDPOINT)
                .trim_end_matches('/')
                .to_string(),
            credentials: self.credentials.unwrap_or(Credentials::Adc),
            canary_tag: (!self.canary_tag.is_empty()).then(|| self.canary_tag.clone()),
            operation_timeout: self.operation_timeout,
        }))
    }

    /// Errors name the key and never quote a secret (an endpoint's `user:password@`).
    pub fn validate(&self) -> Result<(), String> {
        self.validate_all().map_err(|e| redact::secrets(&e, &[]))
    }

    fn validate_all(&self) -> Result<(), String> {
        check_names("actuator", &self.project_id, &self.region, &self.service)?;
        if let Some(e) = &self.endpoint {
            let shown = redact::secrets(e, &[]);
            crate::metrics::config::check_url(e)
                .map_err(|why| format!("actuator.endpoint = '{shown}' {why}"))?;
        }
        if !self.canary_tag.is_empty() && !dns_label(&self.canary_tag, MAX_TAG_CHARS) {
            return Err(format!(
                "actuator.canary_tag = '{}' must start with a lowercase letter and hold only lowercase letters, digits and '-' (at most {MAX_TAG_CHARS}); \"\" sets no tag",
                self.canary_tag
            ));
        }
        let t = self.operation_timeout;
        if !(MIN_OPERATION_TIMEOUT..=MAX_OPERATION_TIMEOUT).contains(&t) || t.subsec_nanos() != 0 {
            return Err(format!(
                "actuator.operation_timeout = {} must be whole seconds between {} and {}",
                format_duration(t),
                format_duration(MIN_OPERATION_TIMEOUT),
                format_duration(MAX_OPERATION_TIMEOUT)
            ));
        }
        for (id, over) in &self.rollouts {
            let at = format!("actuator.rollouts.{id}");
            check_names(&at, &over.project_id, &over.region, &over.service)?;
        }
        // Every rollout the actuator acts on must resolve to a whole service name.
        self.resolve(None)?;
        for (id, over) in &self.rollouts {
            self.resolve(Some((id, over)))?;
        }
        Ok(())
    }

    /// One line for `check-config`: what is acted on, without connecting.
    pub fn describe(&self) -> String {
        let one = |s: &CloudRunSettings| format!("{} via {}", s.service_name(), s.endpoint);
        let mut text = match self.resolve(None) {
            Ok(Some(s)) => format!(
                "cloud-run {} (tag {}, wait up to {})",
                one(&s),
                s.canary_tag.as_deref().unwrap_or("none"),
                format_duration(s.operation_timeout)
            ),
            Ok(None) => "none (the rollout document alone routes users)".to_string(),
            Err(e) => e,
        };
        let overrides: Vec<String> = self
            .rollouts
            .keys()
            .map(|id| match self.for_rollout(id) {
                Ok(Some(s)) => format!("{id}: {}", s.service_name()),
                Ok(None) => format!("{id}: none"),
                Err(e) => format!("{id}: {e}"),
            })
            .collect();
        if !overrides.is_empty() {
            text.push_str(&format!("; per rollout {}", overrides.join(", ")));
        }
        text
    }
}

fn check_names(
    at: &str,
    project_id: &Option<String>,
    region: &Option<String>,
    service: &Option<String>,
) -> Result<(), String> {
    // These go into request paths: only the characters Google allows in them.
    let made_of = |text: &str, extra: &str| {
        !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c))
    };
    if let Some(p) = project_id
        && !made_of(p, "-.:")
    {
        return Err(format!(
            "{at}.project_id = '{p}' must be a project id of lowercase letters, digits, '-', '.' or ':'"
        ));
    }
    if let Some(r) = region
        && !made_of(r, "-")
    {
        return Err(format!(
            "{at}.region = '{r}' must be a region name such as europe-west1"
        ));
    }
    if let Some(s) = service
        && !dns_label(s, MAX_SERVICE_CHARS)
    {
        return Err(format!(
            "{at}.service = '{s}' must be a Cloud Run service name: a lowercase letter, then lowercase letters, digits and '-' (at most {MAX_SERVICE_CHARS})"
        ));
    }
    Ok(())
}

fn dns_label(text: &str, max: usize) -> bool {
    text.len() <= max
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && !text.ends_with('-')
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ActuatorConfig, String> {
        let cfg: ActuatorConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    #[test]
    fn off_by_default() {
        let cfg = parse("").unwrap();
        assert_eq!(cfg, ActuatorConfig::default());
        assert_eq!(cfg.for_rollout("current").unwrap(), None);
    }

    #[test]
    fn per_rollout_overrides_replace_the_service_only() {
        let cfg = parse(
            "kind = \"cloud-run\"\nproject_id = \"proj-1\"\nregion = \"europe-west1\"\nservice = \"web\"\n\
             [rollouts.api]\nservice = \"api\"\nregion = \"us-central1\"\n\
             [rollouts.batch]\nkind = \"none\"\n",
        )
        .unwrap();
        let api = cfg.for_rollout("api").unwrap().unwrap();
        assert_eq!(
            api.service_name(),
            "projects/proj-1/locations/us-central1/services/api"
        );
        assert_eq!(api.canary_tag.as_deref(), Some("canary"));
        assert_eq!(api.credentials, Credentials::Adc);
        assert_eq!(api.endpoint, DEFAULT_RUN_ENDPOINT);
        let other = cfg.for_rollout("current").unwrap().unwrap();
        assert_eq!(other.service, "web");
        assert_eq!(cfg.for_rollout("batch").unwrap(), None);
        assert!(cfg.describe().contains("batch: none"), "{}", cfg.describe());
    }

    #[test]
    fn one_rollout_may_be_the_only_one_acted_on() {
        let cfg = parse(
            "project_id = \"proj-1\"\nregion = \"europe-west1\"\n\
             [rollouts.web]\nkind = \"cloud-run\"\nservice = \"web\"\n",
        )
        .unwrap();
        assert_eq!(cfg.for_rollout("current").unwrap(), None);
        assert_eq!(cfg.for_rollout("web").unwrap().unwrap().service, "web");
    }

    #[test]
    fn bad_configs_name_the_key() {
        let cases = [
            (
                "kind = \"cloud-run\"\nregion = \"r\"\nservice = \"s\"",
                "actuator.project_id",
            ),
            (
                "kind = \"cloud-run\"\nproject_id = \"p\"\nservice = \"s\"",
                "actuator.region",
            ),
            (
                "kind = \"cloud-run\"\nproject_id = \"p\"\nregion = \"r\"",
                "actuator.service",
            ),
            (
                "[rollouts.web]\nkind = \"cloud-run\"\nproject_id = \"p\"\nregion = \"r\"",
                "[actuator.rollouts.web]",
            ),
            ("service = \"Web_1\"", "actuator.service = 'Web_1'"),
            ("region = \"eu/west\"", "actuator.region"),
            ("project_id = \"p/../x\"", "actuator.project_id"),
            (
                "[rollouts.web]\nservice = \"a b\"",
                "actuator.rollouts.web.service",
            ),
            ("canary_tag = \"Canary\"", "actuator.canary_tag"),
            ("operation_timeout = \"1s\"", "actuator.operation_timeout"),
            ("operation_timeout = \"2h\"", "actuator.operation_timeout"),
            ("endpoint = \"ftp://x\"", "actuator.endpoint"),
            ("kind = \"app-engine\"", "unknown variant"),
            (
                "[rollouts.web]\nendpoint = \"http://x\"",
                "unknown field `endpoint`",
            ),
        ];
        for (text, needle) in cases {
            let err = parse(text).expect_err(text);
            assert!(err.contains(needle), "{text}\n=> {err}\n(wanted {needle})");
        }
    }

    #[test]
    fn secrets_in_the_endpoint_are_not_repeated() {
        let err = parse("endpoint = \"https://alice:s3cret-pw@run.example/\"").unwrap_err();
        assert!(err.contains("[redacted]@run.example"), "{err}");
        assert!(!err.contains("s3cret-pw"), "{err}");
    }

    #[test]
    fn an_empty_tag_sets_none() {
        let cfg = parse(
            "kind = \"cloud-run\"\nproject_id = \"p\"\nregion = \"r\"\nservice = \"s\"\ncanary_tag = \"\"",
        )
        .unwrap();
        assert_eq!(cfg.for_rollout("x").unwrap().unwrap().canary_tag, None);
    }
}
