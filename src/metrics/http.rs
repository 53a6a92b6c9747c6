//! GET with bounded retries, Google credentials, and error text that never holds a token.

use std::time::Duration;

use firestore::gcloud_sdk::GoogleAuthHeaders;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::config::Credentials;

pub const MONITORING_READ: &str = "https://www.googleapis.com/auth/monitoring.read";
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(4);
/// Longest Retry-After honoured; a longer one still never waits past the deadline.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
const ERROR_BODY_CHARS: usize = 300;

pub struct Http {
    client: reqwest::Client,
    auth: Option<OnceCell<GoogleAuthHeaders>>,
    retries: u32,
}

impl Http {
    pub fn new(credentials: Credentials, retries: u32) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("rollout-tui/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))?;
        let auth = (credentials == Credentials::Adc).then(OnceCell::new);
        Ok(Http {
            client,
            auth,
            retries,
        })
    }

    /// Credentials are built on first use, inside the runtime; a failure is not kept, so
    /// a later `gcloud auth application-default login` is picked up by the next sample.
    async fn auth_headers(&self) -> Result<Option<HeaderMap>, String> {
        let Some(cell) = &self.auth else {
            return Ok(None);
        };
        let auth = cell
            .get_or_try_init(|| async {
                GoogleAuthHeaders::from_adc_with_scopes(vec![MONITORING_READ.into()])
                    .await
                    .map_err(|e| format!("Application Default Credentials: {}", chain(&e)))
            })
            .await?;
        let headers = auth
            .headers()
            .await
            .map_err(|e| format!("cannot get an access token: {}", chain(&e)))?;
        Ok(Some((*headers).clone()))
    }

    /// The body of a 2xx answer. 429, 5xx and connection failures are retried with
    /// exponential backoff and jitter, honouring Retry-After, never past `deadline`.
    pub async fn get(&self, url: Url, deadline: Instant) -> Result<String, String> {
        let headers = self.auth_headers().await?;
        let token = headers
            .as_ref()
            .and_then(|h| h.get(AUTHORIZATION))
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_start_matches("Bearer ").to_string());
        let host = url.host_str().unwrap_or("?").to_string();
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(redact(format!("{host}: timed out"), token.as_deref()));
            }
            let mut req = self.client.get(url.clone()).timeout(left);
            if let Some(h) = &headers {
                req = req.headers(h.clone());
            }
            let (problem, retry_after) = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    return resp.text().await.map_err(|e| {
                        redact(
                            format!("{host}: reading the answer: {}", chain(&e)),
                            token.as_deref(),
                        )
                    });
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = resp.text().await.unwrap_or_default();
                    let text = format!("{host} answered {status}{}", error_detail(&body));
                    if !retryable(status) {
                        return Err(redact(text, token.as_deref()));
                    }
                    (text, retry_after)
                }
                Err(e) if e.is_timeout() => {
                    return Err(redact(format!("{host}: timed out"), token.as_deref()));
                }
                Err(e) => (
                    format!("cannot reach {host}: {}", chain(&e.without_url())),
                    None,
                ),
            };
            if attempt >= self.retries {
                let tries = attempt + 1;
                let text = format!(
                    "{problem} (after {tries} tr{})",
                    if tries == 1 { "y" } else { "ies" }
                );
                return Err(redact(text, token.as_deref()));
            }
            let wait = retry_after
                .map(|d| d.min(RETRY_AFTER_CAP))
                .unwrap_or_else(|| backoff(attempt));
            if Instant::now() + wait >= deadline {
                let text = format!("{problem} (no time left to retry)");
                return Err(redact(text, token.as_deref()));
            }
            tracing::debug!(%host, attempt, wait_ms = wait.as_millis() as u64, "metrics request retried");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

fn retryable(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

pub fn backoff(attempt: u32) -> Duration {
    crate::backoff::jittered(BACKOFF_BASE, BACKOFF_CAP, attempt)
}

/// The server's own message (Google's `error.message`, Prometheus' `error`), else the
/// start of the body.
fn error_detail(body: &str) -> String {
    let v: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let msg = v.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
    });
    let text = msg.unwrap_or_else(|| body.trim().to_string());
    if text.is_empty() {
        return String::new();
    }
    let short: String = text.chars().take(ERROR_BODY_CHARS).collect();
    let more = if short.len() < text.len() { "…" } else { "" };
    format!(": {short}{more}")
}

/// An error and its causes on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// A server may echo what it was sent; the token must still never reach a log or screen.
pub fn redact(text: String, token: Option<&str>) -> String {
    match token {
        Some(t) if t.len() >= 8 && text.contains(t) => text.replace(t, "[redacted]"),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_detail_prefers_the_servers_message() {
        let g =
            r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
        assert_eq!(error_detail(g), ": Quota exceeded");
        let p = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(error_detail(p), ": parse error at char 5");
        assert_eq!(error_detail(""), "");
        assert_eq!(
            error_detail(&"x".repeat(1000)).chars().count(),
            2 + ERROR_BODY_CHARS + 1
        );
    }

    #[test]
    fn redaction() {
        let t = "ya29.secret-token";
        let s = redact(format!("echo: Bearer {t}"), Some(t));
        assert!(!s.contains(t) && s.contains("[redacted]"));
    }
}
