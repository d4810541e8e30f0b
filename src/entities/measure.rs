use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "measures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub provider_id: Uuid,
    pub title: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub kind: String,
    pub measure_number: Option<String>,
    pub funding: String,
    pub target_groups: String,
    pub occupation_codes: String,
    pub district: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub address: Option<Json>,
    pub start_date: Option<Date>,
    pub end_date: Option<Date>,
    pub hours_per_week: Option<i32>,
    pub capacity: i32,
    /// Referrals `accepted` or `in_progress` (maintained with the referral).
    pub seats_taken: i32,
    /// Referrals `on_hold` (maintained with the referral).
    pub waitlisted: i32,
    pub min_age: Option<i32>,
    pub max_age: Option<i32>,
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
