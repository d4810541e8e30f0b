//! Wire shapes of clients, consultations and the export.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    domain::{
        clients::{ClientFields, Consent, ConsultationFields, MAX_AGE, MIN_AGE, Topic, age_on},
        codes::{ClientStatus, CodeList, ConsultationTopic, EducationLevel, EmployerConsultationTopic, TargetGroup},
        ids::now,
        timestamps,
        validate::Checker,
        values::Address,
    },
    entities::{audit_event, client::Model, consultation},
    error::ApiError,
    repository::{from_json, tags},
    routes::common::{KldbCode, LanguageCode},
};

/// Consent as written: `given_at` is an RFC 3339 timestamp.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    pub data_processing: Option<bool>,
    /// Whether providers and employers may see name and contact in referrals. Default `false`.
    pub share_with_providers: Option<bool>,
    /// When consent was given: a timestamp with an offset, RFC 3339 or ISO 8601
    /// (`Z`, `+00:00` or `+0000`; fractions of a second allowed; without an
    /// offset `422`). Read back in UTC.
    #[schema(value_type = Option<DateTime<Utc>>, max_length = 40)]
    pub given_at: Option<String>,
}

/// A client as written (`POST`, and the target of a merge patch).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "external_id": "JC-4711-0815",
    "first_name": "Mara",
    "last_name": "Beispiel",
    "date_of_birth": "1998-04-12",
    "email": "mara.beispiel@example.org",
    "phone": "+49 341 555 0101",
    "address": {"street": "Hermann-Liebmann-Straße 12", "postal_code": "04315", "city": "Leipzig"},
    "district": "21",
    "target_groups": ["unemployed", "single_parent"],
    "education_level": "vocational",
    "occupation_codes": ["62102"],
    "languages": ["de", "ar"],
    "available_from": "2026-12-01",
    "hours_per_week": 30,
    "consent": {"data_processing": true, "share_with_providers": true, "given_at": "2026-11-02T10:00:00Z"},
    "status": "active"
}))]
pub struct ClientInput {
    /// The creating organisation's own number (e.g. job-centre customer number); unique per organisation.
    #[schema(max_length = 100)]
    pub external_id: Option<String>,
    /// Required.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 100, pattern = "\\S")]
    pub first_name: Option<String>,
    /// Required.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 100, pattern = "\\S")]
    pub last_name: Option<String>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub date_of_birth: Option<String>,
    #[schema(
        max_length = 254,
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s.\\x00-\\x1f\\x7f-\\x9f]+(\\.[^@\\s.\\x00-\\x1f\\x7f-\\x9f]+)+$"
    )]
    pub email: Option<String>,
    #[schema(max_length = 30, pattern = "^[ +/()-]*([0-9][ +/()-]*){5,}$")]
    pub phone: Option<String>,
    pub address: Option<Address>,
    /// A code of `districts`.
    #[schema(max_length = 8)]
    pub district: Option<String>,
    #[schema(value_type = Option<Vec<TargetGroup>>, max_items = 10)]
    pub target_groups: Option<Vec<String>>,
    #[schema(value_type = Option<EducationLevel>)]
    pub education_level: Option<String>,
    /// KldB 2010 codes, five digits each.
    #[schema(value_type = Option<Vec<KldbCode>>, max_items = 50, example = json!(["29302"]))]
    pub occupation_codes: Option<Vec<String>>,
    /// ISO 639-1 codes.
    #[schema(value_type = Option<Vec<LanguageCode>>, max_items = 50, example = json!(["de", "uk"]))]
    pub languages: Option<Vec<String>>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub available_from: Option<String>,
    #[schema(minimum = 1, maximum = 60)]
    pub hours_per_week: Option<i64>,
    pub consent: Option<ConsentInput>,
    /// `active` (default) or `inactive`; `erased` only through `DELETE`.
    #[schema(value_type = Option<ClientStatus>)]
    pub status: Option<String>,
}

impl crate::routes::common::DistrictChecked for ClientInput {
    type Fields = ClientFields;

    fn validate(self, district_known: impl Fn(&str) -> bool) -> Result<ClientFields, ApiError> {
        let mut c = Checker::new();
        let first_name = c.required("first_name", self.first_name.as_deref()).map(|v| c.text("first_name", v, 100));
        let last_name = c.required("last_name", self.last_name.as_deref()).map(|v| c.text("last_name", v, 100));
        let external_id = c.opt_text("external_id", self.external_id.as_deref(), 100);
        let date_of_birth = c.date("date_of_birth", self.date_of_birth.as_deref());
        if let Some(born) = date_of_birth {
            let age = age_on(born, now().date_naive());
            if born > now().date_naive() {
                c.add("date_of_birth", "must be in the past");
            } else if !(MIN_AGE..=MAX_AGE).contains(&age) {
                c.add("date_of_birth", format!("must give an age between {MIN_AGE} and {MAX_AGE} years"));
            }
        }
        let email = c.email("email", self.email.as_deref());
        let phone = c.phone("phone", self.phone.as_deref());
        let address = self.address.and_then(|a| a.check(&mut c, "address"));
        let district = c.district("district", self.district.as_deref(), &district_known);
        let target_groups = c.codes::<TargetGroup>("target_groups", self.target_groups.as_deref().unwrap_or_default());
        let education_level = c.opt_code::<EducationLevel>("education_level", self.education_level.as_deref());
        let occupation_codes = c.kldb_list("occupation_codes", self.occupation_codes.as_deref().unwrap_or_default());
        let languages = c.languages("languages", self.languages.as_deref().unwrap_or_default());
        let available_from = c.date("available_from", self.available_from.as_deref());
        let hours_per_week = c.opt_int("hours_per_week", self.hours_per_week, 1, 60);
        let consent_in = self.consent.unwrap_or_default();
        c.max_chars("consent.given_at", consent_in.given_at.as_deref(), 40);
        let consent = Consent {
            data_processing: consent_in.data_processing.unwrap_or(false),
            share_with_providers: consent_in.share_with_providers.unwrap_or(false),
            given_at: c.timestamp("consent.given_at", consent_in.given_at.as_deref()),
        };
        let status = match self.status.as_deref() {
            None => Some(ClientStatus::Active),
            Some("erased") => {
                c.add("status", "a client is erased only through DELETE /api/v1/clients/{id}");
                None
            }
            Some(s) => c.code::<ClientStatus>("status", s),
        };
        c.finish()?;
        Ok(ClientFields {
            external_id,
            first_name: first_name.unwrap_or_default(),
            last_name: last_name.unwrap_or_default(),
            date_of_birth,
            email,
            phone,
            address,
            district,
            target_groups,
            education_level,
            occupation_codes,
            languages,
            available_from,
            hours_per_week,
            consent,
            status: status.unwrap_or(ClientStatus::Active),
        })
    }
}

/// A client as read. After erasure only the anonymous fields remain.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientDto {
    pub id: Uuid,
    pub external_id: Option<String>,
    /// The organisation that created the record (`office` for the office's staff).
    pub created_by_org: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(serialize_with = "timestamps::option_date")]
    pub date_of_birth: Option<NaiveDate>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub district: Option<String>,
    #[schema(value_type = Vec<TargetGroup>)]
    pub target_groups: Vec<String>,
    pub education_level: Option<EducationLevel>,
    pub occupation_codes: Vec<String>,
    pub languages: Vec<String>,
    #[serde(serialize_with = "timestamps::option_date")]
    pub available_from: Option<NaiveDate>,
    pub hours_per_week: Option<i32>,
    pub consent: Option<Consent>,
    pub status: ClientStatus,
    #[serde(serialize_with = "timestamps::datetime")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "timestamps::datetime")]
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<&Model> for ClientDto {
    fn from(m: &Model) -> Self {
        Self {
            id: m.id,
            external_id: m.external_id.clone(),
            created_by_org: m.created_by_org.clone(),
            first_name: m.first_name.clone(),
            last_name: m.last_name.clone(),
            date_of_birth: m.date_of_birth,
            email: m.email.clone(),
            phone: m.phone.clone(),
            address: from_json(&m.address),
            district: m.district.clone(),
            target_groups: tags::split(&m.target_groups),
            education_level: m.education_level.as_deref().and_then(EducationLevel::parse),
            occupation_codes: tags::split(&m.occupation_codes),
            languages: tags::split(&m.languages),
            available_from: m.available_from,
            hours_per_week: m.hours_per_week,
            consent: from_json(&m.consent),
            status: ClientStatus::parse(&m.status).unwrap_or(ClientStatus::Inactive),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

impl From<&Model> for ClientInput {
    fn from(m: &Model) -> Self {
        let d = ClientDto::from(m);
        let consent = d.consent.unwrap_or_default();
        Self {
            external_id: d.external_id,
            first_name: d.first_name,
            last_name: d.last_name,
            date_of_birth: d.date_of_birth.map(|x| x.to_string()),
            email: d.email,
            phone: d.phone,
            address: d.address,
            district: d.district,
            target_groups: Some(d.target_groups),
            education_level: d.education_level.map(|e| e.as_str().to_owned()),
            occupation_codes: Some(d.occupation_codes),
            languages: Some(d.languages),
            available_from: d.available_from.map(|x| x.to_string()),
            hours_per_week: d.hours_per_week.map(i64::from),
            consent: Some(ConsentInput {
                data_processing: Some(consent.data_processing),
                share_with_providers: Some(consent.share_with_providers),
                given_at: consent.given_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            }),
            status: Some(d.status.as_str().to_owned()),
        }
    }
}

/// Filters of `GET /clients`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClientQuery {
    /// The creating organisation's number (exact).
    #[param(min_length = 1)]
    pub external_id: Option<String>,
    #[param(min_length = 1)]
    pub district: Option<String>,
    /// A code of `target_groups`.
    #[param(value_type = Option<TargetGroup>)]
    pub target_group: Option<String>,
    /// `active`, `inactive` or `erased` (erased stubs are listed only when asked for).
    #[param(value_type = Option<ClientStatus>)]
    pub status: Option<String>,
    /// Part of the first or last name (case-insensitive; at most 200 characters, else `400`).
    #[param(min_length = 1, max_length = 200)]
    pub q: Option<String>,
}

/// A counselling entry as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"held_on": "2026-11-20", "topic": "application_support", "duration_minutes": 45,
    "notes": "Lebenslauf überarbeitet.", "follow_up_on": "2026-12-04"}))]
pub struct ConsultationInput {
    /// Required. Not in the future.
    #[schema(value_type = NaiveDate, required = true, max_length = 10)]
    pub held_on: Option<String>,
    /// Required. A code of `consultation_topics`.
    #[schema(value_type = ConsultationTopic, required = true)]
    pub topic: Option<String>,
    #[schema(minimum = 1, maximum = 600)]
    pub duration_minutes: Option<i64>,
    #[schema(max_length = 10000)]
    pub notes: Option<String>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub follow_up_on: Option<String>,
}

/// A counselling entry of an employer as written: `ConsultationInput` with
/// the employer topics. A type of its own so the OpenAPI document offers the
/// topics the endpoint accepts (the shared schema offered the client topics,
/// which the employer endpoint refuses with `422`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"held_on": "2026-11-20", "topic": "apprenticeship_training", "duration_minutes": 60,
    "notes": "Ausbildungsplatz Bäcker:in ab August besprochen.", "follow_up_on": "2026-12-04"}))]
pub struct EmployerConsultationInput {
    /// Required. Not in the future.
    #[schema(value_type = NaiveDate, required = true, max_length = 10)]
    pub held_on: Option<String>,
    /// Required. A code of `employer_consultation_topics`.
    #[schema(value_type = EmployerConsultationTopic, required = true)]
    pub topic: Option<String>,
    #[schema(minimum = 1, maximum = 600)]
    pub duration_minutes: Option<i64>,
    #[schema(max_length = 10000)]
    pub notes: Option<String>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub follow_up_on: Option<String>,
}

impl EmployerConsultationInput {
    pub fn validate(self) -> Result<ConsultationFields, ApiError> {
        let Self { held_on, topic, duration_minutes, notes, follow_up_on } = self;
        ConsultationInput { held_on, topic, duration_minutes, notes, follow_up_on }.validate(true)
    }
}

impl ConsultationInput {
    pub fn validate(self, for_employer: bool) -> Result<ConsultationFields, ApiError> {
        let mut c = Checker::new();
        let held_on = c.required("held_on", self.held_on.as_deref()).and_then(|v| c.date("held_on", Some(v)));
        if held_on.is_some_and(|d| d > now().date_naive()) {
            c.add("held_on", "must not be in the future");
        }
        let topic = c.required("topic", self.topic.as_deref()).and_then(|t| {
            if for_employer {
                c.code::<EmployerConsultationTopic>("topic", t).map(Topic::Employer)
            } else {
                c.code::<ConsultationTopic>("topic", t).map(Topic::Client)
            }
        });
        let duration_minutes = c.opt_int("duration_minutes", self.duration_minutes, 1, 600);
        let notes = c.opt_text("notes", self.notes.as_deref(), 10_000);
        let follow_up_on = c.date("follow_up_on", self.follow_up_on.as_deref());
        c.finish()?;
        match (held_on, topic) {
            (Some(held_on), Some(topic)) => {
                Ok(ConsultationFields { held_on, topic, duration_minutes, notes, follow_up_on })
            }
            _ => Err(ApiError::internal(anyhow::anyhow!("validated consultation lacks required fields"))),
        }
    }
}

/// A counselling entry as read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultationDto {
    pub id: Uuid,
    pub client_id: Option<Uuid>,
    pub employer_id: Option<Uuid>,
    pub held_on: NaiveDate,
    pub topic: String,
    pub duration_minutes: Option<i32>,
    /// `null` after the client's erasure.
    pub notes: Option<String>,
    pub follow_up_on: Option<NaiveDate>,
    /// The `sub` of the caseworker who logged it.
    pub counsellor: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<&consultation::Model> for ConsultationDto {
    fn from(m: &consultation::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            employer_id: m.employer_id,
            held_on: m.held_on,
            topic: m.topic.clone(),
            duration_minutes: m.duration_minutes,
            notes: m.notes.clone(),
            follow_up_on: m.follow_up_on,
            counsellor: m.counsellor.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

/// An entry of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventDto {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    /// The `sub` of the principal.
    pub actor: String,
    pub actor_org: Option<String>,
    /// e.g. `client.read`, `client.list`, `client.export`, `consultation.create`.
    pub action: String,
    pub resource: String,
    pub resource_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    /// Ostwerk's own id of the request (in its logs as `request_id`).
    pub request_id: String,
    /// The `X-Request-Id` the caller sent, when it sent one (1–128 visible
    /// ASCII characters; others are ignored).
    pub client_request_id: Option<String>,
}

impl From<&audit_event::Model> for AuditEventDto {
    fn from(m: &audit_event::Model) -> Self {
        Self {
            id: m.id,
            at: m.at,
            actor: m.actor.clone(),
            actor_org: m.actor_org.clone(),
            action: m.action.clone(),
            resource: m.resource.clone(),
            resource_id: m.resource_id,
            client_id: m.client_id,
            request_id: m.request_id.clone(),
            client_request_id: m.client_request_id.clone(),
        }
    }
}

/// Everything held about one client (GDPR Art. 15).
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientExport {
    pub exported_at: DateTime<Utc>,
    pub client: ClientDto,
    pub consultations: Vec<ConsultationDto>,
    /// Referrals of the client, each with its history.
    pub referrals: Vec<crate::routes::referrals::dto::ReferralWithEvents>,
    /// Funding applications the client made.
    pub funding_applications: Vec<crate::routes::funding::ApplicationDto>,
    /// Who read or changed the client's data, and when.
    pub audit_events: Vec<AuditEventDto>,
}
