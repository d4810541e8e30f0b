//! `/api/v1/code-lists/{name}`: every enumeration, with German and English labels.
use actix_web::{HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::{
    auth::{Access, AuthUser, Role},
    domain::codes::{self, Code},
    error::ApiError,
    repository,
    startup::AppState,
};

pub const GET: Access = Access::new("get_code_list", &Role::ALL);
pub const ACCESS: &[&Access] = &[&GET];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_code_list);
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CodeListDto {
    pub items: Vec<Code>,
}

/// Get a code list
///
/// Names: `districts` (Leipzig's Ortsteile, official two-digit codes),
/// `target_groups`, `education_levels`, `consultation_topics`,
/// `employer_consultation_topics`, `employer_needs`, `settlement_statuses`,
/// `vacancy_kinds`, `vacancy_statuses`, `measure_kinds`, `measure_statuses`,
/// `funding_types`, `provider_kinds`, `client_statuses`, `referral_statuses`,
/// `referral_actions`, `reason_codes`, `outcomes`. Any authenticated role may read them.
#[utoipa::path(
    tag = "code-lists",
    params(("name" = String, Path, description = "Name of the code list", example = "target_groups")),
    responses((status = 200, description = "The codes with their labels", body = CodeListDto)),
)]
#[get("/code-lists/{name}")]
pub async fn get_code_list(
    state: web::Data<AppState>,
    user: AuthUser,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET)?;
    let name = name.into_inner();
    let items = if name == codes::DISTRICTS {
        repository::districts::list(&state.db).await?
    } else {
        codes::static_lists()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, entries)| entries())
            .ok_or_else(|| ApiError::not_found("Code list"))?
    };
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "private, max-age=300")).json(CodeListDto { items }))
}
