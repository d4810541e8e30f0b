//! Wire shapes of measures.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    domain::{
        codes::{CodeList, FundingType, MeasureKind, MeasureStatus, TargetGroup},
        measures::{CapacityStatus, MeasureFields},
        validate::Checker,
        values::Address,
    },
    entities::measure::Model,
    error::ApiError,
    repository::{from_json, tags},
    routes::common::KldbCode,
};

/// A measure as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "provider_id": "0193a000-0000-7000-8000-000000000001",
    "title": "Bewerbungswerkstatt Leipzig-Ost", "description": "Acht Wochen Bewerbungstraining in kleinen Gruppen.",
    "kind": "application_training", "measure_number": "962/123/26", "funding": "sgb3_45",
    "target_groups": ["unemployed", "long_term_unemployed"], "occupation_codes": [],
    "district": "21", "address": {"street": "Eisenbahnstraße 66", "postal_code": "04315", "city": "Leipzig"},
    "start_date": "2027-01-11", "end_date": "2027-03-05", "hours_per_week": 20, "capacity": 12,
    "min_age": 18, "max_age": null, "status": "open"
}))]
pub struct MeasureInput {
    /// Required. The provider running it; a provider principal may only use its own id.
    #[schema(value_type = Uuid, required = true, max_length = 36)]
    pub provider_id: Option<String>,
    /// Required.
    #[schema(required = true, nullable = false, min_length = 1, max_length = 300, pattern = "\\S")]
    pub title: Option<String>,
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    /// Required.
    #[schema(value_type = MeasureKind, required = true)]
    pub kind: Option<String>,
    /// The funder's number; unique when set.
    #[schema(max_length = 100)]
    pub measure_number: Option<String>,
    /// Required.
    #[schema(value_type = FundingType, required = true)]
    pub funding: Option<String>,
    /// Empty: open to every target group.
    #[schema(value_type = Option<Vec<TargetGroup>>, max_items = 10)]
    pub target_groups: Option<Vec<String>>,
    /// KldB 2010 codes, five digits each.
    #[schema(value_type = Option<Vec<KldbCode>>, max_items = 50)]
    pub occupation_codes: Option<Vec<String>>,
    /// A code of `districts` (at most 8 characters).
    #[schema(max_length = 8)]
    pub district: Option<String>,
    pub address: Option<Address>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub start_date: Option<String>,
    #[schema(value_type = Option<NaiveDate>, max_length = 10)]
    pub end_date: Option<String>,
    #[schema(minimum = 1, maximum = 60)]
    pub hours_per_week: Option<i64>,
    /// Required. Seats, ≥ 0.
    #[schema(required = true, nullable = false, minimum = 0, maximum = 100000)]
    pub capacity: Option<i64>,
    #[schema(minimum = 0, maximum = 120)]
    pub min_age: Option<i64>,
    /// Not below `min_age`.
    #[schema(minimum = 0, maximum = 120)]
    pub max_age: Option<i64>,
    /// Default `planned`.
    #[schema(value_type = Option<MeasureStatus>)]
    pub status: Option<String>,
}

impl crate::routes::common::DistrictChecked for MeasureInput {
    type Fields = MeasureFields;

    fn validate(self, district_known: impl Fn(&str) -> bool) -> Result<MeasureFields, ApiError> {
        let mut c = Checker::new();
        let provider_id =
            c.required("provider_id", self.provider_id.as_deref()).and_then(|p| c.uuid("provider_id", Some(p)));
        let title = c.required("title", self.title.as_deref()).map(|v| c.text("title", v, 300));
        let description = c.opt_text("description", self.description.as_deref(), 20_000);
        let kind = c.required("kind", self.kind.as_deref()).and_then(|k| c.code::<MeasureKind>("kind", k));
        let measure_number = c.opt_text("measure_number", self.measure_number.as_deref(), 100);
        let funding = c.required("funding", self.funding.as_deref()).and_then(|f| c.code::<FundingType>("funding", f));
        let target_groups = c.codes::<TargetGroup>("target_groups", self.target_groups.as_deref().unwrap_or_default());
        let occupation_codes = c.kldb_list("occupation_codes", self.occupation_codes.as_deref().unwrap_or_default());
        let district = c.district("district", self.district.as_deref(), &district_known);
        let address = self.address.and_then(|a| a.check(&mut c, "address"));
        let start_date = c.date("start_date", self.start_date.as_deref());
        let end_date = c.date("end_date", self.end_date.as_deref());
        if let (Some(s), Some(e)) = (start_date, end_date)
            && e < s
        {
            c.add("end_date", "must not be before start_date");
        }
        let hours_per_week = c.opt_int("hours_per_week", self.hours_per_week, 1, 60);
        let capacity = c.required("capacity", self.capacity).and_then(|v| c.opt_int("capacity", Some(v), 0, 100_000));
        let min_age = c.opt_int("min_age", self.min_age, 0, 120);
        let max_age = c.opt_int("max_age", self.max_age, 0, 120);
        if let (Some(lo), Some(hi)) = (min_age, max_age)
            && hi < lo
        {
            c.add("max_age", "must not be below min_age");
        }
        let status = match self.status.as_deref() {
            None => Some(MeasureStatus::Planned),
            Some(s) => c.code::<MeasureStatus>("status", s),
        };
        c.finish()?;
        Ok(MeasureFields {
            provider_id: provider_id.unwrap_or_default(),
            title: title.unwrap_or_default(),
            description,
            kind: kind.unwrap_or(MeasureKind::Activation),
            measure_number,
            funding: funding.unwrap_or(FundingType::Other),
            target_groups,
            occupation_codes,
            district,
            address,
            start_date,
            end_date,
            hours_per_week,
            capacity: capacity.unwrap_or(0),
            min_age,
            max_age,
            status: status.unwrap_or(MeasureStatus::Planned),
        })
    }
}

/// A measure as read.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeasureDto {
    pub id: Uuid,
    pub provider_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub kind: MeasureKind,
    pub measure_number: Option<String>,
    pub funding: FundingType,
    pub target_groups: Vec<TargetGroup>,
    pub occupation_codes: Vec<String>,
    pub district: Option<String>,
    pub address: Option<Address>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub hours_per_week: Option<i32>,
    pub capacity: i32,
    /// Referrals `accepted` or `in_progress` (read-only).
    pub seats_taken: i32,
    /// `available` or `full` (read-only).
    pub capacity_status: CapacityStatus,
    /// Referrals `on_hold` (read-only).
    pub waitlisted: i32,
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
    pub status: MeasureStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i32,
}

impl From<&Model> for MeasureDto {
    fn from(m: &Model) -> Self {
        Self {
            id: m.id,
            provider_id: m.provider_id,
            title: m.title.clone(),
            description: m.description.clone(),
            kind: MeasureKind::parse(&m.kind).unwrap_or(MeasureKind::Activation),
            measure_number: m.measure_number.clone(),
            funding: FundingType::parse(&m.funding).unwrap_or(FundingType::Other),
            target_groups: tags::split(&m.target_groups).iter().filter_map(|t| TargetGroup::parse(t)).collect(),
            occupation_codes: tags::split(&m.occupation_codes),
            district: m.district.clone(),
            address: from_json(&m.address),
            start_date: m.start_date,
            end_date: m.end_date,
            hours_per_week: m.hours_per_week,
            capacity: m.capacity,
            seats_taken: m.seats_taken,
            capacity_status: CapacityStatus::of(m.capacity, m.seats_taken),
            waitlisted: m.waitlisted,
            min_age: m.min_age,
            max_age: m.max_age,
            status: MeasureStatus::parse(&m.status).unwrap_or(MeasureStatus::Planned),
            created_at: m.created_at,
            updated_at: m.updated_at,
            version: m.version,
        }
    }
}

impl From<&Model> for MeasureInput {
    fn from(m: &Model) -> Self {
        let d = MeasureDto::from(m);
        Self {
            provider_id: Some(d.provider_id.to_string()),
            title: Some(d.title),
            description: d.description,
            kind: Some(d.kind.as_str().to_owned()),
            measure_number: d.measure_number,
            funding: Some(d.funding.as_str().to_owned()),
            target_groups: Some(d.target_groups.iter().map(|t| t.as_str().to_owned()).collect()),
            occupation_codes: Some(d.occupation_codes),
            district: d.district,
            address: d.address,
            start_date: d.start_date.map(|x| x.to_string()),
            end_date: d.end_date.map(|x| x.to_string()),
            hours_per_week: d.hours_per_week.map(i64::from),
            capacity: Some(i64::from(d.capacity)),
            min_age: d.min_age.map(i64::from),
            max_age: d.max_age.map(i64::from),
            status: Some(d.status.as_str().to_owned()),
        }
    }
}

/// Filters of `GET /measures`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MeasureQuery {
    /// A code of `measure_kinds`.
    #[param(value_type = Option<MeasureKind>)]
    pub kind: Option<String>,
    /// A code of `target_groups`.
    #[param(value_type = Option<TargetGroup>)]
    pub target_group: Option<String>,
    #[param(min_length = 1)]
    pub district: Option<String>,
    pub provider_id: Option<Uuid>,
    /// A code of `measure_statuses`.
    #[param(value_type = Option<MeasureStatus>)]
    pub status: Option<String>,
    /// A code of `funding_types`.
    #[param(value_type = Option<FundingType>)]
    pub funding: Option<String>,
    /// `true`: only measures with a free seat; `false`: only full ones.
    pub has_free_seats: Option<bool>,
    /// Measures starting after this date (`YYYY-MM-DD`).
    #[param(value_type = Option<NaiveDate>)]
    pub starts_after: Option<String>,
    /// KldB prefix of any of the measure's occupation codes.
    #[param(pattern = "^[0-9]{1,5}$")]
    pub occupation_code: Option<String>,
    /// Part of the title (case-insensitive; at most 200 characters, else `400`).
    #[param(min_length = 1, max_length = 200)]
    pub q: Option<String>,
}
