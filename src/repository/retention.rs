//! Queries for retention and restores (see `service::retention`).
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::{domain::codes::ClientStatus, entities::client};

/// Ids of every erased client, oldest erasure first (no personal data: the
/// rows are anonymous stubs, so no audit event is written).
pub async fn erased_client_ids(db: &impl ConnectionTrait) -> Result<Vec<Uuid>, DbErr> {
    client::Entity::find()
        .select_only()
        .column(client::Column::Id)
        .filter(client::Column::Status.eq(ClientStatus::Erased.as_str()))
        .order_by_asc(client::Column::ErasedAt)
        .order_by_asc(client::Column::Id)
        .into_tuple::<Uuid>()
        .all(db)
        .await
}
