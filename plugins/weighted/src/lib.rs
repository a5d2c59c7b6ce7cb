//! Weighted random routing: spread a model's traffic over its targets in proportion to their
//! weights, e.g. to share load between several free tiers so none runs out first, or to send
//! a tenth of traffic to a new provider.
//!
//! The whole order is drawn at random without replacement: the first target is picked with
//! probability weight / total, the second among the rest the same way, and so on, so the
//! failover order is weighted too. Targets whose weight is 0 are never drawn: they follow the
//! drawn ones in configured order, as a backup tried only when every weighted target failed.
//! Only ready candidates (healthy, not cooling) are drawn.
//!
//! Settings (all optional):
//!
//! - `weights`: `{"provider/model": n, "provider": n}`, non-negative integers overriding the
//!   candidates' configured `weight`; a `provider/model` entry wins over a `provider` one.
//! - `seed`: an integer. Without it the generator is seeded from the wall clock mixed with the
//!   request's facts, so every request draws afresh. With it the order is a pure function of
//!   the seed and the request (model, token counts, flags, tags, metadata, session): for tests
//!   and reproducible benchmarks, not for production, where identical requests would always
//!   get the same order.
//! - `include_cooling`: also return healthy candidates that are cooling down, after the drawn
//!   and backup ones, soonest cooldown end first (default false).
//!
//! The generator is splitmix64: statistically sound for this, tiny, and dependency-free.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use freeway_plugin_sdk::router::exports::freeway::plugin::policy::{Candidate, RequestInfo};
use freeway_plugin_sdk::routing::{Eligible, Policy, PolicySettings, Selector};
use freeway_plugin_sdk::types::Error;

#[derive(Debug, Default)]
struct Settings {
    /// Per-target weights, keyed by `provider/model`, and per-provider ones, keyed by provider.
    targets: BTreeMap<(String, String), u32>,
    providers: BTreeMap<String, u32>,
    seed: Option<u64>,
    include_cooling: bool,
}

impl PolicySettings for Settings {
    fn read(raw: &mut freeway_plugin_sdk::routing::Settings) -> Result<Self, Error> {
        let mut settings = Self {
            seed: raw.take("seed")?,
            include_cooling: raw.take("include_cooling")?.unwrap_or(false),
            ..Self::default()
        };
        let weights: BTreeMap<String, u32> = raw.take("weights")?.unwrap_or_default();
        for (key, weight) in weights {
            match Selector::parse(&key) {
                Ok(Selector::Provider(provider)) => {
                    settings.providers.insert(provider, weight);
                }
                Ok(Selector::Target { provider, model }) => {
                    settings.targets.insert((provider, model), weight);
                }
                Ok(Selector::Tag(_)) => {
                    return Err(raw.invalid(
                        "weights",
                        format!("`{key}`: weights name a provider or provider/model, not a tag"),
                    ));
                }
                Err(problem) => return Err(raw.invalid("weights", problem)),
            }
        }
        Ok(settings)
    }
}

impl Settings {
    fn weight(&self, candidate: &Candidate) -> u32 {
        // Looking up by (provider, model) needs owned keys; the maps are a handful of entries.
        self.targets
            .iter()
            .find(|((provider, model), _)| {
                *provider == candidate.provider && *model == candidate.model
            })
            .map(|(_, weight)| *weight)
            .or_else(|| self.providers.get(&candidate.provider).copied())
            .unwrap_or(candidate.weight)
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): one 64-bit state, full period, passes BigCrush.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0), by Lemire's multiply-shift: no division, and a
    /// bias below 2^-32 for any total weight a config can hold.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

/// FNV-1a over the request's facts, folded into `seed`.
fn mix(seed: u64, request: &RequestInfo) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(request.model.as_bytes());
    feed(&request.prompt_tokens.to_le_bytes());
    feed(&request.max_tokens.map_or(u64::MAX, u64::from).to_le_bytes());
    feed(&[
        u8::from(request.stream),
        u8::from(request.has_tools),
        u8::from(request.has_images),
    ]);
    for tag in &request.tags {
        feed(tag.as_bytes());
    }
    for (key, value) in &request.metadata {
        feed(key.as_bytes());
        feed(value.as_bytes());
    }
    if let Some(session) = &request.session {
        feed(session.as_bytes());
    }
    hash
}

fn clock_seed() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

struct Weighted;

impl Policy for Weighted {
    const NAME: &'static str = "weighted";
    const DESCRIPTION: &'static str =
        "Orders ready targets by weighted random draw without replacement";
    type Settings = Settings;

    fn order(request: &RequestInfo, candidates: &[Candidate], settings: &Settings) -> Vec<u32> {
        let eligible = Eligible::new(candidates, settings.include_cooling);
        let mut rng = SplitMix64(mix(settings.seed.unwrap_or_else(clock_seed), request));

        let weighted = eligible
            .ready
            .iter()
            .map(|candidate| (*candidate, u64::from(settings.weight(candidate))));
        let (mut pool, backup): (Vec<_>, Vec<_>) = weighted.partition(|(_, weight)| *weight > 0);
        let mut ids = Vec::with_capacity(candidates.len());
        let mut total: u64 = pool.iter().map(|(_, weight)| weight).sum();
        while !pool.is_empty() {
            let mut point = rng.below(total);
            let mut index = pool.len() - 1;
            for (i, (_, weight)) in pool.iter().enumerate() {
                if point < *weight {
                    index = i;
                    break;
                }
                point -= weight;
            }
            let (candidate, weight) = pool.remove(index);
            total -= weight;
            ids.push(candidate.id);
        }
        ids.extend(backup.iter().map(|(candidate, _)| candidate.id));
        ids.extend(eligible.cooling.iter().map(|candidate| candidate.id));
        ids
    }
}

freeway_plugin_sdk::export_policy!(Weighted);

#[cfg(test)]
mod tests {
    use super::*;
    use freeway_plugin_sdk::routing::fixtures::{candidate, request};
    use freeway_plugin_sdk::routing::parse_settings;
    use freeway_plugin_sdk::types::ErrorKind;

    fn route(candidates: &[Candidate], settings: &str) -> Result<Vec<u32>, Error> {
        freeway_plugin_sdk::routing::route::<Weighted>(&request(), candidates, settings)
    }

    fn weighted(weights: &[u32]) -> Vec<Candidate> {
        weights
            .iter()
            .zip(0..)
            .map(|(weight, id)| Candidate {
                weight: *weight,
                ..candidate(id)
            })
            .collect()
    }

    /// How often each id comes first over `runs` seeds.
    fn first_counts(candidates: &[Candidate], settings: &str, runs: u64) -> Vec<u64> {
        let mut counts = vec![0; candidates.len()];
        let settings = settings.strip_suffix('}').expect("an object");
        let separator = if settings.len() > 1 { ", " } else { "" };
        for seed in 0..runs {
            let ids = route(
                candidates,
                &format!("{settings}{separator}\"seed\": {seed}}}"),
            )
            .expect("valid");
            counts[ids[0] as usize] += 1;
        }
        counts
    }

    #[test]
    fn first_pick_follows_the_weights() {
        let counts = first_counts(&weighted(&[1, 2, 7]), "{}", 20_000);
        for (count, expected) in counts.iter().zip([0.1, 0.2, 0.7]) {
            let share = *count as f64 / 20_000.0;
            assert!((share - expected).abs() < 0.015, "{counts:?}");
        }
    }

    #[test]
    fn later_picks_are_drawn_from_the_rest() {
        // With weights 8, 1, 1 target 0 is usually first; when it is, 1 and 2 are equally
        // likely second.
        let candidates = weighted(&[8, 1, 1]);
        let mut second = [0u64; 3];
        for seed in 0..10_000 {
            let ids = route(&candidates, &format!(r#"{{"seed": {seed}}}"#)).expect("valid");
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2], "a permutation");
            if ids[0] == 0 {
                second[ids[1] as usize] += 1;
            }
        }
        let ratio = second[1] as f64 / second[2] as f64;
        assert!((0.9..1.1).contains(&ratio), "{second:?}");
    }

    #[test]
    fn settings_weights_override_configured_ones() {
        let mut candidates = weighted(&[1, 1, 1]);
        candidates[2].provider = "provider-1".to_owned();
        candidates[2].model = "other".to_owned();
        // provider-1 has two targets: provider/model beats provider for "model".
        let counts = first_counts(
            &candidates,
            r#"{"weights": {"provider-0": 0, "provider-1": 3, "provider-1/model": 1}}"#,
            20_000,
        );
        assert_eq!(counts[0], 0, "weight 0 is never drawn first");
        let share = counts[2] as f64 / 20_000.0;
        assert!((share - 0.75).abs() < 0.015, "{counts:?}");
    }

    #[test]
    fn zero_weights_are_a_backup_in_configured_order() {
        let candidates = weighted(&[0, 5, 0, 1]);
        for seed in 0..100 {
            let ids = route(&candidates, &format!(r#"{{"seed": {seed}}}"#)).expect("valid");
            assert_eq!(ids[2..], [0, 2]);
        }
        let all_zero = weighted(&[0, 0, 0]);
        assert_eq!(route(&all_zero, "{}").expect("valid"), [0, 1, 2]);
    }

    #[test]
    fn unhealthy_and_cooling_are_left_out_unless_asked() {
        let mut candidates = weighted(&[1, 100, 1, 1, 1]);
        candidates[1].healthy = false;
        candidates[2].cooldown_ms = 800;
        candidates[3].cooldown_ms = 200;
        for seed in 0..50 {
            let ids = route(&candidates, &format!(r#"{{"seed": {seed}}}"#)).expect("valid");
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 4]);
            let ids = route(
                &candidates,
                &format!(r#"{{"seed": {seed}, "include_cooling": true}}"#),
            )
            .expect("valid");
            assert_eq!(ids[2..], [3, 2], "cooling last, soonest first");
        }
        assert!(route(&[], "{}").expect("valid").is_empty());
    }

    #[test]
    fn a_seed_makes_the_order_a_function_of_the_request() {
        let candidates = weighted(&[1, 1, 1, 1, 1, 1]);
        let settings = parse_settings::<Weighted>(r#"{"seed": 7}"#).expect("valid");
        let first = Weighted::order(&request(), &candidates, &settings);
        assert_eq!(Weighted::order(&request(), &candidates, &settings), first);
        // Different requests spread: 20 sessions do not all get the same order.
        let orders: std::collections::BTreeSet<Vec<u32>> = (0..20)
            .map(|i| {
                let mut request = request();
                request.session = Some(format!("session-{i}"));
                Weighted::order(&request, &candidates, &settings)
            })
            .collect();
        assert!(orders.len() > 1);
    }

    #[test]
    fn without_a_seed_every_order_is_a_permutation_of_the_ready_ones() {
        let candidates = weighted(&[3, 1, 2]);
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let ids = route(&candidates, "{}").expect("valid");
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2]);
            firsts.insert(ids[0]);
        }
        // The clock moves between calls (natively, and on wasmtime's wall clock).
        assert!(firsts.len() > 1, "{firsts:?}");
    }

    #[test]
    fn bad_settings_are_typed_errors() {
        for (settings, names) in [
            (r#"{"seeds": 1}"#, "unknown weighted setting `seeds`"),
            (r#"{"seed": "1"}"#, "setting `seed`"),
            (r#"{"seed": -1}"#, "setting `seed`"),
            (r#"{"weights": {"groq": -1}}"#, "setting `weights`"),
            (r#"{"weights": {"groq": 1.5}}"#, "setting `weights`"),
            (r#"{"weights": {"tag:free": 2}}"#, "setting `weights`"),
            (r#"{"weights": {"groq/": 2}}"#, "setting `weights`"),
            (r#"{"weights": [1, 2]}"#, "setting `weights`"),
            (r#"{"include_cooling": "yes"}"#, "setting `include_cooling`"),
            ("[]", "weighted settings"),
        ] {
            let error = route(&weighted(&[1]), settings).expect_err(settings);
            assert_eq!(error.kind, ErrorKind::Internal);
            assert!(!error.retryable);
            assert!(
                error.message.contains(names),
                "{settings}: {}",
                error.message
            );
        }
    }
}
