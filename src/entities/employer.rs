use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "employers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub legal_form: Option<String>,
    pub sector: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub address: Option<Json>,
    pub district: Option<String>,
    pub employee_count: Option<i32>,
    pub settlement_status: String,
    pub is_training_company: bool,
    pub needs: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub contact: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub version: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
