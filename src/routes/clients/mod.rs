//! `/api/v1/clients`: clients and their counselling log — personal data,
//! every read and write audited (SPEC §5).
pub mod dto;

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use sea_orm::TransactionTrait;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use self::dto::{AuditEventDto, ClientDto, ClientExport, ClientInput, ClientQuery, ConsultationDto, ConsultationInput};
use super::common::{
    ListOf, PageParams, audit_context, code_filter, created, list_response, merge_patch, ok_with_etag, text_filter,
    validated,
};
use super::referrals::dto::{ReferralDto, ReferralEventDto, ReferralWithEvents};
use crate::{
    auth::{Access, AuthUser, Role::*},
    domain::{
        audit::action,
        codes::{ClientStatus, TargetGroup},
        ids::now,
    },
    error::{ApiError, ProblemDetails},
    extract::JsonBody,
    http::IfMatch,
    repository::clients::ClientFilter,
    service::{
        clients,
        idempotency::{self, IdempotencyKey},
    },
    startup::AppState,
};

pub const LIST: Access = Access::new("list_clients", &[Admin, Caseworker, Jobcenter]);
pub const GET: Access = Access::new("get_client", &[Admin, Caseworker, Jobcenter]);
pub const CREATE: Access = Access::new("create_client", &[Admin, Caseworker, Jobcenter]);
pub const UPDATE: Access = Access::new("update_client", &[Admin, Caseworker]);
pub const ERASE: Access = Access::new("erase_client", &[Admin]);
pub const EXPORT: Access = Access::new("export_client", &[Admin, Caseworker]);
pub const LIST_CONSULTATIONS: Access = Access::new("list_client_consultations", &[Admin, Caseworker]);
pub const CREATE_CONSULTATION: Access = Access::new("create_client_consultation", &[Admin, Caseworker]);
pub const GET_CONSULTATION: Access = Access::new("get_client_consultation", &[Admin, Caseworker]);
pub const MATCHES: Access = Access::new("list_client_matches", &[Admin, Caseworker, Jobcenter]);
pub const ACCESS: &[&Access] = &[
    &LIST,
    &GET,
    &CREATE,
    &UPDATE,
    &ERASE,
    &EXPORT,
    &LIST_CONSULTATIONS,
    &CREATE_CONSULTATION,
    &GET_CONSULTATION,
    &MATCHES,
];

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_clients)
        .service(create_client)
        .service(get_client)
        .service(update_client)
        .service(erase_client)
        .service(export_client)
        .service(list_client_consultations)
        .service(create_client_consultation)
        .service(get_client_consultation)
        .service(list_client_matches);
}

const GONE: &str = "The client was erased";

/// List clients
///
/// Office staff see every client, a job centre the clients it created or
/// referred. Each listed client is recorded in the audit log. Erased clients
/// are listed (as anonymous stubs) only with `status=erased`.
#[utoipa::path(
    tag = "clients",
    params(PageParams, ClientQuery),
    responses((status = 200, description = "One page of clients", body = ListOf<ClientDto>)),
)]
#[get("/clients")]
pub async fn list_clients(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    page: PageParams,
    query: web::Query<ClientQuery>,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST)?;
    let page = page.validate()?;
    let q = query.into_inner();
    let filter = ClientFilter {
        external_id: text_filter(q.external_id),
        district: text_filter(q.district),
        target_group: code_filter::<TargetGroup>("target_group", q.target_group)?,
        status: code_filter::<ClientStatus>("status", q.status)?,
        q: crate::extract::search_text(q.q)?,
    };
    let audit = audit_context(&user, &req);
    let result = clients::list(&state.db, &audit, &state.cursors, &user, &filter, &page).await?;
    Ok(list_response(result, |m| ClientDto::from(&m)))
}

/// Create a client
///
/// `external_id` is unique per creating organisation: a second client with
/// the same one is a `409` naming the `existing_id`. Accepts an `Idempotency-Key`.
#[utoipa::path(
    tag = "clients",
    request_body = ClientInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe (replays for 24 h)")),
    responses(
        (status = 201, description = "Created", body = ClientDto, headers(("Location" = String), ("ETag" = String))),
        (status = 409, description = "Duplicate `external_id` (`existing_id` names the record), or Idempotency-Key in use",
            body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[post("/clients")]
pub async fn create_client(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    body: JsonBody<ClientInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE)?;
    let fields = validated(&state.db, body.value).await?;
    let audit = audit_context(&user, &req);
    let response = idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = clients::create(txn, &audit, &user, &fields).await?;
        created(format!("/api/v1/clients/{}", model.id), &ClientDto::from(&model))
    })
    .await?;
    clients::audit_replay(&state.db, &audit, &response, None).await?;
    Ok(response)
}

/// Get a client
#[utoipa::path(
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id")),
    responses(
        (status = 200, description = "The client", body = ClientDto, headers(("ETag" = String))),
        (status = 410, description = GONE, body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[get("/clients/{id}")]
pub async fn get_client(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET)?;
    let audit = audit_context(&user, &req);
    let model =
        clients::read(&state.db, state.hot_pg.as_ref(), &state.audit_writer, &audit, &user, id.into_inner()).await?;
    Ok(ok_with_etag(model.version, &ClientDto::from(&model)))
}

/// Change a client
///
/// JSON merge patch (RFC 7396); honours `If-Match`.
#[utoipa::path(
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id"),
           ("If-Match" = Option<String>, Header, description = "ETag of the version the change is based on")),
    request_body(content = ClientInput, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The changed client", body = ClientDto, headers(("ETag" = String))),
        (status = 409, description = "Duplicate `external_id`", body = ProblemDetails, content_type = "application/problem+json"),
        (status = 410, description = GONE, body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[patch("/clients/{id}")]
pub async fn update_client(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: JsonBody<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    user.require(&UPDATE)?;
    let audit = audit_context(&user, &req);
    let txn = state.db.begin().await?;
    let current = clients::get(&txn, &audit, &user, id.into_inner(), action::CLIENT_UPDATE).await?;
    let merged: ClientInput = merge_patch(&ClientInput::from(&current), &body.value)?;
    let fields = validated(&txn, merged).await?;
    if_match.check(current.version)?;
    let model = clients::update(&txn, &user, &current, &if_match, &fields).await?;
    txn.commit().await?;
    Ok(ok_with_etag(model.version, &ClientDto::from(&model)))
}

/// Erase a client (GDPR Art. 17)
///
/// Destroys every personal field and all counselling notes; the record stays
/// as an anonymous stub so referrals and statistics stay right. Afterwards
/// every path of the client answers `410`.
#[utoipa::path(
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id")),
    responses(
        (status = 204, description = "Erased"),
        (status = 410, description = "Already erased", body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[delete("/clients/{id}")]
pub async fn erase_client(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&ERASE)?;
    let audit = audit_context(&user, &req);
    let txn = state.db.begin().await?;
    clients::erase(&txn, &audit, &user, id.into_inner()).await?;
    txn.commit().await?;
    clients::flush_erased(&state.db).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Export everything held about a client (GDPR Art. 15)
#[utoipa::path(
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id")),
    responses(
        (status = 200, description = "One JSON document with the record, counselling log, referrals and audit trail", body = ClientExport),
        (status = 410, description = GONE, body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[get("/clients/{id}/export")]
pub async fn export_client(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    user.require(&EXPORT)?;
    let audit = audit_context(&user, &req);
    let data = clients::export(&state.db, &audit, &user, id.into_inner()).await?;
    let export = ClientExport {
        exported_at: now(),
        client: ClientDto::from(&data.client),
        consultations: data.consultations.iter().map(ConsultationDto::from).collect(),
        referrals: data
            .referrals
            .iter()
            .map(|(r, events)| ReferralWithEvents {
                referral: ReferralDto::new(r, None),
                events: events.iter().map(ReferralEventDto::from).collect(),
            })
            .collect(),
        funding_applications: data
            .funding_applications
            .iter()
            .map(crate::routes::funding::ApplicationDto::from)
            .collect(),
        audit_events: data.audit_events.iter().map(AuditEventDto::from).collect(),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Disposition", format!("attachment; filename=\"client-{}.json\"", data.client.id)))
        .json(export))
}

/// List a client's counselling log
#[utoipa::path(
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id"), PageParams),
    responses(
        (status = 200, description = "One page of consultations", body = ListOf<ConsultationDto>),
        (status = 410, description = GONE, body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[get("/clients/{id}/consultations")]
pub async fn list_client_consultations(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    page: PageParams,
) -> Result<HttpResponse, ApiError> {
    user.require(&LIST_CONSULTATIONS)?;
    let page = page.validate()?;
    let audit = audit_context(&user, &req);
    let result = clients::consultations(&state.db, &audit, &state.cursors, &user, id.into_inner(), &page).await?;
    Ok(list_response(result, |m| ConsultationDto::from(&m)))
}

/// Log a counselling session with a client
///
/// `counsellor` is the caller's `sub`. Accepts an `Idempotency-Key`.
#[utoipa::path(
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create safe")),
    request_body = ConsultationInput,
    responses(
        (status = 201, description = "Logged", body = ConsultationDto, headers(("Location" = String))),
        (status = 410, description = GONE, body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[post("/clients/{id}/consultations")]
pub async fn create_client_consultation(
    state: web::Data<AppState>,
    user: AuthUser,
    key: IdempotencyKey,
    req: HttpRequest,
    id: web::Path<Uuid>,
    body: JsonBody<ConsultationInput>,
) -> Result<HttpResponse, ApiError> {
    user.require(&CREATE_CONSULTATION)?;
    let fields = body.value.validate(false)?;
    let client_id = id.into_inner();
    let audit = audit_context(&user, &req);
    let response = idempotency::run(&state.db, &user, &key, ("POST", req.path(), &body.raw), async |txn| {
        let model = clients::add_consultation(txn, &audit, &user, client_id, &fields).await?;
        created(format!("/api/v1/clients/{client_id}/consultations/{}", model.id), &ConsultationDto::from(&model))
    })
    .await?;
    clients::audit_replay(&state.db, &audit, &response, Some(client_id)).await?;
    Ok(response)
}

/// Get one counselling entry of a client
#[utoipa::path(
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id"), ("consultation_id" = Uuid, Path, description = "Consultation id")),
    responses(
        (status = 200, description = "The consultation", body = ConsultationDto, headers(("ETag" = String))),
        (status = 410, description = GONE, body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[get("/clients/{id}/consultations/{consultation_id}")]
pub async fn get_client_consultation(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    user.require(&GET_CONSULTATION)?;
    let (client_id, id) = path.into_inner();
    let audit = audit_context(&user, &req);
    let model = clients::consultation(&state.db, &audit, &user, client_id, id).await?;
    Ok(ok_with_etag(model.version, &ConsultationDto::from(&model)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MatchParams {
    /// `measure` or `vacancy`; both when absent.
    #[param(pattern = "^(measure|vacancy)$")]
    pub kind: Option<String>,
    /// How many, 1–50 (default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 50)]
    pub limit: Option<String>,
}

/// Rank measures and vacancies for a client
///
/// Open measures with a free seat the client is eligible for (target groups,
/// age), and open vacancies whose education and language requirements the
/// client meets, best first, each with a `score` and its `reasons`. A job
/// centre may ask for its own clients. Audited as `client.matches`.
#[utoipa::path(
    tag = "clients",
    params(("id" = Uuid, Path, description = "Client id"), MatchParams),
    responses(
        (status = 200, description = "Ranked matches", body = ListOf<MatchDto>),
        (status = 410, description = GONE, body = ProblemDetails, content_type = "application/problem+json"),
    ),
)]
#[get("/clients/{id}/matches")]
pub async fn list_client_matches(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<Uuid>,
    query: web::Query<MatchParams>,
) -> Result<HttpResponse, ApiError> {
    user.require(&MATCHES)?;
    let _heavy = state.heavy.enter(&user)?;
    let q = query.into_inner();
    let (measures, vacancies) = match q.kind.as_deref().map(str::trim) {
        None | Some("") => (true, true),
        Some("measure") => (true, false),
        Some("vacancy") => (false, true),
        Some(_) => return Err(bad_param("kind", "must be measure or vacancy")),
    };
    let limit = match q.limit.as_deref().map(str::trim) {
        None | Some("") => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=50).contains(n))
            .ok_or_else(|| bad_param("limit", "must be between 1 and 50"))?,
    };
    let audit = audit_context(&user, &req);
    let found =
        crate::service::matching::for_client(&state.db, &audit, &user, id.into_inner(), measures, vacancies, limit)
            .await?;
    let items: Vec<MatchDto> = found.into_iter().map(MatchDto::from).collect();
    Ok(HttpResponse::Ok().json(ListOf { items, next_cursor: None }))
}

fn bad_param(field: &str, message: &str) -> ApiError {
    ApiError::bad_request("Invalid query parameters.").with_errors(vec![crate::error::FieldError::new(field, message)])
}

/// One ranked match.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MatchDto {
    /// `measure` or `vacancy`.
    pub kind: &'static str,
    pub id: Uuid,
    pub title: String,
    /// Higher is better (0–100).
    pub score: u32,
    pub reasons: Vec<crate::domain::matching::Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<super::measures::dto::MeasureDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vacancy: Option<super::employers::dto::VacancyDto>,
}

impl From<crate::service::matching::Match> for MatchDto {
    fn from(m: crate::service::matching::Match) -> Self {
        use crate::service::matching::Candidate;
        match m.candidate {
            Candidate::Measure(x) => Self {
                kind: "measure",
                id: x.id,
                title: x.title.clone(),
                score: m.score,
                reasons: m.reasons,
                measure: Some(super::measures::dto::MeasureDto::from(&x)),
                vacancy: None,
            },
            Candidate::Vacancy(x) => Self {
                kind: "vacancy",
                id: x.id,
                title: x.title.clone(),
                score: m.score,
                reasons: m.reasons,
                measure: None,
                vacancy: Some(super::employers::dto::VacancyDto::from(&x)),
            },
        }
    }
}
