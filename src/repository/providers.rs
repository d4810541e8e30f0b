//! Queries on `providers`.
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    domain::{ids::now, providers::ProviderFields},
    entities::provider::{ActiveModel, Column, Entity, Model},
};

/// List filters.
#[derive(Debug, Default)]
pub struct ProviderFilter {
    pub kind: Option<String>,
    pub district: Option<String>,
    pub azav_certified: Option<bool>,
    /// Case-insensitive substring of the name.
    pub q: Option<String>,
}

fn to_json<T: serde::Serialize>(value: &Option<T>) -> Option<serde_json::Value> {
    value.as_ref().and_then(|v| serde_json::to_value(v).ok())
}

pub async fn insert(db: &impl ConnectionTrait, id: Uuid, fields: &ProviderFields) -> Result<Model, DbErr> {
    let at = now();
    ActiveModel {
        id: Set(id),
        name: Set(fields.name.clone()),
        kind: Set(fields.kind.as_str().to_owned()),
        azav_certified: Set(fields.azav_certified),
        address: Set(to_json(&fields.address)),
        district: Set(fields.district.clone()),
        contact: Set(to_json(&fields.contact)),
        website: Set(fields.website.clone()),
        created_at: Set(at),
        updated_at: Set(at),
        version: Set(1),
    }
    .insert(db)
    .await
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &ProviderFilter,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find();
    if let Some(kind) = &filter.kind {
        select = select.filter(Column::Kind.eq(kind.clone()));
    }
    if let Some(district) = &filter.district {
        select = select.filter(Column::District.eq(district.clone()));
    }
    if let Some(azav) = filter.azav_certified {
        select = select.filter(Column::AzavCertified.eq(azav));
    }
    if let Some(q) = &filter.q {
        select = select.filter(super::name_contains(db.get_database_backend(), Column::Name, q));
    }
    super::keyset(db, select, Column::Id, after, newest_first, limit).await
}

/// Writes `fields` if the row is still at `version`; `None` when it moved on
/// (or is gone) — the conditional update is what makes lost updates impossible.
pub async fn update(
    db: &impl ConnectionTrait,
    id: Uuid,
    version: i32,
    fields: &ProviderFields,
) -> Result<Option<Model>, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::Name, Expr::value(fields.name.clone()))
        .col_expr(Column::Kind, Expr::value(fields.kind.as_str()))
        .col_expr(Column::AzavCertified, Expr::value(fields.azav_certified))
        .col_expr(Column::Address, Expr::value(to_json(&fields.address)))
        .col_expr(Column::District, Expr::value(fields.district.clone()))
        .col_expr(Column::Contact, Expr::value(to_json(&fields.contact)))
        .col_expr(Column::Website, Expr::value(fields.website.clone()))
        .col_expr(Column::UpdatedAt, Expr::value(now()))
        .col_expr(Column::Version, Expr::value(version + 1))
        .filter(Column::Id.eq(id))
        .filter(Column::Version.eq(version))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    find(db, id).await
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid, version: i32) -> Result<bool, DbErr> {
    super::delete_versioned::<Entity, _>(db, Column::Id, Column::Version, id, version).await
}
