//! `/api/v1/referrals`: the closed loop between job centre, office,
//! providers and employers.
pub mod dto;

use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use sea_orm::TransactionTrait;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use self::dto::{
    BatchInput, BatchResponse, BatchResult, ReferralDto, ReferralEventDto, ReferralInput, ReferralQuery,
    TransitionInput,
};
use super::common::{ListOf, PollingPageParams, audit_context, code_filter, ok_with_etag, text_filter};
use crate::{
    auth::{Access, AuthUser, Principal, Role::*},
    domain::{codes::ReferralStatus, validate::Checker},
    entities::referral::Model,
    error::{ApiError, FieldError, ProblemDetails},
    extract::{JsonBody, shape},
    http::{IfMatch, RequestId, request_context::german_preferred},
    repository::{self, referrals::ReferralFilter, referrals::ReferralOrder},
    service::{
        idempotency::{self, Created, IdempotencyKey},
        referrals::{self, ListRequest},
    },
    startup::AppState,
};

pub const LIST: Access = Access::new("list_referrals", &[Admin, Caseworker, Jobcenter, Provider, Employer]);
pub const GET: Access = Access::new("get_referral", &[Admin, Caseworker, Jobcenter, Provider, Employer]);
pub const CREATE: Access = Access::new("create_referral", &[Admin, Caseworker, Jobcenter]);
pub const BATCH: Access = Access::new("create_referrals_batch", &[Admin, Caseworker, Jobcenter]);
pub const TRANSITION: Access = Access::new("transition_referral", &[Admin, Caseworker, Jobcenter, Provider, Employer]);
pub const EVENTS: Access = Access::new("list_referral_events", &[Admin, Caseworker, Jobcenter, Provider, Employer]);
pub const ACCESS: &[&Access] = &[&LIST, &GET, &CREATE, &BATCH, &TRANSITION, &EVENTS];

/// Most referrals one batch may carry.
pub const MAX_BATCH: usize = 500;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_referrals)
        .service(create_referral)
        .service(create_referrals_batch)
        .service(get_referral)
        .service(transition_referral)
        .service(list_referral_events);
}

/// Shapes referrals for `user`: providers and employers see a client summary
/// (audited as `referral.client_summary`), and the free text only where
/// [`referrals::may_read_free_text`] allows it; every answer that shows free
/// text is audited (`referral.note_read`), whoever reads it.
async fn to_dtos(
    state: &AppState,
    user: &Principal,
    req: &HttpRequest,
    rows: &[Model],
) -> Result<Vec<ReferralDto>, ApiError> {
    let audit = audit_context(user, req);
    let target_side = !user.is_office() && (user.has(Provider) || user.has(Employer));
    let summaries = if target_side {
        let pairs: Vec<(Uuid, Uuid)> = rows.iter().map(|m| (m.id, m.client_id)).collect();
        repository::clients::summaries(&state.db, &audit, &pairs).await?
    } else {
        Default::default()
    };
    let mut dtos = Vec::with_capacity(rows.len());
    let mut shown = Vec::new();
    for m in rows {
        let summary = summaries.get(&m.client_id);
        let consented = summary.is_some_and(|s| s.shared.is_some());
        let mut dto = ReferralDto::new(m, summary);
        if !referrals::may_read_free_text(user, m, consented) {
            dto.withhold_free_text();
        }
        if dto.shows_free_text() {
            shown.push(m);
        }
        dtos.push(dto);
    }
    referrals::audit_free_text_reads(&state.db, &audit, &shown).await?;
    Ok(dtos)
}

/// List referrals
///
/// Visibility is part of the query: a job centre sees the referrals it made,
/// a provider those into its measures, an employer those to its vacancies.
/// To poll for changes, use `sort=updated_at` with `updated_after` (the order
/// is stable for equal timestamps: `updated_at`, then id) and follow
/// `next_cursor` to the end; keep the last `updated_at` seen for the next
/// poll (and allow a few seconds of overlap; dedupe by `id` + `version`).
#[utoipa::path(
    tag = "referrals",
    params(PollingPageParams, ReferralQuery),
    responses((status = 200, description = "One page of referrals", body = ListOf<ReferralDto>)),
)]
#[get("/referrals")]
pub async fn list_referrals(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    page: PollingPageParams,
    query: web::Query<ReferralQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let order = match page.sort.as_deref() {
        Some("updated_at") => ReferralOrder::UpdatedAt,
        Some("created_at") => ReferralOrder::OldestFirst,
        _ => ReferralOrder::NewestFirst,
    };
    let paging = page.validate()?;
    let q = query.into_inner();
    let mut c = Checker::new();
    let created_after = c.timestamp("created_after", q.created_after.as_deref());
    let updated_after = c.timestamp("updated_after", q.updated_after.as_deref());
    c.finish().map_err(|e| ApiError::bad_request("Invalid query parameters.").with_errors(e.errors))?;
    let filter = ReferralFilter {
        status: code_filter::<ReferralStatus>("status", q.status)?,
        status_in: None,
        client_id: q.client_id,
        measure_id: q.measure_id,
        vacancy_id: q.vacancy_id,
        provider_id: q.provider_id,
        employer_id: q.employer_id,
        external_id: text_filter(q.external_id),
        created_after,
        updated_after,
    };
    let list = ListRequest { order, cursor: paging.cursor, limit: paging.limit, scope: paging.scope };
    let result = referrals::list(&state.db, &state.cursors, &user, &filter, &list).await?;
    let items = to_dtos(&state, &user, &req, &result.items).await?;
    Ok(HttpResponse::Ok().json(ListOf { items, next_cursor: result.next_cursor }))
}

/// Refer a client
///
/// To **exactly one** of `measure_id` / `vacancy_id`. `referring_org` comes
/// from the token (`office` for the office's staff). A reused `external_id`
/// is a `409` naming the `existing_id` (unless the `Idempotency-Key` makes it
/// a replay); a closed target is a `409`; a client outside the measure's
/// target groups or age limits is a `422` `not-eligible` listing the reasons;
/// a second active referral of the client to the same target is a `409`.
#[utoipa::path(
    tag = "referrals",
    request_body = ReferralInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried push safe (replays for 24 h)")),
    responses(
        (status = 201, description = "Created (status `requested`)", body = ReferralDto,
            headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "Duplicate `external_id` or active referral (`existing_id`), closed target, or Idempotency-Key in use",
            body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = "The client was erased", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[post("/referrals")]
pub async fn create_referral(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<ReferralInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE)?;
    let request = body.value.validate()?;
    let audit = audit_context(&user, &req);
    let response = idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = referrals::create(txn, &audit, &user, &request).await?;
        super::common::created(format!("/api/v1/referrals/{}", model.id), &ReferralDto::new(&model, None))
    })
    .await?;
    if request.note.is_some() && response.status() == StatusCode::CREATED {
        let id = response
            .headers()
            .get(actix_web::http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .and_then(|id| Uuid::parse_str(id).ok());
        referrals::audit_replayed_notes(&state.db, &audit, &response, &[(id, request.client_id)]).await?;
    }
    Ok(response)
}

/// `400` for the whole batch when an item breaks the declared `ReferralInput`
/// schema (unknown member, wrong type, `client_id` missing or not a UUID,
/// text too long), naming every bad field as `items[3].client_id`. The
/// contract declares those shapes, and a generated client cannot send
/// anything else; answering them item by item in the `207` accepted requests
/// the contract says are malformed. What only the data can decide (unknown
/// client, duplicate `external_id`, not eligible, both or neither of
/// `measure_id`/`vacancy_id`) stays a per-item problem.
fn schema_check_batch(items: &[serde_json::Value]) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    for (index, raw) in items.iter().enumerate() {
        match shape::<ReferralInput>(raw) {
            Ok(input) => errors.extend(
                input
                    .schema_violations()
                    .into_iter()
                    .map(|e| FieldError::new(format!("items[{index}].{}", e.field), e.message)),
            ),
            Err(err) => errors.extend(err.errors.into_iter().map(|e| {
                let field =
                    if e.field.is_empty() { format!("items[{index}]") } else { format!("items[{index}].{}", e.field) };
                FieldError::new(field, e.message)
            })),
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request("Items of the batch do not match the ReferralInput schema; nothing was created.")
        .with_errors(errors))
}

/// Refer many clients at once
///
/// Up to 500 referrals, answered `207` with one result per item, in order.
/// Each item behaves exactly like `POST /referrals` (its own transaction; a
/// reused `external_id` is that item's `409` with `existing_id`), so a
/// nightly push can be retried: items already created report their id. An
/// `Idempotency-Key` replays the whole answer.
#[utoipa::path(
    tag = "referrals",
    request_body = BatchInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the whole batch answer")),
    responses((status = 207, description = "One result per item", body = BatchResponse)),
)]
#[post("/referrals/batch")]
pub async fn create_referrals_batch(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<BatchInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&BATCH)?;
    let items = &body.value.items;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::validation(vec![FieldError::new(
            "items",
            format!("must hold 1 to {MAX_BATCH} referrals"),
        )]));
    }
    schema_check_batch(items)?;
    let audit = audit_context(&user, &req);
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let german = german_preferred(req.headers().get("accept-language").and_then(|v| v.to_str().ok()));
    let db = &state.db;
    // The items run outside any idempotency transaction (each has its own),
    // so one bad item never undoes the good ones; the key is claimed first,
    // so a replay never runs them again.
    let response = idempotency::run_self_committing(db, &user, &key, ("POST", req.path(), &body.raw), async || {
        let mut results = Vec::with_capacity(items.len());
        for (index, raw) in items.iter().enumerate() {
            let outcome = async {
                let request = shape::<ReferralInput>(raw)?.validate()?;
                let txn = db.begin().await?;
                let model = referrals::create(&txn, &audit, &user, &request).await?;
                txn.commit().await?;
                Ok::<_, ApiError>(model)
            }
            .await;
            results.push(match outcome {
                Ok(model) => BatchResult {
                    index,
                    status: StatusCode::CREATED.as_u16(),
                    id: Some(model.id),
                    referral: Some(ReferralDto::new(&model, None)),
                    problem: None,
                },
                Err(err) => BatchResult {
                    index,
                    status: err.problem.status().as_u16(),
                    id: None,
                    referral: None,
                    problem: Some(err.body(&request_id, german)),
                },
            });
        }
        let body = serde_json::to_value(BatchResponse { results }).map_err(ApiError::internal)?;
        Ok(Created { status: StatusCode::MULTI_STATUS, location: None, body })
    })
    .await?;
    // The stored answer holds each created item's note; the ids are in the
    // stored body only, so a replay is audited per client with a note.
    let with_note: Vec<(Option<Uuid>, Uuid)> = items
        .iter()
        .filter_map(|raw| shape::<ReferralInput>(raw).ok()?.validate().ok())
        .filter(|r| r.note.is_some())
        .map(|r| (None, r.client_id))
        .collect();
    referrals::audit_replayed_notes(db, &audit, &response, &with_note).await?;
    Ok(response)
}

/// Get a referral
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "Referral id")),
    responses((status = 200, description = "The referral", body = ReferralDto, headers(("ETag" = String)))),
)]
#[get("/referrals/{id}")]
pub async fn get_referral(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET)?;
    let model = referrals::get(&state.db, &user, id.into_inner()).await?;
    let dto = to_dtos(&state, &user, &req, std::slice::from_ref(&model)).await?.pop();
    Ok(ok_with_etag(model.version, &dto))
}

/// Act on a referral
///
/// Moves the referral through its status machine (FHIR `Task` statuses);
/// honours `If-Match`. Anything not in this table is a `409` naming the
/// `current_status` and the `allowed_actions`:
///
/// | action | from | to | who |
/// | --- | --- | --- | --- |
/// | `accept` | `requested`, `on_hold` | `accepted` | target side |
/// | `waitlist` | `requested` | `on_hold` | target side |
/// | `reject` | `requested`, `on_hold` | `rejected` | target side |
/// | `start` | `accepted` | `in_progress` | target side |
/// | `complete` | `in_progress` | `completed` | target side |
/// | `fail` | `accepted`, `in_progress` | `failed` | target side |
/// | `cancel` | `requested`, `on_hold`, `accepted`, `in_progress` | `cancelled` | referring side |
/// | `expire` | `requested`, `on_hold` | `expired` | the service itself |
///
/// Target side: the provider owning the measure / the employer owning the
/// vacancy, or office staff. Referring side: the referring organisation, or
/// office staff. Acting on the wrong side is a `403`.
///
/// `reject`, `cancel` and `fail` need a `reason_code`; `reject` also
/// `rejected_by` (`provider` | `client`); `complete` needs an `outcome`.
/// Accepting into a full measure is a `409` `capacity-exhausted` (waitlist
/// instead); starting on a vacancy whose positions are all taken is a `409`
/// too, and taking the last position turns the vacancy `filled`.
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "Referral id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version the action is based on")),
    request_body = TransitionInput,
    responses(
        (status = 200, description = "The referral after the action", body = ReferralDto, headers(("ETag" = String))),
        (status = 409, description = "Not allowed from the current status, or no free seat / position",
            body = ProblemDetails, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` does not match", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[post("/referrals/{id}/transitions")]
pub async fn transition_referral(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<TransitionInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&TRANSITION)?;
    let request = body.value.validate()?;
    let txn = state.db.begin().await?;
    let model = referrals::transition(&txn, &user, id.into_inner(), &if_match, &request).await?;
    txn.commit().await?;
    let dto = to_dtos(&state, &user, &req, std::slice::from_ref(&model)).await?.pop();
    Ok(ok_with_etag(model.version, &dto))
}

/// A referral's history
///
/// Append-only, oldest first: creation, every action, expiry.
#[utoipa::path(
    tag = "referrals",
    params(("id" = Uuid, Path, description = "Referral id")),
    responses((status = 200, description = "All events (never paged: `next_cursor` is null)", body = ListOf<ReferralEventDto>)),
)]
#[get("/referrals/{id}/events")]
pub async fn list_referral_events(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&EVENTS)?;
    let (referral, events) = referrals::events(&state.db, &user, id.into_inner()).await?;
    let consented = referrals::consenting_clients(&state.db, std::slice::from_ref(&referral)).await?;
    let free_text = referrals::may_read_free_text(&user, &referral, consented.contains(&referral.client_id));
    let mut items: Vec<ReferralEventDto> = events.iter().map(ReferralEventDto::from).collect();
    if !free_text {
        items.iter_mut().for_each(|e| e.reason_note = None);
    }
    if items.iter().any(|e| e.reason_note.is_some()) {
        referrals::audit_free_text_reads(&state.db, &audit_context(&user, &req), &[&referral]).await?;
    }
    Ok(HttpResponse::Ok().json(ListOf { items, next_cursor: None }))
}
