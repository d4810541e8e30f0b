//! The one error type of the HTTP layer and the one table of problem types.
//!
//! Every failure a caller can see is an [`ApiError`] carrying a [`Problem`]
//! kind. The kind fixes the status, the stable `type` URI and the title (in
//! English and German); the error adds a `detail`, field errors and a few
//! named extension members. The body is rendered by the request middleware
//! (`http::request_context`), because only there are the request id (for
//! `instance`) and `Accept-Language` (for the title) known —
//! `ResponseError::error_response` has no access to the request.
use std::fmt;

use actix_web::{HttpResponse, ResponseError, http::StatusCode, http::header};
use sea_orm::DbErr;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://ostwerk.dev/problems/";

macro_rules! problems {
    ($( $(#[$doc:meta])* $variant:ident = ($status:literal, $slug:literal, $en:literal, $de:literal); )+) => {
        /// Every kind of problem the API answers with. The slug is part of the
        /// public contract (`https://ostwerk.dev/problems/<slug>`): never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Problem { $( $(#[$doc])* $variant, )+ }

        impl Problem {
            pub const ALL: &'static [Problem] = &[$(Problem::$variant),+];
            pub fn status(self) -> StatusCode {
                match self { $(Problem::$variant => match StatusCode::from_u16($status) {
                    Ok(s) => s,
                    Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
                },)+ }
            }
            pub fn slug(self) -> &'static str { match self { $(Problem::$variant => $slug,)+ } }
            pub fn title_en(self) -> &'static str { match self { $(Problem::$variant => $en,)+ } }
            pub fn title_de(self) -> &'static str { match self { $(Problem::$variant => $de,)+ } }
        }
    };
}

problems! {
    /// Malformed JSON, wrong JSON types, unknown fields, bad path or query parameters.
    BadRequest = (400, "bad-request", "Bad request", "Ungültige Anfrage");
    /// A list cursor that this service did not issue, or that was altered.
    InvalidCursor = (400, "invalid-cursor", "Invalid cursor", "Ungültiger Cursor");
    /// Missing, malformed, expired or wrongly signed bearer token.
    Unauthorized = (401, "unauthorized", "Authentication required", "Anmeldung erforderlich");
    /// The caller's roles do not allow this kind of operation at all.
    Forbidden = (403, "forbidden", "Forbidden", "Keine Berechtigung");
    /// Not found, or not visible to this caller.
    NotFound = (404, "not-found", "Not found", "Nicht gefunden");
    /// The path exists, the method does not (`Allow` lists the methods that do).
    MethodNotAllowed = (405, "method-not-allowed", "Method not allowed", "Methode nicht erlaubt");
    /// Conflict with the current state of the resource.
    Conflict = (409, "conflict", "Conflict", "Konflikt");
    /// The resource is still referenced by others and cannot be deleted.
    InUse = (409, "in-use", "Resource in use", "Datensatz wird noch verwendet");
    /// Another record of this organisation already carries that `external_id`.
    DuplicateExternalId = (409, "duplicate-external-id", "Duplicate external id", "Externe Kennung bereits vergeben");
    /// The action is not allowed from the referral's current status (`current_status`, `allowed_actions`).
    InvalidTransition = (409, "invalid-transition", "Invalid status transition", "Unzulässiger Statuswechsel");
    /// No free seat in the measure (or position in the vacancy); waitlist instead.
    CapacityExhausted = (409, "capacity-exhausted", "Capacity exhausted", "Keine freien Plätze");
    /// A measure's capacity cannot go below its seats taken (`seats_taken`); cancel or fail referrals first.
    CapacityBelowSeatsTaken = (409, "capacity-below-seats-taken", "Capacity below seats taken", "Kapazität unter belegten Plätzen");
    /// The client already has an active referral to this measure or vacancy (`existing_id`).
    DuplicateReferral = (409, "duplicate-referral", "Duplicate active referral", "Bereits aktive Zuweisung");
    /// The measure or vacancy is closed.
    TargetClosed = (409, "target-closed", "Measure or vacancy closed", "Maßnahme oder Stelle geschlossen");
    /// The organisation already holds `OSTWERK_WEBHOOK_MAX_PER_ORG` webhook subscriptions.
    WebhookLimitReached = (409, "webhook-limit-reached", "Too many webhook subscriptions", "Zu viele Webhook-Abonnements");
    /// The same Idempotency-Key is still being processed.
    IdempotencyInProgress = (409, "idempotency-key-in-use", "Request with this Idempotency-Key is still in progress", "Anfrage mit diesem Idempotency-Key läuft noch");
    /// The client's personal data was erased (GDPR Art. 17).
    Gone = (410, "gone", "Gone", "Gelöscht");
    /// `If-Match` does not match the current version.
    PreconditionFailed = (412, "precondition-failed", "Precondition failed", "Vorbedingung nicht erfüllt");
    /// The request body did not arrive in full within `OSTWERK_BODY_TIMEOUT_SECS`.
    RequestTimeout = (408, "request-timeout", "Request timeout", "Zeitüberschreitung der Anfrage");
    /// Request body larger than 1 MiB.
    PayloadTooLarge = (413, "payload-too-large", "Payload too large", "Anfrage zu groß");
    /// The request target (path and query) is longer than the service accepts.
    UriTooLong = (414, "uri-too-long", "URI too long", "URI zu lang");
    /// Request body is not `application/json`.
    UnsupportedMediaType = (415, "unsupported-media-type", "Unsupported media type", "Nicht unterstützter Medientyp");
    /// Well-formed, but some values are invalid (`errors` names each field).
    ValidationFailed = (422, "validation-failed", "Validation failed", "Ungültige Angaben");
    /// The Idempotency-Key was used before with a different request.
    IdempotencyKeyReused = (422, "idempotency-key-reused", "Idempotency-Key reused with a different request", "Idempotency-Key mit anderer Anfrage wiederverwendet");
    /// The client does not fit the measure (`errors` lists the reasons).
    NotEligible = (422, "not-eligible", "Client not eligible", "Keine Teilnahmevoraussetzungen");
    /// Too many requests from this principal.
    RateLimited = (429, "rate-limited", "Too many requests", "Zu viele Anfragen");
    /// A request header, or all of them together, is larger than the service accepts.
    HeaderFieldsTooLarge = (431, "request-header-fields-too-large", "Request header fields too large", "Anfragekopf zu groß");
    /// An unexpected error; details are in the server log under the request id.
    Internal = (500, "internal", "Internal server error", "Interner Fehler");
    /// The database is unreachable or the service is busy (no free connection, a lock wait or statement timed out); retry after the given seconds.
    ServiceUnavailable = (503, "service-unavailable", "Service unavailable", "Dienst nicht verfügbar");
}

impl Problem {
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_BASE}{}", self.slug())
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `contact.email`; empty for the body as a whole.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// RFC 9457 problem details as sent on the wire (documentation schema).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDetails {
    /// Stable URI of the problem kind, e.g. `https://ostwerk.dev/problems/validation-failed`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary of the kind; German when `Accept-Language` prefers `de`.
    pub title: String,
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// `urn:ostwerk:request:<request id>` — quote it when reporting a problem.
    pub instance: String,
    /// The request id (also in the `X-Request-Id` header).
    pub request_id: String,
    /// Field errors for `400` and `422`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    // The extension members below are every name `with_extension` sends
    // (a test greps the source for them), so generated clients can read them.
    /// `409 duplicate-referral`, `duplicate-external-id` and duplicate
    /// `measure_number`: the record that already exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub existing_id: Option<uuid::Uuid>,
    /// `409 invalid-transition`: the referral's status now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::codes::ReferralStatus>, nullable = false)]
    pub current_status: Option<String>,
    /// `409 invalid-transition`: the actions allowed from `current_status`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::domain::codes::ReferralAction>>, nullable = false)]
    pub allowed_actions: Option<Vec<String>>,
    /// `412`: the resource's current `ETag`, to read again and retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub current_etag: Option<String>,
    /// `409 webhook-limit-reached`: subscriptions an organisation may hold.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub limit: Option<u64>,
    /// `409 capacity-below-seats-taken`: the measure's seats taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub seats_taken: Option<i64>,
}

/// An error answered to the caller as `application/problem+json`.
#[derive(Debug)]
pub struct ApiError {
    pub problem: Problem,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Extension members (for example `existing_id`, `current_status`).
    pub extensions: Map<String, Value>,
    pub retry_after: Option<u64>,
    pub allow: Option<String>,
    /// Cause kept for the log only, never sent.
    pub source: Option<anyhow::Error>,
}

impl ApiError {
    pub fn new(problem: Problem, detail: impl Into<String>) -> Self {
        Self {
            problem,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: Map::new(),
            retry_after: None,
            allow: None,
            source: None,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(Problem::BadRequest, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(Problem::Unauthorized, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(Problem::Forbidden, detail)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(Problem::NotFound, format!("{what} not found"))
    }
    pub fn conflict(problem: Problem, detail: impl Into<String>) -> Self {
        Self::new(problem, detail)
    }
    /// `412`: the record changed between reading it and writing it.
    pub fn stale(what: &str) -> Self {
        Self::new(Problem::PreconditionFailed, format!("The {what} was changed concurrently; read it again and retry."))
    }
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("1 field is invalid: {}", errors[0].field),
            n => format!("{n} fields are invalid"),
        };
        Self { errors, ..Self::new(Problem::ValidationFailed, detail) }
    }
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(Problem::Internal, "An unexpected error occurred; it has been logged under the request id.")
        }
    }
    pub fn unavailable(source: impl Into<anyhow::Error>) -> Self {
        Self {
            source: Some(source.into()),
            retry_after: Some(5),
            ..Self::new(Problem::ServiceUnavailable, "The database is unreachable; please retry shortly.")
        }
    }
    /// `503` for load, not an outage: the pool had no free connection in
    /// time, or a lock wait / statement hit its timeout.
    pub fn busy(source: impl Into<anyhow::Error>) -> Self {
        Self {
            source: Some(source.into()),
            retry_after: Some(2),
            ..Self::new(Problem::ServiceUnavailable, "The service is busy; please retry shortly.")
        }
    }
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }
    pub fn with_extension(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The JSON body; `instance` and the title's language come from the request.
    pub fn body(&self, request_id: &str, german: bool) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), self.problem.type_uri().into());
        let title = if german { self.problem.title_de() } else { self.problem.title_en() };
        body.insert("title".into(), title.into());
        body.insert("status".into(), self.problem.status().as_u16().into());
        body.insert("detail".into(), self.detail.clone().into());
        body.insert("instance".into(), format!("urn:ostwerk:request:{request_id}").into());
        body.insert("request_id".into(), request_id.into());
        if !self.errors.is_empty() {
            body.insert("errors".into(), serde_json::to_value(&self.errors).unwrap_or(Value::Null));
        }
        for (k, v) in &self.extensions {
            body.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(body)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem.slug(), self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " (cause: {})", cause_chain(source))?;
        }
        Ok(())
    }
}

/// Carried in the response extensions so the middleware can render the body.
#[derive(Debug, Clone)]
pub struct PendingProblem(pub std::sync::Arc<ApiError>);

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.problem.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        builder.content_type("application/problem+json");
        if self.problem == Problem::Unauthorized {
            builder.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"ostwerk\""));
        }
        if let Some(seconds) = self.retry_after {
            builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(allow) = &self.allow {
            builder.insert_header((header::ALLOW, allow.clone()));
        }
        if self.problem == Problem::RequestTimeout {
            // The rest of a stalled body is not waited for.
            builder.force_close();
        }
        // The body is rendered by the middleware; this copy is the fallback
        // when a response escapes it (it lacks only the request id).
        let body = self.body("unknown", false).to_string();
        let mut response = builder.body(body);
        response.extensions_mut().insert(PendingProblem(std::sync::Arc::new(ApiError {
            problem: self.problem,
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            extensions: self.extensions.clone(),
            retry_after: self.retry_after,
            allow: self.allow.clone(),
            source: None,
        })));
        response
    }
}

/// Database errors: connection trouble is a `503`, anything else a logged `500`.
/// Constraint violations are translated by the repositories, which know which
/// constraint means what (see `repository::constraint`).
impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        if let Some(cause) = crate::db::busy_cause(&err) {
            crate::http::metrics::record_db_busy(cause);
            ApiError::busy(err)
        } else if crate::db::is_unavailable(&err) {
            ApiError::unavailable(err)
        } else if crate::repository::audit::is_write_failure(&err) {
            ApiError {
                detail: "The audit log cannot be written right now, so nothing is answered; please retry shortly."
                    .into(),
                ..ApiError::unavailable(err)
            }
        } else if crate::repository::is_capacity_violation(&err) {
            // The database's last line of defence held where a service-level
            // guard did not: still a conflict the caller can act on, not a 500.
            ApiError::new(Problem::CapacityExhausted, "The measure's seats taken would exceed its capacity.")
        } else {
            ApiError::internal(err)
        }
    }
}

/// An error and its causes as one line, `a: b: c`, each cause once:
/// sea-orm and sqlx wrap errors whose `Display` already includes their
/// source, so `{:#}` would print the same text two or three times.
pub fn cause_chain(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    crate::config::redact(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_printed_once_and_credentials_never() {
        let err = anyhow::anyhow!("connection refused")
            .context("Connection Error: connection refused")
            .context("cannot open the database postgres://u:secret@h/db");
        assert_eq!(
            cause_chain(&err),
            "cannot open the database postgres://u:***@h/db: Connection Error: connection refused"
        );
    }

    #[test]
    fn every_problem_slug_is_unique_and_status_is_an_error() {
        let mut slugs: Vec<_> = Problem::ALL.iter().map(|p| p.slug()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), Problem::ALL.len());
        assert!(Problem::ALL.iter().all(|p| p.status().as_u16() >= 400));
    }

    #[test]
    fn body_carries_request_id_errors_and_extensions_but_never_the_cause() {
        let err = ApiError::internal(anyhow::anyhow!("SELECT secret FROM x"));
        let body = err.body("req-1", false);
        assert_eq!(body["instance"], "urn:ostwerk:request:req-1");
        assert!(!body.to_string().contains("SELECT"));

        let err = ApiError::validation(vec![FieldError::new("name", "must not be empty")])
            .with_extension("existing_id", "abc");
        let body = err.body("r", true);
        assert_eq!(body["errors"][0]["field"], "name");
        assert_eq!(body["existing_id"], "abc");
        assert_eq!(body["title"], "Ungültige Angaben");
        assert_eq!(body["status"], 422);
    }
}
