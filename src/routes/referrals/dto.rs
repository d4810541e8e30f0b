//! Wire shapes of referrals, transitions, events and batches.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    domain::{
        codes::{CodeList, Outcome, ReasonCode, ReferralAction, ReferralStatus},
        validate::Checker,
    },
    entities::{referral::Model, referral_event},
    error::{ApiError, FieldError, ProblemDetails},
    repository::clients::ClientSummary,
    service::referrals::{ReferralRequest, TransitionRequest},
};

/// A referral as pushed by a job centre or caseworker: exactly one of
/// `measure_id` and `vacancy_id`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "client_id": "0193a000-0000-7000-8000-00000000c001",
    "measure_id": "0193a000-0000-7000-8000-0000000a0001",
    "external_id": "JC-REF-2026-000123",
    "note": "Hat Interesse an einer Umschulung im Lager."
}))]
pub struct ReferralInput {
    /// Required.
    #[schema(value_type = Uuid, required = true, max_length = 36)]
    pub client_id: Option<String>,
    #[schema(value_type = Option<Uuid>, max_length = 36)]
    pub measure_id: Option<String>,
    #[schema(value_type = Option<Uuid>, max_length = 36)]
    pub vacancy_id: Option<String>,
    /// The referring organisation's own number; unique per organisation.
    #[schema(max_length = 100)]
    pub external_id: Option<String>,
    #[schema(max_length = 10000)]
    pub note: Option<String>,
}

fn uuid_field(c: &mut Checker, field: &str, value: Option<&str>) -> Option<Uuid> {
    c.uuid(field, value)
}

impl ReferralInput {
    /// Where the input breaks its declared schema (formats, `required`,
    /// `maxLength`), as opposed to rules only the data can check.
    pub fn schema_violations(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let not_uuid = |v: &str| v.len() != 36 || Uuid::try_parse(v).is_err();
        match self.client_id.as_deref() {
            None => errors.push(FieldError::new("client_id", "is required")),
            Some(v) if not_uuid(v) => errors.push(FieldError::new("client_id", "must be a UUID")),
            Some(_) => {}
        }
        for (field, value) in [("measure_id", &self.measure_id), ("vacancy_id", &self.vacancy_id)] {
            if value.as_deref().is_some_and(not_uuid) {
                errors.push(FieldError::new(field, "must be a UUID"));
            }
        }
        for (field, value, max) in [("external_id", &self.external_id, 100), ("note", &self.note, 10_000)] {
            if value.as_deref().is_some_and(|v| v.chars().count() > max) {
                errors.push(FieldError::new(field, format!("must be at most {max} characters")));
            }
        }
        errors
    }

    pub fn validate(self) -> Result<ReferralRequest, ApiError> {
        let mut c = Checker::new();
        let client_id =
            c.required("client_id", self.client_id.as_deref()).and_then(|v| uuid_field(&mut c, "client_id", Some(v)));
        let measure_id = uuid_field(&mut c, "measure_id", self.measure_id.as_deref());
        let vacancy_id = uuid_field(&mut c, "vacancy_id", self.vacancy_id.as_deref());
        if self.measure_id.is_some() == self.vacancy_id.is_some() {
            let field = if self.measure_id.is_some() { "vacancy_id" } else { "measure_id" };
            c.add(field, "exactly one of measure_id and vacancy_id must be given");
        }
        let external_id = c.opt_text("external_id", self.external_id.as_deref(), 100);
        let note = c.opt_text("note", self.note.as_deref(), 10_000);
        c.finish()?;
        Ok(ReferralRequest { client_id: client_id.unwrap_or_default(), measure_id, vacancy_id, external_id, note })
    }
}

/// An action on a referral.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"action": "reject", "reason_code": "no_capacity", "reason_note": "Kurs ist voll.", "rejected_by": "provider"}))]
pub struct TransitionInput {
    /// Required.
    #[schema(value_type = ReferralAction, required = true)]
    pub action: Option<String>,
    /// Required for `reject`, `cancel` and `fail`.
    #[schema(value_type = Option<ReasonCode>)]
    pub reason_code: Option<String>,
    #[schema(max_length = 10000)]
    pub reason_note: Option<String>,
    /// Required for `reject`: `provider` or `client`.
    #[schema(max_length = 8, pattern = "^(provider|client)$")]
    pub rejected_by: Option<String>,
    /// Required for `complete`.
    #[schema(value_type = Option<Outcome>)]
    pub outcome: Option<String>,
    /// Only with `complete`.
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub outcome_on: Option<String>,
}

impl TransitionInput {
    pub fn validate(self) -> Result<TransitionRequest, ApiError> {
        let mut c = Checker::new();
        let action = c.required("action", self.action.as_deref()).and_then(|a| c.code::<ReferralAction>("action", a));
        let reason_code = c.opt_code::<ReasonCode>("reason_code", self.reason_code.as_deref());
        let reason_note = c.opt_text("reason_note", self.reason_note.as_deref(), 10_000);
        let rejected_by = c.opt_text("rejected_by", self.rejected_by.as_deref(), 8);
        let outcome = c.opt_code::<Outcome>("outcome", self.outcome.as_deref());
        let outcome_on = c.date("outcome_on", self.outcome_on.as_deref());
        c.finish()?;
        match action {
            Some(action) => {
                Ok(TransitionRequest { action, reason_code, reason_note, rejected_by, outcome, outcome_on })
            }
            None => Err(ApiError::internal(anyhow::anyhow!("validated transition lacks its action"))),
        }
    }
}

/// The client of a referral as providers and employers see it: name and
/// contact only with the client's consent (`share_with_providers`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralClientDto {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl From<&ClientSummary> for ReferralClientDto {
    fn from(s: &ClientSummary) -> Self {
        let shared = s.shared.clone();
        Self {
            id: s.id,
            first_name: shared.as_ref().and_then(|c| c.first_name.clone()),
            last_name: shared.as_ref().and_then(|c| c.last_name.clone()),
            email: shared.as_ref().and_then(|c| c.email.clone()),
            phone: shared.and_then(|c| c.phone),
        }
    }
}

/// A referral as read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralDto {
    pub id: Uuid,
    pub client_id: Uuid,
    pub measure_id: Option<Uuid>,
    pub vacancy_id: Option<Uuid>,
    pub external_id: Option<String>,
    /// The referring organisation (`office` for the office's own staff).
    pub referring_org: String,
    /// Free text about the client: `null` for a provider or employer when
    /// the client did not consent to sharing (`consent.share_with_providers`).
    /// Every answer that shows it is audited.
    pub note: Option<String>,
    pub status: ReferralStatus,
    pub reason_code: Option<ReasonCode>,
    /// Free text, shown under the same rule as `note`.
    pub reason_note: Option<String>,
    /// `provider` or `client`, for rejected referrals.
    pub rejected_by: Option<String>,
    pub outcome: Option<Outcome>,
    pub outcome_on: Option<NaiveDate>,
    /// For providers and employers only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ReferralClientDto>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl ReferralDto {
    pub fn new(m: &Model, client: Option<&ClientSummary>) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            measure_id: m.measure_id,
            vacancy_id: m.vacancy_id,
            external_id: m.external_id.clone(),
            referring_org: m.referring_org.clone(),
            note: m.note.clone(),
            status: ReferralStatus::parse(&m.status).unwrap_or(ReferralStatus::Requested),
            reason_code: m.reason_code.as_deref().and_then(ReasonCode::parse),
            reason_note: m.reason_note.clone(),
            rejected_by: m.rejected_by.clone(),
            outcome: m.outcome.as_deref().and_then(Outcome::parse),
            outcome_on: m.outcome_on,
            client: client.map(ReferralClientDto::from),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

impl ReferralDto {
    /// Drops what people wrote about the client (`note`, `reason_note`), for
    /// readers who may not see it (SPEC §3: no free text without consent).
    pub fn withhold_free_text(&mut self) {
        self.note = None;
        self.reason_note = None;
    }

    pub fn shows_free_text(&self) -> bool {
        self.note.is_some() || self.reason_note.is_some()
    }
}

/// One entry of a referral's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralEventDto {
    pub id: Uuid,
    pub referral_id: Uuid,
    /// `null` for the creation.
    pub from_status: Option<ReferralStatus>,
    pub to_status: ReferralStatus,
    /// `create`, an action of `referral_actions`, or `expire`.
    pub action: String,
    pub reason_code: Option<ReasonCode>,
    /// Free text: `null` for a provider or employer when the client did not
    /// consent to sharing; every answer that shows it is audited.
    pub reason_note: Option<String>,
    /// The `sub` of whoever acted (`ostwerk` for expiry).
    pub actor: String,
    pub actor_org: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<&referral_event::Model> for ReferralEventDto {
    fn from(m: &referral_event::Model) -> Self {
        Self {
            id: m.id,
            referral_id: m.referral_id,
            from_status: m.from_status.as_deref().and_then(ReferralStatus::parse),
            to_status: ReferralStatus::parse(&m.to_status).unwrap_or(ReferralStatus::Requested),
            action: m.action.clone(),
            reason_code: m.reason_code.as_deref().and_then(ReasonCode::parse),
            reason_note: m.reason_note.clone(),
            actor: m.actor.clone(),
            actor_org: m.actor_org.clone(),
            at: m.at,
        }
    }
}

/// A referral together with its history (in the client export).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralWithEvents {
    #[serde(flatten)]
    pub referral: ReferralDto,
    pub events: Vec<ReferralEventDto>,
}

/// Filters of `GET /referrals`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReferralQuery {
    /// A code of `referral_statuses`.
    #[param(value_type = Option<ReferralStatus>)]
    pub status: Option<String>,
    pub client_id: Option<Uuid>,
    pub measure_id: Option<Uuid>,
    pub vacancy_id: Option<Uuid>,
    /// Referrals into the measures of this provider.
    pub provider_id: Option<Uuid>,
    /// Referrals to the vacancies of this employer.
    pub employer_id: Option<Uuid>,
    #[param(min_length = 1)]
    pub external_id: Option<String>,
    /// Created strictly after this instant, a timestamp with an offset: RFC 3339 or ISO 8601 (`Z`, `+00:00` or `+0000`; fractions of a second allowed; without an offset `400`).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_after: Option<String>,
    /// Changed strictly after this instant, a timestamp with an offset: RFC 3339 or ISO 8601 (`Z`, `+00:00` or `+0000`; fractions of a second allowed; without an offset `400`) — for polling; combine with `sort=updated_at`.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub updated_after: Option<String>,
}

/// `POST /referrals/batch`: up to 500 referrals.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchInput {
    /// 1–500 referrals, each shaped like the body of `POST /referrals`.
    #[schema(value_type = Vec<ReferralInput>, min_items = 1, max_items = 500)]
    pub items: Vec<serde_json::Value>,
}

/// The result of one batch item, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// Position in `items`, from 0.
    pub index: usize,
    /// The status the single `POST /referrals` would have answered.
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<ReferralDto>,
    /// Why the item failed (absent on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::error::ProblemDetails>, nullable = false)]
    pub problem: Option<serde_json::Value>,
}

/// `207 Multi-Status`: one result per item.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchResult>,
}

/// Documentation only: a problem inside a batch result.
pub type BatchProblem = ProblemDetails;
