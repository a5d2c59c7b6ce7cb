//! International bank account numbers: country code, two check digits and a BBAN, written
//! plain or in groups separated by single spaces, exactly as long as the country's IBAN
//! (SWIFT IBAN registry) and passing the ISO 7064 mod-97 check.

use super::token_end;

/// IBAN length per country, sorted by code (the table below is built from it).
const LENGTHS: &[([u8; 2], u8)] = &[
    (*b"AD", 24),
    (*b"AE", 23),
    (*b"AL", 28),
    (*b"AT", 20),
    (*b"AZ", 28),
    (*b"BA", 20),
    (*b"BE", 16),
    (*b"BG", 22),
    (*b"BH", 22),
    (*b"BI", 27),
    (*b"BR", 29),
    (*b"BY", 28),
    (*b"CH", 21),
    (*b"CR", 22),
    (*b"CY", 28),
    (*b"CZ", 24),
    (*b"DE", 22),
    (*b"DJ", 27),
    (*b"DK", 18),
    (*b"DO", 28),
    (*b"EE", 20),
    (*b"EG", 29),
    (*b"ES", 24),
    (*b"FI", 18),
    (*b"FK", 18),
    (*b"FO", 18),
    (*b"FR", 27),
    (*b"GB", 22),
    (*b"GE", 22),
    (*b"GI", 23),
    (*b"GL", 18),
    (*b"GR", 27),
    (*b"GT", 28),
    (*b"HN", 28),
    (*b"HR", 21),
    (*b"HU", 28),
    (*b"IE", 22),
    (*b"IL", 23),
    (*b"IQ", 23),
    (*b"IS", 26),
    (*b"IT", 27),
    (*b"JO", 30),
    (*b"KW", 30),
    (*b"KZ", 20),
    (*b"LB", 28),
    (*b"LC", 32),
    (*b"LI", 21),
    (*b"LT", 20),
    (*b"LU", 20),
    (*b"LV", 21),
    (*b"LY", 25),
    (*b"MC", 27),
    (*b"MD", 24),
    (*b"ME", 22),
    (*b"MK", 19),
    (*b"MN", 20),
    (*b"MR", 27),
    (*b"MT", 31),
    (*b"MU", 30),
    (*b"NI", 28),
    (*b"NL", 18),
    (*b"NO", 15),
    (*b"OM", 23),
    (*b"PK", 24),
    (*b"PL", 28),
    (*b"PS", 29),
    (*b"PT", 25),
    (*b"QA", 29),
    (*b"RO", 24),
    (*b"RS", 22),
    (*b"RU", 33),
    (*b"SA", 24),
    (*b"SC", 31),
    (*b"SD", 18),
    (*b"SE", 24),
    (*b"SI", 19),
    (*b"SK", 24),
    (*b"SM", 27),
    (*b"SO", 23),
    (*b"ST", 25),
    (*b"SV", 28),
    (*b"TL", 23),
    (*b"TN", 24),
    (*b"TR", 26),
    (*b"UA", 29),
    (*b"VA", 22),
    (*b"VG", 24),
    (*b"XK", 20),
    (*b"YE", 30),
];

/// [`LENGTHS`] as a table indexed by the two capital letters (26 × 26 entries, 0 for no
/// country): one load per candidate instead of a search.
const BY_CODE: [u8; 26 * 26] = {
    let mut table = [0; 26 * 26];
    let mut k = 0;
    while k < LENGTHS.len() {
        let ([first, second], length) = LENGTHS[k];
        table[(first - b'A') as usize * 26 + (second - b'A') as usize] = length;
        k += 1;
    }
    table
};

/// The IBAN length for a country code in capitals.
fn country_length([first, second]: [u8; 2]) -> Option<usize> {
    if !(first.is_ascii_uppercase() && second.is_ascii_uppercase()) {
        return None;
    }
    let length = BY_CODE[usize::from(first - b'A') * 26 + usize::from(second - b'A')];
    (length > 0).then_some(usize::from(length))
}

/// An IBAN at `start`. `Err(Some(end))`: shaped like one (country, length) but failing the
/// check; no other number should be looked for inside it.
pub(super) fn iban(b: &[u8], start: usize) -> Result<(usize, usize), Option<usize>> {
    let Some(head) = b.get(start..start + 4) else {
        return Err(None);
    };
    // The country in capitals, or the whole IBAN in lower case ("de89 3704 ...").
    let country_case = (head[0].is_ascii_uppercase() && head[1].is_ascii_uppercase())
        || (head[0].is_ascii_lowercase() && head[1].is_ascii_lowercase());
    if !(country_case && head[2].is_ascii_digit() && head[3].is_ascii_digit()) {
        return Err(None);
    }
    let country = [head[0].to_ascii_uppercase(), head[1].to_ascii_uppercase()];
    let length = country_length(country).ok_or(None)?;
    let mut chars = [0u8; 34];
    chars[..2].copy_from_slice(&country);
    chars[2..4].copy_from_slice(&head[2..]);
    let mut count = 4;
    let mut j = start + 4;
    while count < length {
        match b.get(j) {
            Some(c) if c.is_ascii_alphanumeric() => {
                chars[count] = c.to_ascii_uppercase();
                count += 1;
                j += 1;
            }
            Some(b' ') if b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric) => j += 1,
            _ => return Err(None),
        }
    }
    if !token_end(b, j) {
        return Err(None);
    }
    if mod97(&chars[..length]) {
        Ok((start, j))
    } else {
        Err(Some(j))
    }
}

/// ISO 7064 mod 97-10: the first four characters moved to the end, letters as 10..35, the
/// whole number modulo 97 is 1.
///
/// Without a division: the remainder stays below 97, so each step's value stays below 10 000
/// and [`rem97`] can take its remainder by a multiplication. (A remainder is a division, which
/// was most of the IBAN check's cost inside wasm.)
pub(crate) fn mod97(iban: &[u8]) -> bool {
    let (head, bban) = iban.split_at(4);
    let mut remainder = 0;
    for part in [bban, head] {
        for &c in part {
            remainder = match c {
                b'0'..=b'9' => rem97(remainder * 10 + u32::from(c - b'0')),
                b'A'..=b'Z' => rem97(remainder * 100 + u32::from(c - b'A' + 10)),
                _ => return false,
            };
        }
    }
    remainder == 1
}

/// `x % 97` for `x < 10_000`: `x * 172_961 >> 24` is `x / 97` there (172 961 / 2^24 exceeds
/// 1/97 by less than 1 / (97 * 2^24); the test checks every `x`).
fn rem97(x: u32) -> u32 {
    debug_assert!(x < 10_000);
    x - 97 * ((x * 172_961) >> 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(text: &str) -> Option<&str> {
        iban(text.as_bytes(), 0).ok().map(|(s, e)| &text[s..e])
    }

    /// The textbook form, one remainder per character.
    fn mod97_reference(iban: &[u8]) -> bool {
        let mut remainder = 0u32;
        for &c in iban[4..].iter().chain(&iban[..4]) {
            remainder = match c {
                b'0'..=b'9' => (remainder * 10 + u32::from(c - b'0')) % 97,
                b'A'..=b'Z' => (remainder * 100 + u32::from(c - b'A' + 10)) % 97,
                _ => return false,
            };
        }
        remainder == 1
    }

    #[test]
    fn rem97_is_the_remainder() {
        for x in 0..10_000 {
            assert_eq!(rem97(x), x % 97, "{x}");
        }
    }

    #[test]
    fn mod97_matches_the_textbook_form() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..20_000 {
            let len = 5 + round % 30;
            let chars: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(seed % 36) as usize]
                })
                .collect();
            assert_eq!(mod97(&chars), mod97_reference(&chars), "{chars:?}");
        }
        assert!(mod97(b"DE89370400440532013000"));
        assert!(!mod97(b"DE88370400440532013000"));
    }

    #[test]
    fn table_is_sorted_and_indexed() {
        assert!(LENGTHS.windows(2).all(|pair| pair[0].0 < pair[1].0));
        for first in b'A'..=b'Z' {
            for second in b'A'..=b'Z' {
                let listed = LENGTHS
                    .iter()
                    .find(|(code, _)| *code == [first, second])
                    .map(|&(_, length)| usize::from(length));
                assert_eq!(country_length([first, second]), listed);
            }
        }
        assert_eq!(country_length(*b"D4"), None);
    }

    #[test]
    fn valid_ibans_plain_and_grouped() {
        for iban in [
            "DE89 3704 0044 0532 0130 00",
            "DE89370400440532013000",
            "GB82 WEST 1234 5698 7654 32",
            "FR14 2004 1010 0505 0001 3M02 606",
            "ES91 2100 0418 4502 0005 1332",
            "NL91 ABNA 0417 1643 00",
            "BE68 5390 0754 7034",
            "CH93 0076 2011 6238 5295 7",
            "NO93 8601 1117 947",
            "IT60 X054 2811 1010 0000 0123 456",
            "GB82 west 1234 5698 7654 32",
            "de89 3704 0044 0532 0130 00",
        ] {
            assert_eq!(find(&format!("{iban} ")), Some(iban), "{iban}");
        }
    }

    #[test]
    fn invalid_ibans() {
        for text in [
            "DE88 3704 0044 0532 0130 00",  // check digits
            "DE89 3704 0044 0532 0130 0",   // short
            "DE89 3704 0044 0532 0130 001", // long
            "XX89 3704 0044 0532 0130 00",  // no such country
            "DE89  3704 0044 0532 0130 00", // double space
            "De89 3704 0044 0532 0130 00",  // mixed-case country
        ] {
            assert_eq!(find(text), None, "{text}");
        }
    }
}
