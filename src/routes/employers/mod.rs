//! `/api/v1/employers`: local employers, their counselling log and vacancies.
pub mod dto;

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use self::dto::{EmployerDto, EmployerInput, EmployerPublicDto, EmployerQuery, VacancyDto, VacancyInput, VacancyQuery};
use super::{
    clients::dto::{ConsultationDto, EmployerConsultationInput},
    common::{
        ListOf, PageParams, audit_context, code_filter, created, kldb_prefix_filter, list_response, merge_patch,
        ok_with_etag, text_filter, validated,
    },
};
use crate::{
    auth::{Access, AuthUser, Role::*},
    domain::codes::{EmployerNeed, SettlementStatus, VacancyKind, VacancyStatus},
    error::{ApiError, ProblemDetails},
    extract::JsonBody,
    http::IfMatch,
    repository::{employers::EmployerFilter, vacancies::VacancyFilter},
    service::{
        employers::{self, EmployerView},
        idempotency::{self, IdempotencyKey},
    },
    startup::AppState,
};

pub const LIST: Access = Access::new("list_employers", &[Admin, Caseworker, Jobcenter, Employer]);
pub const GET: Access = Access::new("get_employer", &[Admin, Caseworker, Jobcenter, Employer]);
pub const CREATE: Access = Access::new("create_employer", &[Admin, Caseworker]);
pub const UPDATE: Access = Access::new("update_employer", &[Admin, Caseworker, Employer]);
pub const DELETE: Access = Access::new("delete_employer", &[Admin, Caseworker]);
pub const LIST_CONSULTATIONS: Access = Access::new("list_employer_consultations", &[Admin, Caseworker]);
pub const CREATE_CONSULTATION: Access = Access::new("create_employer_consultation", &[Admin, Caseworker]);
pub const GET_CONSULTATION: Access = Access::new("get_employer_consultation", &[Admin, Caseworker]);
pub const LIST_VACANCIES: Access = Access::new("list_employer_vacancies", &[Admin, Caseworker, Jobcenter, Employer]);
pub const CREATE_VACANCY: Access = Access::new("create_vacancy", &[Admin, Caseworker, Employer]);
pub const ACCESS: &[&Access] = &[
    &LIST,
    &GET,
    &CREATE,
    &UPDATE,
    &DELETE,
    &LIST_CONSULTATIONS,
    &CREATE_CONSULTATION,
    &GET_CONSULTATION,
    &LIST_VACANCIES,
    &CREATE_VACANCY,
];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_employers)
        .service(create_employer)
        .service(get_employer)
        .service(update_employer)
        .service(delete_employer)
        .service(list_employer_consultations)
        .service(create_employer_consultation)
        .service(get_employer_consultation)
        .service(list_employer_vacancies)
        .service(create_vacancy);
}

/// An employer as the caller may see it: in full (office staff, the employer
/// itself) or only its public part (job centres).
/// `view` tells the two apart, so generated clients need not guess.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(discriminator(property_name = "view", mapping(
    ("full" = "#/components/schemas/EmployerDto"),
    ("public" = "#/components/schemas/EmployerPublicDto"),
)))]
pub enum EmployerRecord {
    Full(EmployerDto),
    Public(EmployerPublicDto),
}

fn view(view: EmployerView, m: &crate::entities::employer::Model) -> EmployerRecord {
    match view {
        EmployerView::Full => EmployerRecord::Full(EmployerDto::from(m)),
        EmployerView::Public => EmployerRecord::Public(EmployerPublicDto::from(m)),
    }
}

/// List employers
///
/// Office staff see all records in full, job centres the public part of
/// each, an employer only its own record.
#[utoipa::path(
    tag = "employers",
    params(PageParams, EmployerQuery),
    responses((status = 200, description = "One page of employers", body = ListOf<EmployerRecord>)),
)]
#[get("/employers")]
pub async fn list_employers(
    state: web::Data<AppState>,
    user: AuthUser,
    page: PageParams,
    query: web::Query<EmployerQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let page = page.validate()?;
    let q = query.into_inner();
    let filter = EmployerFilter {
        district: text_filter(q.district),
        settlement_status: code_filter::<SettlementStatus>("settlement_status", q.settlement_status)?,
        need: code_filter::<EmployerNeed>("need", q.need)?,
        is_training_company: q.is_training_company,
        q: crate::extract::search_text(q.q)?,
        only: None,
    };
    let result = employers::list(&state.db, &state.cursors, &user, filter, &page).await?;
    // Per record: the caller's own record in full, the others as its roles allow.
    Ok(list_response(result, |m| view(employers::view_of(&user, m.id).unwrap_or(EmployerView::Public), &m)))
}

/// Create an employer
///
/// Accepts an `Idempotency-Key`.
#[utoipa::path(
    tag = "employers",
    request_body = EmployerInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses((status = 201, description = "Created", body = EmployerDto, headers(("Location" = String), ("ETag" = String)))),
)]
#[post("/employers")]
pub async fn create_employer(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<EmployerInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE)?;
    let fields = validated(&state.db, body.value).await?;
    idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = employers::create(txn, &fields).await?;
        created(format!("/api/v1/employers/{}", model.id), &EmployerDto::from(&model))
    })
    .await
}

/// Get an employer
#[utoipa::path(
    tag = "employers",
    params(("id" = Uuid, Path, description = "Employer id")),
    responses((status = 200, description = "The employer (public part for job centres)", body = EmployerRecord, headers(("ETag" = String)))),
)]
#[get("/employers/{id}")]
pub async fn get_employer(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET)?;
    let (model, v) = employers::get(&state.db, &user, id.into_inner()).await?;
    Ok(ok_with_etag(model.version, &view(v, &model)))
}

/// Change an employer
///
/// JSON merge patch; an employer principal may change only its own record.
#[utoipa::path(
    tag = "employers",
    params(("id" = Uuid, Path, description = "Employer id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version the change is based on")),
    request_body(content = EmployerInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed employer", body = EmployerDto, headers(("ETag" = String)))),
)]
#[patch("/employers/{id}")]
pub async fn update_employer(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    user.require(&UPDATE)?;
    let current = employers::get_for_change(&state.db, &user, id.into_inner()).await?;
    let merged: EmployerInput = merge_patch(&EmployerInput::from(&current), &body.value)?;
    let fields = validated(&state.db, merged).await?;
    if_match.check(current.version)?;
    let model = employers::update(&state.db, &current, &if_match, &fields).await?;
    Ok(ok_with_etag(model.version, &EmployerDto::from(&model)))
}

/// Delete an employer
///
/// Refused with `409` while vacancies, referrals or counselling entries reference it.
#[utoipa::path(
    tag = "employers",
    params(("id" = Uuid, Path, description = "Employer id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version to delete")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Still referenced", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[delete("/employers/{id}")]
pub async fn delete_employer(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    user.require(&DELETE)?;
    employers::delete(&state.db, id.into_inner(), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List an employer's counselling log
#[utoipa::path(
    tag = "employers",
    params(("id" = Uuid, Path, description = "Employer id"), PageParams),
    responses((status = 200, description = "One page of consultations", body = ListOf<ConsultationDto>)),
)]
#[get("/employers/{id}/consultations")]
pub async fn list_employer_consultations(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    page: PageParams,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST_CONSULTATIONS)?;
    let page = page.validate()?;
    let audit = audit_context(&user, &req);
    let result = employers::consultations(&state.db, &audit, &state.cursors, &user, id.into_inner(), &page).await?;
    Ok(list_response(result, |m| ConsultationDto::from(&m)))
}

/// Log a counselling session with an employer
///
/// Topics from `employer_consultation_topics`. Accepts an `Idempotency-Key`.
#[utoipa::path(
    tag = "employers",
    params(("id" = Uuid, Path, description = "Employer id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    request_body = EmployerConsultationInput,
    responses((status = 201, description = "Logged", body = ConsultationDto, headers(("Location" = String)))),
)]
#[post("/employers/{id}/consultations")]
pub async fn create_employer_consultation(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: JsonBody<EmployerConsultationInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE_CONSULTATION)?;
    let fields = body.value.validate()?;
    let employer_id = id.into_inner();
    let audit = audit_context(&user, &req);
    idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = employers::add_consultation(txn, &audit, &user, employer_id, &fields).await?;
        created(format!("/api/v1/employers/{employer_id}/consultations/{}", model.id), &ConsultationDto::from(&model))
    })
    .await
}

/// Get one counselling entry of an employer
#[utoipa::path(
    tag = "employers",
    params(("id" = Uuid, Path, description = "Employer id"), ("consultation_id" = Uuid, Path, description = "Consultation id")),
    responses((status = 200, description = "The consultation", body = ConsultationDto, headers(("ETag" = String)))),
)]
#[get("/employers/{id}/consultations/{consultation_id}")]
pub async fn get_employer_consultation(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET_CONSULTATION)?;
    let (employer_id, id) = path.into_inner();
    let audit = audit_context(&user, &req);
    let model = employers::consultation(&state.db, &audit, &user, employer_id, id).await?;
    Ok(ok_with_etag(model.version, &ConsultationDto::from(&model)))
}

/// List an employer's vacancies
///
/// Job centres see open vacancies only; an employer only its own.
#[utoipa::path(
    tag = "vacancies",
    params(("id" = Uuid, Path, description = "Employer id"), PageParams, VacancyQuery),
    responses((status = 200, description = "One page of vacancies", body = ListOf<VacancyDto>)),
)]
#[get("/employers/{id}/vacancies")]
pub async fn list_employer_vacancies(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    page: PageParams,
    query: web::Query<VacancyQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST_VACANCIES)?;
    let page = page.validate()?;
    let employer_id = id.into_inner();
    employers::get(&state.db, &user, employer_id).await?;
    let mut filter = vacancy_filter(query.into_inner())?;
    filter.employer_id = Some(employer_id);
    let result = employers::list_vacancies(&state.db, &state.cursors, &user, filter, &page).await?;
    Ok(list_response(result, |m| VacancyDto::from(&m)))
}

/// Validated vacancy filters (shared with `GET /vacancies`).
pub fn vacancy_filter(q: VacancyQuery) -> Result<VacancyFilter, ApiError> {
    Ok(VacancyFilter {
        kind: code_filter::<VacancyKind>("kind", q.kind)?,
        occupation_code: kldb_prefix_filter("occupation_code", q.occupation_code)?,
        district: text_filter(q.district),
        status: code_filter::<VacancyStatus>("status", q.status)?,
        employer_id: q.employer_id,
        own_or_open: None,
    })
}

/// Create a vacancy
///
/// Office staff for any employer, an employer for itself. Accepts an `Idempotency-Key`.
#[utoipa::path(
    tag = "vacancies",
    params(("id" = Uuid, Path, description = "Employer id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    request_body = VacancyInput,
    responses((status = 201, description = "Created", body = VacancyDto, headers(("Location" = String), ("ETag" = String)))),
)]
#[post("/employers/{id}/vacancies")]
pub async fn create_vacancy(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: JsonBody<VacancyInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE_VACANCY)?;
    let fields = validated(&state.db, body.value).await?;
    let employer_id = id.into_inner();
    idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = employers::create_vacancy(txn, &user, employer_id, &fields).await?;
        created(format!("/api/v1/vacancies/{}", model.id), &VacancyDto::from(&model))
    })
    .await
}
