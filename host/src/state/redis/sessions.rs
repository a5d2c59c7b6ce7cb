//! Sticky sessions on Redis: one key per conversation with its TTL, so a conversation keeps
//! its target whichever instance the load balancer picks.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::RedisLink;
use crate::config::TargetRef;
use crate::state::SessionStore;
use crate::state::memory::MemorySessions;

pub struct RedisSessions {
    link: Arc<RedisLink>,
    local: MemorySessions,
}

impl RedisSessions {
    pub fn new(link: Arc<RedisLink>) -> Self {
        RedisSessions {
            link,
            local: MemorySessions::default(),
        }
    }

    fn key(&self, session: &str) -> String {
        // The session key holds the client's text: hash it so any byte is a safe key.
        use sha2::Digest;
        let digest = hex::encode(&sha2::Sha256::digest(session.as_bytes())[..16]);
        self.link.key("session", &digest, "target")
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn get(&self, session: &str) -> Option<TargetRef> {
        let key = self.key(session);
        let key = &key;
        let shared = self
            .link
            .run(|mut c| async move {
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await;
        match shared {
            Some(value) => value.and_then(|v| {
                let (provider, model) = v.split_once('/')?;
                Some(TargetRef {
                    provider: provider.to_string(),
                    model: model.to_string(),
                })
            }),
            None => self.local.get(session).await,
        }
    }

    async fn set(&self, session: String, target: TargetRef, ttl: Duration) {
        let key = self.key(&session);
        let key = &key;
        let value = target.to_string();
        let value = &value;
        let millis = ttl.as_millis().max(1) as u64;
        let done = self
            .link
            .run(|mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("PX")
                    .arg(millis)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        if done.is_none() {
            self.local.set(session, target, ttl).await;
        }
    }
}
