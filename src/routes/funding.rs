//! `/api/v1/funding-programmes` and `/api/v1/funding-applications`.
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::common::{
    ListOf, PageParams, audit_context, code_filter, created, list_response, merge_patch, ok_with_etag,
};
use crate::{
    auth::{Access, AuthUser, Role, Role::*},
    domain::{
        audit::action,
        codes::{ApplicantKind, FundingApplicationStatus, TargetGroup},
        validate::Checker,
    },
    entities::{funding_application, funding_programme},
    error::{ApiError, ProblemDetails},
    extract::JsonBody,
    http::IfMatch,
    repository::{
        self,
        funding::{ApplicationFields, ApplicationFilter, ProgrammeFields},
        tags,
    },
    service::{
        funding,
        idempotency::{self, IdempotencyKey},
        paging,
    },
    startup::AppState,
};

pub const LIST_PROGRAMMES: Access = Access::new("list_funding_programmes", &Role::ALL);
pub const GET_PROGRAMME: Access = Access::new("get_funding_programme", &Role::ALL);
pub const CREATE_PROGRAMME: Access = Access::new("create_funding_programme", &[Admin, Caseworker]);
pub const UPDATE_PROGRAMME: Access = Access::new("update_funding_programme", &[Admin, Caseworker]);
pub const DELETE_PROGRAMME: Access = Access::new("delete_funding_programme", &[Admin, Caseworker]);
pub const LIST_APPLICATIONS: Access = Access::new("list_funding_applications", &[Admin, Caseworker]);
pub const GET_APPLICATION: Access = Access::new("get_funding_application", &[Admin, Caseworker]);
pub const CREATE_APPLICATION: Access = Access::new("create_funding_application", &[Admin, Caseworker]);
pub const UPDATE_APPLICATION: Access = Access::new("update_funding_application", &[Admin, Caseworker]);
pub const DELETE_APPLICATION: Access = Access::new("delete_funding_application", &[Admin, Caseworker]);
pub const ACCESS: &[&Access] = &[
    &LIST_PROGRAMMES,
    &GET_PROGRAMME,
    &CREATE_PROGRAMME,
    &UPDATE_PROGRAMME,
    &DELETE_PROGRAMME,
    &LIST_APPLICATIONS,
    &GET_APPLICATION,
    &CREATE_APPLICATION,
    &UPDATE_APPLICATION,
    &DELETE_APPLICATION,
];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_funding_programmes)
        .service(create_funding_programme)
        .service(get_funding_programme)
        .service(update_funding_programme)
        .service(delete_funding_programme)
        .service(list_funding_applications)
        .service(create_funding_application)
        .service(get_funding_application)
        .service(update_funding_application)
        .service(delete_funding_application);
}

fn euros(cents: Option<i64>) -> Option<f64> {
    cents.map(|c| c as f64 / 100.0)
}

// --- programmes ---

/// A funding programme as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Gründungszuschuss", "funder": "Bundesagentur für Arbeit", "legal_basis": "§ 93 SGB III",
    "target_groups": ["founder", "unemployed"], "eligible_applicants": ["client"], "max_amount_eur": 30000,
    "deadline": null, "url": "https://www.arbeitsagentur.de/"}))]
pub struct ProgrammeInput {
    /// Required.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: Option<String>,
    /// Required.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 300, pattern = "\\S")]
    pub funder: Option<String>,
    #[schema(max_length = 300)]
    pub legal_basis: Option<String>,
    #[schema(value_type = Option<Vec<TargetGroup>>, max_items = 10)]
    pub target_groups: Option<Vec<String>>,
    /// Who may apply; empty: anybody.
    #[schema(value_type = Option<Vec<ApplicantKind>>, max_items = 4)]
    pub eligible_applicants: Option<Vec<String>>,
    /// At most two decimals.
    #[schema(minimum = 0, maximum = 1000000000)]
    pub max_amount_eur: Option<f64>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub deadline: Option<String>,
    /// http(s).
    #[schema(max_length = 2000)]
    pub url: Option<String>,
}

impl ProgrammeInput {
    fn validate(self) -> Result<ProgrammeFields, ApiError> {
        let mut c = Checker::new();
        let name = c.required("name", self.name.as_deref()).map(|v| c.text("name", v, 300));
        let funder = c.required("funder", self.funder.as_deref()).map(|v| c.text("funder", v, 300));
        let legal_basis = c.opt_text("legal_basis", self.legal_basis.as_deref(), 300);
        let target_groups = c.codes::<TargetGroup>("target_groups", self.target_groups.as_deref().unwrap_or_default());
        let eligible =
            c.codes::<ApplicantKind>("eligible_applicants", self.eligible_applicants.as_deref().unwrap_or_default());
        let max_amount_cents = c.euros("max_amount_eur", self.max_amount_eur);
        let deadline = c.date("deadline", self.deadline.as_deref());
        let url = c.url("url", self.url.as_deref());
        c.finish()?;
        Ok(ProgrammeFields {
            name: name.unwrap_or_default(),
            funder: funder.unwrap_or_default(),
            legal_basis,
            target_groups: target_groups.iter().map(|t| t.as_str().to_owned()).collect(),
            eligible_applicants: eligible.iter().map(|e| e.as_str().to_owned()).collect(),
            max_amount_cents,
            deadline,
            url,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgrammeDto {
    pub id: Uuid,
    pub name: String,
    pub funder: String,
    pub legal_basis: Option<String>,
    #[schema(value_type = Vec<TargetGroup>)]
    pub target_groups: Vec<String>,
    #[schema(value_type = Vec<ApplicantKind>)]
    pub eligible_applicants: Vec<String>,
    pub max_amount_eur: Option<f64>,
    pub deadline: Option<NaiveDate>,
    pub url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<&funding_programme::Model> for ProgrammeDto {
    fn from(m: &funding_programme::Model) -> Self {
        Self {
            id: m.id,
            name: m.name.clone(),
            funder: m.funder.clone(),
            legal_basis: m.legal_basis.clone(),
            target_groups: tags::split(&m.target_groups),
            eligible_applicants: tags::split(&m.eligible_applicants),
            max_amount_eur: euros(m.max_amount_cents),
            deadline: m.deadline,
            url: m.url.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

impl From<&funding_programme::Model> for ProgrammeInput {
    fn from(m: &funding_programme::Model) -> Self {
        let d = ProgrammeDto::from(m);
        Self {
            name: Some(d.name),
            funder: Some(d.funder),
            legal_basis: d.legal_basis,
            target_groups: Some(d.target_groups),
            eligible_applicants: Some(d.eligible_applicants),
            max_amount_eur: d.max_amount_eur,
            deadline: d.deadline.map(|x| x.to_string()),
            url: d.url,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgrammeQuery {
    /// Programmes open to this kind of applicant (`applicant_kinds`).
    #[param(value_type = Option<ApplicantKind>)]
    pub eligible_applicant: Option<String>,
    /// Programmes for this target group.
    #[param(value_type = Option<TargetGroup>)]
    pub target_group: Option<String>,
}

/// List funding programmes
#[utoipa::path(tag = "funding", params(PageParams, ProgrammeQuery),
    responses((status = 200, description = "One page of programmes", body = ListOf<ProgrammeDto>)))]
#[get("/funding-programmes")]
pub async fn list_funding_programmes(
    state: web::Data<AppState>,
    user: AuthUser,
    page: PageParams,
    query: web::Query<ProgrammeQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST_PROGRAMMES)?;
    let page = page.validate()?;
    let q = query.into_inner();
    let eligible = code_filter::<ApplicantKind>("eligible_applicant", q.eligible_applicant)?;
    let group = code_filter::<TargetGroup>("target_group", q.target_group)?;
    let after = paging::start(&state.cursors, &page)?;
    let rows = repository::funding::list_programmes(
        &state.db,
        eligible.as_deref(),
        group.as_deref(),
        after,
        paging::newest_first(&page),
        page.limit,
    )
    .await?;
    Ok(list_response(paging::finish(&state.cursors, &page, rows, |m| m.id), |m| ProgrammeDto::from(&m)))
}

/// Record a funding programme
#[utoipa::path(tag = "funding", request_body = ProgrammeInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses((status = 201, description = "Created", body = ProgrammeDto, headers(("Location" = String), ("ETag" = String)))))]
#[post("/funding-programmes")]
pub async fn create_funding_programme(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<ProgrammeInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE_PROGRAMME)?;
    let fields = body.value.validate()?;
    idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = repository::funding::insert_programme(txn, &fields).await?;
        created(format!("/api/v1/funding-programmes/{}", model.id), &ProgrammeDto::from(&model))
    })
    .await
}

/// Get a funding programme
#[utoipa::path(tag = "funding", params(("id" = Uuid, Path, description = "Programme id")),
    responses((status = 200, description = "The programme", body = ProgrammeDto, headers(("ETag" = String)))))]
#[get("/funding-programmes/{id}")]
pub async fn get_funding_programme(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET_PROGRAMME)?;
    let m = funding::get_programme(&state.db, id.into_inner()).await?;
    Ok(ok_with_etag(m.version, &ProgrammeDto::from(&m)))
}

/// Change a funding programme
#[utoipa::path(tag = "funding",
    params(("id" = Uuid, Path, description = "Programme id"), ("If-Match" = Option<String>, Header, description = "ETag of the version the change is based on")),
    request_body(content = ProgrammeInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed programme", body = ProgrammeDto, headers(("ETag" = String)))))]
#[patch("/funding-programmes/{id}")]
pub async fn update_funding_programme(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    user.require(&UPDATE_PROGRAMME)?;
    let current = funding::get_programme(&state.db, id.into_inner()).await?;
    let merged: ProgrammeInput = merge_patch(&ProgrammeInput::from(&current), &body.value)?;
    let fields = merged.validate()?;
    if_match.check(current.version)?;
    let m = funding::update_programme(&state.db, &current, &fields).await?;
    Ok(ok_with_etag(m.version, &ProgrammeDto::from(&m)))
}

/// Delete a funding programme
///
/// Refused with `409` while applications reference it.
#[utoipa::path(tag = "funding",
    params(("id" = Uuid, Path, description = "Programme id"), ("If-Match" = Option<String>, Header, description = "ETag of the version to delete")),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "Applications reference it", body = ProblemDetails, content_type = "application/problem+json")))]
#[delete("/funding-programmes/{id}")]
pub async fn delete_funding_programme(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    user.require(&DELETE_PROGRAMME)?;
    let current = funding::get_programme(&state.db, id.into_inner()).await?;
    if_match.check(current.version)?;
    funding::delete_programme(&state.db, &current).await?;
    Ok(HttpResponse::NoContent().finish())
}

// --- applications ---

/// A funding application as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"programme_id": "0193a000-0000-7000-8000-0000000f0001", "applicant_kind": "client",
    "applicant_id": "0193a000-0000-7000-8000-00000000c001", "amount_requested_eur": 5000, "status": "draft"}))]
pub struct ApplicationInput {
    /// Required.
    #[schema(value_type = Uuid, required = true, max_length = 36)]
    pub programme_id: Option<String>,
    /// Required: `client`, `employer`, `provider` or `association` (a provider of kind association).
    #[schema(value_type = ApplicantKind, required = true)]
    pub applicant_kind: Option<String>,
    /// Required: the id of the client, employer or provider applying.
    #[schema(value_type = Uuid, required = true, max_length = 36)]
    pub applicant_id: Option<String>,
    /// Required. At most two decimals.
    #[schema(required = true, nullable = false, minimum = 0, maximum = 1000000000)]
    pub amount_requested_eur: Option<f64>,
    /// Required when `granted`. At most two decimals.
    #[schema(minimum = 0, maximum = 1000000000)]
    pub amount_granted_eur: Option<f64>,
    /// Default `draft`.
    #[schema(value_type = Option<FundingApplicationStatus>)]
    pub status: Option<String>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub submitted_on: Option<String>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub decided_on: Option<String>,
    #[schema(max_length = 10000)]
    pub note: Option<String>,
}

fn uuid_field(c: &mut Checker, field: &str, value: Option<&str>) -> Option<Uuid> {
    let v = c.required(field, value)?;
    c.uuid(field, Some(v))
}

impl ApplicationInput {
    fn validate(self) -> Result<ApplicationFields, ApiError> {
        let mut c = Checker::new();
        let programme_id = uuid_field(&mut c, "programme_id", self.programme_id.as_deref());
        let kind = c
            .required("applicant_kind", self.applicant_kind.as_deref())
            .and_then(|k| c.code::<ApplicantKind>("applicant_kind", k));
        let applicant_id = uuid_field(&mut c, "applicant_id", self.applicant_id.as_deref());
        let requested = c
            .required("amount_requested_eur", self.amount_requested_eur)
            .and_then(|v| c.euros("amount_requested_eur", Some(v)));
        let granted = c.euros("amount_granted_eur", self.amount_granted_eur);
        let status = match self.status.as_deref() {
            None => Some(FundingApplicationStatus::Draft),
            Some(s) => c.code::<FundingApplicationStatus>("status", s),
        };
        let submitted_on = c.date("submitted_on", self.submitted_on.as_deref());
        let decided_on = c.date("decided_on", self.decided_on.as_deref());
        if let (Some(s), Some(d)) = (submitted_on, decided_on)
            && d < s
        {
            c.add("decided_on", "must not be before submitted_on");
        }
        if status == Some(FundingApplicationStatus::Granted) && granted.is_none() {
            c.add("amount_granted_eur", "is required when the status is granted");
        }
        let note = c.opt_text("note", self.note.as_deref(), 10_000);
        c.finish()?;
        Ok(ApplicationFields {
            programme_id: programme_id.unwrap_or_default(),
            applicant_kind: kind.map(|k| k.as_str().to_owned()).unwrap_or_default(),
            applicant_id: applicant_id.unwrap_or_default(),
            amount_requested_cents: requested.unwrap_or_default(),
            amount_granted_cents: granted,
            status: status.unwrap_or(FundingApplicationStatus::Draft).as_str().to_owned(),
            submitted_on,
            decided_on,
            note,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationDto {
    pub id: Uuid,
    pub programme_id: Uuid,
    #[schema(value_type = ApplicantKind)]
    pub applicant_kind: String,
    pub applicant_id: Uuid,
    pub amount_requested_eur: f64,
    pub amount_granted_eur: Option<f64>,
    #[schema(value_type = FundingApplicationStatus)]
    pub status: String,
    pub submitted_on: Option<NaiveDate>,
    pub decided_on: Option<NaiveDate>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<&funding_application::Model> for ApplicationDto {
    fn from(m: &funding_application::Model) -> Self {
        Self {
            id: m.id,
            programme_id: m.programme_id,
            applicant_kind: m.applicant_kind.clone(),
            applicant_id: m.applicant_id,
            amount_requested_eur: m.amount_requested_cents as f64 / 100.0,
            amount_granted_eur: euros(m.amount_granted_cents),
            status: m.status.clone(),
            submitted_on: m.submitted_on,
            decided_on: m.decided_on,
            note: m.note.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

impl From<&funding_application::Model> for ApplicationInput {
    fn from(m: &funding_application::Model) -> Self {
        let d = ApplicationDto::from(m);
        Self {
            programme_id: Some(d.programme_id.to_string()),
            applicant_kind: Some(d.applicant_kind),
            applicant_id: Some(d.applicant_id.to_string()),
            amount_requested_eur: Some(d.amount_requested_eur),
            amount_granted_eur: d.amount_granted_eur,
            status: Some(d.status),
            submitted_on: d.submitted_on.map(|x| x.to_string()),
            decided_on: d.decided_on.map(|x| x.to_string()),
            note: d.note,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApplicationQuery {
    pub programme_id: Option<Uuid>,
    /// The applying client, employer or provider.
    pub applicant_id: Option<Uuid>,
    /// A code of `funding_application_statuses`.
    #[param(value_type = Option<FundingApplicationStatus>)]
    pub status: Option<String>,
}

/// List funding applications
///
/// Applications of clients are recorded in the audit log when listed.
#[utoipa::path(tag = "funding", params(PageParams, ApplicationQuery),
    responses((status = 200, description = "One page of applications", body = ListOf<ApplicationDto>)))]
#[get("/funding-applications")]
pub async fn list_funding_applications(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    page: PageParams,
    query: web::Query<ApplicationQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST_APPLICATIONS)?;
    let page = page.validate()?;
    let q = query.into_inner();
    let filter = ApplicationFilter {
        programme_id: q.programme_id,
        applicant_id: q.applicant_id,
        status: code_filter::<FundingApplicationStatus>("status", q.status)?,
    };
    let after = paging::start(&state.cursors, &page)?;
    let rows =
        repository::funding::list_applications(&state.db, &filter, after, paging::newest_first(&page), page.limit)
            .await?;
    let result = paging::finish(&state.cursors, &page, rows, |m| m.id);
    let shown: Vec<&funding_application::Model> = result.items.iter().collect();
    funding::audit_client_applications(
        &state.db,
        &audit_context(&user, &req),
        action::FUNDING_APPLICATION_READ,
        &shown,
    )
    .await?;
    Ok(list_response(result, |m| ApplicationDto::from(&m)))
}

/// Record a funding application
///
/// The programme must accept the applicant's kind; the applicant must exist.
#[utoipa::path(tag = "funding", request_body = ApplicationInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    responses((status = 201, description = "Created", body = ApplicationDto, headers(("Location" = String), ("ETag" = String)))))]
#[post("/funding-applications")]
pub async fn create_funding_application(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<ApplicationInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE_APPLICATION)?;
    let fields = body.value.validate()?;
    let audit = audit_context(&user, &req);
    idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        funding::check_application(txn, &fields).await?;
        let model = repository::funding::insert_application(txn, &fields).await?;
        funding::audit_client_applications(txn, &audit, action::FUNDING_APPLICATION_WRITE, &[&model]).await?;
        created(format!("/api/v1/funding-applications/{}", model.id), &ApplicationDto::from(&model))
    })
    .await
}

/// Get a funding application
#[utoipa::path(tag = "funding", params(("id" = Uuid, Path, description = "Application id")),
    responses((status = 200, description = "The application", body = ApplicationDto, headers(("ETag" = String)))))]
#[get("/funding-applications/{id}")]
pub async fn get_funding_application(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET_APPLICATION)?;
    let m = funding::get_application(&state.db, id.into_inner()).await?;
    funding::audit_client_applications(&state.db, &audit_context(&user, &req), action::FUNDING_APPLICATION_READ, &[&m])
        .await?;
    Ok(ok_with_etag(m.version, &ApplicationDto::from(&m)))
}

/// Change a funding application
#[utoipa::path(tag = "funding",
    params(("id" = Uuid, Path, description = "Application id"), ("If-Match" = Option<String>, Header, description = "ETag of the version the change is based on")),
    request_body(content = ApplicationInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The changed application", body = ApplicationDto, headers(("ETag" = String)))))]
#[patch("/funding-applications/{id}")]
pub async fn update_funding_application(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    user.require(&UPDATE_APPLICATION)?;
    let txn = state.db.begin().await?;
    let current = funding::get_application(&txn, id.into_inner()).await?;
    let merged: ApplicationInput = merge_patch(&ApplicationInput::from(&current), &body.value)?;
    let fields = merged.validate()?;
    if_match.check(current.version)?;
    let m = funding::update_application(&txn, &current, &fields).await?;
    funding::audit_client_applications(&txn, &audit_context(&user, &req), action::FUNDING_APPLICATION_WRITE, &[&m])
        .await?;
    txn.commit().await?;
    Ok(ok_with_etag(m.version, &ApplicationDto::from(&m)))
}

/// Delete a funding application
#[utoipa::path(tag = "funding",
    params(("id" = Uuid, Path, description = "Application id"), ("If-Match" = Option<String>, Header, description = "ETag of the version to delete")),
    responses((status = 204, description = "Deleted")))]
#[delete("/funding-applications/{id}")]
pub async fn delete_funding_application(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    user.require(&DELETE_APPLICATION)?;
    let current = funding::get_application(&state.db, id.into_inner()).await?;
    if_match.check(current.version)?;
    if !repository::funding::delete_application(&state.db, &current).await? {
        return Err(ApiError::stale("funding application"));
    }
    Ok(HttpResponse::NoContent().finish())
}
