//! Settings from flags and environment variables (SPEC §4 names).
//!
//! `Settings` derives `clap::Args`, so every setting is both a flag and an
//! environment variable and `ostwerk --help` documents them all. Secrets are
//! never printed: `Debug` is implemented by hand.
use std::{fmt, net::SocketAddr};

use clap::Args;

#[derive(Args, Clone)]
pub struct Settings {
    /// Database URL: `sqlite://ostwerk.db?mode=rwc`, `sqlite::memory:` or `postgres://user:pass@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://ostwerk.db?mode=rwc", global = true)]
    pub database_url: String,

    /// Address to listen on.
    #[arg(long, env = "OSTWERK_ADDR", default_value = "127.0.0.1:8080", global = true)]
    pub addr: SocketAddr,

    /// The newest HS256 secret (UTF-8 bytes, at least 32). Deliberately no
    /// flag: a command line is visible to every local user in `ps`. Read from
    /// `OSTWERK_JWT_SECRET` or `OSTWERK_JWT_SECRET_FILE` by [`Settings::read_jwt_secrets`].
    #[arg(skip)]
    pub jwt_secret: Option<String>,

    /// Older HS256 secrets still accepted (newest first), so a rotation is no
    /// hard cutover: from `OSTWERK_JWT_PREVIOUS_SECRETS` (comma-separated) or
    /// the further lines of `OSTWERK_JWT_SECRET_FILE`. Never used to sign.
    #[arg(skip)]
    pub jwt_previous_secrets: Vec<String>,

    /// Longest accepted token lifetime in seconds (`exp - iat`, or `exp - now` without `iat`).
    #[arg(long, env = "OSTWERK_JWT_MAX_LIFETIME_SECS", default_value_t = 86_400, global = true)]
    pub jwt_max_lifetime_secs: u64,

    /// Seconds after which the JWKS is fetched again, so withdrawn keys stop
    /// being accepted (a shorter `Cache-Control: max-age` of the JWKS wins).
    #[arg(long, env = "OSTWERK_JWKS_REFRESH_SECS", default_value_t = 300, global = true)]
    pub jwks_refresh_secs: u64,

    /// JWKS URL of an OIDC provider (RS256 / ES256 / EdDSA keys).
    #[arg(long, env = "OSTWERK_JWT_JWKS_URL", global = true)]
    pub jwt_jwks_url: Option<String>,

    /// Required `iss` claim, when set.
    #[arg(long, env = "OSTWERK_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim, when set.
    #[arg(long, env = "OSTWERK_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,

    /// Minimum seconds between two JWKS fetches triggered by an unknown `kid`.
    #[arg(long, env = "OSTWERK_JWKS_MIN_REFRESH_SECS", default_value_t = 30, global = true)]
    pub jwks_min_refresh_secs: u64,

    /// Smallest count statistics may show (smaller counts are suppressed).
    #[arg(long, env = "OSTWERK_STATS_MIN_CELL", default_value_t = 5, global = true)]
    pub stats_min_cell: u32,

    /// Comma-separated list of allowed CORS origins (empty: no cross-origin access).
    #[arg(long, env = "OSTWERK_CORS_ORIGINS", default_value = "", global = true)]
    pub cors_origins: String,

    /// Requests per minute per principal (a burst of that many, then refilled evenly); 0 disables it.
    #[arg(long, env = "OSTWERK_RATE_LIMIT", default_value_t = 6000, global = true)]
    pub rate_limit: u32,

    /// Requests per minute per peer address (IPv6: per /64) that carry no valid token; 0 disables it.
    #[arg(long, env = "OSTWERK_RATE_LIMIT_ANON", default_value_t = 600, global = true)]
    pub rate_limit_anon: u32,

    /// Statistics and matching requests one principal may have in flight at once (more: 429); 0 disables it.
    #[arg(long, env = "OSTWERK_HEAVY_CONCURRENCY", default_value_t = 2, global = true)]
    pub heavy_concurrency: usize,

    /// Seconds a statistics answer is served again to the same principal for the same query; 0 disables it.
    #[arg(long, env = "OSTWERK_STATS_CACHE_SECS", default_value_t = 30, global = true)]
    pub stats_cache_secs: u64,

    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "OSTWERK_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Log format: `text` or `json`.
    #[arg(long, env = "OSTWERK_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], global = true)]
    pub log_format: String,

    /// Days after which unanswered referrals expire.
    #[arg(long, env = "OSTWERK_REFERRAL_EXPIRY_DAYS", default_value_t = 30, global = true)]
    pub referral_expiry_days: u32,

    /// Seconds between two runs of the referral expiry in `serve`.
    #[arg(long, env = "OSTWERK_EXPIRY_INTERVAL_SECS", default_value_t = 300, global = true)]
    pub expiry_interval_secs: u64,

    /// Allow webhook targets in loopback, private or link-local ranges.
    #[arg(long, env = "OSTWERK_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, global = true)]
    pub webhook_allow_private: bool,

    /// Milliseconds between two polls of the webhook outbox.
    #[arg(long, env = "OSTWERK_WEBHOOK_POLL_MS", default_value_t = 2000, global = true)]
    pub webhook_poll_ms: u64,

    /// Seconds one webhook delivery attempt may take (connection included).
    #[arg(long, env = "OSTWERK_WEBHOOK_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=300), global = true)]
    pub webhook_timeout_secs: u64,

    /// Webhook deliveries in flight at once (per instance).
    #[arg(long, env = "OSTWERK_WEBHOOK_CONCURRENCY", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1024), global = true)]
    pub webhook_concurrency: u32,

    /// Webhook deliveries in flight at once for one organisation (its fair share).
    #[arg(long, env = "OSTWERK_WEBHOOK_CONCURRENCY_PER_ORG", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=1024), global = true)]
    pub webhook_concurrency_per_org: u32,

    /// Webhook subscriptions one organisation may hold.
    #[arg(long, env = "OSTWERK_WEBHOOK_MAX_PER_ORG", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=10_000), global = true)]
    pub webhook_max_per_org: u64,

    /// Maximum database connections (PostgreSQL; SQLite always uses one writer connection).
    #[arg(long, env = "OSTWERK_DB_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub db_max_connections: u32,

    /// HTTP worker threads (0: one per CPU core).
    #[arg(long, env = "OSTWERK_WORKERS", default_value_t = 0, global = true)]
    pub workers: usize,

    /// Seconds to let in-flight requests finish on SIGTERM.
    #[arg(long, env = "OSTWERK_SHUTDOWN_TIMEOUT", default_value_t = 30, global = true)]
    pub shutdown_timeout: u64,
}

impl Settings {
    /// Defaults as if no flag or variable were set (used by tests).
    pub fn defaults() -> Result<Self, clap::Error> {
        use clap::Parser;
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        // Parsing an empty command line reads defaults and the environment.
        Only::try_parse_from(["ostwerk"]).map(|only| only.settings)
    }

    /// Reads the HS256 secrets from the environment: `OSTWERK_JWT_SECRET`
    /// (the newest) or `OSTWERK_JWT_SECRET_FILE` (a file whose first line is
    /// the newest secret and whose further non-empty lines are previous
    /// ones), plus `OSTWERK_JWT_PREVIOUS_SECRETS` (comma-separated, newest
    /// first). Lengths are checked where the keys are built.
    pub fn read_jwt_secrets(&mut self) -> anyhow::Result<()> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut secrets: Vec<String> = match (var("OSTWERK_JWT_SECRET"), var("OSTWERK_JWT_SECRET_FILE")) {
            (Some(_), Some(_)) => {
                anyhow::bail!("set either OSTWERK_JWT_SECRET or OSTWERK_JWT_SECRET_FILE, not both")
            }
            (Some(secret), None) => vec![secret],
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("cannot read OSTWERK_JWT_SECRET_FILE {path}: {e}"))?;
                // Line ends are not part of a secret (editors and `echo` add them).
                let lines: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
                if lines.is_empty() {
                    anyhow::bail!("OSTWERK_JWT_SECRET_FILE {path} holds no secret");
                }
                lines
            }
            (None, None) => Vec::new(),
        };
        if let Some(previous) = var("OSTWERK_JWT_PREVIOUS_SECRETS") {
            if secrets.is_empty() {
                anyhow::bail!("OSTWERK_JWT_PREVIOUS_SECRETS needs a current OSTWERK_JWT_SECRET (or _FILE)");
            }
            secrets.extend(previous.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
        }
        let mut secrets = secrets.into_iter();
        self.jwt_secret = secrets.next();
        self.jwt_previous_secrets = secrets.collect();
        Ok(())
    }

    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_origins.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("addr", &self.addr)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "<redacted>"))
            .field("jwt_previous_secrets", &self.jwt_previous_secrets.len())
            .field("jwt_jwks_url", &self.jwt_jwks_url)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("stats_min_cell", &self.stats_min_cell)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limit", &self.rate_limit)
            .field("rate_limit_anon", &self.rate_limit_anon)
            .field("heavy_concurrency", &self.heavy_concurrency)
            .field("stats_cache_secs", &self.stats_cache_secs)
            .field("log_format", &self.log_format)
            .finish_non_exhaustive()
    }
}

/// Hides the password of a database URL for logging.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..scheme_end], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_password_is_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://ostwerk.db"), "sqlite://ostwerk.db");
    }
}
