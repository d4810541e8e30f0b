//! Storage of Idempotency-Keys (table `idempotency_keys`).
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::Expr,
};

use crate::entities::idempotency_key::{ActiveModel, Column, Entity, Model};

pub const IN_PROGRESS: &str = "in_progress";
pub const COMPLETED: &str = "completed";

/// Claims `(scope, key)`; a unique violation means somebody holds it already.
pub async fn claim(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    ActiveModel {
        scope: Set(scope.to_owned()),
        key: Set(key.to_owned()),
        fingerprint: Set(fingerprint.to_owned()),
        state: Set(IN_PROGRESS.to_owned()),
        status_code: Set(None),
        response_body: Set(None),
        location: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .map(|_| ())
}

pub async fn find(db: &impl ConnectionTrait, scope: &str, key: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id((scope.to_owned(), key.to_owned())).one(db).await
}

/// Takes over an abandoned in-progress claim (its holder crashed). Only one
/// of several racing callers succeeds: the update matches the old timestamp.
pub async fn take_over(db: &impl ConnectionTrait, stale: &Model, now: DateTime<Utc>) -> Result<bool, DbErr> {
    let result = Entity::update_many()
        .col_expr(Column::CreatedAt, Expr::value(now))
        .col_expr(Column::Fingerprint, Expr::value(stale.fingerprint.clone()))
        .filter(Column::Scope.eq(stale.scope.clone()))
        .filter(Column::Key.eq(stale.key.clone()))
        .filter(Column::State.eq(IN_PROGRESS))
        .filter(Column::CreatedAt.eq(stale.created_at))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn complete(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
    status: u16,
    body: &str,
    location: Option<&str>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::State, Expr::value(COMPLETED))
        .col_expr(Column::StatusCode, Expr::value(i32::from(status)))
        .col_expr(Column::ResponseBody, Expr::value(body.to_owned()))
        .col_expr(Column::Location, Expr::value(location.map(str::to_owned)))
        .filter(Column::Scope.eq(scope))
        .filter(Column::Key.eq(key))
        .exec(db)
        .await
        .map(|_| ())
}

/// GDPR Art. 17: the stored responses of creates at or under `location` (a
/// client and its consultations) are copies of personal data. They become a
/// bodyless `410`, so a replay of such a create answers `gone` instead of
/// handing out the erased data, and a retry does not create the client anew.
pub async fn erase_responses_under(db: &impl ConnectionTrait, location: &str) -> Result<u64, DbErr> {
    Entity::update_many()
        .col_expr(Column::StatusCode, Expr::value(410))
        .col_expr(Column::ResponseBody, Expr::value(Option::<String>::None))
        .col_expr(Column::Location, Expr::value(Option::<String>::None))
        .filter(
            Condition::any()
                .add(Column::Location.eq(location))
                .add(Column::Location.starts_with(format!("{location}/"))),
        )
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

/// GDPR Art. 17: every stored response that mentions `id` (the erased
/// client's id: its own create, and every referral create or batch answer
/// naming it as `client_id`) becomes a bodyless `410` like in
/// [`erase_responses_under`]. A batch answer goes as a whole: rewriting the
/// stored JSON item by item was rejected as a second, fragile serialiser.
pub async fn erase_responses_mentioning(db: &impl ConnectionTrait, id: uuid::Uuid) -> Result<u64, DbErr> {
    Entity::update_many()
        .col_expr(Column::StatusCode, Expr::value(410))
        .col_expr(Column::ResponseBody, Expr::value(Option::<String>::None))
        .col_expr(Column::Location, Expr::value(Option::<String>::None))
        .filter(Column::ResponseBody.contains(id.to_string()))
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

pub async fn release(db: &impl ConnectionTrait, scope: &str, key: &str) -> Result<(), DbErr> {
    Entity::delete_by_id((scope.to_owned(), key.to_owned())).exec(db).await.map(|_| ())
}

/// Deletes keys older than `before` (they no longer replay).
pub async fn purge_older_than(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Entity::delete_many().filter(Column::CreatedAt.lt(before)).exec(db).await.map(|r| r.rows_affected)
}
