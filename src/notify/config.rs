//! `[[notify]]` targets and `[cockpit] notify_terminal`, as written in the config file, and
//! their validation. Webhook URLs are secrets (a Slack incoming webhook URL is all it takes
//! to post into a channel): every text shown or logged names a target by `masked_url`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::health::duration_text;
use crate::metrics::redact;

/// What a target can be told about, as spelled in `events = [...]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NotifyEvent {
    /// A rollout was paused: by auto-progression (a sustained breach) or by an operator.
    Halt,
    Rollback,
    /// Auto-progression waits for an operator's yes before the next stage.
    AwaitingConfirmation,
    /// The last stage passed, or a promote: the rollout is complete.
    Complete,
    /// An operator widened over failing or unknown health or unserved bake time.
    Override,
    /// Every rollout was frozen (the kill switch).
    Freeze,
    /// The driver of a rollout lost its lease: nothing drives it until one is held again.
    LeaseLost,
    /// The store or the metrics source has been unreachable for longer than `outage_after`.
    Outage,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 8] = [
        NotifyEvent::Halt,
        NotifyEvent::Rollback,
        NotifyEvent::AwaitingConfirmation,
        NotifyEvent::Complete,
        NotifyEvent::Override,
        NotifyEvent::Freeze,
        NotifyEvent::LeaseLost,
        NotifyEvent::Outage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Halt => "halt",
            NotifyEvent::Rollback => "rollback",
            NotifyEvent::AwaitingConfirmation => "awaiting_confirmation",
            NotifyEvent::Complete => "complete",
            NotifyEvent::Override => "override",
            NotifyEvent::Freeze => "freeze",
            NotifyEvent::LeaseLost => "lease_lost",
            NotifyEvent::Outage => "outage",
        }
    }

    pub fn parse(text: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL.into_iter().find(|e| e.as_str() == text)
    }

    fn names() -> String {
        NotifyEvent::ALL.map(NotifyEvent::as_str).join(", ")
    }
}

/// How a target wants its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A generic JSON POST (the shape is documented in the README).
    Webhook,
    /// A Slack-compatible incoming webhook: `text` plus `blocks`.
    Slack,
}

impl TargetKind {
    pub const NAMES: &str = "webhook or slack";

    pub fn parse(text: &str) -> Option<TargetKind> {
        match text {
            "webhook" => Some(TargetKind::Webhook),
            "slack" => Some(TargetKind::Slack),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Slack => "slack",
        }
    }
}

/// Default for `outage_after`: a store or metrics source that blips for a refresh or two is
/// not worth a page; one that is gone for minutes is.
pub const DEFAULT_OUTAGE_AFTER: Duration = Duration::from_secs(5 * 60);

/// One `[[notify]]` entry as written. Its `Debug` masks the URL.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// "webhook" or "slack".
    pub kind: String,
    /// Where messages are POSTed. A secret: never shown whole.
    pub url: String,
    /// What this target is told about; unset means every event.
    #[serde(default = "all_event_names")]
    pub events: Vec<String>,
    /// A store or metrics outage is reported once it has lasted this long.
    #[serde(default = "default_outage_after", with = "duration_text")]
    pub outage_after: Duration,
}

fn all_event_names() -> Vec<String> {
    NotifyEvent::ALL.map(|e| e.as_str().to_string()).to_vec()
}

fn default_outage_after() -> Duration {
    DEFAULT_OUTAGE_AFTER
}

/// A validated target. Its `Debug` masks the URL.
#[derive(Clone, PartialEq)]
pub struct Target {
    pub kind: TargetKind,
    pub url: reqwest::Url,
    pub events: BTreeSet<NotifyEvent>,
    pub outage_after: Duration,
    /// Position in the config (`notify[N]`), to tell targets on the same host apart.
    pub index: usize,
}

impl Target {
    /// `notify[0] slack https://hooks.slack.com/***`: how a target is named on screen and in logs.
    pub fn label(&self) -> String {
        format!(
            "notify[{}] {} {}",
            self.index,
            self.kind.as_str(),
            masked_url(&self.url)
        )
    }

    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.events.contains(&event)
    }
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = reqwest::Url::parse(self.url.trim())
            .map_or_else(|_| redact::REDACTED.to_string(), |u| masked_url(&u));
        f.debug_struct("NotifyConfig")
            .field("kind", &self.kind)
            .field("url", &url)
            .field("events", &self.events)
            .field("outage_after", &self.outage_after)
            .finish()
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("kind", &self.kind)
            .field("url", &masked_url(&self.url))
            .field("events", &self.events)
            .field("outage_after", &self.outage_after)
            .field("index", &self.index)
            .finish()
    }
}

impl NotifyConfig {
    /// The target this entry describes, or an error naming the key (`notify[1].url`).
    pub fn target(&self, index: usize) -> Result<Target, String> {
        let key = |k: &str| format!("notify[{index}].{k}");
        let kind = TargetKind::parse(&self.kind).ok_or_else(|| {
            format!(
                "{} = '{}' is not a notification kind; expected {}",
                key("kind"),
                crate::domain::text::escape(&self.kind),
                TargetKind::NAMES
            )
        })?;
        let url = parse_url(&self.url).map_err(|why| format!("{}: {why}", key("url")))?;
        if self.events.is_empty() {
            return Err(format!(
                "{} is empty: this target would never be told anything; leave it out for every event, or name some of: {}",
                key("events"),
                NotifyEvent::names()
            ));
        }
        let mut events = BTreeSet::new();
        for name in &self.events {
            let event = NotifyEvent::parse(name).ok_or_else(|| {
                format!(
                    "{}: '{}' is not an event; expected some of: {}",
                    key("events"),
                    crate::domain::text::escape(name),
                    NotifyEvent::names()
                )
            })?;
            events.insert(event);
        }
        if self.outage_after.is_zero() {
            return Err(format!(
                "{} = \"0s\" would report every failed refresh as an outage; give a duration such as 5m",
                key("outage_after")
            ));
        }
        Ok(Target {
            kind,
            url,
            events,
            outage_after: self.outage_after,
            index,
        })
    }
}

/// Every target of the config, validated.
pub fn targets(entries: &[NotifyConfig]) -> Result<Vec<Target>, String> {
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| entry.target(i))
        .collect()
}

/// The reason a URL is refused names only what is safe to show: never the URL itself.
fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    if text.trim().is_empty() {
        return Err("is empty; give the webhook's https:// URL".into());
    }
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("is not a URL ({e}); give the webhook's https:// URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme '{}' is not http or https",
            crate::domain::text::escape(url.scheme())
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    Ok(url)
}

/// `https://hooks.slack.com/***`: scheme, host and port, nothing of the path, query or
/// credentials (for a Slack webhook the path is the secret).
pub fn masked_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let hidden = if url.path().trim_matches('/').is_empty() && url.query().is_none() {
        ""
    } else {
        "/***"
    };
    format!("{}://{host}{port}{hidden}", url.scheme())
}

/// `text` with every http(s) URL in it masked: for errors that quote a config line, where a
/// webhook URL may stand unquoted or mistyped.
pub fn mask_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let next = |s: &str| {
        ["http://", "https://"]
            .iter()
            .filter_map(|p| s.find(p))
            .min()
    };
    while let Some(at) = next(rest) {
        out.push_str(&rest[..at]);
        let len = rest[at..]
            .find(|c: char| c.is_whitespace() || "\"'<>`".contains(c))
            .unwrap_or(rest.len() - at);
        let candidate = &rest[at..at + len];
        match reqwest::Url::parse(candidate) {
            Ok(url) => out.push_str(&masked_url(&url)),
            Err(_) => out.push_str(redact::REDACTED),
        }
        rest = &rest[at + len..];
    }
    out.push_str(rest);
    out
}

/// What a URL looks like inside other text: the pieces `redact::secrets` should hunt for
/// (its path, each long path segment and query value), so an error that quotes them leaks nothing.
pub fn url_secrets(url: &reqwest::Url) -> Vec<String> {
    let mut known = vec![url.path().to_string()];
    known.extend(
        url.path_segments()
            .into_iter()
            .flatten()
            .map(str::to_string),
    );
    known.extend(url.query_pairs().map(|(_, v)| v.into_owned()));
    if let Some(q) = url.query() {
        known.push(q.to_string());
    }
    known
}

/// `[cockpit] notify_terminal`: how the cockpit tells this operator a confirmation awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TerminalNotify {
    #[default]
    Off,
    /// The terminal bell (BEL).
    Bell,
    /// OSC 9: a desktop notification in iTerm2, Windows Terminal, WezTerm, kitty, foot, Ghostty.
    Osc9,
    /// OSC 777 `notify`: a desktop notification in urxvt, VTE terminals, foot, Ghostty, WezTerm.
    Osc777,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, url: &str, events: &[&str]) -> NotifyConfig {
        NotifyConfig {
            kind: kind.into(),
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            outage_after: DEFAULT_OUTAGE_AFTER,
        }
    }

    #[test]
    fn every_event_has_a_name_that_parses_back() {
        for e in NotifyEvent::ALL {
            assert_eq!(NotifyEvent::parse(e.as_str()), Some(e));
        }
        assert_eq!(NotifyEvent::parse("halted"), None);
    }

    #[test]
    fn a_valid_entry_becomes_a_target() {
        let t = entry(
            "slack",
            "https://hooks.slack.com/services/T0/B0/s3cr3t",
            &["halt"],
        )
        .target(2)
        .unwrap();
        assert_eq!(t.kind, TargetKind::Slack);
        assert!(t.wants(NotifyEvent::Halt));
        assert!(!t.wants(NotifyEvent::Rollback));
        assert_eq!(t.label(), "notify[2] slack https://hooks.slack.com/***");
    }

    #[test]
    fn errors_name_the_key_and_never_the_url() {
        let secret = "https://hooks.slack.com/services/T0/B0/s3cr3tpathvalue";
        let cases = [
            (entry("email", secret, &["halt"]), "notify[0].kind"),
            (entry("slack", "", &["halt"]), "notify[0].url"),
            (
                entry("slack", "hooks.slack.com/x", &["halt"]),
                "notify[0].url",
            ),
            (
                entry("slack", "ftp://host/s3cr3tpathvalue", &["halt"]),
                "notify[0].url",
            ),
            (entry("webhook", secret, &[]), "notify[0].events"),
            (entry("webhook", secret, &["halt", "panic"]), "panic"),
        ];
        for (e, needle) in cases {
            let err = e.target(0).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
            assert!(!err.contains("s3cr3t"), "leaks the URL: {err}");
        }
        let mut zero = entry("webhook", secret, &["outage"]);
        zero.outage_after = Duration::ZERO;
        assert!(
            zero.target(0)
                .unwrap_err()
                .contains("notify[0].outage_after")
        );
    }

    #[test]
    fn debug_output_masks_the_url() {
        let e = entry(
            "slack",
            "https://hooks.slack.com/services/T0/B0/s3cr3t",
            &["halt"],
        );
        let t = e.target(0).unwrap();
        for text in [format!("{e:?}"), format!("{t:?}")] {
            assert!(text.contains("https://hooks.slack.com/***"), "{text}");
            assert!(!text.contains("s3cr3t"), "{text}");
        }
        let unparsable = entry("slack", "not a url s3cr3t", &["halt"]);
        assert!(!format!("{unparsable:?}").contains("s3cr3t"));
    }

    #[test]
    fn urls_inside_text_are_masked() {
        let text = "3 | url = https://hooks.slack.com/services/T0/B0/s3cr3t\n  | ^^^ and \"http://127.0.0.1:9/x?token=s3cr3t\" or http:// alone";
        assert_eq!(
            mask_urls(text),
            "3 | url = https://hooks.slack.com/***\n  | ^^^ and \"http://127.0.0.1:9/***\" or [redacted] alone"
        );
        assert_eq!(mask_urls("no links here"), "no links here");
    }

    #[test]
    fn masked_urls_keep_host_and_port_only() {
        let cases = [
            (
                "https://hooks.slack.com/services/T0/B0/secret",
                "https://hooks.slack.com/***",
            ),
            (
                "http://user:pw@127.0.0.1:8080/hook?token=abc",
                "http://127.0.0.1:8080/***",
            ),
            ("https://example.com/", "https://example.com"),
            ("https://example.com/?k=v", "https://example.com/***"),
        ];
        for (url, want) in cases {
            assert_eq!(masked_url(&reqwest::Url::parse(url).unwrap()), want);
        }
    }
}
