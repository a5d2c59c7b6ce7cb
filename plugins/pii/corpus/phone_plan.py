#!/usr/bin/env python3
"""Writes src/detect/phone_plan.rs, the numbering plans the phone detector checks numbers against.

    python3 -m pip install phonenumbers==9.0.43
    python3 plugins/pii/corpus/phone_plan.py   # rewrites plugins/pii/src/detect/phone_plan.rs

The source is libphonenumber's metadata (PhoneNumberMetadata.xml), as shipped in the
`phonenumbers` Python package: per region, its country calling code, its national (trunk)
prefix and one regular expression per number type (fixed line, mobile, toll free, ...). The
plugin cannot afford those expressions at run time (a fresh wasm instance per request would
compile hundreds of them), so this script reduces them to what a detector needs, exactly:
for every national significant number's first three digits, which lengths a valid number
with those digits can have. Each regular expression is walked symbolically (the metadata
uses only digits, classes, groups, alternation and bounded repetition), no sampling.

Per region and three-digit prefix, one u32: bit `len - 4` for lengths 4..=19 of any number
type, bit `16 + len - 4` when a *mobile* number of that length exists there and no fixed line
does (so a digit run in that shape is a phone number in practice, not just in theory). Prefix
rows are shared between regions. Per region also: whether its fixed lines and its mobiles are
written nationally without the trunk prefix (`(201) 555-0123`, `131 2345 6789` in China),
read from how libphonenumber formats the region's example numbers.
"""

import os
import re._parser as sre

import phonenumbers
from phonenumbers import PhoneMetadata

HEAD = 3
TYPES = [
    "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number",
    "voip", "pager", "uan", "voicemail",
]


def summary(pattern):
    """dict: head (first <= HEAD digits) -> set of lengths of the matches with that head."""
    return seq(sre.parse(pattern))


def union(a, b):
    out = {h: set(ls) for h, ls in a.items()}
    for h, ls in b.items():
        out.setdefault(h, set()).update(ls)
    return out


def concat(a, b):
    out = {}
    b_lengths = set()
    for ls in b.values():
        b_lengths |= ls
    for h, ls in a.items():
        if len(h) >= HEAD:
            target = out.setdefault(h, set())
            for x in ls:
                target.update(x + y for y in b_lengths)
        else:
            # A match shorter than HEAD is its whole head: len(h) is its length.
            for h2, ls2 in b.items():
                head = (h + h2)[:HEAD]
                target = out.setdefault(head, set())
                target.update(len(h) + y for y in ls2)
    return out


EMPTY = {"": {0}}


def digits_of(items):
    out = set()
    for op, av in items:
        if op == sre.LITERAL:
            out.add(chr(av))
        elif op == sre.RANGE:
            out.update(chr(c) for c in range(av[0], av[1] + 1))
        elif op == sre.CATEGORY and av == sre.CATEGORY_DIGIT:
            out.update("0123456789")
        else:
            raise ValueError((op, av))
    return out


def node(op, av):
    if op == sre.LITERAL:
        return {chr(av): {1}}
    if op == sre.IN:
        return {d: {1} for d in digits_of(av)}
    if op == sre.SUBPATTERN:
        return seq(av[-1])
    if op == sre.BRANCH:
        out = {}
        for branch in av[1]:
            out = union(out, seq(branch))
        return out
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, sub = av
        if high == sre.MAXREPEAT:
            raise ValueError("unbounded repetition")
        inner = seq(sub)
        power = EMPTY
        out = {}
        for count in range(high + 1):
            if count >= low:
                out = union(out, power)
            power = concat(power, inner)
        return out
    raise ValueError((op, av))


def seq(items):
    out = EMPTY
    for op, av in items:
        out = concat(out, node(op, av))
    return out


def bits_of(pattern):
    words = {}
    for head, lengths in summary(pattern).items():
        for length in lengths:
            if not 4 <= length <= 19:
                continue
            for tail in expand(head):
                words[tail] = words.get(tail, 0) | 1 << (length - 4)
    return words


def region_rows(region):
    meta = PhoneMetadata.metadata_for_region(region)
    words = {}
    for kind in TYPES:
        desc = getattr(meta, kind)
        if desc is None or not desc.national_number_pattern:
            continue
        for head, bits in bits_of(desc.national_number_pattern).items():
            words[head] = words.get(head, 0) | bits
    mobile = bits_of(meta.mobile.national_number_pattern) if meta.mobile and meta.mobile.national_number_pattern else {}
    fixed = bits_of(meta.fixed_line.national_number_pattern) if meta.fixed_line and meta.fixed_line.national_number_pattern else {}
    for head, bits in mobile.items():
        only = bits & ~fixed.get(head, 0)
        words[head] = words.get(head, 0) | (only << 16)
    return meta, words


# Regions whose mobiles are mostly written without the trunk prefix although libphonenumber's
# national format shows it: Indian mobiles are quoted as ten digits (`98765 43210`).
BARE_MOBILES = {"IN"}


def written_bare(region, kind):
    """Does libphonenumber write the region's example number of this type without its trunk?"""
    if kind == phonenumbers.PhoneNumberType.MOBILE and region in BARE_MOBILES:
        return True
    meta = PhoneMetadata.metadata_for_region(region)
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None or not meta.national_prefix:
        return True
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    return not national.lstrip("(").startswith(meta.national_prefix)


def expand(head):
    if len(head) >= HEAD:
        return [head]
    return [head + "".join(rest) for rest in product_digits(HEAD - len(head))]


def product_digits(n):
    if n == 0:
        return [""]
    return [d + rest for d in "0123456789" for rest in product_digits(n - 1)]


def main():
    regions = sorted(r for r in phonenumbers.SUPPORTED_REGIONS if r != "001")
    rows = {(0,) * 10: 0}
    row_list = [(0,) * 10]
    entries = []
    for region in regions:
        meta, words = region_rows(region)
        index = []
        for first_two in range(100):
            row = tuple(words.get("%02d%d" % (first_two, d), 0) for d in range(10))
            if row not in rows:
                rows[row] = len(row_list)
                row_list.append(row)
            index.append(rows[row])
        possible = 0
        for length in meta.general_desc.possible_length:
            if 4 <= length <= 19:
                possible |= 1 << (length - 4)
        prefix = meta.national_prefix or ""
        assert prefix.isdigit() or prefix == "", (region, prefix)
        bare = int(written_bare(region, phonenumbers.PhoneNumberType.FIXED_LINE))
        bare |= int(written_bare(region, phonenumbers.PhoneNumberType.MOBILE)) << 1
        entries.append((region, meta.country_code, prefix, possible, bare, index))
    assert len(row_list) < 65536

    out = [
        "//! Numbering plans of every region in libphonenumber's metadata, reduced to what the phone",
        "//! detector checks. Generated by `corpus/phone_plan.py` from `phonenumbers` "
        + phonenumbers.__version__ + "; do not edit.",
        "//!",
        "//! Per region ([`CODES`] has their ISO codes in the same order): its national (trunk) prefix",
        "//! and, per first two digits of a national significant number, an",
        "//! index into [`ROWS`]. A row holds, per third digit, bit `len - 4` when a valid number of",
        "//! that length starts so, and bit `16 + len - 4` when a mobile number does and no fixed line.",
        "//! `bare`: bit 0 when fixed lines, bit 1 when mobiles are written without the trunk prefix.",
        "",
        "pub(super) struct Plan {",
        "    pub trunk: &'static [u8],",
        "    pub bare: u8,",
        "    pub rows: [u16; 100],",
        "}",
        "",
        "#[rustfmt::skip]",
        "pub(super) static ROWS: [[u32; 10]; %d] = [" % len(row_list),
    ]
    for row in row_list:
        out.append("    [%s]," % ", ".join("0x%x" % v for v in row))
    out.append("];")
    out.append("")
    out.append("#[rustfmt::skip]")
    out.append("pub(super) static PLANS: [Plan; %d] = [" % len(entries))
    for region, code, prefix, possible, bare, index in entries:
        out.append(
            '    Plan { trunk: b"%s", bare: %d, rows: [%s] }, // %s +%d'
            % (prefix, bare, ", ".join(map(str, index)), region, code)
        )
    out.append("];")
    out.append("")
    calling = {}
    for _, code, _, possible, _, _ in entries:
        calling[code] = calling.get(code, 0) | possible
    out.append("/// Per country calling code (1 to 999; codes are prefix-free, so a value names one code),")
    out.append("/// the national lengths of all its regions (bit `len - 4`), 0 where no code is assigned.")
    out.append("#[rustfmt::skip]")
    out.append("pub(super) static CALLING_CODES: [u16; 1000] = [")
    table = [calling.get(code, 0) for code in range(1000)]
    for k in range(0, 1000, 20):
        out.append("    " + " ".join("0x%x," % v for v in table[k:k + 20]))
    out.append("];")
    out.append("")
    out.append("/// The regions' codes, in the order of [`PLANS`], for `const` evaluation.")
    out.append("#[rustfmt::skip]")
    out.append("pub(super) const CODES: [[u8; 2]; %d] = [" % len(entries))
    for k in range(0, len(entries), 12):
        out.append("    " + " ".join('*b"%s",' % e[0] for e in entries[k:k + 12]))
    out.append("];")
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "src", "detect", "phone_plan.rs")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("%d regions, %d distinct rows -> %s" % (len(entries), len(row_list), os.path.normpath(path)))


if __name__ == "__main__":
    main()
