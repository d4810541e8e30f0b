//! The audit log: append-only. Every function of `repository::clients` (and
//! consultations) records here before it returns personal data.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::{
    domain::{
        audit::{AuditContext, AuditEntry},
        ids::{new_id, now},
    },
    entities::audit_event::{ActiveModel, Column, Entity, Model},
};

/// Appends `entries` in one statement (a list page is one insert, not one per row).
pub async fn record(db: &impl ConnectionTrait, ctx: &AuditContext, entries: &[AuditEntry]) -> Result<(), DbErr> {
    if entries.is_empty() {
        return Ok(());
    }
    Entity::insert_many(rows(ctx, entries)).exec_without_returning(db).await.map(|_| ()).map_err(write_failed)
}

/// The rows [`record`] writes for `entries` (also written by the bulk
/// seeder, [`super::bulk`], so both paths store the same events).
pub fn rows(ctx: &AuditContext, entries: &[AuditEntry]) -> Vec<ActiveModel> {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};
    models(ctx, entries).into_iter().map(|m| m.into_active_model().reset_all()).collect()
}

/// The events of [`rows`] as models (the hot path writes these, `hot_pg`).
pub fn models(ctx: &AuditContext, entries: &[AuditEntry]) -> Vec<Model> {
    let at = now();
    entries
        .iter()
        .map(|e| Model {
            id: new_id(),
            at,
            actor: ctx.actor.clone(),
            actor_org: ctx.actor_org.clone(),
            action: e.action.to_owned(),
            resource: e.resource.to_owned(),
            resource_id: e.resource_id,
            client_id: e.client_id,
            request_id: ctx.request_id.clone(),
            client_request_id: ctx.client_request_id.clone(),
        })
        .collect()
}

/// What a failed audit write becomes: it fails the request too (no read
/// without its event) as a `503` (the log cannot be written right now), and
/// an operator alerts on the counter. Busy and unreachable databases keep
/// their own `503`s.
pub fn write_failed(err: DbErr) -> DbErr {
    crate::http::metrics::record_audit_write_error();
    if crate::db::busy_cause(&err).is_some() || crate::db::is_unavailable(&err) {
        err
    } else {
        DbErr::Custom(format!("{AUDIT_WRITE_FAILED}: {err}"))
    }
}

const AUDIT_WRITE_FAILED: &str = "audit write failed";

/// Whether `err` is a failed audit write (see [`write_failed`]).
pub fn is_write_failure(err: &DbErr) -> bool {
    matches!(err, DbErr::Custom(m) if m.starts_with(AUDIT_WRITE_FAILED))
}

/// Deletes audit events older than `before` (retention); returns how many.
pub async fn purge_older_than(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Entity::delete_many().filter(Column::At.lt(before)).exec(db).await.map(|r| r.rows_affected)
}

#[derive(Debug, Default)]
pub struct AuditFilter {
    pub client_id: Option<Uuid>,
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    after: Option<Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    let mut select = Entity::find();
    if let Some(id) = filter.client_id {
        select = select.filter(Column::ClientId.eq(id));
    }
    if let Some(actor) = &filter.actor {
        select = select.filter(Column::Actor.eq(actor.clone()));
    }
    if let Some(from) = filter.from {
        select = select.filter(Column::At.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(Column::At.lt(to));
    }
    super::keyset(db, select, Column::Id, after, newest_first, limit).await
}

/// Everything the log says about one client (for the Art. 15 export).
pub async fn for_client(db: &impl ConnectionTrait, client_id: Uuid) -> Result<Vec<Model>, DbErr> {
    use sea_orm::QueryOrder;
    Entity::find().filter(Column::ClientId.eq(client_id)).order_by_asc(Column::Id).all(db).await
}
