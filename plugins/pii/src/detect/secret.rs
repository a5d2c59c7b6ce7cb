//! Credentials: provider API keys by their published prefixes and lengths (OpenAI `sk-`,
//! `sk-proj-`, Anthropic `sk-ant-`, Google `AIza`, AWS access key ids, GitHub tokens, Stripe
//! live/test keys), JSON Web Tokens, private-key PEM blocks, `Bearer` tokens, and AWS secret
//! access keys when a label names them (40 base64 characters are otherwise indistinguishable
//! from any hash).
//!
//! The finding is the credential itself: `Bearer ` and `aws_secret_access_key=` stay, so a
//! redacted prompt still reads as what it was.

use super::starts_with_ci;

fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn run(b: &[u8], from: usize, allowed: fn(u8) -> bool) -> usize {
    let mut end = from;
    while end < b.len() && allowed(b[end]) {
        end += 1;
    }
    end
}

fn has_digit_and_letter(bytes: &[u8]) -> bool {
    bytes.iter().any(u8::is_ascii_digit) && bytes.iter().any(u8::is_ascii_alphabetic)
}

/// Can a credential (or its label) start at `i`? Decided on the first three bytes, so that
/// the scan rejects nearly every word here and calls [`at`] only for real candidates: each
/// branch is the union of what the detectors [`at`] dispatches to require (`sk-`/`sk_`,
/// `rk_`, `AKIA`-style and `AIza` prefixes, `gh?_` and `github_`, `eyJ`, and the labels
/// `aws...`, `secret...` and `bearer`, in any case).
#[inline]
pub(super) fn may_start(b: &[u8], i: usize) -> bool {
    let byte = |k: usize| b.get(i + k).copied().unwrap_or(0);
    // ASCII case folding; a non-letter may fold onto a letter, which only lets a few more
    // words through to the exact checks.
    let label = |word: &[u8; 3]| (0..3).all(|k| byte(k) | 0x20 == word[k]);
    match byte(0) {
        b's' => byte(1) == b'k' || label(b"sec"),
        b'S' => label(b"sec"),
        b'r' => byte(1) == b'k',
        b'A' => byte(1).is_ascii_uppercase() || label(b"aws"),
        b'a' => label(b"aws"),
        b'g' => byte(1) == b'h' || b[i..].starts_with(b"github_"),
        b'B' | b'b' => label(b"bea"),
        b'e' => byte(1) == b'y' && byte(2) == b'J',
        _ => false,
    }
}

/// A credential starting with a letter at `i`.
pub(super) fn at(b: &[u8], i: usize) -> Option<(usize, usize)> {
    match b[i] {
        b's' | b'r' => prefixed_key(b, i).or_else(|| labelled_aws_secret(b, i)),
        b'A' => aws_key_id(b, i)
            .or_else(|| google_key(b, i))
            .or_else(|| labelled_aws_secret(b, i)),
        b'a' | b'S' => labelled_aws_secret(b, i),
        b'g' => github_token(b, i),
        b'B' | b'b' => bearer(b, i),
        b'e' => jwt(b, i),
        _ => None,
    }
}

/// `sk-...`, `sk-proj-...`, `sk-ant-...` (20+ characters after `sk-`, letters and digits
/// mixed) and Stripe `sk_live_`/`sk_test_`/`rk_live_` keys.
fn prefixed_key(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let body_start = if b[i..].starts_with(b"sk-") {
        i + 3
    } else if [b"sk_live_", b"sk_test_", b"rk_live_", b"rk_test_"]
        .iter()
        .any(|prefix| b[i..].starts_with(*prefix))
    {
        i + 8
    } else {
        return None;
    };
    let end = run(b, body_start, key_char);
    let body = &b[body_start..end];
    (body.len() >= 20 && has_digit_and_letter(body)).then_some((i, end))
}

/// AWS access key ids: a four-letter type prefix and 16 upper-case letters or digits.
fn aws_key_id(b: &[u8], i: usize) -> Option<(usize, usize)> {
    const PREFIXES: [&[u8; 4]; 8] = [
        b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"AGPA", b"AIDA", b"AROA", b"ANPA",
    ];
    if !PREFIXES.iter().any(|prefix| b[i..].starts_with(*prefix)) {
        return None;
    }
    let end = run(b, i + 4, |c| c.is_ascii_uppercase() || c.is_ascii_digit());
    (end - i == 20 && !b.get(end).is_some_and(|&c| key_char(c))).then_some((i, end))
}

/// Google API keys: `AIza` and 35 more characters.
fn google_key(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if !b[i..].starts_with(b"AIza") {
        return None;
    }
    let end = run(b, i + 4, key_char);
    (end - i == 39).then_some((i, end))
}

/// GitHub tokens: `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` (36 characters, 30+ accepted) and
/// fine-grained `github_pat_` tokens.
fn github_token(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if b[i..].starts_with(b"github_pat_") {
        let end = run(b, i + 11, |c| c.is_ascii_alphanumeric() || c == b'_');
        return (end - i - 11 >= 22).then_some((i, end));
    }
    let classic = b.len() >= i + 4
        && b[i + 1] == b'h'
        && matches!(b[i + 2], b'p' | b'o' | b'u' | b's' | b'r')
        && b[i + 3] == b'_';
    if !classic {
        return None;
    }
    let end = run(b, i + 4, |c| c.is_ascii_alphanumeric());
    ((30..=255).contains(&(end - i - 4)) && !b.get(end).is_some_and(|&c| key_char(c)))
        .then_some((i, end))
}

/// `Bearer <token>` (any case): the token, when it is 16+ characters with a digit.
fn bearer(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if !starts_with_ci(b, i, "bearer") {
        return None;
    }
    let mut j = i + 6;
    let spaces = j;
    while b.get(j) == Some(&b' ') {
        j += 1;
    }
    if j == spaces {
        return None;
    }
    let token_char =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
    let mut end = run(b, j, token_char);
    while b.get(end) == Some(&b'=') {
        end += 1;
    }
    let token = &b[j..end];
    (token.len() >= 16 && token.iter().any(u8::is_ascii_digit)).then_some((j, end))
}

/// A JSON Web Token: three base64url parts, the first two starting `eyJ` (`{"`).
fn jwt(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let mut j = i;
    for part in 0..3 {
        if part < 2 && !b[j..].starts_with(b"eyJ") {
            return None;
        }
        let end = run(b, j, b64);
        if end - j < 10 {
            return None;
        }
        j = end;
        if part < 2 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    Some((i, j))
}

/// An AWS secret access key after a label naming it: `aws_secret_access_key = "..."`,
/// `"SecretAccessKey": "..."`, "my AWS secret key is ...". The finding is the key only.
fn labelled_aws_secret(b: &[u8], i: usize) -> Option<(usize, usize)> {
    const LABELS: [&str; 8] = [
        "aws_secret_access_key",
        "aws-secret-access-key",
        "secret_access_key",
        "secretaccesskey",
        "aws_secret_key",
        "aws secret access key",
        "aws secret key",
        "secret access key",
    ];
    if !(starts_with_ci(b, i, "aws") || starts_with_ci(b, i, "secret")) {
        return None;
    }
    let label = LABELS.iter().find(|label| starts_with_ci(b, i, label))?;
    let mut j = i + label.len();
    let limit = j + 8;
    while j < b.len()
        && j < limit
        && matches!(b[j], b' ' | b'\t' | b'"' | b'\'' | b'=' | b':' | b'`')
    {
        j += 1;
    }
    if starts_with_ci(b, j, "is ") {
        j += 3;
        while b.get(j) == Some(&b' ') {
            j += 1;
        }
    }
    let end = run(b, j, |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'/' | b'+' | b'=')
    });
    (end - j == 40 && has_digit_and_letter(&b[j..end])).then_some((j, end))
}

/// A private key in PEM armour, from `-----BEGIN ... PRIVATE KEY-----` to the matching END
/// line. A block cut short (no END) runs to the end of the text: half a key is still a key.
pub(super) fn pem(b: &[u8], i: usize) -> Option<(usize, usize)> {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const DASHES: &[u8] = b"-----";
    if !b[i..].starts_with(BEGIN) {
        return None;
    }
    let label_start = i + BEGIN.len();
    let label_len = find(&b[label_start..b.len().min(label_start + 48)], DASHES)?;
    let label = &b[label_start..label_start + label_len];
    find(label, b"PRIVATE KEY")?;
    let body = label_start + label_len + DASHES.len();
    let Some(end_line) = find(&b[body..], b"-----END ") else {
        return Some((i, b.len()));
    };
    let after_end = body + end_line + b"-----END ".len();
    let end = match find(&b[after_end..b.len().min(after_end + 48)], DASHES) {
        Some(offset) => after_end + offset + DASHES.len(),
        None => b.len().min(after_end + label.len()),
    };
    Some((i, end))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> Option<&str> {
        let b = text.as_bytes();
        (0..b.len())
            .find_map(|i| {
                if b[i] == b'-' {
                    pem(b, i)
                } else if may_start(b, i) {
                    at(b, i)
                } else {
                    None
                }
            })
            .map(|(s, e)| &text[s..e])
    }

    #[test]
    fn provider_keys() {
        for key in [
            "sk-4f3KcXbT9qLmN2pR7sVwY8zA1bC5dE6fG0hJ",
            "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_7AbC-dEf",
            "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe-DcBa",
            "sk_live_51HqLyjWDarjtT1zdp7dcXYZ",
            "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
            "AKIAIOSFODNN7EXAMPLE",
            "ASIAY34FZKBOKMUTVV7A",
            "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEF",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ] {
            assert_eq!(secret(&format!("key: {key} done")), Some(key), "{key}");
        }
    }

    #[test]
    fn labelled_and_armoured() {
        assert_eq!(
            secret("Authorization: Bearer abc123def456ghi789jkl"),
            Some("abc123def456ghi789jkl")
        );
        assert_eq!(
            secret("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"),
            Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        );
        assert_eq!(
            secret("\"SecretAccessKey\": \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\""),
            Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        );
        let pem_block =
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
        assert_eq!(secret(&format!("x {pem_block} y")), Some(pem_block));
        let cut = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA";
        assert_eq!(secret(cut), Some(cut));
    }

    #[test]
    fn not_secrets() {
        for text in [
            "sk-learn is a library",
            "sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "AIzaShort",
            "AKIAIOSFODNN7EXAMPL",
            "AKIAIOSFODNN7EXAMPLE1",
            "ghp_short",
            "Bearer authentication is described in RFC 6750",
            "Bearer token",
            "-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----",
            "secret_access_key = <your key here>",
            "eyJhbGciOiJIUzI1NiJ9",
        ] {
            assert_eq!(secret(text), None, "{text}");
        }
    }
}
