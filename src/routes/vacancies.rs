//! `/api/v1/vacancies`: vacancies searchable across employers.
use actix_web::{HttpResponse, delete, get, patch, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{
    common::{ListOf, PageParams, list_response, merge_patch, ok_with_etag, validated},
    employers::{
        dto::{VacancyDto, VacancyInput, VacancyQuery},
        vacancy_filter,
    },
};
use crate::{
    auth::{Access, AuthUser, Role::*},
    error::{ApiError, ProblemDetails},
    extract::JsonBody,
    http::IfMatch,
    service::employers,
    startup::AppState,
};

pub const LIST: Access = Access::new("list_vacancies", &[Admin, Caseworker, Jobcenter, Employer]);
pub const GET: Access = Access::new("get_vacancy", &[Admin, Caseworker, Jobcenter, Employer]);
pub const UPDATE: Access = Access::new("update_vacancy", &[Admin, Caseworker, Employer]);
pub const DELETE: Access = Access::new("delete_vacancy", &[Admin, Caseworker, Employer]);
pub const ACCESS: &[&Access] = &[&LIST, &GET, &UPDATE, &DELETE];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_vacancies).service(get_vacancy).service(update_vacancy).service(delete_vacancy);
}

/// Search vacancies
///
/// `occupation_code` is a KldB prefix (`293` finds all of group 293). Job
/// centres see open vacancies only; an employer only its own.
#[utoipa::path(
    tag = "vacancies",
    params(PageParams, VacancyQuery),
    responses((status = 200, description = "One page of vacancies", body = ListOf<VacancyDto>)),
)]
#[get("/vacancies")]
pub async fn list_vacancies(
    state: web::Data<AppState>,
    user: AuthUser,
    page: PageParams,
    query: web::Query<VacancyQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let page = page.validate()?;
    let filter = vacancy_filter(query.into_inner())?;
    let result = employers::list_vacancies(&state.db, &state.cursors, &user, filter, &page).await?;
    Ok(list_response(result, |m| VacancyDto::from(&m)))
}

/// Get a vacancy
#[utoipa::path(
    tag = "vacancies",
    params(("id" = Uuid, Path, description = "Vacancy id")),
    responses((status = 200, description = "The vacancy", body = VacancyDto, headers(("ETag" = String)))),
)]
#[get("/vacancies/{id}")]
pub async fn get_vacancy(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET)?;
    let model = employers::get_vacancy(&state.db, &user, id.into_inner()).await?;
    Ok(ok_with_etag(model.version, &VacancyDto::from(&model)))
}

/// Change a vacancy
///
/// JSON merge patch; an employer principal may change only its own vacancies.
/// `positions` cannot drop below the positions already filled.
#[utoipa::path(
    tag = "vacancies",
    params(("id" = Uuid, Path, description = "Vacancy id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version the change is based on")),
    request_body(content = VacancyInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed vacancy", body = VacancyDto, headers(("ETag" = String)))),
)]
#[patch("/vacancies/{id}")]
pub async fn update_vacancy(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    user.require(&UPDATE)?;
    let current = employers::get_vacancy_for_change(&state.db, &user, id.into_inner()).await?;
    let merged: VacancyInput = merge_patch(&VacancyInput::from(&current), &body.value)?;
    let fields = validated(&state.db, merged).await?;
    if_match.check(current.version)?;
    let model = employers::update_vacancy(&state.db, &current, &if_match, &fields).await?;
    Ok(ok_with_etag(model.version, &VacancyDto::from(&model)))
}

/// Delete a vacancy
///
/// Refused with `409` while referrals reference it (close it instead).
#[utoipa::path(
    tag = "vacancies",
    params(("id" = Uuid, Path, description = "Vacancy id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version to delete")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Still referenced by referrals", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[delete("/vacancies/{id}")]
pub async fn delete_vacancy(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    user.require(&DELETE)?;
    employers::delete_vacancy(&state.db, &user, id.into_inner(), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
