//! Secrets never leave the process: every text built from a server's answer, a credentials
//! error or a configured URL goes through `secrets` before it can reach a screen, a JSON
//! output or the log file.
//!
//! Known tokens (the one the client sent) are removed wherever even their start appears, so a
//! token cut short by the server or by a size limit leaves nothing behind. Generic patterns catch
//! what the client never saw itself: `Bearer`/`Basic` credentials, JWTs (a service account's
//! signed assertion differs from the access token it buys), Google OAuth tokens, secret-named
//! JSON or form fields, PEM private keys and `user:password@` in URLs.

pub const REDACTED: &str = "[redacted]";

/// A known token is found by this many leading characters (or all of a shorter one).
const KNOWN_PREFIX: usize = 12;
/// Shorter known tokens are not looked for: they would match ordinary words.
const KNOWN_MIN: usize = 8;

/// Field names whose values are secrets, in JSON (`"access_token": "..."`) or in a form
/// (`assertion=...`).
const SECRET_KEYS: [&str; 11] = [
    "authorization",
    "access_token",
    "refresh_token",
    "id_token",
    "client_secret",
    "assertion",
    "private_key",
    "private_key_id",
    "password",
    "subject_token",
    "token",
];

/// `text` without anything that looks like a credential; `known` are tokens this process sent.
pub fn secrets(text: &str, known: &[&str]) -> String {
    let text = pem_blocks(text);
    let text = url_userinfo(&text);
    runs(&text, known)
}

/// At most `max` characters, with "…" when cut. Cut only after `secrets`, never before:
/// a token cut in half would no longer be recognised.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// Characters of tokens: base64 (both alphabets), dots, and the few others OAuth uses.
/// Not `=`: it separates form fields, and base64 padding alone reveals nothing.
fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.~+/".contains(c)
}

fn pem_blocks(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(BEGIN) {
        out.push_str(&rest[..at]);
        out.push_str(REDACTED);
        let after = &rest[at + BEGIN.len()..];
        // To the end marker's closing dashes; a block cut short is removed to the end.
        rest = match after.find("-----END") {
            Some(end) => {
                let tail = &after[end + "-----END".len()..];
                match tail.find("-----") {
                    Some(close) => &tail[close + 5..],
                    None => "",
                }
            }
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// `scheme://user:password@host` -> `scheme://[redacted]@host`.
fn url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let start = at + 3;
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let authority_len = after
            .find(|c: char| "/?#\"'<> \t\r\n".contains(c))
            .unwrap_or(after.len());
        let authority = &after[..authority_len];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[authority_len..];
    }
    out.push_str(rest);
    out
}

/// Looks at each run of token characters with the text just before it.
fn runs(text: &str, known: &[&str]) -> String {
    let probes: Vec<&str> = known
        .iter()
        .map(|k| k.trim())
        .filter(|k| k.len() >= KNOWN_MIN)
        .map(|k| {
            let end = k
                .char_indices()
                .nth(KNOWN_PREFIX)
                .map_or(k.len(), |(i, _)| i);
            &k[..end]
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let Some(first) = rest.chars().next() else {
            break;
        };
        if !token_char(first) {
            out.push(first);
            i += first.len_utf8();
            continue;
        }
        let len = rest.find(|c: char| !token_char(c)).unwrap_or(rest.len());
        let run = &rest[..len];
        let before = &text[..i];
        if let Some(at) = probes.iter().filter_map(|p| run.find(p)).min() {
            out.push_str(&run[..at]);
            out.push_str(REDACTED);
        } else if secret_shaped(run)
            || after_scheme(before)
            || (after_secret_key(before) && !is_scheme(run))
        {
            out.push_str(REDACTED);
        } else {
            out.push_str(run);
        }
        i += len;
    }
    out
}

/// JWTs (`eyJ` is base64 for `{"`), Google access tokens and refresh tokens.
fn secret_shaped(run: &str) -> bool {
    (run.starts_with("eyJ") && run.len() >= 16 && run.contains('.'))
        || (run.starts_with("ya29.") && run.len() > 10)
        || (run.starts_with("1//") && run.len() >= 20)
}

fn is_scheme(word: &str) -> bool {
    word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic")
}

/// `Bearer <run>` or `Basic <run>` (any case).
fn after_scheme(before: &str) -> bool {
    let trimmed = before.trim_end();
    if trimmed.len() == before.len() {
        return false;
    }
    let word_start = trimmed
        .rfind(|c: char| !c.is_ascii_alphabetic())
        .map_or(0, |i| i + 1);
    is_scheme(&trimmed[word_start..])
}

/// Without a trailing quote, perhaps escaped (JSON quoted inside a JSON string), and blanks.
fn unquote(b: &str) -> &str {
    let b = b.trim_end_matches([' ', '\t']);
    let b = b.strip_suffix(['"', '\'']).unwrap_or(b);
    b.strip_suffix('\\')
        .unwrap_or(b)
        .trim_end_matches([' ', '\t'])
}

/// `"access_token": "<run>`, `assertion=<run>`, `token: <run>` and the like.
fn after_secret_key(before: &str) -> bool {
    let b = unquote(before);
    let Some(b) = b.strip_suffix([':', '=']) else {
        return false;
    };
    let b = unquote(b);
    let key_start = b
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |i| i + 1);
    let key = &b[key_start..];
    SECRET_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str =
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzYUBwLmlhbSJ9.c2lnbmF0dXJlLWJ5dGVz";

    fn clean(text: &str, known: &[&str]) -> String {
        secrets(text, known)
    }

    #[test]
    fn known_tokens_go_even_when_cut_short() {
        let t = "opaque-token-0123456789abcdef";
        assert_eq!(
            clean(&format!("you sent {t}, thanks"), &[t]),
            "you sent [redacted], thanks"
        );
        // Cut by a size limit or by the server: its start is enough to recognise it.
        assert_eq!(
            clean(&format!("echo {}", &t[..15]), &[t]),
            "echo [redacted]"
        );
        // Glued to other token characters, the known part still goes.
        assert_eq!(clean(&format!("x=abc{t}"), &[t]), "x=abc[redacted]");
        // Short known strings are not hunted for.
        assert_eq!(clean("the word short", &["short"]), "the word short");
    }

    #[test]
    fn generic_patterns_need_no_known_token() {
        let cases = [
            (
                "Authorization: Bearer abc.DEF-123_x",
                "Authorization: Bearer [redacted]",
            ),
            (
                r#"{"authorization": "opaque"}"#,
                r#"{"authorization": "[redacted]"}"#,
            ),
            (
                "authorization: bearer   tok",
                "authorization: bearer   [redacted]",
            ),
            ("Basic dXNlcjpwYXNz", "Basic [redacted]"),
            (
                &format!("assertion {JWT} refused") as &str,
                "assertion [redacted] refused",
            ),
            ("token ya29.a0AfH6SMBx-secret", "token [redacted]"),
            ("rt 1//0gLongRefreshTokenValue123", "rt [redacted]"),
            (
                r#"{"access_token": "abc123", "expires_in": 3599}"#,
                r#"{"access_token": "[redacted]", "expires_in": 3599}"#,
            ),
            (
                r#"first: {"detail":"{\"refresh_token\": \"rt-secret\"}"}"#,
                r#"first: {"detail":"{\"refresh_token\": \"[redacted]\"}"}"#,
            ),
            (
                "grant_type=x&assertion=abc.def.ghi&scope=y",
                "grant_type=x&assertion=[redacted]&scope=y",
            ),
            (
                "bad \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n\" here",
                "bad \"private_key\": \"[redacted]\\n\" here",
            ),
            (
                "endpoint 'https://alice:s3cret@prom.example:9090/x' refused",
                "endpoint 'https://[redacted]@prom.example:9090/x' refused",
            ),
            ("http://TOKEN@host/", "http://[redacted]@host/"),
        ];
        for (text, want) in cases {
            assert_eq!(clean(text, &[]), want, "{text}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let texts = [
            "request_count: malformed answer: expected value at line 1 column 1",
            "svc.example.com answered 500 Internal Server Error: backend error",
            "query failed (bad_data): 1:5: parse error: unexpected identifier",
            "http://127.0.0.1:9090/api/v1/query timed out",
            "no request_count data for revision svc-00001-abc in the last 5m",
            "the token endpoint was unreachable",
        ];
        for t in texts {
            assert_eq!(clean(t, &["ya29.known-token-value"]), t);
        }
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("ééé", 2), "éé…");
    }
}
