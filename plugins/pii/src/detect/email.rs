//! E-mail addresses, anchored on `@` (or `(at)`, `[at]`): a local part of `[A-Za-z0-9._%+-]` to the left and a
//! domain of at least two labels with an alphabetic top-level label to the right.
//!
//! The local part is deliberately narrower than RFC 5322 (no quotes, `/`, `'`, ...), because
//! in prose those characters belong to the sentence around the address. Code decorators
//! (`@Override`), npm scopes (`@scope/pkg`), versions (`pkg@1.2.3`), `user@localhost` and
//! retina image names (`icon@2x.png`) are not addresses.

/// Top-level labels that are file extensions in practice (`logo@2x.png`).
const FILE_EXTENSIONS: &[&[u8]] = &[
    b"png", b"jpg", b"jpeg", b"gif", b"svg", b"webp", b"bmp", b"ico", b"avif", b"tiff", b"pdf",
];

fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// The address anchored at `at`, if `b[at]` starts an anchor: `@`, or `(at)` / `[at]` as
/// people write to fool harvesters. The scan calls this for every `@`, `(` and `[` it meets
/// (see `scan_into`), so addresses are found in the same pass as everything else.
///
/// No two addresses overlap: an address holds exactly one anchor, its own, because neither
/// the local part nor the domain may contain `@`, `(` or `[`.
#[inline]
pub(super) fn at(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let len = match b[at] {
        b'@' => 1,
        b'(' if b[at + 1..].starts_with(b"at)") => 4,
        b'[' if b[at + 1..].starts_with(b"at]") => 4,
        _ => return None,
    };
    address_around(b, at, len)
}

fn address_around(b: &[u8], at: usize, anchor: usize) -> Option<(usize, usize)> {
    let mut start = at;
    loop {
        if start > 0 && local_char(b[start - 1]) {
            start -= 1;
        } else if start > 1
            && b[start - 1] == b'\''
            && b[start - 2].is_ascii_alphabetic()
            && b.get(start).is_some_and(u8::is_ascii_alphabetic)
        {
            // An apostrophe inside a name: o'connor@example.ie.
            start -= 1;
        } else {
            break;
        }
    }
    // Sentence punctuation before the address is not part of it.
    while start < at && matches!(b[start], b'.' | b'-' | b'+') {
        start += 1;
    }
    if start == at || b[at - 1] == b'.' || at - start > 64 {
        return None;
    }
    // A local part glued to a non-ASCII letter ("josé@...") is not one we can delimit; one
    // after an ideograph or kana is (`メールはjo@example.jp`: those scripts use no spaces).
    if start > 0 && b[start - 1] >= 0x80 && !super::boundary_before(b, start) {
        return None;
    }
    // `scheme://user:password@host` is a URL's credentials, not an address.
    if start > 0 && b[start - 1] == b':' {
        let mut user = start - 1;
        while user > 0 && local_char(b[user - 1]) {
            user -= 1;
        }
        if b[..user].ends_with(b"//") {
            return None;
        }
    }

    let mut end = at + anchor;
    let mut labels = 0;
    let mut last_label;
    loop {
        let label_start = end;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'-') {
            end += 1;
        }
        let label = &b[label_start..end];
        if label.is_empty()
            || label[0] == b'-'
            || label[label.len() - 1] == b'-'
            || label.len() > 63
        {
            return None;
        }
        labels += 1;
        last_label = (label_start, end);
        if end + 1 < b.len() && b[end] == b'.' && b[end + 1].is_ascii_alphanumeric() {
            end += 1;
            continue;
        }
        break;
    }
    let tld = &b[last_label.0..last_label.1];
    let alphabetic = tld.iter().all(u8::is_ascii_alphabetic) || tld.starts_with(b"xn--");
    if labels < 2 || tld.len() < 2 || !alphabetic {
        return None;
    }
    if FILE_EXTENSIONS
        .iter()
        .any(|extension| extension.eq_ignore_ascii_case(tld))
    {
        return None;
    }
    if end < b.len() && (b[end] == b'_' || b[end] == b'@') {
        return None;
    }
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every address in `text`, trying each byte as an anchor the way the scan does.
    fn emails(text: &str) -> Vec<&str> {
        let b = text.as_bytes();
        let mut found = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match at(b, i) {
                Some((start, end)) => {
                    found.push(&text[start..end]);
                    i = end;
                }
                None => i += 1,
            }
        }
        found
    }

    #[test]
    fn addresses_in_prose() {
        assert_eq!(
            emails("write to jane.doe@example.org."),
            ["jane.doe@example.org"]
        );
        assert_eq!(
            emails("<John.O-Neil+news@mail.example.co.uk>, (x_y%z@sub.domain.de)"),
            ["John.O-Neil+news@mail.example.co.uk", "x_y%z@sub.domain.de"]
        );
        assert_eq!(
            emails("mailto:info@firma-gmbh.de?subject=x"),
            ["info@firma-gmbh.de"]
        );
        assert_eq!(emails("\"a@b.io\",\"c@d.fr\""), ["a@b.io", "c@d.fr"]);
        assert_eq!(
            emails("...bob@xn--mnchen-3ya.de"),
            ["bob@xn--mnchen-3ya.de"]
        );
    }

    #[test]
    fn not_addresses() {
        assert!(emails("@Override public void run()").is_empty());
        assert!(emails("npm i @scope/pkg lodash@4.17.21").is_empty());
        assert!(emails("ssh root@localhost").is_empty());
        assert!(emails("icon@2x.png and logo@3x.PNG").is_empty());
        assert!(emails("a.@b.com @ x@-bad.com y@bad-.com").is_empty());
        assert!(emails("josé@example.com").is_empty());
        assert!(emails("f(at) x (at)example.com [at]").is_empty());
        assert!(emails("postgres://app:pw@db.internal:5432/app").is_empty());
        assert_eq!(emails("mailto:jo@x.io"), ["jo@x.io"]);
    }
}
