//! Exemptions: values an operator may declare harmless, each off by default.
//!
//! - `private-ip`: addresses that identify no one outside the network they are used in —
//!   RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), loopback, link-local, CGNAT `100.64/10`,
//!   IPv6 unique-local `fc00::/7`, link-local `fe80::/10` and `::1`.
//! - `documentation-ip`: the ranges reserved for examples (RFC 5737, RFC 3849).
//! - `test-card`: the card numbers that payment providers publish for test mode (Stripe,
//!   Adyen, Braintree, PayPal documentation); they move no money.
//! - `documentation-email`: addresses at the domains reserved for examples (RFC 2606,
//!   RFC 6761): `example.com/.net/.org`, and anything under `.example`, `.test`, `.invalid`,
//!   `.localhost`.
//!
//! Exemptions are applied to findings, after detection, so they cost nothing when unused and
//! cannot change what else is found.

use super::Kind;

/// Which exemptions are on; one bit per entry of [`Exemptions::NAMES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exemptions(u8);

impl Exemptions {
    pub const NAMES: [&'static str; 4] = [
        "private-ip",
        "documentation-ip",
        "test-card",
        "documentation-email",
    ];
    const PRIVATE_IP: u8 = 1;
    const DOCUMENTATION_IP: u8 = 2;
    const TEST_CARD: u8 = 4;
    const DOCUMENTATION_EMAIL: u8 = 8;

    /// Adds the exemption called `name`; false for an unknown name.
    pub fn insert(&mut self, name: &str) -> bool {
        match Self::NAMES.iter().position(|known| *known == name) {
            Some(index) => {
                self.0 |= 1 << index;
                true
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Is this finding's value exempt?
    pub fn covers(&self, kind: Kind, value: &str) -> bool {
        let on = |bit: u8| self.0 & bit != 0;
        match kind {
            Kind::Ip => {
                (on(Self::PRIVATE_IP) && private_ip(value))
                    || (on(Self::DOCUMENTATION_IP) && documentation_ip(value))
            }
            Kind::Card => on(Self::TEST_CARD) && test_card(value),
            Kind::Email => on(Self::DOCUMENTATION_EMAIL) && documentation_email(value),
            _ => false,
        }
    }
}

fn ipv4_octets(value: &str) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut parts = value.split('.');
    for octet in &mut octets {
        *octet = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(octets)
}

/// The first two 16-bit groups of an IPv6 address (enough for every range used here), and
/// whether it is `::1`.
fn ipv6_head(value: &str) -> Option<(u16, u16, bool)> {
    if value == "::1" {
        return Some((0, 0, true));
    }
    let (head, _) = value.split_once("::").unwrap_or((value, ""));
    let mut groups = head.split(':').filter(|group| !group.is_empty());
    let first = groups
        .next()
        .map_or(Some(0), |g| u16::from_str_radix(g, 16).ok())?;
    let second = groups
        .next()
        .map_or(Some(0), |g| u16::from_str_radix(g, 16).ok())?;
    Some((first, second, false))
}

fn private_ip(value: &str) -> bool {
    if let Some([a, b, ..]) = ipv4_octets(value) {
        return a == 10
            || a == 127
            || (a == 172 && (16..=31).contains(&b))
            || (a == 192 && b == 168)
            || (a == 169 && b == 254)
            || (a == 100 && (64..=127).contains(&b));
    }
    match ipv6_head(value) {
        Some((_, _, true)) => true,
        Some((first, _, false)) => first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80,
        None => false,
    }
}

fn documentation_ip(value: &str) -> bool {
    if let Some([a, b, c, _]) = ipv4_octets(value) {
        return matches!((a, b, c), (192, 0, 2) | (198, 51, 100) | (203, 0, 113));
    }
    matches!(ipv6_head(value), Some((0x2001, 0x0db8, false)))
}

/// Published test numbers, digits only.
const TEST_CARDS: &[&str] = &[
    "4242424242424242",
    "4000056655665556",
    "4111111111111111",
    "4012888888881881",
    "4222222222222",
    "4000000000000002",
    "4000000000000077",
    "4000000000003220",
    "5555555555554444",
    "5200828282828210",
    "5105105105105100",
    "2223003122003222",
    "2223000048400011",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "6011000400000000",
    "3056930009020004",
    "36227206271667",
    "30569309025904",
    "38520000023237",
    "3566002020360505",
    "3530111333300000",
    "6200000000000005",
    "6759649826438453",
    "6799990100000000019",
];

fn test_card(value: &str) -> bool {
    let mut digits = [0u8; 19];
    let mut len = 0;
    for c in value.bytes().filter(u8::is_ascii_digit) {
        if len == digits.len() {
            return false;
        }
        digits[len] = c;
        len += 1;
    }
    TEST_CARDS
        .iter()
        .any(|card| card.as_bytes() == &digits[..len])
}

fn documentation_email(value: &str) -> bool {
    let Some((_, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    ["example.com", "example.net", "example.org"]
        .iter()
        .any(|reserved| domain == *reserved || domain.ends_with(&format!(".{reserved}")))
        || [".example", ".test", ".invalid", ".localhost"]
            .iter()
            .any(|tld| domain.ends_with(tld))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Exemptions {
        let mut exempt = Exemptions::default();
        for name in Exemptions::NAMES {
            assert!(exempt.insert(name));
        }
        exempt
    }

    #[test]
    fn nothing_is_exempt_by_default() {
        let none = Exemptions::default();
        assert!(none.is_empty());
        assert!(!none.covers(Kind::Ip, "10.0.0.1"));
        assert!(!none.covers(Kind::Card, "4242 4242 4242 4242"));
        assert!(!none.covers(Kind::Email, "jane@example.com"));
        assert!(!none.clone().insert("private-ips"));
    }

    #[test]
    fn each_exemption_covers_its_values_only() {
        let all = all();
        for ip in [
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.10",
            "127.0.0.1",
            "fd12:3456::1",
            "fe80::1",
            "::1",
            "192.0.2.10",
            "2001:db8::8a2e:370:7334",
        ] {
            assert!(all.covers(Kind::Ip, ip), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "2a02:810d::1", "11.0.0.1"] {
            assert!(!all.covers(Kind::Ip, ip), "{ip}");
        }
        assert!(all.covers(Kind::Card, "4242 4242 4242 4242"));
        assert!(all.covers(Kind::Card, "3782-822463-10005"));
        assert!(!all.covers(Kind::Card, "4539 1488 0343 6467"));
        assert!(all.covers(Kind::Email, "Jane@Example.COM"));
        assert!(all.covers(Kind::Email, "ops@mail.example.org"));
        assert!(all.covers(Kind::Email, "a@host.test"));
        assert!(!all.covers(Kind::Email, "jane@example-corp.com"));
        assert!(!all.covers(Kind::Phone, "+44 20 7946 0958"));
    }
}
