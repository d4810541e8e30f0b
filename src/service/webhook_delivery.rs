//! Sending webhooks: which targets may be reached (SSRF policy), and the
//! delivery worker (parallel, bounded, fair between organisations).
//!
//! The target policy is enforced twice. At registration the URL's host is
//! resolved and refused when it does not resolve or reaches a non-public
//! address. At every delivery the HTTP client resolves names only through
//! [`CheckedResolver`], which drops non-public addresses, so the connection
//! goes to an address that was checked in the same step — a name re-pointed
//! to 127.0.0.1 after registration (DNS rebinding) cannot be reached. A
//! separate "check, then let reqwest resolve again" was rejected: the second
//! lookup may answer differently.
use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration as StdDuration,
};

use chrono::{Duration, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    auth::{OrgKind, Owner},
    config::Settings,
    domain::{
        ids::now,
        webhooks::{is_private, signature},
    },
    entities::{webhook, webhook_delivery},
    error::ApiError,
    repository::webhooks as repo,
};

/// How long deliveries are retried.
pub const RETRY_HOURS: i64 = 24;
/// How long a host name may take to resolve before it counts as unresolvable.
pub const RESOLVE_TIMEOUT: StdDuration = StdDuration::from_secs(2);
/// Due deliveries read per polling round.
const BATCH: u64 = 200;

const NOT_PUBLIC: &str = "must not point to a loopback, private, link-local or otherwise non-public address";
const NOT_HTTP: &str = "must be an absolute http:// or https:// URL";

/// Why a target is refused (kept apart from other errors so a refused
/// target is counted as such, not as a connection failure).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TargetRefused(pub String);

/// Checks a subscription's URL at registration: http(s), and unless
/// `allow_private`, a host that is a public address or a name that resolves
/// (within [`RESOLVE_TIMEOUT`]) to public addresses only. Fails closed: a
/// name that does not resolve, or not in time, is refused.
pub async fn check_target(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = parse_target(url)?;
    if allow_private {
        return Ok(parsed);
    }
    check_literal(&parsed)?;
    if let Some(url::Host::Domain(name)) = parsed.host() {
        let addresses = resolve(name).await.map_err(|e| e.0)?;
        if addresses.iter().any(|a| is_private(a.ip())) {
            return Err(NOT_PUBLIC.to_owned());
        }
    }
    Ok(parsed)
}

/// A subscription URL that passed [`check_target`]; made only by
/// [`CheckedTarget::check`], so no URL is stored without the check. It is
/// checked before the creating transaction, because resolving a name may
/// take up to [`RESOLVE_TIMEOUT`] and must not hold the database meanwhile.
#[derive(Debug, Clone)]
pub struct CheckedTarget(String);

impl CheckedTarget {
    pub async fn check(url: &str, allow_private: bool) -> Result<Self, String> {
        check_target(url, allow_private).await.map(|_| Self(url.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse_target(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| NOT_HTTP.to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(NOT_HTTP.to_owned());
    }
    Ok(parsed)
}

/// The checks that need no DNS: an address literal must be public, and the
/// `localhost` names are refused whatever the resolver says.
fn check_literal(url: &reqwest::Url) -> Result<(), String> {
    let refused = match url.host() {
        Some(url::Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => true,
    };
    if refused { Err(NOT_PUBLIC.to_owned()) } else { Ok(()) }
}

/// Resolves `name` within [`RESOLVE_TIMEOUT`]; no answer is an error.
async fn resolve(name: &str) -> Result<Vec<SocketAddr>, TargetRefused> {
    let unresolvable = || TargetRefused(format!("the host name {name} does not resolve"));
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, 0))).await {
        Ok(Ok(found)) => {
            let found: Vec<SocketAddr> = found.collect();
            if found.is_empty() { Err(unresolvable()) } else { Ok(found) }
        }
        Ok(Err(_)) | Err(_) => Err(unresolvable()),
    }
}

/// The delivery client's resolver: resolves with a time limit and, unless
/// private targets are allowed, hands reqwest only public addresses — the
/// ones it then connects to.
pub struct CheckedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found = resolve(&name).await?;
            let usable: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || !is_private(a.ip())).collect();
            if usable.is_empty() {
                return Err(TargetRefused(format!("{name} resolves only to non-public addresses")).into());
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// How deliveries are bounded (from `OSTWERK_WEBHOOK_*`).
#[derive(Debug, Clone)]
pub struct DeliveryLimits {
    /// Whole attempt, connection included.
    pub timeout: StdDuration,
    /// Deliveries in flight at once in this instance.
    pub concurrency: usize,
    /// Deliveries in flight at once for one organisation, so one org's slow
    /// targets cannot take every slot.
    pub per_org: usize,
    pub allow_private: bool,
}

impl DeliveryLimits {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            timeout: StdDuration::from_secs(s.webhook_timeout_secs.max(1)),
            concurrency: usize::try_from(s.webhook_concurrency.max(1)).unwrap_or(16),
            per_org: usize::try_from(s.webhook_concurrency_per_org.max(1)).unwrap_or(4),
            allow_private: s.webhook_allow_private,
        }
    }

    /// Longer than any attempt can take, so a lease never runs out while its
    /// delivery is still being sent (another instance would send it again).
    fn lease(&self) -> Duration {
        Duration::seconds(i64::try_from(self.timeout.as_secs()).unwrap_or(3600) + RESOLVE_TIMEOUT.as_secs() as i64 + 60)
    }
}

/// The delivery worker's state: one HTTP client, the free slots and the
/// deliveries in flight per organisation. Cheap to clone.
#[derive(Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

fn owner_of(hook: &webhook::Model) -> Owner {
    Owner { kind: OrgKind::parse(&hook.owner_kind).unwrap_or(OrgKind::Jobcenter), org: hook.org.clone() }
}

struct Inner {
    client: reqwest::Client,
    limits: DeliveryLimits,
    slots: Arc<Semaphore>,
    in_flight: Mutex<HashMap<Owner, usize>>,
}

/// Frees an organisation's share when its delivery ends, however it ends.
struct OrgShare {
    inner: Arc<Inner>,
    org: Owner,
}

impl Drop for OrgShare {
    fn drop(&mut self) {
        let mut in_flight = self.inner.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = in_flight.get_mut(&self.org) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                in_flight.remove(&self.org);
            }
        }
    }
}

/// One failed attempt: a reason class (the metric label), the HTTP status
/// if there was an answer, and a message for the delivery log.
struct Failure {
    reason: &'static str,
    http_status: Option<u16>,
    message: String,
}

impl Failure {
    fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self { reason, http_status: None, message: message.into() }
    }
}

impl Deliverer {
    pub fn new(limits: DeliveryLimits) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(limits.timeout)
            .connect_timeout(limits.timeout.min(StdDuration::from_secs(5)))
            // A redirect would lead to a target nobody checked.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve and connect on our behalf, past the resolver.
            .no_proxy()
            .dns_resolver(CheckedResolver { allow_private: limits.allow_private })
            .user_agent(concat!("ostwerk-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let slots = Arc::new(Semaphore::new(limits.concurrency));
        Ok(Self { inner: Arc::new(Inner { client, limits, slots, in_flight: Mutex::default() }) })
    }

    /// Starts every due delivery there is a slot for and returns how many
    /// were started; they finish in the background. Several instances may
    /// run this at once: each delivery is leased before it is sent.
    pub async fn deliver_due(&self, db: &DatabaseConnection) -> Result<usize, ApiError> {
        let saturated: Vec<Owner> = {
            let in_flight = self.lock();
            in_flight.iter().filter(|(_, n)| **n >= self.inner.limits.per_org).map(|(o, _)| o.clone()).collect()
        };
        let skip = repo::ids_of_owners(db, &saturated).await?;
        let due = repo::due(db, now(), BATCH, &skip).await?;
        let ids: Vec<Uuid> = due.iter().map(|(_, w)| *w).collect::<HashSet<_>>().into_iter().collect();
        let hooks: HashMap<Uuid, webhook::Model> =
            repo::find_many(db, &ids).await?.into_iter().map(|h| (h.id, h)).collect();
        let mut started = 0;
        for (id, webhook_id) in due {
            let hook = hooks.get(&webhook_id).cloned();
            // The fair share is per typed owner, like every other ownership decision.
            let org = hook.as_ref().map(owner_of).unwrap_or_else(Owner::office);
            let Some(share) = self.take_share(&org) else { continue };
            let Ok(slot) = self.inner.slots.clone().try_acquire_owned() else { break };
            let at = now();
            let Some(delivery) = repo::lease(db, id, at, at + self.inner.limits.lease()).await? else { continue };
            started += 1;
            let (this, db) = (self.clone(), db.clone());
            tokio::spawn(async move {
                let _held = (slot, share);
                this.attempt(&db, hook.as_ref(), &delivery).await;
            });
        }
        Ok(started)
    }

    /// Waits until no delivery of this worker is in flight.
    pub async fn idle(&self) {
        let all = u32::try_from(self.inner.limits.concurrency).unwrap_or(u32::MAX);
        drop(self.inner.slots.acquire_many(all).await);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Owner, usize>> {
        self.inner.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// One more in-flight delivery for `org`, unless it already has its share.
    fn take_share(&self, org: &Owner) -> Option<OrgShare> {
        let mut in_flight = self.lock();
        let n = in_flight.entry(org.clone()).or_insert(0);
        if *n >= self.inner.limits.per_org {
            return None;
        }
        *n += 1;
        Some(OrgShare { inner: self.inner.clone(), org: org.clone() })
    }

    /// Sends one leased delivery and records the outcome.
    async fn attempt(
        &self,
        db: &DatabaseConnection,
        hook: Option<&webhook::Model>,
        delivery: &webhook_delivery::Model,
    ) {
        let at = now();
        let outcome = match hook {
            Some(h) if h.active => {
                // reqwest's own timeout covers the request; this one also bounds the resolver.
                let limit = self.inner.limits.timeout + RESOLVE_TIMEOUT;
                tokio::time::timeout(limit, self.send(h, delivery))
                    .await
                    .unwrap_or_else(|_| Err(Failure::new("timeout", "timed out")))
            }
            _ => Err(Failure::new("deactivated", "the webhook was deactivated or deleted")),
        };
        let (status, http_status, error, retry_at) = match outcome {
            Ok(code) => (repo::DELIVERED, Some(code), None, at),
            Err(failure) => {
                let expired =
                    at - delivery.created_at > Duration::hours(RETRY_HOURS) || !hook.is_some_and(|h| h.active);
                // 10 s, 20 s, 40 s … capped at one hour.
                let backoff = 10i64.saturating_mul(1i64 << delivery.attempts.clamp(0, 12)).min(3600);
                let status = if expired { repo::FAILED } else { repo::PENDING };
                report_failure(hook, delivery, &failure, expired);
                (status, failure.http_status, Some(failure.message), at + Duration::seconds(backoff))
            }
        };
        if let Err(e) = repo::record_attempt(db, delivery, status, http_status, error.as_deref(), retry_at).await {
            // The lease runs out and the delivery is tried again: at-least-once.
            tracing::warn!(delivery_id = %delivery.id, error = %e, "webhook delivery outcome not recorded");
        }
    }

    async fn send(&self, hook: &webhook::Model, delivery: &webhook_delivery::Model) -> Result<u16, Failure> {
        let url =
            parse_target(&hook.url).map_err(|e| Failure::new("refused_target", format!("target refused: {e}")))?;
        if !self.inner.limits.allow_private {
            // Address literals never reach the resolver: check them here.
            check_literal(&url).map_err(|e| Failure::new("refused_target", format!("target refused: {e}")))?;
        }
        let timestamp = Utc::now().timestamp();
        let id = delivery.event_id.to_string();
        let mut signed = signature(&hook.secret, &id, timestamp, &delivery.payload)
            .ok_or_else(|| Failure::new("other", "unusable secret"))?;
        // After a rotation the old secret signs too until its overlap ends
        // (Standard Webhooks: several space-separated signatures, any may verify).
        if let (Some(previous), Some(until)) = (&hook.previous_secret, hook.previous_secret_until)
            && Utc::now() < until
            && let Some(old) = signature(previous, &id, timestamp, &delivery.payload)
        {
            signed = format!("{signed} {old}");
        }
        let response = self
            .inner
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signed)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(request_failure)?;
        let code = response.status().as_u16();
        if response.status().is_success() {
            Ok(code)
        } else {
            Err(Failure { reason: "http_status", http_status: Some(code), message: format!("answered {code}") })
        }
    }
}

/// Sorts a reqwest error into a reason class; the message never holds the URL.
fn request_failure(e: reqwest::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<TargetRefused>() {
            return Failure::new("refused_target", format!("target refused: {refused}"));
        }
        source = err.source();
    }
    let reason = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    };
    Failure::new(reason, format!("request failed: {}", e.without_url()))
}

/// The host (and port) of a target, for logs: never its path or query,
/// which may carry a partner's token.
pub fn target_host(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => "?".to_owned(),
        },
        Err(_) => "?".to_owned(),
    }
}

fn report_failure(
    hook: Option<&webhook::Model>,
    delivery: &webhook_delivery::Model,
    failure: &Failure,
    permanently: bool,
) {
    let host = hook.map(|h| target_host(&h.url)).unwrap_or_else(|| "?".to_owned());
    crate::http::metrics::record_webhook_failure(failure.reason, permanently);
    if permanently {
        tracing::warn!(
            webhook_id = %delivery.webhook_id, delivery_id = %delivery.id, target_host = %host,
            reason = failure.reason, error = %failure.message, attempts = delivery.attempts + 1,
            "webhook delivery failed permanently; no more retries"
        );
    } else {
        tracing::warn!(
            webhook_id = %delivery.webhook_id, delivery_id = %delivery.id, target_host = %host,
            reason = failure.reason, error = %failure.message, attempt = delivery.attempts + 1,
            "webhook delivery attempt failed; will retry"
        );
    }
}

#[cfg(test)]
mod tests {
    use reqwest::dns::Resolve;

    use super::*;

    #[tokio::test]
    async fn address_literals_outside_public_ranges_are_refused_at_registration() {
        for url in ["http://[64:ff9b::7f00:1]/", "http://[::127.0.0.1]/", "http://0x7f.1/", "http://[fec0::1]/"] {
            assert!(check_target(url, false).await.is_err(), "{url}");
        }
        assert!(check_target("https://93.184.215.14/hook", false).await.is_ok());
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_refused() {
        let refused = check_target("https://no-such-host.invalid/hook", false).await;
        assert!(refused.is_err_and(|e| e.contains("does not resolve")));
    }

    #[tokio::test]
    async fn the_delivery_resolver_hands_out_no_loopback_address() {
        // Arrange: `localhost` resolves to loopback addresses only.
        let resolver = CheckedResolver { allow_private: false };
        // Act
        let outcome = resolver.resolve("localhost".parse().unwrap()).await;
        // Assert
        let error = outcome.err().expect("refused");
        assert!(error.downcast_ref::<TargetRefused>().is_some(), "{error}");
    }

    #[tokio::test]
    async fn the_delivery_resolver_allows_loopback_when_private_targets_are_allowed() {
        let resolver = CheckedResolver { allow_private: true };
        let found: Vec<SocketAddr> = resolver.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(found.iter().all(|a| a.ip().is_loopback()) && !found.is_empty());
    }

    #[test]
    fn logs_name_the_host_never_the_query() {
        assert_eq!(target_host("https://partner.example/h?token=geheim"), "partner.example");
        assert_eq!(target_host("http://127.0.0.1:8081/h?x=1"), "127.0.0.1:8081");
    }
}
