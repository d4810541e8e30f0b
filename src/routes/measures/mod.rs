//! `/api/v1/measures`: training and activation measures with their seats.
pub mod dto;

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use sea_orm::TransactionTrait;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use self::dto::{MeasureDto, MeasureInput, MeasureQuery};
use super::common::{
    ListOf, PageParams, code_filter, created, date_filter, kldb_prefix_filter, list_response, merge_patch,
    ok_with_etag, text_filter, validated,
};
use crate::{
    auth::{Access, AuthUser, Role},
    domain::codes::{FundingType, MeasureKind, MeasureStatus, TargetGroup},
    error::{ApiError, ProblemDetails},
    extract::JsonBody,
    http::IfMatch,
    repository::measures::MeasureFilter,
    service::{
        idempotency::{self, IdempotencyKey},
        measures,
    },
    startup::AppState,
};

use Role::*;

pub const LIST: Access = Access::new("list_measures", &Role::ALL);
pub const GET: Access = Access::new("get_measure", &Role::ALL);
pub const CREATE: Access = Access::new("create_measure", &[Admin, Caseworker, Provider]);
pub const UPDATE: Access = Access::new("update_measure", &[Admin, Caseworker, Provider]);
pub const DELETE: Access = Access::new("delete_measure", &[Admin, Caseworker, Provider]);
pub const ACCESS: &[&Access] = &[&LIST, &GET, &CREATE, &UPDATE, &DELETE];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_measures)
        .service(create_measure)
        .service(get_measure)
        .service(update_measure)
        .service(delete_measure);
}

/// Browse measures
///
/// Every authenticated role may browse. `has_free_seats=true` lists measures
/// with a free seat; `occupation_code` is a KldB prefix.
#[utoipa::path(
    tag = "measures",
    params(PageParams, MeasureQuery),
    responses((status = 200, description = "One page of measures", body = ListOf<MeasureDto>)),
)]
#[get("/measures")]
pub async fn list_measures(
    state: web::Data<AppState>,
    user: AuthUser,
    page: PageParams,
    query: web::Query<MeasureQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let page = page.validate()?;
    let q = query.into_inner();
    let filter = MeasureFilter {
        kind: code_filter::<MeasureKind>("kind", q.kind)?,
        target_group: code_filter::<TargetGroup>("target_group", q.target_group)?,
        district: text_filter(q.district),
        provider_id: q.provider_id,
        status: code_filter::<MeasureStatus>("status", q.status)?,
        funding: code_filter::<FundingType>("funding", q.funding)?,
        has_free_seats: q.has_free_seats,
        starts_after: date_filter("starts_after", q.starts_after.as_deref())?,
        occupation_code: kldb_prefix_filter("occupation_code", q.occupation_code)?,
        q: crate::extract::search_text(q.q)?,
    };
    let result = measures::list(&state.db, &state.cursors, &filter, &page).await?;
    Ok(list_response(result, |m| MeasureDto::from(&m)))
}

/// Create a measure
///
/// A provider may create measures only with its own id as `provider_id`
/// (`403` otherwise). A duplicate `measure_number` is a `409`. Accepts an `Idempotency-Key`.
#[utoipa::path(
    tag = "measures",
    request_body = MeasureInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses(
        (status = 201, description = "Created", body = MeasureDto, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "Duplicate `measure_number` (`existing_id`), or Idempotency-Key in use",
            body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[post("/measures")]
pub async fn create_measure(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<MeasureInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE)?;
    let fields = validated(&state.db, body.value).await?;
    idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = measures::create(txn, &user, &fields).await?;
        created(format!("/api/v1/measures/{}", model.id), &MeasureDto::from(&model))
    })
    .await
}

/// Get a measure
#[utoipa::path(
    tag = "measures",
    params(("id" = Uuid, Path, description = "Measure id")),
    responses((status = 200, description = "The measure", body = MeasureDto, headers(("ETag" = String)))),
)]
#[get("/measures/{id}")]
pub async fn get_measure(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET)?;
    let model = measures::get(&state.db, id.into_inner()).await?;
    Ok(ok_with_etag(model.version, &MeasureDto::from(&model)))
}

/// Change a measure
///
/// JSON merge patch. A provider may change only its own measures (others
/// read as `404`); `capacity` cannot drop below the seats taken.
#[utoipa::path(
    tag = "measures",
    params(("id" = Uuid, Path, description = "Measure id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version the change is based on")),
    request_body(content = MeasureInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed measure", body = MeasureDto, headers(("ETag" = String))),
        (status = 409, description = "Duplicate `measure_number`, or a capacity below the seats already taken (`capacity-below-seats-taken`, even when an accept wins the race)", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[patch("/measures/{id}")]
pub async fn update_measure(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    user.require(&UPDATE)?;
    let current = measures::get_for_change(&state.db, &user, id.into_inner()).await?;
    let merged: MeasureInput = merge_patch(&MeasureInput::from(&current), &body.value)?;
    let fields = validated(&state.db, merged).await?;
    if_match.check(current.version)?;
    // The change and its webhook outbox rows commit together.
    let txn = state.db.begin().await?;
    let model = measures::update(&txn, &user, &current, &if_match, &fields).await?;
    txn.commit().await?;
    Ok(ok_with_etag(model.version, &MeasureDto::from(&model)))
}

/// Delete a measure
///
/// Refused with `409` once referrals exist (close the measure instead).
#[utoipa::path(
    tag = "measures",
    params(("id" = Uuid, Path, description = "Measure id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version to delete")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Referrals exist", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[delete("/measures/{id}")]
pub async fn delete_measure(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    user.require(&DELETE)?;
    let txn = state.db.begin().await?;
    measures::delete(&txn, &user, id.into_inner(), &if_match).await?;
    txn.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
