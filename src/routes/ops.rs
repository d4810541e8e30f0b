//! Operator endpoints: liveness, readiness, metrics. Public, outside `/api/v1`.
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{db, http::metrics, startup::AppState};

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when the database cannot be reached.
    pub status: &'static str,
}

/// Liveness
///
/// The process is up. `/healthz` is an alias.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)), security(()))]
#[get("/livez")]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Liveness (alias of `/livez`)
///
/// The same answer as `/livez`, for orchestrators and load balancers that
/// probe `/healthz` by default.
#[utoipa::path(tag = "operations", responses((status = 200, description = "Alive", body = Health)), security(()))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness
///
/// `200` when the database answers, else `503` with `Retry-After`. Recovers
/// by itself when the database comes back.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database unreachable", body = Health),
    ),
    security(()),
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(3), db::ping(&state.db)).await;
    metrics::record_database_up(matches!(outcome, Ok(Ok(()))));
    match outcome {
        Ok(Ok(())) => HttpResponse::Ok().json(Health { status: "ok" }),
        outcome => {
            let reason = match outcome {
                Ok(Err(e)) => crate::config::redact(&e.to_string()),
                _ => "timed out".to_owned(),
            };
            tracing::warn!(reason = %reason, "readiness check failed");
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", "5"))
                .json(Health { status: "unavailable" })
        }
    }
}

/// Prometheus metrics
///
/// `http_requests_total` and `http_request_duration_seconds` by method, route
/// and status; the database (`db_up`, pool size, maximum, acquire wait and
/// timeouts); background jobs; `webhook_backlog`; `ostwerk_build_info`.
/// Not served here when `OSTWERK_METRICS_ADDR` moves it to its own address.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 404, description = "Served on `OSTWERK_METRICS_ADDR` only, not here",
            body = crate::error::ProblemDetails, content_type = "application/problem+json"),
        (status = 429, description = "The caller's address used up its budget (`OSTWERK_RATE_LIMIT_ANON`; `Retry-After`)",
            body = crate::error::ProblemDetails, content_type = "application/problem+json"),
    ),
    security(()),
)]
#[get("/metrics")]
pub async fn metrics_endpoint(state: web::Data<AppState>) -> HttpResponse {
    if state.settings.metrics_addr.is_some() {
        // Served on OSTWERK_METRICS_ADDR only, so it need not be exposed with the API.
        return crate::http::request_context::error_response(crate::error::ApiError::new(
            crate::error::Problem::NotFound,
            "No such resource.",
        ));
    }
    render_metrics(&state).await
}

/// The Prometheus text, refreshed from the database (used by the main
/// server and by the separate metrics server).
pub async fn render_metrics(state: &AppState) -> HttpResponse {
    let (open, idle, max) = db::pool_figures(&state.db);
    metrics::record_pool(open, idle, max);
    let wait = tokio::time::timeout(std::time::Duration::from_secs(3), db::acquire_wait(&state.db)).await;
    if let Ok(Some(elapsed)) = wait {
        metrics::record_acquire_wait(elapsed);
    }
    let up = tokio::time::timeout(std::time::Duration::from_secs(3), db::ping(&state.db)).await;
    metrics::record_database_up(matches!(up, Ok(Ok(()))));
    if let Ok(backlog) = crate::repository::webhooks::backlog(&state.db).await {
        metrics::record_webhook_backlog(backlog);
    }
    let text = metrics::handle().map(|h| h.render()).unwrap_or_default();
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(livez).service(healthz).service(readyz).service(metrics_endpoint);
}
