//! Credentials, by the token formats the services document: a fixed prefix and a body of a
//! known alphabet and length ([`RULES`]: OpenAI, Anthropic, Groq, xAI, Perplexity, NVIDIA,
//! Cerebras, Replicate, Hugging Face, GitHub, GitLab, Slack, npm, PyPI, Stripe, DigitalOcean,
//! Shopify, Databricks, Atlassian, Linear, Notion, Postman, Supabase, Grafana, New Relic,
//! Google, LangSmith, Tavily, age, ...), plus the formats that need more than a
//! prefix: AWS access key ids, SendGrid keys, Twilio API keys, Azure storage and AD client
//! secrets, Google service-account key ids, Telegram bot tokens, JSON Web Tokens, private-key
//! PEM blocks, `Bearer` tokens, AWS secret access keys after a label naming them, and
//! passwords in URLs (`https://user:pass@host`).
//!
//! Cost stays flat as rules grow: the scan calls [`at`] only for words whose first two bytes
//! start some rule ([`STARTS`], one bit test per word), and a rule's prefix is compared before
//! its body is read. Precision comes from the format, then from an entropy floor: a body must
//! look random ([`random_enough`]), so documentation placeholders (`hf_xxxxxxxx...`,
//! `sk-your-key-here...`) pass untouched.
//!
//! The finding is the credential itself: `Bearer `, `AccountKey=` and `user:` stay, so a
//! redacted prompt still reads as what it was.

use super::starts_with_ci;

/// The alphabet of a token's body.
#[derive(Clone, Copy)]
enum Body {
    /// Letters and digits.
    Alnum,
    /// Lower- or upper-case hexadecimal digits.
    Hex,
    /// Letters, digits, `-`, `_` (base64url).
    Key,
    /// [`Body::Key`] and `.` (tokens with dotted parts).
    Dotted,
}

impl Body {
    fn allows(self, c: u8) -> bool {
        match self {
            Body::Alnum => c.is_ascii_alphanumeric(),
            Body::Hex => c.is_ascii_hexdigit(),
            Body::Key => key_char(c),
            Body::Dotted => key_char(c) || c == b'.',
        }
    }
}

/// A token format: its prefix, the alphabet and length of what follows.
struct Rule {
    prefix: &'static [u8],
    body: Body,
    min: usize,
    max: usize,
}

const fn rule(prefix: &'static [u8], body: Body, min: usize, max: usize) -> Rule {
    Rule {
        prefix,
        body,
        min,
        max,
    }
}

/// Token formats by prefix, from each service's documentation. Where a service documents a
/// fixed length, `min..=max` is that length (give or take the versions seen); otherwise a
/// floor that keeps ordinary words out. Longer prefixes come before shorter ones that they
/// extend (`sk-ant-` is matched as `sk-`; both are secrets).
const RULES: &[Rule] = &[
    // OpenAI (`sk-`, `sk-proj-`, `sk-svcacct-`, `sk-admin-`), Anthropic (`sk-ant-api03-`,
    // `sk-ant-admin01-`), DeepSeek, OpenRouter (`sk-or-v1-`): all `sk-` and a long body.
    rule(b"sk-", Body::Key, 20, 300),
    // Stripe secret, restricted and webhook keys.
    rule(b"sk_live_", Body::Alnum, 20, 255),
    rule(b"sk_test_", Body::Alnum, 20, 255),
    rule(b"rk_live_", Body::Alnum, 20, 255),
    rule(b"rk_test_", Body::Alnum, 20, 255),
    rule(b"whsec_", Body::Alnum, 24, 64),
    // Groq.
    rule(b"gsk_", Body::Alnum, 48, 56),
    // xAI, Perplexity, NVIDIA, Cerebras, Replicate, Tavily, LangSmith.
    rule(b"xai-", Body::Alnum, 60, 100),
    rule(b"pplx-", Body::Alnum, 40, 56),
    rule(b"nvapi-", Body::Key, 60, 72),
    rule(b"csk-", Body::Alnum, 40, 56),
    rule(b"r8_", Body::Alnum, 30, 40),
    rule(b"tvly-", Body::Key, 28, 48),
    rule(b"lsv2_pt_", Body::Key, 40, 60),
    rule(b"lsv2_sk_", Body::Key, 40, 60),
    // Hugging Face user and organisation tokens: 34 letters (digits seen in some).
    rule(b"hf_", Body::Alnum, 30, 40),
    rule(b"api_org_", Body::Alnum, 30, 40),
    // GitHub classic (36 characters, 30+ accepted) and fine-grained tokens.
    rule(b"ghp_", Body::Alnum, 30, 255),
    rule(b"gho_", Body::Alnum, 30, 255),
    rule(b"ghu_", Body::Alnum, 30, 255),
    rule(b"ghs_", Body::Alnum, 30, 255),
    rule(b"ghr_", Body::Alnum, 30, 255),
    rule(b"github_pat_", Body::Key, 22, 255),
    // GitLab personal, deploy, runner, pipeline-trigger, CI-build, OAuth, feed, incoming-mail,
    // agent and SCIM tokens; newer tokens carry a `.`-separated routing suffix.
    rule(b"glpat-", Body::Dotted, 20, 255),
    rule(b"gldt-", Body::Dotted, 20, 255),
    rule(b"glrt-", Body::Dotted, 20, 255),
    rule(b"glptt-", Body::Dotted, 20, 255),
    rule(b"glcbt-", Body::Dotted, 20, 255),
    rule(b"gloas-", Body::Dotted, 20, 255),
    rule(b"glft-", Body::Dotted, 20, 255),
    rule(b"glimt-", Body::Dotted, 20, 255),
    rule(b"glagent-", Body::Dotted, 20, 255),
    rule(b"glsoat-", Body::Dotted, 20, 255),
    rule(b"GR1348941", Body::Key, 20, 64),
    // Slack bot, user, app, refresh, configuration tokens.
    rule(b"xoxb-", Body::Key, 20, 255),
    rule(b"xoxp-", Body::Key, 20, 255),
    rule(b"xoxa-", Body::Key, 20, 255),
    rule(b"xoxr-", Body::Key, 20, 255),
    rule(b"xoxs-", Body::Key, 20, 255),
    rule(b"xoxe.xoxp-", Body::Key, 20, 255),
    rule(b"xoxe-", Body::Key, 20, 255),
    rule(b"xapp-", Body::Key, 20, 255),
    // npm and PyPI (a macaroon: `pypi-AgEIcHlwaS5vcmc...`, `pypi-AgENdGVzdC5weXBpLm9yZw...`).
    rule(b"npm_", Body::Alnum, 36, 36),
    rule(b"pypi-Ag", Body::Key, 50, 400),
    // DigitalOcean, Shopify, Databricks, Supabase, PlanetScale.
    rule(b"dop_v1_", Body::Hex, 64, 64),
    rule(b"doo_v1_", Body::Hex, 64, 64),
    rule(b"dor_v1_", Body::Hex, 64, 64),
    rule(b"shpat_", Body::Hex, 32, 32),
    rule(b"shpca_", Body::Hex, 32, 32),
    rule(b"shppa_", Body::Hex, 32, 32),
    rule(b"shpss_", Body::Hex, 32, 32),
    rule(b"dapi", Body::Hex, 32, 34),
    rule(b"sbp_", Body::Hex, 40, 40),
    rule(b"pscale_tkn_", Body::Key, 32, 64),
    rule(b"pscale_pw_", Body::Key, 32, 64),
    // Atlassian, Linear, Notion, Postman, New Relic, Grafana.
    rule(b"ATATT3", Body::Dotted, 100, 300),
    rule(b"lin_api_", Body::Alnum, 40, 40),
    rule(b"ntn_", Body::Alnum, 40, 50),
    rule(b"PMAK-", Body::Key, 55, 64),
    rule(b"NRAK-", Body::Alnum, 27, 27),
    rule(b"glsa_", Body::Key, 40, 48),
    rule(b"glc_", Body::Key, 32, 200),
    // Google API keys, OAuth client secrets and access tokens.
    rule(b"AIza", Body::Key, 35, 35),
    rule(b"GOCSPX-", Body::Key, 28, 28),
    rule(b"ya29.", Body::Dotted, 30, 2048),
    // Mailgun (`key-` and 32 hex), age encryption keys.
    rule(b"key-", Body::Hex, 32, 32),
    rule(b"AGE-SECRET-KEY-1", Body::Alnum, 58, 58),
];

/// The first two bytes of every word [`at`] may accept: the rules' prefixes, the formats
/// matched by hand below and the labels (in the cases people write them). The scan tests a
/// word's first two bytes against this set before calling [`at`].
pub(super) const STARTS: [u32; 2048] = {
    let mut table = [0u32; 2048];
    let mut k = 0;
    while k < RULES.len() {
        table = with_start(table, RULES[k].prefix[0], RULES[k].prefix[1]);
        k += 1;
    }
    let extra: [&[u8; 2]; 21] = [
        // AWS key ids: `A` and a capital (`AKIA`, `ASIA`, ...).
        b"AK", b"AS", b"AB", b"AC", b"AG", b"AI", b"AN", b"AR", //
        b"SG", b"SK", // SendGrid, Twilio
        b"Ac", b"Sh", // Azure `AccountKey=`, `SharedAccessKey=`
        b"pr", // "private_key_id"
        b"ey", // JWT
        b"aw", b"AW", b"Aw", // aws labels
        b"se", b"Se", // secret labels
        b"be", b"Be", // bearer
    ];
    let mut k = 0;
    while k < extra.len() {
        table = with_start(table, extra[k][0], extra[k][1]);
        k += 1;
    }
    table = with_start(table, b'B', b'E');
    table = with_start(table, b'S', b'E');
    table
};

const fn with_start(mut table: [u32; 2048], first: u8, second: u8) -> [u32; 2048] {
    let bit = first as usize * 256 + second as usize;
    table[bit / 32] |= 1 << (bit % 32);
    table
}

/// Can a credential (or its label) start with these two bytes?
#[inline]
pub(super) fn may_start(first: u8, second: u8) -> bool {
    let bit = first as usize * 256 + second as usize;
    STARTS[bit / 32] >> (bit % 32) & 1 == 1
}

fn key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn run(b: &[u8], from: usize, allowed: impl Fn(u8) -> bool) -> usize {
    let mut end = from;
    while end < b.len() && allowed(b[end]) {
        end += 1;
    }
    end
}

fn has_digit_and_letter(bytes: &[u8]) -> bool {
    bytes.iter().any(u8::is_ascii_digit) && bytes.iter().any(u8::is_ascii_alphabetic)
}

/// The entropy floor: does `body` look like random bytes rather than a word, a placeholder or
/// a repeated character? Shannon entropy over its bytes of at least 3 bits per character
/// (random base62 has ~5.2 at 40 characters, random hex ~3.8 at 32; `xxxxxxxx...` has 0,
/// `your-api-key-here` ~3.3 but fails the length floors). Bodies shorter than 16 are taken as
/// they are: their format already says enough.
fn random_enough(body: &[u8]) -> bool {
    if body.len() < 16 {
        return true;
    }
    let mut counts = [0u16; 128];
    for &c in body {
        counts[usize::from(c & 0x7f)] += 1;
    }
    let n = body.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&count| count > 0)
        .map(|&count| {
            let p = f64::from(count) / n;
            -p * p.log2()
        })
        .sum();
    entropy >= 3.0
}

/// A credential starting with a letter at `i` (a token start whose first two bytes passed
/// [`may_start`]).
pub(super) fn at(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let found = by_rule(b, i).or_else(|| match b[i] {
        b'A' => aws_key_id(b, i)
            .or_else(|| azure_key(b, i))
            .or_else(|| labelled_aws_secret(b, i)),
        b'S' => sendgrid(b, i)
            .or_else(|| twilio(b, i))
            .or_else(|| azure_key(b, i))
            .or_else(|| labelled_aws_secret(b, i)),
        b'a' | b's' => labelled_aws_secret(b, i),
        b'B' | b'b' => bearer(b, i),
        b'e' => jwt(b, i),
        b'p' => gcp_private_key_id(b, i),
        _ => None,
    })?;
    Some(found)
}

/// Per byte, the rules (one bit each, by index in [`RULES`]) whose prefix starts with it, and
/// whose prefix has it second: a word is compared only with the rules in both sets, none for
/// nearly every word of prose that passed [`may_start`] ("when", "data", "should").
const RULES_FIRST: [u128; 256] = rule_bits(0);
const RULES_SECOND: [u128; 256] = rule_bits(1);

const fn rule_bits(position: usize) -> [u128; 256] {
    assert!(RULES.len() <= 128, "one bit per rule in a u128");
    let mut table = [0u128; 256];
    let mut k = 0;
    while k < RULES.len() {
        table[RULES[k].prefix[position] as usize] |= 1 << k;
        k += 1;
    }
    table
}

fn by_rule(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let rest = &b[i..];
    let second = rest.get(1).copied().unwrap_or(0);
    let mut candidates = RULES_FIRST[usize::from(rest[0])] & RULES_SECOND[usize::from(second)];
    let mut found = None;
    // In table order, so a longer prefix listed first wins.
    while candidates != 0 {
        let rule = &RULES[candidates.trailing_zeros() as usize];
        candidates &= candidates - 1;
        if rest.starts_with(rule.prefix) {
            found = Some(rule);
            break;
        }
    }
    let rule = found?;
    let body_start = i + rule.prefix.len();
    let mut end = run(b, body_start, |c| rule.body.allows(c));
    // A dotted body does not end with its sentence's full stop.
    while matches!(rule.body, Body::Dotted) && end > body_start && b[end - 1] == b'.' {
        end -= 1;
    }
    let body = &b[body_start..end];
    let shaped = (rule.min..=rule.max).contains(&body.len())
        && random_enough(body)
        // `sk-` is also how a few libraries and words start (`sk-learn`): require a mix.
        && (rule.prefix != b"sk-" || has_digit_and_letter(body));
    shaped.then_some((i, end))
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

/// SendGrid API keys: `SG.`, 22 base64url characters, `.`, 43 more.
fn sendgrid(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if !b[i..].starts_with(b"SG.") {
        return None;
    }
    let first = run(b, i + 3, key_char);
    if first - (i + 3) != 22 || b.get(first) != Some(&b'.') {
        return None;
    }
    let end = run(b, first + 1, key_char);
    (end - (first + 1) == 43 && random_enough(&b[i + 3..end])).then_some((i, end))
}

/// Twilio API key SIDs: `SK` and 32 lower-case hex digits.
fn twilio(b: &[u8], i: usize) -> Option<(usize, usize)> {
    if !b[i..].starts_with(b"SK") {
        return None;
    }
    let end = run(b, i + 2, |c| {
        c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
    });
    (end - i == 34 && !b.get(end).is_some_and(|&c| key_char(c))).then_some((i, end))
}

/// Azure storage and Service Bus keys in connection strings: `AccountKey=<base64>` (88
/// characters) and `SharedAccessKey=<base64>` (44). The finding is the key.
fn azure_key(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let (label, min) = if b[i..].starts_with(b"AccountKey=") {
        ("AccountKey=".len(), 80)
    } else if b[i..].starts_with(b"SharedAccessKey=") {
        ("SharedAccessKey=".len(), 40)
    } else {
        return None;
    };
    let start = i + label;
    let end = run(b, start, |c| {
        c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=')
    });
    (end - start >= min && random_enough(&b[start..end])).then_some((start, end))
}

/// An Azure AD (Entra ID) client secret, found at its `~`: three characters, a digit, `Q~`,
/// then 31–34 characters of `[A-Za-z0-9_~.-]`. `tilde` is the offset of the `~`; the caller
/// checks that the secret starts on a token boundary.
pub(super) fn azure_client_secret(b: &[u8], tilde: usize) -> Option<(usize, usize)> {
    let start = tilde.checked_sub(5)?;
    let secret_char = |c: u8| key_char(c) || c == b'.' || c == b'~';
    let head = &b[start..tilde];
    let shaped = head[..3].iter().all(|&c| key_char(c) || c == b'.')
        && head[3].is_ascii_digit()
        && head[4] == b'Q';
    if !shaped {
        return None;
    }
    let end = run(b, tilde + 1, secret_char);
    ((31..=34).contains(&(end - tilde - 1)) && random_enough(&b[start..end]))
        .then_some((start, end))
}

/// A Google service-account key's id, after its JSON label: `"private_key_id": "<40 hex>"`.
/// The key itself is a PEM block ([`pem`]), found with or without the JSON around it.
fn gcp_private_key_id(b: &[u8], i: usize) -> Option<(usize, usize)> {
    const LABEL: &[u8] = b"private_key_id";
    if !b[i..].starts_with(LABEL) {
        return None;
    }
    let mut j = i + LABEL.len();
    let limit = j + 8;
    while j < b.len() && j < limit && matches!(b[j], b' ' | b'"' | b':' | b'\\') {
        j += 1;
    }
    let end = run(b, j, |c| c.is_ascii_hexdigit());
    (end - j == 40).then_some((j, end))
}

/// A Telegram bot token: the bot's numeric id, `:`, and 35 base64url characters (`AA...`).
pub(super) fn telegram(b: &[u8], i: usize) -> Option<(usize, usize)> {
    let colon = run(b, i, |c| c.is_ascii_digit());
    if !(8..=10).contains(&(colon - i)) || b.get(colon) != Some(&b':') {
        return None;
    }
    let end = run(b, colon + 1, key_char);
    (end - colon - 1 == 35 && b[colon + 1..].starts_with(b"AA")).then_some((i, end))
}

/// The password of `scheme://user:password@host`, found at the `@`. Placeholders
/// (`password`, `pass`, `****`, `<...>`, `${...}`) and one-or-two-character values are not
/// passwords anyone leaked.
pub(super) fn url_password(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let userinfo = |c: u8| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'.' | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'-'
            )
    };
    let mut start = at;
    while start > 0 && userinfo(b[start - 1]) {
        start -= 1;
    }
    if start == 0 || b[start - 1] != b':' {
        return None;
    }
    let colon = start - 1;
    let mut user = colon;
    while user > 0 && userinfo(b[user - 1]) {
        user -= 1;
    }
    if !b[..user].ends_with(b"//") {
        return None;
    }
    // `scheme:` before the `//`.
    let scheme_end = user.checked_sub(3)?;
    let mut scheme = scheme_end;
    while scheme > 0
        && (b[scheme - 1].is_ascii_alphanumeric() || matches!(b[scheme - 1], b'+' | b'.' | b'-'))
    {
        scheme -= 1;
    }
    if scheme == scheme_end || b.get(scheme_end) != Some(&b':') {
        return None;
    }
    let password = &b[start..at];
    let placeholder = password.len() < 3
        || password.iter().all(|&c| c == password[0])
        || password.starts_with(b"${")
        || password.starts_with(b"$(")
        || [
            "password", "passwd", "pass", "secret", "changeme", "xxx", "pwd",
        ]
        .iter()
        .any(|word| password.eq_ignore_ascii_case(word.as_bytes()));
    (!placeholder).then_some((start, at))
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
    let mut j = i;
    for part in 0..3 {
        if part < 2 && !b[j..].starts_with(b"eyJ") {
            return None;
        }
        let end = run(b, j, key_char);
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
/// Inside pasted JSON (a Google service-account file) the line breaks are `\n` escapes; the
/// block is found all the same.
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
    let mut end = match find(&b[after_end..b.len().min(after_end + 48)], DASHES) {
        Some(offset) => after_end + offset + DASHES.len(),
        None => b.len().min(after_end + label.len()),
    };
    // A broken END line followed by text in another script: a label's length counted from
    // the END may land inside a character (found by the host's fuzzer); take all of it.
    while end < b.len() && b[end] & 0xC0 == 0x80 {
        end += 1;
    }
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
                } else if b[i] == b'@' {
                    url_password(b, i)
                } else if b[i] == b'~' {
                    azure_client_secret(b, i)
                } else if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
                    telegram(b, i)
                } else if (i == 0 || !key_char(b[i - 1]))
                    && may_start(b[i], b.get(i + 1).copied().unwrap_or(0))
                {
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
            "glpat-xK9mP2vQ7nR4tY8wZ1aB",
            "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",
            "xoxb-2048123456-4096123456789-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxp-1234567890-1234567890-1234567890-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
            "pypi-AgEIcHlwaS5vcmcCJGQ2ZmM1YjY0LTg4NjctNDc5Ny1hNWQ0LWQ5MjJlMzE4ZmE3ZQACKlszLCI",
            "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",
            "SK0123456789abcdef0123456789abcdef",
            "SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ012",
            "dop_v1_0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "xai-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Yz3Ab4Cd5Ef6Gh7Ij8Kl9Mn0Op1Qr2St3Uv4Wx5Yz6Ab7Cd",
            "r8_Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9St0Uv1Wx2Y",
            "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",
            "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1",
            "abc8Q~Xy1zW2vU3tS4rQ5pO6nM7lK8jI9hG0fE1d",
        ] {
            assert_eq!(secret(&format!("key: {key} done")), Some(key), "{key}");
        }
    }

    #[test]
    fn labelled_armoured_and_in_urls() {
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
        let account_key = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6QUJDREVGR0hJSktMTU5PUFFSU1RVVg==";
        assert_eq!(
            secret(&format!(
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={account_key};EndpointSuffix=core.windows.net"
            )),
            Some(account_key)
        );
        assert_eq!(
            secret(
                r#"{"type": "service_account", "private_key_id": "0123456789abcdef0123456789abcdef01234567"}"#
            ),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(
            secret("DATABASE_URL=postgres://app:S3cr3t-Pa55@db.internal:5432/app"),
            Some("S3cr3t-Pa55")
        );
        assert_eq!(
            secret("https://deploy:ghx7Tq2LmZ@git.example.com/repo.git"),
            Some("ghx7Tq2LmZ")
        );
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
            "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "glpat-xxxxxxxxxxxxxxxxxxxx",
            "xoxb-your-bot-token",
            "npm_install_was_slow_today_again_and_again",
            "postgres://app:pw@db.internal:5432/app",
            "https://user:password@example.com",
            "https://user:${DB_PASSWORD}@example.com",
            "mailto:jane@example.org",
            "key-value store",
            "SKU 12345",
        ] {
            assert_eq!(secret(text), None, "{text}");
        }
    }
}
