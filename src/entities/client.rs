use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub external_id: Option<String>,
    pub created_by_org: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<Date>,
    pub email: Option<String>,
    pub phone: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub address: Option<Json>,
    pub district: Option<String>,
    pub target_groups: String,
    pub education_level: Option<String>,
    pub occupation_codes: String,
    pub languages: String,
    pub available_from: Option<Date>,
    pub hours_per_week: Option<i32>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub consent: Option<Json>,
    pub status: String,
    /// The statistics record key in [0, 2³²) (`domain::cell_key`): random,
    /// never served, kept on erasure.
    pub record_key: i64,
    pub erased_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
