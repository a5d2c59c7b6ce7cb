//! The key ring: who a bearer token names. Virtual keys from the store (looked up by the
//! SHA-256 of the token, so nothing about stored secrets leaks through timing) and the
//! config's environment keys, swapped whole when the store's keys change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use super::keys::Caller;
use crate::config::GatewayKey;
use crate::store::keys::{KeyLimits, KeyRow, hash_secret};

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyProblem {
    Unknown,
    /// The key's name.
    Revoked(String),
    Expired(String),
}

/// Every key a client may present: virtual keys (by the SHA-256 of their secret) and the
/// config's environment keys. Swapped whole when the store's keys change.
#[derive(Default)]
pub struct KeyRing {
    /// hash → (caller, revoked, expires_at)
    keys: RwLock<Arc<HashMap<String, RingEntry>>>,
    /// The store's `keys_version` the ring was loaded at.
    pub version: Mutex<Option<i64>>,
}

#[derive(Debug, Clone)]
struct RingEntry {
    caller: Arc<Caller>,
    revoked: bool,
}

impl KeyRing {
    /// Rebuild from the store's rows and the config's environment keys.
    pub fn load(&self, rows: &[KeyRow], env_keys: &[GatewayKey]) {
        let mut map = HashMap::with_capacity(rows.len() + env_keys.len());
        for row in rows {
            map.insert(
                row.hash.clone(),
                RingEntry {
                    caller: Arc::new(Caller {
                        name: row.name.clone(),
                        limits: row.limits.clone(),
                        from_config: false,
                    }),
                    revoked: row.revoked_at.is_some(),
                },
            );
        }
        for key in env_keys {
            map.insert(
                hash_secret(key.key.expose()),
                RingEntry {
                    caller: Arc::new(Caller {
                        name: key.name.clone(),
                        limits: KeyLimits {
                            daily_requests: key.daily_requests,
                            daily_tokens: key.daily_tokens,
                            priority: key.priority,
                            queue_wait_ms: key.queue_wait_ms,
                            ..KeyLimits::default()
                        },
                        from_config: true,
                    }),
                    revoked: false,
                },
            );
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
    }

    /// Whether any key exists (then every API request needs one).
    pub fn required(&self) -> bool {
        !self
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// The caller a bearer token names. Looked up by hash, so the comparison leaks nothing of
    /// the stored secrets through timing.
    pub fn find(&self, token: &str, now_s: i64) -> Result<Arc<Caller>, KeyProblem> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
        let entry = keys.get(&hash_secret(token)).ok_or(KeyProblem::Unknown)?;
        if entry.revoked {
            return Err(KeyProblem::Revoked(entry.caller.name.clone()));
        }
        if entry.caller.limits.expires_at.is_some_and(|at| at <= now_s) {
            return Err(KeyProblem::Expired(entry.caller.name.clone()));
        }
        Ok(entry.caller.clone())
    }
}
