use sea_orm::entity::prelude::*;

/// One entry of the change feed, and the event the webhook outbox delivers.
/// On PostgreSQL the table also has `txid` (filled by its default), which
/// only the feed's reader uses (`repository::change_feed`).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "change_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub id: Uuid,
    pub event_type: String,
    pub resource: String,
    pub resource_id: Uuid,
    pub status: Option<String>,
    pub previous_status: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub audience: String,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
