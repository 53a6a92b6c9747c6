//! Free text that people type (reasons, versions, actors, user keys): what is refused on input,
//! and which characters can make a terminal or a reader see something that is not there.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest rollback or pause reason, in characters: a paragraph, not a log dump.
pub const MAX_REASON_CHARS: usize = 2000;
/// Longest version label or actor name, in characters.
pub const MAX_LABEL_CHARS: usize = 256;

/// Invisible characters that change how the text around them reads: bidirectional overrides,
/// isolates and marks (`abc\u{202e}fed` displays as "abcdef" reversed in part), zero-width
/// spaces and joiners, the word joiner, the byte-order mark and the soft hyphen.
pub fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// A character that must never reach a terminal raw: C0 and C1 controls, DEL, and the hidden
/// format characters above.
pub fn is_unsafe_for_terminal(c: char) -> bool {
    c.is_control() || is_hidden_format(c)
}

/// Checks one line of typed text: no control or hidden format characters, at most `max_chars`.
/// `what` names the input in the error ("the rollback reason"). Returns the text trimmed.
pub fn validate_line<'a>(what: &str, text: &'a str, max_chars: usize) -> Result<&'a str, String> {
    let t = text.trim();
    if let Some(c) = t.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what} contains a control character ({}); use plain text on one line",
            describe_char(c)
        ));
    }
    if let Some(c) = t.chars().find(|c| is_hidden_format(*c)) {
        return Err(format!(
            "{what} contains an invisible formatting character ({}) that can make it read differently; remove it",
            describe_char(c)
        ));
    }
    let n = t.chars().count();
    if n > max_chars {
        return Err(format!(
            "{what} is {n} characters long; the limit is {max_chars}"
        ));
    }
    Ok(t)
}

/// The text with every character that is unsafe for a terminal written as a visible escape
/// (`\x1b`, `\u{202e}`), so output shows what is stored without acting on it.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_except(text, |_| false)
}

/// Like `escape`, but line breaks stay line breaks: for messages made of several lines.
pub fn escape_keeping_lines(text: &str) -> Cow<'_, str> {
    escape_except(text, |c| c == '\n')
}

fn escape_except(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe_for_terminal(c) && !keep(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe_for_terminal(c) || keep(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// Text made by the program from outside data (an automatic decision's reason built from gate
/// details): escaped and cut to `max_chars`, so it always passes `validate_line`.
pub fn to_safe_line(text: &str, max_chars: usize) -> String {
    let escaped = escape(text.trim());
    if escaped.chars().count() <= max_chars {
        return escaped.into_owned();
    }
    let mut cut: String = escaped.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// `U+001B` plus a name people recognise for the common ones.
pub fn describe_char(c: char) -> String {
    let name = match c {
        '\u{1b}' => " escape",
        '\n' => " line feed",
        '\r' => " carriage return",
        '\t' => " tab",
        '\u{7}' => " bell",
        '\u{7f}' => " delete",
        '\u{202e}' => " right-to-left override",
        '\u{202d}' => " left-to-right override",
        '\u{200b}' => " zero-width space",
        '\u{feff}' => " byte-order mark",
        _ => "",
    };
    format!("U+{:04X}{name}", c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_hidden_formats_are_refused_with_their_code_point() {
        let e = validate_line("the reason", "a\u{1b}[2Jb", 10).unwrap_err();
        assert!(e.contains("U+001B escape"), "{e}");
        let e = validate_line("the reason", "a\u{9b}b", 10).unwrap_err();
        assert!(e.contains("U+009B"), "{e}");
        let e = validate_line("the version", "1.0\u{202e}", 10).unwrap_err();
        assert!(e.contains("right-to-left override"), "{e}");
        let e = validate_line("the reason", "x\u{7f}", 10).unwrap_err();
        assert!(e.contains("U+007F delete"), "{e}");
        assert_eq!(validate_line("x", "  fine text é  ", 20), Ok("fine text é"));
    }

    #[test]
    fn the_limit_counts_characters_not_bytes() {
        let at_limit = "é".repeat(MAX_REASON_CHARS);
        assert!(validate_line("r", &at_limit, MAX_REASON_CHARS).is_ok());
        let over = "é".repeat(MAX_REASON_CHARS + 1);
        let e = validate_line("r", &over, MAX_REASON_CHARS).unwrap_err();
        assert!(
            e.contains("2001 characters") && e.contains("limit is 2000"),
            "{e}"
        );
    }

    #[test]
    fn escapes_are_visible_and_inert() {
        assert_eq!(escape("1\u{1b}]0;PWNED\u{7}"), "1\\x1b]0;PWNED\\x07");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("a\u{9b}b\u{7f}"), "a\\x9bb\\x7f");
        assert_eq!(escape("two\nlines"), "two\\x0alines");
        assert_eq!(escape_keeping_lines("two\nlines\u{1b}"), "two\nlines\\x1b");
        assert!(matches!(escape("plain é 日"), Cow::Borrowed(_)));
        for s in ["\u{1b}[2J", "x\u{202e}y", "\u{85}"] {
            assert!(!escape(s).chars().any(is_unsafe_for_terminal), "{s:?}");
        }
    }

    #[test]
    fn safe_lines_pass_validation() {
        let long = format!("{}\u{1b}", "x".repeat(3000));
        let safe = to_safe_line(&long, MAX_REASON_CHARS);
        assert_eq!(safe.chars().count(), MAX_REASON_CHARS);
        assert!(validate_line("r", &safe, MAX_REASON_CHARS).is_ok());
        assert_eq!(to_safe_line(" a\u{1b}b ", 10), "a\\x1bb");
    }

    #[test]
    fn hidden_format_characters() {
        for c in [
            '\u{202e}', '\u{2067}', '\u{200b}', '\u{200d}', '\u{feff}', '\u{2060}',
        ] {
            assert!(is_hidden_format(c), "{c:?}");
            assert!(is_unsafe_for_terminal(c), "{c:?}");
        }
        for c in ['a', 'é', '日', '-', '@', ' '] {
            assert!(!is_unsafe_for_terminal(c), "{c:?}");
        }
        for c in ['\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}'] {
            assert!(is_unsafe_for_terminal(c), "{c:?}");
        }
    }
}
