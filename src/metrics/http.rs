//! Requests with bounded retries, Google credentials, and error text that never holds a token.
//! Shared by the metrics sources (GET) and the Cloud Run actuator (GET and PATCH with JSON).

use std::sync::Mutex;
use std::time::Duration;

use firestore::gcloud_sdk::GoogleAuthHeaders;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::config::Credentials;
use super::redact;

pub const MONITORING_READ: &str = "https://www.googleapis.com/auth/monitoring.read";
/// What the Cloud Run Admin API asks for: it has no narrower scope.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const BACKOFF_BASE: Duration = Duration::from_millis(250);
const BACKOFF_CAP: Duration = Duration::from_secs(4);
/// Longest Retry-After honoured; a longer one still never waits past the deadline.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
/// Longest message quoted from an answer.
pub const ERROR_BODY_CHARS: usize = 300;
/// How much of an error answer's body is read for its message.
const ERROR_BODY_BYTES: usize = 64 * 1024;

pub struct Http {
    client: reqwest::Client,
    auth: Option<OnceCell<GoogleAuthHeaders>>,
    scope: &'static str,
    retries: u32,
    max_body: usize,
    /// The setting that raises `max_body`, named when an answer is larger.
    max_body_key: Option<&'static str>,
    /// Tokens this client has sent, so an echo of one is recognised anywhere.
    sent: Mutex<Vec<String>>,
}

/// Tokens remembered for redaction; access tokens are renewed about hourly.
const SENT_KEPT: usize = 4;

impl Http {
    pub fn new(credentials: Credentials, retries: u32, max_body: usize) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("rollout-tui/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))?;
        let auth = (credentials == Credentials::Adc).then(OnceCell::new);
        Ok(Http {
            client,
            auth,
            scope: MONITORING_READ,
            retries,
            max_body,
            max_body_key: Some("metrics.max_response_bytes"),
            sent: Mutex::new(Vec::new()),
        })
    }

    /// Access tokens for `scope` instead of monitoring.read.
    pub fn with_scope(mut self, scope: &'static str) -> Http {
        self.scope = scope;
        self
    }

    /// The setting named when an answer is over the body limit; None: a fixed limit.
    pub fn with_max_body_key(mut self, key: Option<&'static str>) -> Http {
        self.max_body_key = key;
        self
    }

    /// `text` without the tokens this client sent or anything else that looks like a secret.
    pub fn scrub(&self, text: &str) -> String {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let known: Vec<&str> = sent.iter().map(String::as_str).collect();
        redact::secrets(text, &known)
    }

    /// A message built from an answer's body: scrubbed, then cut to a readable length.
    pub fn scrub_body_text(&self, text: &str) -> String {
        redact::clip(&self.scrub(text), ERROR_BODY_CHARS)
    }

    fn remember(&self, token: &str) {
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        if !sent.iter().any(|t| t == token) {
            if sent.len() >= SENT_KEPT {
                sent.remove(0);
            }
            sent.push(token.to_string());
        }
    }

    /// Credentials are built on first use, inside the runtime; a failure is not kept, so
    /// a later `gcloud auth application-default login` is picked up by the next sample.
    async fn auth_headers(&self) -> Result<Option<HeaderMap>, String> {
        let Some(cell) = &self.auth else {
            return Ok(None);
        };
        let auth = cell
            .get_or_try_init(|| async {
                GoogleAuthHeaders::from_adc_with_scopes(vec![self.scope.into()])
                    .await
                    .map_err(|e| format!("Application Default Credentials: {}", chain(&e)))
            })
            .await
            .map_err(|e| self.scrub(&e))?;
        let headers = auth
            .headers()
            .await
            .map_err(|e| self.scrub(&format!("cannot get an access token: {}", chain(&e))))?;
        let mut headers = (*headers).clone();
        if let Some(v) = headers.get_mut(AUTHORIZATION) {
            // Debug output of a sensitive value (a trace log of the request) hides it.
            v.set_sensitive(true);
            if let Ok(text) = v.to_str() {
                let token = text.split_once(' ').map_or(text, |(_, t)| t).trim();
                self.remember(token);
            }
        }
        Ok(Some(headers))
    }

    /// The body of a 2xx answer, at most `max_body` bytes. 429, 5xx and connection failures
    /// are retried with exponential backoff and jitter, honouring Retry-After, never past
    /// `deadline`. Every error text is scrubbed of secrets.
    pub async fn get(&self, url: Url, deadline: Instant) -> Result<String, String> {
        self.send(Method::GET, url, None, deadline)
            .await
            .map_err(|f| f.text)
    }

    /// `get` for any method, with an optional JSON body, failing with what the caller needs to
    /// tell failures apart (the status, Google's error status and message). A request with a
    /// body is retried like a GET: callers send only idempotent writes (a PATCH that sets
    /// values, guarded by an etag).
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        json: Option<&serde_json::Value>,
        deadline: Instant,
    ) -> Result<String, HttpFailure> {
        self.send_raw(method, url, json, deadline)
            .await
            .map_err(|mut f| {
                f.text = self.scrub(&f.text);
                f
            })
    }

    async fn send_raw(
        &self,
        method: Method,
        url: Url,
        json: Option<&serde_json::Value>,
        deadline: Instant,
    ) -> Result<String, HttpFailure> {
        let headers = self.auth_headers().await.map_err(HttpFailure::other)?;
        let host = url.host_str().unwrap_or("?").to_string();
        let body = match json {
            Some(v) => Some(
                serde_json::to_vec(v)
                    .map_err(|e| HttpFailure::other(format!("cannot encode the request: {e}")))?,
            ),
            None => None,
        };
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(HttpFailure::timeout(format!("{host}: timed out")));
            }
            let mut req = self
                .client
                .request(method.clone(), url.clone())
                .timeout(left);
            if let Some(h) = &headers {
                req = req.headers(h.clone());
            }
            if let Some(b) = &body {
                req = req.header(CONTENT_TYPE, "application/json").body(b.clone());
            }
            let (problem, retry_after) = match req.send().await {
                Ok(mut resp) if resp.status().is_success() => {
                    return match read_body(&mut resp, self.max_body, true).await {
                        Ok(body) => String::from_utf8(body).map_err(|_| {
                            HttpFailure::other(format!("{host}: the answer is not UTF-8 text"))
                        }),
                        Err(BodyError::TooLarge) => {
                            let hint = match self.max_body_key {
                                Some(key) => {
                                    format!(" ({key}); narrow the query or raise the limit")
                                }
                                None => String::new(),
                            };
                            Err(HttpFailure::other(format!(
                                "{host}: the answer is larger than the {} limit{hint}",
                                size_text(self.max_body)
                            )))
                        }
                        // A deadline is a timeout wherever it falls, so callers tell it
                        // from a broken answer (Cloud Run: "may still apply").
                        Err(BodyError::TimedOut) => Err(HttpFailure::timeout(format!(
                            "{host}: timed out reading the answer"
                        ))),
                        Err(BodyError::Read(e)) => Err(HttpFailure::other(format!(
                            "{host}: reading the answer: {e}"
                        ))),
                    };
                }
                Ok(mut resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    // Only the start of an error body is read: enough for its message.
                    let limit = ERROR_BODY_BYTES.min(self.max_body);
                    let body = read_body(&mut resp, limit, false).await.unwrap_or_default();
                    let body = self.scrub(&String::from_utf8_lossy(&body));
                    let (detail, reason) = error_detail(&body);
                    let text = if detail.is_empty() {
                        format!("{host} answered {status}")
                    } else {
                        format!("{host} answered {status}: {detail}")
                    };
                    let failure = HttpFailure {
                        status: Some(status.as_u16()),
                        reason,
                        detail,
                        text,
                        timed_out: false,
                    };
                    if !retryable(status) {
                        return Err(failure);
                    }
                    (failure, retry_after)
                }
                Err(e) if e.is_timeout() => {
                    return Err(HttpFailure::timeout(format!("{host}: timed out")));
                }
                Err(e) => (
                    HttpFailure::other(format!("cannot reach {host}: {}", chain(&e.without_url()))),
                    None,
                ),
            };
            if attempt >= self.retries {
                let tries = attempt + 1;
                return Err(problem.noted(&format!(
                    "after {tries} tr{}",
                    if tries == 1 { "y" } else { "ies" }
                )));
            }
            let wait = retry_after
                .map(|d| d.min(RETRY_AFTER_CAP))
                .unwrap_or_else(|| backoff(attempt));
            if Instant::now() + wait >= deadline {
                return Err(problem.noted("no time left to retry"));
            }
            tracing::debug!(%host, attempt, wait_ms = wait.as_millis() as u64, "request retried");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// A request that got no successful answer. Every text in it is scrubbed and bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpFailure {
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Google's `error.status` ("ABORTED", "INVALID_ARGUMENT", "PERMISSION_DENIED").
    pub reason: Option<String>,
    /// The server's own message (Google's `error.message`), else the start of the body.
    pub detail: String,
    /// The whole failure on one line: "run.googleapis.com answered 409 Conflict: ...".
    pub text: String,
    pub timed_out: bool,
}

impl HttpFailure {
    fn other(text: String) -> HttpFailure {
        HttpFailure {
            status: None,
            reason: None,
            detail: String::new(),
            text,
            timed_out: false,
        }
    }

    fn timeout(text: String) -> HttpFailure {
        HttpFailure {
            timed_out: true,
            ..HttpFailure::other(text)
        }
    }

    fn noted(mut self, note: &str) -> HttpFailure {
        self.text = format!("{} ({note})", self.text);
        self
    }
}

/// The `error` object of a Google API answer: `{"error": {"code", "message", "status"}}`;
/// Prometheus puts its message in a plain `error` string.
#[derive(Debug, Default)]
struct GoogleError {
    message: Option<String>,
    status: Option<String>,
}

impl GoogleError {
    fn parse(body: &str) -> GoogleError {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
            return GoogleError::default();
        };
        let text = |p: &str| v.pointer(p).and_then(|m| m.as_str()).map(str::to_string);
        GoogleError {
            message: text("/error/message").or_else(|| text("/error")),
            status: text("/error/status"),
        }
    }
}

enum BodyError {
    TooLarge,
    /// The deadline passed while the answer was still arriving.
    TimedOut,
    Read(String),
}

/// Reads the body chunk by chunk and stops at `limit` bytes, so an endless or huge answer
/// costs at most `limit` of memory. `strict`: going past the limit is an error; otherwise
/// the first `limit` bytes are kept (for error messages).
async fn read_body(
    resp: &mut reqwest::Response,
    limit: usize,
    strict: bool,
) -> Result<Vec<u8>, BodyError> {
    if strict && resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(None) => return Ok(body),
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    if strict {
                        return Err(BodyError::TooLarge);
                    }
                    body.extend_from_slice(&chunk[..limit - body.len()]);
                    return Ok(body);
                }
                body.extend_from_slice(&chunk);
            }
            Err(e) if e.is_timeout() => return Err(BodyError::TimedOut),
            Err(e) => return Err(BodyError::Read(chain(&e.without_url()))),
        }
    }
}

/// "4 MiB", "64 KiB", "900 bytes".
pub fn size_text(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn retryable(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

pub fn backoff(attempt: u32) -> Duration {
    crate::backoff::jittered(BACKOFF_BASE, BACKOFF_CAP, attempt)
}

/// The server's own message (Google's `error.message`, Prometheus' `error`), else the
/// start of the body, bounded; and Google's `error.status`. `body` must already be scrubbed:
/// cutting first could leave half a token.
fn error_detail(body: &str) -> (String, Option<String>) {
    let google = GoogleError::parse(body);
    let text = google.message.unwrap_or_else(|| body.trim().to_string());
    (redact::clip(&text, ERROR_BODY_CHARS), google.status)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn google_and_prometheus_errors_give_their_message() {
        let g =
            r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}"#;
        let e = GoogleError::parse(g);
        assert_eq!(e.message.as_deref(), Some("Quota exceeded"));
        assert_eq!(e.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        let p = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        let e = GoogleError::parse(p);
        assert_eq!(e.message.as_deref(), Some("parse error at char 5"));
        assert_eq!(e.status, None);
        assert!(GoogleError::parse("<html>busy</html>").message.is_none());
        assert_eq!(error_detail(""), (String::new(), None));
        assert_eq!(error_detail(" busy \n").0, "busy");
        assert_eq!(
            error_detail(&"x".repeat(1000)).0.chars().count(),
            ERROR_BODY_CHARS + 1
        );
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(4 * 1024 * 1024), "4 MiB");
        assert_eq!(size_text(64 * 1024), "64 KiB");
        assert_eq!(size_text(1500), "1500 bytes");
    }
}
