//! Key bindings: named commands with default keys, a `[keys]` overlay from the
//! config, duplicates refused. The help overlay is generated from this table,
//! so it always shows the real bindings.

use std::collections::BTreeMap;
use std::fmt;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Command {
    Quit,
    Help,
    Up,
    Down,
    PageUp,
    PageDown,
    Open,
    Back,
    NextPanel,
    Filter,
    Advance,
    PauseResume,
    SetPercent,
    Users,
    AddUser,
    RemoveUser,
    ToggleExcluded,
    Events,
    Rollback,
    Promote,
    Auto,
    Fault,
    Sort,
    NextAttention,
    DismissCard,
    Which,
    Freeze,
    Report,
    SyncTraffic,
}

impl Command {
    pub const ALL: [Command; 29] = [
        Command::Quit,
        Command::Help,
        Command::Up,
        Command::Down,
        Command::PageUp,
        Command::PageDown,
        Command::Open,
        Command::Back,
        Command::NextPanel,
        Command::Filter,
        Command::Advance,
        Command::PauseResume,
        Command::SetPercent,
        Command::Users,
        Command::AddUser,
        Command::RemoveUser,
        Command::ToggleExcluded,
        Command::Events,
        Command::Rollback,
        Command::Promote,
        Command::Auto,
        Command::Fault,
        Command::Sort,
        Command::NextAttention,
        Command::DismissCard,
        Command::Which,
        Command::Freeze,
        Command::Report,
        Command::SyncTraffic,
    ];

    /// The name used in the `[keys]` config table.
    pub fn name(self) -> &'static str {
        match self {
            Command::Quit => "quit",
            Command::Help => "help",
            Command::Up => "up",
            Command::Down => "down",
            Command::PageUp => "page_up",
            Command::PageDown => "page_down",
            Command::Open => "open",
            Command::Back => "back",
            Command::NextPanel => "next_panel",
            Command::Filter => "filter",
            Command::Advance => "advance",
            Command::PauseResume => "pause_resume",
            Command::SetPercent => "set_percent",
            Command::Users => "users",
            Command::AddUser => "add_user",
            Command::RemoveUser => "remove_user",
            Command::ToggleExcluded => "toggle_excluded",
            Command::Events => "events",
            Command::Rollback => "rollback",
            Command::Promote => "promote",
            Command::Auto => "auto",
            Command::Fault => "fault",
            Command::Sort => "sort",
            Command::NextAttention => "next_attention",
            Command::DismissCard => "dismiss_card",
            Command::Which => "which_side",
            Command::Freeze => "freeze",
            Command::Report => "report",
            Command::SyncTraffic => "sync_traffic",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Command::Quit => "quit",
            Command::Help => "this help",
            Command::Up => "move up",
            Command::Down => "move down",
            Command::PageUp => "page up",
            Command::PageDown => "page down",
            Command::Open => "open rollout",
            Command::Back => "back / close dialog",
            Command::NextPanel => "next panel",
            Command::Filter => "filter by id",
            Command::Advance => "advance a stage (asks)",
            Command::PauseResume => "pause or resume",
            Command::SetPercent => "set percentage",
            Command::Users => "users panel",
            Command::AddUser => "add user (users panel)",
            Command::RemoveUser => "remove user (asks)",
            Command::ToggleExcluded => "canary/excluded list",
            Command::Events => "events panel",
            Command::Rollback => "ROLL BACK (give a reason)",
            Command::Promote => "promote to 100% (type id)",
            Command::Auto => "auto-progression on/off",
            Command::Fault => "simulate a fault (demo)",
            Command::Sort => "sort: attention/id/updated",
            Command::NextAttention => "next needing attention",
            Command::DismissCard => "dismiss the decision card",
            Command::Which => "which side is a user on",
            Command::Freeze => "FREEZE or unfreeze all",
            Command::Report => "write report (SVG file)",
            Command::SyncTraffic => "re-apply Cloud Run split",
        }
    }

    fn defaults(self) -> &'static [&'static str] {
        match self {
            Command::Quit => &["q"],
            Command::Help => &["?"],
            Command::Up => &["up", "k"],
            Command::Down => &["down", "j"],
            Command::PageUp => &["pageup"],
            Command::PageDown => &["pagedown"],
            Command::Open => &["enter"],
            Command::Back => &["esc"],
            Command::NextPanel => &["tab"],
            Command::Filter => &["/"],
            Command::Advance => &["a"],
            Command::PauseResume => &["p"],
            Command::SetPercent => &["%"],
            Command::Users => &["u"],
            Command::AddUser => &["i"],
            Command::RemoveUser => &["d"],
            Command::ToggleExcluded => &["x"],
            Command::Events => &["e"],
            Command::Rollback => &["R"],
            Command::Promote => &["P"],
            Command::Auto => &["A"],
            Command::Fault => &["!"],
            Command::Sort => &["s"],
            Command::NextAttention => &["n"],
            Command::DismissCard => &["c"],
            Command::Which => &["w"],
            Command::Freeze => &["F"],
            Command::Report => &["o"],
            Command::SyncTraffic => &["T"],
        }
    }

    fn by_name(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// A key as written in config and shown in help: "q", "R", "%", "enter", "ctrl-c", "f1".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    code: KeyCodeOrd,
    ctrl: bool,
    alt: bool,
}

/// `KeyCode` is not `Ord`; this is the subset bindings use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum KeyCodeOrd {
    Char(char),
    F(u8),
    Enter,
    Esc,
    Tab,
    BackTab,
    Backspace,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Delete,
}

const NAMED: [(&str, KeyCodeOrd); 15] = [
    ("enter", KeyCodeOrd::Enter),
    ("esc", KeyCodeOrd::Esc),
    ("tab", KeyCodeOrd::Tab),
    ("backtab", KeyCodeOrd::BackTab),
    ("backspace", KeyCodeOrd::Backspace),
    ("up", KeyCodeOrd::Up),
    ("down", KeyCodeOrd::Down),
    ("left", KeyCodeOrd::Left),
    ("right", KeyCodeOrd::Right),
    ("pageup", KeyCodeOrd::PageUp),
    ("pagedown", KeyCodeOrd::PageDown),
    ("home", KeyCodeOrd::Home),
    ("end", KeyCodeOrd::End),
    ("delete", KeyCodeOrd::Delete),
    ("space", KeyCodeOrd::Char(' ')),
];

impl Key {
    pub fn parse(text: &str) -> Result<Key, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text.trim();
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let lower = rest.to_ascii_lowercase();
        let code = if let Some((_, code)) = NAMED.iter().find(|(n, _)| *n == lower) {
            *code
        } else if let Some(n) = lower.strip_prefix('f').and_then(|d| d.parse::<u8>().ok()) {
            if !(1..=12).contains(&n) {
                return Err(format!("'{text}': function keys are f1..f12"));
            }
            KeyCodeOrd::F(n)
        } else {
            let mut chars = rest.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !c.is_control() => KeyCodeOrd::Char(c),
                _ => {
                    return Err(format!(
                        "'{text}' is not a key; use one character (q, R, %), a name (enter, esc, tab, up, pagedown, space, f1) or ctrl-/alt- with one"
                    ));
                }
            }
        };
        Ok(Key { code, ctrl, alt })
    }

    pub fn from_event(ev: &KeyEvent) -> Option<Key> {
        let code = match ev.code {
            KeyCode::Char(c) => KeyCodeOrd::Char(c),
            KeyCode::F(n) => KeyCodeOrd::F(n),
            KeyCode::Enter => KeyCodeOrd::Enter,
            KeyCode::Esc => KeyCodeOrd::Esc,
            KeyCode::Tab => KeyCodeOrd::Tab,
            KeyCode::BackTab => KeyCodeOrd::BackTab,
            KeyCode::Backspace => KeyCodeOrd::Backspace,
            KeyCode::Up => KeyCodeOrd::Up,
            KeyCode::Down => KeyCodeOrd::Down,
            KeyCode::Left => KeyCodeOrd::Left,
            KeyCode::Right => KeyCodeOrd::Right,
            KeyCode::PageUp => KeyCodeOrd::PageUp,
            KeyCode::PageDown => KeyCodeOrd::PageDown,
            KeyCode::Home => KeyCodeOrd::Home,
            KeyCode::End => KeyCodeOrd::End,
            KeyCode::Delete => KeyCodeOrd::Delete,
            _ => return None,
        };
        // Shift is already in the character ('R' vs 'r'), so it is not part of the key.
        Some(Key {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCodeOrd::Char(' ') => f.write_str("space"),
            KeyCodeOrd::Char(c) => write!(f, "{c}"),
            KeyCodeOrd::F(n) => write!(f, "f{n}"),
            KeyCodeOrd::Up => f.write_str("↑"),
            KeyCodeOrd::Down => f.write_str("↓"),
            other => {
                let name = NAMED
                    .iter()
                    .find(|(_, c)| *c == other)
                    .map_or("?", |(n, _)| n);
                f.write_str(match name {
                    "enter" => "Enter",
                    "esc" => "Esc",
                    "tab" => "Tab",
                    n => n,
                })
            }
        }
    }
}

/// `[keys]` entries: one key or a list, per command name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeySetting {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Keymap {
    by_command: BTreeMap<Command, Vec<Key>>,
    by_key: BTreeMap<Key, Command>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::with_overrides(&BTreeMap::new()).expect("default bindings are valid")
    }
}

impl Keymap {
    /// Defaults with the config's `[keys]` table laid over them.
    pub fn with_overrides(overrides: &BTreeMap<String, KeySetting>) -> Result<Keymap, String> {
        let mut by_command: BTreeMap<Command, Vec<Key>> = Command::ALL
            .iter()
            .map(|c| {
                (
                    *c,
                    c.defaults()
                        .iter()
                        .map(|k| Key::parse(k).expect("default key"))
                        .collect(),
                )
            })
            .collect();
        for (name, setting) in overrides {
            let command = Command::by_name(name).ok_or_else(|| {
                let names: Vec<_> = Command::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "keys.{name} is not a command; commands are {}",
                    names.join(", ")
                )
            })?;
            let texts = match setting {
                KeySetting::One(k) => vec![k.clone()],
                KeySetting::Many(ks) => ks.clone(),
            };
            if texts.is_empty() {
                return Err(format!("keys.{name} needs at least one key"));
            }
            let keys = texts
                .iter()
                .map(|t| Key::parse(t).map_err(|e| format!("keys.{name}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            by_command.insert(command, keys);
        }
        let mut by_key = BTreeMap::new();
        for (command, keys) in &by_command {
            for key in keys {
                if let Some(other) = by_key.insert(*key, *command)
                    && other != *command
                {
                    return Err(format!(
                        "key '{key}' is bound to both {} and {}; give one of them another key in [keys]",
                        other.name(),
                        command.name()
                    ));
                }
            }
        }
        Ok(Keymap { by_command, by_key })
    }

    pub fn command_for(&self, ev: &KeyEvent) -> Option<Command> {
        Key::from_event(ev).and_then(|k| self.by_key.get(&k).copied())
    }

    pub fn keys(&self, command: Command) -> &[Key] {
        self.by_command.get(&command).map_or(&[], Vec::as_slice)
    }

    /// "a" or "↑/k": what a hint line shows for a command.
    pub fn label(&self, command: Command) -> String {
        self.keys(command)
            .iter()
            .map(Key::to_string)
            .collect::<Vec<_>>()
            .join("/")
    }

    /// Every binding, in a stable order, for the help overlay.
    pub fn help_rows(&self) -> Vec<(String, &'static str)> {
        Command::ALL
            .iter()
            .map(|c| (self.label(*c), c.describe()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn defaults_match_the_documented_keys() {
        let k = Keymap::default();
        assert_eq!(k.command_for(&ev(KeyCode::Char('q'))), Some(Command::Quit));
        assert_eq!(
            k.command_for(&ev(KeyCode::Char('R'))),
            Some(Command::Rollback)
        );
        assert_eq!(k.command_for(&ev(KeyCode::Char('r'))), None);
        assert_eq!(
            k.command_for(&ev(KeyCode::Char('%'))),
            Some(Command::SetPercent)
        );
        assert_eq!(k.command_for(&ev(KeyCode::Char('j'))), Some(Command::Down));
        assert_eq!(k.command_for(&ev(KeyCode::Down)), Some(Command::Down));
        assert_eq!(k.command_for(&ev(KeyCode::Enter)), Some(Command::Open));
        assert_eq!(k.command_for(&ev(KeyCode::Tab)), Some(Command::NextPanel));
        assert_eq!(k.command_for(&ev(KeyCode::Char('s'))), Some(Command::Sort));
        assert_eq!(
            k.command_for(&ev(KeyCode::Char('n'))),
            Some(Command::NextAttention)
        );
        assert_eq!(k.label(Command::Down), "↓/j");
        assert_eq!(k.help_rows().len(), Command::ALL.len());
    }

    #[test]
    fn overrides_replace_and_duplicates_are_refused() {
        let mut o = BTreeMap::new();
        o.insert("rollback".to_string(), KeySetting::One("ctrl-r".into()));
        let k = Keymap::with_overrides(&o).unwrap();
        assert_eq!(
            k.command_for(&KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL)),
            Some(Command::Rollback)
        );
        assert_eq!(k.command_for(&ev(KeyCode::Char('R'))), None);

        o.insert(
            "advance".to_string(),
            KeySetting::Many(vec!["n".into(), "ctrl-r".into()]),
        );
        let err = Keymap::with_overrides(&o).unwrap_err();
        assert!(
            err.contains("ctrl-r") && err.contains("advance") && err.contains("rollback"),
            "{err}"
        );

        let mut bad = BTreeMap::new();
        bad.insert("explode".to_string(), KeySetting::One("z".into()));
        assert!(
            Keymap::with_overrides(&bad)
                .unwrap_err()
                .contains("keys.explode")
        );
        let mut bad = BTreeMap::new();
        bad.insert("quit".to_string(), KeySetting::One("ctrl-".into()));
        assert!(
            Keymap::with_overrides(&bad)
                .unwrap_err()
                .contains("keys.quit")
        );
    }
}
