use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "referrals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: Uuid,
    pub measure_id: Option<Uuid>,
    pub vacancy_id: Option<Uuid>,
    pub external_id: Option<String>,
    pub referring_org: String,
    pub referred_by: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub note: Option<String>,
    pub status: String,
    pub reason_code: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason_note: Option<String>,
    pub rejected_by: Option<String>,
    pub outcome: Option<String>,
    pub outcome_on: Option<Date>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i32,
    /// The odd factor of the referral's statistics record key
    /// (`cell_key::key_factor` of its id); never served.
    pub key_factor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
