//! `/api/v1/statistics`: anonymised demand and outcomes (no personal data;
//! counts below `OSTWERK_STATS_MIN_CELL` are suppressed).
use actix_web::{HttpResponse, get, http::header::ContentType, web, web::Bytes};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::common::DateOrTimestamp;
use crate::{
    auth::{Access, AuthUser, Role::*},
    error::{ApiError, FieldError},
    http::heavy::ResponseCache,
    service::statistics::{
        self, DemandQuery, DemandReport, Dim, FundingGroup, FundingReport, OutcomeGroup, OutcomeReport,
    },
    startup::AppState,
};

pub const DEMAND: Access = Access::new("get_demand_statistics", &[Admin, Caseworker, Jobcenter, Provider, Analyst]);
pub const OUTCOMES: Access = Access::new("get_outcome_statistics", &[Admin, Caseworker, Jobcenter, Provider, Analyst]);
pub const FUNDING: Access = Access::new("get_funding_statistics", &[Admin, Caseworker, Jobcenter, Provider, Analyst]);
pub const ACCESS: &[&Access] = &[&DEMAND, &OUTCOMES, &FUNDING];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_demand_statistics).service(get_outcome_statistics).service(get_funding_statistics);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DemandParams {
    /// Comma list of `district`, `target_group`, `occupation_field` (first two KldB digits), `measure_kind`.
    #[param(
        example = "district,target_group",
        pattern = "^(district|target_group|occupation_field|measure_kind)(,(district|target_group|occupation_field|measure_kind))*$"
    )]
    pub group_by: Option<String>,
    /// Only this district.
    #[param(min_length = 1)]
    pub district: Option<String>,
    /// Referrals created at or after this date or timestamp (see `DateOrTimestamp`).
    #[param(value_type = Option<DateOrTimestamp>)]
    pub from: Option<String>,
    /// Referrals created before this date or timestamp (see `DateOrTimestamp`).
    #[param(value_type = Option<DateOrTimestamp>)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutcomeParams {
    /// `measure_kind` (default), `provider` or `funding`.
    #[param(pattern = "^(measure_kind|provider|funding)$")]
    pub group_by: Option<String>,
    /// Referrals created at or after this date or timestamp (see `DateOrTimestamp`).
    #[param(value_type = Option<DateOrTimestamp>)]
    pub from: Option<String>,
    /// Referrals created before this date or timestamp (see `DateOrTimestamp`).
    #[param(value_type = Option<DateOrTimestamp>)]
    pub to: Option<String>,
}

/// The answer for `what` (a normalised query): from the principal's cache,
/// else computed in one of the principal's heavy-request slots (`429` when
/// they are all taken) and cached. See `http::heavy`.
async fn cached<T: Serialize>(
    state: &AppState,
    user: &AuthUser,
    what: String,
    compute: impl AsyncFnOnce() -> Result<T, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let key = ResponseCache::key(user, &what);
    let body = match state.stats_cache.get(&key) {
        Some(body) => body,
        None => {
            let _slot = state.heavy.enter(user)?;
            let report = compute().await?;
            let body = Bytes::from(serde_json::to_vec(&report).map_err(ApiError::internal)?);
            state.stats_cache.put(key, body.clone());
            body
        }
    };
    Ok(HttpResponse::Ok().content_type(ContentType::json()).body(body))
}

/// A date (midnight UTC) or a timestamp with an offset
/// (`validate::parse_timestamp`); `400` otherwise.
fn instant(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(v) = value.map(str::trim) else { return Ok(None) };
    if let Some(d) = crate::domain::validate::parse_date(v) {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()));
    }
    crate::domain::validate::parse_timestamp(v).map(Some).map_err(|message| {
        ApiError::bad_request("Invalid query parameters.")
            .with_errors(vec![FieldError::new(field, format!("must be a date YYYY-MM-DD or a timestamp: {message}"))])
    })
}

/// Demand by district, target group, occupation field, measure kind
///
/// Per row: active `clients`, `referrals_requested`, `referrals_active`,
/// `seats_offered` and `seats_free` of measures not closed, and
/// `unserved_clients` (active clients with no active referral). A count from
/// 1 to `min_cell − 1` is `null` and the row says `"suppressed": true`; a
/// total is `null` when it would reveal a suppressed cell. Where one count
/// is part of another (`referrals_requested` of `referrals_active`,
/// `seats_free` of `seats_offered`, `unserved_clients` of `clients`) and the
/// two differ by 1 to `min_cell − 1`, the part is `null` too, since the
/// difference would count a small group. Client and
/// referral counts use the client's district, target groups and occupation
/// fields; seats use the measure's. `referrals_active` includes the
/// `requested` ones (active: `requested`, `accepted`, `on_hold`,
/// `in_progress`). `from` and `to` narrow only the two referral counts;
/// clients, seats and `unserved_clients` describe the present. By
/// `measure_kind`, a client is counted under the kind of each measure it has
/// an active referral to, else under `null`. Anonymous: no personal data ever.
#[utoipa::path(
    tag = "statistics",
    params(DemandParams),
    responses((status = 200, description = "The demand table", body = DemandReport)),
)]
#[get("/statistics/demand")]
pub async fn get_demand_statistics(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<DemandParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(&DEMAND)?;
    let q = query.into_inner();
    let query = DemandQuery {
        group_by: Dim::parse_list(q.group_by.as_deref())?,
        district: q.district.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty()),
        from: instant("from", q.from.as_deref())?,
        to: instant("to", q.to.as_deref())?,
    };
    let min_cell = u64::from(state.settings.stats_min_cell);
    let what = format!("demand {:?} {:?} {:?} {:?}", query.group_by, query.district, query.from, query.to);
    cached(&state, &user, what, async || statistics::demand(&state.db, &query, min_cell).await).await
}

/// Outcomes by measure kind, provider or funding
///
/// Per group of measures: `referrals`; `acceptance_rate` (accepted ever ÷
/// accepted ever or rejected); `completion_rate` (completed ÷ started);
/// `dropout_rate` (ended early after the start — `failed` or `cancelled`
/// while in progress, whoever ended it — ÷ started); and `employment_share`
/// (completions with outcome `employed`, `apprenticeship` or
/// `self_employed` ÷ completions). A referral count from 1 to `min_cell − 1`
/// is `null`, and so is a rate whose own denominator is below `min_cell`;
/// either makes the row `"suppressed": true`.
#[utoipa::path(
    tag = "statistics",
    params(OutcomeParams),
    responses((status = 200, description = "The outcome table", body = OutcomeReport)),
)]
#[get("/statistics/outcomes")]
pub async fn get_outcome_statistics(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<OutcomeParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(&OUTCOMES)?;
    let q = query.into_inner();
    let group = OutcomeGroup::parse(q.group_by.as_deref())?;
    let from = instant("from", q.from.as_deref())?;
    let to = instant("to", q.to.as_deref())?;
    let min_cell = u64::from(state.settings.stats_min_cell);
    let what = format!("outcomes {group:?} {from:?} {to:?}");
    cached(&state, &user, what, async || statistics::outcomes(&state.db, group, from, to, min_cell).await).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FundingParams {
    /// `programme` (default), `funder` or `applicant_kind`.
    #[param(pattern = "^(programme|funder|applicant_kind)$")]
    pub group_by: Option<String>,
}

/// Funding raised
///
/// Per group: applications (not drafts), grants, amounts requested and
/// granted. Groups with fewer than `min_cell` applications or grants are
/// suppressed, their sums with them.
#[utoipa::path(
    tag = "statistics",
    params(FundingParams),
    responses((status = 200, description = "The funding table", body = FundingReport)),
)]
#[get("/statistics/funding")]
pub async fn get_funding_statistics(
    state: web::Data<AppState>,
    user: AuthUser,
    query: web::Query<FundingParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(&FUNDING)?;
    let group = FundingGroup::parse(query.group_by.as_deref())?;
    let min_cell = u64::from(state.settings.stats_min_cell);
    let what = format!("funding {group:?}");
    cached(&state, &user, what, async || statistics::funding(&state.db, group, min_cell).await).await
}
