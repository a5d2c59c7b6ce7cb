//! IP addresses. IPv4: four decimal octets up to 255 without leading zeros, not part of a
//! longer dotted run and not right after "version" / "v" (a four-part version number looks
//! exactly like an address). IPv6: up to eight groups of 1–4 hex digits with at most one `::`,
//! optionally ending in an embedded IPv4; times (`10:30:00`) and MAC addresses fail the group
//! count. A CIDR suffix or port is not part of the address.

use super::{WordList, token_end, words_before};

const VERSION_WORDS: WordList = WordList::new(&[
    "version", "v", "ver", "release", "build", "firmware", "python", "node", "chrome", "firefox",
    "os", "ios", "android", "sdk", "api", "kernel", "patch",
]);

/// One octet at `j`: its value and end, or `None`.
fn octet(b: &[u8], j: usize) -> Option<(u16, usize)> {
    let mut end = j;
    let mut value = 0u16;
    while end < b.len() && b[end].is_ascii_digit() && end - j < 3 {
        value = value * 10 + u16::from(b[end] - b'0');
        end += 1;
    }
    let len = end - j;
    if len == 0
        || value > 255
        || (len > 1 && b[j] == b'0')
        || b.get(end).is_some_and(u8::is_ascii_digit)
    {
        return None;
    }
    Some((value, end))
}

fn ipv4_at(b: &[u8], start: usize) -> Option<usize> {
    let mut j = start;
    for index in 0..4 {
        if index > 0 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
        j = octet(b, j)?.1;
    }
    Some(j)
}

pub(super) fn ipv4(b: &[u8], start: usize) -> Option<(usize, usize)> {
    if start > 0 && b[start - 1] == b'.' {
        return None;
    }
    let end = ipv4_at(b, start)?;
    if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_alphanumeric)
        || !token_end(b, end)
    {
        return None;
    }
    let [near, far] = words_before(b, start);
    if near.is_in(&VERSION_WORDS)
        || (far.is_in(&VERSION_WORDS) && near.is_any(&["is", "was", "number", "ist", "est", "es"]))
    {
        return None;
    }
    Some((start, end))
}

pub(super) fn ipv6(b: &[u8], start: usize) -> Option<(usize, usize)> {
    // The first colon comes within five characters (a group is at most four hex digits). A
    // colon right before is the middle of a longer run (`a:b:...`), unless a label ends there
    // (`IP:2001:db8::1`).
    let mid_run = start > 0
        && b[start - 1] == b':'
        && (start < 2 || b[start - 2].is_ascii_hexdigit() || b[start - 2] == b':');
    if mid_run || !b[start..b.len().min(start + 6)].contains(&b':') {
        return None;
    }
    let mut j = start;
    let mut groups = 0;
    let mut compressed = false;
    let mut colons = 0;
    // A leading `::`.
    if b.get(j) == Some(&b':') {
        if b.get(j + 1) != Some(&b':') {
            return None;
        }
        compressed = true;
        colons += 2;
        j += 2;
    }
    loop {
        let group_start = j;
        while j < b.len() && b[j].is_ascii_hexdigit() && j - group_start < 5 {
            j += 1;
        }
        let len = j - group_start;
        if len == 0 {
            break;
        }
        if b.get(j) == Some(&b'.') {
            // An embedded IPv4 ends the address (`::ffff:192.0.2.1`); otherwise the dot
            // ends the sentence.
            if let Some(end) = ipv4_at(b, group_start) {
                if groups > 6 || colons == 0 {
                    return None;
                }
                groups += 2;
                j = end;
                break;
            }
        }
        if len > 4 {
            return None;
        }
        groups += 1;
        if b.get(j) == Some(&b':') {
            if b.get(j + 1) == Some(&b':') {
                if compressed {
                    return None;
                }
                compressed = true;
                colons += 2;
                j += 2;
                continue;
            }
            if b.get(j + 1).is_some_and(u8::is_ascii_hexdigit) {
                colons += 1;
                j += 1;
                continue;
            }
        }
        break;
    }
    let valid = if compressed {
        (1..=7).contains(&groups)
    } else {
        groups == 8
    };
    if !valid || colons < 2 {
        return None;
    }
    // `a::b` in code (`std::io`, `Foo::bar`) is caught by the hex test; `dead::beef` would
    // not be, so a compressed address must hold a digit.
    if !b[start..j].iter().any(u8::is_ascii_digit) {
        return None;
    }
    if !token_end(b, j)
        || b.get(j) == Some(&b':') && b.get(j + 1).is_some_and(u8::is_ascii_alphanumeric)
    {
        return None;
    }
    Some((start, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Detector = fn(&[u8], usize) -> Option<(usize, usize)>;

    /// Tries at the start of the last word.
    fn find(text: &str, f: Detector) -> Option<&str> {
        let start = text.rfind(' ').map_or(0, |space| space + 1);
        f(text.as_bytes(), start).map(|(s, e)| &text[s..e])
    }

    #[test]
    fn ipv4_addresses() {
        assert_eq!(find("host 192.168.1.10.", ipv4), Some("192.168.1.10"));
        assert_eq!(find("net 10.0.0.0/8", ipv4), Some("10.0.0.0"));
        assert_eq!(find("at 8.8.8.8:53", ipv4), Some("8.8.8.8"));
        assert_eq!(find("255.255.255.255", ipv4), Some("255.255.255.255"));
        for text in [
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.02.03.04",
            "version 1.2.3.4",
            "v 2.0.0.1",
            "1.2.3.4a",
        ] {
            assert_eq!(find(text, ipv4), None, "{text}");
        }
    }

    #[test]
    fn ipv6_addresses() {
        for address in [
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:db8::8a2e:370:7334",
            "fe80::1",
            "::1",
            "::ffff:192.0.2.128",
            "2001:DB8:0:0:8:800:200C:417A",
        ] {
            assert_eq!(
                find(&format!("addr {address}."), ipv6),
                Some(address),
                "{address}"
            );
        }
        assert_eq!(
            find("IP:2001:db8::8a2e:370:7334", |b, _| ipv6(b, 3)),
            Some("2001:db8::8a2e:370:7334")
        );
        for text in [
            "10:30:00",
            "00:1a:2b:3c:4d:5e",
            "dead::beef",
            "1::2::3",
            "2001:db8:1:2:3:4:5:6:7",
            "12345::1",
            "::",
        ] {
            assert_eq!(find(text, ipv6), None, "{text}");
        }
    }
}
