//! Wire shapes of employers and vacancies.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    domain::{
        codes::{CodeList, EducationLevel, EmployerNeed, SettlementStatus, VacancyKind, VacancyStatus},
        employers::{EmployerFields, VacancyFields, is_wz_code},
        validate::Checker,
        values::{Address, Contact},
    },
    entities::{employer, vacancy},
    error::ApiError,
    repository::{from_json, tags},
    routes::common::LanguageCode,
};

/// An employer as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Bäckerei Sommer GmbH", "legal_form": "GmbH", "sector": "10.71",
    "address": {"street": "Eisenbahnstraße 120", "postal_code": "04315", "city": "Leipzig"},
    "district": "21", "employee_count": 12, "settlement_status": "established",
    "is_training_company": true, "needs": ["recruiting", "apprenticeship_training"],
    "contact": {"name": "Jana Sommer", "email": "jobs@baeckerei-sommer.example", "phone": "+49 341 555 0202"}
}))]
pub struct EmployerInput {
    /// Required.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 300, pattern = "\\S")]
    pub name: Option<String>,
    #[schema(max_length = 100)]
    pub legal_form: Option<String>,
    /// WZ 2008 code, e.g. `47.11`.
    #[schema(max_length = 10, pattern = "^([A-Z]|[0-9]{2}(\\.[0-9]{1,2}(\\.[0-9])?)?)$")]
    pub sector: Option<String>,
    pub address: Option<Address>,
    /// A code of `districts` (at most 8 characters).
    #[schema(max_length = 8)]
    pub district: Option<String>,
    #[schema(minimum = 0, maximum = 1000000)]
    pub employee_count: Option<i64>,
    /// Default `established`.
    #[schema(value_type = Option<SettlementStatus>)]
    pub settlement_status: Option<String>,
    pub is_training_company: Option<bool>,
    #[schema(value_type = Option<Vec<EmployerNeed>>, max_items = 6)]
    pub needs: Option<Vec<String>>,
    pub contact: Option<Contact>,
}

impl crate::routes::common::DistrictChecked for EmployerInput {
    type Fields = EmployerFields;

    fn validate(self, district_known: impl Fn(&str) -> bool) -> Result<EmployerFields, ApiError> {
        let mut c = Checker::new();
        let name = c.required("name", self.name.as_deref()).map(|v| c.text("name", v, 300));
        let legal_form = c.opt_text("legal_form", self.legal_form.as_deref(), 100);
        // Checked as sent, not trimmed: a blank or padded code breaks the
        // declared pattern, and used to be stored as `null` without a word.
        let sector = self.sector.clone();
        if sector.as_deref().is_some_and(|s| !is_wz_code(s)) {
            c.add("sector", "must be a WZ 2008 code such as 47.11");
        }
        let address = self.address.and_then(|a| a.check(&mut c, "address"));
        let district = c.district("district", self.district.as_deref(), &district_known);
        let employee_count = c.opt_int("employee_count", self.employee_count, 0, 1_000_000);
        let settlement_status = match self.settlement_status.as_deref() {
            None => Some(SettlementStatus::Established),
            Some(s) => c.code::<SettlementStatus>("settlement_status", s),
        };
        let needs = c.codes::<EmployerNeed>("needs", self.needs.as_deref().unwrap_or_default());
        let contact = self.contact.and_then(|a| a.check(&mut c, "contact"));
        c.finish()?;
        Ok(EmployerFields {
            name: name.unwrap_or_default(),
            legal_form,
            sector,
            address,
            district,
            employee_count,
            settlement_status: settlement_status.unwrap_or(SettlementStatus::Established),
            is_training_company: self.is_training_company.unwrap_or(false),
            needs,
            contact,
        })
    }
}

/// The `view` of a full employer record (the discriminator of `EmployerRecord`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum FullView {
    #[serde(rename = "full")]
    Full,
}

/// The `view` of an employer's public part (the discriminator of `EmployerRecord`).
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub enum PublicView {
    #[serde(rename = "public")]
    Public,
}

/// An employer as read by office staff and by the employer itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmployerDto {
    /// Always `full`: tells this record from the public part in a list.
    pub view: FullView,
    pub id: Uuid,
    pub name: String,
    pub legal_form: Option<String>,
    pub sector: Option<String>,
    pub address: Option<Address>,
    pub district: Option<String>,
    pub employee_count: Option<i32>,
    pub settlement_status: SettlementStatus,
    pub is_training_company: bool,
    pub needs: Vec<EmployerNeed>,
    pub contact: Option<Contact>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<&employer::Model> for EmployerDto {
    fn from(m: &employer::Model) -> Self {
        Self {
            view: FullView::Full,
            id: m.id,
            name: m.name.clone(),
            legal_form: m.legal_form.clone(),
            sector: m.sector.clone(),
            address: from_json(&m.address),
            district: m.district.clone(),
            employee_count: m.employee_count,
            settlement_status: SettlementStatus::parse(&m.settlement_status).unwrap_or(SettlementStatus::Established),
            is_training_company: m.is_training_company,
            needs: tags::split(&m.needs).iter().filter_map(|n| EmployerNeed::parse(n)).collect(),
            contact: from_json(&m.contact),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

impl From<&employer::Model> for EmployerInput {
    fn from(m: &employer::Model) -> Self {
        let d = EmployerDto::from(m);
        Self {
            name: Some(d.name),
            legal_form: d.legal_form,
            sector: d.sector,
            address: d.address,
            district: d.district,
            employee_count: d.employee_count.map(i64::from),
            settlement_status: Some(d.settlement_status.as_str().to_owned()),
            is_training_company: Some(d.is_training_company),
            needs: Some(d.needs.iter().map(|n| n.as_str().to_owned()).collect()),
            contact: d.contact,
        }
    }
}

/// The public part of an employer, as job centres see it.
// `deny_unknown_fields` only gives the schema `additionalProperties: false`:
// without it a full `EmployerDto` also matches this schema, and the
// `oneOf` of `EmployerRecord` (which must match exactly one) fails.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmployerPublicDto {
    /// Always `public`: tells this record from the full one in a list.
    pub view: PublicView,
    pub id: Uuid,
    pub name: String,
    pub legal_form: Option<String>,
    pub sector: Option<String>,
    pub address: Option<Address>,
    pub district: Option<String>,
    pub is_training_company: bool,
}

impl From<&employer::Model> for EmployerPublicDto {
    fn from(m: &employer::Model) -> Self {
        Self {
            view: PublicView::Public,
            id: m.id,
            name: m.name.clone(),
            legal_form: m.legal_form.clone(),
            sector: m.sector.clone(),
            address: from_json(&m.address),
            district: m.district.clone(),
            is_training_company: m.is_training_company,
        }
    }
}

/// Filters of `GET /employers`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmployerQuery {
    #[param(min_length = 1)]
    pub district: Option<String>,
    /// A code of `settlement_statuses` (e.g. `interested` for businesses thinking of settling).
    #[param(value_type = Option<SettlementStatus>)]
    pub settlement_status: Option<String>,
    /// A code of `employer_needs`.
    #[param(value_type = Option<EmployerNeed>)]
    pub need: Option<String>,
    pub is_training_company: Option<bool>,
    /// Part of the name (case-insensitive; at most 200 characters, else `400`).
    #[param(min_length = 1, max_length = 200)]
    pub q: Option<String>,
}

/// A vacancy as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "apprenticeship", "title": "Ausbildung Bäcker:in (m/w/d)", "occupation_code": "29202",
    "description": "Start im August, Frühschicht.", "hours_per_week": 40, "start_date": "2027-08-01",
    "positions": 2, "min_education_level": "lower_secondary", "languages": ["de"], "district": "21", "status": "open"
}))]
pub struct VacancyInput {
    /// Required.
    #[schema(value_type = VacancyKind, required = true)]
    pub kind: Option<String>,
    /// Required.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 300, pattern = "\\S")]
    pub title: Option<String>,
    /// Required. KldB 2010, five digits.
    #[schema(required = true, nullable = false, min_length = 5, max_length = 5, pattern = "^[0-9]{5}$")]
    pub occupation_code: Option<String>,
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    #[schema(minimum = 1, maximum = 60)]
    pub hours_per_week: Option<i64>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub start_date: Option<String>,
    /// At least 1 (default 1).
    #[schema(minimum = 1, maximum = 10000)]
    pub positions: Option<i64>,
    #[schema(value_type = Option<EducationLevel>)]
    pub min_education_level: Option<String>,
    /// ISO 639-1 codes.
    #[schema(value_type = Option<Vec<LanguageCode>>, max_items = 50)]
    pub languages: Option<Vec<String>>,
    /// A code of `districts` (at most 8 characters).
    #[schema(max_length = 8)]
    pub district: Option<String>,
    /// Default `open`.
    #[schema(value_type = Option<VacancyStatus>)]
    pub status: Option<String>,
}

impl crate::routes::common::DistrictChecked for VacancyInput {
    type Fields = VacancyFields;

    fn validate(self, district_known: impl Fn(&str) -> bool) -> Result<VacancyFields, ApiError> {
        let mut c = Checker::new();
        let kind = c.required("kind", self.kind.as_deref()).and_then(|k| c.code::<VacancyKind>("kind", k));
        let title = c.required("title", self.title.as_deref()).map(|v| c.text("title", v, 300));
        let occupation_code =
            c.required("occupation_code", self.occupation_code.as_deref()).map(|v| c.kldb("occupation_code", v));
        let description = c.opt_text("description", self.description.as_deref(), 20_000);
        let hours_per_week = c.opt_int("hours_per_week", self.hours_per_week, 1, 60);
        let start_date = c.date("start_date", self.start_date.as_deref());
        let positions = c.opt_int("positions", self.positions, 1, 10_000).unwrap_or(1);
        let min_education_level =
            c.opt_code::<EducationLevel>("min_education_level", self.min_education_level.as_deref());
        let languages = c.languages("languages", self.languages.as_deref().unwrap_or_default());
        let district = c.district("district", self.district.as_deref(), &district_known);
        let status = match self.status.as_deref() {
            None => Some(VacancyStatus::Open),
            Some(s) => c.code::<VacancyStatus>("status", s),
        };
        c.finish()?;
        Ok(VacancyFields {
            kind: kind.unwrap_or(VacancyKind::Job),
            title: title.unwrap_or_default(),
            occupation_code: occupation_code.unwrap_or_default(),
            description,
            hours_per_week,
            start_date,
            positions,
            min_education_level,
            languages,
            district,
            status: status.unwrap_or(VacancyStatus::Open),
        })
    }
}

/// A vacancy as read.
#[derive(Debug, Serialize, ToSchema)]
pub struct VacancyDto {
    pub id: Uuid,
    pub employer_id: Uuid,
    pub kind: VacancyKind,
    pub title: String,
    pub occupation_code: String,
    pub description: Option<String>,
    pub hours_per_week: Option<i32>,
    pub start_date: Option<NaiveDate>,
    pub positions: i32,
    /// Positions taken by referrals `in_progress` (read-only).
    pub positions_filled: i32,
    pub min_education_level: Option<EducationLevel>,
    pub languages: Vec<String>,
    pub district: Option<String>,
    pub status: VacancyStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<&vacancy::Model> for VacancyDto {
    fn from(m: &vacancy::Model) -> Self {
        Self {
            id: m.id,
            employer_id: m.employer_id,
            kind: VacancyKind::parse(&m.kind).unwrap_or(VacancyKind::Job),
            title: m.title.clone(),
            occupation_code: m.occupation_code.clone(),
            description: m.description.clone(),
            hours_per_week: m.hours_per_week,
            start_date: m.start_date,
            positions: m.positions,
            positions_filled: m.positions_filled,
            min_education_level: m.min_education_level.as_deref().and_then(EducationLevel::parse),
            languages: tags::split(&m.languages),
            district: m.district.clone(),
            status: VacancyStatus::parse(&m.status).unwrap_or(VacancyStatus::Closed),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

impl From<&vacancy::Model> for VacancyInput {
    fn from(m: &vacancy::Model) -> Self {
        let d = VacancyDto::from(m);
        Self {
            kind: Some(d.kind.as_str().to_owned()),
            title: Some(d.title),
            occupation_code: Some(d.occupation_code),
            description: d.description,
            hours_per_week: d.hours_per_week.map(i64::from),
            start_date: d.start_date.map(|x| x.to_string()),
            positions: Some(i64::from(d.positions)),
            min_education_level: d.min_education_level.map(|e| e.as_str().to_owned()),
            languages: Some(d.languages),
            district: d.district,
            status: Some(d.status.as_str().to_owned()),
        }
    }
}

/// Filters of the vacancy lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VacancyQuery {
    /// A code of `vacancy_kinds`.
    #[param(value_type = Option<VacancyKind>)]
    pub kind: Option<String>,
    /// KldB prefix: `293` finds all of KldB group 293.
    #[param(pattern = "^[0-9]{1,5}$")]
    pub occupation_code: Option<String>,
    #[param(min_length = 1)]
    pub district: Option<String>,
    /// A code of `vacancy_statuses`.
    #[param(value_type = Option<VacancyStatus>)]
    pub status: Option<String>,
    pub employer_id: Option<Uuid>,
}
