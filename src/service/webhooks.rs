//! Webhooks: subscriptions and the outbox written with each change. The
//! sending side (target policy, delivery worker) is `webhook_delivery`.
use sea_orm::ConnectionTrait;
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{Principal, Role},
    domain::{codes::ReferralStatus, ids::now, webhooks::WebhookEvent},
    entities::{measure, referral, webhook::Model},
    error::{ApiError, FieldError},
    repository::{self, webhooks as repo},
};

pub use super::webhook_delivery::{CheckedTarget, RETRY_HOURS, check_target};

/// The org whose webhooks `principal` manages; `None` for admins (all orgs).
pub fn org_scope(principal: &Principal) -> Option<String> {
    if principal.has(Role::Admin) { None } else { Some(principal.org_or_office()) }
}

/// Checks a subscription's URL against the target policy (`422` on `url`).
pub async fn check_url(url: &str, allow_private: bool) -> Result<CheckedTarget, ApiError> {
    CheckedTarget::check(url, allow_private).await.map_err(|m| invalid("url", m))
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
    target: &CheckedTarget,
    max_per_org: u64,
) -> Result<Model, ApiError> {
    let org = match (org_scope(principal), &sub.org) {
        (None, Some(org)) => org.clone(),
        (None, None) => principal.org_or_office(),
        (Some(own), None) => own,
        (Some(own), Some(asked)) if *asked == own => own,
        (Some(_), Some(_)) => return Err(ApiError::forbidden("Only an admin may subscribe for another organisation.")),
    };
    check_subscription_cap(db, &org, max_per_org).await?;
    let events: Vec<&str> = sub.events.iter().map(|e| e.as_str()).collect();
    let secret = crate::domain::webhooks::new_secret();
    let new = repo::NewWebhook {
        org: &org,
        url: target.as_str(),
        events: &events,
        secret: &secret,
        created_by: &principal.sub,
    };
    Ok(repo::insert(db, &new).await?)
}

/// Every subscription costs a delivery per event, so one organisation may
/// hold at most `max` (`OSTWERK_WEBHOOK_MAX_PER_ORG`). Counted in the
/// creating transaction; on PostgreSQL two creates racing for the last place
/// may both pass, which overshoots by a few at most — a bound on cost, not
/// an exact quota, so no lock was taken for it.
async fn check_subscription_cap(db: &impl ConnectionTrait, org: &str, max: u64) -> Result<(), ApiError> {
    if repo::count_of_org(db, org).await? >= max {
        return Err(ApiError::conflict(
            crate::error::Problem::WebhookLimitReached,
            format!("This organisation already has {max} webhook subscriptions, the most allowed; delete one first."),
        )
        .with_extension("limit", max));
    }
    Ok(())
}

pub async fn get(db: &impl ConnectionTrait, principal: &Principal, id: Uuid) -> Result<Model, ApiError> {
    repo::find(db, org_scope(principal).as_deref(), id).await?.ok_or_else(|| ApiError::not_found("Webhook"))
}

pub async fn update(
    db: &impl ConnectionTrait,
    current: &Model,
    sub: &Subscription,
    target: &CheckedTarget,
) -> Result<Model, ApiError> {
    if sub.org.as_deref().is_some_and(|o| o != current.org) {
        return Err(invalid("org", "cannot be changed; subscribe anew"));
    }
    let events: Vec<&str> = sub.events.iter().map(|e| e.as_str()).collect();
    repo::update(db, current, target.as_str(), &events, sub.active).await?.ok_or_else(|| ApiError::stale("webhook"))
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

/// The organisations that may see a referral: the office, the referring org,
/// the provider of its measure, the employer of its vacancy.
async fn referral_audience(db: &impl ConnectionTrait, r: &referral::Model) -> Result<Vec<String>, ApiError> {
    let mut orgs = vec!["office".to_owned(), r.referring_org.clone()];
    if let Some(m) = r.measure_id
        && let Some(measure) = repository::measures::find(db, m).await?
    {
        orgs.push(measure.provider_id.to_string());
    }
    if let Some(v) = r.vacancy_id
        && let Some(vacancy) = repository::vacancies::find(db, v).await?
    {
        orgs.push(vacancy.employer_id.to_string());
    }
    Ok(orgs)
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
