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

    /// Issuer URL of an OpenID provider (e.g. a Keycloak realm): its JWKS is found through
    /// `<issuer>/.well-known/openid-configuration`, and tokens must carry exactly this `iss`.
    #[arg(long, env = "OSTWERK_OIDC_ISSUER", global = true)]
    pub oidc_issuer: Option<String>,

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

    /// Seconds between two foldings of the demand statistics' change log in `serve`.
    #[arg(long, env = "OSTWERK_STATISTICS_COMPACT_SECS", default_value_t = 60, global = true)]
    pub statistics_compact_secs: u64,

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

    /// Seconds a webhook's previous secret still signs deliveries after a rotation.
    #[arg(long, env = "OSTWERK_WEBHOOK_SECRET_OVERLAP_SECS", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(0..=604_800), global = true)]
    pub webhook_secret_overlap_secs: u64,

    /// Maximum database connections (PostgreSQL; SQLite always uses one writer connection).
    #[arg(long, env = "OSTWERK_DB_MAX_CONNECTIONS", default_value_t = 16, global = true)]
    pub db_max_connections: u32,

    /// HTTP worker threads (0: one per CPU core).
    #[arg(long, env = "OSTWERK_WORKERS", default_value_t = 0, global = true)]
    pub workers: usize,

    /// Seconds to let in-flight requests finish on SIGTERM or SIGINT.
    #[arg(long, env = "OSTWERK_SHUTDOWN_TIMEOUT", default_value_t = 30, global = true)]
    pub shutdown_timeout: u64,

    /// Seconds an idle keep-alive connection stays open. Behind a load
    /// balancer that reuses connections, set it above the balancer's idle
    /// timeout, or the balancer may send a request on a connection being closed.
    #[arg(long, env = "OSTWERK_KEEP_ALIVE_SECS", default_value_t = 5, global = true)]
    pub keep_alive_secs: u64,

    /// Seconds a request body may take to arrive, counted from the first
    /// read; a body still incomplete then is answered `408` and its
    /// connection closed (a client stalling mid-body holds nothing longer).
    #[arg(long, env = "OSTWERK_BODY_TIMEOUT_SECS", default_value_t = 30, global = true)]
    pub body_timeout_secs: u64,

    // --- Operations (database safety, metrics, retention) ---
    /// Apply pending migrations when `serve` starts (`false` for a DML-only database role; see `--no-migrate`).
    #[arg(long, env = "OSTWERK_MIGRATE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub migrate: bool,

    /// PostgreSQL `statement_timeout` per connection, in milliseconds (0: none).
    #[arg(long, env = "OSTWERK_DB_STATEMENT_TIMEOUT_MS", default_value_t = 30_000, global = true)]
    pub db_statement_timeout_ms: u64,

    /// PostgreSQL `lock_timeout` per connection, in milliseconds (0: none).
    #[arg(long, env = "OSTWERK_DB_LOCK_TIMEOUT_MS", default_value_t = 5_000, global = true)]
    pub db_lock_timeout_ms: u64,

    /// Milliseconds a request waits for a free database connection before it is answered `503`.
    #[arg(long, env = "OSTWERK_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5_000, global = true)]
    pub db_acquire_timeout_ms: u64,

    /// Serve `/metrics` on this separate address only (unset: on the main address).
    #[arg(long, env = "OSTWERK_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<SocketAddr>,

    /// Days to keep audit events (0: keep forever); `serve` purges older ones hourly.
    #[arg(long, env = "OSTWERK_AUDIT_RETENTION_DAYS", default_value_t = 0, global = true)]
    pub audit_retention_days: u32,

    /// Tasks per HTTP worker writing the group-committed audit events of
    /// reads: that worker's batches in flight at once (each waits for its
    /// commit's WAL flush).
    #[arg(long, env = "OSTWERK_AUDIT_WRITERS", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=64), global = true)]
    pub audit_writers: u16,

    /// Whether `DATABASE_URL` fell back to its default (set by `main` from
    /// clap's value source; a misspelt variable must not silently mean SQLite).
    #[arg(skip)]
    pub database_url_defaulted: bool,
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

    /// Whether an OIDC provider's keys are configured (`OSTWERK_JWT_JWKS_URL`
    /// or `OSTWERK_OIDC_ISSUER`), so the service is not in development mode.
    pub fn has_jwks(&self) -> bool {
        let set = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.trim().is_empty());
        set(&self.jwt_jwks_url) || set(&self.oidc_issuer)
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
            .field("oidc_issuer", &self.oidc_issuer)
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

/// Hides the password of a database URL for logging (see [`redact`]).
pub fn redact_url(url: &str) -> String {
    redact(url)
}

/// Hides every credential in a text that may quote a database URL or a
/// connection string: the password of any `user:password@host` (also in
/// malformed URLs such as `postgres//u:p@h` or with a bad port), and the
/// value of any `password=` / `passwd=` / `pwd=` parameter (`?password=…`,
/// `sslpassword=…`, libpq `key=value` strings). Over-redacting is fine;
/// a password in a log is not.
pub fn redact(text: &str) -> String {
    redact_password_params(&redact_userinfo(text))
}

fn is_token_boundary(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '[' | ']' | '{' | '}' | ',')
}

fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !is_token_boundary(c)) {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(is_token_boundary).unwrap_or(rest.len());
        out.push_str(&redact_token(&rest[..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// One whitespace-free token: the userinfo is what lies between the last
/// `//` (or the token's start) and the last `@`; everything after its first
/// `:` is the password.
fn redact_token(token: &str) -> String {
    let Some(at) = token.rfind('@') else { return token.to_owned() };
    let userinfo_start = token[..at].rfind("//").map(|i| i + 2).unwrap_or(0);
    match token[userinfo_start..at].find(':') {
        Some(colon) => format!("{}:***{}", &token[..userinfo_start + colon], &token[at..]),
        None => token.to_owned(),
    }
}

fn redact_password_params(text: &str) -> String {
    const KEYS: [&str; 3] = ["password=", "passwd=", "pwd="];
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hit = KEYS.iter().filter_map(|k| lower[i..].find(k).map(|pos| (i + pos, k.len()))).min();
        let Some((pos, key_len)) = hit else { break };
        let value_start = pos + key_len;
        let value_end = text[value_start..]
            .find(|c: char| c == '&' || c == ';' || is_token_boundary(c))
            .map(|e| value_start + e)
            .unwrap_or(text.len());
        out.push_str(&text[i..value_start]);
        if value_end > value_start {
            out.push_str("***");
        }
        i = value_end;
    }
    out.push_str(&text[i.min(text.len())..]);
    out
}

/// The levels `OSTWERK_LOG` may name alone; anything else must be `target=level`.
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Refuses a log filter that would silently log nothing useful. `EnvFilter`
/// reads a bare word such as `verbose` as a *target* name, so the filter is
/// valid syntax and silences every real target; a bare word must be a level.
pub fn validate_log_filter(filter: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Err("OSTWERK_LOG is empty; use a level such as `info`".to_owned());
    }
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains('=') && !directive.contains('[');
        if bare && !LOG_LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "OSTWERK_LOG={filter:?}: `{directive}` is not a level (use one of {}, or target=level)",
                LOG_LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(filter).map(|_| ()).map_err(|e| format!("OSTWERK_LOG={filter:?}: {e}"))
}

impl Settings {
    /// Range checks: settings that parse but make no sense refuse the start
    /// (each problem named with its variable, all in one line).
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, problem: String| {
            if !ok {
                problems.push(problem);
            }
        };
        // 1 would suppress nothing: statistics must stay anonymous.
        check(
            self.stats_min_cell >= 2,
            format!("OSTWERK_STATS_MIN_CELL must be at least 2 (is {})", self.stats_min_cell),
        );
        check(
            (1..=3650).contains(&self.referral_expiry_days),
            format!("OSTWERK_REFERRAL_EXPIRY_DAYS must be between 1 and 3650 (is {})", self.referral_expiry_days),
        );
        check(
            self.statistics_compact_secs >= 1,
            format!("OSTWERK_STATISTICS_COMPACT_SECS must be at least 1 (is {})", self.statistics_compact_secs),
        );
        check(
            self.expiry_interval_secs >= 1,
            format!("OSTWERK_EXPIRY_INTERVAL_SECS must be at least 1 (is {})", self.expiry_interval_secs),
        );
        check(
            (50..=3_600_000).contains(&self.webhook_poll_ms),
            format!("OSTWERK_WEBHOOK_POLL_MS must be between 50 and 3600000 (is {})", self.webhook_poll_ms),
        );
        check(
            (1..=10_000).contains(&self.db_max_connections),
            format!("OSTWERK_DB_MAX_CONNECTIONS must be between 1 and 10000 (is {})", self.db_max_connections),
        );
        check(self.workers <= 1024, format!("OSTWERK_WORKERS must be at most 1024 (is {})", self.workers));
        check(
            (1..=3600).contains(&self.keep_alive_secs),
            format!("OSTWERK_KEEP_ALIVE_SECS must be between 1 and 3600 (is {})", self.keep_alive_secs),
        );
        check(
            (1..=3600).contains(&self.body_timeout_secs),
            format!("OSTWERK_BODY_TIMEOUT_SECS must be between 1 and 3600 (is {})", self.body_timeout_secs),
        );
        check(
            self.shutdown_timeout <= 3600,
            format!("OSTWERK_SHUTDOWN_TIMEOUT must be at most 3600 seconds (is {})", self.shutdown_timeout),
        );
        check(
            (1..=600_000).contains(&self.db_acquire_timeout_ms),
            format!("OSTWERK_DB_ACQUIRE_TIMEOUT_MS must be between 1 and 600000 (is {})", self.db_acquire_timeout_ms),
        );
        check(
            self.db_lock_timeout_ms <= self.db_statement_timeout_ms || self.db_statement_timeout_ms == 0,
            format!(
                "OSTWERK_DB_LOCK_TIMEOUT_MS ({}) must not exceed OSTWERK_DB_STATEMENT_TIMEOUT_MS ({})",
                self.db_lock_timeout_ms, self.db_statement_timeout_ms
            ),
        );
        check(
            self.audit_retention_days <= 36_500,
            format!("OSTWERK_AUDIT_RETENTION_DAYS must be at most 36500 (is {})", self.audit_retention_days),
        );
        check(
            self.metrics_addr.is_none_or(|m| m != self.addr || self.addr.port() == 0),
            "OSTWERK_METRICS_ADDR must differ from OSTWERK_ADDR".to_owned(),
        );
        if problems.is_empty() { Ok(()) } else { Err(format!("invalid settings: {}", problems.join("; "))) }
    }
}

/// The secret variables, read from the environment only (never flags, so
/// they are not among clap's arguments).
pub const SECRET_VARIABLES: [&str; 3] =
    ["OSTWERK_JWT_SECRET", "OSTWERK_JWT_SECRET_FILE", "OSTWERK_JWT_PREVIOUS_SECRETS"];

/// `OSTWERK_*` variables in `vars` that no setting reads, each with the
/// nearest known name when one is close (a typo such as `OSTWERK_JWT_SECRETT`
/// otherwise silently leaves the setting at its default).
pub fn unknown_variables(known: &[String], vars: impl IntoIterator<Item = String>) -> Vec<(String, Option<String>)> {
    let mut unknown: Vec<(String, Option<String>)> = vars
        .into_iter()
        .filter(|v| v.starts_with("OSTWERK_") && !known.contains(v))
        .map(|v| {
            let nearest = known
                .iter()
                .map(|k| (edit_distance(&v, k), k))
                .min()
                .filter(|(d, _)| *d <= 3.max(v.len() / 5))
                .map(|(_, k)| k.clone());
            (v, nearest)
        })
        .collect();
    unknown.sort();
    unknown
}

/// Levenshtein distance (names are short; the quadratic table is fine).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn database_password_is_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://ostwerk.db"), "sqlite://ostwerk.db");
    }

    #[test]
    fn password_of_a_malformed_url_is_redacted() {
        assert_eq!(redact("postgres//u:secret@h/db"), "postgres//u:***@h/db");
        // Without `//` the userinfo is not delimited: hide everything after the first `:`.
        assert_eq!(redact("postgres:/u:pa/ss@h/db"), "postgres:***@h/db");
        assert_eq!(redact("postgres://u:secret@h:99999/db"), "postgres://u:***@h:99999/db");
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("cannot open postgres:u:secret@h (bad)"), "cannot open postgres:***@h (bad)");
    }

    #[test]
    fn password_query_parameters_are_redacted() {
        assert_eq!(
            redact("postgres://u@h/db?sslmode=require&password=secret&x=1"),
            "postgres://u@h/db?sslmode=require&password=***&x=1"
        );
        assert_eq!(redact("postgres://h/db?PASSWORD=secret"), "postgres://h/db?PASSWORD=***");
        assert_eq!(redact("host=h user=u password=secret dbname=d"), "host=h user=u password=*** dbname=d");
        assert_eq!(redact("x?sslpassword=k3y&pwd=a;passwd=b"), "x?sslpassword=***&pwd=***;passwd=***");
    }

    #[test]
    fn text_without_credentials_is_unchanged() {
        let text = "mail anna@example.org: sqlite://x.db?mode=rwc failed";
        assert_eq!(redact(text), text);
    }

    #[test]
    fn bare_words_other_than_levels_are_refused_as_log_filter() {
        assert!(validate_log_filter("verbose").is_err());
        assert!(validate_log_filter("").is_err());
        assert!(validate_log_filter("info").is_ok());
        assert!(validate_log_filter("WARN,ostwerk=debug").is_ok());
        assert!(validate_log_filter("ostwerk=loud").is_err());
    }

    #[test]
    fn misspelt_variables_get_the_nearest_known_name() {
        let known = vec!["OSTWERK_JWT_SECRET".to_owned(), "OSTWERK_LOG".to_owned()];
        let found = unknown_variables(
            &known,
            ["OSTWERK_JWT_SECRETT", "OSTWERK_LOG", "OSTWERK_SOMETHING_ELSE_ENTIRELY", "PATH"].map(str::to_owned),
        );
        assert_eq!(
            found,
            vec![
                ("OSTWERK_JWT_SECRETT".to_owned(), Some("OSTWERK_JWT_SECRET".to_owned())),
                ("OSTWERK_SOMETHING_ELSE_ENTIRELY".to_owned(), None),
            ]
        );
    }

    #[test]
    fn nonsense_settings_are_refused() {
        let mut settings = Settings::defaults().unwrap();
        assert_eq!(settings.validate(), Ok(()));
        settings.stats_min_cell = 0;
        settings.referral_expiry_days = 0;
        let err = settings.validate().unwrap_err();
        assert!(err.contains("OSTWERK_STATS_MIN_CELL") && err.contains("OSTWERK_REFERRAL_EXPIRY_DAYS"), "{err}");
    }
}
