//! Per-principal rate limiting (`OSTWERK_RATE_LIMIT` requests per minute).
//!
//! Checked in the `AuthUser` extractor, after the token is verified, so the
//! key is the real principal (`iss` + `sub`) and a forged token cannot spend
//! somebody else's budget. Unauthenticated endpoints (health, docs) are not
//! limited.
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use crate::{
    auth::Principal,
    error::{ApiError, Problem},
};

pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl RateLimit {
    pub fn per_minute(requests: u32) -> Self {
        Self { limiter: NonZeroU32::new(requests).map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))) }
    }

    pub fn check(&self, principal: &Principal) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check_key(&principal.scope()).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::new(Problem::RateLimited, "Rate limit exceeded for this principal.")
                .with_retry_after(seconds.max(1))
        })
    }

    /// Drops idle keys so the map does not grow without bound.
    pub fn housekeeping(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
