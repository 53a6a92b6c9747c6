//! Sending: one POST per message and target, retried with jittered backoff on what may pass
//! (a connection failure, a timeout, 429, 5xx), given up on what will not (any other answer).
//! Error texts never hold the webhook URL or anything else secret.

use std::time::Duration;

use serde_json::Value;

use super::config::{Target, TargetKind, masked_url, url_secrets};
use super::message::Notice;
use crate::metrics::redact;

/// One POST may take this long; a webhook answers in milliseconds when it is up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest piece of an answer's body quoted in an error.
const ERROR_BODY_CHARS: usize = 200;
/// Longest wait a receiver's Retry-After is followed for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How much of an error answer's body is read for its message.
const ERROR_BODY_BYTES: usize = 8 * 1024;

/// How hard a message is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Retry {
    /// Five tries over about half a minute: a receiver restarting is waited for, one that
    /// is down does not hold the target's later messages for long.
    fn default() -> Self {
        Retry {
            attempts: 5,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(15),
        }
    }
}

/// Why a POST did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth another try (connection, timeout, 429, 5xx), after `retry_after` if the
    /// receiver said so.
    Transient {
        text: String,
        retry_after: Option<Duration>,
    },
    /// Will fail the same way again (a 4xx: a wrong URL, a revoked webhook, a refused body).
    Refused(String),
}

impl SendError {
    pub fn text(&self) -> &str {
        match self {
            SendError::Transient { text, .. } | SendError::Refused(text) => text,
        }
    }
}

pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("rollout-tui/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .timeout(REQUEST_TIMEOUT)
        // A redirect would send the message somewhere the config does not name.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// The body `target` gets for `notice`.
pub fn body(target: &Target, notice: &Notice) -> Value {
    match target.kind {
        TargetKind::Slack => notice.slack_body(),
        TargetKind::Webhook => notice.webhook_body(),
    }
}

/// One POST, no retry.
pub async fn post(
    client: &reqwest::Client,
    target: &Target,
    body: &Value,
) -> Result<(), SendError> {
    let answer = client
        .post(target.url.clone())
        .json(body)
        .send()
        .await
        .map_err(|e| SendError::Transient {
            text: scrub(target, &crate::metrics::http::chain(&e.without_url())),
            retry_after: None,
        })?;
    let status = answer.status();
    if status.is_success() {
        return Ok(());
    }
    // Slack rate-limits with 429 and a Retry-After in seconds.
    let retry_after = answer
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    // Slack says why in a word ("no_service", "invalid_payload"); others in a page, of
    // which the start is enough (and a huge one is not read).
    let mut bytes = Vec::new();
    let mut answer = answer;
    while bytes.len() < ERROR_BODY_BYTES
        && let Ok(Some(chunk)) = answer.chunk().await
    {
        bytes.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_BODY_BYTES)]);
    let said = redact::clip(
        text.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .as_str(),
        ERROR_BODY_CHARS,
    );
    let message = scrub(
        target,
        &if said.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {said}")
        },
    );
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(SendError::Transient {
            text: message,
            retry_after,
        })
    } else {
        Err(SendError::Refused(message))
    }
}

/// POSTs until it lands, the answer says it never will, or the tries run out. Returns the
/// tries made, and the last error if it did not land.
pub async fn post_with_retry(
    client: &reqwest::Client,
    target: &Target,
    body: &Value,
    retry: Retry,
) -> (u32, Result<(), SendError>) {
    let mut tries = 0;
    loop {
        tries += 1;
        match post(client, target, body).await {
            Ok(()) => return (tries, Ok(())),
            Err(e @ SendError::Refused(_)) => return (tries, Err(e)),
            Err(e) if tries >= retry.attempts.max(1) => return (tries, Err(e)),
            Err(e) => {
                tracing::debug!(to = %target.label(), error = %e.text(), try_number = tries, "notification not delivered; retrying");
                let backoff = crate::backoff::jittered(retry.base, retry.cap, tries - 1);
                let asked = match e {
                    SendError::Transient { retry_after, .. } => retry_after,
                    SendError::Refused(_) => None,
                };
                tokio::time::sleep(backoff.max(asked.unwrap_or_default())).await;
            }
        }
    }
}

/// `text` without the target's URL or any piece of it, nor any other credential.
pub fn scrub(target: &Target, text: &str) -> String {
    let masked = masked_url(&target.url);
    let text = text.replace(target.url.as_str(), &masked);
    let known = url_secrets(&target.url);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    redact::secrets(&text, &known)
}
