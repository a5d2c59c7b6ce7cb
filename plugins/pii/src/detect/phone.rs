//! Phone numbers, checked against the real numbering plans (libphonenumber's metadata, reduced
//! to a table by `corpus/phone_plan.py`: see [`super::phone_plan`]).
//!
//! A phone number starts at a digit, `+` or `(` on a token boundary and is a run of digit
//! groups (spaces, dashes, dots, slashes, one pair of parentheses), optionally followed by an
//! extension (`x1833`, `ext. 12`). It is one when:
//!
//! - international (`+CC ...`, `00CC ...`): the country calling code exists and the rest has a
//!   length that code's plan allows; the `+` itself is the evidence, so the leading digits are
//!   not checked (numbers in examples and test data are often not assigned);
//! - national: the digits are a valid number of an enabled region ([`Regions`], from the
//!   `regions` setting), with that region's trunk prefix (`0` in most of Europe and Asia) or,
//!   where numbers are written without one, as they are (NANP, Italy, Spain, ...; mobiles
//!   everywhere: China, India, Brazil); and the groups are laid out as people write numbers,
//!   not as thousands (`6 852 828 117`) or dates. A bare digit run counts unlabelled only when
//!   it can only be a phone number (trunk prefix or a distinctive mobile range, 10+ digits);
//!   otherwise it needs a phone word before it ("tel", "Telefon", "電話", ...).
//!
//! Why a table and not the `phonenumber` crate: the crate builds for wasm32-wasip2, but its
//! metadata is a serialized database plus regular expressions compiled on first use — about
//! 160 ms natively before the first answer, paid on every request by a fresh instance — and it
//! adds ~2.2 MB to the component (measured: a wasm32-wasip2 program parsing and validating
//! seven numbers is 2.29 MB, 67 KB without the crate). The table is ~100 KB of data, needs no
//! initialisation and answers a
//! candidate in a few lookups. It keeps only "which lengths start with these three digits",
//! which accepts a few numbers libphonenumber would refuse on their later digits.

use super::numbers::{clean_left, clean_right, digit};
use super::phone_plan::{CALLING_CODES, CODES, PLANS, Plan, ROWS};
use super::{Word, WordList, hash_sign_before, starts_with_ci, words_before};

/// Words that, right before a number, make it an identifier rather than personal data.
const IDENTIFIER_WORDS: WordList = WordList::new(&[
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
    "bestelling",
    "factuur",
    "zamówienie",
    "faktura",
    "заказ",
    "Заказ",
    "счёт",
    "счет",
    "накладная",
    "encomenda",
    "protocolo",
    "pratica",
    "expediente",
    "dossier",
    "sendungsnummer",
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
]);

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
const PHONE_WORDS: WordList = WordList::new(&[
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
]);

// ---------------------------------------------------------------------------------------------
// Regions

/// The regions whose national formats are recognised: one bit per region of the generated plans.
/// International numbers are checked against every region's plan whatever this holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regions([u64; 4]);

/// The default: the regions with the most users of hosted LLMs, across every continent and
/// script. Smaller regions can be added with the `regions` setting; every region enabled makes
/// a few more digit runs valid somewhere, so "all" costs precision.
pub const DEFAULT_REGIONS: &[&str] = &[
    "AE", "AR", "AT", "AU", "BE", "BR", "CA", "CH", "CL", "CN", "CO", "CZ", "DE", "DK", "EG", "ES",
    "FI", "FR", "GB", "GR", "HK", "ID", "IE", "IL", "IN", "IT", "JP", "KE", "KR", "MX", "MY", "NG",
    "NL", "NO", "NZ", "PH", "PK", "PL", "PT", "RU", "SA", "SE", "SG", "TH", "TR", "TW", "UA", "US",
    "VN", "ZA",
];

impl Regions {
    /// The regions named by their ISO 3166 codes (any case), or every region for `"all"`.
    pub fn parse<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Regions, String> {
        let mut regions = Regions([0; 4]);
        for code in codes {
            if code.eq_ignore_ascii_case("all") {
                for index in 0..CODES.len() {
                    regions = regions.with(index);
                }
                continue;
            }
            let index = CODES
                .iter()
                .position(|known| code.as_bytes().eq_ignore_ascii_case(known))
                .ok_or_else(|| {
                    format!("unknown region `{code}` (ISO 3166 codes such as DE, JP, or \"all\")")
                })?;
            regions = regions.with(index);
        }
        Ok(regions)
    }

    /// [`Regions::parse`] at compile time, for the default: an unknown code fails the build.
    const fn of(codes: &[&str]) -> Regions {
        let mut regions = Regions([0; 4]);
        let mut k = 0;
        while k < codes.len() {
            let code = codes[k].as_bytes();
            let mut index = 0;
            while !(CODES[index][0] == code[0] && CODES[index][1] == code[1]) {
                index += 1; // past the end: a compile error
            }
            regions = regions.with(index);
            k += 1;
        }
        regions
    }

    const fn with(mut self, index: usize) -> Regions {
        self.0[index / 64] |= 1 << (index % 64);
        self
    }

    /// The enabled plans, by walking the set bits (50 of 245 by default).
    fn plans(&self) -> impl Iterator<Item = &'static Plan> + '_ {
        self.0.iter().enumerate().flat_map(|(word, &bits)| {
            let mut bits = bits;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                PLANS.get(word * 64 + bit)
            })
        })
    }
}

const DEFAULT: Regions = Regions::of(DEFAULT_REGIONS);

impl Default for Regions {
    fn default() -> Self {
        DEFAULT
    }
}

/// The plan's bits for a national significant number (ASCII digits): its first three digits'
/// row.
fn plan_bits(plan: &Plan, nsn: &[u8]) -> u32 {
    match nsn {
        [a, b, c, ..] => {
            let two = usize::from(a - b'0') * 10 + usize::from(b - b'0');
            ROWS[usize::from(plan.rows[two])][usize::from(c - b'0')]
        }
        _ => 0,
    }
}

fn length_bit(len: usize) -> u32 {
    if (4..=19).contains(&len) {
        1 << (len - 4)
    } else {
        0
    }
}

/// How sure a plan is that a national digit string is a phone number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    None,
    /// A valid number of some enabled region.
    Valid,
    /// Valid, and in a form only phone numbers take: after a trunk prefix, or a mobile range
    /// that no fixed line shares.
    Distinct,
}

fn national_fit(digits: &[u8], regions: &Regions, parenthesised: bool) -> Fit {
    let mut best = Fit::None;
    for plan in regions.plans() {
        if !plan.trunk.is_empty() && digits.starts_with(plan.trunk) {
            let nsn = &digits[plan.trunk.len()..];
            if plan_bits(plan, nsn) & length_bit(nsn.len()) != 0 {
                return Fit::Distinct;
            }
        }
        // Without the trunk prefix only where the region writes its numbers so (`(201)
        // 555-0123`, Chinese mobiles), or after a parenthesised area code: `(11) 3456-7890`.
        // `30 1234567` is a Berlin number only with its 0.
        let bits = plan_bits(plan, digits);
        let len = length_bit(digits.len());
        if plan.bare & 2 != 0 && bits & (len << 16) != 0 {
            return Fit::Distinct;
        }
        if (plan.bare & 1 != 0 || parenthesised) && bits & len != 0 {
            best = Fit::Valid;
        }
    }
    best
}

/// Does some plan with this calling code allow the rest as a national number? Only lengths
/// are checked (see the module docs).
fn international_fit(digits: &[u8]) -> bool {
    (1..=3).any(|code_len| {
        let Some((code, rest)) = digits.split_at_checked(code_len) else {
            return false;
        };
        let code = code
            .iter()
            .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
        let lengths = u32::from(CALLING_CODES[usize::from(code)]);
        if lengths == 0 {
            return false;
        }
        // "+49 0 30 ...": a trunk written where it is not dialled.
        let rest_no_trunk = rest.strip_prefix(b"0").unwrap_or(rest);
        lengths & (length_bit(rest.len()) | length_bit(rest_no_trunk.len())) != 0
    })
}

// ---------------------------------------------------------------------------------------------
// The detector

const MAX_GROUPS: usize = 8;
const MAX_DIGITS: usize = 20;

/// The digit groups of a phone-like run: lengths, the offset each ends at, and the separator
/// before each (`)` for a closing parenthesis).
struct Run {
    lens: [usize; MAX_GROUPS],
    ends: [usize; MAX_GROUPS],
    seps: [u8; MAX_GROUPS],
    groups: usize,
    /// Index of the group inside `(...)`, if any.
    paren_group: Option<usize>,
    digits: [u8; MAX_DIGITS],
}

fn read_run(b: &[u8], mut j: usize) -> Option<Run> {
    let mut run = Run {
        lens: [0; MAX_GROUPS],
        ends: [0; MAX_GROUPS],
        seps: [0; MAX_GROUPS],
        groups: 0,
        paren_group: None,
        digits: [0; MAX_DIGITS],
    };
    let mut count = 0;
    let mut paren = 0; // 0: none yet, 1: open, 2: closed
    let mut after_separator = true;
    loop {
        match b.get(j) {
            Some(c) if c.is_ascii_digit() => {
                let from = j;
                while digit(b, j) {
                    j += 1;
                }
                if run.groups == MAX_GROUPS || count + (j - from) > MAX_DIGITS {
                    // Longer than any phone number: the caller cuts or refuses it.
                    break;
                }
                run.digits[count..count + (j - from)].copy_from_slice(&b[from..j]);
                count += j - from;
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

/// An extension right after a number: `x1833`, ` x 12`, `ext. 4`, `ext 4567`, `#12`; its end.
fn extension(b: &[u8], end: usize) -> Option<usize> {
    let mut j = end;
    if b.get(j) == Some(&b' ') {
        j += 1;
    }
    let marker = if starts_with_ci(b, j, "ext.") {
        4
    } else if starts_with_ci(b, j, "ext") {
        3
    } else if matches!(b.get(j), Some(b'x' | b'X' | b'#')) {
        1
    } else {
        return None;
    };
    j += marker;
    if b.get(j) == Some(&b' ') {
        j += 1;
    }
    let from = j;
    while digit(b, j) && j - from < 7 {
        j += 1;
    }
    ((1..=6).contains(&(j - from)) && clean_right(b, j)).then_some(j)
}

/// A phone number at `start` (a digit, `+` or `(`), checked against `regions`: see the module
/// docs. A run that goes on past a plausible international number ("+44 20 7946 0958 4111 ...")
/// is cut at a space.
pub(super) fn phone(b: &[u8], start: usize, regions: &Regions) -> Option<(usize, usize)> {
    if !clean_left(b, start) || (start > 0 && matches!(b[start - 1], b'+' | b'$')) {
        return None;
    }
    let plus = b[start] == b'+';
    let first = start + usize::from(plus) + usize::from(b[start] == b'(');
    if plus && !matches!(b.get(first), Some(b'1'..=b'9')) {
        return None;
    }
    let run = read_run(b, start + usize::from(plus))?;
    // Most numbers in prose are short ("2024", "12.5"): no phone, and no need to read the
    // words before them.
    let total: usize = run.lens[..run.groups].iter().sum();
    if total < 7 || (run.groups == 1 && total < 8) {
        return None;
    }
    let zero_zero = !plus && b[first] == b'0' && b.get(first + 1) == Some(&b'0');
    let international = plus || zero_zero;
    let accept = |labelled: bool| {
        let context = Context {
            run: &run,
            regions,
            plus,
            zero_zero,
            labelled,
        };
        (1..=run.groups).rev().find_map(|take| {
            let end = run.ends[take - 1];
            // A run going on past a plausible number is cut at a space, for international
            // numbers only: a national-looking prefix of a longer run is some other number.
            let end = if take == run.groups {
                match extension(b, end) {
                    Some(end) => end,
                    // `0-8044-2957-X`: an identifier goes on.
                    None if b.get(end) == Some(&b'-')
                        && b.get(end + 1).is_some_and(u8::is_ascii_alphanumeric) =>
                    {
                        return None;
                    }
                    None if clean_right(b, end) => end,
                    None => return None,
                }
            } else if run.seps[take] == b' ' && international {
                end
            } else {
                return None;
            };
            context.accepts(take).then_some(end)
        })
    };
    let unlabelled = accept(false);
    if plus {
        return unlabelled.map(|end| (start, end));
    }
    // The tail of a longer number (`5 917 090 587`), whose own start was refused.
    if start >= 2 && b[start - 1] == b' ' && b[start - 2].is_ascii_digit() {
        return None;
    }
    let [near, far] = words_before(b, start);
    let identifier = near.is_in(&IDENTIFIER_WORDS)
        || identifier_compound(&near)
        || (far.is_in(&IDENTIFIER_WORDS) && !near.is_in(&PHONE_WORDS))
        || hash_sign_before(b, start)
        || cjk_word_before(b, start, &CJK_IDENTIFIER_WORDS);
    if identifier {
        return None;
    }
    let end = match unlabelled {
        Some(end) => end,
        None if labelled(b, start, &near, &far) => accept(true)?,
        None => return None,
    };
    Some((start, end))
}

fn labelled(b: &[u8], start: usize, near: &Word, far: &Word) -> bool {
    near.is_in(&PHONE_WORDS)
        || far.is_in(&PHONE_WORDS)
        || near.starts_with_any(&["tel", "phon"])
        || cjk_word_before(b, start, &CJK_PHONE_WORDS)
}

/// Phone words of languages written without spaces, right before the number.
const CJK_PHONE_WORDS: [&str; 14] = [
    "電話",
    "电话",
    "電話番号",
    "电话号码",
    "電話號碼",
    "携帯",
    "手机",
    "手機",
    "전화",
    "전화번호",
    "휴대폰",
    "연락처",
    "โทร",
    "เบอร์",
];

/// Identifier words of those languages: order, invoice, tracking, parcel numbers.
const CJK_IDENTIFIER_WORDS: [&str; 14] = [
    "注文",
    "注文番号",
    "订单",
    "订单号",
    "訂單",
    "訂單編號",
    "单号",
    "請求書",
    "发票",
    "주문",
    "주문번호",
    "송장",
    "คำสั่งซื้อ",
    "เลขพัสดุ",
];

/// Does one of `words` end right before `start` (after an optional colon, particle or
/// space)? `電話：0312345678`, `电话13812345678`, `注文番号7760-1466`.
fn cjk_word_before(b: &[u8], start: usize, words: &[&str]) -> bool {
    if start == 0 || b[start - 1] < 0x80 && !matches!(b[start - 1], b' ' | b':' | b'-') {
        return false;
    }
    let mut j = start;
    while let Some(rest) = [" ", ":", "：", "は", "是", "为", "為", "는", "은", "-"]
        .iter()
        .find_map(|sep| b[..j].strip_suffix(sep.as_bytes()))
    {
        j = rest.len();
    }
    words.iter().any(|word| b[..j].ends_with(word.as_bytes()))
}

struct Context<'r> {
    run: &'r Run,
    regions: &'r Regions,
    plus: bool,
    zero_zero: bool,
    labelled: bool,
}

impl Context<'_> {
    /// Do the first `take` groups of the run form a phone number?
    fn accepts(&self, take: usize) -> bool {
        let run = self.run;
        let lens = &run.lens[..take];
        // seps[k] is the separator before group k.
        let seps = &run.seps[1..take];
        let count: usize = lens.iter().sum();
        let digits = &run.digits[..count];
        let paren = run.paren_group.filter(|&group| group < take);
        if self.plus || self.zero_zero {
            let skip = if self.plus { 0 } else { 2 };
            // "+44 (0) 20 ...": the national trunk digit in brackets is not dialled.
            let trunk = paren
                .filter(|&group| lens[group] == 1)
                .map_or(0, |group| lens[..group].iter().sum::<usize>());
            let mut number = [0u8; MAX_DIGITS];
            let mut len = 0;
            for (k, &d) in digits.iter().enumerate().skip(skip) {
                if trunk != 0 && k == trunk {
                    continue;
                }
                number[len] = d;
                len += 1;
            }
            return (self.plus || take > 1 || self.labelled)
                && (8..=15).contains(&len)
                && number[0] != b'0'
                && international_fit(&number[..len]);
        }
        if looks_like_date(lens, seps) {
            return false;
        }
        let first = digits[0];
        // An area code in parentheses, first or after a one-digit trunk: `(030) 123456`,
        // `8 (912) 345-67-89`, `1 (800) 555-0199`.
        let paren_ok = match paren {
            None | Some(0) => true,
            Some(1) => lens[0] == 1 && matches!(first, b'0' | b'1' | b'8'),
            Some(_) => false,
        };
        // The plans are consulted last: every layout test is cheaper.
        let fit = || national_fit(digits, self.regions, paren.is_some());
        if take == 1 {
            return if self.labelled {
                (8..=15).contains(&count) && ((9..=12).contains(&count) || fit() != Fit::None)
            } else {
                // Ten digits from `1`: a Unix time in seconds (until 2033), not a mobile.
                count >= 10 && !(count == 10 && first == b'1') && fit() == Fit::Distinct
            };
        }
        let consistent = seps.iter().all(|&s| s == seps[0]);
        // Mixed separators only in the `(...)`, trunk or dash-and-space styles, never `1.2-3`.
        let mixed_ok =
            consistent || paren.is_some() || seps.iter().all(|&s| s == b' ' || s == b'-');
        if !(mixed_ok || self.labelled) || !paren_ok {
            return false;
        }
        // Groups of one digit only for a leading trunk or NANP `1`: `1-800-555-0199`.
        if lens[1..].iter().any(|&len| len < 2)
            || (lens[0] == 1 && !matches!(first, b'0' | b'1' | b'8'))
        {
            return false;
        }
        // Layouts that belong to other numbers: the SSN's `3-2-4`; a slash after anything but
        // a trunk-prefixed area code (`089/12345678`, not `2024/000987`); pairs other than the
        // French five (`04 15 23 31 42 48` is a lottery draw); dots other than French pairs,
        // NANP `415.555.2671` or after a trunk prefix (`960.600.089` is a sum, `50.98.228.201`
        // an address).
        let pairs = lens.iter().all(|&len| len == 2);
        let slash = seps.contains(&b'/');
        let dots = seps.contains(&b'.');
        if (lens == [3, 2, 4] && !self.labelled)
            || (slash && (first != b'0' || seps.len() > 1))
            || (pairs && lens.len() != 5)
            || (dots && !(pairs || lens == [3, 3, 4] || (first == b'0' && lens[0] >= 2)))
        {
            return false;
        }
        // Grouped like thousands (`6 852 828 117`, `12.500.000`, `123 456 789`): a phone
        // number only when labelled, or, with a first group of three, when only a mobile can
        // start so (Spanish `612 345 678`).
        let thousands = lens[0] <= 3
            && lens[1..].iter().all(|&len| len == 3)
            && consistent
            && matches!(seps[0], b' ' | b'.');
        if thousands && !self.labelled && (lens[0] < 3 || fit() != Fit::Distinct) {
            return false;
        }
        // The NANP shapes are written so consistently that they stand on their own, even for
        // numbers not yet assigned (`(555) 555-0100`, the range used in fiction).
        let nanp = match lens {
            [3, 3, 4] => first >= b'2' && (consistent || paren == Some(0)),
            [1, 3, 3, 4] => first == b'1' && consistent,
            _ => false,
        };
        if nanp && self.nanp() {
            return true;
        }
        if self.labelled && lens == [3, 4] && seps[0] == b'-' {
            return true;
        }
        // Eight digits (Hong Kong, Singapore, Danish mobiles: `9123 4567`) only as a mobile
        // written with spaces; `4931-6390` is an order number as often as not.
        // After a phone word, any plausible length will do, as for a bare run of digits.
        match count {
            0..=7 => self.labelled && fit() != Fit::None,
            8 if !self.labelled => seps.iter().all(|&s| s == b' ') && fit() == Fit::Distinct,
            9..=12 if self.labelled => true,
            _ => fit() != Fit::None,
        }
    }

    /// Is a region of the North American Numbering Plan enabled?
    fn nanp(&self) -> bool {
        const NANP: Regions = Regions::of(&["US", "CA"]);
        self.regions.0.iter().zip(NANP.0).any(|(a, b)| a & b != 0)
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

    fn span(text: &str) -> Option<&str> {
        let start = text.find(|c: char| c.is_ascii_digit() || c == '+' || c == '(')?;
        phone(text.as_bytes(), start, &Regions::default()).map(|(s, e)| &text[s..e])
    }

    #[test]
    fn national_formats_by_the_plans_without_a_phone_word() {
        for number in [
            "030 12345678",
            "01701234567",
            "01 53 79 88 72",
            "312 345 6789",
            "0465-47-7995",
            "(11) 96123-4567",
            "98765 43210",
            "8 (912) 345-67-89",
            "415-555-2671 x1833",
            "001-662-511-0542x1833",
            "010-2000-0000",
            "13812345678",
        ] {
            let text = format!("Reach me at {number} after six.");
            assert_eq!(span(&text), Some(number), "{number}");
        }
    }

    #[test]
    fn numbers_of_other_kinds_are_not_phones() {
        for text in [
            "Выручка 6 852 828 117 рублей",
            "Timestamp 1733400000 in the logs",
            "Umsatz 960.600.089 Euro",
            "Bestellung 4931-6390 folgt",
            "Los números ganadores son 04 15 23 31 42 48.",
            "Invalid SSN 666-45-6789",
            "Part number 0-8044-2957-X.",
            "pratica 2024/000987",
            "server 50.98.228.201",
        ] {
            assert_eq!(span(text), None, "{text}");
        }
        // Not valid in any enabled region: a run of a plausible length is not enough.
        let us_only = Regions::parse(["US"]).expect("known");
        let text = "Ruf 030 12345678 an";
        assert_eq!(phone(text.as_bytes(), 4, &us_only), None);
    }

    #[test]
    fn default_regions_are_known() {
        for code in DEFAULT_REGIONS {
            assert!(Regions::parse([*code]).is_ok(), "{code}");
        }
        assert!(Regions::parse(["XX"]).is_err());
        assert!(Regions::parse(["all"]).is_ok());
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
            assert_eq!(span(&text), Some(number), "{number}");
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
            assert_eq!(span(&text), Some(number), "{number}");
        }
        assert_eq!(span("Tel: 4155552671"), Some("4155552671"));
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
            assert_eq!(span(text), None, "{text}");
        }
    }
}
