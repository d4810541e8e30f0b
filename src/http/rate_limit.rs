//! Rate limiting.
//!
//! - Per principal (`OSTWERK_RATE_LIMIT` requests per minute): checked in
//!   the `AuthUser` extractor, after the token is verified, so the key is
//!   the real principal and a forged token cannot spend somebody else's
//!   budget.
//! - Per peer address for everything else (`OSTWERK_RATE_LIMIT_ANON`):
//!   every request that does not carry a valid token — no token, a bad or
//!   expired one (the `401`s), the docs, 404s — spends the budget of the
//!   address it came from ([`limit_anonymous`]). IPv6 addresses count per
//!   /64, since one host commonly holds a whole /64. Only the liveness and
//!   readiness probes are exempt: an orchestrator must never be refused.
//!   The peer is the TCP peer: `X-Forwarded-For` is not trusted (any
//!   caller could set it), so behind a reverse proxy all anonymous callers
//!   share the proxy's budget — size the limit accordingly.
use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
};

use actix_web::{
    HttpMessage, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};

use crate::{
    auth::Principal,
    error::{ApiError, Problem},
    startup::AppState,
};

fn retry_after(not_until: governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
    let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

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
            ApiError::new(Problem::RateLimited, "Rate limit exceeded for this principal.")
                .with_retry_after(retry_after(not_until))
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

/// The limit on requests without a valid token, per peer address.
pub struct AnonymousRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl AnonymousRateLimit {
    pub fn per_minute(requests: u32) -> Self {
        Self { limiter: NonZeroU32::new(requests).map(|n| DefaultKeyedRateLimiter::keyed(Quota::per_minute(n))) }
    }

    pub fn is_enabled(&self) -> bool {
        self.limiter.is_some()
    }

    /// Spends one request of `peer`'s budget; `429` when it is used up.
    /// A request without a known peer (not over TCP) is not limited.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(limiter), Some(peer)) = (&self.limiter, peer) else { return Ok(()) };
        limiter.check_key(&peer_key(peer)).map_err(|not_until| {
            ApiError::new(
                Problem::RateLimited,
                "Too many requests without a valid token from this address; retry later or authenticate.",
            )
            .with_retry_after(retry_after(not_until))
        })
    }

    pub fn housekeeping(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The budget an address spends: itself for IPv4 (also when mapped into
/// IPv6), its /64 for IPv6.
fn peer_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A principal verified by [`limit_anonymous`]; `AuthUser` takes it from the
/// request instead of verifying the token a second time.
#[derive(Debug, Clone)]
pub struct VerifiedPrincipal(pub Principal);

/// Paths never limited: the orchestrator's probes.
fn is_probe(path: &str) -> bool {
    matches!(path, "/livez" | "/healthz" | "/readyz")
}

/// Middleware: requests without a valid token spend their peer's budget.
pub async fn limit_anonymous(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|s| s.anon_rate_limit.is_enabled() && !is_probe(req.path())) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if let Ok(token) = crate::auth::bearer_token(req.request())
        && let Ok(principal) = state.auth.verify(&token).await
    {
        req.extensions_mut().insert(VerifiedPrincipal(principal));
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    if let Err(err) = state.anon_rate_limit.check(req.peer_addr().map(|a| a.ip())) {
        return Ok(req.into_response(err.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_peers_share_their_64_and_mapped_ipv4_counts_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(peer_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn anonymous_budget_is_per_address() {
        let limit = AnonymousRateLimit::per_minute(1);
        let one = Some("192.0.2.1".parse().unwrap());
        let two = Some("192.0.2.2".parse().unwrap());
        assert!(limit.check(one).is_ok());
        assert_eq!(limit.check(one).err().unwrap().problem, Problem::RateLimited);
        assert!(limit.check(two).is_ok());
    }
}
