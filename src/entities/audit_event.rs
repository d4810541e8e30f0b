use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub at: DateTimeUtc,
    pub actor: String,
    pub actor_org: Option<String>,
    pub action: String,
    pub resource: String,
    pub resource_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub request_id: String,
    /// The caller's `X-Request-Id` (added later; `NULL` on older rows).
    pub client_request_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
