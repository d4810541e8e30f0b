//! The only place that writes queries. Models become domain/DTO values here
//! and database errors become `ApiError`s here, via [`constraint`].
pub mod audit;
pub mod audit_writer;
pub mod bulk;
pub mod change_feed;
pub mod clients;
pub mod consultations;
pub mod demand;
pub mod districts;
pub mod employers;
pub mod funding;
pub mod hot_pg;
pub mod idempotency;
pub mod measures;
pub mod providers;
pub mod referrals;
pub mod retention;
pub mod server_keys;
pub mod statistics;
pub mod tags;
pub mod vacancies;
pub mod webhooks;

use sea_orm::{DbErr, SqlErr};

use crate::error::ApiError;

/// Translates a constraint violation into the caller-facing error:
/// `on_unique` for unique violations, `on_foreign_key` for foreign-key ones;
/// anything else stays a database error (`500`/`503`).
pub fn constraint(
    err: DbErr,
    on_unique: impl FnOnce(&str) -> Option<ApiError>,
    on_foreign_key: impl FnOnce(&str) -> Option<ApiError>,
) -> ApiError {
    let mapped = match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(msg)) => on_unique(&msg),
        Some(SqlErr::ForeignKeyConstraintViolation(msg)) => on_foreign_key(&msg),
        _ => sqlite_restrict_violation(&err).and_then(|msg| on_foreign_key(&msg)),
    };
    mapped.unwrap_or_else(|| ApiError::from(err))
}

/// SQLite reports a delete refused by an `ON DELETE RESTRICT` foreign key
/// as `SQLITE_CONSTRAINT_TRIGGER` (1811), not `SQLITE_CONSTRAINT_FOREIGNKEY`
/// (787), and `DbErr::sql_err` knows only the latter — without this, deleting
/// a referenced record was a `500` on SQLite and a `409` on PostgreSQL.
fn sqlite_restrict_violation(err: &DbErr) -> Option<String> {
    use sea_orm::{RuntimeErr, sqlx};
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err else {
        return None;
    };
    let sqlx::Error::Database(db) = &**e else { return None };
    (db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && db.code().as_deref() == Some("1811")
        && db.message().contains("FOREIGN KEY constraint failed"))
    .then(|| db.message().to_owned())
}

/// A write the database refused because a measure's `seats_taken` would
/// leave `0..=capacity` (the `CHECK` on PostgreSQL, a trigger on SQLite; both
/// carry the constraint's name in the message).
pub fn is_capacity_violation(err: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err else {
        return false;
    };
    let sqlx::Error::Database(db) = &**e else { return false };
    let name = migration::m20261202_000007_measure_capacity_check::NAME;
    db.constraint() == Some(name) || db.message().contains(name)
}

/// A unique violation (for callers that only need a yes/no).
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
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

/// Case-insensitive "name contains" on both backends.
///
/// PostgreSQL's `lower()` folds Unicode (under a UTF-8 locale), so both sides are lowered.
/// SQLite's `lower()` and `LIKE` fold ASCII only — "öz" would never find
/// "Öztürk" — so there the needle becomes a `GLOB` (case-sensitive) whose
/// every cased letter is a class of its case variants: `*[öÖ][zZ]*`.
pub fn name_contains<C: sea_orm::ColumnTrait>(
    backend: sea_orm::DbBackend,
    column: C,
    needle: &str,
) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::{
        ExprTrait,
        sea_query::{BinOper, Expr, Func, LikeExpr},
    };
    if backend == sea_orm::DbBackend::Sqlite {
        return Expr::col(column.as_column_ref()).binary(BinOper::Custom("GLOB"), Expr::val(glob_any_case(needle)));
    }
    let escaped = needle.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    Expr::expr(Func::lower(Expr::col(column.as_column_ref()))).like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

/// `*<needle>*` as a SQLite `GLOB` matching any case: a letter becomes a
/// class of itself and its one-character lower and upper case; a GLOB
/// special character becomes a class of itself, so it matches literally.
fn glob_any_case(needle: &str) -> String {
    fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
        match (chars.next(), chars.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    }
    let mut pattern = String::from("*");
    for c in needle.chars() {
        let mut variants = vec![c];
        for v in [single(c.to_lowercase()), single(c.to_uppercase())].into_iter().flatten() {
            if !variants.contains(&v) {
                variants.push(v);
            }
        }
        if variants.len() == 1 && !matches!(c, '*' | '?' | '[' | ']') {
            pattern.push(c);
        } else {
            pattern.push('[');
            pattern.extend(variants);
            pattern.push(']');
        }
    }
    pattern.push('*');
    pattern
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

#[cfg(test)]
mod tests {
    use super::glob_any_case;

    #[test]
    fn glob_matches_every_case_of_letters_and_specials_literally() {
        assert_eq!(glob_any_case("Öz"), "*[Öö][zZ]*");
        assert_eq!(glob_any_case("a*?]ß 1"), "*[aA][*][?][]]ß 1*");
    }
}
