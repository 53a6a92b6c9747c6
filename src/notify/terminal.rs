//! The cockpit's own signal that a confirmation awaits this operator: the bell, or a desktop
//! notification through OSC 9 or OSC 777. Pure: bytes to write to the terminal.
//!
//! Terminals that do not know OSC 9 or 777 ignore the sequence. Inside tmux they reach the
//! outer terminal only with `set -g allow-passthrough on`; the bell always does.

use super::config::TerminalNotify;
use crate::domain::progression::NextStage;

/// Longest text put in a desktop notification.
const MAX_CHARS: usize = 200;

/// The bytes that ring or notify for `mode`: empty for `Off`. `title` and `body` may hold
/// stored text: controls are dropped (an ESC or BEL would end the sequence early and let the
/// rest act on the terminal) and OSC 777's `;` separator becomes `,`.
pub fn terminal_notification(mode: TerminalNotify, title: &str, body: &str) -> Vec<u8> {
    match mode {
        TerminalNotify::Off => Vec::new(),
        TerminalNotify::Bell => b"\x07".to_vec(),
        // OSC 9 carries one text; a text that starts with digits and `;` is a ConEmu command,
        // so it always starts with the title's letters.
        TerminalNotify::Osc9 => {
            format!("\x1b]9;{}: {}\x07", inert(title, false), inert(body, false)).into_bytes()
        }
        TerminalNotify::Osc777 => format!(
            "\x1b]777;notify;{};{}\x07",
            inert(title, true),
            inert(body, true)
        )
        .into_bytes(),
    }
}

/// The cockpit's signal that auto-progression waits for this operator's yes on `rollout_id`.
pub fn confirmation_awaits(mode: TerminalNotify, rollout_id: &str, next: &NextStage) -> Vec<u8> {
    terminal_notification(
        mode,
        "rollout-tui",
        &format!("{rollout_id}: confirm {} to go on", next.phrase()),
    )
}

/// The mode as written in the config.
pub fn mode_name(mode: TerminalNotify) -> &'static str {
    match mode {
        TerminalNotify::Off => "off",
        TerminalNotify::Bell => "bell",
        TerminalNotify::Osc9 => "osc9",
        TerminalNotify::Osc777 => "osc777",
    }
}

fn inert(text: &str, semicolons: bool) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| !crate::domain::text::is_unsafe_for_terminal(*c))
        .map(|c| if semicolons && c == ';' { ',' } else { c })
        .collect();
    crate::metrics::redact::clip(cleaned.trim(), MAX_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_has_its_sequence() {
        let t = |mode| {
            String::from_utf8(terminal_notification(
                mode,
                "rollout-tui",
                "web: confirm 25%",
            ))
            .unwrap()
        };
        assert_eq!(t(TerminalNotify::Off), "");
        assert_eq!(t(TerminalNotify::Bell), "\x07");
        assert_eq!(
            t(TerminalNotify::Osc9),
            "\x1b]9;rollout-tui: web: confirm 25%\x07"
        );
        assert_eq!(
            t(TerminalNotify::Osc777),
            "\x1b]777;notify;rollout-tui;web: confirm 25%\x07"
        );
    }

    #[test]
    fn a_waiting_confirmation_names_the_rollout_and_stage() {
        let next = NextStage {
            index: 2,
            name: "25%".into(),
            percent: crate::domain::units::Percent::from_hundredths(2500).unwrap(),
            because: None,
        };
        let bytes = confirmation_awaits(TerminalNotify::Osc777, "web", &next);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "\x1b]777;notify;rollout-tui;web: confirm stage 3 '25%' (25%) to go on\x07"
        );
        assert_eq!(
            confirmation_awaits(TerminalNotify::Bell, "web", &next),
            b"\x07"
        );
        assert!(confirmation_awaits(TerminalNotify::Off, "web", &next).is_empty());
    }

    #[test]
    fn stored_text_cannot_end_the_sequence() {
        let hostile = "a\x07b\x1b]0;pwned\x1b\\c;d\u{9c}";
        for mode in [TerminalNotify::Osc9, TerminalNotify::Osc777] {
            let bytes = terminal_notification(mode, hostile, hostile);
            let text = String::from_utf8(bytes).unwrap();
            // One ESC (the start) and one BEL (the end), nothing else of the kind.
            assert_eq!(text.matches('\x1b').count(), 1, "{text:?}");
            assert_eq!(text.matches('\x07').count(), 1, "{text:?}");
            assert!(
                text.ends_with('\x07') && !text.contains('\u{9c}'),
                "{text:?}"
            );
        }
        let osc777 =
            String::from_utf8(terminal_notification(TerminalNotify::Osc777, "t;x", "c;d")).unwrap();
        assert_eq!(osc777, "\x1b]777;notify;t,x;c,d\x07");
    }
}
