//! Database connection: one code path for SQLite and PostgreSQL.
use std::time::Duration;

use anyhow::{Context, bail};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement};

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
    options
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_millis(settings.db_acquire_timeout_ms.max(1)))
        .sqlx_logging(false);
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
        let (statement_ms, lock_ms) = (settings.db_statement_timeout_ms, settings.db_lock_timeout_ms);
        let plain = loopback_without_sslmode(&url);
        options
            .max_connections(settings.db_max_connections.max(2))
            .min_connections(1)
            // A restarted database leaves dead connections in the pool; test
            // them when they have been idle so `/readyz` recovers on its own.
            // Only idle ones: a ping on every acquire is a round trip per
            // request (sqlx also tests each connection when it is released,
            // so one broken mid-request never goes back into the pool).
            .test_before_acquire_if_idle_for(Duration::from_secs(1))
            .map_sqlx_postgres_opts(move |opts| {
                let opts = opts.options(session_timeouts(statement_ms, lock_ms));
                if plain { opts.ssl_mode(sea_orm::sqlx::postgres::PgSslMode::Disable) } else { opts }
            });
    }
    Database::connect(options).await
}

/// `statement_timeout` and `lock_timeout` as startup parameters of every
/// connection (so a pooled connection can never lack them, which a `SET`
/// after connect could if it failed). A request stuck behind a lock fails
/// fast with `55P03` instead of hanging its caller; `0` leaves PostgreSQL's
/// default (no limit).
pub(crate) fn session_timeouts(statement_ms: u64, lock_ms: u64) -> Vec<(&'static str, String)> {
    let mut params = Vec::new();
    if statement_ms > 0 {
        params.push(("statement_timeout", statement_ms.to_string()));
    }
    if lock_ms > 0 {
        params.push(("lock_timeout", lock_ms.to_string()));
    }
    params
}

/// Whether `url` names a loopback host and no `sslmode`. Such a connection
/// is plain (no TLS), where libpq's default would be `prefer`: the traffic
/// never leaves the host's kernel, and whoever can read it can read the
/// database's files too, so TLS there protects nothing and costs CPU on
/// both ends of every query. An explicit `sslmode` always wins, and every
/// other host keeps `prefer`.
pub fn loopback_without_sslmode(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    sslmode(&parsed).is_none() && loopback(&parsed)
}

/// Whether connections to the PostgreSQL `url` are plain: `sslmode=disable`,
/// or [`loopback_without_sslmode`].
pub fn plain_connection(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    match sslmode(&parsed) {
        Some(mode) => mode == "disable",
        None => loopback(&parsed),
    }
}

/// The `sslmode` of a database URL (sqlx also reads `ssl-mode`).
fn sslmode(url: &url::Url) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == "sslmode" || k == "ssl-mode").map(|(_, v)| v.into_owned())
}

fn loopback(url: &url::Url) -> bool {
    match url.host() {
        // `postgres:` is not a special scheme: the URL crate leaves its
        // IPv4 hosts as names.
        Some(url::Host::Domain(d)) => {
            d == "localhost" || d.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The key of the advisory lock held while migrating (any fixed 64-bit
/// number; this one spells "ostwerk" in ASCII).
const MIGRATION_LOCK: i64 = 0x006f_7374_7765_726b;

/// Applies pending migrations. On PostgreSQL several instances may start at
/// once on an empty database; without a lock two of them create the same
/// table and one fails (`duplicate key … pg_type_typname_nsp_index`). So
/// the migrations run on one dedicated connection that holds a session
/// advisory lock: the others wait, then find nothing left to do. SQLite
/// serialises writers itself and is for one instance anyway.
pub async fn migrate(pool: &DatabaseConnection, settings: &Settings) -> anyhow::Result<()> {
    if pool.get_database_backend() != DbBackend::Postgres {
        // Migrate on the pool itself: `sqlite::memory:` lives in its one connection.
        return migrate_on(pool).await;
    }
    let db = connect_single(settings).await?;
    let result = migrate_on(&db).await;
    // Closing the connection also releases the lock should unlocking fail.
    drop(db.close().await);
    result
}

async fn migrate_on(db: &DatabaseConnection) -> anyhow::Result<()> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    if postgres {
        db.execute_unprepared(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .await
            .context("cannot take the migration lock")?;
    }
    let result = async {
        refuse_newer_schema(db).await?;
        Migrator::up(db, None).await.context("database migration failed")
    }
    .await;
    if postgres {
        db.execute_unprepared(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})")).await?;
    }
    result
}

/// A PostgreSQL pool of exactly one connection, so that the advisory lock
/// (held by a session) and the migrations run on the same connection.
async fn connect_single(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(settings.database_url.clone());
    // Other instances may hold the lock while they migrate: wait for the
    // connection generously; no statement or lock timeout for migrations,
    // which may rewrite big tables.
    options
        .max_connections(1)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(60))
        .sqlx_logging(false);
    Database::connect(options).await
}

/// With migrations off (`--no-migrate`), the schema must already be the one
/// this binary expects: refuses when migrations are pending (and when the
/// database is newer than the binary).
pub async fn check_schema(db: &DatabaseConnection) -> anyhow::Result<()> {
    refuse_newer_schema(db).await?;
    let applied = applied_migrations(db).await?;
    let pending: Vec<String> =
        Migrator::migrations().iter().map(|m| m.name().to_owned()).filter(|n| !applied.contains(n)).collect();
    if let Some(first) = pending.first() {
        bail!(
            "the database schema is behind this binary: {} migration(s) pending (first: {first}); \
             run `ostwerk migrate` as the schema owner, or start without --no-migrate",
            pending.len()
        );
    }
    Ok(())
}

/// An older binary on a newer schema (a rollback without restoring the
/// backup) refuses to start instead of running on tables it does not know.
async fn refuse_newer_schema(db: &DatabaseConnection) -> anyhow::Result<()> {
    let known: Vec<String> = Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
    let unknown: Vec<String> = applied_migrations(db).await?.into_iter().filter(|a| !known.contains(a)).collect();
    if let Some(newest) = unknown.iter().max() {
        bail!(
            "the database schema is newer than this binary (it has migration {newest}, which this version does not know); \
             run the newer release, or restore the backup taken before the upgrade (migrations are forward-only)"
        );
    }
    Ok(())
}

/// Versions recorded in `seaql_migrations` (none when the table is missing).
async fn applied_migrations(db: &DatabaseConnection) -> anyhow::Result<Vec<String>> {
    let exists_sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT 1 AS x FROM information_schema.tables WHERE table_name = 'seaql_migrations' AND table_schema = current_schema()"
        }
        _ => "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'seaql_migrations'",
    };
    if db.query_one_raw(Statement::from_string(db.get_database_backend(), exists_sql)).await?.is_none() {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), "SELECT version FROM seaql_migrations"))
        .await?;
    rows.iter().map(|r| r.try_get::<String>("", "version").map_err(anyhow::Error::from)).collect()
}

/// Errors that mean "too much load right now, retry shortly" (→ `503` busy):
/// no free pooled connection within the acquire timeout, a lock not granted
/// within `lock_timeout` (`55P03`), a statement cancelled by
/// `statement_timeout` (`57014`).
/// Why a request is answered `503 busy`, as a metric label.
pub fn busy_cause(err: &DbErr) -> Option<&'static str> {
    use sea_orm::sqlx::Error;
    match err {
        DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout) => Some("acquire_timeout"),
        DbErr::Query(RuntimeErr::Internal(m)) => match m.strip_prefix(HOT_SQLSTATE).map(|c| c.get(..5)) {
            Some(Some("55P03")) => Some("lock_timeout"),
            Some(Some("57014")) => Some("statement_timeout"),
            _ => None,
        },
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => match &**e {
            Error::PoolTimedOut => Some("acquire_timeout"),
            Error::Database(db) => match db.code().as_deref() {
                Some("55P03") => Some("lock_timeout"),
                Some("57014") => Some("statement_timeout"),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
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
        DbErr::Query(RuntimeErr::Internal(m)) => {
            m.strip_prefix(HOT_SQLSTATE).is_some_and(|c| c.starts_with("57P") || c.starts_with("08"))
        }
        _ => false,
    }
}

/// How the hot path ([`crate::repository::hot_pg`]) spells a PostgreSQL
/// error: this prefix, the SQLSTATE, the message.
pub(crate) const HOT_SQLSTATE: &str = "SQLSTATE ";

/// `SELECT 1` — what `/readyz` asks.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Pool figures for `/metrics`: (open connections, idle connections, maximum).
pub fn pool_figures(db: &DatabaseConnection) -> (u32, usize, u32) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle(), pool.options().get_max_connections())
        }
        _ => (0, 0, 0),
    }
}

/// How long taking a connection from the pool takes right now (the
/// connection goes straight back).
pub async fn acquire_wait(db: &DatabaseConnection) -> Option<Duration> {
    let started = std::time::Instant::now();
    let acquired = match db.get_database_backend() {
        DbBackend::Postgres => db.get_postgres_connection_pool().acquire().await.is_ok(),
        DbBackend::Sqlite => db.get_sqlite_connection_pool().acquire().await.is_ok(),
        _ => false,
    };
    acquired.then(|| started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_without_sslmode_is_plain_everything_else_keeps_its_tls() {
        for url in ["postgres://u:p@127.0.0.1:5432/db", "postgres://u@localhost/db", "postgres://u@[::1]:5432/db"] {
            assert!(loopback_without_sslmode(url), "{url}");
            assert!(plain_connection(url), "{url}");
        }
        for url in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@db.example.org/db",
            "postgres://u@10.0.0.5/db",
            "sqlite::memory:",
        ] {
            assert!(!loopback_without_sslmode(url), "{url}");
            assert!(!plain_connection(url), "{url}");
        }
        assert!(plain_connection("postgres://u@db.example.org/db?sslmode=disable"));
        assert!(!plain_connection("postgres://u@127.0.0.1/db?sslmode=prefer"));
    }

    #[test]
    fn hot_path_sqlstates_are_classified_like_sqlx_ones() {
        let hot = |code: &str| DbErr::Query(RuntimeErr::Internal(format!("{HOT_SQLSTATE}{code} db error")));
        assert_eq!(busy_cause(&hot("55P03")), Some("lock_timeout"));
        assert_eq!(busy_cause(&hot("57014")), Some("statement_timeout"));
        assert_eq!(busy_cause(&hot("23505")), None);
        assert!(is_unavailable(&hot("57P01")));
        assert!(!is_unavailable(&hot("23505")));
    }
}
