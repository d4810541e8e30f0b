//! The FHIR R4 view of referrals: how a referral reads as a `Task` and a
//! `ServiceRequest` (the closed-loop referral pattern of the FHIR SDOH
//! Clinical Care / Gravity guide), the `CapabilityStatement`, search
//! `Bundle`s and `OperationOutcome`s. Pure: resources are built from rows,
//! no actix, no database; `routes::fhir` serves them.
//!
//! Only what the referral endpoint already shows every caller who may read
//! the referral goes in: ids, statuses, codes, timestamps, the organisations
//! involved. The client appears as `Patient/<id>` only; the referral's free
//! text (`note`, `reason_note`) is never put into a FHIR resource, so no
//! read here needs a personal-data audit event.
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{
    domain::codes::{CodeList, Outcome, ReasonCode, ReferralAction, ReferralStatus},
    entities::referral::Model,
    error::ApiError,
};

/// Where the FHIR view is served.
pub const BASE_PATH: &str = "/fhir/r4";
/// The media type of every FHIR answer (and of OperationOutcome errors).
pub const MEDIA_TYPE: &str = "application/fhir+json";
/// The FHIR version the view implements.
pub const FHIR_VERSION: &str = "4.0.1";

/// Ostwerk's own referral status code (`businessStatus`), exactly as the
/// referral API shows it.
pub const STATUS_SYSTEM: &str = "https://ostwerk.dev/fhir/CodeSystem/referral-status";
/// Ostwerk's reason codes (`statusReason` of rejected, cancelled, failed).
pub const REASON_SYSTEM: &str = "https://ostwerk.dev/fhir/CodeSystem/reason-code";
/// Ostwerk's outcome codes (`output` of a completed Task).
pub const OUTCOME_SYSTEM: &str = "https://ostwerk.dev/fhir/CodeSystem/outcome";
/// Whether a referral goes to a measure or a vacancy.
pub const TARGET_SYSTEM: &str = "https://ostwerk.dev/fhir/CodeSystem/referral-target";
/// The referring organisation's own referral number (`external_id`).
pub const EXTERNAL_ID_SYSTEM: &str = "https://ostwerk.dev/fhir/sid/referral-external-id";
/// Organisation identifiers: the referring org as the token names it.
pub const ORG_SYSTEM: &str = "https://ostwerk.dev/fhir/sid/org";
pub const PROVIDER_SYSTEM: &str = "https://ostwerk.dev/fhir/sid/provider";
pub const EMPLOYER_SYSTEM: &str = "https://ostwerk.dev/fhir/sid/employer";
pub const MEASURE_SYSTEM: &str = "https://ostwerk.dev/fhir/sid/measure";
pub const VACANCY_SYSTEM: &str = "https://ostwerk.dev/fhir/sid/vacancy";
/// The problem types of the referral API, as `OperationOutcome` detail codes.
pub const PROBLEM_SYSTEM: &str = "https://ostwerk.dev/problems";

/// Every FHIR R4 `Task.status` code (value set `task-status`).
pub const TASK_STATUSES: &[&str] = &[
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
];

/// The one mapping table of referral statuses to FHIR `Task.status`
/// (documented in docs/API-DESIGN.md and the OpenAPI description).
/// `expired` has no Task status of its own: it is `failed` with
/// `statusReason` `expired`; `businessStatus` always carries our code.
pub fn task_status(status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::Requested => "requested",
        ReferralStatus::OnHold => "on-hold",
        ReferralStatus::Accepted => "accepted",
        ReferralStatus::InProgress => "in-progress",
        ReferralStatus::Rejected => "rejected",
        ReferralStatus::Cancelled => "cancelled",
        ReferralStatus::Completed => "completed",
        ReferralStatus::Failed | ReferralStatus::Expired => "failed",
    }
}

/// The referral statuses a `Task.status` search value stands for (empty
/// for a valid Task status no referral ever has, e.g. `draft`); `None` for
/// a code that is no Task status.
pub fn referral_statuses(task_status: &str) -> Option<Vec<ReferralStatus>> {
    if !TASK_STATUSES.contains(&task_status) {
        return None;
    }
    Some(ReferralStatus::ALL.iter().copied().filter(|s| self::task_status(*s) == task_status).collect())
}

/// A code that is no FHIR `Task.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownTaskStatus;

/// The referral action that moves a Task to `task_status`: `Ok(None)` for a
/// Task status that no action reaches (`draft`, `requested`, `received`,
/// `ready`, `entered-in-error`), `Err` for a code that is no Task status.
pub fn action_to(task_status: &str) -> Result<Option<ReferralAction>, UnknownTaskStatus> {
    Ok(match task_status {
        "accepted" => Some(ReferralAction::Accept),
        "on-hold" => Some(ReferralAction::Waitlist),
        "rejected" => Some(ReferralAction::Reject),
        "in-progress" => Some(ReferralAction::Start),
        "completed" => Some(ReferralAction::Complete),
        "failed" => Some(ReferralAction::Fail),
        "cancelled" => Some(ReferralAction::Cancel),
        s if TASK_STATUSES.contains(&s) => None,
        _ => return Err(UnknownTaskStatus),
    })
}

/// `ServiceRequest.status` of a referral: the request is `active` while the
/// referral is open, `on-hold` while waitlisted, `completed` when the Task
/// completed, and `revoked` once it ended any other way.
pub fn service_request_status(status: ReferralStatus) -> &'static str {
    match status {
        ReferralStatus::Requested | ReferralStatus::Accepted | ReferralStatus::InProgress => "active",
        ReferralStatus::OnHold => "on-hold",
        ReferralStatus::Completed => "completed",
        ReferralStatus::Rejected | ReferralStatus::Cancelled | ReferralStatus::Failed | ReferralStatus::Expired => {
            "revoked"
        }
    }
}

/// A FHIR `instant` (UTC, microseconds).
pub fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The weak ETag FHIR uses for a version: `W/"3"`.
pub fn etag(version: i32) -> String {
    format!("W/\"{version}\"")
}

/// What a referral points at, read from its measure or vacancy (public
/// catalogue data: no personal data).
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: TargetKind,
    pub id: Uuid,
    /// The measure's provider or the vacancy's employer (absent if the record is gone).
    pub owner: Option<Uuid>,
    /// The measure's or vacancy's kind and title.
    pub category: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Measure,
    Vacancy,
}

impl TargetKind {
    fn code(self) -> &'static str {
        match self {
            TargetKind::Measure => "measure",
            TargetKind::Vacancy => "vacancy",
        }
    }
}

impl Target {
    /// The referral's target without its record (ids only).
    pub fn of(referral: &Model) -> Option<Self> {
        let (kind, id) = match (referral.measure_id, referral.vacancy_id) {
            (Some(id), _) => (TargetKind::Measure, id),
            (None, Some(id)) => (TargetKind::Vacancy, id),
            _ => return None,
        };
        Some(Self { kind, id, owner: None, category: None, title: None })
    }

    /// `Organization` reference to the provider or employer that owns the Task.
    fn owner_reference(&self) -> Option<Value> {
        let owner = self.owner?;
        let system = match self.kind {
            TargetKind::Measure => PROVIDER_SYSTEM,
            TargetKind::Vacancy => EMPLOYER_SYSTEM,
        };
        Some(json!({
            "reference": format!("Organization/{owner}"),
            "type": "Organization",
            "identifier": {"system": system, "value": owner.to_string()}
        }))
    }

    /// The measure (a `HealthcareService` in FHIR terms) or vacancy, as a
    /// logical reference by identifier.
    fn service_reference(&self) -> Value {
        let mut reference = Map::new();
        match self.kind {
            TargetKind::Measure => {
                reference.insert("type".into(), json!("HealthcareService"));
                reference.insert("identifier".into(), json!({"system": MEASURE_SYSTEM, "value": self.id.to_string()}));
            }
            TargetKind::Vacancy => {
                reference.insert("identifier".into(), json!({"system": VACANCY_SYSTEM, "value": self.id.to_string()}));
            }
        }
        if let Some(title) = &self.title {
            reference.insert("display".into(), json!(title));
        }
        Value::Object(reference)
    }
}

fn meta(referral: &Model) -> Value {
    json!({"versionId": referral.version.to_string(), "lastUpdated": instant(referral.updated_at)})
}

fn identifiers(referral: &Model) -> Option<Value> {
    let external = referral.external_id.as_ref()?;
    Some(json!([{
        "use": "usual",
        "system": EXTERNAL_ID_SYSTEM,
        "value": external,
        "assigner": {"identifier": {"system": ORG_SYSTEM, "value": referral.referring_org}}
    }]))
}

fn requester(referral: &Model) -> Value {
    json!({
        "type": "Organization",
        "identifier": {"system": ORG_SYSTEM, "value": referral.referring_org},
        "display": referral.referring_org
    })
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn status_of(referral: &Model) -> Result<ReferralStatus, ApiError> {
    ReferralStatus::parse(&referral.status)
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("referral {} has an unknown status", referral.id)))
}

/// The referral as a FHIR `Task`.
pub fn task(referral: &Model, target: Option<&Target>) -> Result<Value, ApiError> {
    let status = status_of(referral)?;
    let mut task = Map::new();
    task.insert("resourceType".into(), json!("Task"));
    task.insert("id".into(), json!(referral.id.to_string()));
    task.insert("meta".into(), meta(referral));
    if let Some(ids) = identifiers(referral) {
        task.insert("identifier".into(), ids);
    }
    task.insert("basedOn".into(), json!([{"reference": format!("ServiceRequest/{}", referral.id)}]));
    task.insert("status".into(), json!(task_status(status)));
    if status == ReferralStatus::Expired {
        task.insert(
            "statusReason".into(),
            coding(STATUS_SYSTEM, "expired", "Expired: no answer within the expiry period"),
        );
    } else if let Some(reason) = referral.reason_code.as_deref().and_then(ReasonCode::parse) {
        task.insert("statusReason".into(), coding(REASON_SYSTEM, reason.as_str(), reason.label_en()));
    }
    task.insert("businessStatus".into(), coding(STATUS_SYSTEM, status.as_str(), status.label_en()));
    task.insert("intent".into(), json!("order"));
    task.insert(
        "code".into(),
        json!({"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill",
            "display": "Fulfill the focal request"}]}),
    );
    task.insert("focus".into(), json!({"reference": format!("ServiceRequest/{}", referral.id)}));
    task.insert("for".into(), json!({"reference": format!("Patient/{}", referral.client_id)}));
    task.insert("authoredOn".into(), json!(instant(referral.created_at)));
    task.insert("lastModified".into(), json!(instant(referral.updated_at)));
    task.insert("requester".into(), requester(referral));
    if let Some(owner) = target.and_then(Target::owner_reference) {
        task.insert("owner".into(), owner);
    }
    let mut output = Vec::new();
    if let Some(outcome) = referral.outcome.as_deref().and_then(Outcome::parse) {
        output.push(json!({
            "type": {"text": "outcome"},
            "valueCodeableConcept": coding(OUTCOME_SYSTEM, outcome.as_str(), outcome.label_en())
        }));
    }
    if let Some(on) = referral.outcome_on {
        output.push(json!({"type": {"text": "outcome_on"}, "valueDate": on.format("%Y-%m-%d").to_string()}));
    }
    if !output.is_empty() {
        task.insert("output".into(), Value::Array(output));
    }
    Ok(Value::Object(task))
}

/// The referral's request as a FHIR `ServiceRequest`.
pub fn service_request(referral: &Model, target: Option<&Target>) -> Result<Value, ApiError> {
    let status = status_of(referral)?;
    let mut request = Map::new();
    request.insert("resourceType".into(), json!("ServiceRequest"));
    request.insert("id".into(), json!(referral.id.to_string()));
    request.insert("meta".into(), meta(referral));
    if let Some(ids) = identifiers(referral) {
        request.insert("identifier".into(), ids);
    }
    request.insert("status".into(), json!(service_request_status(status)));
    request.insert("intent".into(), json!("order"));
    if let Some(target) = target {
        let label = match target.kind {
            TargetKind::Measure => "Referral to a measure",
            TargetKind::Vacancy => "Referral to a vacancy",
        };
        request.insert("category".into(), json!([coding(TARGET_SYSTEM, target.kind.code(), label)]));
        if let Some(kind) = &target.category {
            let system = match target.kind {
                TargetKind::Measure => "https://ostwerk.dev/fhir/CodeSystem/measure-kind",
                TargetKind::Vacancy => "https://ostwerk.dev/fhir/CodeSystem/vacancy-kind",
            };
            let mut code = json!({"coding": [{"system": system, "code": kind}]});
            if let Some(title) = &target.title {
                code["text"] = json!(title);
            }
            request.insert("code".into(), code);
        }
        let mut performers = vec![target.service_reference()];
        performers.extend(target.owner_reference());
        request.insert("performer".into(), Value::Array(performers));
    }
    request.insert("subject".into(), json!({"reference": format!("Patient/{}", referral.client_id)}));
    request.insert("authoredOn".into(), json!(instant(referral.created_at)));
    request.insert("requester".into(), requester(referral));
    Ok(Value::Object(request))
}

/// A `searchset` Bundle of `resources` (each with its `fullUrl`), with
/// `self` and, when there are more, `next` links.
pub fn searchset(base_url: &str, self_url: &str, next_url: Option<&str>, resources: Vec<Value>) -> Value {
    let mut links = vec![json!({"relation": "self", "url": self_url})];
    if let Some(next) = next_url {
        links.push(json!({"relation": "next", "url": next}));
    }
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|resource| {
            let full_url = format!(
                "{base_url}/{}/{}",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": full_url, "resource": resource, "search": {"mode": "match"}})
        })
        .collect();
    let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "link": links});
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// The `CapabilityStatement` served at `/fhir/r4/metadata`.
pub fn capability_statement() -> Value {
    let read = json!({"code": "read"});
    json!({
        "resourceType": "CapabilityStatement",
        "id": "ostwerk",
        "name": "OstwerkReferrals",
        "title": "Ostwerk FHIR R4 view of referrals",
        "status": "active",
        "date": "2026-12-02",
        "publisher": "Ostwerk",
        "description": "Referrals of the Ostwerk API as FHIR Task + ServiceRequest (closed-loop referral). \
            Same bearer tokens, roles and visibility as /api/v1/referrals.",
        "kind": "instance",
        "software": {"name": "Ostwerk", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Ostwerk FHIR R4 view of referrals"},
        "fhirVersion": FHIR_VERSION,
        "format": [MEDIA_TYPE, "json"],
        "patchFormat": ["application/json-patch+json", "application/merge-patch+json"],
        "rest": [{
            "mode": "server",
            "documentation": "Errors are OperationOutcome resources with the HTTP status of the referral API.",
            "security": {
                "service": [{"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "OAuth",
                    "display": "OAuth"
                }]}],
                "description": "Authorization: Bearer <JWT> with the roles of the Ostwerk API \
                    (admin, caseworker, jobcenter, provider, employer)."
            },
            "resource": [
                {
                    "type": "Task",
                    "interaction": [read, {"code": "search-type"}, {"code": "patch"}],
                    "versioning": "versioned-update",
                    "readHistory": false,
                    "updateCreate": false,
                    "conditionalRead": "not-supported",
                    "searchParam": [
                        {"name": "status", "type": "token",
                         "documentation": "Task status codes, comma-separated (OR); failed includes expired referrals."},
                        {"name": "_lastUpdated", "type": "date",
                         "documentation": "Only the prefix gt: changed after this instant."},
                        {"name": "_count", "type": "number", "documentation": "Page size, 1-200 (default 50)."}
                    ]
                },
                {"type": "ServiceRequest", "interaction": [read], "versioning": "versioned", "readHistory": false}
            ]
        }]
    })
}

/// FHIR `issue-type` for an HTTP status.
fn issue_code(status: u16) -> &'static str {
    match status {
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 | 415 => "not-supported",
        409 | 412 => "conflict",
        410 => "deleted",
        413 | 414 | 431 => "too-long",
        422 => "processing",
        429 => "throttled",
        503 => "transient",
        s if s >= 500 => "exception",
        _ => "invalid",
    }
}

/// An error of the referral API as a FHIR `OperationOutcome`: one issue for
/// the problem (its problem type as the detail code, its `detail` and the
/// request id as diagnostics), one more per invalid field.
pub fn operation_outcome(err: &ApiError, request_id: &str, german: bool) -> Value {
    let status = err.problem.status().as_u16();
    let title = if german { err.problem.title_de() } else { err.problem.title_en() };
    let mut diagnostics = format!("{} (request {request_id})", err.detail);
    for (key, value) in &err.extensions {
        diagnostics.push_str(&format!("; {key}: {value}"));
    }
    let mut issues = vec![json!({
        "severity": if status >= 500 { "fatal" } else { "error" },
        "code": issue_code(status),
        "details": {"coding": [{"system": PROBLEM_SYSTEM, "code": err.problem.slug(), "display": title}], "text": title},
        "diagnostics": diagnostics
    })];
    for field in &err.errors {
        let mut issue = json!({"severity": "error", "code": "invalid", "diagnostics": field.message});
        if !field.field.is_empty() {
            issue["expression"] = json!([field.field]);
        }
        issues.push(issue);
    }
    json!({"resourceType": "OperationOutcome", "issue": issues})
}

/// Whether a request path belongs to the FHIR view (its errors are
/// OperationOutcomes, not problem details).
pub fn is_fhir_path(path: &str) -> bool {
    path == BASE_PATH || path.starts_with("/fhir/")
}

/// A referral row for examples and unit tests.
pub fn sample_referral() -> Model {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default();
    Model {
        id: Uuid::from_u128(0x0193_a000_0000_7000_8000_0000_0000_0301),
        client_id: Uuid::from_u128(0x0193_a000_0000_7000_8000_0000_0000_c001),
        measure_id: Some(Uuid::from_u128(0x0193_a000_0000_7000_8000_0000_0000_0201)),
        vacancy_id: None,
        external_id: Some("JC-2026-000123".into()),
        referring_org: "jobcenter-leipzig".into(),
        referred_by: "jc-system".into(),
        note: None,
        status: ReferralStatus::Accepted.as_str().into(),
        reason_code: None,
        reason_note: None,
        rejected_by: None,
        outcome: None,
        outcome_on: None,
        created_at: at("2026-05-04T09:30:00Z"),
        updated_at: at("2026-05-05T14:02:11.123456Z"),
        version: 2,
        key_factor: i64::from(crate::domain::cell_key::key_factor(0x0193_a000_0000_7000_8000_0000_0000_0301)),
    }
}

/// The target of [`sample_referral`].
pub fn sample_target() -> Target {
    Target {
        kind: TargetKind::Measure,
        id: Uuid::from_u128(0x0193_a000_0000_7000_8000_0000_0000_0201),
        owner: Some(Uuid::from_u128(0x0193_a000_0000_7000_8000_0000_0000_0101)),
        category: Some("application_training".into()),
        title: Some("Bewerbungswerkstatt Leipzig-Ost".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{FieldError, Problem};

    #[test]
    fn every_referral_status_maps_to_a_task_status_and_back() {
        for status in ReferralStatus::ALL {
            let task = task_status(*status);
            assert!(TASK_STATUSES.contains(&task), "{status}");
            assert!(referral_statuses(task).is_some_and(|s| s.contains(status)), "{status}");
        }
        assert_eq!(referral_statuses("failed"), Some(vec![ReferralStatus::Failed, ReferralStatus::Expired]));
        assert_eq!(referral_statuses("draft"), Some(vec![]));
        assert_eq!(referral_statuses("in_progress"), None);
    }

    #[test]
    fn each_action_reaches_the_task_status_it_is_named_for() {
        for task in TASK_STATUSES {
            if let Ok(Some(action)) = action_to(task) {
                let reached = ReferralStatus::ALL.iter().filter_map(|s| s.after(action)).next();
                assert_eq!(reached.map(task_status), Some(*task), "{action}");
            }
        }
        assert_eq!(action_to("requested"), Ok(None));
        assert_eq!(action_to("done"), Err(UnknownTaskStatus));
    }

    #[test]
    fn an_expired_referral_is_a_failed_task_with_its_reason_and_exact_business_status() {
        let mut referral = sample_referral();
        referral.status = "expired".into();
        let task = task(&referral, None).unwrap();
        assert_eq!(task["status"], "failed");
        assert_eq!(task["statusReason"]["coding"][0]["code"], "expired");
        assert_eq!(task["businessStatus"]["coding"][0]["code"], "expired");
        assert_eq!(task["meta"]["versionId"], "2");
    }

    #[test]
    fn an_error_becomes_an_operation_outcome_with_one_issue_per_field() {
        let err = ApiError::validation(vec![FieldError::new("statusReason", "is required to reject")]);
        let outcome = operation_outcome(&err, "req-1", false);
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"][0]["code"], "processing");
        assert_eq!(outcome["issue"][0]["details"]["coding"][0]["code"], "validation-failed");
        assert_eq!(outcome["issue"][1]["expression"][0], "statusReason");
        let gone = operation_outcome(&ApiError::new(Problem::NotFound, "Referral not found"), "r", false);
        assert_eq!(gone["issue"][0]["code"], "not-found");
    }
}
