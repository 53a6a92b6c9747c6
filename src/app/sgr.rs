//! crossterm writes even the 16 ANSI colours in the 256-colour form (`ESC[38;5;1m`), which
//! terminals without 256 colours (TERM=xterm, screen, linux) may not understand. This writer
//! sits between the backend and the terminal and rewrites those to the classic codes
//! (`ESC[31m`, `ESC[91m`, `ESC[41m`, `ESC[101m`), which mean the same everywhere. Colours
//! beyond the 16 are the theme's to avoid where the terminal lacks them (`ColorDepth`).

use std::io::{self, Write};

/// A longer escape sequence is not one this rewrites: it passes as it is.
const MAX_SEQUENCE: usize = 64;

pub struct ClassicColors<W: Write> {
    inner: W,
    /// An escape sequence begun in one write and not yet ended.
    pending: Vec<u8>,
}

impl<W: Write> ClassicColors<W> {
    pub fn new(inner: W) -> Self {
        ClassicColors {
            inner,
            pending: Vec::new(),
        }
    }

    /// Ends or continues the pending sequence with `b`; the bytes to pass on, if any.
    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.pending.is_empty() {
            if b == 0x1b {
                self.pending.push(b);
            } else {
                out.push(b);
            }
            return;
        }
        self.pending.push(b);
        let in_params = b.is_ascii_digit() || b == b';';
        match (self.pending.len(), b) {
            (2, b'[') => {}
            (2, _) => out.append(&mut self.pending),
            (n, _) if in_params && n < MAX_SEQUENCE => {}
            (_, b'm') => {
                let params = &self.pending[2..self.pending.len() - 1];
                out.extend_from_slice(b"\x1b[");
                out.extend_from_slice(classic(params).as_bytes());
                out.push(b'm');
                self.pending.clear();
            }
            _ => out.append(&mut self.pending),
        }
    }
}

/// SGR parameters with each `38;5;N` / `48;5;N` (N < 16) as its classic code.
fn classic(params: &[u8]) -> String {
    let text = String::from_utf8_lossy(params);
    let parts: Vec<&str> = text.split(';').collect();
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    let mut i = 0;
    while i < parts.len() {
        let base = match parts[i] {
            "38" => Some(30),
            "48" => Some(40),
            _ => None,
        };
        let index = parts.get(i + 2).and_then(|n| n.parse::<u8>().ok());
        match (base, parts.get(i + 1), index) {
            (Some(base), Some(&"5"), Some(n)) if n < 16 => {
                let code = if n < 8 { base + n } else { base + 60 + n - 8 };
                out.push(code.to_string());
                i += 3;
            }
            // 24-bit colour: its three values are not codes of their own.
            (Some(_), Some(&"2"), _) => {
                out.extend(
                    parts[i..(i + 5).min(parts.len())]
                        .iter()
                        .map(|p| p.to_string()),
                );
                i += 5;
            }
            (Some(_), Some(&"5"), _) => {
                out.extend(
                    parts[i..(i + 3).min(parts.len())]
                        .iter()
                        .map(|p| p.to_string()),
                );
                i += 3;
            }
            _ => {
                out.push(parts[i].to_string());
                i += 1;
            }
        }
    }
    out.join(";")
}

impl<W: Write> Write for ClassicColors<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut out = Vec::with_capacity(buf.len() + 8);
        for &b in buf {
            self.step(b, &mut out);
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(chunks: &[&[u8]]) -> String {
        let mut w = ClassicColors::new(Vec::new());
        for c in chunks {
            w.write_all(c).unwrap();
        }
        String::from_utf8(w.inner).unwrap()
    }

    #[test]
    fn the_16_colours_get_their_classic_codes() {
        assert_eq!(through(&[b"\x1b[38;5;1mred"]), "\x1b[31mred");
        assert_eq!(through(&[b"\x1b[38;5;9;48;5;0mx"]), "\x1b[91;40mx");
        assert_eq!(through(&[b"\x1b[38;5;8;49m"]), "\x1b[90;49m");
        assert_eq!(through(&[b"\x1b[48;5;15m"]), "\x1b[107m");
        assert_eq!(through(&[b"\x1b[39;49m\x1b[0m"]), "\x1b[39;49m\x1b[0m");
    }

    #[test]
    fn a_sequence_split_across_writes_is_rewritten() {
        // How crossterm writes SetColors: one piece per format argument.
        let out = through(&[b"ab\x1b[", b"38;5;2", b";", b"48;5;1", b"m", "✔".as_bytes()]);
        assert_eq!(out, "ab\x1b[32;41m✔");
    }

    #[test]
    fn everything_else_passes_unchanged() {
        for s in [
            "\x1b[38;5;244m",
            "\x1b[38;2;1;2;3;48;5;3m",
            "\x1b[?1049h\x1b[2J\x1b[1;1H",
            "\x1b[1m\x1b[7mbold",
            "\x1b(B plain",
        ] {
            let expected = s.replace("48;5;3", "43");
            assert_eq!(through(&[s.as_bytes()]), expected, "{s:?}");
        }
    }
}
