//! The filter's settings, a JSON object from the gateway config:
//!
//! ```json
//! { "actions": { "email": "route-trusted", "ip": "allow" }, "reversible": true }
//! ```
//!
//! or, in `gateway.toml`:
//!
//! ```toml
//! [pipeline]
//! filters = ["pii"]
//! [pipeline.settings.pii]
//! reversible = true
//! actions = { email = "route-trusted", ip = "allow" }
//! ```
//!
//! `actions` maps entity types (`secret`, `card`, `iban`, `ssn`, `email`, `phone`, `ip`) to
//! `redact`, `block`, `route-trusted` or `allow`; types not named keep their defaults (secrets
//! block, everything else is redacted). `reversible` pseudonymises instead of redacting for
//! good: the placeholders are put back into the answer. Unknown keys and values are errors, so
//! a misspelt action fails closed instead of silently letting data through.

use serde::Deserialize;

use crate::detect::Kind;

/// What happens to a request carrying an entity. Ordered by strength: when several apply,
/// the strongest wins (block beats route-trusted beats redact).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Allow,
    Redact,
    RouteTrusted,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Indexed like [`Kind::ALL`].
    actions: [Action; Kind::ALL.len()],
    pub reversible: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let mut actions = [Action::Redact; Kind::ALL.len()];
        actions[Kind::Secret as usize] = Action::Block;
        Settings {
            actions,
            reversible: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    actions: RawActions,
    #[serde(default)]
    reversible: bool,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActions {
    secret: Option<Action>,
    card: Option<Action>,
    iban: Option<Action>,
    ssn: Option<Action>,
    email: Option<Action>,
    phone: Option<Action>,
    ip: Option<Action>,
}

impl Settings {
    pub fn parse(json: &str) -> Result<Settings, String> {
        let json = json.trim();
        if json.is_empty() {
            return Ok(Settings::default());
        }
        // serde would also fill a struct from a JSON array.
        if !json.starts_with('{') {
            return Err("invalid pii settings: expected a JSON object".to_owned());
        }
        let raw: Raw = serde_json::from_str(json)
            .map_err(|problem| format!("invalid pii settings: {problem}"))?;
        let mut settings = Settings {
            reversible: raw.reversible,
            ..Settings::default()
        };
        let a = raw.actions;
        for (kind, action) in [
            (Kind::Secret, a.secret),
            (Kind::Card, a.card),
            (Kind::Iban, a.iban),
            (Kind::Ssn, a.ssn),
            (Kind::Email, a.email),
            (Kind::Phone, a.phone),
            (Kind::Ip, a.ip),
        ] {
            if let Some(action) = action {
                settings.actions[kind as usize] = action;
            }
        }
        Ok(settings)
    }

    pub fn action(&self, kind: Kind) -> Action {
        self.actions[kind as usize]
    }

    /// True when nothing is ever acted on: the request need not be read at all.
    pub fn allows_everything(&self) -> bool {
        self.actions.iter().all(|&action| action == Action::Allow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_block_secrets_and_redact_the_rest() {
        for json in ["", "{}", " { } "] {
            let settings = Settings::parse(json).expect("valid");
            assert_eq!(settings, Settings::default());
            assert_eq!(settings.action(Kind::Secret), Action::Block);
            for kind in [
                Kind::Card,
                Kind::Iban,
                Kind::Ssn,
                Kind::Email,
                Kind::Phone,
                Kind::Ip,
            ] {
                assert_eq!(settings.action(kind), Action::Redact);
            }
            assert!(!settings.reversible);
        }
    }

    #[test]
    fn actions_and_reversible() {
        let settings = Settings::parse(
            r#"{"actions":{"email":"route-trusted","ip":"allow","secret":"redact","card":"block"},"reversible":true}"#,
        )
        .expect("valid");
        assert_eq!(settings.action(Kind::Email), Action::RouteTrusted);
        assert_eq!(settings.action(Kind::Ip), Action::Allow);
        assert_eq!(settings.action(Kind::Secret), Action::Redact);
        assert_eq!(settings.action(Kind::Card), Action::Block);
        assert_eq!(settings.action(Kind::Phone), Action::Redact);
        assert!(settings.reversible);
        assert!(!settings.allows_everything());
    }

    #[test]
    fn strength_order() {
        assert!(Action::Block > Action::RouteTrusted);
        assert!(Action::RouteTrusted > Action::Redact);
        assert!(Action::Redact > Action::Allow);
    }

    #[test]
    fn unknown_keys_and_values_fail() {
        for json in [
            r#"{"revers":true}"#,
            r#"{"actions":{"emial":"redact"}}"#,
            r#"{"actions":{"email":"hide"}}"#,
            r#"{"reversible":"yes"}"#,
            "[]",
            "{",
        ] {
            let problem = Settings::parse(json).expect_err(json);
            assert!(problem.starts_with("invalid pii settings"), "{problem}");
        }
    }
}
