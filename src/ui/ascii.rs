//! ASCII mode: after a frame is drawn, every cell that is not ASCII is rewritten to an
//! ASCII look-alike, so the views stay written in Unicode and every one of them (and
//! stored text with accents or CJK) is covered. Widths are kept: a wide character's two
//! cells both become `?`.

use ratatui::buffer::Buffer;
use ratatui::text::Span;

/// Heights ▁▂▃▄▅▆▇█ of the sparklines (and the wall's big digits, drawn with █).
const RAMP: [char; 8] = ['_', '.', '-', '=', '+', '*', '%', '#'];

pub fn to_ascii(buf: &mut Buffer) {
    let area = buf.area;
    for y in area.top()..area.bottom() {
        let mut x = area.left();
        while x < area.right() {
            let symbol = buf[(x, y)].symbol();
            if symbol.is_ascii() {
                x += 1;
                continue;
            }
            let wide = Span::raw(symbol).width() > 1;
            let plain = symbol.chars().next().map_or('?', ascii_for);
            buf[(x, y)].set_char(if wide { '?' } else { plain });
            if wide && x + 1 < area.right() {
                buf[(x + 1, y)].set_char('?');
                x += 1;
            }
            x += 1;
        }
    }
}

/// The ASCII look-alike of one character; `?` for anything without one.
pub fn ascii_for(c: char) -> char {
    match c {
        c if c.is_ascii() => c,
        // Box drawing: lines, then every corner, tee and cross.
        '─' | '━' | '┄' | '┅' | '┈' | '┉' | '╌' | '╍' | '╴' | '╶' | '╸' | '╺' | '╼' | '╾' => {
            '-'
        }
        '═' => '=',
        '│' | '┃' | '┆' | '┇' | '┊' | '┋' | '║' | '╎' | '╏' | '╵' | '╷' | '╹' | '╻' | '╽' | '╿' => {
            '|'
        }
        '╱' => '/',
        '╲' => '\\',
        '╳' => 'X',
        '\u{2500}'..='\u{257f}' => '+',
        // Block elements: the sparkline heights, shades and partial blocks.
        '▁'..='█' => RAMP[(c as usize) - ('▁' as usize)],
        '▀' | '▔' => '"',
        '░' => '.',
        '▒' => ':',
        '▓' => '#',
        '▏' | '▎' | '▍' | '▕' | '▐' => '|',
        '\u{2580}'..='\u{259f}' => '#',
        // Braille (charts): blank stays blank.
        '\u{2800}' => ' ',
        '\u{2801}'..='\u{28ff}' => '*',
        // Arrows and pointers.
        '→' | '⇒' | '▶' | '▸' | '►' | '›' | '»' => '>',
        '←' | '⇐' | '◀' | '◂' | '◄' | '‹' | '«' => '<',
        '↓' | '▼' | '▾' => 'v',
        '↑' | '▲' | '▴' => '^',
        '↔' => '-',
        // Marks.
        '●' | '•' | '◆' | '■' | '★' => '*',
        '○' | '◇' | '□' | '☆' | '°' => 'o',
        '✔' | '✓' => 'v',
        '✖' | '✗' | '✘' | '×' => 'x',
        '⌛' | '⏳' | '≈' => '~',
        '⚠' => '!',
        // Punctuation.
        '…' | '·' | '⋯' => '.',
        '—' | '–' | '‐' | '−' => '-',
        '‘' | '’' | '′' => '\'',
        '“' | '”' | '″' => '"',
        '≤' => '<',
        '≥' => '>',
        '±' => '+',
        '\u{a0}' | '\u{2000}'..='\u{200a}' => ' ',
        _ => '?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;

    #[test]
    fn look_alikes() {
        let line: String = "┌─┐│└┘├┤┬┴┼━┃┏┓┗┛╭╮╰╯".chars().map(ascii_for).collect();
        assert_eq!(line, "+-+|+++++++-|++++++++");
        let spark: String = "▁▂▃▄▅▆▇█".chars().map(ascii_for).collect();
        assert_eq!(spark, "_.-=+*%#");
        let marks: String = "●○✔✖↓→↑←⌛…·▶⣿⠀".chars().map(ascii_for).collect();
        assert_eq!(marks, "*ovxv>^<~..>* ");
        assert_eq!(ascii_for('é'), '?');
        assert_eq!(ascii_for('q'), 'q');
    }

    #[test]
    fn a_buffer_becomes_ascii_keeping_widths() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 12, 2));
        buf.set_string(0, 0, "│日本 ▁█ ✔x", ratatui::style::Style::default());
        buf.set_string(0, 1, "e\u{301}·done", ratatui::style::Style::default());
        to_ascii(&mut buf);
        let row = |y| (0..12).map(|x| buf[(x, y)].symbol()).collect::<String>();
        assert_eq!(row(0), "|???? _# vx ");
        // A combining accent goes; the letter stays.
        assert_eq!(row(1), "e.done      ");
        assert!(buf.content.iter().all(|c| c.symbol().is_ascii()));
    }
}
