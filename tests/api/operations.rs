//! An operator's day (issue 16, items 7–12): start-up refusals, credentials
//! in output, migrations and least privilege, timeouts, shutdown, logs and
//! metrics, retention and restores. Most run the real binary.
use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use ostwerk::{config::Settings, startup::Application};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement, TransactionTrait};
use serde_json::Value;

use crate::helpers::*;

const PROVIDERS: &str = "/api/v1/providers";

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// `ostwerk ARGS` with nothing inherited from the test's environment, in a
/// fresh working directory (where a default SQLite file would land).
fn ostwerk(dir: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ostwerk"));
    cmd.env_clear().args(args).current_dir(dir.path()).env("OSTWERK_LOG", "warn").stdin(Stdio::null());
    cmd
}

/// The real binary as a child process, killed when the test ends, however
/// it ends (also used by `ops.rs`).
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    pub(crate) fn wait_timeout(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.0.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the exit and returns what the child wrote to stdout.
    fn stdout_after_exit(&mut self, within: Duration) -> (ExitStatus, String) {
        let mut stdout = self.0.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            stdout.read_to_string(&mut out).unwrap();
            out
        });
        let status = self.wait_timeout(within).expect("ostwerk did not exit in time");
        (status, reader.join().unwrap())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The fresh database of a spawned binary; holds the SQLite directory.
struct FreshDatabase {
    url: String,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// `ostwerk serve` in production mode (a secret) on a fresh database.
async fn serve_command(dir: &tempfile::TempDir, addr: &str) -> (Command, FreshDatabase) {
    let (database_url, db_dir) = fresh_database().await;
    let mut cmd = ostwerk(dir, &["serve"]);
    cmd.env("OSTWERK_ADDR", addr)
        .env("OSTWERK_JWT_SECRET", SECRET)
        .env("OSTWERK_WORKERS", "1")
        .env("DATABASE_URL", &database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    (cmd, FreshDatabase { url: database_url, _dir: db_dir })
}

async fn wait_until_live(base: &str, child: &mut Running) {
    ostwerk::startup::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = client.get(format!("{base}/livez")).send().await
            && res.status() == StatusCode::OK
        {
            return;
        }
        assert!(child.0.try_wait().unwrap().is_none(), "ostwerk exited before it was live");
        assert!(Instant::now() < deadline, "ostwerk did not become live within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must refuse to start; a command that starts
/// serving instead is killed after 30 s (and the test fails).
fn run_refused(cmd: &mut Command) -> Output {
    let mut child = Running(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let mut stderr = child.0.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stderr.read_to_end(&mut out).unwrap();
        out
    });
    let status = child.wait_timeout(Duration::from_secs(30)).expect("ostwerk started instead of refusing");
    Output { status, stdout: Vec::new(), stderr: reader.join().unwrap() }
}

fn refused_start(output: &Output) -> String {
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "ostwerk started: {stderr}");
    assert!(!stderr.contains("panicked"), "a refusal is not a panic: {stderr}");
    stderr
}

// ---------------------------------------------------------------------------
// Another instance on a test app's database, with changed settings
// ---------------------------------------------------------------------------

struct Instance {
    base: String,
    db: DatabaseConnection,
    metrics_port: Option<u16>,
}

async fn instance(app: &TestApp, change: impl FnOnce(&mut Settings)) -> Instance {
    let mut settings = app.settings.clone();
    change(&mut settings);
    let instance = Application::build(settings).await.expect("instance builds");
    let started = Instance {
        base: format!("http://127.0.0.1:{}", instance.port()),
        db: instance.db(),
        metrics_port: instance.metrics_port(),
    };
    tokio::spawn(instance.run_until_stopped());
    started
}

impl Instance {
    /// A request that must be answered within 20 s (a lock wait must not hang it).
    async fn get(&self, path: &str, caller: &Caller) -> reqwest::Response {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
        client.get(format!("{}{path}", self.base)).bearer_auth(token_for(caller)).send().await.expect("an answer")
    }
}

async fn execute(db: &impl ConnectionTrait, sql: &str) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
}

// ---------------------------------------------------------------------------
// (7) A misspelt DATABASE_URL never silently runs on SQLite
// ---------------------------------------------------------------------------

#[test]
fn misspelt_database_url_outside_development_mode_refuses_to_start() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ostwerk(&dir, &["serve"]);
    cmd.env("OSTWERK_JWT_SECRET", SECRET)
        .env("OSTWERK_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("DATABSE_URL", "postgres://ostwerk@127.0.0.1/ostwerk");
    // Act
    let output = run_refused(&mut cmd);
    // Assert
    let stderr = refused_start(&output);
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
    assert!(!dir.path().join("ostwerk.db").exists(), "no SQLite file was created");
}

#[test]
fn development_mode_keeps_the_sqlite_default() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    // Act
    let output = ostwerk(&dir, &["migrate"]).output().unwrap();
    // Assert
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(dir.path().join("ostwerk.db").exists());
}

#[tokio::test]
async fn unknown_ostwerk_variable_is_warned_about_with_the_nearest_name() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let (database_url, _db_dir) = fresh_database().await;
    let mut cmd = ostwerk(&dir, &["migrate"]);
    cmd.env("DATABASE_URL", &database_url).env("OSTWERK_JWT_SECRETT", SECRET);
    // Act
    let output = cmd.output().unwrap();
    // Assert
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warning = stderr.lines().find(|l| l.contains("OSTWERK_JWT_SECRETT")).expect("a warning line");
    assert!(warning.contains("did you mean OSTWERK_JWT_SECRET?"), "{warning}");
    assert!(!stderr.contains(SECRET), "the value is never printed");
}

// ---------------------------------------------------------------------------
// (8) Passwords never in output
// ---------------------------------------------------------------------------

const PASSWORD: &str = "hunter2-Geheim";

#[test]
fn database_passwords_never_appear_in_error_output() {
    let urls = [
        format!("postgres//ostwerk:{PASSWORD}@127.0.0.1:5432/db"),
        format!("postgres://ostwerk:{PASSWORD}@127.0.0.1:99999/db"),
        format!("postgres://ostwerk:{PASSWORD}@127.0.0.1:1/db"),
        format!("postgres://ostwerk@127.0.0.1:1/db?sslmode=disable&password={PASSWORD}"),
        format!("postgres:ostwerk:{PASSWORD}@127.0.0.1/db"),
    ];
    for url in urls {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = ostwerk(&dir, &["migrate"]);
        cmd.env("DATABASE_URL", &url).env("OSTWERK_JWT_SECRET", SECRET).env("OSTWERK_LOG", "debug");
        // Act
        let output = cmd.output().unwrap();
        // Assert
        let printed = format!("{}{}", text(&output.stderr), text(&output.stdout));
        assert!(!output.status.success(), "{url} worked?");
        assert!(!printed.contains(PASSWORD), "{url} leaked: {printed}");
    }
}

#[test]
fn each_error_cause_is_printed_once() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ostwerk(&dir, &["migrate"]);
    cmd.env("DATABASE_URL", "postgres://ostwerk@127.0.0.1:1/db").env("OSTWERK_JWT_SECRET", SECRET);
    // Act
    let output = cmd.output().unwrap();
    // Assert
    let stderr = refused_start(&output);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let causes: Vec<&str> = stderr.trim().trim_start_matches("error: ").split(": ").collect();
    for (i, cause) in causes.iter().enumerate() {
        assert!(!causes[i + 1..].iter().any(|later| later.contains(cause)), "{cause:?} repeated: {stderr}");
    }
}

#[tokio::test]
async fn start_line_shows_the_database_url_redacted_and_text_logs_to_a_pipe_carry_no_colours() {
    // Arrange: a password query parameter (PostgreSQL accepts and, under trust
    // authentication, ignores it; SQLite has no passwords, so a user-info URL
    // cannot start there).
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let (mut cmd, database) = serve_command(&dir, &addr).await;
    let with_password = if is_postgres() {
        format!("{}{}password={PASSWORD}", database.url, if database.url.contains('?') { '&' } else { '?' })
    } else {
        database.url.clone()
    };
    cmd.env("DATABASE_URL", &with_password).env("OSTWERK_LOG", "info").stdout(Stdio::piped());
    let mut child = Running(cmd.spawn().unwrap());
    wait_until_live(&format!("http://{addr}"), &mut child).await;
    // Act
    child.signal("TERM");
    let (status, stdout) = child.stdout_after_exit(Duration::from_secs(30));
    // Assert
    assert!(status.success());
    let start = stdout.lines().find(|l| l.contains("Ostwerk listening")).expect("a start line");
    assert!(!stdout.contains(PASSWORD), "{start}");
    if is_postgres() {
        assert!(start.contains("password=***"), "{start}");
    }
    assert!(!stdout.contains('\u{1b}'), "no ANSI escape codes in a pipe: {start:?}");
}

// ---------------------------------------------------------------------------
// (9) Least privilege and migrations
// ---------------------------------------------------------------------------

#[tokio::test]
async fn serve_without_migrations_refuses_a_schema_behind_the_binary() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let (mut cmd, _database) = serve_command(&dir, &format!("127.0.0.1:{}", free_port())).await;
    cmd.arg("--no-migrate");
    // Act
    let output = run_refused(&mut cmd);
    // Assert
    let stderr = refused_start(&output);
    assert!(stderr.contains("schema is behind") && stderr.contains("ostwerk migrate"), "{stderr}");
}

#[tokio::test]
async fn serve_without_migrations_runs_on_a_migrated_schema() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let second = instance(&app, |s| s.migrate = false).await;
    // Assert
    assert_eq!(second.get(PROVIDERS, &caseworker()).await.status(), 200);
}

#[tokio::test]
async fn a_binary_refuses_a_schema_newer_than_itself() {
    // Arrange: the database was migrated by a newer release.
    let app = spawn_app().await;
    let db = app.db().await;
    execute(&db, "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_future', 0)").await;
    for migrate in [true, false] {
        let mut settings = app.settings.clone();
        settings.migrate = migrate;
        // Act
        let result = Application::build(settings).await;
        // Assert
        let err = format!("{:#}", result.err().expect("refused"));
        assert!(err.contains("newer than this binary") && err.contains("m29991231_000001_future"), "{err}");
    }
}

#[tokio::test]
async fn concurrent_migrations_on_an_empty_postgres_database_all_succeed() {
    if !is_postgres() {
        return; // SQLite serialises writers and is for one instance.
    }
    // Arrange
    let (database_url, _db_dir) = fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    // Act
    let children: Vec<Child> = (0..6)
        .map(|_| {
            let mut cmd = ostwerk(&dir, &["migrate"]);
            cmd.env("DATABASE_URL", &database_url).stdout(Stdio::null()).stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    // Assert
    for output in &outputs {
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let db = Database::connect(&database_url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM seaql_migrations"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap() as usize, migration_count());
}

fn migration_count() -> usize {
    use migration::MigratorTrait;
    migration::Migrator::migrations().len()
}

// ---------------------------------------------------------------------------
// (10) Timeouts and shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_lock_held_elsewhere_answers_503_busy_within_the_lock_timeout() {
    if !is_postgres() {
        return; // SQLite has one connection: lock waits are pool waits (next test).
    }
    // Arrange
    let app = spawn_app().await;
    let busy = instance(&app, |s| {
        s.db_lock_timeout_ms = 300;
        s.db_statement_timeout_ms = 10_000;
    })
    .await;
    let db = app.db().await;
    let txn = db.begin().await.unwrap();
    execute(&txn, "LOCK TABLE providers IN ACCESS EXCLUSIVE MODE").await;
    // Act
    let started = Instant::now();
    let res = busy.get(PROVIDERS, &caseworker()).await;
    let waited = started.elapsed();
    txn.rollback().await.unwrap();
    // Assert
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert!(res.headers().contains_key("retry-after"));
    let problem = assert_problem(res, 503, "service-unavailable").await;
    assert!(problem["detail"].as_str().unwrap().contains("busy"), "{problem}");
}

#[tokio::test]
async fn a_full_pool_answers_503_busy_within_the_acquire_timeout() {
    // Arrange: an instance whose every connection is held by a transaction.
    let app = spawn_app().await;
    let full = instance(&app, |s| {
        s.db_acquire_timeout_ms = 1_500;
        s.db_max_connections = 2;
        s.webhook_poll_ms = 3_600_000;
        s.expiry_interval_secs = 3_600;
    })
    .await;
    let connections = if is_postgres() { 2 } else { 1 };
    let mut held = Vec::new();
    while held.len() < connections {
        // A background job may hold a connection for a moment: try again.
        if let Ok(txn) = full.db.begin().await {
            held.push(txn);
        }
    }
    // Act
    let started = Instant::now();
    let res = full.get(PROVIDERS, &caseworker()).await;
    let waited = started.elapsed();
    drop(held);
    // Assert
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    assert!(res.headers().contains_key("retry-after"));
    let problem = assert_problem(res, 503, "service-unavailable").await;
    assert_eq!(problem["detail"], "The service is busy; please retry shortly.");
}

/// Connects, sends one full request and reads its answer (so the connection
/// is surely owned by a worker), then the head and half the body of a second.
fn half_sent_request(addr: &str, token: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(b"GET /livez HTTP/1.1\r\nHost: ostwerk\r\n\r\n").unwrap();
    let mut first = [0u8; 512];
    let n = stream.read(&mut first).unwrap();
    assert!(text(&first[..n]).starts_with("HTTP/1.1 200"), "{}", text(&first[..n]));
    let body = provider_body("Drained").to_string().into_bytes();
    let head = format!(
        "POST {PROVIDERS} HTTP/1.1\r\nHost: ostwerk\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (sent, rest) = body.split_at(body.len() / 2);
    stream.write_all(sent).unwrap();
    (stream, rest.to_vec())
}

/// Returns once the server accepts no new connections (the stop signal was handled).
fn wait_until_not_accepting(addr: &str, child: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_ok() {
        assert!(child.0.try_wait().unwrap().is_none(), "ostwerk exited");
        assert!(Instant::now() < deadline, "still accepting 10 s after the signal");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn sigint_lets_a_request_in_flight_finish_like_sigterm() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let (mut cmd, _database) = serve_command(&dir, &addr).await;
    let mut child = Running(cmd.spawn().unwrap());
    wait_until_live(&format!("http://{addr}"), &mut child).await;
    let (mut stream, rest) = half_sent_request(&addr, &token_for(&caseworker()));
    // Act
    child.signal("INT");
    wait_until_not_accepting(&addr, &mut child);
    stream.write_all(&rest).unwrap();
    let mut answer = String::new();
    let read = stream.read_to_string(&mut answer);
    // Assert
    assert!(read.is_ok(), "the connection was cut: {read:?}");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let status = child.wait_timeout(Duration::from_secs(30)).expect("ostwerk still runs");
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn requests_aborted_by_the_shutdown_timeout_are_logged() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let (mut cmd, _database) = serve_command(&dir, &addr).await;
    cmd.env("OSTWERK_SHUTDOWN_TIMEOUT", "1").env("OSTWERK_LOG_FORMAT", "json").stdout(Stdio::piped());
    let mut child = Running(cmd.spawn().unwrap());
    wait_until_live(&format!("http://{addr}"), &mut child).await;
    let (_stream, _never_sent) = half_sent_request(&addr, &token_for(&caseworker()));
    // Act
    child.signal("TERM");
    let (_, stdout) = child.stdout_after_exit(Duration::from_secs(30));
    // Assert
    let aborted = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.contains("aborted")));
    assert!(aborted.is_some(), "no line about the aborted request in {stdout}");
}

// ---------------------------------------------------------------------------
// (11) Logs and metrics an operator alerts on
// ---------------------------------------------------------------------------

#[test]
fn an_invalid_log_filter_is_refused_at_start() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ostwerk(&dir, &["migrate"]);
    cmd.env("OSTWERK_LOG", "verbose");
    // Act
    let output = cmd.output().unwrap();
    // Assert
    let stderr = refused_start(&output);
    assert!(stderr.contains("OSTWERK_LOG") && stderr.contains("verbose"), "{stderr}");
    assert!(!dir.path().join("ostwerk.db").exists(), "refused before doing anything");
}

async fn metrics_text(base: &str) -> String {
    let res = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn metrics_show_database_health_pool_jobs_and_build_info() {
    // Arrange
    let app = spawn_app().await;
    // Act: the expiry job runs once at start; wait for its first run.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = metrics_text(&app.address).await;
    while !text.contains("job_runs_total{job=\"expiry\",outcome=\"ok\"}") {
        assert!(Instant::now() < deadline, "no expiry run in {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = metrics_text(&app.address).await;
    }
    // Assert
    for expected in [
        "db_up 1",
        "db_pool_connections ",
        "db_pool_max_connections ",
        "db_pool_acquire_wait_seconds_bucket",
        "referrals_expired_total",
        &format!("ostwerk_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
    ] {
        assert!(text.contains(expected), "{expected} missing in {text}");
    }
}

#[tokio::test]
async fn audit_write_errors_are_counted() {
    // Arrange: the audit table is gone, so reading a client cannot be audited.
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &new_client()).await;
    execute(&app.db().await, "DROP TABLE audit_events").await;
    // Act
    let res = app.get(&format!("/api/v1/clients/{}", id_of(&client)), &caseworker()).await;
    // Assert
    assert_eq!(res.status(), 503, "no read without its audit event");
    assert!(metrics_text(&app.address).await.contains("audit_write_errors_total "));
}

#[tokio::test]
async fn unknown_http_methods_share_the_metrics_label_other() {
    // Arrange
    let app = spawn_app().await;
    let invented = reqwest::Method::from_bytes(b"OSTWERKPROBE").unwrap();
    // Act
    app.client.request(invented, app.url("/livez")).send().await.unwrap();
    // Assert
    let text = metrics_text(&app.address).await;
    assert!(!text.contains("OSTWERKPROBE"), "an invented method became a label");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test]
async fn metrics_on_their_own_address_are_not_served_on_the_api_address() {
    // Arrange
    let app = spawn_app().await;
    let separate = instance(&app, |s| s.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let metrics_base = format!("http://127.0.0.1:{}", separate.metrics_port.expect("a metrics port"));
    // Act
    let on_api = reqwest::get(format!("{}/metrics", separate.base)).await.unwrap();
    let on_own = metrics_text(&metrics_base).await;
    // Assert
    assert_eq!(on_api.status(), 404);
    assert!(on_own.contains("http_requests_total"), "{on_own}");
}

#[tokio::test]
async fn access_log_names_the_org_and_the_reason_of_a_refusal_but_never_the_token() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let (mut cmd, _database) = serve_command(&dir, &addr).await;
    cmd.env("OSTWERK_LOG", "info").env("OSTWERK_LOG_FORMAT", "json").stdout(Stdio::piped());
    let mut child = Running(cmd.spawn().unwrap());
    let base = format!("http://{addr}");
    wait_until_live(&base, &mut child).await;
    let provider = Caller::new("provider");
    let provider_token = token_for(&provider);
    let expired = token_with(&caseworker(), -3600);
    let http = reqwest::Client::new();
    // Act
    let forbidden = http.post(format!("{base}{PROVIDERS}")).bearer_auth(&provider_token).json(&provider_body("X"));
    assert_eq!(forbidden.send().await.unwrap().status(), 403);
    let unauthorized = http.get(format!("{base}{PROVIDERS}")).bearer_auth(&expired).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    child.signal("TERM");
    let (_, stdout) = child.stdout_after_exit(Duration::from_secs(30));
    // Assert
    let access: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["route"] == PROVIDERS)
        .collect();
    let refused = access.iter().find(|l| l["fields"]["status"] == 403).expect("a 403 line");
    assert_eq!(refused["fields"]["org"], provider.org.clone().unwrap().as_str(), "{refused}");
    assert!(refused["fields"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{refused}");
    let unauthenticated = access.iter().find(|l| l["fields"]["status"] == 401).expect("a 401 line");
    assert!(unauthenticated["fields"]["reason"].as_str().is_some_and(|r| !r.is_empty()), "{unauthenticated}");
    assert!(!stdout.contains(&provider_token) && !stdout.contains(&expired), "a token was logged");
}

// ---------------------------------------------------------------------------
// (12) Retention, restores, nonsense settings
// ---------------------------------------------------------------------------

#[tokio::test]
async fn nonsense_settings_refuse_to_start() {
    for (variable, value) in
        [("OSTWERK_STATS_MIN_CELL", "0"), ("OSTWERK_REFERRAL_EXPIRY_DAYS", "0"), ("OSTWERK_DB_MAX_CONNECTIONS", "0")]
    {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let (mut cmd, _database) = serve_command(&dir, &format!("127.0.0.1:{}", free_port())).await;
        cmd.env(variable, value);
        // Act
        let output = run_refused(&mut cmd);
        // Assert
        let stderr = refused_start(&output);
        assert!(stderr.contains(variable), "{variable}={value}: {stderr}");
    }
}

fn new_client() -> Value {
    client_body_with(serde_json::json!({"external_id": uuid::Uuid::new_v4().to_string()}))
}

fn run_against(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = ostwerk(&dir, args);
    cmd.env("DATABASE_URL", &app.database_url).env("OSTWERK_JWT_SECRET", SECRET);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "ostwerk {args:?}: {}", text(&output.stderr));
    output
}

#[tokio::test]
async fn purge_audit_deletes_events_older_than_the_retention() {
    // Arrange: one client's events are 400 days old, another's are new.
    let app = spawn_app().await;
    let old = app.create_client(&caseworker(), &new_client()).await;
    let ago = (chrono::Utc::now() - chrono::Duration::days(400)).format("%Y-%m-%d %H:%M:%S").to_string();
    execute(&app.db().await, &format!("UPDATE audit_events SET at = '{ago}'")).await;
    let new = app.create_client(&caseworker(), &new_client()).await;
    // Act
    let output = run_against(&app, &["purge-audit"], &[("OSTWERK_AUDIT_RETENTION_DAYS", "365")]);
    // Assert
    assert!(text(&output.stdout).contains("audit events older than 365 days deleted"), "{}", text(&output.stdout));
    assert!(app.audit_events(&format!("client_id={}", id_of(&old))).await.is_empty());
    assert!(!app.audit_events(&format!("client_id={}", id_of(&new))).await.is_empty());
}

#[tokio::test]
async fn erasures_export_lists_every_erased_client_and_no_other() {
    // Arrange
    let app = spawn_app().await;
    let erased = id_of(&app.create_client(&caseworker(), &new_client()).await);
    let kept = id_of(&app.create_client(&caseworker(), &new_client()).await);
    assert_eq!(app.delete(&format!("/api/v1/clients/{erased}"), &admin()).await.status(), 204);
    // Act
    let output = run_against(&app, &["erasures", "export"], &[]);
    // Assert
    let listed: Vec<String> = text(&output.stdout).lines().filter(|l| !l.starts_with('#')).map(str::to_owned).collect();
    assert_eq!(listed, vec![erased]);
    assert!(!text(&output.stdout).contains(&kept));
}

#[tokio::test]
async fn erasures_reapply_erases_clients_that_came_back_with_an_older_backup() {
    // Arrange: the client was erased in the newer database (the export), but
    // the restored backup still holds it.
    let app = spawn_app().await;
    let restored = id_of(&app.create_client(&caseworker(), &new_client()).await);
    let unknown = uuid::Uuid::now_v7();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("erasures.txt");
    std::fs::write(&file, format!("# ostwerk erasures export\n{restored}\n{unknown}\n")).unwrap();
    // Act
    let first = run_against(&app, &["erasures", "reapply", file.to_str().unwrap()], &[]);
    let second = run_against(&app, &["erasures", "reapply", file.to_str().unwrap()], &[]);
    // Assert
    assert_eq!(text(&first.stdout).trim(), "1 clients erased again, 0 already erased, 1 not in this database");
    assert_eq!(text(&second.stdout).trim(), "0 clients erased again, 1 already erased, 1 not in this database");
    assert_problem(app.get(&format!("/api/v1/clients/{restored}"), &caseworker()).await, 410, "gone").await;
}
