//! Providers: who may change which, and the transactions around it.
use sea_orm::{ConnectionTrait, TransactionTrait};
use uuid::Uuid;

use super::{cursor::CursorCodec, paging};
use crate::{
    auth::{Principal, Role},
    domain::{ids::new_id, providers::ProviderFields},
    entities::provider::Model,
    error::{ApiError, Problem},
    http::IfMatch,
    repository::{self, Page, providers::ProviderFilter},
    routes::common::PageRequest,
};

const WHAT: &str = "Provider";

pub async fn create(db: &impl ConnectionTrait, fields: &ProviderFields) -> Result<Model, ApiError> {
    Ok(repository::providers::insert(db, new_id(), fields).await?)
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    repository::providers::find(db, id).await?.ok_or_else(|| ApiError::not_found(WHAT))
}

pub async fn list(
    db: &impl ConnectionTrait,
    cursors: &CursorCodec,
    filter: &ProviderFilter,
    page: &PageRequest,
) -> Result<Page<Model>, ApiError> {
    let after = paging::start(cursors, page)?;
    let rows = repository::providers::list(db, filter, after, paging::newest_first(page), page.limit).await?;
    Ok(paging::finish(cursors, page, rows, |m| m.id))
}

/// The provider `principal` may change: office staff any, a provider only its
/// own record. Anything else reads as not found (its existence is not the
/// question; the caller's right to change it is).
pub async fn get_for_change(db: &impl ConnectionTrait, principal: &Principal, id: Uuid) -> Result<Model, ApiError> {
    if !(principal.is_office() || principal.acts_for(Role::Provider, &id.to_string())) {
        return Err(ApiError::not_found(WHAT));
    }
    get(db, id).await
}

/// Applies already-merged fields if `If-Match` and the stored version agree.
pub async fn update<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    current: &Model,
    if_match: &IfMatch,
    fields: &ProviderFields,
) -> Result<Model, ApiError> {
    if_match.check(current.version)?;
    repository::providers::update(db, current.id, current.version, fields)
        .await?
        .ok_or_else(|| ApiError::stale("provider"))
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid, if_match: &IfMatch) -> Result<(), ApiError> {
    let current = get(db, id).await?;
    if_match.check(current.version)?;
    let deleted = repository::providers::delete(db, id, current.version).await.map_err(|e| {
        repository::constraint(
            e,
            |_| None,
            |_| Some(ApiError::new(Problem::InUse, "The provider still has measures; close or move them first.")),
        )
    })?;
    if deleted { Ok(()) } else { Err(ApiError::stale("provider")) }
}
