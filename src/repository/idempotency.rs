//! Storage of Idempotency-Keys (table `idempotency_keys`).
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    ExprTrait, QueryFilter, Statement, sea_query::Expr,
};

use crate::entities::idempotency_key::{ActiveModel, Column, Entity, Model};

/// A stored key as the service sees it.
pub type ClaimRow = Model;

pub const IN_PROGRESS: &str = "in_progress";
pub const COMPLETED: &str = "completed";

/// Who holds a claim and until when (see `service::idempotency`).
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub holder: &'a str,
    pub until: DateTime<Utc>,
}

/// Claims `(scope, key)`; a unique violation means somebody holds it already.
pub async fn claim(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
    lease: Lease<'_>,
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
        holder: Set(Some(lease.holder.to_owned())),
        lease_until: Set(Some(lease.until)),
    }
    .insert(db)
    .await
    .map(|_| ())
}

/// PostgreSQL only: takes the transaction-scoped advisory lock of
/// `(scope, key)` for the caller's transaction; `false` when another
/// transaction holds it. The lock ends with that transaction, however it
/// ends (commit, rollback, a dropped connection, a killed process).
pub async fn try_lock(db: &impl ConnectionTrait, scope: &str, key: &str) -> Result<bool, DbErr> {
    let sql = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS locked";
    let row = db
        .query_one_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, [format!("{scope}\n{key}").into()]))
        .await?;
    match row {
        Some(row) => row.try_get("", "locked"),
        None => Ok(false),
    }
}

/// The answer of a create as one completed row, written in the create's own
/// transaction; `false` when a row for the key appeared meanwhile (a
/// batch's claim, which does not take the lock of [`try_lock`]).
#[allow(clippy::too_many_arguments)]
pub async fn insert_completed(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
    fingerprint: &str,
    created_at: DateTime<Utc>,
    status: u16,
    body: &str,
    location: Option<&str>,
) -> Result<bool, DbErr> {
    let sql = "INSERT INTO idempotency_keys \
               (scope, key, fingerprint, state, status_code, response_body, location, created_at, holder, lease_until) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL) ON CONFLICT (scope, key) DO NOTHING";
    let values: [sea_orm::Value; 8] = [
        scope.into(),
        key.into(),
        fingerprint.into(),
        COMPLETED.into(),
        i32::from(status).into(),
        body.into(),
        location.map(str::to_owned).into(),
        created_at.into(),
    ];
    let result = db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
    Ok(result.rows_affected() == 1)
}

pub async fn find(db: &impl ConnectionTrait, scope: &str, key: &str) -> Result<Option<Model>, DbErr> {
    Entity::find_by_id((scope.to_owned(), key.to_owned())).one(db).await
}

/// Takes over an abandoned in-progress claim (its holder died). Only one
/// of several racing callers succeeds: the update matches the old holder
/// (or, for claims written before holders existed, the old timestamp).
pub async fn take_over(
    db: &impl ConnectionTrait,
    stale: &Model,
    now: DateTime<Utc>,
    lease: Lease<'_>,
) -> Result<bool, DbErr> {
    let previous = match &stale.holder {
        Some(holder) => Column::Holder.eq(holder.clone()),
        None => Column::Holder.is_null().and(Column::CreatedAt.eq(stale.created_at)),
    };
    let result = Entity::update_many()
        .col_expr(Column::CreatedAt, Expr::value(now))
        .col_expr(Column::Holder, Expr::value(lease.holder.to_owned()))
        .col_expr(Column::LeaseUntil, Expr::value(lease.until))
        .filter(Column::Scope.eq(stale.scope.clone()))
        .filter(Column::Key.eq(stale.key.clone()))
        .filter(Column::State.eq(IN_PROGRESS))
        .filter(previous)
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Extends the leases of the claims `holders` still work on.
pub async fn renew(db: &impl ConnectionTrait, holders: &[String], until: DateTime<Utc>) -> Result<u64, DbErr> {
    if holders.is_empty() {
        return Ok(0);
    }
    Entity::update_many()
        .col_expr(Column::LeaseUntil, Expr::value(until))
        .filter(Column::State.eq(IN_PROGRESS))
        .filter(Column::Holder.is_in(holders.iter().cloned()))
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

/// Stores the answer; `false` when `holder` no longer holds the claim
/// (its lease ran out and another request took the key over).
pub async fn complete(
    db: &impl ConnectionTrait,
    scope: &str,
    key: &str,
    holder: &str,
    status: u16,
    body: &str,
    location: Option<&str>,
) -> Result<bool, DbErr> {
    Entity::update_many()
        .col_expr(Column::State, Expr::value(COMPLETED))
        .col_expr(Column::StatusCode, Expr::value(i32::from(status)))
        .col_expr(Column::ResponseBody, Expr::value(body.to_owned()))
        .col_expr(Column::Location, Expr::value(location.map(str::to_owned)))
        .col_expr(Column::Holder, Expr::value(Option::<String>::None))
        .col_expr(Column::LeaseUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(Column::Scope.eq(scope))
        .filter(Column::Key.eq(key))
        .filter(Column::Holder.eq(holder))
        .exec(db)
        .await
        .map(|r| r.rows_affected == 1)
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

/// Gives up `holder`'s in-progress claim (its work failed), so a retry runs.
pub async fn release(db: &impl ConnectionTrait, scope: &str, key: &str, holder: &str) -> Result<(), DbErr> {
    Entity::delete_many()
        .filter(Column::Scope.eq(scope))
        .filter(Column::Key.eq(key))
        .filter(Column::State.eq(IN_PROGRESS))
        .filter(Column::Holder.eq(holder))
        .exec(db)
        .await
        .map(|_| ())
}

/// Removes a key whatever its state (it is past its retention).
pub async fn remove(db: &impl ConnectionTrait, scope: &str, key: &str) -> Result<(), DbErr> {
    Entity::delete_by_id((scope.to_owned(), key.to_owned())).exec(db).await.map(|_| ())
}

/// Deletes keys older than `before` (they no longer replay).
pub async fn purge_older_than(db: &impl ConnectionTrait, before: DateTime<Utc>) -> Result<u64, DbErr> {
    Entity::delete_many().filter(Column::CreatedAt.lt(before)).exec(db).await.map(|r| r.rows_affected)
}
