//! The `ostwerk` command line: `serve` (default), `migrate`, `token`,
//! `openapi`, `import-districts`.
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::{
    auth::{DevToken, Role, mint_hs256},
    config::Settings,
    db,
    domain::codes::Code,
    repository,
    startup::{Application, random_key},
};

#[derive(Parser, Debug)]
#[command(
    name = "ostwerk",
    version,
    about = "Back office API of a district employment-development office",
    after_help = "HS256 secrets are read from the environment only (a command line shows in `ps`): \
                  OSTWERK_JWT_SECRET or OSTWERK_JWT_SECRET_FILE (newest first, one per line), \
                  plus OSTWERK_JWT_PREVIOUS_SECRETS (comma-separated) during a rotation."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API (the default).
    Serve {
        /// Do not migrate; refuse to start if the schema is behind (for a DML-only database role).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit (as the schema owner).
    Migrate,
    /// Print a signed token (needs OSTWERK_JWT_SECRET).
    Token {
        /// admin, caseworker, jobcenter, provider, employer or analyst (repeatable).
        #[arg(long, required = true)]
        role: Vec<String>,
        /// The organisation: provider id, employer id or job-centre identifier.
        #[arg(long)]
        org: Option<String>,
        /// The principal.
        #[arg(long, default_value = "dev")]
        sub: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Fill the database: `--demo` for a realistic Leipzig-east data set,
    /// `--clients N --referrals M` for load data.
    Seed {
        /// The demo data set (idempotent: a second run adds nothing).
        #[arg(long)]
        demo: bool,
        /// Synthetic clients to add (batched).
        #[arg(long, default_value_t = 0)]
        clients: usize,
        /// Synthetic referrals to add (needs clients).
        #[arg(long, default_value_t = 0)]
        referrals: usize,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Expire referrals unanswered for OSTWERK_REFERRAL_EXPIRY_DAYS (for cron; `serve` also does it).
    ExpireReferrals,
    /// Replace the `districts` code list from a CSV file with the columns code,label_de,label_en.
    ImportDistricts { file: PathBuf },
    /// Delete audit events older than OSTWERK_AUDIT_RETENTION_DAYS (for cron; `serve` also does it hourly).
    PurgeAudit,
    /// Carry erasures over a restore: `export` lists erased client ids, `reapply FILE` erases them again.
    #[command(subcommand)]
    Erasures(Erasures),
}

#[derive(Subcommand, Debug)]
pub enum Erasures {
    /// Print the id of every erased client, one per line (keep the file with the backups).
    Export,
    /// Erase again every client listed in FILE (after restoring an older backup).
    Reapply { file: PathBuf },
}

/// Every environment variable a setting reads (for the unknown-variable warning).
pub fn known_variables() -> Vec<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let flags = command.get_arguments().filter_map(|a| a.get_env()).filter_map(|e| e.to_str()).map(str::to_owned);
    flags.chain(crate::config::SECRET_VARIABLES.map(str::to_owned)).collect()
}

impl Command {
    /// Whether the command opens the database.
    fn uses_database(&self) -> bool {
        !matches!(self, Command::Token { .. } | Command::Openapi)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = cli.settings;
    settings.read_jwt_secrets()?;
    settings.validate().map_err(anyhow::Error::msg)?;
    let command = cli.command.unwrap_or(Command::Serve { no_migrate: false });
    let has_key = settings.jwt_secret.as_deref().is_some_and(|s| !s.is_empty()) || settings.has_jwks();
    if command.uses_database() && has_key && settings.database_url_defaulted {
        // A misspelt DATABASE_URL would otherwise run production on a
        // SQLite file in the working directory (inside a container: lost).
        bail!(
            "DATABASE_URL is not set: outside development mode (a JWT key is configured) the database must be named explicitly"
        );
    }
    match command {
        Command::Serve { no_migrate } => {
            if no_migrate {
                settings.migrate = false;
            }
            serve(settings).await
        }
        Command::Migrate => {
            let db = db::connect(&settings).await?;
            db::migrate(&db, &settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::PurgeAudit => {
            if settings.audit_retention_days == 0 {
                bail!("OSTWERK_AUDIT_RETENTION_DAYS is 0 (keep forever): nothing to purge");
            }
            let db = open_migrated(&settings).await?;
            let n = crate::service::retention::purge_audit(&db, settings.audit_retention_days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{n} audit events older than {} days deleted", settings.audit_retention_days);
            Ok(())
        }
        Command::Erasures(Erasures::Export) => {
            let db = open_migrated(&settings).await?;
            let ids = crate::service::retention::erased_client_ids(&db).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("# ostwerk erasures export {} ({} erased clients)", chrono::Utc::now().to_rfc3339(), ids.len());
            for id in ids {
                println!("{id}");
            }
            Ok(())
        }
        Command::Erasures(Erasures::Reapply { file }) => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let ids = crate::service::retention::parse_erasure_list(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let db = open_migrated(&settings).await?;
            let done = crate::service::retention::reapply_erasures(&db, &ids, "ostwerk-erasures-reapply")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{} clients erased again, {} already erased, {} not in this database",
                done.erased, done.already_erased, done.unknown
            );
            Ok(())
        }
        Command::Token { role, org, sub, ttl } => {
            let secret = settings.jwt_secret.as_deref().context("OSTWERK_JWT_SECRET must be set to mint tokens")?;
            let roles: Vec<&str> = role.iter().map(String::as_str).collect();
            println!("{}", token(&settings, secret, &roles, org.as_deref(), &sub, ttl)?);
            Ok(())
        }
        Command::Seed { demo, clients, referrals } => {
            if !demo && clients == 0 && referrals == 0 {
                bail!("say what to seed: --demo, or --clients N [--referrals M]");
            }
            let db = open_migrated(&settings).await?;
            if demo {
                println!("{}", crate::seed::demo(&db).await?);
            }
            if clients > 0 || referrals > 0 {
                println!("{}", crate::seed::bulk(&db, clients, referrals).await?);
            }
            Ok(())
        }
        Command::Openapi => {
            print!("{}", crate::openapi::to_pretty_json());
            Ok(())
        }
        Command::ImportDistricts { file } => import_districts(&settings, &file).await,
        Command::ExpireReferrals => {
            let db = open_migrated(&settings).await?;
            let n = crate::service::referrals::expire_due(&db, settings.referral_expiry_days)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{n} referrals expired");
            Ok(())
        }
    }
}

/// Opens the database and migrates it (or, with `OSTWERK_MIGRATE=false`,
/// checks that it needs no migration).
async fn open_migrated(settings: &Settings) -> anyhow::Result<sea_orm::DatabaseConnection> {
    let db = db::connect(settings)
        .await
        .with_context(|| format!("cannot open the database {}", crate::config::redact_url(&settings.database_url)))?;
    if settings.migrate {
        db::migrate(&db, settings).await?;
    } else {
        db::check_schema(&db).await?;
    }
    Ok(db)
}

/// Mints an HS256 token with the configured issuer and audience.
pub fn token(
    settings: &Settings,
    secret: &str,
    roles: &[&str],
    org: Option<&str>,
    sub: &str,
    ttl: i64,
) -> anyhow::Result<String> {
    if secret.len() < crate::auth::keys_min_secret() {
        bail!("OSTWERK_JWT_SECRET must be at least {} bytes", crate::auth::keys_min_secret());
    }
    for r in roles {
        let role = Role::parse(r).with_context(|| format!("unknown role {r}"))?;
        if role.needs_org() && org.is_none() {
            bail!("role {role} needs --org");
        }
        // The service refuses such a token; say so here instead of minting it.
        if role.needs_org() && org.is_some_and(|o| o.trim().eq_ignore_ascii_case(crate::auth::OFFICE_ORG)) {
            bail!("--org office names the office itself and cannot be claimed for role {role}");
        }
    }
    if ttl <= 0 {
        bail!("--ttl must be positive");
    }
    // A longer token would be refused by the service itself (SPEC: capped lifetime).
    if u64::try_from(ttl).is_ok_and(|t| t > settings.jwt_max_lifetime_secs) {
        bail!(
            "--ttl {ttl} exceeds OSTWERK_JWT_MAX_LIFETIME_SECS ({}); the service would refuse the token",
            settings.jwt_max_lifetime_secs
        );
    }
    let now = chrono::Utc::now().timestamp();
    let claims = DevToken {
        sub,
        roles: roles.to_vec(),
        org,
        iat: now,
        exp: now + ttl,
        iss: settings.jwt_issuer.as_deref().filter(|s| !s.is_empty()),
        aud: settings.jwt_audience.as_deref().filter(|s| !s.is_empty()),
    };
    Ok(mint_hs256(secret.as_bytes(), &claims)?)
}

/// The organisation a development token of `role` acts for: the demo
/// provider, employer and job centre that `seed --demo` creates, so every
/// printed token sees demo data.
pub fn dev_org(role: Role) -> Option<String> {
    match role {
        Role::Provider => Some(crate::seed::DEMO_PROVIDER_ID.to_string()),
        Role::Employer => Some(crate::seed::DEMO_EMPLOYER_ID.to_string()),
        Role::Jobcenter => Some(crate::seed::DEMO_JOBCENTER_ORG.to_owned()),
        _ => None,
    }
}

async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    let has_jwks = settings.has_jwks();
    if settings.jwt_secret.as_deref().is_some_and(str::is_empty) {
        settings.jwt_secret = None;
    }
    if settings.jwt_secret.is_none() && !has_jwks {
        if !settings.addr.ip().is_loopback() {
            bail!(
                "development mode (no OSTWERK_JWT_SECRET, OSTWERK_JWT_JWKS_URL or OSTWERK_OIDC_ISSUER) only binds to loopback; {} is not",
                settings.addr
            );
        }
        let secret = random_key();
        settings.jwt_secret = Some(secret.clone());
        settings.jwt_previous_secrets.clear();
        print_dev_banner(&settings, &secret)?;
    }
    let app = Application::build(settings.clone()).await?;
    tracing::info!(
        addr = %settings.addr,
        port = app.port(),
        metrics_port = app.metrics_port(),
        database = %crate::config::redact_url(&settings.database_url),
        migrate = settings.migrate,
        "Ostwerk listening"
    );
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

fn print_dev_banner(settings: &Settings, secret: &str) -> anyhow::Result<()> {
    let mut out = String::new();
    out.push_str("\n================ DEVELOPMENT MODE ================\n");
    out.push_str(
        "No OSTWERK_JWT_SECRET, OSTWERK_JWT_JWKS_URL or OSTWERK_OIDC_ISSUER is set: using an EPHEMERAL secret.\n",
    );
    out.push_str("Tokens below die with this process. Never run like this in production.\n");
    out.push_str(&format!("Docs: http://{}/docs/\n", settings.addr));
    out.push_str("Run `ostwerk seed --demo` once: the partner tokens act for its demo organisations.\n\n");
    for role in Role::ALL {
        let org = dev_org(role);
        let org = org.as_deref();
        let ttl = (12 * 3600).min(i64::try_from(settings.jwt_max_lifetime_secs).unwrap_or(i64::MAX));
        let t = token(settings, secret, &[role.as_str()], org, &format!("dev-{role}"), ttl)?;
        out.push_str(&format!("{role:<11}{}\n  {t}\n", org.map(|o| format!(" (org {o})")).unwrap_or_default()));
    }
    out.push_str("==================================================\n");
    // Printed, not logged: tokens must never reach the log stream.
    eprintln!("{out}");
    Ok(())
}

async fn import_districts(settings: &Settings, file: &PathBuf) -> anyhow::Result<()> {
    let mut reader = csv::Reader::from_path(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut codes = Vec::new();
    for (i, record) in reader.deserialize::<Code>().enumerate() {
        let code = record.with_context(|| format!("line {} of {}", i + 2, file.display()))?;
        if code.code.trim().is_empty() || code.label_de.trim().is_empty() {
            bail!("line {}: code and label_de are required", i + 2);
        }
        codes.push(Code {
            code: code.code.trim().to_owned(),
            label_de: code.label_de.trim().to_owned(),
            label_en: if code.label_en.trim().is_empty() {
                code.label_de.trim().to_owned()
            } else {
                code.label_en.trim().to_owned()
            },
        });
    }
    if codes.is_empty() {
        bail!("{} holds no districts", file.display());
    }
    let db = open_migrated(settings).await?;
    repository::districts::replace_all(&db, &codes).await?;
    println!("{} districts imported", codes.len());
    Ok(())
}
