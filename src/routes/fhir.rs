//! `/fhir/r4`: the FHIR R4 view of referrals (`Task`, `ServiceRequest`,
//! `metadata`). The same tokens, roles and visibility as `/api/v1/referrals`
//! — every read goes through `service::referrals` and its `ReferralScope`,
//! and a Task's status changes through `service::referrals::transition`,
//! the same function `POST /referrals/{id}/transitions` calls, so history,
//! capacity, webhooks and outbox all happen. Errors are rendered as
//! `OperationOutcome` by the request middleware (`fhir::is_fhir_path`).
use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, http::header, patch, web};
use sea_orm::{ConnectionTrait, TransactionTrait};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::{
    auth::{Access, AuthUser, Role::*},
    domain::{
        codes::{CodeList, Outcome, ReasonCode, ReferralAction},
        validate::Checker,
    },
    entities::referral::Model,
    error::{ApiError, FieldError, Problem},
    fhir::{self, Target, TargetKind},
    http::IfMatch,
    repository::{
        self,
        referrals::{ReferralFilter, ReferralOrder},
    },
    service::referrals::{self, ListRequest, TransitionRequest},
    startup::AppState,
};

const ROLES: &[crate::auth::Role] = &[Admin, Caseworker, Jobcenter, Provider, Employer];
pub const READ_TASK: Access = Access::new("get_fhir_task", ROLES);
pub const SEARCH_TASKS: Access = Access::new("search_fhir_tasks", ROLES);
pub const PATCH_TASK: Access = Access::new("patch_fhir_task", ROLES);
pub const READ_SERVICE_REQUEST: Access = Access::new("get_fhir_service_request", ROLES);
pub const ACCESS: &[&Access] = &[&READ_TASK, &SEARCH_TASKS, &PATCH_TASK, &READ_SERVICE_REQUEST];

/// Default and largest `_count`.
const DEFAULT_COUNT: u64 = 50;
const MAX_COUNT: u64 = 200;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_fhir_metadata)
        .service(search_fhir_tasks)
        .service(get_fhir_task)
        .service(patch_fhir_task)
        .service(get_fhir_service_request);
}

// ---------------------------------------------------------------------------
// Documentation schemas: FHIR resources are described by the FHIR
// specification, not re-declared here; each schema names its resource type
// and carries an example built by the same code that serves it.
// ---------------------------------------------------------------------------

/// A FHIR R4 `Task` (<https://hl7.org/fhir/R4/task.html>): the referral's
/// lifecycle. `status` follows the mapping table of the tag description;
/// `businessStatus` carries the referral status exactly; `meta.versionId`
/// is the referral's `version`.
#[derive(Serialize, ToSchema)]
#[schema(example = task_example)]
pub struct FhirTask {
    /// Always `Task`.
    #[serde(rename = "resourceType")]
    #[schema(pattern = "^Task$")]
    pub resource_type: String,
}

/// A FHIR R4 `ServiceRequest` (<https://hl7.org/fhir/R4/servicerequest.html>):
/// what was requested — the client (`subject`, by id only), the measure or
/// vacancy and its provider or employer (`performer`), when and by whom.
#[derive(Serialize, ToSchema)]
#[schema(example = service_request_example)]
pub struct FhirServiceRequest {
    /// Always `ServiceRequest`.
    #[serde(rename = "resourceType")]
    #[schema(pattern = "^ServiceRequest$")]
    pub resource_type: String,
}

/// A FHIR R4 `Bundle` of type `searchset` (<https://hl7.org/fhir/R4/bundle.html>)
/// holding Tasks; follow the `next` link to the end.
#[derive(Serialize, ToSchema)]
#[schema(example = bundle_example)]
pub struct FhirBundle {
    /// Always `Bundle`.
    #[serde(rename = "resourceType")]
    #[schema(pattern = "^Bundle$")]
    pub resource_type: String,
}

/// The FHIR R4 `CapabilityStatement` of this server (<https://hl7.org/fhir/R4/capabilitystatement.html>).
#[derive(Serialize, ToSchema)]
#[schema(example = fhir::capability_statement)]
pub struct FhirCapabilityStatement {
    /// Always `CapabilityStatement`.
    #[serde(rename = "resourceType")]
    #[schema(pattern = "^CapabilityStatement$")]
    pub resource_type: String,
}

/// A FHIR R4 `OperationOutcome` (<https://hl7.org/fhir/R4/operationoutcome.html>):
/// every error of the FHIR view. The first issue's `details.coding` names
/// the problem type of the referral API (`https://ostwerk.dev/problems`);
/// `diagnostics` says what went wrong and quotes the request id; further
/// issues name invalid fields in `expression`.
#[derive(Serialize, ToSchema)]
#[schema(example = outcome_example)]
pub struct FhirOperationOutcome {
    /// Always `OperationOutcome`.
    #[serde(rename = "resourceType")]
    #[schema(pattern = "^OperationOutcome$")]
    pub resource_type: String,
}

/// The status change of a Task, as a JSON Patch (RFC 6902) or a merge
/// patch: `status` (required), and `statusReason` (required to reject,
/// cancel or fail: a coding of `https://ostwerk.dev/fhir/CodeSystem/reason-code`)
/// or `output` (optional when completing: a `valueCodeableConcept` coding of
/// `https://ostwerk.dev/fhir/CodeSystem/outcome`; `unknown` if absent).
#[derive(Serialize, ToSchema)]
#[schema(example = merge_patch_example)]
pub struct FhirTaskStatusPatch {
    /// The new FHIR Task status (see the mapping table).
    #[schema(example = "rejected", max_length = 16)]
    pub status: String,
    /// A CodeableConcept with the reason code.
    #[serde(rename = "statusReason")]
    #[schema(value_type = Option<Object>)]
    pub status_reason: Option<Value>,
    /// Task outputs; the one with an outcome coding is read.
    #[schema(value_type = Option<Vec<Object>>, max_items = 10)]
    pub output: Option<Vec<Value>>,
}

fn task_example() -> Value {
    fhir::task(&fhir::sample_referral(), Some(&fhir::sample_target())).unwrap_or_default()
}

fn service_request_example() -> Value {
    fhir::service_request(&fhir::sample_referral(), Some(&fhir::sample_target())).unwrap_or_default()
}

fn bundle_example() -> Value {
    let base = "https://ostwerk.example/fhir/r4";
    fhir::searchset(
        base,
        &format!("{base}/Task?status=accepted&_count=1"),
        Some(&format!("{base}/Task?status=accepted&_count=1&_cursor=eyJvIjoidXBkYXRlZF9hdCJ9.c2lnbmF0dXJl")),
        vec![task_example()],
    )
}

fn outcome_example() -> Value {
    fhir::operation_outcome(
        &ApiError::new(Problem::NotFound, "Referral not found"),
        "0193a000-0000-7000-8000-00000000beef",
        false,
    )
}

fn merge_patch_example() -> Value {
    serde_json::json!({
        "status": "rejected",
        "statusReason": {"coding": [{"system": fhir::REASON_SYSTEM, "code": "no_capacity"}]}
    })
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `200` with a FHIR resource and, for versioned resources, `ETag: W/"n"`
/// and `Last-Modified`.
fn fhir_ok(resource: &Value, version: Option<i32>) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    res.content_type(fhir::MEDIA_TYPE);
    if let Some(version) = version {
        res.insert_header((header::ETAG, fhir::etag(version)));
    }
    res.body(resource.to_string())
}

/// `https://host/fhir/r4`, as the caller reached us.
fn base_url(req: &HttpRequest) -> String {
    let info = req.connection_info();
    format!("{}://{}{}", info.scheme(), info.host(), fhir::BASE_PATH)
}

/// A FHIR id is any string; ours are UUIDs, so anything else names nothing.
fn referral_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found("Referral"))
}

/// The referral's measure or vacancy with its owner, for `owner` and `performer`.
async fn target_of(db: &impl ConnectionTrait, referral: &Model) -> Result<Option<Target>, ApiError> {
    let Some(mut target) = Target::of(referral) else { return Ok(None) };
    match target.kind {
        TargetKind::Measure => {
            if let Some(m) = repository::measures::find(db, target.id).await? {
                target.owner = Some(m.provider_id);
                target.category = Some(m.kind);
                target.title = Some(m.title);
            }
        }
        TargetKind::Vacancy => {
            if let Some(v) = repository::vacancies::find(db, target.id).await? {
                target.owner = Some(v.employer_id);
                target.category = Some(v.kind);
                target.title = Some(v.title);
            }
        }
    }
    Ok(Some(target))
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

/// FHIR CapabilityStatement
///
/// What this FHIR server offers: `Task` (read, search, patch) and
/// `ServiceRequest` (read), FHIR 4.0.1, JSON only. Public, like any FHIR
/// server's `metadata`.
#[utoipa::path(
    tag = "fhir",
    responses((status = 200, description = "The CapabilityStatement", body = FhirCapabilityStatement,
        content_type = "application/fhir+json")),
    security(()),
)]
#[get("/metadata")]
pub async fn get_fhir_metadata() -> HttpResponse {
    fhir_ok(&fhir::capability_statement(), None)
}

/// Read a referral as a FHIR Task
///
/// The referral with id `{id}` as a `Task` (`ETag: W/"<version>"`). Other
/// organisations' referrals are `404`, as in the referral API.
#[utoipa::path(
    tag = "fhir",
    params(("id" = String, Path, description = "Referral id (a UUID)")),
    responses((status = 200, description = "The Task", body = FhirTask, content_type = "application/fhir+json",
        headers(("ETag" = String, description = "Weak ETag of the version, `W/\"3\"`")))),
)]
#[get("/Task/{id}")]
pub async fn get_fhir_task(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(&READ_TASK)?;
    let model = referrals::get(&state.db, &user, referral_id(&id)?).await?;
    let target = target_of(&state.db, &model).await?;
    Ok(fhir_ok(&fhir::task(&model, target.as_ref())?, Some(model.version)))
}

/// Read a referral as a FHIR ServiceRequest
///
/// The request behind the Task with the same id: the client as
/// `Patient/<id>` (no personal data), the measure or vacancy and its
/// provider or employer as `performer`, `authoredOn`, the referring
/// organisation as `requester`.
#[utoipa::path(
    tag = "fhir",
    params(("id" = String, Path, description = "Referral id (a UUID)")),
    responses((status = 200, description = "The ServiceRequest", body = FhirServiceRequest,
        content_type = "application/fhir+json",
        headers(("ETag" = String, description = "Weak ETag of the version, `W/\"3\"`")))),
)]
#[get("/ServiceRequest/{id}")]
pub async fn get_fhir_service_request(
    state: web::Data<AppState>,
    user: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    user.require(&READ_SERVICE_REQUEST)?;
    let model = referrals::get(&state.db, &user, referral_id(&id)?).await?;
    let target = target_of(&state.db, &model).await?;
    Ok(fhir_ok(&fhir::service_request(&model, target.as_ref())?, Some(model.version)))
}

/// The parameters of a Task search, parsed from the query string.
struct TaskSearch {
    statuses: Option<Vec<String>>,
    updated_after: Option<chrono::DateTime<chrono::Utc>>,
    count: u64,
    cursor: Option<String>,
    /// The query without `_cursor` and `_count`, sorted: what a cursor is bound to.
    scope: String,
    /// The query without `_cursor`, as the `next` link repeats it.
    kept: Vec<(String, String)>,
}

/// Every Task status code once, comma-separated, with room to spare.
const MAX_STATUS_LEN: usize = 100;
/// `gt` and an RFC 3339 instant (at most 40 characters, as everywhere).
const MAX_LAST_UPDATED_LEN: usize = 42;
/// A `next` link's cursor is well under this.
const MAX_CURSOR_LEN: usize = 512;

fn invalid_parameter(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request("Invalid search parameters.").with_errors(vec![FieldError::new(field, message)])
}

fn parse_search(query: &str) -> Result<TaskSearch, ApiError> {
    let mut search = TaskSearch {
        statuses: None,
        updated_after: None,
        count: DEFAULT_COUNT,
        cursor: None,
        scope: String::new(),
        kept: vec![],
    };
    let mut scope: Vec<(String, String)> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let (name, value) = (name.into_owned(), value.into_owned());
        if value.is_empty() {
            return Err(invalid_parameter(&name, "must not be empty"));
        }
        // The bounds the OpenAPI document declares (`maxLength`).
        let max = match name.as_str() {
            "status" => MAX_STATUS_LEN,
            "_lastUpdated" => MAX_LAST_UPDATED_LEN,
            "_cursor" => MAX_CURSOR_LEN,
            _ => usize::MAX,
        };
        if value.chars().count() > max {
            return Err(invalid_parameter(&name, format!("must be at most {max} characters")));
        }
        match name.as_str() {
            "status" => {
                let mut wanted = search.statuses.take().unwrap_or_default();
                for code in value.split(',') {
                    let statuses = fhir::referral_statuses(code).ok_or_else(|| {
                        invalid_parameter(
                            "status",
                            format!("must be Task status codes: {}", fhir::TASK_STATUSES.join(", ")),
                        )
                    })?;
                    wanted.extend(statuses.iter().map(|s| s.as_str().to_owned()));
                }
                search.statuses = Some(wanted);
            }
            "_lastUpdated" => {
                let Some(at) = value.strip_prefix("gt") else {
                    return Err(invalid_parameter("_lastUpdated", "only the prefix gt is supported: gt<instant>"));
                };
                let mut c = Checker::new();
                let parsed = c.timestamp("_lastUpdated", Some(at));
                c.finish().map_err(|e| ApiError::bad_request("Invalid search parameters.").with_errors(e.errors))?;
                if search.updated_after.is_some() {
                    return Err(invalid_parameter("_lastUpdated", "may be given once"));
                }
                search.updated_after = parsed;
            }
            "_count" => {
                search.count =
                    value.parse::<u64>().ok().filter(|n| (1..=MAX_COUNT).contains(n)).ok_or_else(|| {
                        invalid_parameter("_count", format!("must be an integer from 1 to {MAX_COUNT}"))
                    })?;
            }
            "_cursor" => search.cursor = Some(value.clone()),
            other => {
                return Err(invalid_parameter(
                    other,
                    "is not a supported search parameter (status, _lastUpdated, _count)",
                ));
            }
        }
        if name != "_cursor" {
            if name != "_count" {
                scope.push((name.clone(), value.clone()));
            }
            search.kept.push((name, value));
        }
    }
    scope.sort();
    search.scope =
        format!("fhir/Task?{}", url::form_urlencoded::Serializer::new(String::new()).extend_pairs(scope).finish());
    Ok(search)
}

/// Search Tasks
///
/// A `searchset` Bundle of the Tasks the caller may see, oldest change
/// first (`lastModified`, then id), paged by `_count` (1–200, default 50)
/// with a `next` link. `status` takes Task status codes, comma-separated
/// (`failed` includes expired referrals); `_lastUpdated=gt<instant>` gives
/// only Tasks changed after that instant — the way to poll.
#[utoipa::path(
    tag = "fhir",
    params(
        ("status" = Option<String>, Query, max_length = 100, description = "Task status codes, comma-separated (OR)"),
        ("_lastUpdated" = Option<String>, Query, max_length = 42, description = "`gt` and an instant, e.g. `gt2026-05-04T09:30:00Z`"),
        ("_count" = Option<u64>, Query, description = "Page size, 1–200 (default 50)", minimum = 1, maximum = 200),
        ("_cursor" = Option<String>, Query, max_length = 512, description = "Set by the `next` link; never build it yourself"),
    ),
    responses((status = 200, description = "A searchset Bundle of Tasks", body = FhirBundle,
        content_type = "application/fhir+json")),
)]
#[get("/Task")]
pub async fn search_fhir_tasks(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    user.require(&SEARCH_TASKS)?;
    let search = parse_search(req.query_string())?;
    let filter = ReferralFilter {
        status_in: search.statuses.clone(),
        updated_after: search.updated_after,
        ..Default::default()
    };
    let list = ListRequest {
        order: ReferralOrder::UpdatedAt,
        cursor: search.cursor.clone(),
        limit: search.count,
        scope: search.scope.clone(),
    };
    let page = referrals::list(&state.db, &state.cursors, &user, &filter, &list).await?;
    let mut targets: HashMap<Uuid, Option<Target>> = HashMap::new();
    let mut tasks = Vec::with_capacity(page.items.len());
    for model in &page.items {
        let key = model.measure_id.or(model.vacancy_id).unwrap_or(model.id);
        let target = match targets.get(&key) {
            Some(known) => known.clone(),
            None => {
                let found = target_of(&state.db, model).await?;
                targets.insert(key, found.clone());
                found
            }
        };
        tasks.push(fhir::task(model, target.as_ref())?);
    }
    let base = base_url(&req);
    let link = |extra: Option<&str>| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.extend_pairs(&search.kept);
        if let Some(cursor) = extra {
            query.append_pair("_cursor", cursor);
        }
        let query = query.finish();
        if query.is_empty() { format!("{base}/Task") } else { format!("{base}/Task?{query}") }
    };
    let self_url = match &search.cursor {
        Some(cursor) => link(Some(cursor)),
        None => link(None),
    };
    let next_url = page.next_cursor.as_deref().map(|c| link(Some(c)));
    Ok(fhir_ok(&fhir::searchset(&base, &self_url, next_url.as_deref(), tasks), None))
}

/// The version an `If-Match` names: FHIR sends `W/"3"`; `"3"` is taken too.
fn fhir_if_match(req: &HttpRequest) -> Result<IfMatch, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else { return Ok(IfMatch::Absent) };
    let value = value.to_str().map_err(|_| ApiError::bad_request("If-Match is not ASCII."))?.trim();
    if value == "*" {
        return Ok(IfMatch::Any);
    }
    let version = value
        .trim_start_matches("W/")
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse::<i32>().ok())
        .ok_or_else(|| ApiError::bad_request("If-Match must be the ETag of a version, e.g. W/\"3\"."))?;
    Ok(IfMatch::Tags(vec![crate::http::etag(version)]))
}

/// The members a status patch may set, after either patch format.
#[derive(Default)]
struct StatusPatch {
    status: Option<Value>,
    status_reason: Option<Value>,
    output: Option<Value>,
}

impl StatusPatch {
    fn set(&mut self, member: &str, value: Value) -> Result<(), ApiError> {
        match member {
            "status" => self.status = Some(value),
            "statusReason" => self.status_reason = Some(value),
            "output" => self.output = Some(value),
            other => {
                return Err(ApiError::validation(vec![FieldError::new(
                    other,
                    "cannot be changed; a Task patch sets status, statusReason and output only",
                )]));
            }
        }
        Ok(())
    }
}

/// Reads a JSON Patch (an array of `add`/`replace` operations on
/// `/status`, `/statusReason`, `/output`, and `test` on `/meta/versionId`,
/// which acts as `If-Match`) or a merge patch (an object).
fn read_patch(body: &Value) -> Result<(StatusPatch, Option<i32>), ApiError> {
    let mut patch = StatusPatch::default();
    let mut tested = None;
    match body {
        Value::Array(ops) => {
            for (index, op) in ops.iter().enumerate() {
                let field = format!("[{index}]");
                let (Some(kind), Some(path)) = (op["op"].as_str(), op["path"].as_str()) else {
                    return Err(ApiError::bad_request("Each JSON Patch operation needs op and path.")
                        .with_errors(vec![FieldError::new(field, "needs op and path")]));
                };
                let value = op.get("value").cloned();
                match (kind, path, value) {
                    ("test", "/meta/versionId", Some(Value::String(v))) => {
                        tested = Some(v.parse::<i32>().map_err(|_| {
                            ApiError::validation(vec![FieldError::new(field, "versionId must be a version number")])
                        })?);
                    }
                    ("add" | "replace", path, Some(value)) if path.starts_with('/') && !path[1..].contains('/') => {
                        patch.set(&path[1..], value)?;
                    }
                    _ => {
                        return Err(ApiError::validation(vec![FieldError::new(
                            field,
                            "supported: add/replace of /status, /statusReason, /output with a value; test of /meta/versionId",
                        )]));
                    }
                }
            }
        }
        Value::Object(members) => {
            for (name, value) in members {
                match name.as_str() {
                    // A whole Task sent back with its identity is fine.
                    "resourceType" if value == "Task" => {}
                    "id" | "meta" => {}
                    _ => patch.set(name, value.clone())?,
                }
            }
        }
        _ => return Err(ApiError::bad_request("The body must be a JSON Patch array or a merge patch object.")),
    }
    Ok((patch, tested))
}

/// The code of the first coding in `concept` from `system` (or without a system).
fn code_in<'a>(concept: &'a Value, system: &str) -> Option<&'a str> {
    concept["coding"]
        .as_array()?
        .iter()
        .find(|c| c["system"].as_str().is_none_or(|s| s == system))
        .and_then(|c| c["code"].as_str())
}

/// The transition a status patch asks for.
fn transition_of(patch: &StatusPatch) -> Result<TransitionRequest, ApiError> {
    let invalid = |field: &str, message: String| ApiError::validation(vec![FieldError::new(field, message)]);
    let status = match &patch.status {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(invalid("status", "must be a Task status code".into())),
        None => return Err(invalid("status", "is required: the Task status to move to".into())),
    };
    let action = match fhir::action_to(status) {
        Ok(Some(action)) => action,
        Ok(None) => {
            return Err(ApiError::new(
                Problem::InvalidTransition,
                format!("No referral action leads to the Task status {status}."),
            ));
        }
        Err(fhir::UnknownTaskStatus) => {
            return Err(invalid("status", format!("must be one of: {}", fhir::TASK_STATUSES.join(", "))));
        }
    };
    let reason_code = match &patch.status_reason {
        None | Some(Value::Null) => None,
        Some(concept) => Some(code_in(concept, fhir::REASON_SYSTEM).and_then(ReasonCode::parse).ok_or_else(|| {
            invalid("statusReason", format!("needs a coding of {}: {}", fhir::REASON_SYSTEM, ReasonCode::expected()))
        })?),
    };
    if action.needs_reason() && reason_code.is_none() {
        return Err(invalid("statusReason", format!("is required to move to {status}")));
    }
    let outcome = match &patch.output {
        None | Some(Value::Null) => None,
        Some(Value::Array(outputs)) => outputs
            .iter()
            .find_map(|o| code_in(&o["valueCodeableConcept"], fhir::OUTCOME_SYSTEM))
            .map(|code| {
                Outcome::parse(code).ok_or_else(|| {
                    invalid("output", format!("outcome codings of {}: {}", fhir::OUTCOME_SYSTEM, Outcome::expected()))
                })
            })
            .transpose()?,
        Some(_) => return Err(invalid("output", "must be an array of Task outputs".into())),
    };
    let completing = action == ReferralAction::Complete;
    if outcome.is_some() && !completing {
        return Err(invalid("output", "applies only when completing".into()));
    }
    Ok(TransitionRequest {
        action,
        reason_code: if action.needs_reason() { reason_code } else { None },
        reason_note: None,
        // A status patch comes from the receiving side's system.
        rejected_by: (action == ReferralAction::Reject).then(|| "provider".to_owned()),
        outcome: if completing { Some(outcome.unwrap_or(Outcome::Unknown)) } else { None },
        outcome_on: None,
    })
}

/// Change a Task's status
///
/// Moves the referral through its status machine, exactly as
/// `POST /api/v1/referrals/{id}/transitions` does (history, capacity,
/// webhooks). The body is a JSON Patch (`application/json-patch+json`) or a
/// merge patch (`application/merge-patch+json`, `application/fhir+json`)
/// setting `status` (and `statusReason` to reject, cancel or fail; an
/// `output` outcome to complete). `If-Match: W/"<versionId>"` (or a JSON
/// Patch `test` of `/meta/versionId`) that is stale is a `412`; a status
/// the referral cannot move to is a `409`.
#[utoipa::path(
    tag = "fhir",
    params(
        ("id" = String, Path, description = "Referral id (a UUID)"),
        ("If-Match" = Option<String>, Header, description = "`W/\"<versionId>\"` of the version the change is based on"),
    ),
    request_body(content(
        (FhirTaskStatusPatch = "application/merge-patch+json"),
        (Vec<Object> = "application/json-patch+json", example = json!([
            {"op": "test", "path": "/meta/versionId", "value": "2"},
            {"op": "replace", "path": "/status", "value": "in-progress"}
        ])),
    )),
    responses(
        (status = 200, description = "The Task after the change", body = FhirTask, content_type = "application/fhir+json",
            headers(("ETag" = String, description = "Weak ETag of the new version"))),
        (status = 409, description = "Not allowed from the current status, or no free seat / position",
            body = FhirOperationOutcome, content_type = "application/fhir+json"),
    ),
)]
#[patch("/Task/{id}")]
pub async fn patch_fhir_task(
    state: web::Data<AppState>,
    user: AuthUser,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    user.require(&PATCH_TASK)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let json_patch = match content_type.as_str() {
        "application/json-patch+json" => true,
        "application/merge-patch+json" | "application/fhir+json" | "application/json" => false,
        _ => {
            return Err(ApiError::new(
                Problem::UnsupportedMediaType,
                "Send application/json-patch+json or application/merge-patch+json.",
            ));
        }
    };
    let value: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("The body is not JSON: {e}.")))?;
    if json_patch != value.is_array() {
        return Err(ApiError::bad_request(if json_patch {
            "A JSON Patch is an array of operations."
        } else {
            "A merge patch is a JSON object."
        }));
    }
    let (patch, tested) = read_patch(&value)?;
    let request = transition_of(&patch)?;
    let if_match = match (fhir_if_match(&req)?, tested) {
        (IfMatch::Absent, Some(version)) => IfMatch::Tags(vec![crate::http::etag(version)]),
        (if_match, _) => if_match,
    };
    if let (Some(version), IfMatch::Tags(tags)) = (tested, &if_match)
        && !tags.contains(&crate::http::etag(version))
    {
        return Err(ApiError::bad_request(
            "If-Match and the JSON Patch test of /meta/versionId name different versions.",
        ));
    }
    let id = referral_id(&id)?;
    let txn = state.db.begin().await?;
    let model = referrals::transition(&txn, &user, id, &if_match, &request).await?;
    txn.commit().await?;
    let target = target_of(&state.db, &model).await?;
    Ok(fhir_ok(&fhir::task(&model, target.as_ref())?, Some(model.version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_patch_and_a_merge_patch_ask_for_the_same_transition() {
        let json_patch = serde_json::json!([
            {"op": "replace", "path": "/status", "value": "cancelled"},
            {"op": "add", "path": "/statusReason", "value": {"coding": [{"system": fhir::REASON_SYSTEM, "code": "duplicate"}]}}
        ]);
        let merge = serde_json::json!({"status": "cancelled", "statusReason": {"coding": [{"code": "duplicate"}]}});
        for body in [json_patch, merge] {
            let (patch, _) = read_patch(&body).unwrap();
            let request = transition_of(&patch).unwrap();
            assert_eq!(request.action, ReferralAction::Cancel);
            assert_eq!(request.reason_code, Some(ReasonCode::Duplicate));
        }
    }

    #[test]
    fn completing_without_an_outcome_records_unknown_and_rejecting_needs_a_reason() {
        let (patch, _) = read_patch(&serde_json::json!({"status": "completed"})).unwrap();
        assert_eq!(transition_of(&patch).unwrap().outcome, Some(Outcome::Unknown));
        let (patch, _) = read_patch(&serde_json::json!({"status": "rejected"})).unwrap();
        assert_eq!(transition_of(&patch).err().map(|e| e.problem), Some(Problem::ValidationFailed));
    }

    #[test]
    fn search_parameters_bind_the_cursor_to_the_filters_but_not_the_page_size() {
        let a = parse_search("status=accepted&_count=5").unwrap();
        let b = parse_search("_count=7&status=accepted&_cursor=x").unwrap();
        assert_eq!(a.scope, b.scope);
        assert_eq!(
            parse_search("_lastUpdated=lt2026-01-01T00:00:00Z").err().map(|e| e.problem),
            Some(Problem::BadRequest)
        );
        assert!(parse_search("subject=Patient/1").is_err());
    }

    #[test]
    fn search_values_longer_than_declared_are_refused() {
        let statuses = ["accepted"; 12].join(",");
        assert!(statuses.len() > MAX_STATUS_LEN);
        assert!(parse_search(&format!("status={statuses}")).is_err());
        assert!(parse_search(&format!("status={}", ["accepted"; 10].join(","))).is_ok());
        assert!(parse_search(&format!("_lastUpdated=gt2026-01-01T00:00:00Z{}", "0".repeat(30))).is_err());
        assert!(parse_search(&format!("_cursor={}", "a".repeat(MAX_CURSOR_LEN + 1))).is_err());
    }
}
