//! Numbers that identify a person: payment cards, US social security numbers and phone
//! numbers. Each starts at a digit (phones also at `+` or `(`) on a token boundary.
//!
//! Digits alone say little — a 16-digit order number is as long as a card number and a date is
//! as long as a short phone number — so each detector checks the structure the real thing has:
//! cards pass Luhn, carry a known issuer prefix and are grouped the way cards are printed; SSNs
//! avoid the ranges never issued; phone numbers are international (`+`, `00`), or national with
//! separators in a known shape, and not dates or labelled identifiers ("order", "invoice", ...).

use super::{hash_sign_before, token_end, words_before};

/// Words that, right before a number, make it an identifier rather than personal data.
const IDENTIFIER_WORDS: &[&str] = &[
    "order",
    "invoice",
    "ref",
    "reference",
    "tracking",
    "isbn",
    "id",
    "sku",
    "serial",
    "ticket",
    "case",
    "part",
    "no",
    "nr",
    "num",
    "version",
    "v",
    "ver",
    "build",
    "release",
    "po",
    "bestellung",
    "bestellnummer",
    "rechnung",
    "rechnungsnummer",
    "auftrag",
    "kundennummer",
    "commande",
    "facture",
    "pedido",
    "factura",
    "referencia",
    "référence",
    "ordine",
    "fattura",
    "batch",
    "lot",
    "model",
    "zip",
    "postcode",
    "plz",
    "transaction",
    "txn",
    "confirmation",
    "siret",
    "siren",
    "vat",
    "tva",
    "iva",
    "nif",
    "cif",
    "ust",
    "artikel",
    "art",
    "code",
    "codes",
    "pin",
    "lottery",
];

/// Compound words ending in "nummer" (German) are identifiers unless they name a phone
/// ("Kundennummer" vs "Telefonnummer").
fn identifier_compound(word: &super::Word) -> bool {
    let w = word.as_bytes();
    w.len() > 6
        && w.ends_with(b"nummer")
        && !word.starts_with_any(&[
            "tel",
            "handy",
            "fax",
            "mobil",
            "ruf",
            "notruf",
            "durchwahl",
            "service",
        ])
}

/// Words that, right before a number, say it is a phone number even without separators.
const PHONE_WORDS: &[&str] = &[
    "tel",
    "phone",
    "telephone",
    "call",
    "mobile",
    "cell",
    "fax",
    "telefon",
    "telefonnummer",
    "handy",
    "mobil",
    "téléphone",
    "tél",
    "portable",
    "teléfono",
    "móvil",
    "telefono",
    "cellulare",
    "whatsapp",
    "sms",
    "text",
    "ring",
    "number",
    "nummer",
    "numéro",
    "número",
];

fn digit(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

/// A number must not continue a decimal or a longer dashed/dotted identifier on its left.
fn clean_left(b: &[u8], start: usize) -> bool {
    !(start >= 2
        && matches!(b[start - 1], b'.' | b',' | b'-' | b'/' | b'_')
        && b[start - 2].is_ascii_alphanumeric())
}

/// Nor continue on its right (`1234.5`, `555-1234-`, `...1111x`).
fn clean_right(b: &[u8], end: usize) -> bool {
    if !token_end(b, end) {
        return false;
    }
    !(matches!(b.get(end), Some(b'.' | b',' | b'-' | b'/' | b':')) && digit(b, end + 1))
}

/// A cheap first look at a digit run, before any detector: most numbers in prose ("2024",
/// "12", "30000ms") are short and end in a letter or plain punctuation, and none of the
/// numeric detectors (cards, SSNs, phones, IPs) can match them.
pub(super) fn may_start(b: &[u8], start: usize) -> bool {
    let mut end = start;
    while digit(b, end) {
        end += 1;
    }
    let long = end - start >= 9;
    match b.get(end) {
        None => long,
        Some(b'.' | b'-' | b' ' | b'/' | b':' | b'(' | b')') => true,
        // `2a02:810d::1`: an IPv6 group may start with a digit.
        Some(&c) if c.is_ascii_alphanumeric() || c == b'_' => {
            b[start..b.len().min(start + 5)].contains(&b':')
        }
        Some(_) => long,
    }
}

// ---------------------------------------------------------------------------------------------
// Payment cards

/// A card number: 13–19 digits, plain or grouped by spaces or dashes as cards are printed
/// (4-4-4-4[-3], Amex 4-6-5, Diners 4-6-4), with a known issuer prefix and a valid Luhn digit.
/// When a grouped number runs on ("4111 1111 1111 1111 12/26"), the longest valid prefix at a
/// group boundary is the card. `Err(end)`: shaped like a card but not one (Luhn, issuer); no
/// other number should be looked for inside it.
pub(super) fn card(b: &[u8], start: usize) -> Result<(usize, usize), Option<usize>> {
    if !clean_left(b, start) {
        return Err(None);
    }
    let mut digits = [0u8; 19];
    let mut count = 0;
    // Digit count and end offset after each group.
    let mut groups: [(usize, usize); 8] = [(0, 0); 8];
    let mut group_count = 0;
    let mut separator = None;
    let mut j = start;
    loop {
        let group_start = count;
        while digit(b, j) {
            if count == 19 {
                // Too long for a card unless a separator ends the card first.
                if group_count == 0 {
                    return Err(None);
                }
                break;
            }
            digits[count] = b[j] - b'0';
            count += 1;
            j += 1;
        }
        if digit(b, j) {
            break;
        }
        groups[group_count] = (count - group_start, j);
        group_count += 1;
        if group_count == groups.len() {
            break;
        }
        match b.get(j) {
            Some(&c @ (b' ' | b'-' | b'.'))
                if digit(b, j + 1) && separator.is_none_or(|s| s == c) =>
            {
                separator = Some(c);
                j += 1;
            }
            _ => break,
        }
    }

    if group_count == 1 {
        let (len, end) = groups[0];
        if !(13..=19).contains(&len) || !clean_right(b, end) {
            return Err(None);
        }
        return if valid_card(&digits[..len]) {
            Ok((start, end))
        } else {
            Err(Some(end))
        };
    }
    let mut lens = [0usize; 8];
    for (len, group) in lens.iter_mut().zip(&groups[..group_count]) {
        *len = group.0;
    }
    let mut shaped = None;
    for take in (2..=group_count).rev() {
        let total: usize = lens[..take].iter().sum();
        let end = groups[take - 1].1;
        if (13..=19).contains(&total) && card_grouping(&lens[..take]) && token_end(b, end) {
            if valid_card(&digits[..total]) {
                return Ok((start, end));
            }
            shaped.get_or_insert(end);
        }
    }
    Err(shaped)
}

fn card_grouping(lens: &[usize]) -> bool {
    match lens {
        [4, 6, 5] | [4, 6, 4] => true,
        [first @ .., last] => {
            first.len() >= 3 && first.iter().all(|&len| len == 4) && (1..=4).contains(last)
        }
        [] => false,
    }
}

fn valid_card(digits: &[u8]) -> bool {
    issuer_allows(digits) && luhn(digits)
}

/// Known issuer prefixes and their lengths: Visa, Mastercard, Amex, Discover, Diners, JCB,
/// UnionPay, Maestro. Order numbers and timestamps mostly start with other digits.
fn issuer_allows(d: &[u8]) -> bool {
    let len = d.len();
    let two = d[0] * 10 + d[1];
    let four = u16::from(two) * 100 + u16::from(d[2] * 10 + d[3]);
    match d[0] {
        4 => matches!(len, 13 | 16 | 19),
        2 => (2221..=2720).contains(&four) && len == 16,
        5 => match two {
            51..=55 => len == 16,
            50 | 56..=59 => len >= 13,
            _ => false,
        },
        3 => match two {
            34 | 37 => len == 15,
            35 => (16..=19).contains(&len),
            30 | 36 | 38 | 39 => (14..=19).contains(&len),
            _ => false,
        },
        6 => len >= 13,
        _ => false,
    }
}

pub(crate) fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (index, &d) in digits.iter().rev().enumerate() {
        let mut d = u32::from(d);
        if index % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

// ---------------------------------------------------------------------------------------------
// US social security numbers

/// `AAA-GG-SSSS` (dashes or spaces), or nine plain digits right after "SSN" / "social
/// security", outside the ranges never issued: area 000, 666 and 900–999, group 00,
/// serial 0000.
pub(super) fn ssn(b: &[u8], start: usize) -> Option<(usize, usize)> {
    if !clean_left(b, start) {
        return None;
    }
    let all_digits = |from: usize, len: usize| (from..from + len).all(|k| digit(b, k));
    let (digits, end) = if all_digits(start, 3) && matches!(b.get(start + 3), Some(b'-' | b' ')) {
        let sep = b[start + 3];
        if !(all_digits(start + 4, 2) && b.get(start + 6) == Some(&sep) && all_digits(start + 7, 4))
        {
            return None;
        }
        let d = |k: usize| b[start + k] - b'0';
        (
            [d(0), d(1), d(2), d(4), d(5), d(7), d(8), d(9), d(10)],
            start + 11,
        )
    } else if all_digits(start, 9) && !digit(b, start + 9) && labelled_ssn(b, start) {
        let mut d = [0u8; 9];
        for (k, slot) in d.iter_mut().enumerate() {
            *slot = b[start + k] - b'0';
        }
        (d, start + 9)
    } else {
        return None;
    };
    if !clean_right(b, end) || digit(b, end) {
        return None;
    }
    let area = u16::from(digits[0]) * 100 + u16::from(digits[1]) * 10 + u16::from(digits[2]);
    let group = digits[3] * 10 + digits[4];
    let serial = digits[5..]
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d));
    let issued = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    issued.then_some((start, end))
}

fn labelled_ssn(b: &[u8], start: usize) -> bool {
    let [near, far] = words_before(b, start);
    near.is_any(&["ssn", "ssns"])
        || (near.is_any(&["security", "number", "no", "nr"])
            && (far.is_any(&["social", "security"])))
}

// ---------------------------------------------------------------------------------------------
// Phone numbers

const MAX_GROUPS: usize = 8;

/// Digits in full international numbers of common country codes (E.164, with the code).
/// Others may have 9 to 15.
fn international_digits(b: &[u8], first: usize) -> Option<std::ops::RangeInclusive<usize>> {
    let code = |len: usize| b.get(first..first + len);
    Some(match code(1)? {
        b"1" => 11..=11,
        b"7" => 11..=11,
        _ => match code(2)? {
            b"33" | b"34" | b"31" | b"41" | b"61" | b"46" | b"47" | b"45" => 10..=11,
            b"44" => 11..=12,
            b"39" => 10..=13,
            b"49" | b"43" => 10..=14,
            b"32" => 10..=11,
            b"86" => 12..=13,
            b"91" => 12..=12,
            _ => return None,
        },
    })
}

/// The digit groups of a phone-like run: lengths, the offset each ends at, and the separator
/// before each (`)` for a closing parenthesis).
struct Run {
    lens: [usize; MAX_GROUPS],
    ends: [usize; MAX_GROUPS],
    seps: [u8; MAX_GROUPS],
    groups: usize,
    /// Index of the group inside `(...)`, if any.
    paren_group: Option<usize>,
}

fn read_run(b: &[u8], mut j: usize) -> Option<Run> {
    let mut run = Run {
        lens: [0; MAX_GROUPS],
        ends: [0; MAX_GROUPS],
        seps: [0; MAX_GROUPS],
        groups: 0,
        paren_group: None,
    };
    let mut paren = 0; // 0: none yet, 1: open, 2: closed
    let mut after_separator = true;
    loop {
        match b.get(j) {
            Some(c) if c.is_ascii_digit() => {
                let from = j;
                while digit(b, j) {
                    j += 1;
                }
                if run.groups == MAX_GROUPS {
                    break;
                }
                run.lens[run.groups] = j - from;
                run.ends[run.groups] = j;
                run.groups += 1;
                after_separator = false;
            }
            Some(b'(') if paren == 0 && after_separator && digit(b, j + 1) => {
                paren = 1;
                run.paren_group = Some(run.groups);
                j += 1;
            }
            Some(b')') if paren == 1 && !after_separator => {
                paren = 2;
                j += 1;
                if run.groups < MAX_GROUPS {
                    run.seps[run.groups] = b')';
                }
                if matches!(b.get(j), Some(b' ' | b'-')) && digit(b, j + 1) {
                    j += 1;
                }
                if !digit(b, j) {
                    return None;
                }
                after_separator = true;
            }
            // "030 - 123 456": a dash between spaces is one separator.
            Some(b' ')
                if !after_separator
                    && b.get(j + 1) == Some(&b'-')
                    && b.get(j + 2) == Some(&b' ')
                    && digit(b, j + 3) =>
            {
                if run.groups < MAX_GROUPS {
                    run.seps[run.groups] = b'-';
                }
                after_separator = true;
                j += 3;
            }
            Some(&c @ (b' ' | b'-' | b'.' | b'/'))
                if !after_separator
                    && (digit(b, j + 1)
                        || (c == b' ' && b.get(j + 1) == Some(&b'(') && paren == 0)) =>
            {
                if run.groups < MAX_GROUPS {
                    run.seps[run.groups] = c;
                }
                after_separator = true;
                j += 1;
            }
            _ => break,
        }
    }
    (paren != 1 && run.groups > 0).then_some(run)
}

/// A phone number: international (`+CC ...` or `00CC ...`, 9–15 digits with the country code)
/// or national with separators in a known shape — a trunk `0` (most of Europe: "030 1234567",
/// "01 23 45 67 89", "020 7946 0958"), a parenthesised area code ("(415) 555-2671"), North
/// American / Italian 3-3-4 ("415-555-2671", "1-800-555-0199"), Spanish 3-3-3 or 3-2-2-2
/// starting 6, 7, 8 or 9. Plain digit runs and seven-digit local numbers count only right
/// after a phone word ("tel", "call", "Telefon", ...); a number right after an identifier word
/// ("order", "invoice", "Kundennummer", `#`) never does. A run that goes on past a plausible
/// international number ("+44 20 7946 0958 4111 ...") is cut at a space.
pub(super) fn phone(b: &[u8], start: usize) -> Option<(usize, usize)> {
    if !clean_left(b, start) || (start > 0 && matches!(b[start - 1], b'+' | b'$')) {
        return None;
    }
    let international = b[start] == b'+';
    let first = start + usize::from(international) + usize::from(b[start] == b'(');
    if international && !matches!(b.get(first), Some(b'1'..=b'9')) {
        return None;
    }
    let run = read_run(b, start + usize::from(international))?;
    // Most numbers in prose are short ("2024", "12.5"): no phone, and no need to read the
    // words before them.
    let total: usize = run.lens[..run.groups].iter().sum();
    if total < 7 || (run.groups == 1 && total < 9) {
        return None;
    }
    // The shape decides first; the words before the number (the costly part) are read only
    // for a number that has the shape of a phone number, or would with a phone word before it.
    let shaped = |labelled: bool| {
        let context = Context {
            b,
            first,
            international,
            labelled,
        };
        (1..=run.groups).rev().find_map(|take| {
            let end = run.ends[take - 1];
            // A run going on past a plausible number is cut at a space, for international
            // numbers only: a national-looking prefix of a longer run is some other number.
            let cut_ok = if take == run.groups {
                clean_right(b, end)
            } else {
                run.seps[take] == b' '
                    && (international || b[first] == b'0' && b.get(first + 1) == Some(&b'0'))
            };
            (cut_ok && context.accepts(&run, take)).then_some(end)
        })
    };
    let unlabelled = shaped(false);
    let end = unlabelled.or_else(|| shaped(true))?;
    if international {
        return Some((start, end));
    }
    let [near, far] = words_before(b, start);
    let identifier = near.is_any(IDENTIFIER_WORDS)
        || identifier_compound(&near)
        || (far.is_any(IDENTIFIER_WORDS) && !near.is_any(PHONE_WORDS))
        || hash_sign_before(b, start);
    let labelled = || {
        near.is_any(PHONE_WORDS)
            || far.is_any(PHONE_WORDS)
            || near.starts_with_any(&["tel", "phon"])
    };
    (!identifier && (unlabelled.is_some() || labelled())).then_some((start, end))
}

struct Context<'b> {
    b: &'b [u8],
    /// Offset of the first digit.
    first: usize,
    international: bool,
    labelled: bool,
}

impl Context<'_> {
    /// Do the first `take` groups of `run` form a phone number?
    fn accepts(&self, run: &Run, take: usize) -> bool {
        let lens = &run.lens[..take];
        // seps[k] is the separator before group k.
        let seps = &run.seps[1..take];
        let digits: usize = lens.iter().sum();
        let first = self.b[self.first];
        let second = self.b.get(self.first + 1).copied().unwrap_or(b' ');
        if self.international {
            // "+44 (0) 20 ...": the national trunk digit in brackets is not dialled.
            let trunk = run
                .paren_group
                .filter(|&group| group < take && lens[group] == 1)
                .map_or(0, |_| 1);
            let digits = digits - trunk;
            return match international_digits(self.b, self.first) {
                Some(range) => range.contains(&digits),
                None => (9..=15).contains(&digits),
            };
        }
        if looks_like_date(lens, seps) {
            return false;
        }
        if first == b'0' && second == b'0' {
            // 00 + country code, the international prefix in most of the world.
            return self
                .b
                .get(self.first + 2)
                .is_some_and(|c| (b'1'..=b'9').contains(c))
                && (10..=17).contains(&digits)
                && (take > 1 || self.labelled);
        }
        if take == 1 {
            return self.labelled && (9..=12).contains(&digits);
        }
        let consistent = seps.iter().all(|&s| s == seps[0]);
        let shape_ok = if run.paren_group.is_some_and(|group| group < take) {
            run.paren_group == Some(0) && (9..=12).contains(&digits)
        } else if first == b'0' {
            // Trunk 0 plus an area code, then subscriber groups of two or more digits.
            let pairs = lens.iter().all(|&len| len == 2);
            (9..=12).contains(&digits)
                && (2..=5).contains(&lens[0])
                && lens.iter().all(|&len| len >= 2)
                && seps.iter().all(|&s| s != b'/' || seps.len() == 1)
                // Pairs are the French style: exactly five of them.
                && (!pairs || lens.len() == 5)
                // Otherwise the subscriber number after the area code never starts with 0.
                && (pairs || self.b[run.ends[1] - lens[1]] != b'0')
        } else {
            match lens {
                [3, 3, 4] => consistent && first >= b'2',
                // North American with the long-distance 1: 1-800-555-0199.
                [1, 3, 3, 4] => consistent && first == b'1',
                // A seven-digit local number, only when called a phone number.
                [3, 4] => self.labelled && seps[0] == b'-',
                [3, 3, 3] | [3, 2, 2, 2] => {
                    consistent && matches!(first, b'6'..=b'9') && seps[0] != b'.'
                }
                _ => false,
            }
        };
        // Mixed separators only in the `(...)`, trunk or dash-and-space styles, never `1.2-3`.
        let mixed_ok =
            consistent || run.paren_group.is_some() || seps.iter().all(|&s| s == b' ' || s == b'-');
        shape_ok && (mixed_ok || self.labelled)
    }
}

/// `15.01.2024`, `2024-01-15`, `01/15/2024`, `15.01.24` at the start of a number run.
fn looks_like_date(lens: &[usize], seps: &[u8]) -> bool {
    if lens.len() < 3 || seps[0] != seps[1] || !matches!(seps[0], b'.' | b'/' | b'-') {
        return false;
    }
    // A two-digit year only when nothing follows (`01.23.45.67.89` is a French number).
    matches!(
        (lens[0], lens[1], lens[2]),
        (1 | 2, 1 | 2, 4) | (4, 1 | 2, 1 | 2)
    ) || (lens.len() == 3 && lens[0] <= 2 && lens[1] <= 2 && lens[2] == 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Detector = fn(&[u8], usize) -> Option<(usize, usize)>;

    fn card(b: &[u8], start: usize) -> Option<(usize, usize)> {
        super::card(b, start).ok()
    }

    fn span(text: &str, f: Detector) -> Option<&str> {
        let start = text.find(|c: char| c.is_ascii_digit() || c == '+' || c == '(')?;
        f(text.as_bytes(), start).map(|(s, e)| &text[s..e])
    }

    #[test]
    fn luhn_checks() {
        let digits = |s: &str| s.bytes().map(|c| c - b'0').collect::<Vec<_>>();
        assert!(luhn(&digits("4111111111111111")));
        assert!(luhn(&digits("79927398713")));
        assert!(!luhn(&digits("4111111111111112")));
    }

    #[test]
    fn cards_in_printed_groupings() {
        for card_number in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "5555 5555 5555 4444",
            "2223 0031 2200 3222",
            "3782 822463 10005",
            "378282246310005",
            "6011 1111 1111 1117",
            "3056 930902 5904",
            "3530 1113 3330 0000",
            "4000 0000 0000 0000 006",
            "4222222222222",
        ] {
            let text = format!("card {card_number}, thanks");
            assert_eq!(span(&text, card), Some(card_number), "{card_number}");
        }
        // A card followed by its expiry keeps only the card.
        assert_eq!(
            span("4111 1111 1111 1111 12/26", card),
            Some("4111 1111 1111 1111")
        );
    }

    #[test]
    fn not_cards() {
        for text in [
            "4111 1111 1111 1112",     // Luhn
            "1234 5678 9012 3456",     // no issuer
            "1700000000000",           // ms timestamp
            "41111111111111111111111", // too long
            "4111 11111 1111 1111",    // odd grouping
            "4111-1111 1111-1111",     // mixed separators
            "4111.1111 1111.1111",     // mixed separators
            "9.4111111111111111",      // decimal
            "4111111111111111x",       // identifier
            "4111 1111 1111",          // 12 digits
        ] {
            assert_eq!(span(text, card), None, "{text}");
        }
    }

    #[test]
    fn ssns() {
        assert_eq!(span("SSN 123-45-6789.", ssn), Some("123-45-6789"));
        assert_eq!(span("it is 078 05 1120", ssn), Some("078 05 1120"));
        assert_eq!(span("SSN: 123456789", ssn), Some("123456789"));
        assert_eq!(
            span("social security number 123456789", ssn),
            Some("123456789")
        );
        for text in [
            "000-12-3456",
            "666-12-3456",
            "912-12-3456",
            "123-00-4567",
            "123-45-0000",
            "123-45-67890",
            "123-45 6789",
            "123456789",
            "2024-01-1500",
        ] {
            assert_eq!(span(text, ssn), None, "{text}");
        }
    }

    #[test]
    fn international_phones() {
        for number in [
            "+44 20 7946 0958",
            "+1 (415) 555-2671",
            "+49 (0)30 123456",
            "+33 1 23 45 67 89",
            "+4915112345678",
            "+34 612 34 56 78",
            "+1-202-555-0143",
            "0049 30 123456",
            "0033 1 23 45 67 89",
        ] {
            let text = format!("call {number} today");
            assert_eq!(span(&text, phone), Some(number), "{number}");
        }
    }

    #[test]
    fn national_phones() {
        for number in [
            "030 1234567",
            "0171 2345678",
            "01 23 45 67 89",
            "01.23.45.67.89",
            "020 7946 0958",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "612 345 678",
            "612 34 56 78",
            "06 1234 5678",
            "089/12345678",
            "(030) 1234567",
        ] {
            let text = format!("erreichbar unter {number}.");
            assert_eq!(span(&text, phone), Some(number), "{number}");
        }
        assert_eq!(span("Tel: 4155552671", phone), Some("4155552671"));
    }

    #[test]
    fn not_phones() {
        for text in [
            "on 2024-01-15 at noon",
            "am 15.01.2024 12:30",
            "01.02.2024 12",
            "version 10.0.19045.2965",
            "order 415-555-2671",
            "Invoice #: 0301 234567",
            "order #123-456-7890",
            "4155552671",
            "0012345678",
            "+1",
            "+12 345",
            "1+5551234567",
            "UTC+01:00",
            "ISBN 978-3-16-148410-0",
            "0-306-40615-2",
            "price 123 456 789",
            "1 250 000 habitants",
            "v1.2.3",
            "20240115103000",
            "12.50 13.75 14.20 15.00",
        ] {
            assert_eq!(span(text, phone), None, "{text}");
        }
    }
}
