//! The detectors: hand-written scanners that find personal data and secrets in one text.
//!
//! One pass over the bytes. Every detector is anchored on a *token start* (a position whose
//! previous character is not a letter, digit or `_`) and recognised by its first byte, so a
//! word that cannot start anything is skipped whole and a 4 KB prompt costs a few microseconds.
//! E-mail addresses are the exception: they are anchored on their `@` and found in a pre-pass.
//!
//! Precision comes from structure, not from lists of examples: checksums where the format has
//! one (Luhn for cards, mod-97 for IBANs), value ranges (IPv4 octets, SSN areas), group shapes
//! (phone numbers, card groupings) and the one or two words just before a number ("order",
//! "invoice", "version", ...) that say it is not personal data. This module has no bindings and
//! no dependencies, so the examples include it natively to measure it.

mod email;
mod iban;
mod ip;
mod numbers;
mod secret;

/// What a detector found. Each kind has its own action in the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// API keys, access tokens, private keys.
    Secret,
    /// Payment card numbers (Luhn-checked).
    Card,
    /// International bank account numbers (mod-97-checked).
    Iban,
    /// US social security numbers.
    Ssn,
    Email,
    Phone,
    /// IPv4 and IPv6 addresses.
    Ip,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Secret,
        Kind::Card,
        Kind::Iban,
        Kind::Ssn,
        Kind::Email,
        Kind::Phone,
        Kind::Ip,
    ];

    /// The name used in settings, tags, block reasons and the corpus.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Card => "card",
            Kind::Iban => "iban",
            Kind::Ssn => "ssn",
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Ip => "ip",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The word inside placeholders: `[EMAIL_1]`.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Secret => "SECRET",
            Kind::Card => "CARD",
            Kind::Iban => "IBAN",
            Kind::Ssn => "SSN",
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::Ip => "IP",
        }
    }
}

/// One finding: `text[start..end]` is the sensitive value (never a label around it, so
/// `Bearer abc...` keeps its `Bearer `). Offsets are on character boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// Every finding in `text`, in order, without overlaps.
pub fn scan(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    scan_into(text, &mut found);
    found
}

/// [`scan`] into a caller's buffer (cleared first), to reuse one allocation across texts.
pub fn scan_into(text: &str, found: &mut Vec<Found>) {
    found.clear();
    let b = text.as_bytes();
    email::find_all(text, found);
    let emails = found.len();

    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let word = WORD[c as usize];
        // Outside words only `+`, `(`, `-` and `:` start something; inside a word nothing
        // does, so each word is looked at once, at its first byte.
        let candidate = if word {
            c.is_ascii_digit() || (c != b'_' && letter_may_start(b, i, c))
        } else {
            matches!(c, b'+' | b'(' | b'-' | b':')
        };
        if candidate && token_start(text, i) {
            match detect_at(text, i) {
                Some(Ok(hit)) => {
                    i = hit.end.max(i + 1);
                    found.push(hit);
                    continue;
                }
                // Shaped like a card or IBAN but failing its check: its digit groups are not
                // phone numbers either.
                Some(Err(end)) => {
                    i = end.max(i + 1);
                    continue;
                }
                None => {}
            }
        }
        i += 1;
        if word {
            while i < b.len() && WORD[b[i] as usize] {
                i += 1;
            }
        }
    }

    if emails > 0 && found.len() > emails {
        found.sort_by_key(|hit| (hit.start, std::cmp::Reverse(hit.end)));
    }
    remove_overlaps(found);
}

/// ASCII letters, digits and `_`: the bytes of a word. Non-ASCII bytes are not in it: their
/// characters may be punctuation, so the byte after them is checked as a possible start.
const WORD: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 128 {
        table[c] = (c as u8).is_ascii_alphanumeric() || c as u8 == b'_';
        c += 1;
    }
    table
};

/// Could a detector start at the letter `c` at `i`? A secret's prefix or label, an IBAN (two
/// letters, two digits), or an IPv6 address (hex digits, then a colon within five bytes).
#[inline]
fn letter_may_start(b: &[u8], i: usize, c: u8) -> bool {
    secret::may_start(c)
        || b.get(i + 2).is_some_and(u8::is_ascii_digit)
        || (c.is_ascii_hexdigit() && b[i..b.len().min(i + 6)].contains(&b':'))
}

/// The finding at token start `i`; `Err(end)` to skip a near miss up to `end`.
fn detect_at(text: &str, i: usize) -> Option<Result<Found, usize>> {
    let b = text.as_bytes();
    let hit = |kind, (start, end)| Some(Ok(Found { kind, start, end }));
    match b[i] {
        b'0'..=b'9' => {
            if !numbers::may_start(b, i) {
                return None;
            }
            if let Some(span) = ip::ipv4(b, i) {
                return hit(Kind::Ip, span);
            }
            if let Some(span) = numbers::ssn(b, i) {
                return hit(Kind::Ssn, span);
            }
            let near_miss = match numbers::card(b, i) {
                Ok(span) => return hit(Kind::Card, span),
                Err(end) => end,
            };
            if let Some(span) = ip::ipv6(b, i) {
                return hit(Kind::Ip, span);
            }
            if let Some(span) = numbers::phone(b, i) {
                return hit(Kind::Phone, span);
            }
            near_miss.map(Err)
        }
        b'+' | b'(' => numbers::phone(b, i).and_then(|span| hit(Kind::Phone, span)),
        b'-' => secret::pem(b, i).and_then(|span| hit(Kind::Secret, span)),
        b':' => ip::ipv6(b, i).and_then(|span| hit(Kind::Ip, span)),
        c if c.is_ascii_alphabetic() => {
            if secret::may_start(c)
                && let Some(span) = secret::at(b, i)
            {
                return hit(Kind::Secret, span);
            }
            // Two letters and two digits.
            let near_miss = if b.get(i + 2).is_some_and(u8::is_ascii_digit) {
                match iban::iban(b, i) {
                    Ok(span) => return hit(Kind::Iban, span),
                    Err(end) => end,
                }
            } else {
                None
            };
            if c.is_ascii_hexdigit()
                && let Some(span) = ip::ipv6(b, i)
            {
                return hit(Kind::Ip, span);
            }
            near_miss.map(Err)
        }
        _ => None,
    }
}

/// Sorted findings with overlaps resolved: of two overlapping findings the longer one stays.
fn remove_overlaps(found: &mut Vec<Found>) {
    let mut kept = 0;
    for index in 0..found.len() {
        let hit = found[index];
        if kept > 0 && hit.start < found[kept - 1].end {
            let last = &mut found[kept - 1];
            if hit.end - hit.start > last.end - last.start {
                *last = hit;
            }
            continue;
        }
        found[kept] = hit;
        kept += 1;
    }
    found.truncate(kept);
}

/// True when no letter, digit or `_` comes right before `i` (any script).
fn token_start(text: &str, i: usize) -> bool {
    match text.as_bytes()[..i].last() {
        None => true,
        Some(&c) if c < 0x80 => !(c.is_ascii_alphanumeric() || c == b'_'),
        Some(_) => !text[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric),
    }
}

/// True when no letter, digit or `_` starts at `end` (any script).
fn token_end(b: &[u8], end: usize) -> bool {
    match b.get(end) {
        None => true,
        Some(&c) if c < 0x80 => !(c.is_ascii_alphanumeric() || c == b'_'),
        Some(_) => match std::str::from_utf8(&b[end..b.len().min(end + 4)]) {
            Ok(rest) => !rest.chars().next().is_some_and(char::is_alphanumeric),
            // A cut multi-byte sequence: decode what is valid.
            Err(e) => std::str::from_utf8(&b[end..end + e.valid_up_to()])
                .ok()
                .and_then(|rest| rest.chars().next())
                .is_none_or(|c| !c.is_alphanumeric()),
        },
    }
}

/// The up-to-two words right before `start` (skipping spaces and `:#.=-` between them),
/// lower-cased, nearest first. Used to tell "order 415-555-2671" from "call 415-555-2671".
fn words_before(b: &[u8], start: usize) -> [Word; 2] {
    let mut words = [Word::default(), Word::default()];
    let mut j = start;
    for word in &mut words {
        while j > 0
            && matches!(
                b[j - 1],
                b' ' | b'\t' | b'\n' | b':' | b'#' | b'.' | b'=' | b'-' | b'(' | b'"' | b'\''
            )
        {
            j -= 1;
        }
        let end = j;
        while j > 0
            && (b[j - 1].is_ascii_alphanumeric() || b[j - 1] >= 0x80 || b[j - 1] == b'_')
            && end - j < Word::MAX
        {
            j -= 1;
        }
        let len = end - j;
        word.len = len as u8;
        for (slot, &c) in word.bytes.iter_mut().zip(&b[j..end]) {
            *slot = c.to_ascii_lowercase();
        }
        if len == 0 {
            break;
        }
    }
    words
}

#[derive(Default, Clone, Copy)]
struct Word {
    bytes: [u8; Word::MAX],
    len: u8,
}

impl Word {
    const MAX: usize = 24;

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    fn is_any(&self, words: &[&str]) -> bool {
        words.iter().any(|word| word.as_bytes() == self.as_bytes())
    }

    fn starts_with_any(&self, prefixes: &[&str]) -> bool {
        prefixes
            .iter()
            .any(|prefix| self.as_bytes().starts_with(prefix.as_bytes()))
    }
}

/// The character right before `start`, skipping spaces: `#` or `№` marks an identifier.
fn hash_sign_before(b: &[u8], start: usize) -> bool {
    let mut j = start;
    while j > 0 && b[j - 1] == b' ' {
        j -= 1;
    }
    (j > 0 && b[j - 1] == b'#') || b[..j].ends_with("№".as_bytes())
}

/// Case-insensitive: does `b[i..]` start with the ASCII `prefix`?
fn starts_with_ci(b: &[u8], i: usize, prefix: &str) -> bool {
    b.len() >= i + prefix.len() && b[i..i + prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(Kind, &str)> {
        scan(text)
            .into_iter()
            .map(|hit| (hit.kind, &text[hit.start..hit.end]))
            .collect()
    }

    #[test]
    fn finds_several_kinds_in_one_text_in_order() {
        let text = "Mail jane.doe@example.org, call +44 20 7946 0958, card 4111 1111 1111 1111, \
                    IBAN DE89 3704 0044 0532 0130 00, server 10.0.0.12.";
        assert_eq!(
            kinds(text),
            [
                (Kind::Email, "jane.doe@example.org"),
                (Kind::Phone, "+44 20 7946 0958"),
                (Kind::Card, "4111 1111 1111 1111"),
                (Kind::Iban, "DE89 3704 0044 0532 0130 00"),
                (Kind::Ip, "10.0.0.12"),
            ]
        );
    }

    #[test]
    fn nothing_in_plain_prose_or_inside_words() {
        assert!(scan("The quick brown fox jumps over the lazy dog.").is_empty());
        assert!(scan("Größe: mittel — «très bien» ¿qué tal?").is_empty());
        // Digits glued to letters are identifiers, not numbers.
        assert!(scan("ref4111111111111111 and X4111111111111111").is_empty());
    }

    #[test]
    fn non_ascii_punctuation_is_a_token_boundary() {
        assert_eq!(
            kinds("«4111111111111111»"),
            [(Kind::Card, "4111111111111111")]
        );
        assert_eq!(
            kinds("Tél.\u{a0}: 01 23 45 67 89"),
            [(Kind::Phone, "01 23 45 67 89")]
        );
        assert!(scan("é4111111111111111").is_empty());
    }

    #[test]
    fn overlaps_keep_the_longer_finding() {
        let mut found = vec![
            Found {
                kind: Kind::Phone,
                start: 0,
                end: 5,
            },
            Found {
                kind: Kind::Email,
                start: 2,
                end: 12,
            },
            Found {
                kind: Kind::Ip,
                start: 13,
                end: 15,
            },
        ];
        remove_overlaps(&mut found);
        assert_eq!(
            found,
            [
                Found {
                    kind: Kind::Email,
                    start: 2,
                    end: 12
                },
                Found {
                    kind: Kind::Ip,
                    start: 13,
                    end: 15
                },
            ]
        );
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("EMAIL"), None);
    }
}
