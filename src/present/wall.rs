//! The wall's words: one state per rollout tile, read across a room and without colour
//! (each has its own word and symbol), and the one-line summary of every rollout.

use crate::domain::text::escape;

/// What a wall tile says first, most urgent first (the summary's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WallWord {
    Fail,
    RolledBack,
    /// The stored document cannot be read.
    Error,
    /// The data behind the tile is older than the wall's limit.
    Stale,
    /// A canary at a non-zero percentage that got no requests.
    NoTraffic,
    Paused,
    Inconclusive,
    /// No health to judge by: no metrics source, or no sample with both sides yet.
    NoData,
    Planned,
    Pass,
    Complete,
}

impl WallWord {
    pub fn label(self) -> &'static str {
        match self {
            WallWord::Fail => "FAIL",
            WallWord::RolledBack => "ROLLED BACK",
            WallWord::Error => "ERROR",
            WallWord::Stale => "STALE",
            WallWord::NoTraffic => "NO TRAFFIC",
            WallWord::Paused => "PAUSED",
            WallWord::Inconclusive => "INCONCLUSIVE",
            WallWord::NoData => "NO DATA",
            WallWord::Planned => "PLANNED",
            WallWord::Pass => "PASS",
            WallWord::Complete => "COMPLETE",
        }
    }

    /// A one-column symbol per state, so two states never differ by colour alone.
    pub fn symbol(self) -> &'static str {
        match self {
            WallWord::Fail | WallWord::Error => "✖",
            WallWord::RolledBack => "↺",
            WallWord::Stale => "⧖",
            WallWord::NoTraffic => "∅",
            WallWord::Paused => "‖",
            WallWord::Inconclusive => "?",
            WallWord::NoData => "○",
            WallWord::Planned => "·",
            WallWord::Pass | WallWord::Complete => "✔",
        }
    }

    /// States an operator must act on: drawn in reverse video inside a thick border.
    pub fn alarming(self) -> bool {
        matches!(
            self,
            WallWord::Fail | WallWord::RolledBack | WallWord::Error
        )
    }

    /// "✔ PASS"
    pub fn badge(self) -> String {
        format!("{} {}", self.symbol(), self.label())
    }
}

/// A tile's state: its word, and for stale data what the data said when it was fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallStatus {
    pub word: WallWord,
    /// Some exactly when `word` is `Stale`.
    pub stale: Option<StaleData>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaleData {
    pub was: WallWord,
    pub age: chrono::Duration,
}

impl WallStatus {
    pub fn fresh(word: WallWord) -> WallStatus {
        WallStatus { word, stale: None }
    }

    pub fn stale(was: WallWord, age: chrono::Duration) -> WallStatus {
        WallStatus {
            word: WallWord::Stale,
            stale: Some(StaleData { was, age }),
        }
    }

    /// "✔ PASS", or "⧖ STALE (was PASS, 7m old)": stale data never reads as its old verdict.
    pub fn headline(&self) -> String {
        match self.stale {
            Some(s) => format!(
                "{} (was {}, {} old)",
                self.word.badge(),
                s.was.label(),
                super::minutes(s.age)
            ),
            None => self.word.badge(),
        }
    }
}

/// "8 rollouts: 1 FAIL (checkout), 1 ROLLED BACK (search), 5 PASS, 1 STALE": counts by
/// state, most urgent first, naming the rollouts that failed or cannot be read.
pub fn wall_summary<'a>(tiles: impl IntoIterator<Item = (&'a str, WallWord)>) -> String {
    let mut groups: std::collections::BTreeMap<WallWord, Vec<&str>> = Default::default();
    let mut total = 0;
    for (id, word) in tiles {
        groups.entry(word).or_default().push(id);
        total += 1;
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(word, ids)| {
            if word.alarming() {
                format!("{} {} ({})", ids.len(), word.label(), ids.join(", "))
            } else {
                format!("{} {}", ids.len(), word.label())
            }
        })
        .collect();
    let noun = if total == 1 { "rollout" } else { "rollouts" };
    escape(&format!("{total} {noun}: {}", parts.join(", "))).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_its_own_word_and_the_stale_one_names_the_old_verdict() {
        let all = [
            WallWord::Fail,
            WallWord::RolledBack,
            WallWord::Error,
            WallWord::Stale,
            WallWord::NoTraffic,
            WallWord::Paused,
            WallWord::Inconclusive,
            WallWord::NoData,
            WallWord::Planned,
            WallWord::Pass,
            WallWord::Complete,
        ];
        let labels: std::collections::HashSet<_> = all.iter().map(|w| w.label()).collect();
        assert_eq!(labels.len(), all.len());
        let stale = WallStatus::stale(WallWord::Pass, chrono::Duration::minutes(7));
        assert_eq!(stale.headline(), "⧖ STALE (was PASS, 7m old)");
        assert_eq!(WallStatus::fresh(WallWord::Fail).headline(), "✖ FAIL");
    }

    #[test]
    fn the_summary_counts_by_urgency_and_names_failures() {
        let text = wall_summary([
            ("a", WallWord::Pass),
            ("search", WallWord::RolledBack),
            ("checkout", WallWord::Fail),
            ("b", WallWord::Stale),
            ("c", WallWord::Pass),
            ("evil\u{1b}[2J", WallWord::Fail),
        ]);
        assert_eq!(
            text,
            r"6 rollouts: 2 FAIL (checkout, evil\x1b[2J), 1 ROLLED BACK (search), 1 STALE, 2 PASS"
        );
        assert_eq!(wall_summary([("x", WallWord::Pass)]), "1 rollout: 1 PASS");
    }
}
