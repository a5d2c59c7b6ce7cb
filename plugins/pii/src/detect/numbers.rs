//! Numbers that identify a person: payment cards and US social security numbers. Each starts
//! at a digit on a token boundary.
//!
//! Digits alone say little — a 16-digit order number is as long as a card number and a date is
//! as long as a short phone number — so each detector checks the structure the real thing has:
//! cards pass Luhn, carry an issuer prefix of a major brand with a length it issues and are
//! grouped the way cards are printed; SSNs avoid the ranges never issued. Phone numbers, which
//! share the helpers here, are in [`super::phone`].

use super::{token_end, words_before};

pub(super) fn digit(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_digit)
}

/// A number must not continue a decimal or a longer dashed/dotted identifier on its left.
pub(super) fn clean_left(b: &[u8], start: usize) -> bool {
    !(start >= 2
        && matches!(b[start - 1], b'.' | b',' | b'-' | b'/' | b'_')
        && b[start - 2].is_ascii_alphanumeric())
}

/// Nor continue on its right (`1234.5`, `555-1234-`, `...1111x`).
pub(super) fn clean_right(b: &[u8], end: usize) -> bool {
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

/// A card number: 12–19 digits, plain or grouped by spaces or dashes in any of the ways cards
/// are printed (4-4-4-4[-3], 4-4-4-3, 4-4-5, Amex 4-6-5, Diners 4-6-4, Maestro 4-4-4, 6-13,
/// ...: a first group of four to six digits, then groups of two or more, one separator
/// throughout), with an issuer prefix of a major brand allowing that length and a valid Luhn
/// digit. When a grouped number runs on ("4111 1111 1111 1111 12/26"), the longest valid
/// prefix at a group boundary is the card. `Err(end)`: grouped like a card but not one (issuer,
/// length, Luhn), or a single run of card length with a known issuer and a wrong Luhn digit;
/// no other number should be looked for inside it (a phone number is still tried first).
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
        if !(12..=19).contains(&len) || !clean_right(b, end) {
            return Err(None);
        }
        return match check_card(&digits[..len]) {
            Check::Valid => Ok((start, end)),
            Check::BadLuhn => Err(Some(end)),
            // A bare digit run of another kind: maybe a phone number, an id.
            Check::Unknown => Err(None),
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
        if (12..=19).contains(&total) && card_grouping(&lens[..take]) && token_end(b, end) {
            if let Check::Valid = check_card(&digits[..total]) {
                return Ok((start, end));
            }
            shaped.get_or_insert(end);
        }
    }
    Err(shaped)
}

/// A first group of four to six digits (how every brand prints its issuer prefix), then
/// groups of two or more, the last of any length (`4-4-4-1`); thousands (`1 234 567`) and
/// phone layouts (`06 12 34 56 78`) are not card layouts.
fn card_grouping(lens: &[usize]) -> bool {
    match lens {
        [first, middle @ .., _] => (4..=6).contains(first) && middle.iter().all(|&len| len >= 2),
        _ => false,
    }
}

enum Check {
    Valid,
    /// A known issuer prefix and length, a wrong check digit.
    BadLuhn,
    Unknown,
}

fn check_card(digits: &[u8]) -> Check {
    if !issuer_allows(digits) {
        Check::Unknown
    } else if luhn(digits) {
        Check::Valid
    } else {
        Check::BadLuhn
    }
}

/// Lengths 12..=19 as bits.
const fn lengths(from: u32, to: u32) -> u32 {
    (1 << (to + 1)) - (1 << from)
}

/// Issuer identification number ranges of the major brands, from their published rules: the
/// range's low and high prefix, how many digits the prefix has, and the lengths allowed (bit
/// per length). Overlapping ranges just add lengths.
const IINS: &[(u32, u32, u32, u32)] = &[
    (1, 1, 1, 1 << 15),                     // UATP
    (1800, 1800, 4, 1 << 15),               // JCB, 15 digits
    (2131, 2131, 4, 1 << 15),               // JCB, 15 digits
    (2200, 2204, 4, lengths(16, 19)),       // Mir
    (2221, 2720, 4, 1 << 16),               // Mastercard 2-series
    (300, 305, 3, lengths(14, 19)),         // Diners Club
    (3095, 3095, 4, lengths(14, 19)),       // Diners Club
    (34, 34, 2, 1 << 15),                   // American Express
    (37, 37, 2, 1 << 15),                   // American Express
    (3528, 3589, 4, lengths(16, 19)),       // JCB
    (353, 353, 3, 1 << 16),                 // RuPay-JCB
    (356, 356, 3, 1 << 16),                 // RuPay-JCB
    (36, 36, 2, lengths(14, 19)),           // Diners Club International
    (38, 39, 2, lengths(14, 19)),           // Diners Club
    (4, 4, 1, 1 << 13 | 1 << 16 | 1 << 19), // Visa, Visa Electron
    (50, 50, 2, lengths(12, 19)),           // Maestro, RuPay 508, Verve, Dankort
    (51, 55, 2, 1 << 16),                   // Mastercard
    (56, 59, 2, lengths(12, 19)),           // Maestro
    (6, 6, 1, lengths(12, 19)),             // Maestro 6x, Discover, UnionPay 62, RuPay 60/65
    (81, 82, 2, lengths(16, 19)),           // UnionPay 81, RuPay 81/82
    (8600, 8600, 4, 1 << 16),               // UzCard
    (9792, 9792, 4, 1 << 16),               // Troy
    (9860, 9860, 4, 1 << 16),               // Humo
];

/// Does a brand issue numbers of this length with this prefix? Order numbers and timestamps
/// mostly start with other digits or have other lengths.
fn issuer_allows(d: &[u8]) -> bool {
    let len = d.len() as u32;
    IINS.iter().any(|&(low, high, digits, lens)| {
        let prefix = d[..digits as usize]
            .iter()
            .fold(0u32, |acc, &digit| acc * 10 + u32::from(digit));
        lens >> len & 1 == 1 && (low..=high).contains(&prefix)
    })
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
            "4222 2222 22222",
            "6759 6498 2648",
            "6759 6498 2643 8453",
            "6304 0000 0000 0000 018",
            "3528 0007 0000 0000",
            "2131 0000 0000 001",
            "1800 0000 0000 002",
            "2200 1234 5678 9019",
            "6521 1234 5678 9012",
            "6200 0000 0000 0005",
            "8171 9999 0000 0000 021",
            "9792 0300 0000 0000",
            "1234 5678 9012 347",
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
            "7234 5678 9012 3456",     // no issuer
            "1700000000000",           // ms timestamp
            "41111111111111111111111", // too long
            "4111 11111 1111 1111",    // 17 digits: no Visa length
            "41 1111 1111 1111 11",    // first group too short
            "4111-1111 1111-1111",     // mixed separators
            "4111.1111 1111.1111",     // mixed separators
            "9.4111111111111111",      // decimal
            "4111111111111111x",       // identifier
            "4111 1111 1111",          // 12 digits: no Visa length
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
}
