//! What a client says about caching, read from its request headers: `x-freeway-cache: use`
//! (cache this even if it is not deterministic) or `skip`, and the standard `cache-control`
//! request directives `no-store`, `no-cache` and `max-age=N` (RFC 9111 §5.2.1).

use std::time::Duration;

use hyper::header::HeaderMap;

/// The client's explicit choice (`x-freeway-cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientChoice {
    Use,
    Skip,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub choice: Option<ClientChoice>,
    /// Neither serve from nor write to the cache.
    pub no_store: bool,
    /// Do not serve from the cache; store the fresh answer.
    pub no_cache: bool,
    /// The oldest stored answer the client accepts.
    pub max_age: Option<Duration>,
}

impl Directives {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut directives = Directives {
            choice: headers
                .get("x-freeway-cache")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
                    "use" | "on" | "true" => Some(ClientChoice::Use),
                    "skip" | "off" | "false" | "bypass" => Some(ClientChoice::Skip),
                    _ => None,
                }),
            ..Directives::default()
        };
        for value in headers.get_all("cache-control") {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',') {
                let directive = directive.trim().to_ascii_lowercase();
                match directive.split_once('=') {
                    None if directive == "no-store" => directives.no_store = true,
                    None if directive == "no-cache" => directives.no_cache = true,
                    Some(("max-age", seconds)) => {
                        match seconds.trim().trim_matches('"').parse::<u64>() {
                            // "max-age=0": nothing stored is fresh enough; the answer is stored.
                            Ok(0) => directives.no_cache = true,
                            Ok(seconds) => directives.max_age = Some(Duration::from_secs(seconds)),
                            Err(_) => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        directives
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&'static str, &'static str)]) -> Directives {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        Directives::from_headers(&headers)
    }

    #[test]
    fn reads_the_client_choice_and_cache_control() {
        assert_eq!(read(&[]), Directives::default());
        assert_eq!(
            read(&[("x-freeway-cache", "USE")]).choice,
            Some(ClientChoice::Use)
        );
        assert_eq!(
            read(&[("x-freeway-cache", "skip")]).choice,
            Some(ClientChoice::Skip)
        );
        let d = read(&[
            ("cache-control", "no-cache, max-age=30"),
            ("cache-control", "no-store"),
        ]);
        assert!(d.no_cache && d.no_store);
        assert_eq!(d.max_age, Some(Duration::from_secs(30)));
        assert!(read(&[("cache-control", "max-age=0")]).no_cache);
        assert_eq!(read(&[("cache-control", "max-age=soon")]).max_age, None);
    }
}
