//! Referrals: the closed loop between job centre, office, providers and
//! employers. Creation rules, transitions with capacity, expiry, batches.
use chrono::{Duration, NaiveDate};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::{clients as client_service, cursor::CursorCodec, cursor::Position};
use crate::{
    auth::{Principal, Role},
    domain::{
        audit::{AuditContext, AuditEntry, action},
        clients::age_on,
        codes::{
            ClientStatus, CodeList, MeasureStatus, Outcome, ReasonCode, ReferralAction, ReferralStatus, TargetGroup,
            VacancyStatus,
        },
        ids::now,
        referrals::{Side, counter_change, ineligibility},
    },
    entities::{referral::Model, referral_event},
    error::{ApiError, FieldError, Problem},
    http::IfMatch,
    repository::{
        self, Page,
        referrals::{After, NewEvent, NewReferral, ReferralFilter, ReferralOrder, ReferralScope, StatusFields},
    },
};

fn not_found() -> ApiError {
    ApiError::not_found("Referral")
}

/// The referrals `principal` may see: office staff all; a job centre those it
/// made; a provider those into its measures; an employer those to its
/// vacancies. With several roles the grants are unioned, each bound to the
/// org under its own role (the job centre's org never matches a measure).
pub fn scope_for(principal: &Principal) -> ReferralScope {
    if principal.is_office() {
        return ReferralScope { all: true, ..Default::default() };
    }
    ReferralScope {
        all: false,
        referring_org: principal.jobcenter_org().map(str::to_owned),
        provider: principal.provider_id(),
        employer: principal.employer_id(),
    }
}

/// A referral request after shape validation.
#[derive(Debug, Clone)]
pub struct ReferralRequest {
    pub client_id: Uuid,
    pub measure_id: Option<Uuid>,
    pub vacancy_id: Option<Uuid>,
    pub external_id: Option<String>,
    pub note: Option<String>,
}

fn duplicate_external(existing: Uuid) -> ApiError {
    ApiError::new(
        Problem::DuplicateExternalId,
        format!("Your organisation already made a referral with this external_id: {existing}."),
    )
    .with_extension("existing_id", existing.to_string())
}

/// The `409` for a second active referral. The existing one is named only
/// when the caller may see it: another organisation's referral stays hidden.
async fn duplicate_active(
    db: &impl ConnectionTrait,
    principal: &Principal,
    existing: Uuid,
) -> Result<ApiError, ApiError> {
    if repository::referrals::find(db, &scope_for(principal), existing).await?.is_none() {
        return Ok(ApiError::new(
            Problem::DuplicateReferral,
            "The client already has an active referral to this target.",
        ));
    }
    Ok(ApiError::new(
        Problem::DuplicateReferral,
        format!("The client already has an active referral to this target: {existing}."),
    )
    .with_extension("existing_id", existing.to_string()))
}

fn invalid_field(field: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)])
}

/// Creates a referral (status `requested`) with its first event.
pub async fn create(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    principal: &Principal,
    req: &ReferralRequest,
) -> Result<Model, ApiError> {
    let org = principal.org_or_office();
    if let Some(ext) = &req.external_id
        && let Some(existing) = repository::referrals::by_external_id(db, &org, ext).await?
    {
        return Err(duplicate_external(existing.id));
    }
    let client_scope = client_service::scope_for(principal)?;
    let (status, groups, born) = repository::clients::eligibility_facts(db, audit, &client_scope, req.client_id)
        .await?
        .ok_or_else(|| invalid_field("client_id", "names no client you can see"))?;
    if status == ClientStatus::Erased.as_str() {
        return Err(ApiError::new(Problem::Gone, "The client's personal data was erased; it cannot be referred."));
    }
    let target = match (req.measure_id, req.vacancy_id) {
        (Some(measure_id), None) => {
            let measure = repository::measures::find(db, measure_id)
                .await?
                .ok_or_else(|| invalid_field("measure_id", "names no measure"))?;
            if measure.status == MeasureStatus::Closed.as_str() {
                return Err(ApiError::new(Problem::TargetClosed, "The measure is closed."));
            }
            let client_groups: Vec<TargetGroup> = groups.iter().filter_map(|g| TargetGroup::parse(g)).collect();
            let measure_groups: Vec<TargetGroup> =
                repository::tags::split(&measure.target_groups).iter().filter_map(|g| TargetGroup::parse(g)).collect();
            let on = measure.start_date.filter(|d| *d > now().date_naive()).unwrap_or_else(|| now().date_naive());
            let age = born.map(|b| age_on(b, on));
            let reasons = ineligibility(&measure_groups, &client_groups, measure.min_age, measure.max_age, age);
            if !reasons.is_empty() {
                let errors: Vec<FieldError> = reasons.into_iter().map(|(f, m)| FieldError::new(f, m)).collect();
                let listed: Vec<String> = errors.iter().map(|e| e.message.clone()).collect();
                return Err(ApiError::new(
                    Problem::NotEligible,
                    format!("The client is not eligible: {}.", listed.join("; ")),
                )
                .with_errors(errors));
            }
            super::webhooks::Target::Provider(measure.provider_id)
        }
        (None, Some(vacancy_id)) => {
            let vacancy = repository::vacancies::find(db, vacancy_id)
                .await?
                .ok_or_else(|| invalid_field("vacancy_id", "names no vacancy"))?;
            if vacancy.status == VacancyStatus::Closed.as_str() {
                return Err(ApiError::new(Problem::TargetClosed, "The vacancy is closed."));
            }
            super::webhooks::Target::Employer(vacancy.employer_id)
        }
        _ => return Err(invalid_field("measure_id", "exactly one of measure_id and vacancy_id must be given")),
    };
    let new = NewReferral {
        client_id: req.client_id,
        measure_id: req.measure_id,
        vacancy_id: req.vacancy_id,
        external_id: req.external_id.clone(),
        referring_org: org.clone(),
        referred_by: principal.sub.clone(),
        note: req.note.clone(),
    };
    let Some(model) = repository::referrals::insert(db, &new).await? else {
        // The external id or the active slot is taken (by a committed
        // referral, or by a concurrent create that committed first).
        if let Some(ext) = &req.external_id
            && let Some(existing) = repository::referrals::by_external_id(db, &org, ext).await?
        {
            return Err(duplicate_external(existing.id));
        }
        return Err(
            match repository::referrals::active_duplicate(db, req.client_id, req.measure_id, req.vacancy_id).await? {
                Some(existing) => duplicate_active(db, principal, existing).await?,
                None => ApiError::new(
                    Problem::DuplicateReferral,
                    "The client already has an active referral to this target.",
                ),
            },
        );
    };
    repository::demand::refresh(db, model.client_id).await?;
    repository::referrals::record_event(
        db,
        &NewEvent {
            referral_id: model.id,
            from_status: None,
            to_status: ReferralStatus::Requested,
            action: "create",
            reason_code: None,
            reason_note: None,
            actor: &principal.sub,
            actor_org: Some(&org),
            at: model.created_at,
        },
    )
    .await?;
    super::webhooks::referral_created(db, &model, target).await?;
    Ok(model)
}

pub async fn get(db: &impl ConnectionTrait, principal: &Principal, id: Uuid) -> Result<Model, ApiError> {
    repository::referrals::find(db, &scope_for(principal), id).await?.ok_or_else(not_found)
}

/// A visible referral and its history.
pub async fn events(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
) -> Result<(Model, Vec<referral_event::Model>), ApiError> {
    let referral = get(db, principal, id).await?;
    let history = repository::referrals::events(db, id).await?;
    Ok((referral, history))
}

/// Whether `principal` may read the free text of `referral` — its `note`,
/// `reason_note` and the events' notes (SPEC §3 Referrals): office staff and
/// the referring job centre always; the receiving provider or employer only
/// when the client consented to sharing with providers
/// (`client_consented`). Decided per role: a token that is also a job centre
/// gets the text only of the referrals that job centre made.
pub fn may_read_free_text(principal: &Principal, referral: &Model, client_consented: bool) -> bool {
    principal.is_office() || principal.acts_for(Role::Jobcenter, &referral.referring_org) || client_consented
}

/// The clients among `referrals` who consented to sharing with providers.
pub async fn consenting_clients(
    db: &impl ConnectionTrait,
    referrals: &[Model],
) -> Result<std::collections::HashSet<Uuid>, ApiError> {
    let ids: Vec<Uuid> = referrals.iter().map(|r| r.client_id).collect();
    Ok(repository::clients::consenting(db, &ids).await?)
}

/// A replayed create shows the stored referral — with its note — again: a
/// read like any other, audited as `referral.note_read` for each replayed
/// referral that carries a note (`(referral id if known, client id)`).
pub async fn audit_replayed_notes(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    response: &actix_web::HttpResponse,
    with_note: &[(Option<Uuid>, Uuid)],
) -> Result<(), ApiError> {
    if !response.headers().contains_key(super::idempotency::REPLAYED_HEADER) || with_note.is_empty() {
        return Ok(());
    }
    let entries: Vec<AuditEntry> = with_note
        .iter()
        .map(|(referral, client)| AuditEntry {
            action: action::REFERRAL_NOTE_READ,
            resource: "referral",
            resource_id: *referral,
            client_id: Some(*client),
        })
        .collect();
    Ok(repository::audit::record(db, audit, &entries).await?)
}

/// A referral's free text is what people write about the client (health,
/// debts, family): every answer that shows some is audited, one
/// `referral.note_read` per referral, before the answer leaves.
pub async fn audit_free_text_reads(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    shown: &[&Model],
) -> Result<(), ApiError> {
    let entries: Vec<AuditEntry> = shown
        .iter()
        .map(|r| AuditEntry {
            action: action::REFERRAL_NOTE_READ,
            resource: "referral",
            resource_id: Some(r.id),
            client_id: Some(r.client_id),
        })
        .collect();
    Ok(repository::audit::record(db, audit, &entries).await?)
}

/// The list order and where to continue, from `sort` and `cursor`.
pub struct ListRequest {
    pub order: ReferralOrder,
    pub cursor: Option<String>,
    pub limit: u64,
    /// The list the cursor must belong to (`routes::common::list_scope`).
    pub scope: String,
}

fn order_name(order: ReferralOrder) -> &'static str {
    match order {
        ReferralOrder::NewestFirst => "-created_at",
        ReferralOrder::OldestFirst => "created_at",
        ReferralOrder::UpdatedAt => "updated_at",
    }
}

pub async fn list(
    db: &impl ConnectionTrait,
    cursors: &CursorCodec,
    principal: &Principal,
    filter: &ReferralFilter,
    req: &ListRequest,
) -> Result<Page<Model>, ApiError> {
    let invalid = || ApiError::new(Problem::InvalidCursor, "The cursor is invalid.");
    let after = match &req.cursor {
        None => None,
        Some(c) => {
            let pos = cursors.decode(c, order_name(req.order), &req.scope)?;
            Some(match (req.order, pos.key.as_slice()) {
                (ReferralOrder::UpdatedAt, [at, id]) => After::Updated(
                    chrono::DateTime::parse_from_rfc3339(at).map_err(|_| invalid())?.with_timezone(&chrono::Utc),
                    Uuid::parse_str(id).map_err(|_| invalid())?,
                ),
                (_, [id]) => After::Id(Uuid::parse_str(id).map_err(|_| invalid())?),
                _ => return Err(invalid()),
            })
        }
    };
    let mut rows = repository::referrals::list(db, &scope_for(principal), filter, req.order, after, req.limit).await?;
    let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => {
            let key = match req.order {
                ReferralOrder::UpdatedAt => {
                    vec![last.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), last.id.to_string()]
                }
                _ => vec![last.id.to_string()],
            };
            Some(cursors.encode(&Position { order: order_name(req.order).to_owned(), key, scope: req.scope.clone() }))
        }
        _ => None,
    };
    Ok(Page { items: rows, next_cursor })
}

/// A transition request after shape validation.
#[derive(Debug, Clone)]
pub struct TransitionRequest {
    pub action: ReferralAction,
    pub reason_code: Option<ReasonCode>,
    pub reason_note: Option<String>,
    pub rejected_by: Option<String>,
    pub outcome: Option<Outcome>,
    pub outcome_on: Option<NaiveDate>,
}

/// Whether `principal` stands on `side` of `referral`.
async fn stands_on(
    db: &impl ConnectionTrait,
    principal: &Principal,
    referral: &Model,
    side: Side,
) -> Result<bool, ApiError> {
    if principal.is_office() {
        return Ok(side != Side::System);
    }
    Ok(match side {
        Side::System => false,
        Side::Referring => principal.acts_for(Role::Jobcenter, &referral.referring_org),
        Side::Target => match (referral.measure_id, referral.vacancy_id) {
            (Some(m), _) => match repository::measures::find(db, m).await? {
                Some(measure) => principal.acts_for(Role::Provider, &measure.provider_id.to_string()),
                None => false,
            },
            (None, Some(v)) => match repository::vacancies::find(db, v).await? {
                Some(vacancy) => principal.acts_for(Role::Employer, &vacancy.employer_id.to_string()),
                None => false,
            },
            _ => false,
        },
    })
}

/// Applies one action of the status machine, with its counters, in `db`'s transaction.
pub async fn transition(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: Uuid,
    if_match: &IfMatch,
    req: &TransitionRequest,
) -> Result<Model, ApiError> {
    let current = repository::referrals::find_for_update(db, &scope_for(principal), id).await?.ok_or_else(not_found)?;
    if_match.check(current.version)?;
    if !stands_on(db, principal, &current, req.action.side()).await? {
        let who = match req.action.side() {
            Side::Target => "the provider or employer receiving the referral (or office staff)",
            Side::Referring => "the referring organisation (or office staff)",
            Side::System => "the service itself",
        };
        return Err(ApiError::forbidden(format!("Only {who} may {} a referral.", req.action)));
    }
    let from =
        ReferralStatus::parse(&current.status).ok_or_else(|| ApiError::internal(anyhow::anyhow!("bad status")))?;
    let Some(to) = from.after(req.action) else {
        let mut allowed = Vec::new();
        for a in from.allowed_actions() {
            if stands_on(db, principal, &current, a.side()).await? {
                allowed.push(a.as_str());
            }
        }
        return Err(ApiError::new(
            Problem::InvalidTransition,
            format!(
                "Cannot {} a referral that is {from}; allowed now: {}.",
                req.action,
                if allowed.is_empty() { "nothing".to_owned() } else { allowed.join(", ") }
            ),
        )
        .with_extension("current_status", from.as_str())
        .with_extension("allowed_actions", allowed));
    };
    check_fields(req)?;

    let fields = StatusFields {
        reason_code: req.reason_code.map(|r| r.as_str()),
        reason_note: req.reason_note.as_deref(),
        rejected_by: req.rejected_by.as_deref(),
        outcome: req.outcome.map(|o| o.as_str()),
        outcome_on: req.outcome_on,
    };
    let org = principal.org_or_office();
    let actor = Actor { sub: &principal.sub, org: Some(&org) };
    let change = StatusChange { from, to, action: req.action, event_note: fields.reason_note };
    change_status(db, &current, change, &fields, &actor, now()).await?.ok_or_else(|| ApiError::stale("referral"))
}

/// Who changed a referral's status, as its event records it.
pub struct Actor<'a> {
    /// The token's `sub`, or `ostwerk` for the service itself.
    pub sub: &'a str,
    pub org: Option<&'a str>,
}

/// One step of the status machine, already checked against it.
#[derive(Debug, Clone, Copy)]
pub struct StatusChange<'a> {
    pub from: ReferralStatus,
    pub to: ReferralStatus,
    pub action: ReferralAction,
    /// The event's `reason_note`: the caller's `reason_note`, or the service's own words for expiry.
    pub event_note: Option<&'a str>,
}

/// The one way a referral's status changes — API transitions and expiry
/// alike, so none of them can forget a part. In the caller's transaction it
/// writes the referral (only if it is still at the status and version the
/// caller read), moves the seats / positions of its measure or vacancy
/// (bumping their version), appends the event, and writes the webhook outbox
/// rows: `referral.status_changed`, and `measure.changed` when seats moved
/// (each also a change-feed event; `vacancy.filled` only in the feed).
/// `None` when the referral moved on meanwhile (nothing was written).
pub async fn change_status(
    db: &impl ConnectionTrait,
    current: &Model,
    change: StatusChange<'_>,
    fields: &StatusFields<'_>,
    actor: &Actor<'_>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Model>, ApiError> {
    let StatusChange { from, to, action, event_note } = change;
    let Some(updated) = repository::referrals::set_status(db, current, to, fields, at).await? else {
        return Ok(None);
    };
    let seats_moved = apply_counters(db, current, from, to, at).await?;
    if from.is_active() != to.is_active() || (from == ReferralStatus::Requested) != (to == ReferralStatus::Requested) {
        // Active or not, and `requested` or not, are what the demand statistics count.
        repository::demand::refresh(db, current.client_id).await?;
    }
    repository::referrals::record_event(
        db,
        &NewEvent {
            referral_id: current.id,
            from_status: Some(from),
            to_status: to,
            action: action.as_str(),
            reason_code: fields.reason_code,
            reason_note: event_note,
            actor: actor.sub,
            actor_org: actor.org,
            at,
        },
    )
    .await?;
    super::webhooks::referral_status_changed(db, &updated, from).await?;
    if seats_moved && let Some(measure_id) = current.measure_id {
        let measure = repository::measures::find(db, measure_id)
            .await?
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("measure {measure_id} of a referral is gone")))?;
        super::webhooks::measure_changed(db, &measure, false).await?;
    }
    if to == ReferralStatus::InProgress
        && let Some(vacancy_id) = current.vacancy_id
        && let Some(vacancy) = repository::vacancies::find(db, vacancy_id).await?
        && vacancy.status == VacancyStatus::Filled.as_str()
        && vacancy.positions_filled == vacancy.positions
    {
        // This start took the last position (the counter update above made it `filled`).
        super::webhooks::vacancy_filled(db, &vacancy).await?;
    }
    Ok(Some(updated))
}

/// Required and inapplicable fields of each action (`422`).
fn check_fields(req: &TransitionRequest) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if req.action.needs_reason() && req.reason_code.is_none() {
        errors.push(FieldError::new("reason_code", format!("is required to {}", req.action)));
    }
    match (req.action, req.rejected_by.as_deref()) {
        (ReferralAction::Reject, None) => {
            errors.push(FieldError::new("rejected_by", "is required to reject: provider or client"))
        }
        (ReferralAction::Reject, Some("provider" | "client")) | (_, None) => {}
        (ReferralAction::Reject, Some(_)) => errors.push(FieldError::new("rejected_by", "must be provider or client")),
        (_, Some(_)) => errors.push(FieldError::new("rejected_by", "applies only to reject")),
    }
    if req.action == ReferralAction::Complete && req.outcome.is_none() {
        errors.push(FieldError::new("outcome", "is required to complete"));
    }
    if req.action != ReferralAction::Complete {
        if req.outcome.is_some() {
            errors.push(FieldError::new("outcome", "applies only to complete"));
        }
        if req.outcome_on.is_some() {
            errors.push(FieldError::new("outcome_on", "applies only to complete"));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
}

/// Moves seats, waitlist and positions with the referral; `409` when full.
/// True when the measure's seats changed (its free seats are news to subscribers).
async fn apply_counters(
    db: &impl ConnectionTrait,
    referral: &Model,
    from: ReferralStatus,
    to: ReferralStatus,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, ApiError> {
    let (fits, seats_moved) = match (referral.measure_id, referral.vacancy_id) {
        (Some(m), _) => {
            let change = counter_change(from, to, true);
            (repository::referrals::adjust_measure(db, m, change, at).await?, change.seats_taken != 0)
        }
        (None, Some(v)) => {
            (repository::referrals::adjust_vacancy(db, v, counter_change(from, to, false), at).await?, false)
        }
        _ => (true, false),
    };
    if fits {
        return Ok(seats_moved);
    }
    Err(ApiError::new(
        Problem::CapacityExhausted,
        if referral.measure_id.is_some() {
            "The measure has no free seat; waitlist the referral instead."
        } else {
            "All positions of the vacancy are taken."
        },
    ))
}

/// The event note of an expiry (the service's own words, never about the person).
const EXPIRY_NOTE: &str = "no answer within the expiry period";

/// Moves `requested` / `on_hold` referrals untouched for `days` to
/// `expired`, one transaction each. Several instances may run this at once:
/// the conditional status update lets exactly one of them expire a referral
/// and write its event. Returns how many this call expired.
pub async fn expire_due(db: &DatabaseConnection, days: u32) -> Result<u64, ApiError> {
    let before = now() - Duration::days(i64::from(days));
    let mut expired = 0;
    loop {
        let batch = repository::referrals::stale(db, before, 100).await?;
        if batch.is_empty() {
            return Ok(expired);
        }
        let mut progressed = false;
        for referral in batch {
            let Some(from) = ReferralStatus::parse(&referral.status) else { continue };
            let txn = db.begin().await?;
            let change = StatusChange {
                from,
                to: ReferralStatus::Expired,
                action: ReferralAction::Expire,
                event_note: Some(EXPIRY_NOTE),
            };
            let actor = Actor { sub: "ostwerk", org: None };
            if change_status(&txn, &referral, change, &StatusFields::default(), &actor, now()).await?.is_some() {
                expired += 1;
                progressed = true;
            }
            txn.commit().await?;
        }
        if !progressed {
            // Everything in this batch was taken by another instance meanwhile.
            return Ok(expired);
        }
    }
}

/// Referrals of a client with their histories (export).
pub async fn of_client(
    db: &impl ConnectionTrait,
    client_id: Uuid,
) -> Result<Vec<(Model, Vec<referral_event::Model>)>, ApiError> {
    Ok(repository::referrals::of_client(db, client_id).await?)
}
