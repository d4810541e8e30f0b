//! `/api/v1/providers`: organisations that run measures (Träger).
pub mod dto;

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use self::dto::{ProviderDto, ProviderInput, ProviderQuery};
use super::common::{
    ListOf, PageParams, code_filter, created, list_response, merge_patch, ok_with_etag, text_filter, validated,
};
use crate::{
    auth::{Access, AuthUser, Role::*},
    domain::codes::ProviderKind,
    error::{ApiError, ProblemDetails},
    extract::JsonBody,
    http::IfMatch,
    repository::providers::ProviderFilter,
    service::{
        idempotency::{self, IdempotencyKey},
        providers,
    },
    startup::AppState,
};

pub const LIST: Access = Access::new("list_providers", &[Admin, Caseworker, Jobcenter, Provider]);
pub const GET: Access = Access::new("get_provider", &[Admin, Caseworker, Jobcenter, Provider]);
pub const CREATE: Access = Access::new("create_provider", &[Admin, Caseworker]);
pub const UPDATE: Access = Access::new("update_provider", &[Admin, Caseworker, Provider]);
pub const DELETE: Access = Access::new("delete_provider", &[Admin, Caseworker]);
pub const ACCESS: &[&Access] = &[&LIST, &GET, &CREATE, &UPDATE, &DELETE];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_providers)
        .service(create_provider)
        .service(get_provider)
        .service(update_provider)
        .service(delete_provider);
}

/// List providers
///
/// Newest first; filter by kind, district, AZAV certification or name.
#[utoipa::path(
    tag = "providers",
    params(PageParams, ProviderQuery),
    responses((status = 200, description = "One page of providers", body = ListOf<ProviderDto>)),
)]
#[get("/providers")]
pub async fn list_providers(
    state: web::Data<AppState>,
    user: AuthUser,
    page: PageParams,
    query: web::Query<ProviderQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let page = page.validate()?;
    let query = query.into_inner();
    let filter = ProviderFilter {
        kind: code_filter::<ProviderKind>("kind", query.kind)?,
        district: text_filter(query.district),
        azav_certified: query.azav_certified,
        q: crate::extract::search_text(query.q)?,
    };
    let result = providers::list(&state.db, &state.cursors, &filter, &page).await?;
    Ok(list_response(result, |m| ProviderDto::from(&m)))
}

/// Create a provider
///
/// Accepts an `Idempotency-Key`.
#[utoipa::path(
    tag = "providers",
    request_body = ProviderInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe (1–255 printable ASCII; replays for 24 h)")),
    responses(
        (status = 201, description = "Created", body = ProviderDto,
            headers(("Location" = String, description = "URL of the new provider"), ("ETag" = String))),
        (status = 409, description = "The Idempotency-Key is still in use", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[post("/providers")]
pub async fn create_provider(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<ProviderInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE)?;
    let fields = validated(&state.db, body.value).await?;
    idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = providers::create(txn, &fields).await?;
        created(format!("/api/v1/providers/{}", model.id), &ProviderDto::from(&model))
    })
    .await
}

/// Get a provider
#[utoipa::path(
    tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id")),
    responses((status = 200, description = "The provider", body = ProviderDto, headers(("ETag" = String)))),
)]
#[get("/providers/{id}")]
pub async fn get_provider(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET)?;
    let model = providers::get(&state.db, id.into_inner()).await?;
    Ok(ok_with_etag(model.version, &ProviderDto::from(&model)))
}

/// Change a provider
///
/// JSON merge patch (RFC 7396). A provider principal may change only its own
/// record (`org` = the provider's id); other records read as `404`.
#[utoipa::path(
    tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version the change is based on")),
    request_body(content = ProviderInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed provider", body = ProviderDto, headers(("ETag" = String)))),
)]
#[patch("/providers/{id}")]
pub async fn update_provider(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    user.require(&UPDATE)?;
    let current = providers::get_for_change(&state.db, &user, id.into_inner()).await?;
    let merged: ProviderInput = merge_patch(&ProviderInput::from(&current), &body.value)?;
    let fields = validated(&state.db, merged).await?;
    if_match.check(current.version)?;
    if !user.is_office() && fields.azav_certified != current.azav_certified {
        return Err(ApiError::forbidden("Only office staff may change the AZAV certification."));
    }
    let model = providers::update(&state.db, &current, &if_match, &fields).await?;
    Ok(ok_with_etag(model.version, &ProviderDto::from(&model)))
}

/// Delete a provider
///
/// Refused with `409` while measures reference it.
#[utoipa::path(
    tag = "providers",
    params(("id" = Uuid, Path, description = "Provider id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version to delete")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Measures still reference the provider", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[delete("/providers/{id}")]
pub async fn delete_provider(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    user.require(&DELETE)?;
    providers::delete(&state.db, id.into_inner(), &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}
