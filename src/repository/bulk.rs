//! Bulk writing (`ostwerk seed` at city scale): many rows of one entity per
//! round trip, without the per-batch cost of the ORM's `insert_many`.
//!
//! The rows are the same [`ActiveModelTrait`] values the rest of the code
//! writes, so the seeder keeps one notion of what a row holds; only the way
//! they reach the database differs per backend:
//! - PostgreSQL: `COPY … FROM STDIN` (text format) inside the caller's
//!   transaction: no SQL text per batch to build, send, parse and plan, only
//!   the values. 100 000 clients + 1 000 000 referrals took 215 s with
//!   1 000-row `INSERT`s through the ORM and 89 s with `COPY` on the same
//!   single connection (docs/BENCHMARKS.md).
//! - SQLite: multi-row `INSERT`s whose SQL text depends only on the table
//!   and the number of rows, so the driver's statement cache prepares each
//!   shape once and the batches only bind values.
//!
//! Both keep the caller's transaction boundaries: what is consistent after
//! a commit with `insert_many` is consistent after a commit here.
use std::fmt::Write as _;

use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, EntityName,
    EntityTrait, IdenStatic, Iterable, RuntimeErr, Statement, StatementBuilder, TransactionTrait, Value,
    sea_query::{PostgresQueryBuilder, QueryStatementWriter},
    sqlx,
};

/// Bind parameters per SQLite statement: below the 32 766 SQLite allows.
const SQLITE_MAX_PARAMS: usize = 30_000;
/// Rows per SQLite statement at most (as the ORM path wrote them; not tuned).
const SQLITE_MAX_ROWS: usize = 1_000;
/// Bytes of `COPY` data per `CopyData` message to the server (messages need
/// not end at a row boundary).
const COPY_CHUNK: usize = 1 << 20;

/// SQLite page cache for a bulk load, in KiB (`PRAGMA cache_size` takes
/// negative numbers as KiB). The default 2 MiB holds almost nothing of the
/// indexes on `referrals` and `referral_events`, so a load of 10⁶ rows
/// keeps re-reading index pages from the OS (139 s against 72–86 s with
/// 256 MiB, docs/BENCHMARKS.md). Only the cache: synchronous commits,
/// the journal and secure deletion stay as they are.
const SQLITE_BULK_CACHE_KIB: i64 = 256 * 1024;

/// Prepares the connection for a bulk load; returns what [`end_load`]
/// restores. On SQLite the page cache of the (one) connection grows for the
/// load; PostgreSQL needs nothing.
pub async fn begin_load(db: &DatabaseConnection) -> Result<Option<i64>, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let row = db.query_one_raw(Statement::from_string(DbBackend::Sqlite, "PRAGMA cache_size")).await?;
    let before: i64 = match row {
        Some(row) => row.try_get_by_index(0)?,
        None => return Ok(None),
    };
    db.execute_unprepared(&format!("PRAGMA cache_size = -{SQLITE_BULK_CACHE_KIB}")).await?;
    Ok(Some(before))
}

/// Restores what [`begin_load`] changed (also after a failed load).
pub async fn end_load(db: &DatabaseConnection, before: Option<i64>) -> Result<(), DbErr> {
    if let Some(before) = before {
        db.execute_unprepared(&format!("PRAGMA cache_size = {before}")).await?;
    }
    Ok(())
}

/// A transaction for bulk writes.
pub enum BulkTxn {
    /// sqlx's own transaction: `COPY` needs the driver's connection, which a
    /// sea-orm transaction does not hand out.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(DatabaseTransaction),
}

fn sqlx_err(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(err.into()))
}

impl BulkTxn {
    pub async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        match db.get_database_backend() {
            DbBackend::Postgres => {
                Ok(Self::Postgres(db.get_postgres_connection_pool().begin().await.map_err(sqlx_err)?))
            }
            _ => Ok(Self::Sqlite(db.begin().await?)),
        }
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        match self {
            Self::Postgres(txn) => txn.commit().await.map_err(sqlx_err),
            Self::Sqlite(txn) => txn.commit().await,
        }
    }

    /// Runs one statement (e.g. the counter update of a batch). On
    /// PostgreSQL the values are inlined by sea-query (escaped as literals):
    /// the statement runs on sqlx's connection, which takes no sea-query
    /// values.
    pub async fn execute<S: QueryStatementWriter + StatementBuilder>(&mut self, stmt: &S) -> Result<(), DbErr> {
        match self {
            Self::Postgres(txn) => {
                let sql = stmt.to_string(PostgresQueryBuilder);
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut **txn).await.map_err(sqlx_err)?;
            }
            Self::Sqlite(txn) => {
                txn.execute(stmt).await?;
            }
        }
        Ok(())
    }

    /// Inserts `rows` (each with the same columns set, as `insert_many`
    /// requires too). No `RETURNING`: the caller made the ids.
    pub async fn insert<A: ActiveModelTrait>(&mut self, rows: &[A]) -> Result<(), DbErr> {
        let Some(first) = rows.first() else { return Ok(()) };
        let columns: Vec<<A::Entity as EntityTrait>::Column> =
            <A::Entity as EntityTrait>::Column::iter().filter(|c| first.get(*c).is_set()).collect();
        let table = A::Entity::default().table_name().to_owned();
        let names: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.as_str())).collect();
        let values = |row: &A| -> Result<Vec<Value>, DbErr> {
            columns
                .iter()
                .map(|c| {
                    row.get(*c).into_value().ok_or_else(|| {
                        DbErr::Custom(format!("bulk insert into {table}: column {} not set in every row", c.as_str()))
                    })
                })
                .collect()
        };
        match self {
            Self::Postgres(txn) => {
                // The whole batch as text first (a few MB at most): a value
                // that cannot be written then fails before `COPY` starts,
                // not halfway through it.
                let mut data = String::with_capacity(rows.len() * 64 * columns.len());
                for row in rows {
                    for (i, value) in values(row)?.iter().enumerate() {
                        if i > 0 {
                            data.push('\t');
                        }
                        copy_text(&mut data, value)?;
                    }
                    data.push('\n');
                }
                let mut copy = txn
                    .copy_in_raw(&format!("COPY \"{table}\" ({}) FROM STDIN", names.join(", ")))
                    .await
                    .map_err(sqlx_err)?;
                for chunk in data.as_bytes().chunks(COPY_CHUNK) {
                    copy.send(chunk).await.map_err(sqlx_err)?;
                }
                copy.finish().await.map_err(sqlx_err)?;
            }
            Self::Sqlite(txn) => {
                let per_statement = (SQLITE_MAX_PARAMS / columns.len().max(1)).clamp(1, SQLITE_MAX_ROWS);
                let one_row = format!("({})", vec!["?"; columns.len()].join(", "));
                let head = format!("INSERT INTO \"{table}\" ({}) VALUES ", names.join(", "));
                for chunk in rows.chunks(per_statement) {
                    let sql = format!("{head}{}", vec![one_row.as_str(); chunk.len()].join(", "));
                    let mut all = Vec::with_capacity(chunk.len() * columns.len());
                    for row in chunk {
                        all.extend(values(row)?);
                    }
                    txn.execute_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, all)).await?;
                }
            }
        }
        Ok(())
    }
}

/// One value in `COPY`'s text format: `\N` for NULL, backslash escapes for
/// the characters the format reserves. Timestamps with microseconds and an
/// explicit UTC offset, as sqlx binds them (PostgreSQL keeps microseconds).
fn copy_text(buf: &mut String, value: &Value) -> Result<(), DbErr> {
    let written = match value {
        Value::Bool(Some(v)) => {
            buf.push(if *v { 't' } else { 'f' });
            Ok(())
        }
        Value::SmallInt(Some(v)) => write!(buf, "{v}"),
        Value::Int(Some(v)) => write!(buf, "{v}"),
        Value::BigInt(Some(v)) => write!(buf, "{v}"),
        Value::Uuid(Some(v)) => write!(buf, "{}", v.hyphenated()),
        Value::ChronoDate(Some(v)) => write!(buf, "{}", v.format("%Y-%m-%d")),
        Value::ChronoDateTimeUtc(Some(v)) => {
            buf.push_str(&v.to_rfc3339_opts(chrono::SecondsFormat::Micros, false));
            Ok(())
        }
        Value::String(Some(s)) => {
            escape(buf, s);
            Ok(())
        }
        Value::Json(Some(json)) => {
            escape(buf, &serde_json::to_string(json).map_err(|e| DbErr::Custom(e.to_string()))?);
            Ok(())
        }
        Value::Bool(None)
        | Value::SmallInt(None)
        | Value::Int(None)
        | Value::BigInt(None)
        | Value::Uuid(None)
        | Value::ChronoDate(None)
        | Value::ChronoDateTimeUtc(None)
        | Value::String(None)
        | Value::Json(None) => {
            buf.push_str("\\N");
            Ok(())
        }
        other => return Err(DbErr::Custom(format!("bulk insert: no COPY text for {other:?}"))),
    };
    written.map_err(|e| DbErr::Custom(format!("bulk insert: {e}")))
}

fn escape(buf: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '\\' => buf.push_str("\\\\"),
            '\t' => buf.push_str("\\t"),
            '\n' => buf.push_str("\\n"),
            '\r' => buf.push_str("\\r"),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_the_format_reserves_and_writes_null_as_backslash_n() {
        let mut buf = String::new();
        copy_text(&mut buf, &Value::String(Some("a\tb\\c\nd\re".into()))).unwrap();
        buf.push('|');
        copy_text(&mut buf, &Value::String(None)).unwrap();
        buf.push('|');
        copy_text(&mut buf, &Value::Json(Some(Box::new(serde_json::json!({"s": "x\ty"}))))).unwrap();
        assert_eq!(buf, "a\\tb\\\\c\\nd\\re|\\N|{\"s\":\"x\\\\ty\"}");
    }
}
