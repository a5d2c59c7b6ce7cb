//! The detectors: hand-written scanners that find personal data and secrets in one text.
//!
//! One pass over the bytes ([`scan_with`]). A prefilter skips, eight bytes at a time, text in
//! which nothing can start: every finding holds a *trigger* (a digit, one of `@([+-:_=~`, or
//! one of a few letter pairs) in or right after its first word. At a trigger, the words around
//! it are looked at: every detector is anchored on a *token start* (a position whose previous
//! character is not a letter, digit or `_` — a letter of a script written without spaces,
//! Han, kana, Hangul, Thai, is a boundary: see `script`) and chosen by the word's first
//! bytes. E-mail addresses are the exception: they are anchored on their `@` (or `(at)`,
//! `[at]`), and may start before it; so are passwords in URLs. Prose costs about a byte per
//! nanosecond inside wasm. A full-width form (`０３－…`, `＠`) stops the scan, and the text is
//! scanned again with those forms narrowed to ASCII, findings mapped back to what was written.
//!
//! This file owns the scan loop, the prefilter and the token helpers the detectors share; each
//! submodule owns one family of detectors and is called only at its own kind of start:
//! `numbers` cards and SSNs, `phone` phone numbers (with the tables in `phone_plan`,
//! generated from libphonenumber's metadata), `secret` credentials, `email`, `iban`,
//! `ip`; `exempt` filters findings an operator declared harmless; `script` knows
//! writing systems.
//!
//! Precision comes from structure, not from lists of examples: checksums where the format has
//! one (Luhn for cards, mod-97 for IBANs), issuer ranges (cards), numbering plans (phones),
//! value ranges (IPv4 octets, SSN areas), group shapes (phone and card groupings, not
//! thousands or dates), documented token formats with an entropy floor (secrets) and the one
//! or two words just before a number ("order", "invoice", "version", "注文", ...) that say it
//! is not personal data. This module has no bindings and no dependencies, so the examples
//! include it natively to measure it.

mod email;
mod exempt;
mod iban;
mod ip;
mod numbers;
mod phone;
mod phone_plan;
mod script;
mod secret;

pub use exempt::Exemptions;
#[allow(unused_imports)]
pub use phone::{DEFAULT_REGIONS, Regions};

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

/// What a scan looks for beyond the formats themselves: the regions whose national phone
/// formats count, and the values an operator considers harmless.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Options {
    pub regions: Regions,
    pub exempt: Exemptions,
}

/// Every finding in `text`, in order, without overlaps, with the default options.
pub fn scan(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    scan_with(text, &Options::default(), &mut found);
    found
}

/// [`scan_with`] with the default options.
pub fn scan_into(text: &str, found: &mut Vec<Found>) {
    scan_with(text, &Options::default(), found);
}

/// Every finding in `text` into a caller's buffer (cleared first, to reuse one allocation
/// across texts).
///
/// Full-width forms (`０３－１２３４－５６７８`, `ｊｏｅ＠ｅｘａｍｐｌｅ．ｃｏｍ`, common in Japanese and
/// Chinese text) are matched as their ASCII equivalents (NFKC), while the findings' offsets
/// stay in `text`: what gets replaced is what the user wrote. The scan stops at the first such
/// form it meets (their first byte, `EF`, is a trigger), and the text is scanned again
/// narrowed; text without them, nearly all, is scanned once, as it is.
pub fn scan_with(text: &str, options: &Options, found: &mut Vec<Found>) {
    if scan_text(text, options, found) == Scan::Wide {
        let narrowed = script::narrow(text);
        scan_text(&narrowed.text, options, found);
        for hit in found.iter_mut() {
            hit.start = narrowed.original(hit.start);
            hit.end = narrowed.original(hit.end);
        }
    }
    if !options.exempt.is_empty() {
        found.retain(|hit| !options.exempt.covers(hit.kind, &text[hit.start..hit.end]));
    }
}

/// How a scan ended.
#[derive(PartialEq, Eq)]
enum Scan {
    Done,
    /// Stopped at a full-width form: the text must be narrowed first.
    Wide,
}

/// The scan proper; stops early, with [`Scan::Wide`], at a full-width form.
///
/// One pass in two gears. [`skip_quiet`] runs over the text eight bytes at a time, with no
/// branch per byte, to the next trigger: a byte or pair of bytes that every finding has in or
/// right after its first word ([`TRIGGERS`]). Most of a prompt's prose has none. At a trigger,
/// [`scan_words`] looks at the word or two around it and the detectors decide.
///
/// Findings are pushed in the order they are met, which is their order in the text except for
/// an e-mail address, found at its `@` after whatever its local part held; the rare
/// out-of-order push is sorted once at the end.
fn scan_text(text: &str, options: &Options, found: &mut Vec<Found>) -> Scan {
    found.clear();
    let b = text.as_bytes();
    let mut found = Findings {
        list: found,
        sorted: true,
        email_end: 0,
        wide: false,
    };

    let mut i = 0;
    while i < b.len() {
        let quiet_from = i;
        let trigger = skip_quiet(b, i);
        // A start's trigger may come after its first bytes (`sk` before the `-` of `sk-...`,
        // `abcd` before the `:` of an IPv6 address): the word the trigger is in, or that ends
        // right before it, is looked at from its start. Nothing skipped can start a finding.
        i = trigger;
        while i > quiet_from && WORD[b[i - 1] as usize] {
            i -= 1;
        }
        i = scan_words(text, options, &mut found, i, trigger + 1);
    }
    if found.wide {
        return Scan::Wide;
    }

    if !found.sorted {
        found
            .list
            .sort_by_key(|hit| (hit.start, std::cmp::Reverse(hit.end)));
    }
    remove_overlaps(found.list);
    Scan::Done
}

/// Scans `text` from `i`, a word at a time, until at least `until`; returns where it stopped:
/// between words, or at the end of a finding. `i` is between words, at a word's first byte, or
/// at the end of a finding.
///
/// A word (a run of [`WORD`] bytes) is skipped whole unless its first bytes could start an
/// entity ([`word_may_start`]); between words, only the few bytes in [`PUNCT`] are looked at.
fn scan_words(
    text: &str,
    options: &Options,
    found: &mut Findings<'_>,
    mut i: usize,
    until: usize,
) -> usize {
    let b = text.as_bytes();
    while i < until {
        let c = b[i];
        if WORD[c as usize] {
            let start = i;
            i = word_end(b, i + 1);
            // Nothing starts inside a word, so each word is looked at once, here.
            if word_may_start(b, start, i) && token_start(text, start) {
                match detect_at(b, start, options) {
                    Some(Ok(hit)) => {
                        found.push(hit.kind, (hit.start, hit.end));
                        i = hit.end.max(start + 1);
                    }
                    // Shaped like a card or IBAN but failing its check: its digit groups are
                    // not phone numbers either.
                    Some(Err(end)) => i = end.max(start + 1),
                    None => {}
                }
            }
            continue;
        }
        // Between words: a byte in `PUNCT`, a space, punctuation or part of a non-ASCII
        // character.
        let hit = match PUNCT[c as usize] {
            ANCHOR => {
                // An address does not move `i`: the scan goes on through it as if it were
                // not there (it may hold a number, say), and `remove_overlaps` settles it.
                if found.email(b, i) {
                    None
                } else if c == b'(' && token_start(text, i) {
                    phone::phone(b, i, &options.regions).map(|span| (Kind::Phone, span))
                } else {
                    None
                }
            }
            PLUS if token_start(text, i) => {
                phone::phone(b, i, &options.regions).map(|span| (Kind::Phone, span))
            }
            DASH if b[i..].starts_with(b"-----") && token_start(text, i) => {
                secret::pem(b, i).map(|span| {
                    // The block is skipped below, yet an address anchored inside it may run
                    // past its end (a block cut short ends anywhere): try its anchors too.
                    for at in span.0 + 1..span.1 {
                        if PUNCT[b[at] as usize] == ANCHOR {
                            found.email(b, at);
                        }
                    }
                    (Kind::Secret, span)
                })
            }
            // A leading `::` (`::1`). An address that starts with a hex group is tried at that
            // group's word (see `word_may_start`).
            COLON if b.get(i + 1) == Some(&b':') && token_start(text, i) => {
                ip::ipv6(b, i).map(|span| (Kind::Ip, span))
            }
            WIDE if script::wide_at(b, i).is_some() => {
                found.wide = true;
                return b.len();
            }
            TILDE => secret::azure_client_secret(b, i)
                .filter(|&(start, _)| token_start(text, start))
                .map(|span| (Kind::Secret, span)),
            _ => None,
        };
        match hit {
            Some((kind, span)) => {
                found.push(kind, span);
                i = span.1.max(i + 1);
            }
            None => i += 1,
        }
    }
    i
}

/// The first trigger from `i` on (see [`TRIGGERS`]), or a position in the last eight bytes of
/// the text, which are not tested.
///
/// Eight bytes at a time: a chunk is quiet when none of its bytes and the byte after it form a
/// trigger pair, a test of table lookups and bit operations with one branch per chunk, which
/// is what makes prose cheap. (Inside wasm, where a loop's every iteration also pays an
/// interruption check, a word-at-a-time scan costs three times as much.) Only in a loud chunk
/// is the trigger's own position looked for.
#[inline]
fn skip_quiet(b: &[u8], mut i: usize) -> usize {
    while let Some(window) = b.get(i..i + 9) {
        let mut loud = 0;
        let mut first = TRIGGER_FIRST[window[0] as usize];
        for &c in &window[1..] {
            loud |= first & TRIGGER_SECOND[c as usize];
            first = TRIGGER_FIRST[c as usize];
        }
        if loud != 0 {
            let mut k = 0;
            while TRIGGER_FIRST[window[k] as usize] & TRIGGER_SECOND[window[k + 1] as usize] == 0 {
                k += 1;
            }
            return i + k;
        }
        i += 8;
    }
    i
}

/// Triggers, as pairs of bytes: a first byte from a row's first set followed by a byte from
/// its second set (`None`: any byte, the first alone is the trigger). Each detector's start
/// holds one of them in its first word, or ends that word with one:
///
/// - digits: numbers, IP addresses, IBANs (two letters, then digits), and every token whose
///   first word holds one (nearly all random bodies do);
/// - `@`, `(`, `[`: e-mail addresses (`(at)`, `[at]`) and passwords in URLs; `(` and `+`:
///   phone numbers;
/// - `-`: `-----BEGIN` and prefixes ending in `-` (`sk-`, `glpat-`, `xoxb-`, ...); `_`:
///   prefixes holding one (`hf_`, `npm_`, `sk_live_`, `private_key_id`); `:`: IPv6;
/// - `=`: `AccountKey=`; `~`: Azure client secrets (`...8Q~...`);
/// - `EF`: the first byte of a full-width form, which makes the text be narrowed first;
/// - `J`: the `eyJ` of a JSON Web Token;
/// - `A` and a capital: AWS key ids (`AKIA`...), Google keys (`AIza`), `ATATT3`, `AGE-`;
/// - `SG`, `SK`: SendGrid and Twilio keys;
/// - `aw`, `cr`, `be` in any case: the labels `aws...`, `secret...` and `bearer`.
const TRIGGERS: [(&[u8], Option<&[u8]>); 6] = [
    (b"0123456789@([+-:_J=~\xEF", None),
    (b"A", Some(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")),
    (b"aA", Some(b"wW")),
    (b"cC", Some(b"rR")),
    (b"bB", Some(b"eE")),
    (b"S", Some(b"GK")),
];
/// Per byte, the [`TRIGGERS`] rows (one bit each) in whose first set it is.
const TRIGGER_FIRST: [u8; 256] = pair_table(&TRIGGERS, true);
/// Per byte, the [`TRIGGERS`] rows in whose second set it is.
const TRIGGER_SECOND: [u8; 256] = pair_table(&TRIGGERS, false);

/// For byte pairs given as rows of (first set, second set; `None`: any byte), the table of
/// one side: per byte, a bit for each row whose set holds it. A pair `(x, y)` matches some row
/// when `first[x] & second[y] != 0`.
const fn pair_table(rows: &[(&[u8], Option<&[u8]>)], first: bool) -> [u8; 256] {
    assert!(rows.len() <= 8, "one bit per row in a u8");
    let mut table = [0u8; 256];
    let mut row = 0;
    while row < rows.len() {
        let (firsts, seconds) = rows[row];
        let mut c = 0;
        while c < 256 {
            let member = match (first, seconds) {
                (true, _) => contains(firsts, c as u8),
                (false, None) => true,
                (false, Some(seconds)) => contains(seconds, c as u8),
            };
            if member {
                table[c] |= 1 << row;
            }
            c += 1;
        }
        row += 1;
    }
    table
}

const fn contains(set: &[u8], c: u8) -> bool {
    let mut k = 0;
    while k < set.len() {
        if set[k] == c {
            return true;
        }
        k += 1;
    }
    false
}

/// The findings of one scan, as they are met.
struct Findings<'a> {
    list: &'a mut Vec<Found>,
    /// Sorted by start, the longer first on a tie: the order `remove_overlaps` wants.
    sorted: bool,
    /// The end of the last e-mail address.
    email_end: usize,
    /// A full-width form was met: the scan stopped.
    wide: bool,
}

impl Findings<'_> {
    fn push(&mut self, kind: Kind, (start, end): (usize, usize)) {
        if let Some(last) = self.list.last() {
            self.sorted &= last.start < start || (last.start == start && last.end >= end);
        }
        self.list.push(Found { kind, start, end });
    }

    /// Pushes the address anchored at `at`, if any; true when there is one (even one left out
    /// for overlapping the previous address).
    fn email(&mut self, b: &[u8], at: usize) -> bool {
        if b[at] == b'@'
            && let Some(span) = secret::url_password(b, at)
        {
            self.push(Kind::Secret, span);
            return true;
        }
        let Some((start, end)) = email::at(b, at) else {
            return false;
        };
        // Addresses may overlap one another, one's domain running into the next one's local
        // part (`a@b.io%c@d.io`): the first wins. Anchors come in order, so do their starts.
        if start >= self.email_end {
            self.email_end = end;
            self.push(Kind::Email, (start, end));
        }
        true
    }
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

/// What a byte between words may start; 0 (nothing) for all others.
const PUNCT: [u8; 256] = {
    let mut table = [0; 256];
    table[b'@' as usize] = ANCHOR;
    // `(at)` / `[at]`; `(` also opens a phone's area code: `(415) 555-2671`.
    table[b'(' as usize] = ANCHOR;
    table[b'[' as usize] = ANCHOR;
    table[b'+' as usize] = PLUS;
    table[b'-' as usize] = DASH;
    table[b':' as usize] = COLON;
    table[b'~' as usize] = TILDE;
    table[0xEF] = WIDE;
    table
};
/// An e-mail address's anchor (see [`email::at`]).
const ANCHOR: u8 = 1;
/// An international phone number.
const PLUS: u8 = 2;
/// A private key's `-----BEGIN`.
const DASH: u8 = 3;
/// An IPv6 address's leading `::`.
const COLON: u8 = 4;
/// The `~` of an Azure client secret.
const TILDE: u8 = 5;
/// The first byte of a full-width form (see [`script`]).
const WIDE: u8 = 6;

/// Could a detector start at the word `b[start..end]`? This is the test every word pays, and
/// it is false for nearly every word of prose, so it is a few table lookups and compares with
/// no calls: a digit, a secret's first two bytes ([`secret::may_start`], one bit of a table of
/// byte pairs), two letters and two digits (an IBAN), or one to four hex digits and a colon (an
/// IPv6 address). The detectors then check everything else.
#[inline]
fn word_may_start(b: &[u8], start: usize, end: usize) -> bool {
    let c = b[start];
    let second = b.get(start + 1).copied().unwrap_or(0);
    let len = end - start;
    // Non-short-circuit `|`: each test is cheap, and one unpredictable branch is cheaper than
    // three.
    c.is_ascii_digit()
        | secret::may_start(c, second)
        | (len >= 4 && b[start + 2].is_ascii_digit() && b[start + 3].is_ascii_digit())
        | (len <= 4 && b.get(end) == Some(&b':') && c.is_ascii_hexdigit())
}

/// The end of the word going on at `i`: the first byte from `i` on that is not in [`WORD`].
///
/// Eight bytes at a time (SWAR: the bytes of a `u64` as lanes), so that a word costs one or two
/// steps whatever its length, and no branch depends on where in the word the end falls.
#[inline]
fn word_end(b: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = b.get(i..i + 8) {
        let lanes = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        let ends = !word_lanes(lanes) & HIGH;
        if ends != 0 {
            // Little-endian: the first byte is the lowest lane.
            return i + (ends.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && WORD[b[i] as usize] {
        i += 1;
    }
    i
}

/// Each lane's lowest bit, and each lane's highest bit.
const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each lane of `x` that holds a [`WORD`] byte (ASCII letter, digit, `_`).
///
/// Range tests on the low seven bits `v` of each lane: `v + (0x80 - lo)` has its high bit set
/// when `v >= lo`, and `v + (0x7f - hi)` when `v > hi`; with `v < 0x80` no lane carries into
/// the next. Lanes with the high bit set (non-ASCII) are never word bytes.
#[inline]
fn word_lanes(x: u64) -> u64 {
    let v = x & !HIGH;
    let at_least = |lo: u8| v + LOW * u64::from(0x80 - lo);
    let above = |hi: u8| v + LOW * u64::from(0x7f - hi);
    let folded = v | (LOW * 0x20); // ASCII upper case onto lower case
    let letter = (folded + LOW * u64::from(0x80 - b'a')) & !(folded + LOW * u64::from(0x7f - b'z'));
    let digit = at_least(b'0') & !above(b'9');
    let underscore = at_least(b'_') & !above(b'_');
    (letter | digit | underscore) & !x & HIGH
}

/// The finding at the word starting at token start `i`; `Err(end)` to skip a near miss up to
/// `end`.
fn detect_at(b: &[u8], i: usize, options: &Options) -> Option<Result<Found, usize>> {
    let hit = |kind, (start, end)| Some(Ok(Found { kind, start, end }));
    let c = b[i];
    if c.is_ascii_digit() {
        if !numbers::may_start(b, i) {
            return None;
        }
        if let Some(span) = secret::telegram(b, i) {
            return hit(Kind::Secret, span);
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
        if let Some(span) = phone::phone(b, i, &options.regions) {
            return hit(Kind::Phone, span);
        }
        return near_miss.map(Err);
    }
    if !c.is_ascii_alphabetic() {
        return None;
    }
    if secret::may_start(c, b.get(i + 1).copied().unwrap_or(0))
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

/// True when no letter, digit or `_` comes right before `i`. A letter of a script written
/// without spaces (Han, kana, Hangul, Thai, ...) is a boundary: see [`script`].
fn token_start(text: &str, i: usize) -> bool {
    match text.as_bytes()[..i].last() {
        None => true,
        Some(&c) if c < 0x80 => !(c.is_ascii_alphanumeric() || c == b'_'),
        Some(_) => char_before(text.as_bytes(), i).is_none_or(boundary_char),
    }
}

/// True when no letter, digit or `_` starts at `end` (any script; unspaced scripts are
/// boundaries, as in [`token_start`]).
fn token_end(b: &[u8], end: usize) -> bool {
    match b.get(end) {
        None => true,
        Some(&c) if c < 0x80 => !(c.is_ascii_alphanumeric() || c == b'_'),
        Some(_) => char_at(b, end).is_none_or(boundary_char),
    }
}

/// Can this non-ASCII character stand right next to a value? (The script test first: it is
/// a few compares, while `is_alphanumeric` looks ideographs up in tables.)
fn boundary_char(c: char) -> bool {
    script::unspaced(c) || !c.is_alphanumeric()
}

/// The character starting at byte `i`, decoded by hand (`None` past the end, at a
/// continuation byte or in a cut sequence): the boundary tests run at every candidate, and
/// `str::from_utf8` on a few bytes costs more than the decoding.
fn char_at(b: &[u8], i: usize) -> Option<char> {
    let lead = *b.get(i)?;
    let (len, bits) = match lead {
        0x00..=0x7f => return Some(char::from(lead)),
        0xc0..=0xdf => (2, u32::from(lead & 0x1f)),
        0xe0..=0xef => (3, u32::from(lead & 0x0f)),
        0xf0..=0xf7 => (4, u32::from(lead & 0x07)),
        _ => return None,
    };
    let tail = b.get(i + 1..i + len)?;
    let mut code = bits;
    for &c in tail {
        if c & 0xc0 != 0x80 {
            return None;
        }
        code = code << 6 | u32::from(c & 0x3f);
    }
    char::from_u32(code)
}

/// The character ending at byte `i`.
fn char_before(b: &[u8], i: usize) -> Option<char> {
    let mut start = i.checked_sub(1)?;
    while start > 0 && i - start < 4 && b[start] & 0xc0 == 0x80 {
        start -= 1;
    }
    char_at(b, start)
}

/// Is the character ending at byte `i` one that a value may follow directly (start of text,
/// ASCII non-word byte, punctuation, a letter of an unspaced script)?
fn boundary_before(b: &[u8], i: usize) -> bool {
    match i.checked_sub(1).map(|k| b[k]) {
        None => true,
        Some(c) if c < 0x80 => !(c.is_ascii_alphanumeric() || c == b'_'),
        Some(_) => char_before(b, i).is_none_or(boundary_char),
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

/// A list of lower-case words to compare [`Word`]s with, and the first bytes they start with:
/// a word whose first byte none of them has (every word of Chinese or Japanese text, for a
/// list of Latin words) is told apart in one lookup. Built at compile time.
struct WordList {
    words: &'static [&'static str],
    first: [bool; 256],
}

impl WordList {
    const fn new(words: &'static [&'static str]) -> WordList {
        let mut first = [false; 256];
        let mut k = 0;
        while k < words.len() {
            first[words[k].as_bytes()[0] as usize] = true;
            k += 1;
        }
        WordList { words, first }
    }
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
        let this = self.as_bytes();
        // The first byte before the whole word: most words of a list differ there.
        words.iter().any(|word| {
            let word = word.as_bytes();
            word.len() == this.len() && word.first() == this.first() && word == this
        })
    }

    fn is_in(&self, list: &WordList) -> bool {
        self.len > 0 && list.first[usize::from(self.bytes[0])] && self.is_any(list.words)
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
    fn unspaced_scripts_are_boundaries_latin_letters_are_not() {
        for (text, kind, value) in [
            (
                "メニューはyuki.sato@docomo.ne.jp、よろしく。",
                Kind::Email,
                "yuki.sato@docomo.ne.jp",
            ),
            ("番号はクール045-41-5136。", Kind::Ssn, "045-41-5136"),
            (
                "電話番号は090-1234-5678です。",
                Kind::Phone,
                "090-1234-5678",
            ),
            ("我的手机是13812345678，谢谢。", Kind::Phone, "13812345678"),
            ("服务器IP是203.0.113.7，请检查。", Kind::Ip, "203.0.113.7"),
            (
                "minjun.kim@naver.com으로 연락 주세요.",
                Kind::Email,
                "minjun.kim@naver.com",
            ),
            (
                "บัญชีDE89370400440532013000ค่ะ",
                Kind::Iban,
                "DE89370400440532013000",
            ),
            (
                "キーはsk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wです",
                Kind::Secret,
                "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w",
            ),
        ] {
            assert_eq!(kinds(text), [(kind, value)], "{text}");
        }
        // Inside Latin, Cyrillic or Greek words a value is still part of the word.
        for text in [
            "é4111111111111111",
            "straße0301234567",
            "номер4111111111111111",
            "αjane@x.io",
        ] {
            assert!(scan(text).is_empty(), "{text}");
        }
    }

    #[test]
    fn full_width_forms_are_found_and_reported_as_written() {
        let text = "連絡先：０３－１２３４－５６７８、メールはｈ．ｔａｎａｋａ＠ｅｘａｍｐｌｅ．ｊｐです。";
        assert_eq!(
            kinds(text),
            [
                (Kind::Phone, "０３－１２３４－５６７８"),
                (Kind::Email, "ｈ．ｔａｎａｋａ＠ｅｘａｍｐｌｅ．ｊｐ"),
            ]
        );
    }

    #[test]
    fn options_choose_regions_and_exemptions() {
        let mut found = Vec::new();
        let german = "Ruf mich unter 030 12345678 an.";
        scan_into(german, &mut found);
        assert_eq!(found.len(), 1);
        let us_only = Options {
            regions: Regions::parse(["US"]).expect("known"),
            ..Options::default()
        };
        scan_with(german, &us_only, &mut found);
        assert!(found.is_empty());
        scan_with("Ruf +49 30 12345678 an.", &us_only, &mut found);
        assert_eq!(found.len(), 1, "international numbers ignore the setting");

        let mut exempt = Options::default();
        assert!(exempt.exempt.insert("private-ip"));
        let text = "hosts 10.0.0.12 and 8.8.4.4";
        scan_with(text, &exempt, &mut found);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].start..found[0].end], "8.8.4.4");
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

    /// Bytes that exercise the SWAR lanes: every class's edges, a trigger or two, non-ASCII.
    fn tricky_bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        const BYTES: &[u8] = b" .,/09:@AZ[_`az{\x7f\x80\xc3\xa9\xffJbeBErRcCwWA-+(";
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                BYTES[(*seed % BYTES.len() as u64) as usize]
            })
            .collect()
    }

    #[test]
    fn word_end_agrees_with_a_byte_at_a_time() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for len in 0..64 {
            let b = tricky_bytes(&mut seed, len);
            for i in 0..=len {
                let mut expected = i;
                while expected < len && WORD[b[expected] as usize] {
                    expected += 1;
                }
                assert_eq!(word_end(&b, i), expected, "{b:?} from {i}");
            }
        }
    }

    #[test]
    fn skip_quiet_stops_at_the_first_trigger() {
        let trigger = |b: &[u8], k: usize| {
            k + 1 < b.len() && TRIGGER_FIRST[b[k] as usize] & TRIGGER_SECOND[b[k + 1] as usize] != 0
        };
        let mut seed = 0x2545_f491_4f6c_dd1d;
        for len in 0..80 {
            let b = tricky_bytes(&mut seed, len);
            for i in 0..=len {
                let stop = skip_quiet(&b, i);
                assert!((i..stop).all(|k| !trigger(&b, k)), "{b:?} from {i}");
                assert!(trigger(&b, stop) || stop + 9 > len, "{b:?} from {i}");
            }
        }
        // Prose has no trigger; each of these is one.
        let prose = b"the committee met on a quiet afternoon to review the proposal. ";
        assert!(skip_quiet(prose, 0) + 9 > prose.len());
        for word in [
            "4", "@", "(", "[", "+", "-", ":", "_", "J", "AK", "aW", "Cr", "be",
        ] {
            let text = format!("the committee met on a {word} afternoon to review it");
            assert_eq!(skip_quiet(text.as_bytes(), 0), 23, "{word}");
        }
    }

    /// Random texts built from pieces that reach every detector's edge cases (half a token,
    /// full-width forms, unspaced scripts, separators): the scan never panics, and every
    /// finding lies on character boundaries, in order, without overlaps.
    #[test]
    fn random_texts_never_panic_and_findings_are_well_formed() {
        const PIECES: &[&str] = &[
            " ",
            "-",
            ".",
            "@",
            "(",
            ")",
            "+",
            ":",
            "~",
            "=",
            "/",
            "_",
            "x",
            "0",
            "00",
            "030",
            "4111",
            "1111",
            "12",
            "345",
            "6789",
            "+49",
            "é",
            "は",
            "電話",
            "ก",
            "한",
            "＠",
            "０３",
            "－",
            "．",
            "ｊｏ",
            "、",
            "«",
            "sk-",
            "glpat-",
            "hf_",
            "xoxb-",
            "SG.",
            "AKIA",
            "eyJ",
            "8Q~",
            "://u:",
            "pw",
            "-----BEGIN PRIVATE KEY-----",
            "DE89",
            "::",
            "fe80",
            "Bearer ",
            "private_key_id\": \"",
            "abcdef0123456789",
            "\u{ff10}",
            "\u{ef}",
        ];
        let mut seed = 0x0123_4567_89ab_cdef_u64;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let mut found = Vec::new();
        let mut exempt = Options::default();
        for name in Exemptions::NAMES {
            assert!(exempt.exempt.insert(name));
        }
        for round in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next(40) {
                text.push_str(PIECES[next(PIECES.len())]);
            }
            let options = if round % 2 == 0 {
                Options::default()
            } else {
                exempt.clone()
            };
            scan_with(&text, &options, &mut found);
            let mut last_end = 0;
            for hit in &found {
                assert!(
                    hit.start < hit.end && hit.start >= last_end,
                    "{text:?}: {found:?}"
                );
                assert!(text.is_char_boundary(hit.start) && text.is_char_boundary(hit.end));
                last_end = hit.end;
            }
        }
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("EMAIL"), None);
    }
}
