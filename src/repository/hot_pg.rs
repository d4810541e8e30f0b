//! The PostgreSQL hot path (issue 8): the audited client read and the
//! group-committed audit writer on `tokio-postgres` with prepared
//! statements, beside the sea-orm pool that serves everything else.
//!
//! Why a second pool: profiling `GET /clients/{id}` showed most of its
//! time in the generic path, not in the work. sqlx pings every connection
//! when it goes back to the pool (one more round trip per request, not
//! configurable), and the ORM's statement building and row decoding cost
//! more than the query. Here a connection goes back unchecked
//! (`RecyclingMethod::Fast`: a connection whose socket broke is dropped,
//! a live one is reused at once), each statement is prepared once per
//! connection, and rows are decoded straight into the entity models, so
//! the answers are the same types the rest of the service uses.
//!
//! The hot path exists only where its connection is as safe as the main
//! pool's: on a plain connection, i.e. `sslmode=disable` in
//! `DATABASE_URL`, or no `sslmode` and a loopback host (see
//! [`crate::db::plain_connection`]). With TLS to a remote database, reads take
//! the sea-orm path (same answers, same audit, slower).
//!
//! Each thread has its own pool ([`HotPg::pool`]): a connection's I/O task
//! runs on the runtime that opened it, so with one shared pool a request on
//! one HTTP worker would wake another worker's thread for every statement
//! (two cross-thread wake-ups per round trip). With a pool per worker the
//! request, its statement and the connection's socket stay on one thread.
use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use sea_orm::{DbErr, RuntimeErr, error::ConnAcquireErr};
use thread_local::ThreadLocal;
use tokio_postgres::{NoTls, Row, config::SslMode};
use uuid::Uuid;

use super::clients::{ClientScope, org_visible_sql};
use crate::{
    config::Settings,
    entities::{audit_event, client},
};

/// The hot path (cheap to clone): how to open its connections; the pools
/// themselves are per thread ([`HotPg::pool`]).
#[derive(Clone)]
pub struct HotPg {
    setup: Arc<Setup>,
}

struct Setup {
    /// Each thread's pool (see [`HotPg::pool`]).
    pools: ThreadLocal<Pool>,
    config: tokio_postgres::Config,
    /// Connections per thread: half of `OSTWERK_DB_MAX_CONNECTIONS`, shared
    /// among the HTTP workers, at least 2 each.
    per_thread: usize,
    wait: Duration,
}

/// Every column of `clients`, in the order [`client_from_row`] reads them.
const CLIENT_COLUMNS: &str = "c.id, c.external_id, c.created_by_org, c.first_name, c.last_name, c.date_of_birth, \
     c.email, c.phone, c.address, c.district, c.target_groups, c.education_level, c.occupation_codes, c.languages, \
     c.available_from, c.hours_per_week, c.consent, c.status, c.record_key, c.erased_at, c.created_at, \
     c.updated_at, c.version";

/// The rows of one audit batch as column arrays: one prepared statement
/// for any batch size (a multi-row `VALUES` list would be a new statement,
/// parsed and planned, per size).
const INSERT_AUDIT: &str = "INSERT INTO audit_events \
     (id, at, actor, actor_org, action, resource, resource_id, client_id, request_id, client_request_id) \
     SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], \
     $7::uuid[], $8::uuid[], $9::text[], $10::text[])";

impl HotPg {
    /// The hot path for `settings`, or `None` on SQLite, with TLS, or for a
    /// URL `tokio-postgres` cannot read (logged; the service still works on
    /// the main pool). Connects lazily: the first request opens a connection.
    pub fn new(settings: &Settings) -> Option<Self> {
        if settings.is_sqlite() {
            return None;
        }
        if !crate::db::plain_connection(&settings.database_url) {
            tracing::info!("PostgreSQL over TLS: client reads use the main pool (no hot path)");
            return None;
        }
        let mut config: tokio_postgres::Config = match settings.database_url.parse() {
            Ok(config) => config,
            Err(e) => {
                tracing::warn!(error = %e, "DATABASE_URL is not understood by the hot path: client reads use the main pool");
                return None;
            }
        };
        config.ssl_mode(SslMode::Disable).connect_timeout(Duration::from_secs(5)).application_name("ostwerk-hot");
        let options = crate::db::session_timeouts(settings.db_statement_timeout_ms, settings.db_lock_timeout_ms)
            .into_iter()
            .map(|(name, value)| format!("-c {name}={value}"))
            .collect::<Vec<_>>()
            .join(" ");
        if !options.is_empty() {
            config.options(&options);
        }
        let threads = match settings.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // Half: a statement here is short and PostgreSQL has the cores it
        // has. More backends than that only take turns on them (and commit
        // smaller audit batches): with 2 cores, 4 connections per worker served
        // ~25 % more reads than 8, and 16 fewer still (docs/BENCHMARKS.md).
        let per_thread = (settings.db_max_connections as usize / 2).div_ceil(threads).max(2);
        let wait = Duration::from_millis(settings.db_acquire_timeout_ms.max(1));
        let setup = Setup { pools: ThreadLocal::new(), config, per_thread, wait };
        // Built once here so that a configuration deadpool rejects turns the
        // hot path off at start, not in a request.
        match setup.build() {
            Ok(_) => Some(Self { setup: Arc::new(setup) }),
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the hot-path pool: client reads use the main pool");
                None
            }
        }
    }

    /// This thread's pool, built on first use. Its connections are opened
    /// on the calling thread's runtime and keep their I/O there; an HTTP
    /// worker is one thread, so its requests and their statements never
    /// wake another thread.
    fn pool(&self) -> Result<&Pool, DbErr> {
        self.setup
            .pools
            .get_or_try(|| self.setup.build())
            .map_err(|e| DbErr::Conn(RuntimeErr::Internal(format!("hot path: {e}"))))
    }

    /// A connection of this thread's pool.
    async fn conn(&self) -> Result<deadpool_postgres::Object, DbErr> {
        self.pool()?.get().await.map_err(pool_error)
    }

    /// The client `id` if `scope` sees it (no audit: the caller audits).
    pub async fn find_client(&self, scope: &ClientScope, id: Uuid) -> Result<Option<client::Model>, DbErr> {
        let conn = self.conn().await?;
        let row = match scope {
            ClientScope::All => {
                static SQL: LazyLock<String> =
                    LazyLock::new(|| format!("SELECT {CLIENT_COLUMNS} FROM clients c WHERE c.id = $1"));
                let stmt = conn.prepare_cached(&SQL).await.map_err(query_error)?;
                conn.query_opt(&stmt, &[&id]).await
            }
            ClientScope::Org(org) => {
                static SQL: LazyLock<String> = LazyLock::new(|| {
                    format!("SELECT {CLIENT_COLUMNS} FROM clients c WHERE c.id = $1{}", org_visible_sql("$2"))
                });
                let stmt = conn.prepare_cached(&SQL).await.map_err(query_error)?;
                conn.query_opt(&stmt, &[&id, org]).await
            }
        }
        .map_err(query_error)?;
        row.map(|r| client_from_row(&r)).transpose().map_err(query_error)
    }

    /// Writes `rows` in one statement (its own transaction, committed when it returns).
    pub async fn insert_audit(&self, rows: &[audit_event::Model]) -> Result<(), DbErr> {
        let conn = self.conn().await?;
        let stmt = conn.prepare_cached(INSERT_AUDIT).await.map_err(query_error)?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let at: Vec<_> = rows.iter().map(|r| r.at).collect();
        let actor: Vec<&str> = rows.iter().map(|r| r.actor.as_str()).collect();
        let actor_org: Vec<Option<&str>> = rows.iter().map(|r| r.actor_org.as_deref()).collect();
        let action: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
        let resource: Vec<&str> = rows.iter().map(|r| r.resource.as_str()).collect();
        let resource_id: Vec<Option<Uuid>> = rows.iter().map(|r| r.resource_id).collect();
        let client_id: Vec<Option<Uuid>> = rows.iter().map(|r| r.client_id).collect();
        let request_id: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
        let client_request_id: Vec<Option<&str>> = rows.iter().map(|r| r.client_request_id.as_deref()).collect();
        conn.execute(
            &stmt,
            &[
                &ids,
                &at,
                &actor,
                &actor_org,
                &action,
                &resource,
                &resource_id,
                &client_id,
                &request_id,
                &client_request_id,
            ],
        )
        .await
        .map(|_| ())
        .map_err(query_error)
    }
}

impl Setup {
    fn build(&self) -> Result<Pool, deadpool_postgres::BuildError> {
        let manager =
            Manager::from_config(self.config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        Pool::builder(manager)
            .max_size(self.per_thread)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(self.wait))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
    }
}

fn client_from_row(r: &Row) -> Result<client::Model, tokio_postgres::Error> {
    Ok(client::Model {
        id: r.try_get(0)?,
        external_id: r.try_get(1)?,
        created_by_org: r.try_get(2)?,
        first_name: r.try_get(3)?,
        last_name: r.try_get(4)?,
        date_of_birth: r.try_get(5)?,
        email: r.try_get(6)?,
        phone: r.try_get(7)?,
        address: r.try_get(8)?,
        district: r.try_get(9)?,
        target_groups: r.try_get(10)?,
        education_level: r.try_get(11)?,
        occupation_codes: r.try_get(12)?,
        languages: r.try_get(13)?,
        available_from: r.try_get(14)?,
        hours_per_week: r.try_get(15)?,
        consent: r.try_get(16)?,
        status: r.try_get(17)?,
        record_key: r.try_get(18)?,
        erased_at: r.try_get(19)?,
        created_at: r.try_get(20)?,
        updated_at: r.try_get(21)?,
        version: r.try_get(22)?,
    })
}

/// No connection within the acquire timeout, or none can be opened: the
/// same errors the main pool gives, so they become the same `503`s.
fn pool_error(e: PoolError) -> DbErr {
    match e {
        PoolError::Timeout(_) => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        other => DbErr::Conn(RuntimeErr::Internal(format!("hot path: {other}"))),
    }
}

/// A failed statement. A broken connection is "unavailable" (`503`); a
/// PostgreSQL error keeps its SQLSTATE in front ([`crate::db::HOT_SQLSTATE`]),
/// so lock and statement timeouts are classified as on the main pool.
fn query_error(e: tokio_postgres::Error) -> DbErr {
    use std::error::Error as _;
    if let Some(code) = e.code() {
        return DbErr::Query(RuntimeErr::Internal(format!("{}{} {e}", crate::db::HOT_SQLSTATE, code.code())));
    }
    let io = e.source().is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        DbErr::Conn(RuntimeErr::Internal(format!("hot path: {e}")))
    } else {
        // A row that does not decode into the model: a defect, a `500`.
        DbErr::Query(RuntimeErr::Internal(format!("hot path: {e}")))
    }
}
