//! The caller's key on the request path: may it use this model, is it within its rates and
//! caps, and — for keys with hard budgets — the worst case a request reserves before it is
//! forwarded (its estimated prompt and its `max_tokens`, or a default, at the most expensive
//! candidate's catalog price). What the request really used settles it in the record.

use std::time::SystemTime;

use crate::config::{Config, TargetRef};
use crate::error::GatewayError;
use crate::state::{Caller, KeyRefusal, Reservation};

use super::Gateway;
use super::canonical::ChatRequestInfo;

/// A key's refusal as the client's error.
pub fn refused(key: &str, refusal: KeyRefusal) -> GatewayError {
    let key = key.to_string();
    match refusal {
        KeyRefusal::DailyCap { cap, retry_after } => GatewayError::DailyCapReached {
            key,
            cap,
            retry_after,
        },
        KeyRefusal::Budget {
            budget,
            retry_after,
        } => GatewayError::BudgetExceeded {
            key,
            budget,
            retry_after,
        },
        KeyRefusal::Rate { limit, retry_after } => GatewayError::KeyRateLimited {
            key,
            limit,
            retry_after,
        },
    }
}

impl Gateway {
    /// May this caller send this request now? Counts it against the key's rates and caps.
    pub(super) async fn admit_caller(
        &self,
        caller: &Caller,
        model: &str,
    ) -> Result<(), GatewayError> {
        if let Some(models) = &caller.limits.models
            && !models.iter().any(|m| m == model)
        {
            return Err(GatewayError::ModelNotAllowed {
                key: caller.name.clone(),
                model: model.to_string(),
            });
        }
        self.shared
            .key_usage
            .admit(caller, SystemTime::now())
            .await
            .map_err(|refusal| refused(&caller.name, refusal))
    }
}

/// Whether a key has budgets a request must reserve against.
pub fn has_hard_budget(caller: &Caller) -> bool {
    let limits = &caller.limits;
    limits.daily_usd.is_some()
        || (limits.daily_tokens.is_some() && !caller.from_config)
        || limits.monthly_tokens.is_some()
        || limits.monthly_usd.is_some()
        || limits.budget_usd.is_some()
}

/// The most a request can cost on any of `targets`: tokens and USD.
pub fn worst_case(
    config: &Config,
    targets: &[TargetRef],
    info: &ChatRequestInfo,
    expected_output: u32,
) -> Reservation {
    let prompt = f64::from(info.prompt_tokens);
    let output = info.max_tokens.unwrap_or(expected_output);
    let usd = targets
        .iter()
        .filter_map(|t| {
            let model = config
                .providers
                .get(&t.provider)?
                .model_info
                .get(&t.model)?;
            Some(
                (prompt * model.input_price.unwrap_or(0.0)
                    + f64::from(output) * model.output_price.unwrap_or(0.0))
                    / 1_000_000.0,
            )
        })
        .fold(0.0, f64::max);
    Reservation {
        tokens: u64::from(info.prompt_tokens) + u64::from(output),
        usd,
        shared: false,
    }
}
