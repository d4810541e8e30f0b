//! Building the application from settings: database, keys, routes, server.
//!
//! The listener is bound before the server starts, so tests run on port 0
//! and ask for the port afterwards (zero-to-production's pattern).
use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_cors::Cors;
use actix_web::{
    App, HttpResponse, HttpServer,
    dev::Server,
    http::header,
    middleware::{Compress, from_fn},
    web,
};
use anyhow::Context;
use base64::Engine;
use rand::RngCore;
use sea_orm::DatabaseConnection;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    auth::Authenticator,
    config::Settings,
    db, extract,
    http::{
        fallback,
        heavy::{HeavyGate, ResponseCache},
        metrics, preconditions,
        rate_limit::{AnonymousRateLimit, RateLimit, limit_anonymous},
        request_context::request_context,
    },
    openapi::{self, ApiDoc},
    repository::{self, audit_writer::AuditWriter},
    routes,
    service::cursor::CursorCodec,
};

/// Shared by every request.
pub struct AppState {
    pub db: DatabaseConnection,
    pub auth: Authenticator,
    pub cursors: CursorCodec,
    pub rate_limit: RateLimit,
    pub anon_rate_limit: AnonymousRateLimit,
    pub heavy: HeavyGate,
    pub stats_cache: ResponseCache,
    /// Group commit of the audit events of reads.
    pub audit_writer: AuditWriter,
    /// The PostgreSQL hot path of client reads (none on SQLite or with TLS).
    pub hot_pg: Option<repository::hot_pg::HotPg>,
    pub settings: Settings,
}

/// rustls needs one process-wide crypto provider before any TLS client
/// (reqwest for JWKS) is built; installing twice is harmless.
pub fn install_crypto_provider() {
    drop(rustls::crypto::ring::default_provider().install_default());
}

pub struct Application {
    port: u16,
    server: Server,
    metrics_server: Option<(Server, u16)>,
    state: web::Data<AppState>,
}

impl Application {
    /// Connects, migrates, loads keys and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        install_crypto_provider();
        metrics::handle();
        let auth = Authenticator::new(&settings, None)?;
        if !auth.has_keys() {
            anyhow::bail!(
                "no token key configured: set OSTWERK_JWT_SECRET and/or OSTWERK_JWT_JWKS_URL or OSTWERK_OIDC_ISSUER"
            );
        }
        let db = db::connect(&settings).await.with_context(|| {
            format!("cannot open the database {}", crate::config::redact_url(&settings.database_url))
        })?;
        if settings.migrate {
            db::migrate(&db, &settings).await?;
        } else {
            db::check_schema(&db).await?;
        }
        // After an upgrade that added the demand aggregate, or a bulk seed, it
        // is marked stale: rebuild it before serving (≈ 20 s at 10⁵ clients /
        // 10⁶ referrals), not in the first statistics request, where its locks
        // would make concurrent referral writes wait past their lock timeout.
        repository::demand::ensure_fresh(&db).await.context("cannot rebuild the demand statistics aggregate")?;
        let cursor_key = repository::server_keys::get_or_create(&db, "cursor_hmac", random_key).await?;
        auth.warm_up().await;

        let listener =
            TcpListener::bind(settings.addr).with_context(|| format!("cannot listen on {}", settings.addr))?;
        let port = listener.local_addr()?.port();
        let hot_pg = repository::hot_pg::HotPg::new(&settings);
        let audit_writer = AuditWriter::start(db.clone(), hot_pg.clone(), settings.audit_writers);
        let state = web::Data::new(AppState {
            db,
            hot_pg,
            audit_writer,
            auth,
            cursors: CursorCodec::new(cursor_key.as_bytes()),
            rate_limit: RateLimit::per_minute(settings.rate_limit),
            anon_rate_limit: AnonymousRateLimit::per_minute(settings.rate_limit_anon),
            heavy: HeavyGate::new(settings.heavy_concurrency),
            stats_cache: ResponseCache::new(Duration::from_secs(settings.stats_cache_secs)),
            settings: settings.clone(),
        });
        let server = serve(listener, state.clone(), &settings)?;
        let metrics_server = match settings.metrics_addr {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} (OSTWERK_METRICS_ADDR)"))?;
                let metrics_port = listener.local_addr()?.port();
                Some((serve_metrics(listener, state.clone())?, metrics_port))
            }
            None => None,
        };
        Ok(Self { port, server, metrics_server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics server (`OSTWERK_METRICS_ADDR`), if any.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(_, port)| *port)
    }

    /// The application's database pool (tests use it to hold connections and locks).
    pub fn db(&self) -> DatabaseConnection {
        self.state.db.clone()
    }

    /// Runs until SIGTERM or SIGINT. Both drain alike: stop accepting, give
    /// in-flight requests the shutdown timeout to finish. (actix's own
    /// handler stops at once on SIGINT, cutting requests; Ctrl-C in a
    /// terminal and `kill -INT` from a supervisor deserve the same drain.)
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let housekeeping = tokio::spawn(housekeeping(self.state.clone()));
        let expiry = tokio::spawn(expire_referrals(self.state.clone()));
        let compaction = tokio::spawn(compact_statistics(self.state.clone()));
        let webhooks = tokio::spawn(deliver_webhooks(self.state.clone()));
        let leases = tokio::spawn(crate::service::idempotency::renew_leases(self.state.db.clone()));
        let handle = self.server.handle();
        let metrics_handle = self.metrics_server.as_ref().map(|(server, _)| server.handle());
        let signals = tokio::spawn(async move {
            let signal = stop_signal().await;
            tracing::info!(signal, "draining: no new connections, in-flight requests may finish");
            if let Some(metrics) = metrics_handle {
                metrics.stop(true).await;
            }
            handle.stop(true).await;
        });
        let metrics = self.metrics_server.map(|(server, _)| tokio::spawn(server));
        let result = self.server.await;
        let aborted = crate::http::request_context::in_flight();
        if aborted > 0 {
            tracing::warn!(aborted, "shutdown timeout reached: requests still running were aborted");
        }
        signals.abort();
        leases.abort();
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        housekeeping.abort();
        expiry.abort();
        compaction.abort();
        webhooks.abort();
        result
    }
}

/// Waits for SIGTERM or SIGINT (Ctrl-C) and names it.
async fn stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                tracing::error!("cannot install signal handlers; stop with SIGKILL");
                std::future::pending().await
            }
        }
    }
    #[cfg(not(unix))]
    {
        drop(tokio::signal::ctrl_c().await);
        "Ctrl-C"
    }
}

/// A fresh random key, base64 (for the cursor HMAC and the dev-mode secret).
pub fn random_key() -> String {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// Hourly: forget idempotency keys past their 24 h and idle rate-limit
/// buckets, and audit events past `OSTWERK_AUDIT_RETENTION_DAYS`.
async fn housekeeping(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if state.settings.audit_retention_days > 0 {
            match crate::service::retention::purge_audit(&state.db, state.settings.audit_retention_days).await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "audit events past their retention removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "audit purge failed"),
            }
        }
        let before = crate::domain::ids::now() - chrono::Duration::hours(crate::service::idempotency::RETENTION_HOURS);
        match repository::idempotency::purge_older_than(&state.db, before).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
        }
        state.rate_limit.housekeeping();
        state.anon_rate_limit.housekeeping();
        state.stats_cache.housekeeping();
    }
}

/// Every few minutes: expire unanswered referrals (SPEC: after
/// `OSTWERK_REFERRAL_EXPIRY_DAYS`). Safe with several instances.
async fn expire_referrals(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.settings.expiry_interval_secs.max(1)));
    loop {
        tick.tick().await;
        let outcome = crate::service::referrals::expire_due(&state.db, state.settings.referral_expiry_days).await;
        metrics::record_job_run("expiry", outcome.is_ok());
        match outcome {
            Ok(n) => {
                metrics::record_referrals_expired(n);
                if n > 0 {
                    tracing::info!(expired = n, "unanswered referrals expired");
                }
            }
            Err(e) => tracing::warn!(error = %e, "referral expiry failed"),
        }
    }
}

/// Every `OSTWERK_STATISTICS_COMPACT_SECS`: fold the demand statistics'
/// change log (`repository::demand::compact`), so a read sums one row per
/// cell rather than one per change. Only the cells written since the last
/// fold are rewritten; nothing when nothing was appended.
/// Safe with several instances.
async fn compact_statistics(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(state.settings.statistics_compact_secs.max(1)));
    // The log's last id after the previous fold: each fold rewrites only the
    // cells appended to since (the first one after start, every cell).
    let mut folded_up_to = None;
    loop {
        tick.tick().await;
        let outcome = repository::demand::compact(&state.db, folded_up_to).await;
        if let Ok(last) = &outcome {
            folded_up_to = *last;
        }
        metrics::record_job_run("statistics_compaction", outcome.is_ok());
        if let Err(e) = outcome {
            tracing::warn!(error = %e, "folding the demand statistics log failed");
        }
    }
}

/// The webhook outbox worker: polls, leases, and starts deliveries, which
/// run in parallel within the limits of `OSTWERK_WEBHOOK_*`.
async fn deliver_webhooks(state: web::Data<AppState>) {
    install_crypto_provider();
    let limits = crate::service::webhook_delivery::DeliveryLimits::from_settings(&state.settings);
    let deliverer = match crate::service::webhook_delivery::Deliverer::new(limits) {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(error = %e, "webhook delivery disabled: no HTTP client");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(state.settings.webhook_poll_ms.max(50)));
    loop {
        tick.tick().await;
        if let Err(e) = deliverer.deliver_due(&state.db).await {
            tracing::warn!(error = %e, "webhook delivery round failed");
        }
    }
}

/// Time from accepting a connection to a complete request head.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Open connections per worker thread.
pub const MAX_CONNECTIONS_PER_WORKER: usize = 4_096;

fn serve(listener: TcpListener, state: web::Data<AppState>, settings: &Settings) -> anyhow::Result<Server> {
    let doc = Arc::new(openapi::build());
    let table = web::Data::new(fallback::RouteTable::from_openapi(&doc));
    let query_rules = web::Data::new(crate::strict_query::QueryRules::from_openapi(&doc)?);
    let origins = settings.cors_origins();
    let workers = settings.workers;
    let server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .openapi(<ApiDoc as utoipa::OpenApi>::openapi())
            .configure(routes::all)
            .split_for_parts();
        app.app_data(state.clone())
            .app_data(table.clone())
            .app_data(query_rules.clone())
            .configure(extract::configure)
            .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", (*doc).clone()))
            .route(
                "/docs",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
                }),
            )
            .route(
                "/swagger-ui",
                web::get().to(|| async {
                    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
                }),
            )
            .default_service(web::to(fallback::not_found_or_method_not_allowed))
            .wrap(from_fn(preconditions::not_modified))
            .wrap(cors(&origins))
            .wrap(from_fn(crate::strict_query::check_query))
            .wrap(from_fn(extract::reject_nul_in_url))
            .wrap(from_fn(limit_anonymous))
            .wrap(from_fn(request_context))
            .wrap(Compress::default())
    })
    .listen(listener)?
    // Slow and stuck clients: a request head must be complete within
    // CLIENT_REQUEST_TIMEOUT of the connection (a slowloris dribbling header
    // bytes is cut then, `408`), an idle keep-alive connection is closed
    // after OSTWERK_KEEP_ALIVE_SECS, and a worker holds at most MAX_CONNECTIONS_PER_WORKER
    // connections. actix's own default (25,000 per worker) exceeds a usual
    // descriptor limit, and a process out of descriptors cannot open
    // database connections either; above the cap, new connections wait in
    // the listen backlog instead. (The two timeouts default to actix's own;
    // stated here so a dependency update cannot loosen them.)
    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
    .keep_alive(Duration::from_secs(settings.keep_alive_secs))
    .max_connections(MAX_CONNECTIONS_PER_WORKER)
    // Signals are ours (`run_until_stopped`): SIGINT must drain like SIGTERM.
    .disable_signals()
    .shutdown_timeout(settings.shutdown_timeout);
    let server = if workers > 0 { server.workers(workers) } else { server };
    let server = server.run();
    Ok(server)
}

/// `/metrics` alone on `OSTWERK_METRICS_ADDR` (an address only the
/// monitoring network reaches); one worker is plenty for a scraper.
fn serve_metrics(listener: TcpListener, state: web::Data<AppState>) -> anyhow::Result<Server> {
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).route(
            "/metrics",
            web::get().to(|state: web::Data<AppState>| async move { routes::ops::render_metrics(&state).await }),
        )
    })
    .listen(listener)?
    .disable_signals()
    .workers(1)
    .shutdown_timeout(5)
    .run();
    Ok(server)
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::ACCEPT_LANGUAGE,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("idempotent-replayed"),
            header::HeaderName::from_static(crate::http::rate_limit::POLICY_HEADER),
            header::HeaderName::from_static(crate::http::rate_limit::STATE_HEADER),
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" { cors.allow_any_origin() } else { cors.allowed_origin(origin) };
    }
    cors
}
