//! Configuration: a TOML file (flag, `ROLLOUT_TUI_CONFIG`, or the platform
//! config directory), validated into one `Config`. `config.example.toml`
//! documents every option and is tested to parse to `Config::default()`.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::actuator::ActuatorConfig;
use crate::keys::{KeySetting, Keymap};

use crate::domain::gates::Spelling;
use crate::domain::health::GateConfig;
use crate::domain::progression::Policy;
use crate::domain::rollout::{Hashing, Plan, PlanPreset};
use crate::metrics::MetricsConfig;
use crate::notify::{NotifyConfig, TerminalNotify};
pub use crate::store::{STORE_KINDS, StoreConfig};

pub const CONFIG_ENV: &str = "ROLLOUT_TUI_CONFIG";
pub const DATA_DIR_ENV: &str = "ROLLOUT_TUI_DATA_DIR";
pub const ACTOR_ENV: &str = "ROLLOUT_TUI_ACTOR";

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name written into audit events; unset means `$USER@host`.
    pub actor: Option<String>,
    /// Where the embedded store and logs live; unset means the platform data directory.
    pub data_dir: Option<PathBuf>,
    pub store: StoreConfig,
    pub metrics: MetricsConfig,
    /// Where applied percentages are also set as a traffic split (off by default).
    pub actuator: ActuatorConfig,
    pub defaults: Defaults,
    pub policy: Policy,
    #[serde(
        deserialize_with = "gates_from_snake_case",
        serialize_with = "gates_to_snake_case"
    )]
    pub gates: GateConfig,
    pub log: LogConfig,
    pub freeze: FreezeConfig,
    /// Key binding overrides: command name -> key or list of keys.
    pub keys: BTreeMap<String, KeySetting>,
    pub cockpit: CockpitConfig,
    /// `[[notify]]` webhook targets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CockpitConfig {
    /// How the cockpit signals that a confirmation awaits: off, bell, osc9 or osc777.
    pub notify_terminal: TerminalNotify,
}

/// `[freeze]`: windows in which nothing widens a rollout, as if someone had run `freeze`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FreezeConfig {
    pub windows: Vec<crate::domain::freeze::FreezeWindow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// Plan for new rollouts and for documents that have none: canary, tiers or cohorts.
    pub plan: String,
    /// Bucket algorithm for new rollouts: fractional-v1 or unleash-v1.
    pub hashing: String,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            plan: PlanPreset::Canary.as_str().into(),
            hashing: Hashing::FractionalV1.as_str().into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// tracing filter for the log file under the data directory.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}

/// The TOML table is snake_case; the document field `gates` is camelCase. One struct
/// serves both by renaming keys on the way in, and naming errors in the TOML spelling.
fn gates_from_snake_case<'de, D: serde::Deserializer<'de>>(d: D) -> Result<GateConfig, D::Error> {
    use serde::de::Error;
    let table = toml::Table::deserialize(d)?;
    let mut camel = serde_json::Map::new();
    for (k, v) in table {
        // JSON has no NaN or infinity: converted, they would turn into null, which means "off".
        if let toml::Value::Float(x) = v
            && !x.is_finite()
        {
            return Err(D::Error::custom(format!(
                "gates.{k} = {x} is not a number; give a threshold, or \"off\" to switch the gate off"
            )));
        }
        let value = serde_json::to_value(v).map_err(D::Error::custom)?;
        camel.insert(crate::domain::gates::snake_to_camel(&k), value);
    }
    serde_json::from_value(serde_json::Value::Object(camel))
        .map_err(|e| D::Error::custom(camel_words_to_snake(&e.to_string())))
}

/// A `--gates FILE` of `backtest` and `simulate`: a `[gates]` table alone, read and checked
/// by the same code as the config's `[gates]`.
pub fn parse_gates_file(text: &str) -> Result<GateConfig, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct GatesOnly {
        #[serde(deserialize_with = "gates_from_snake_case")]
        gates: GateConfig,
    }
    let file: GatesOnly = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    file.gates.validate(Spelling::Config)?;
    Ok(file.gates)
}

fn gates_to_snake_case<S: serde::Serializer>(g: &GateConfig, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{Error, SerializeMap};
    let value = serde_json::to_value(g).map_err(S::Error::custom)?;
    let obj = value.as_object().cloned().unwrap_or_default();
    let present: Vec<_> = obj.into_iter().filter(|(_, v)| !v.is_null()).collect();
    let mut map = s.serialize_map(Some(present.len()))?;
    for (k, v) in present {
        map.serialize_entry(&camel_to_snake(&k), &v)?;
    }
    map.end()
}

fn camel_to_snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrites `camelCase` words inside backticks (serde's error style) to snake_case.
fn camel_words_to_snake(msg: &str) -> String {
    msg.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                camel_to_snake(part)
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

/// Where a config came from, for `check-config` and error messages.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigSource {
    File(PathBuf),
    /// No file: the built-in defaults.
    Defaults,
}

impl Config {
    /// The config file to read: the flag, else `ROLLOUT_TUI_CONFIG`, else the platform
    /// config directory's `config.toml` if it exists. An explicitly named file must exist.
    pub fn locate(flag: Option<&Path>) -> Result<ConfigSource, ConfigError> {
        let explicit = flag.map(Path::to_path_buf).or_else(|| {
            std::env::var_os(CONFIG_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        if let Some(path) = explicit {
            if !path.is_file() {
                return Err(ConfigError::File {
                    path,
                    message: "does not exist or is not a file".into(),
                });
            }
            return Ok(ConfigSource::File(path));
        }
        match project_dirs().map(|d| d.config_dir().join("config.toml")) {
            Some(p) if p.is_file() => Ok(ConfigSource::File(p)),
            _ => Ok(ConfigSource::Defaults),
        }
    }

    pub fn load(source: &ConfigSource) -> Result<Config, ConfigError> {
        match source {
            ConfigSource::Defaults => Ok(Config::default()),
            ConfigSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                let config = Config::parse(&text).map_err(|message| ConfigError::File {
                    path: path.clone(),
                    message,
                })?;
                Ok(config)
            }
        }
    }

    /// Parses and validates TOML text; the error names the key and line.
    pub fn parse(text: &str) -> Result<Config, String> {
        // The error quotes the line: a password, token or webhook URL on it must not be repeated.
        let config: Config = toml::from_str(text).map_err(|e| {
            crate::notify::config::mask_urls(&crate::metrics::redact::secrets(
                e.to_string().trim_end(),
                &[],
            ))
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.store.validate()?;
        self.metrics.validate()?;
        self.actuator.validate()?;
        self.default_plan()?;
        self.default_hashing()?;
        if let Some(dir) = &self.data_dir
            && dir.as_os_str().is_empty()
        {
            return Err(
                "data_dir = \"\" is empty; give a directory, or leave it out to use the platform data directory"
                    .into(),
            );
        }
        if let Some(actor) = &self.actor {
            if actor.trim().is_empty() {
                return Err("actor must not be empty; leave it out to use $USER@host".into());
            }
            crate::domain::actions::validate_actor(actor).map_err(|e| format!("actor: {e}"))?;
        }
        self.gates.validate(Spelling::Config)?;
        for (i, w) in self.freeze.windows.iter().enumerate() {
            w.validate()
                .map_err(|e| format!("freeze.windows[{i}] ('{}'): {e}", w.name))?;
        }
        self.keymap()?;
        crate::notify::config::targets(&self.notify)?;
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| format!("log.level = '{}' is not a log filter: {e}", self.log.level))?;
        Ok(())
    }

    pub fn keymap(&self) -> Result<Keymap, String> {
        Keymap::with_overrides(&self.keys)
    }

    pub fn default_plan_preset(&self) -> Result<PlanPreset, String> {
        PlanPreset::parse(&self.defaults.plan).ok_or_else(|| {
            format!(
                "defaults.plan = '{}' is not a plan; expected canary, tiers or cohorts",
                self.defaults.plan
            )
        })
    }

    pub fn default_plan(&self) -> Result<Plan, String> {
        self.default_plan_preset().map(Plan::preset)
    }

    pub fn default_hashing(&self) -> Result<Hashing, String> {
        Hashing::parse(&self.defaults.hashing).ok_or_else(|| {
            format!(
                "defaults.hashing = '{}' is not a hashing; expected fractional-v1 or unleash-v1",
                self.defaults.hashing
            )
        })
    }

    /// The data directory: flag, else `ROLLOUT_TUI_DATA_DIR`, else config, else platform default.
    pub fn data_dir(&self, flag: Option<&Path>) -> Result<PathBuf, ConfigError> {
        if let Some(p) = flag {
            if p.as_os_str().is_empty() {
                return Err(ConfigError::Invalid(
                    "--data-dir is empty; give a directory".into(),
                ));
            }
            return Ok(p.to_path_buf());
        }
        if let Some(p) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        if let Some(p) = &self.data_dir {
            return Ok(p.clone());
        }
        project_dirs()
            .map(|d| d.data_dir().to_path_buf())
            .ok_or_else(|| {
                ConfigError::Invalid("no home directory to put data in; pass --data-dir DIR".into())
            })
    }

    /// Who is acting: flag/env, config, else `$USER@host`.
    pub fn actor(&self, flag: Option<&str>) -> String {
        if let Some(a) = flag.map(str::trim).filter(|a| !a.is_empty()) {
            return a.to_string();
        }
        if let Some(a) = &self.actor {
            return a.trim().to_string();
        }
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        if host.is_empty() {
            user
        } else {
            format!("{user}@{host}")
        }
    }
}

pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "rollout-tui", "rollout-tui")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_equals_defaults() {
        let text = include_str!("../config.example.toml");
        let parsed = Config::parse(text).expect("config.example.toml parses");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn empty_config_is_default() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let cases = [
            ("[gates]\nmax_error_rate = 3.0\n", "gates.max_error_rate"),
            ("[gates]\nmax_eror_rate = 0.1\n", "max_eror_rate"),
            ("[gates]\nbreach_for = \"soon\"\n", "soon"),
            ("[defaults]\nplan = \"yolo\"\n", "defaults.plan"),
            ("[defaults]\nhashing = \"md5\"\n", "defaults.hashing"),
            ("[store]\nkind = \"postgres\"\n", "store.kind"),
            ("[store]\nkind = \"firestore\"\n", "store.project_id"),
            ("[store]\ncollection = \"a/b\"\n", "store.collection"),
            (
                "[actuator]\nkind = \"cloud-run\"\nproject_id = \"p\"\nregion = \"r\"\n",
                "actuator.service",
            ),
            ("[policy]\nconfirm = \"sometimes\"\n", "sometimes"),
            ("colour = true\n", "colour"),
            ("[gates\n", "line 1"),
            (
                "[gates]\nerror_rate_confidence = 1.5\n",
                "error_rate_confidence",
            ),
            (
                "[gates]\nmax_error_rate = 0.1\nsevere_error_rate = 0.05\n",
                "severe_error_rate",
            ),
            (
                "[[notify]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"\n[[notify]]\nkind = \"webhook\"\nurl = \"not a url\"\n",
                "notify[1].url",
            ),
            (
                "[[notify]]\nkind = \"slack\"\nurl = \"https://h/x\"\nevents = [\"halt\", \"lunch\"]\n",
                "notify[0].events",
            ),
            ("[[notify]]\nkind = \"slack\"\n", "url"),
            (
                "[[notify]]\nkind = \"slack\"\nurl = \"https://h/x\"\noutage_after = \"soon\"\n",
                "soon",
            ),
            ("[cockpit]\nnotify_terminal = \"loud\"\n", "loud"),
        ];
        for (text, needle) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(
                err.contains(needle),
                "error for {text:?} should mention {needle:?}: {err}"
            );
        }
    }

    #[test]
    fn a_webhook_url_quoted_in_a_parse_error_is_masked() {
        let err = Config::parse(
            "[[notify]]\nkind = \"slack\"\nurl = https://hooks.slack.com/services/T0/B0/s3cr3t\n",
        )
        .unwrap_err();
        assert!(
            err.contains("line 3") && err.contains("https://hooks.slack.com/***"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn notify_targets_parse_with_defaults() {
        let c = Config::parse(
            "[cockpit]\nnotify_terminal = \"osc777\"\n\n[[notify]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/s\"\n\n[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nevents = [\"halt\", \"outage\"]\noutage_after = \"2m\"\n",
        )
        .unwrap();
        assert_eq!(c.cockpit.notify_terminal, TerminalNotify::Osc777);
        let targets = crate::notify::config::targets(&c.notify).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(
            targets[0].events.len(),
            crate::notify::NotifyEvent::ALL.len()
        );
        assert_eq!(
            targets[0].outage_after,
            crate::notify::config::DEFAULT_OUTAGE_AFTER
        );
        assert_eq!(targets[1].outage_after, std::time::Duration::from_secs(120));
        assert!(!targets[1].wants(crate::notify::NotifyEvent::Rollback));
        // Round trip, as check-config and the tests write configs back.
        assert_eq!(Config::parse(&toml::to_string(&c).unwrap()).unwrap(), c);
    }

    #[test]
    fn a_gates_file_is_read_and_checked_as_the_config_s_gates() {
        let g = parse_gates_file(
            "[gates]\nmax_p99_ms = 800\nbreach_for = \"2m\"\nerror_rate_confidence = \"off\"\n",
        )
        .unwrap();
        assert_eq!(g.max_p99_ms, Some(800.0));
        assert_eq!(g.breach_for, std::time::Duration::from_secs(120));
        assert_eq!(g.error_rate_confidence, None);
        assert_eq!(g.max_error_rate, GateConfig::default().max_error_rate);
        for (text, want) in [
            ("[gates]\nmax_error_rate = 3.0\n", "gates.max_error_rate"),
            ("[gates]\nmax_eror_rate = 0.1\n", "max_eror_rate"),
            ("[gates]\n[metrics]\nkind = \"none\"\n", "metrics"),
            ("", "gates"),
        ] {
            let e = parse_gates_file(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn gates_round_trip_through_snake_case_toml() {
        let mut c = Config::default();
        c.gates.max_p99_ms = Some(800.0);
        let text = toml::to_string(&c).unwrap();
        assert!(text.contains("max_p99_ms"), "{text}");
        assert_eq!(Config::parse(&text).unwrap(), c);
    }
}
