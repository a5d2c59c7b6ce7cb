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
//! good: the placeholders are put back into the answer.
//!
//! `regions` (ISO 3166 codes, or `"all"`) replaces the regions whose *national* phone formats
//! are recognised (default: [`crate::detect::DEFAULT_REGIONS`], fifty regions on every
//! continent); numbers written with `+` or `00` are checked against every region's plan
//! whatever it says (an empty list recognises only those).
//! `exempt` lists values the operator considers harmless: `private-ip`, `documentation-ip`,
//! `test-card`, `documentation-email` (none by default; see [`crate::detect::Exemptions`]).
//!
//! ```toml
//! [pipeline.settings.pii]
//! regions = ["DE", "FR", "JP", "US"]
//! exempt = ["private-ip", "test-card"]
//! ```
//!
//! Unknown keys and values are errors, so a misspelt action fails closed instead of silently
//! letting data through.

use serde_json::{Map, Value};

use crate::detect::{Exemptions, Kind, Options, Regions};

/// What happens to a request carrying an entity. Ordered by strength: a block of any type
/// blocks the request; otherwise redactions and route-trusted apply together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Redact,
    RouteTrusted,
    Block,
}

impl Action {
    const NAMES: [(&'static str, Action); 4] = [
        ("redact", Action::Redact),
        ("block", Action::Block),
        ("route-trusted", Action::RouteTrusted),
        ("allow", Action::Allow),
    ];

    fn from_name(name: &str) -> Option<Action> {
        Self::NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, action)| *action)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Indexed like [`Kind::ALL`].
    actions: [Action; Kind::ALL.len()],
    pub reversible: bool,
    /// What the detectors look for beyond the formats: regions and exemptions.
    pub options: Options,
}

impl Default for Settings {
    fn default() -> Self {
        let mut actions = [Action::Redact; Kind::ALL.len()];
        actions[Kind::Secret as usize] = Action::Block;
        Settings {
            actions,
            reversible: false,
            options: Options::default(),
        }
    }
}

impl Settings {
    /// Parses the settings object key by key, so every error names the setting at fault.
    pub fn parse(json: &str) -> Result<Settings, String> {
        let json = json.trim();
        // Settings arrive with every call; most configs give none.
        if json.is_empty() || json == "{}" {
            return Ok(Settings::default());
        }
        let invalid = |problem: String| format!("invalid pii settings: {problem}");
        let object: Map<String, Value> = match serde_json::from_str(json) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(invalid("expected a JSON object".to_owned())),
            Err(problem) => return Err(invalid(format!("not JSON: {problem}"))),
        };
        let mut settings = Settings::default();
        for (key, value) in object {
            match key.as_str() {
                "reversible" => {
                    settings.reversible = value.as_bool().ok_or_else(|| {
                        invalid(format!("`reversible` must be true or false, got {value}"))
                    })?;
                }
                "actions" => {
                    let Value::Object(actions) = value else {
                        return Err(invalid(
                            "`actions` must be a table of entity type -> action".to_owned(),
                        ));
                    };
                    for (name, action) in actions {
                        let kind = Kind::from_name(&name).ok_or_else(|| {
                            invalid(format!(
                                "unknown entity type `{name}` in `actions` (known: {})",
                                Kind::ALL.map(Kind::name).join(", ")
                            ))
                        })?;
                        let action =
                            action.as_str().and_then(Action::from_name).ok_or_else(|| {
                                invalid(format!(
                                    "`actions.{name}` must be one of {}, got {action}",
                                    Action::NAMES.map(|(known, _)| known).join(", ")
                                ))
                            })?;
                        settings.actions[kind as usize] = action;
                    }
                }
                "regions" => {
                    let codes = string_list(&value).ok_or_else(|| {
                        invalid(format!(
                            "`regions` must be a list of ISO 3166 region codes, got {value}"
                        ))
                    })?;
                    settings.options.regions = Regions::parse(codes)
                        .map_err(|problem| invalid(format!("`regions`: {problem}")))?;
                }
                "exempt" => {
                    let names = string_list(&value).ok_or_else(|| {
                        invalid(format!("`exempt` must be a list of names, got {value}"))
                    })?;
                    let mut exempt = Exemptions::default();
                    for name in names {
                        if !exempt.insert(name) {
                            return Err(invalid(format!(
                                "unknown exemption `{name}` in `exempt` (known: {})",
                                Exemptions::NAMES.join(", ")
                            )));
                        }
                    }
                    settings.options.exempt = exempt;
                }
                other => {
                    return Err(invalid(format!(
                        "unknown setting `{other}` (known: actions, exempt, regions, reversible)"
                    )));
                }
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

/// The strings of a JSON array of strings.
fn string_list(value: &Value) -> Option<Vec<&str>> {
    value.as_array()?.iter().map(Value::as_str).collect()
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
    fn regions_and_exemptions() {
        let settings =
            Settings::parse(r#"{"regions":["de","JP"],"exempt":["private-ip","test-card"]}"#)
                .expect("valid");
        assert_eq!(
            settings.options.regions,
            Regions::parse(["DE", "JP"]).expect("known")
        );
        assert!(settings.options.exempt.covers(Kind::Ip, "10.0.0.1"));
        assert!(
            settings
                .options
                .exempt
                .covers(Kind::Card, "4242424242424242")
        );
        assert!(!settings.options.exempt.covers(Kind::Email, "a@example.com"));
        assert_eq!(Settings::default().options, Options::default());
        assert!(Settings::default().options.exempt.is_empty());
    }

    #[test]
    fn unknown_keys_and_values_fail() {
        for json in [
            r#"{"revers":true}"#,
            r#"{"actions":{"emial":"redact"}}"#,
            r#"{"actions":{"email":"hide"}}"#,
            r#"{"reversible":"yes"}"#,
            r#"{"regions":["XX"]}"#,
            r#"{"regions":"DE"}"#,
            r#"{"exempt":["private-ips"]}"#,
            "[]",
            "{",
        ] {
            let problem = Settings::parse(json).expect_err(json);
            assert!(problem.starts_with("invalid pii settings"), "{problem}");
        }
        for (json, named) in [
            (r#"{"revers":true}"#, "`revers`"),
            (r#"{"actions":{"emial":"redact"}}"#, "`emial`"),
            (r#"{"actions":{"email":"hide"}}"#, "`actions.email`"),
            (r#"{"reversible":"yes"}"#, "`reversible`"),
            (r#"{"regions":["XX"]}"#, "`XX`"),
            (r#"{"exempt":["private-ips"]}"#, "`private-ips`"),
        ] {
            let problem = Settings::parse(json).expect_err(json);
            assert!(problem.contains(named), "{problem}");
        }
    }
}
