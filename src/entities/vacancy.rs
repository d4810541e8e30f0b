use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "vacancies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub employer_id: Uuid,
    pub kind: String,
    pub title: String,
    pub occupation_code: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub hours_per_week: Option<i32>,
    pub start_date: Option<Date>,
    pub positions: i32,
    /// Referrals `in_progress` on this vacancy (maintained with the referral).
    pub positions_filled: i32,
    pub min_education_level: Option<String>,
    pub languages: String,
    pub district: Option<String>,
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
