//! Secrets the service keeps for itself (the cursor HMAC key).
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use crate::entities::server_key::{ActiveModel, Entity};

/// Returns the value stored under `name`, storing `make()` first if there is
/// none. Racing instances converge on whichever insert won.
pub async fn get_or_create(
    db: &impl ConnectionTrait,
    name: &str,
    make: impl FnOnce() -> String,
) -> Result<String, DbErr> {
    if let Some(found) = Entity::find_by_id(name.to_owned()).one(db).await? {
        return Ok(found.value);
    }
    let inserted = ActiveModel { name: Set(name.to_owned()), value: Set(make()) }.insert(db).await;
    match inserted {
        Ok(model) => Ok(model.value),
        Err(e) if super::is_unique_violation(&e) => Entity::find_by_id(name.to_owned())
            .one(db)
            .await?
            .map(|m| m.value)
            .ok_or_else(|| DbErr::RecordNotFound(name.to_owned())),
        Err(e) => Err(e),
    }
}
