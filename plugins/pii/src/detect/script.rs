//! What the scan needs to know about writing systems: which letters belong to scripts written
//! without spaces between words, and full-width forms.
//!
//! A value is delimited by the characters around it. In English, French or Russian a letter
//! glued to a number makes it an identifier (`ref4111...`, `é4111...`); in Chinese, Japanese,
//! Thai, Lao, Khmer, Burmese (and Korean particles, `…@example.com으로`) words follow one another
//! with no space, so the ideograph, kana or Thai letter right before an address is a word
//! boundary, not part of it. [`unspaced`] says which characters those are, by Unicode block:
//! no tables of scripts are needed for the few ranges involved, so no crate is used.
//!
//! Full-width forms (U+FF01–U+FF5E: `０-９`, `Ａ-Ｚ`, `＠`, `．`, `－`, ...) are what Japanese and
//! Chinese input methods type. NFKC maps each to its ASCII twin; [`narrow`] does exactly that
//! for this block (the only one the detectors' formats need) and keeps, for every byte of the
//! narrowed text, the offset it came from, so findings are reported in the original text. The
//! scan narrows a text only once it met such a form (their first byte, `EF`, is a trigger).

/// Is `c` a letter of a script written without spaces between words?
pub(super) fn unspaced(c: char) -> bool {
    matches!(u32::from(c),
        0x0E00..=0x0EFF          // Thai, Lao
        | 0x1000..=0x109F        // Myanmar
        | 0x1100..=0x11FF        // Hangul Jamo
        | 0x1780..=0x17FF        // Khmer
        | 0x2E80..=0x2FDF        // CJK radicals, Kangxi radicals
        | 0x3005..=0x3007        // 々 〆 〇
        | 0x3021..=0x3029        // Hangzhou numerals
        | 0x3031..=0x3035        // kana repeat marks
        | 0x3040..=0x30FF        // Hiragana, Katakana
        | 0x3100..=0x31FF        // Bopomofo, Hangul compatibility Jamo, Katakana extensions
        | 0x3400..=0x4DBF        // CJK extension A
        | 0x4E00..=0x9FFF        // CJK unified ideographs
        | 0xA000..=0xA4CF        // Yi
        | 0xAC00..=0xD7AF        // Hangul syllables
        | 0xF900..=0xFAFF        // CJK compatibility ideographs
        | 0xFF66..=0xFF9F        // half-width Katakana
        | 0xFFA0..=0xFFDC        // half-width Hangul
        | 0x20000..=0x3FFFF      // CJK extensions B and beyond
    )
}

/// The ASCII twin of the full-width form starting at `k`, if one does.
pub(super) fn wide_at(b: &[u8], k: usize) -> Option<u8> {
    match (b.get(k)?, b.get(k + 1)?, b.get(k + 2)?) {
        (0xEF, 0xBC, &c @ 0x81..=0xBF) => Some(c - 0x81 + 0x21),
        (0xEF, 0xBD, &c @ 0x80..=0x9E) => Some(c - 0x80 + 0x60),
        _ => None,
    }
}

/// A text with its full-width forms replaced by their ASCII twins, and where they were.
pub(super) struct Narrowed {
    pub text: String,
    /// Offsets in [`Narrowed::text`] of the replaced characters, ascending. Each replaced a
    /// three-byte character by one byte, so an offset in the original text is the narrowed
    /// offset plus two for every replacement before it.
    replaced: Vec<usize>,
}

impl Narrowed {
    /// The offset in the original text of narrowed offset `n` (a character boundary maps to a
    /// character boundary: other characters were copied whole).
    pub fn original(&self, n: usize) -> usize {
        n + 2 * self.replaced.partition_point(|&at| at < n)
    }
}

/// `text` narrowed: runs without full-width forms are copied whole, each form becomes its
/// ASCII twin.
pub(super) fn narrow(text: &str) -> Narrowed {
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut replaced = Vec::new();
    let mut k = 0;
    while let Some(offset) = b[k..].iter().position(|&c| c == 0xEF) {
        // `EF` leads a three-byte character: `k + offset` is a character boundary.
        out.push_str(&text[k..k + offset]);
        k += offset;
        match wide_at(b, k) {
            Some(ascii) => {
                replaced.push(out.len());
                out.push(char::from(ascii));
                k += 3;
            }
            None => {
                let width = text[k..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&text[k..k + width]);
                k += width;
            }
        }
    }
    out.push_str(&text[k..]);
    Narrowed {
        text: out,
        replaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspaced_scripts() {
        for c in ['は', 'メ', '漢', '한', 'ก', 'ຂ', 'ក', '𠀋'] {
            assert!(unspaced(c), "{c}");
        }
        for c in ['a', 'é', 'ß', 'я', 'ع', 'α', '1'] {
            assert!(!unspaced(c), "{c}");
        }
    }

    #[test]
    fn narrows_full_width_forms_and_maps_offsets_back() {
        let text = "電話０３－１２３４ ｊｏ＠ｅｘ．ｊｐ";
        assert_eq!(wide_at(text.as_bytes(), "電話".len()), Some(b'0'));
        let narrowed = narrow(text);
        assert_eq!(narrowed.text, "電話03-1234 jo@ex.jp");
        let start = narrowed.text.find('0').expect("digit");
        let end = narrowed.text.find(' ').expect("space");
        assert_eq!(
            &text[narrowed.original(start)..narrowed.original(end)],
            "０３－１２３４"
        );
        let len = narrowed.text.len();
        assert_eq!(narrowed.original(len), text.len());
        let half = "ｶﾀｶﾅ 漢字"; // half-width forms and ideographs stay
        assert!((0..half.len()).all(|k| wide_at(half.as_bytes(), k).is_none()));
    }
}
