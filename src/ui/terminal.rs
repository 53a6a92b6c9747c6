//! What the terminal can show, decided from the environment: pure functions of the values
//! (the caller reads the variables), so every rule is testable.

use ratatui::style::Color;

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColorDepth {
    /// No colour at all (`NO_COLOR`, or a monochrome terminal): bold and reverse only.
    None,
    /// The 16 ANSI colours (SGR 30-37, 90-97): every colour terminal has them.
    Ansi16,
    /// The 256-colour palette (`TERM` ending in `256color`).
    Indexed256,
    /// 24-bit colour (`COLORTERM=truecolor` or `24bit`).
    TrueColor,
}

/// Terminals that show no colour at all.
const MONOCHROME_TERMS: [&str; 2] = ["dumb", "vt100"];
/// Terminals whose fonts lack box drawing, block and symbol characters.
const ASCII_TERMS: [&str; 3] = ["linux", "vt100", "dumb"];

/// `NO_COLOR` (non-empty) wins; then `COLORTERM` for 24-bit, `TERM` for 256 colours and for
/// monochrome terminals; anything else gets the 16 colours every colour terminal has.
pub fn color_depth(
    no_color: Option<&str>,
    term: Option<&str>,
    colorterm: Option<&str>,
) -> ColorDepth {
    if no_color.is_some_and(|v| !v.is_empty()) {
        return ColorDepth::None;
    }
    let term = term.unwrap_or_default();
    if MONOCHROME_TERMS.contains(&term) {
        return ColorDepth::None;
    }
    if matches!(colorterm, Some("truecolor" | "24bit")) {
        return ColorDepth::TrueColor;
    }
    if term.contains("256color") {
        return ColorDepth::Indexed256;
    }
    ColorDepth::Ansi16
}

/// ASCII only when the locale in effect (the first set of `LC_ALL`, `LC_CTYPE`, `LANG`; none
/// set is the C locale) is not UTF-8, or the terminal is a console without those glyphs.
pub fn wants_ascii(
    lc_all: Option<&str>,
    lc_ctype: Option<&str>,
    lang: Option<&str>,
    term: Option<&str>,
) -> bool {
    // POSIX: an empty variable counts as unset.
    let locale = [lc_all, lc_ctype, lang]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty())
        .unwrap_or("C")
        .to_ascii_lowercase();
    let utf8 = locale.contains("utf-8") || locale.contains("utf8");
    !utf8 || term.is_some_and(|t| ASCII_TERMS.contains(&t))
}

impl ColorDepth {
    /// `color` as this depth can show it: the nearest colour of the palette, or None
    /// without colour. Named colours are the 16 ANSI ones and fit every colour depth.
    pub fn fit(self, color: Color) -> Option<Color> {
        match (self, color) {
            (ColorDepth::None, _) => None,
            (ColorDepth::TrueColor, c) => Some(c),
            (ColorDepth::Indexed256, Color::Rgb(r, g, b)) => {
                Some(Color::Indexed(index_of(r, g, b)))
            }
            (ColorDepth::Indexed256, c) => Some(c),
            (ColorDepth::Ansi16, Color::Rgb(r, g, b)) => Some(nearest_ansi(r, g, b)),
            (ColorDepth::Ansi16, Color::Indexed(n)) => {
                let (r, g, b) = rgb_of_index(n);
                Some(nearest_ansi(r, g, b))
            }
            (ColorDepth::Ansi16, c) => Some(c),
        }
    }
}

/// xterm's values of the 16 ANSI colours, in index order.
const ANSI: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

/// The steps of the 6x6x6 colour cube (indices 16..=231).
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn distance((r1, g1, b1): (u8, u8, u8), (r2, g2, b2): (u8, u8, u8)) -> u32 {
    let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).unsigned_abs().pow(2);
    d(r1, r2) + d(g1, g2) + d(b1, b2)
}

fn nearest_ansi(r: u8, g: u8, b: u8) -> Color {
    ANSI.iter()
        .min_by_key(|(_, rgb)| distance(*rgb, (r, g, b)))
        .map_or(Color::Reset, |(c, _)| *c)
}

fn rgb_of_index(n: u8) -> (u8, u8, u8) {
    match n {
        0..=15 => ANSI[usize::from(n)].1,
        16..=231 => {
            let i = n - 16;
            (
                CUBE[usize::from(i / 36)],
                CUBE[usize::from(i / 6 % 6)],
                CUBE[usize::from(i % 6)],
            )
        }
        _ => {
            let level = 8 + (n - 232) * 10;
            (level, level, level)
        }
    }
}

/// The nearest of the cube and the grey ramp (the 16 ANSI entries are left out: terminals
/// theme them).
fn index_of(r: u8, g: u8, b: u8) -> u8 {
    (16..=255u8)
        .min_by_key(|&n| distance(rgb_of_index(n), (r, g, b)))
        .unwrap_or(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_wins_over_everything() {
        let d = color_depth(Some("1"), Some("xterm-256color"), Some("truecolor"));
        assert_eq!(d, ColorDepth::None);
        // An empty NO_COLOR is no request (no-color.org).
        let d = color_depth(Some(""), Some("xterm-256color"), None);
        assert_eq!(d, ColorDepth::Indexed256);
    }

    #[test]
    fn depth_follows_term_and_colorterm() {
        let d = |term, colorterm| color_depth(None, term, colorterm);
        assert_eq!(d(Some("xterm"), None), ColorDepth::Ansi16);
        assert_eq!(d(Some("linux"), None), ColorDepth::Ansi16);
        assert_eq!(d(Some("screen"), None), ColorDepth::Ansi16);
        assert_eq!(d(None, None), ColorDepth::Ansi16);
        assert_eq!(d(Some("xterm-256color"), None), ColorDepth::Indexed256);
        assert_eq!(d(Some("tmux-256color"), None), ColorDepth::Indexed256);
        assert_eq!(
            d(Some("xterm-256color"), Some("truecolor")),
            ColorDepth::TrueColor
        );
        assert_eq!(d(Some("xterm"), Some("24bit")), ColorDepth::TrueColor);
        // COLORTERM=yes (some emulators) promises no 24-bit colour.
        assert_eq!(
            d(Some("xterm-256color"), Some("yes")),
            ColorDepth::Indexed256
        );
        assert_eq!(d(Some("vt100"), Some("truecolor")), ColorDepth::None);
        assert_eq!(d(Some("dumb"), None), ColorDepth::None);
    }

    #[test]
    fn ascii_follows_the_locale_in_effect() {
        let a = |all, ctype, lang| wants_ascii(all, ctype, lang, Some("xterm-256color"));
        assert!(!a(None, None, Some("en_US.UTF-8")));
        assert!(!a(None, None, Some("C.utf8")));
        assert!(!a(None, None, Some("de_DE.utf-8")));
        assert!(a(None, None, Some("C")));
        assert!(a(None, None, Some("en_US.ISO-8859-1")));
        assert!(a(None, None, None), "no locale at all is the C locale");
        // LC_ALL overrides LC_CTYPE, which overrides LANG.
        assert!(a(Some("C"), Some("en_US.UTF-8"), Some("en_US.UTF-8")));
        assert!(!a(Some("en_US.UTF-8"), Some("C"), Some("C")));
        assert!(a(None, Some("POSIX"), Some("en_US.UTF-8")));
        assert!(!a(None, Some("C.UTF-8"), Some("C")));
        // Empty counts as unset.
        assert!(!a(Some(""), Some(""), Some("C.UTF-8")));
    }

    #[test]
    fn consoles_without_the_glyphs_get_ascii_in_a_utf8_locale() {
        let utf8 = Some("C.UTF-8");
        for term in ["linux", "vt100", "dumb"] {
            assert!(wants_ascii(None, None, utf8, Some(term)), "{term}");
        }
        for term in [
            "xterm",
            "xterm-256color",
            "screen",
            "tmux-256color",
            "vt100-like",
        ] {
            assert!(!wants_ascii(None, None, utf8, Some(term)), "{term}");
        }
        assert!(!wants_ascii(None, None, utf8, None));
    }

    #[test]
    fn colours_fit_the_depth() {
        let grey = Color::Rgb(128, 128, 128);
        assert_eq!(ColorDepth::TrueColor.fit(grey), Some(grey));
        assert_eq!(ColorDepth::Indexed256.fit(grey), Some(Color::Indexed(244)));
        assert_eq!(ColorDepth::Ansi16.fit(grey), Some(Color::DarkGray));
        assert_eq!(ColorDepth::None.fit(grey), None);
        assert_eq!(
            ColorDepth::Ansi16.fit(Color::Indexed(196)),
            Some(Color::LightRed)
        );
        assert_eq!(
            ColorDepth::Ansi16.fit(Color::Indexed(2)),
            Some(Color::Green)
        );
        assert_eq!(
            ColorDepth::Indexed256.fit(Color::Rgb(255, 0, 0)),
            Some(Color::Indexed(196))
        );
        for named in [
            Color::Red,
            Color::Green,
            Color::Yellow,
            Color::Cyan,
            Color::White,
        ] {
            for depth in [
                ColorDepth::Ansi16,
                ColorDepth::Indexed256,
                ColorDepth::TrueColor,
            ] {
                assert_eq!(depth.fit(named), Some(named), "{named:?} at {depth:?}");
            }
        }
    }
}
