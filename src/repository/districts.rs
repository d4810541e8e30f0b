//! The `districts` code list (Leipzig's Ortsteile), kept in the database so
//! the operator can replace it (`ostwerk import-districts FILE.csv`).
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryOrder, TransactionTrait,
};

use crate::{
    domain::codes::Code,
    entities::district::{ActiveModel, Column, Entity},
};

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<Code>, DbErr> {
    Ok(Entity::find()
        .order_by_asc(Column::Code)
        .all(db)
        .await?
        .into_iter()
        .map(|m| Code { code: m.code, label_de: m.label_de, label_en: m.label_en })
        .collect())
}

pub async fn exists(db: &impl ConnectionTrait, code: &str) -> Result<bool, DbErr> {
    Ok(Entity::find_by_id(code.to_owned()).one(db).await?.is_some())
}

/// Replaces the whole list in one transaction.
pub async fn replace_all(db: &DatabaseConnection, codes: &[Code]) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    Entity::delete_many().exec(&txn).await?;
    if !codes.is_empty() {
        Entity::insert_many(codes.iter().map(|c| ActiveModel {
            code: Set(c.code.clone()),
            label_de: Set(c.label_de.clone()),
            label_en: Set(c.label_en.clone()),
        }))
        .exec(&txn)
        .await?;
    }
    txn.commit().await
}

/// All district codes (63 rows; read whole for validating a write).
pub async fn codes(db: &impl ConnectionTrait) -> Result<std::collections::HashSet<String>, DbErr> {
    Ok(Entity::find().all(db).await?.into_iter().map(|m| m.code).collect())
}
