//! Measures (Maßnahmen) offered by providers.
use chrono::NaiveDate;
use uuid::Uuid;

use super::{
    codes::{FundingType, MeasureKind, MeasureStatus, TargetGroup},
    values::Address,
};

#[derive(Debug, Clone, PartialEq)]
pub struct MeasureFields {
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
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
    pub status: MeasureStatus,
}

/// Whether a measure has a free seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapacityStatus {
    Available,
    Full,
}

impl CapacityStatus {
    pub fn of(capacity: i32, seats_taken: i32) -> Self {
        if seats_taken < capacity { CapacityStatus::Available } else { CapacityStatus::Full }
    }
}
