//! Database connection: one code path for SQLite and PostgreSQL.
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr};

use crate::config::Settings;

/// Opens the pool. SQLite gets WAL, a busy timeout, foreign keys and exactly
/// one connection: SQLite allows one writer at a time anyway, and a single
/// connection makes every transaction serialisable without `SQLITE_BUSY`
/// upgrade deadlocks (the alternative, a pool plus `BEGIN IMMEDIATE`
/// everywhere, was rejected as easy to get wrong). `sqlite::memory:` must keep
/// its one connection forever or the database vanishes.
pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    let url = settings.database_url.clone();
    let mut options = ConnectOptions::new(url.clone());
    options.connect_timeout(Duration::from_secs(5)).acquire_timeout(Duration::from_secs(5)).sqlx_logging(false);
    if settings.is_sqlite() {
        options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .map_sqlx_sqlite_opts(|opts| {
                opts.foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    // FULL: a committed audit event survives a power cut too.
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                    // Erased personal data is overwritten on disk, not just unlinked.
                    .pragma("secure_delete", "ON")
                    .create_if_missing(true)
            });
    } else {
        options
            .max_connections(settings.db_max_connections.max(2))
            .min_connections(1)
            // A restarted database leaves dead connections in the pool; test
            // them when they have been idle so `/readyz` recovers on its own.
            .test_before_acquire(true);
    }
    Database::connect(options).await
}

/// Errors that mean "the database is not reachable right now" (→ `503`).
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            use sea_orm::sqlx::Error;
            matches!(**e, Error::Io(_) | Error::PoolTimedOut | Error::PoolClosed | Error::Tls(_) | Error::Protocol(_))
                || matches!(&**e, Error::Database(db) if db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
        }
        _ => false,
    }
}

/// `SELECT 1` — what `/readyz` asks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Pool figures for `/metrics`: (open connections, idle connections).
pub fn pool_figures(db: &DatabaseConnection) -> (u32, usize) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    }
}
