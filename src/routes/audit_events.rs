//! `/api/v1/audit-events`: the append-only audit log (admin only).
use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{
    clients::dto::AuditEventDto,
    common::{ListOf, PageParams, list_response, text_filter},
};
use crate::{
    auth::{Access, AuthUser, Role},
    domain::validate::Checker,
    error::ApiError,
    repository::{self, audit::AuditFilter},
    service::paging,
    startup::AppState,
};

pub const LIST: Access = Access::new("list_audit_events", &[Role::Admin]);
pub const ACCESS: &[&Access] = &[&LIST];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_audit_events);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub client_id: Option<Uuid>,
    /// The `sub` of the principal.
    #[param(min_length = 1)]
    pub actor: Option<String>,
    /// Events at or after this instant, a timestamp with an offset: RFC 3339 or ISO 8601 (`Z`, `+00:00` or `+0000`; fractions of a second allowed; without an offset `400`).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Events before this instant, a timestamp with an offset: RFC 3339 or ISO 8601 (`Z`, `+00:00` or `+0000`; fractions of a second allowed; without an offset `400`).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
}

/// List audit events
///
/// Every read or write of a client's personal data, newest first.
#[utoipa::path(
    tag = "audit",
    params(PageParams, AuditQuery),
    responses((status = 200, description = "One page of audit events", body = ListOf<AuditEventDto>)),
)]
#[get("/audit-events")]
pub async fn list_audit_events(
    state: web::Data<AppState>,
    user: AuthUser,
    page: PageParams,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let page = page.validate()?;
    let q = query.into_inner();
    let mut c = Checker::new();
    let from = c.timestamp("from", q.from.as_deref());
    let to = c.timestamp("to", q.to.as_deref());
    c.finish().map_err(|e| ApiError::bad_request("Invalid query parameters.").with_errors(e.errors))?;
    let filter = AuditFilter { client_id: q.client_id, actor: text_filter(q.actor), from, to };
    let after = paging::start(&state.cursors, &page)?;
    let rows = repository::audit::list(&state.db, &filter, after, paging::newest_first(&page), page.limit).await?;
    let result = paging::finish(&state.cursors, &page, rows, |m| m.id);
    Ok(list_response(result, |m| AuditEventDto::from(&m)))
}
