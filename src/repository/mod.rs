//! The only place that writes queries. Models become domain/DTO values here
//! and database errors become `ApiError`s here, via [`constraint`].
pub mod audit;
pub mod clients;
pub mod consultations;
pub mod districts;
pub mod employers;
pub mod idempotency;
pub mod measures;
pub mod providers;
pub mod referrals;
pub mod server_keys;
pub mod tags;
pub mod vacancies;

use sea_orm::{DbErr, RuntimeErr, SqlErr};

use crate::error::ApiError;

/// Translates a constraint violation into the caller-facing error:
/// `on_unique` for unique violations, `on_foreign_key` for foreign-key ones;
/// anything else stays a database error (`500`/`503`).
pub fn constraint(
    err: DbErr,
    on_unique: impl FnOnce(&str) -> Option<ApiError>,
    on_foreign_key: impl FnOnce(&str) -> Option<ApiError>,
) -> ApiError {
    let mapped = match sql_err(&err) {
        Some(SqlErr::UniqueConstraintViolation(msg)) => on_unique(&msg),
        Some(SqlErr::ForeignKeyConstraintViolation(msg)) => on_foreign_key(&msg),
        _ => None,
    };
    mapped.unwrap_or_else(|| ApiError::from(err))
}

/// `DbErr::sql_err`, plus the foreign-key violations it misses on SQLite.
///
/// Every foreign key is `ON DELETE RESTRICT`. SQLite enforces RESTRICT with an
/// internal trigger, so deleting a referenced row fails with extended code
/// 1811 (`SQLITE_CONSTRAINT_TRIGGER`), not 787 (`SQLITE_CONSTRAINT_FOREIGNKEY`),
/// and sea-orm does not classify it: a `DELETE` of a vacancy with referrals
/// was a `500` on SQLite and a `409` on PostgreSQL.
fn sql_err(err: &DbErr) -> Option<SqlErr> {
    err.sql_err().or_else(|| match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match &**e {
            sea_orm::sqlx::Error::Database(db)
                if db.code().as_deref() == Some("1811") && db.message().contains("FOREIGN KEY constraint failed") =>
            {
                Some(SqlErr::ForeignKeyConstraintViolation(db.message().to_owned()))
            }
            _ => None,
        },
        _ => None,
    })
}

/// A unique violation (for callers that only need a yes/no).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(sql_err(err), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// One page of a list plus the cursor of the next one.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

/// Keyset paging over a UUID v7 id: rows after `after` in `newest_first`
/// order, at most `limit + 1` (the extra row says whether there is more).
pub async fn keyset<E, C>(
    db: &C,
    select: sea_orm::Select<E>,
    id: E::Column,
    after: Option<uuid::Uuid>,
    newest_first: bool,
    limit: u64,
) -> Result<Vec<E::Model>, DbErr>
where
    E: sea_orm::EntityTrait,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut select = select;
    if let Some(after) = after {
        select = if newest_first { select.filter(id.lt(after)) } else { select.filter(id.gt(after)) };
    }
    select = if newest_first { select.order_by_desc(id) } else { select.order_by_asc(id) };
    select.limit(limit + 1).all(db).await
}

/// Case-insensitive "name contains" on both backends (`LIKE` is
/// case-insensitive only for ASCII on SQLite, so both sides are lowered).
///
/// SQLite's `lower()` folds ASCII only, so `Östliche` stays `Östliche` and a
/// search for `östliche` (or even `Östliche`, lowered here) would miss it.
/// The capitals of the needle's non-ASCII letters are therefore folded in
/// SQL with `replace()` as well; on PostgreSQL that is a no-op. (Rejected:
/// a REGEXP function, which needs a driver feature and differs per backend.)
pub fn name_contains<C: sea_orm::ColumnTrait>(column: C, needle: &str) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::{
        ExprTrait,
        sea_query::{Expr, Func, LikeExpr, SimpleExpr},
    };
    let needle = needle.to_lowercase();
    let mut haystack: SimpleExpr = Func::lower(Expr::col(column.as_column_ref())).into();
    let mut folded = Vec::new();
    for lower in needle.chars().filter(|c| !c.is_ascii()) {
        let mut upper = lower.to_uppercase();
        if let (Some(capital), None) = (upper.next(), upper.next())
            && capital != lower
            && !folded.contains(&capital)
        {
            folded.push(capital);
            haystack = Func::cust("replace").arg(haystack).arg(capital.to_string()).arg(lower.to_string()).into();
        }
    }
    let escaped = needle.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    Expr::expr(haystack).like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

/// Writes the `Set` fields of `model` to row `id` if it is still at `version`
/// (the caller sets `updated_at` and `version + 1` in `model`); returns the
/// new row, or `None` when the row moved on or is gone — the conditional
/// update is what makes lost updates impossible.
pub async fn update_versioned<E, A, C>(
    db: &C,
    model: A,
    id_col: E::Column,
    version_col: E::Column,
    id: uuid::Uuid,
    version: i32,
) -> Result<Option<E::Model>, DbErr>
where
    E: sea_orm::EntityTrait,
    A: sea_orm::ActiveModelTrait<Entity = E> + Send,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter};
    let result = E::update_many().set(model).filter(id_col.eq(id)).filter(version_col.eq(version)).exec(db).await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    E::find().filter(id_col.eq(id)).one(db).await
}

/// Serialises an optional value type into a JSON column.
pub fn json_of<T: serde::Serialize>(value: &Option<T>) -> Option<serde_json::Value> {
    value.as_ref().and_then(|v| serde_json::to_value(v).ok())
}

/// Reads a JSON column back into its value type.
pub fn from_json<T: serde::de::DeserializeOwned>(value: &Option<serde_json::Value>) -> Option<T> {
    value.as_ref().and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// Deletes row `id` if it is still at `version` (so a change landing between
/// the caller's check and the delete is not deleted over). True if deleted.
pub async fn delete_versioned<E, C>(
    db: &C,
    id_col: E::Column,
    version_col: E::Column,
    id: uuid::Uuid,
    version: i32,
) -> Result<bool, DbErr>
where
    E: sea_orm::EntityTrait,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(E::delete_many().filter(id_col.eq(id)).filter(version_col.eq(version)).exec(db).await?.rows_affected == 1)
}
