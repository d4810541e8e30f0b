//! Webhooks: subscriptions and the outbox written with each change. The
//! sending side (target policy, delivery worker) is `webhook_delivery`.
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    auth::{OFFICE_ORG, OrgKind, Owner, Principal, Role},
    domain::{
        changes::ChangeType,
        codes::ReferralStatus,
        webhooks::{
            MeasureChangedEvent, MeasureChangedType, MeasureEventData, ReferralCreatedEvent, ReferralCreatedType,
            ReferralEventData, ReferralStatusChangedEvent, ReferralStatusChangedType, WebhookEvent, WebhookPayload,
        },
    },
    entities::{measure, referral, vacancy, webhook::Model},
    error::{ApiError, FieldError},
    repository::{self, webhooks as repo},
};

use super::change_feed::{self, Audience};
pub use super::webhook_delivery::{CheckedTarget, RETRY_HOURS, check_target};

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
    check_subscription_cap(db, &owner, max_per_org).await?;
    let events: Vec<&str> = sub.events.iter().map(|e| e.as_str()).collect();
    let secret = crate::domain::webhooks::new_secret();
    let new = repo::NewWebhook {
        owner: &owner,
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
async fn check_subscription_cap(db: &impl ConnectionTrait, owner: &Owner, max: u64) -> Result<(), ApiError> {
    if repo::count_of_owner(db, owner).await? >= max {
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
    if sub.org.as_deref().and_then(crate::auth::canonical_org).is_some_and(|o| o != current.org) {
        return Err(invalid("org", "cannot be changed; subscribe anew"));
    }
    let events: Vec<&str> = sub.events.iter().map(|e| e.as_str()).collect();
    repo::update(db, current, target.as_str(), &events, sub.active).await?.ok_or_else(|| ApiError::stale("webhook"))
}

/// A new secret for `current`. The old one goes on signing deliveries
/// beside it for `overlap` (a second `v1,` signature), so a partner can
/// switch its verifier without a gap; a second rotation within the overlap
/// ends the first one's (only the secret being replaced carries over).
pub async fn rotate_secret(
    db: &impl ConnectionTrait,
    current: &Model,
    overlap: chrono::Duration,
) -> Result<Model, ApiError> {
    let secret = crate::domain::webhooks::new_secret();
    let until = crate::domain::ids::now() + overlap;
    repo::rotate_secret(db, current, &secret, until).await?.ok_or_else(|| ApiError::stale("webhook"))
}

pub async fn delete(db: &impl ConnectionTrait, current: &Model) -> Result<(), ApiError> {
    if repo::delete(db, current.id, current.version).await? { Ok(()) } else { Err(ApiError::stale("webhook")) }
}

/// The signed body: one of the typed payloads declared in the spec.
fn envelope(payload: &WebhookPayload) -> Result<String, ApiError> {
    serde_json::to_string(payload).map_err(ApiError::internal)
}

fn referral_data(r: &referral::Model, previous: Option<ReferralStatus>) -> ReferralEventData {
    ReferralEventData {
        resource: "referral".to_owned(),
        id: r.id,
        status: r.status.clone(),
        previous_status: previous.map(|p| p.as_str().to_owned()),
        link: format!("/api/v1/referrals/{}", r.id),
    }
}

/// The owners that may see a referral: the office, the referring job
/// centre, the provider of its measure, the employer of its vacancy — each
/// with its kind, so a subscription of a job centre named like the provider
/// gets nothing of the provider's.
async fn referral_audience(db: &impl ConnectionTrait, r: &referral::Model) -> Result<Vec<Owner>, ApiError> {
    let mut target = None;
    if let Some(m) = r.measure_id
        && let Some(measure) = repository::measures::find(db, m).await?
    {
        target = Some(Owner { kind: OrgKind::Provider, org: measure.provider_id.to_string() });
    }
    if let Some(v) = r.vacancy_id
        && let Some(vacancy) = repository::vacancies::find(db, v).await?
    {
        target = Some(Owner { kind: OrgKind::Employer, org: vacancy.employer_id.to_string() });
    }
    Ok(audience_of(r, target))
}

/// The office, the referring job centre and `target` (the provider of the
/// measure or the employer of the vacancy).
fn audience_of(r: &referral::Model, target: Option<Owner>) -> Vec<Owner> {
    let mut owners = vec![Owner::office()];
    if r.referring_org != OFFICE_ORG {
        owners.push(Owner { kind: OrgKind::Jobcenter, org: r.referring_org.clone() });
    }
    owners.extend(target);
    owners
}

/// Whom a new referral concerns besides the office and the referrer.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// The provider of its measure.
    Provider(Uuid),
    /// The employer of its vacancy.
    Employer(Uuid),
}

/// The feed event and the outbox rows of a new referral (in the creating transaction).
/// `target` is the owner of the measure or vacancy, which the creating
/// transaction has just read.
pub async fn referral_created(db: &impl ConnectionTrait, r: &referral::Model, target: Target) -> Result<(), ApiError> {
    let event = WebhookEvent::ReferralCreated;
    let target = match target {
        Target::Provider(id) => Owner { kind: OrgKind::Provider, org: id.to_string() },
        Target::Employer(id) => Owner { kind: OrgKind::Employer, org: id.to_string() },
    };
    let audience = audience_of(r, Some(target));
    let recorded = change_feed::record(
        db,
        ChangeType::ReferralCreated,
        r.id,
        Some(&r.status),
        None,
        &Audience::Owners(audience.clone()),
    )
    .await?;
    let hooks = repo::subscribers(db, event.as_str(), Some(&audience)).await?;
    let body = envelope(&WebhookPayload::ReferralCreated(ReferralCreatedEvent {
        type_: ReferralCreatedType::ReferralCreated,
        timestamp: recorded.at,
        data: referral_data(r, None),
    }))?;
    Ok(repo::enqueue(db, &hooks, event.as_str(), recorded.id, &body).await?)
}

/// The feed event and the outbox rows of a status change (in the transition's transaction).
pub async fn referral_status_changed(
    db: &impl ConnectionTrait,
    r: &referral::Model,
    from: ReferralStatus,
) -> Result<(), ApiError> {
    let event = WebhookEvent::ReferralStatusChanged;
    let audience = referral_audience(db, r).await?;
    let recorded = change_feed::record(
        db,
        ChangeType::ReferralStatusChanged,
        r.id,
        Some(&r.status),
        Some(from.as_str()),
        &Audience::Owners(audience.clone()),
    )
    .await?;
    let hooks = repo::subscribers(db, event.as_str(), Some(&audience)).await?;
    let body = envelope(&WebhookPayload::ReferralStatusChanged(ReferralStatusChangedEvent {
        type_: ReferralStatusChangedType::ReferralStatusChanged,
        timestamp: recorded.at,
        data: referral_data(r, Some(from)),
    }))?;
    Ok(repo::enqueue(db, &hooks, event.as_str(), recorded.id, &body).await?)
}

/// The feed event and the outbox rows of a created, changed or deleted
/// measure (everyone may see measures).
pub async fn measure_changed(db: &impl ConnectionTrait, m: &measure::Model, deleted: bool) -> Result<(), ApiError> {
    let event = WebhookEvent::MeasureChanged;
    let status = if deleted { "deleted" } else { m.status.as_str() };
    let recorded =
        change_feed::record(db, ChangeType::MeasureChanged, m.id, Some(status), None, &Audience::Public).await?;
    let hooks = repo::subscribers(db, event.as_str(), None).await?;
    let body = envelope(&WebhookPayload::MeasureChanged(MeasureChangedEvent {
        type_: MeasureChangedType::MeasureChanged,
        timestamp: recorded.at,
        data: MeasureEventData {
            resource: "measure".to_owned(),
            id: m.id,
            status: status.to_owned(),
            link: format!("/api/v1/measures/{}", m.id),
        },
    }))?;
    Ok(repo::enqueue(db, &hooks, event.as_str(), recorded.id, &body).await?)
}

/// The feed event of a vacancy whose last position was taken (the office
/// and its employer; there is no webhook for it).
pub async fn vacancy_filled(db: &impl ConnectionTrait, v: &vacancy::Model) -> Result<(), ApiError> {
    let audience = Audience::Owners(vec![Owner { kind: OrgKind::Employer, org: v.employer_id.to_string() }]);
    change_feed::record(db, ChangeType::VacancyFilled, v.id, Some(&v.status), None, &audience).await.map(|_| ())
}

/// The requested event names, validated (`422` naming each bad one).
pub fn parse_events(values: &[String]) -> Result<Vec<WebhookEvent>, ApiError> {
    let mut errors = Vec::new();
    let mut events = Vec::new();
    // The declared `maxItems`: a longer list can only repeat events.
    if values.len() > WebhookEvent::ALL.len() {
        errors.push(FieldError::new("events", format!("must have at most {} entries", WebhookEvent::ALL.len())));
    }
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
