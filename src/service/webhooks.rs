//! Webhooks: subscriptions, the outbox written with each change, and the
//! delivery worker (at-least-once, signed, retried with backoff for 24 h).
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{OFFICE_ORG, OrgKind, Owner, Principal, Role},
    domain::{
        codes::ReferralStatus,
        ids::now,
        webhooks::{WebhookEvent, is_private, signature},
    },
    entities::{measure, referral, webhook::Model},
    error::{ApiError, FieldError},
    repository::{self, webhooks as repo},
};

/// How long deliveries are retried.
pub const RETRY_HOURS: i64 = 24;
/// How long one instance holds a delivery while sending it.
const LEASE_SECONDS: i64 = 60;

/// The owners whose webhooks `principal` manages; `None` for admins (all).
/// A job centre whose org string equals a provider's id owns only the job
/// centre's subscriptions, never the provider's.
pub fn org_scope(principal: &Principal) -> Option<Vec<Owner>> {
    if principal.has(Role::Admin) { None } else { Some(principal.owners()) }
}

/// The kind of org an org string names as far as the registry knows: the
/// office, an existing provider or employer, else a job centre (job centres
/// are not registered). The org comes back canonical.
async fn infer_owner(db: &impl ConnectionTrait, org: &str) -> Result<Owner, ApiError> {
    let org = crate::auth::canonical_org(org).unwrap_or_default();
    if org.eq_ignore_ascii_case(OFFICE_ORG) {
        return Ok(Owner::office());
    }
    if let Ok(id) = Uuid::parse_str(&org) {
        if repository::providers::find(db, id).await?.is_some() {
            return Ok(Owner { kind: OrgKind::Provider, org });
        }
        if repository::employers::find(db, id).await?.is_some() {
            return Ok(Owner { kind: OrgKind::Employer, org });
        }
    }
    Ok(Owner { kind: OrgKind::Jobcenter, org })
}

/// Refuses URLs that are not http(s), or whose host is (or resolves to) a
/// loopback, private or link-local address — unless explicitly allowed.
pub async fn check_target(url: &str, allow_private: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "must be an absolute http:// or https:// URL".to_owned())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err("must be an absolute http:// or https:// URL".to_owned());
    }
    if allow_private {
        return Ok(parsed);
    }
    let host = parsed.host_str().unwrap_or_default().trim_matches(['[', ']']).to_owned();
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return Err("must not point to a loopback, private or link-local address".to_owned());
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<std::net::IpAddr> = match host.parse() {
        Ok(ip) => vec![ip],
        // A host that does not resolve now is checked again at delivery.
        Err(_) => match tokio::time::timeout(StdDuration::from_secs(3), tokio::net::lookup_host((host.as_str(), port)))
            .await
        {
            Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
            _ => Vec::new(),
        },
    };
    if addresses.into_iter().any(is_private) {
        return Err("must not point to a loopback, private or link-local address".to_owned());
    }
    Ok(parsed)
}

/// A subscription as requested, validated.
pub struct Subscription {
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub org: Option<String>,
    pub active: bool,
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)])
}

pub async fn create(
    db: &impl ConnectionTrait,
    principal: &Principal,
    sub: &Subscription,
    allow_private: bool,
) -> Result<Model, ApiError> {
    check_target(&sub.url, allow_private).await.map_err(|m| invalid("url", m))?;
    let owner = match (principal.has(Role::Admin), &sub.org) {
        (true, Some(org)) => infer_owner(db, org).await?,
        (true, None) => Owner::office(),
        (false, asked) => {
            let own =
                if principal.is_office() { OFFICE_ORG.to_owned() } else { principal.org.clone().unwrap_or_default() };
            if asked.as_deref().and_then(crate::auth::canonical_org).is_some_and(|a| a != own) {
                return Err(ApiError::forbidden("Only an admin may subscribe for another organisation."));
            }
            // With several partner roles, the kind the registry knows the org as wins.
            let preferred = infer_owner(db, &own).await?.kind;
            principal.acting_owner(Some(preferred))
        }
    };
    let events: Vec<&str> = sub.events.iter().map(|e| e.as_str()).collect();
    let secret = crate::domain::webhooks::new_secret();
    let new =
        repo::NewWebhook { owner: &owner, url: &sub.url, events: &events, secret: &secret, created_by: &principal.sub };
    Ok(repo::insert(db, &new).await?)
}

pub async fn get(db: &impl ConnectionTrait, principal: &Principal, id: Uuid) -> Result<Model, ApiError> {
    repo::find(db, org_scope(principal).as_deref(), id).await?.ok_or_else(|| ApiError::not_found("Webhook"))
}

pub async fn update(
    db: &impl ConnectionTrait,
    current: &Model,
    sub: &Subscription,
    allow_private: bool,
) -> Result<Model, ApiError> {
    check_target(&sub.url, allow_private).await.map_err(|m| invalid("url", m))?;
    if sub.org.as_deref().and_then(crate::auth::canonical_org).is_some_and(|o| o != current.org) {
        return Err(invalid("org", "cannot be changed; subscribe anew"));
    }
    let events: Vec<&str> = sub.events.iter().map(|e| e.as_str()).collect();
    repo::update(db, current, &sub.url, &events, sub.active).await?.ok_or_else(|| ApiError::stale("webhook"))
}

pub async fn delete(db: &impl ConnectionTrait, current: &Model) -> Result<(), ApiError> {
    if repo::delete(db, current.id, current.version).await? { Ok(()) } else { Err(ApiError::stale("webhook")) }
}

fn envelope(event: WebhookEvent, data: serde_json::Value) -> String {
    json!({
        "type": event.as_str(),
        "timestamp": now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": data,
    })
    .to_string()
}

/// The owners that may see a referral: the office, the referring job
/// centre, the provider of its measure, the employer of its vacancy — each
/// with its kind, so a subscription of a job centre named like the provider
/// gets nothing of the provider's.
async fn referral_audience(db: &impl ConnectionTrait, r: &referral::Model) -> Result<Vec<Owner>, ApiError> {
    let mut owners = vec![Owner::office()];
    if r.referring_org != OFFICE_ORG {
        owners.push(Owner { kind: OrgKind::Jobcenter, org: r.referring_org.clone() });
    }
    if let Some(m) = r.measure_id
        && let Some(measure) = repository::measures::find(db, m).await?
    {
        owners.push(Owner { kind: OrgKind::Provider, org: measure.provider_id.to_string() });
    }
    if let Some(v) = r.vacancy_id
        && let Some(vacancy) = repository::vacancies::find(db, v).await?
    {
        owners.push(Owner { kind: OrgKind::Employer, org: vacancy.employer_id.to_string() });
    }
    Ok(owners)
}

/// Outbox rows for a new referral (in the creating transaction).
pub async fn referral_created(db: &impl ConnectionTrait, r: &referral::Model) -> Result<(), ApiError> {
    let event = WebhookEvent::ReferralCreated;
    let hooks = repo::subscribers(db, event.as_str(), Some(&referral_audience(db, r).await?)).await?;
    let body = envelope(
        event,
        json!({"resource": "referral", "id": r.id, "status": r.status, "link": format!("/api/v1/referrals/{}", r.id)}),
    );
    Ok(repo::enqueue(db, &hooks, event.as_str(), &body).await?)
}

/// Outbox rows for a status change (in the transition's transaction).
pub async fn referral_status_changed(
    db: &impl ConnectionTrait,
    r: &referral::Model,
    from: ReferralStatus,
) -> Result<(), ApiError> {
    let event = WebhookEvent::ReferralStatusChanged;
    let hooks = repo::subscribers(db, event.as_str(), Some(&referral_audience(db, r).await?)).await?;
    let body = envelope(
        event,
        json!({"resource": "referral", "id": r.id, "status": r.status, "previous_status": from.as_str(),
               "link": format!("/api/v1/referrals/{}", r.id)}),
    );
    Ok(repo::enqueue(db, &hooks, event.as_str(), &body).await?)
}

/// Outbox rows for a created, changed or deleted measure (everyone may see measures).
pub async fn measure_changed(db: &impl ConnectionTrait, m: &measure::Model, deleted: bool) -> Result<(), ApiError> {
    let event = WebhookEvent::MeasureChanged;
    let hooks = repo::subscribers(db, event.as_str(), None).await?;
    let status = if deleted { "deleted" } else { m.status.as_str() };
    let body = envelope(
        event,
        json!({"resource": "measure", "id": m.id, "status": status, "link": format!("/api/v1/measures/{}", m.id)}),
    );
    Ok(repo::enqueue(db, &hooks, event.as_str(), &body).await?)
}

/// Sends every due delivery once; returns how many were attempted. Several
/// instances may run this concurrently: a delivery is leased before sending.
pub async fn deliver_due(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    allow_private: bool,
) -> Result<usize, ApiError> {
    let started = now();
    let mut attempted = 0;
    for id in repo::due(db, started, 50).await? {
        let at = now();
        let Some(delivery) = repo::lease(db, id, at, at + Duration::seconds(LEASE_SECONDS)).await? else { continue };
        attempted += 1;
        let hook = repo::find(db, None, delivery.webhook_id).await?;
        let outcome = match &hook {
            Some(h) if h.active => send(client, h, &delivery, allow_private).await,
            _ => Err((None, "the webhook was deactivated".to_owned())),
        };
        let (status, http_status, error, retry_at) = match outcome {
            Ok(code) => (repo::DELIVERED, Some(code), None, at),
            Err((code, error)) => {
                let expired =
                    at - delivery.created_at > Duration::hours(RETRY_HOURS) || hook.as_ref().is_none_or(|h| !h.active);
                // 10 s, 20 s, 40 s … capped at one hour.
                let backoff = 10i64.saturating_mul(1i64 << delivery.attempts.clamp(0, 12)).min(3600);
                let status = if expired { repo::FAILED } else { repo::PENDING };
                (status, code, Some(error), at + Duration::seconds(backoff))
            }
        };
        repo::record_attempt(db, &delivery, status, http_status, error.as_deref(), retry_at).await?;
    }
    Ok(attempted)
}

async fn send(
    client: &reqwest::Client,
    hook: &Model,
    delivery: &crate::entities::webhook_delivery::Model,
    allow_private: bool,
) -> Result<u16, (Option<u16>, String)> {
    let url = check_target(&hook.url, allow_private).await.map_err(|e| (None, format!("target refused: {e}")))?;
    let timestamp = Utc::now().timestamp();
    let id = delivery.event_id.to_string();
    let signed =
        signature(&hook.secret, &id, timestamp, &delivery.payload).ok_or((None, "unusable secret".to_owned()))?;
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signed)
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(|e| (None, format!("request failed: {}", e.without_url())))?;
    let code = response.status().as_u16();
    if response.status().is_success() { Ok(code) } else { Err((Some(code), format!("answered {code}"))) }
}

/// The requested event names, validated (`422` naming each bad one).
pub fn parse_events(values: &[String]) -> Result<Vec<WebhookEvent>, ApiError> {
    let mut errors = Vec::new();
    let mut events = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match WebhookEvent::parse(v) {
            Some(e) if !events.contains(&e) => events.push(e),
            Some(_) => {}
            None => errors.push(FieldError::new(
                format!("events[{i}]"),
                "must be referral.created, referral.status_changed or measure.changed",
            )),
        }
    }
    if events.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("events", "must name at least one event"));
    }
    if errors.is_empty() { Ok(events) } else { Err(ApiError::validation(errors)) }
}
