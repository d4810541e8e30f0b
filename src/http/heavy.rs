//! Bounds on the expensive read endpoints (statistics, matching).
//!
//! A demand table counts every client, referral and measure; six parallel
//! loops of one analyst once slowed every other caller's requests by two
//! orders of magnitude. Two tools keep one principal from starving the rest:
//! - [`HeavyGate`]: at most `OSTWERK_HEAVY_CONCURRENCY` such requests of one
//!   principal run at a time; more are answered `429` with `Retry-After`
//!   at once (queueing them would hold a worker and a connection slot for
//!   nothing — a client that loops retries on its own);
//! - [`ResponseCache`]: a statistics answer is kept `OSTWERK_STATS_CACHE_SECS`
//!   and served again to the *same principal* for the same normalised query.
//!   The key includes the principal's scope so that an answer is never
//!   shared between principals, even though statistics are anonymous today:
//!   should they ever depend on who asks (an org's own measures, say), a
//!   shared cache would leak one org's view to another.
use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use actix_web::web::Bytes;

use crate::{
    auth::Principal,
    error::{ApiError, Problem},
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves the map consistent, so a panic
    // elsewhere while holding it is no reason to fail all later requests.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Per-principal limit on heavy requests in flight.
pub struct HeavyGate {
    max: usize,
    in_flight: Mutex<HashMap<String, usize>>,
}

/// One heavy request in flight; leaving (drop) frees its slot.
pub struct HeavyPermit<'a> {
    gate: &'a HeavyGate,
    key: Option<String>,
}

impl HeavyGate {
    /// `max` requests in flight per principal; `0` disables the limit.
    pub fn new(max: usize) -> Self {
        Self { max, in_flight: Mutex::new(HashMap::new()) }
    }

    /// A slot for `principal`, or `429` when all of its slots are taken.
    pub fn enter(&self, principal: &Principal) -> Result<HeavyPermit<'_>, ApiError> {
        if self.max == 0 {
            return Ok(HeavyPermit { gate: self, key: None });
        }
        let key = principal.scope();
        let mut in_flight = lock(&self.in_flight);
        let count = in_flight.entry(key.clone()).or_insert(0);
        if *count >= self.max {
            return Err(ApiError::new(
                Problem::RateLimited,
                format!(
                    "At most {} statistics or matching requests of one caller run at a time; retry when one has finished.",
                    self.max
                ),
            )
            .with_retry_after(1));
        }
        *count += 1;
        Ok(HeavyPermit { gate: self, key: Some(key) })
    }
}

impl Drop for HeavyPermit<'_> {
    fn drop(&mut self) {
        let Some(key) = &self.key else { return };
        let mut in_flight = lock(&self.gate.in_flight);
        if let Some(count) = in_flight.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(key);
            }
        }
    }
}

/// Most answers kept at once; beyond it, expired ones are dropped first and
/// then the cache is emptied (simple, and a full cache is a rare event).
const MAX_ENTRIES: usize = 1024;

/// A short-lived cache of serialised answers, keyed per principal and query.
pub struct ResponseCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Bytes)>>,
}

impl ResponseCache {
    /// Answers live `ttl`; a zero `ttl` disables the cache.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The cache key: which answer (`what`, a normalised query) for whom.
    pub fn key(principal: &Principal, what: &str) -> String {
        format!("{}\n{what}", principal.scope())
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = lock(&self.entries);
        entries.get(key).filter(|(stored, _)| stored.elapsed() < self.ttl).map(|(_, body)| body.clone())
    }

    pub fn put(&self, key: String, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (stored, _)| stored.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), body));
    }

    /// Drops expired answers (called by the hourly housekeeping).
    pub fn housekeeping(&self) {
        let mut entries = lock(&self.entries);
        entries.retain(|_, (stored, _)| stored.elapsed() < self.ttl);
        entries.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn principal(sub: &str) -> Principal {
        Principal { sub: sub.into(), iss: None, roles: vec![Role::Analyst], org: None }
    }

    #[test]
    fn gate_refuses_beyond_the_limit_per_principal_and_frees_on_drop() {
        let gate = HeavyGate::new(1);
        let first = gate.enter(&principal("a")).unwrap();
        assert_eq!(gate.enter(&principal("a")).err().unwrap().problem, Problem::RateLimited);
        assert!(gate.enter(&principal("b")).is_ok(), "another principal has its own slots");
        drop(first);
        assert!(gate.enter(&principal("a")).is_ok());
    }

    #[test]
    fn cache_is_per_principal_and_expires() {
        let cache = ResponseCache::new(Duration::from_secs(60));
        cache.put(ResponseCache::key(&principal("a"), "q"), Bytes::from_static(b"1"));
        assert_eq!(cache.get(&ResponseCache::key(&principal("a"), "q")), Some(Bytes::from_static(b"1")));
        assert_eq!(cache.get(&ResponseCache::key(&principal("b"), "q")), None);
        let off = ResponseCache::new(Duration::ZERO);
        off.put("k".into(), Bytes::from_static(b"1"));
        assert_eq!(off.get("k"), None);
    }
}
