//! The camera's on-screen display: a date and time stamp burnt into the picture, as almost
//! every security camera has (its digits change every second: motion the analysis must ignore).

use super::encode::YuvFrame;

/// 5x7 glyphs, one byte per row (low 5 bits, leftmost pixel in bit 4), for `0-9`, `-`, `:`.
const GLYPHS: [[u8; 7]; 12] = [
    [0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e], // 0
    [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e], // 1
    [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f], // 2
    [0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e], // 3
    [0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02], // 4
    [0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e], // 5
    [0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e], // 6
    [0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e], // 8
    [0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c], // 9
    [0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00], // -
    [0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00], // :
];

/// A date and time stamp.
#[derive(Clone, Debug)]
pub struct Osd {
    /// Seconds since midnight at media time 0.
    pub start_s: f64,
    /// Date text, `YYYY-MM-DD`.
    pub date: String,
    /// Size of one font pixel, picture pixels.
    pub scale: usize,
}

impl Osd {
    /// The stamp's text at media time `t_s`.
    pub fn text(&self, t_s: f64) -> String {
        let s = (self.start_s + t_s).floor() as u64 % 86_400;
        format!(
            "{} {:02}:{:02}:{:02}",
            self.date,
            s / 3600,
            (s / 60) % 60,
            s % 60
        )
    }

    /// Burns the stamp at media time `t_s` into the top-left corner: white with a dark outline.
    pub fn draw(&self, f: &mut YuvFrame, t_s: f64) {
        let text = self.text(t_s);
        let k = self.scale.max(1);
        let (x0, y0) = (12 * k, 10 * k);
        for (n, ch) in text.chars().enumerate() {
            let g = match ch {
                '0'..='9' => GLYPHS[ch as usize - '0' as usize],
                '-' => GLYPHS[10],
                ':' => GLYPHS[11],
                _ => continue,
            };
            let gx = x0 + n * 6 * k;
            for (row, bits) in g.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) == 0 {
                        continue;
                    }
                    let (px, py) = (gx + col * k, y0 + row * k);
                    // Outline one pixel around, then the glyph.
                    for y in py.saturating_sub(1)..py + k + 1 {
                        for x in px.saturating_sub(1)..px + k + 1 {
                            if x < f.width && y < f.height {
                                let i = y * f.width + x;
                                if f.y[i] != 235 {
                                    f.y[i] = 20;
                                }
                            }
                        }
                    }
                    for y in py..py + k {
                        for x in px..px + k {
                            if x < f.width && y < f.height {
                                f.y[y * f.width + x] = 235;
                                let c = (y / 2) * (f.width / 2) + x / 2;
                                f.u[c] = 128;
                                f.v[c] = 128;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_ticks_and_draws_white_digits() {
        let osd = Osd {
            start_s: 23.0 * 3600.0 + 59.0 * 60.0 + 58.5,
            date: "2026-11-27".into(),
            scale: 2,
        };
        assert_eq!(osd.text(0.0), "2026-11-27 23:59:58");
        // The date does not roll over (clips are short); the clock wraps at midnight.
        assert_eq!(osd.text(1.6), "2026-11-27 00:00:00");
        let mut f = YuvFrame {
            width: 400,
            height: 100,
            y: vec![100; 400 * 100],
            u: vec![90; 200 * 50],
            v: vec![90; 200 * 50],
        };
        osd.draw(&mut f, 0.0);
        let white = f.y.iter().filter(|&&v| v == 235).count();
        let dark = f.y.iter().filter(|&&v| v == 20).count();
        assert!(white > 200 && dark > white / 2, "{white} {dark}");
        let mut g = f.clone();
        osd.draw(&mut g, 0.0);
        assert_eq!(f.y, g.y);
    }
}
