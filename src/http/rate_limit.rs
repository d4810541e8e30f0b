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
//!
//! Every answer that spent a budget tells the caller where it stands, in the
//! fields of the IETF draft "RateLimit header fields for HTTP"
//! (draft-ietf-httpapi-ratelimit-headers-11, the syntax unchanged since -08):
//! `RateLimit-Policy: "default";q=600;w=60` (the quota `q` per window `w`
//! seconds) and `RateLimit: "default";r=599;t=1` (`r` requests left, `t`
//! seconds until the whole quota is available again). The policy is named
//! `"default"` for a principal's budget and `"anonymous"` for an address's.
//! The budgets are GCRA buckets (governor), not fixed windows: one request
//! comes back every `w / q` seconds, so `t` is an upper bound, and after a
//! `429` `Retry-After` (when the next single request is allowed) is usually
//! much shorter than `t`.
use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
};

use actix_web::{
    HttpMessage, HttpRequest, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderMap, HeaderName, HeaderValue},
    middleware::Next,
    web,
};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::{StateInformationMiddleware, StateSnapshot},
    state::keyed::DefaultKeyedStateStore,
};

use crate::{
    auth::Principal,
    error::{ApiError, Problem},
    startup::AppState,
};

/// A keyed limiter whose decisions report the bucket's state (for the
/// `RateLimit` fields), not only yes or no.
type Limiter<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

fn limiter<K: std::hash::Hash + Eq + Clone>(requests_per_minute: u32) -> Option<Limiter<K>> {
    NonZeroU32::new(requests_per_minute)
        .map(|n| RateLimiter::keyed(Quota::per_minute(n)).with_middleware::<StateInformationMiddleware>())
}

type NotUntil = governor::NotUntil<governor::clock::QuantaInstant>;

fn whole_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

fn retry_after(not_until: &NotUntil) -> u64 {
    whole_seconds(not_until.wait_time_from(DefaultClock::default().now())).max(1)
}

/// Where a caller stands with one budget, as the `RateLimit` fields say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaState {
    /// `"default"` (per principal) or `"anonymous"` (per address).
    pub policy: &'static str,
    /// Requests per window.
    pub quota: u32,
    /// The window in seconds.
    pub window: u64,
    pub remaining: u32,
    /// Seconds until the whole quota is available again.
    pub reset: u64,
}

impl QuotaState {
    const WINDOW_SECS: u64 = 60;

    /// After an allowed request: `remaining` more may follow at once, and
    /// each used one comes back after one replenishment interval.
    fn allowed(policy: &'static str, snapshot: &StateSnapshot) -> Self {
        let quota = snapshot.quota();
        let size = quota.burst_size().get();
        let remaining = snapshot.remaining_burst_capacity().min(size);
        let reset = whole_seconds(quota.replenish_interval() * (size - remaining));
        Self { policy, quota: size, window: Self::WINDOW_SECS, remaining, reset }
    }

    /// After a refused request: nothing left; the whole quota is back once
    /// the next request is allowed and the rest have been replenished.
    fn refused(policy: &'static str, not_until: &NotUntil) -> Self {
        let quota = not_until.quota();
        let size = quota.burst_size().get();
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        let reset = whole_seconds(wait + quota.replenish_interval() * (size - 1));
        Self { policy, quota: size, window: Self::WINDOW_SECS, remaining: 0, reset }
    }

    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
    pub fn write(&self, headers: &mut HeaderMap) {
        let policy = format!("\"{}\";q={};w={}", self.policy, self.quota, self.window);
        let state = format!("\"{}\";r={};t={}", self.policy, self.remaining, self.reset);
        for (name, value) in [(POLICY_HEADER, policy), (STATE_HEADER, state)] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
}

pub const POLICY_HEADER: &str = "ratelimit-policy";
pub const STATE_HEADER: &str = "ratelimit";

/// Keeps the latest budget decision of a request for its answer's headers.
fn remember(req: &HttpRequest, state: QuotaState) {
    req.extensions_mut().insert(state);
}

pub struct RateLimit {
    limiter: Option<Limiter<String>>,
}

impl RateLimit {
    pub fn per_minute(requests: u32) -> Self {
        Self { limiter: limiter(requests) }
    }

    /// Spends one of the principal's requests; `429` when none is left.
    /// Either way the request remembers the budget's state, which
    /// [`limit_anonymous`] writes into the answer.
    pub fn check(&self, principal: &Principal, req: &HttpRequest) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        match limiter.check_key(&principal.scope()) {
            Ok(snapshot) => {
                remember(req, QuotaState::allowed("default", &snapshot));
                Ok(())
            }
            Err(not_until) => {
                remember(req, QuotaState::refused("default", &not_until));
                Err(ApiError::new(Problem::RateLimited, "Rate limit exceeded for this principal.")
                    .with_retry_after(retry_after(&not_until)))
            }
        }
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
    limiter: Option<Limiter<IpAddr>>,
}

impl AnonymousRateLimit {
    pub fn per_minute(requests: u32) -> Self {
        Self { limiter: limiter(requests) }
    }

    pub fn is_enabled(&self) -> bool {
        self.limiter.is_some()
    }

    /// Spends one request of `peer`'s budget; `429` when it is used up.
    /// A request without a known peer (not over TCP) is not limited.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<Option<QuotaState>, (QuotaState, ApiError)> {
        let (Some(limiter), Some(peer)) = (&self.limiter, peer) else { return Ok(None) };
        match limiter.check_key(&peer_key(peer)) {
            Ok(snapshot) => Ok(Some(QuotaState::allowed("anonymous", &snapshot))),
            Err(not_until) => Err((
                QuotaState::refused("anonymous", &not_until),
                ApiError::new(
                    Problem::RateLimited,
                    "Too many requests without a valid token from this address; retry later or authenticate.",
                )
                .with_retry_after(retry_after(&not_until)),
            )),
        }
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
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/livez" | "/healthz" | "/readyz")
}

/// Middleware: requests without a valid token spend their peer's budget,
/// and every answer that spent a budget (the principal's, in `AuthUser`, or
/// the address's, here) carries the `RateLimit` fields of that budget —
/// `429`s included.
pub async fn limit_anonymous(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let Some(state) = state.filter(|s| s.anon_rate_limit.is_enabled() && !is_probe(req.path())) else {
        return Ok(with_quota_headers(next.call(req).await?.map_into_boxed_body()));
    };
    if let Ok(token) = crate::auth::bearer_token(req.request())
        && let Ok(principal) = state.auth.verify(&token).await
    {
        req.extensions_mut().insert(VerifiedPrincipal(principal));
        return Ok(with_quota_headers(next.call(req).await?.map_into_boxed_body()));
    }
    match state.anon_rate_limit.check(req.peer_addr().map(|a| a.ip())) {
        Err((quota, err)) => {
            remember(req.request(), quota);
            Ok(with_quota_headers(req.into_response(err.error_response())))
        }
        Ok(quota) => {
            if let Some(quota) = quota {
                remember(req.request(), quota);
            }
            Ok(with_quota_headers(next.call(req).await?.map_into_boxed_body()))
        }
    }
}

/// Writes the `RateLimit` fields of the budget the request spent, if any.
fn with_quota_headers(mut res: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let quota = res.request().extensions().get::<QuotaState>().copied();
    if let Some(quota) = quota {
        quota.write(res.headers_mut());
    }
    res
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
        assert_eq!(limit.check(one).err().unwrap().1.problem, Problem::RateLimited);
        assert!(limit.check(two).is_ok());
    }

    #[test]
    fn quota_state_counts_down_and_resets_within_the_window() {
        let limit = AnonymousRateLimit::per_minute(6);
        let peer = Some("192.0.2.9".parse().unwrap());
        let first = limit.check(peer).unwrap().unwrap();
        assert_eq!((first.quota, first.window, first.remaining), (6, 60, 5));
        assert!((1..=10).contains(&first.reset), "one used request is back within 10 s: {first:?}");
        for _ in 0..5 {
            limit.check(peer).unwrap();
        }
        let (refused, _) = limit.check(peer).err().unwrap();
        assert_eq!(refused.remaining, 0);
        assert!((51..=60).contains(&refused.reset), "{refused:?}");
    }

    #[test]
    fn quota_state_is_written_in_the_draft_syntax() {
        let mut headers = HeaderMap::new();
        QuotaState { policy: "default", quota: 600, window: 60, remaining: 599, reset: 1 }.write(&mut headers);
        assert_eq!(headers.get("RateLimit-Policy").unwrap(), "\"default\";q=600;w=60");
        assert_eq!(headers.get("RateLimit").unwrap(), "\"default\";r=599;t=1");
    }
}
