//! Operations (SPEC §4): health, readiness, metrics, docs, rate limiting,
//! CORS, database outages, signals and development mode of the real binary.
use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::{net::TcpListener, task::AbortHandle};

use crate::{helpers::*, operations::Running};

const PROVIDERS: &str = "/api/v1/providers";
const FRONTEND: &str = "https://frontend.example";

async fn get_public(app: &TestApp, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).send().await.unwrap()
}

// ---- health, metrics, docs ----------------------------------------------------

#[tokio::test]
async fn livez_answers_200_without_a_token() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = get_public(&app, "/livez").await;
    // Assert
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn healthz_is_an_alias_of_livez() {
    let app = spawn_app().await;

    let res = get_public(&app, "/healthz").await;

    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn readyz_answers_200_when_the_database_is_reachable() {
    let app = spawn_app().await;

    let res = get_public(&app, "/readyz").await;

    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    assert_eq!(app.get(PROVIDERS, &caseworker()).await.status(), StatusCode::OK);

    let res = get_public(&app, "/metrics").await;

    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"route="/api/v1/providers""#)
            && l.contains(r#"status="200""#)),
        "no http_requests_total line for GET /api/v1/providers 200 in:\n{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"), "no latency histogram");
    assert!(text.contains("db_pool_connections"), "no pool gauge");
}

#[tokio::test]
async fn docs_without_trailing_slash_redirects_to_docs_slash() {
    let app = spawn_app().await;

    let res = get_public(&app, "/docs").await;

    assert!(res.status().is_redirection(), "status {}", res.status());
    assert_eq!(res.headers()["location"], "/docs/");
}

/// The `src` and `href` attribute values of an HTML page.
fn referenced_urls(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (i, _) in html.match_indices(attr) {
            let rest = &html[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                urls.push(rest[..end].to_owned());
            }
        }
    }
    urls
}

#[tokio::test]
async fn docs_page_uses_no_cdn() {
    let app = spawn_app().await;

    let res = get_public(&app, "/docs/").await;

    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "not the Swagger UI page:\n{html}");
    let urls = referenced_urls(&html);
    assert!(urls.iter().any(|u| u.ends_with("swagger-ui-bundle.js")), "bundle not referenced: {urls:?}");
    for url in &urls {
        assert!(
            !url.starts_with("http:") && !url.starts_with("https:") && !url.starts_with("//"),
            "external URL {url}"
        );
    }
    for cdn in ["unpkg", "jsdelivr", "cdnjs", "googleapis"] {
        assert!(!html.contains(cdn), "docs page mentions {cdn}");
    }
}

#[tokio::test]
async fn every_asset_the_docs_page_references_is_served_locally() {
    let app = spawn_app().await;
    let html = get_public(&app, "/docs/").await.text().await.unwrap();

    let mut statuses = Vec::new();
    for url in referenced_urls(&html) {
        let path = format!("/docs/{}", url.trim_start_matches("./"));
        statuses.push((path.clone(), get_public(&app, &path).await.status()));
    }

    assert!(!statuses.is_empty());
    for (path, status) in statuses {
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn openapi_document_is_served_as_json() {
    let app = spawn_app().await;

    let res = get_public(&app, "/api-docs/openapi.json").await;

    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    assert!(doc["paths"][PROVIDERS].is_object());
}

// ---- rate limiting ------------------------------------------------------------

async fn spawn_rate_limited_app() -> TestApp {
    spawn_app_with(Options { rate_limit: 3, ..Default::default() }).await
}

#[tokio::test]
async fn fourth_request_within_a_minute_is_429_with_retry_after() {
    // Arrange
    let app = spawn_rate_limited_app().await;
    let caller = caseworker();
    for _ in 0..3 {
        assert_eq!(app.get(PROVIDERS, &caller).await.status(), StatusCode::OK);
    }
    // Act
    let res = app.get(PROVIDERS, &caller).await;
    // Assert
    let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_problem(res, 429, "rate-limited").await;
}

#[tokio::test]
async fn rate_limit_of_one_principal_does_not_affect_another() {
    let app = spawn_rate_limited_app().await;
    let busy = caseworker();
    for _ in 0..4 {
        app.get(PROVIDERS, &busy).await;
    }

    let res = app.get(PROVIDERS, &caseworker()).await;

    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn health_endpoints_are_not_rate_limited() {
    let app = spawn_rate_limited_app().await;

    let mut statuses = Vec::new();
    for path in ["/livez", "/healthz", "/readyz"] {
        for _ in 0..5 {
            statuses.push(get_public(&app, path).await.status());
        }
    }

    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
}

// ---- CORS ---------------------------------------------------------------------

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url(PROVIDERS))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

async fn spawn_cors_app() -> TestApp {
    spawn_app_with(Options { cors_origins: FRONTEND.into(), ..Default::default() }).await
}

#[tokio::test]
async fn cors_preflight_from_an_allowed_origin_is_allowed() {
    let app = spawn_cors_app().await;

    let res = preflight(&app, FRONTEND).await;

    assert!(res.status().is_success(), "status {}", res.status());
    assert_eq!(res.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap()), Some(FRONTEND));
}

#[tokio::test]
async fn cors_preflight_from_a_foreign_origin_gets_no_allow_origin() {
    let app = spawn_cors_app().await;

    let res = preflight(&app, "https://evil.example").await;

    assert!(res.headers().get("access-control-allow-origin").is_none(), "headers: {:?}", res.headers());
}

// ---- database outage (PostgreSQL only) -----------------------------------------

/// A TCP proxy in front of PostgreSQL that the test can cut and restore, to
/// simulate a database outage without stopping the shared server. While cut,
/// established connections are torn down and new ones are closed at once.
pub(crate) struct CuttableProxy {
    pub(crate) port: u16,
    state: Arc<Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    cut: bool,
    connections: Vec<AbortHandle>,
}

impl CuttableProxy {
    pub(crate) async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                // Check and register under one lock, so `cut` cannot miss a connection.
                let mut state = shared.lock().unwrap();
                if state.cut {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                state.connections.retain(|c| !c.is_finished());
                state.connections.push(task.abort_handle());
            }
        });
        Self { port, state }
    }

    pub(crate) fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.cut = true;
        for connection in state.connections.drain(..) {
            connection.abort();
        }
    }

    pub(crate) fn restore(&self) {
        self.state.lock().unwrap().cut = false;
    }
}

/// `scheme://user:pass@host:port/db?q` → (`host:port`, the URL with `authority` instead).
pub(crate) fn split_host(url: &str, authority: &str) -> (String, String) {
    let scheme_end = url.find("://").unwrap() + 3;
    let rest = &url[scheme_end..];
    let host_start = rest.rfind('@').map(|i| i + 1).unwrap_or(0);
    let host_end = rest[host_start..].find(['/', '?']).map(|i| host_start + i).unwrap_or(rest.len());
    let host = rest[host_start..host_end].to_owned();
    let host = if host.contains(':') { host } else { format!("{host}:5432") };
    let replaced = format!("{}{}{}{}", &url[..scheme_end], &rest[..host_start], authority, &rest[host_end..]);
    (host, replaced)
}

async fn wait_for_status(app: &TestApp, path: &str, wanted: StatusCode, within: Duration) -> StatusCode {
    let deadline = Instant::now() + within;
    loop {
        let status = get_public(app, path).await.status();
        if status == wanted || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn readyz_reports_a_database_outage_and_recovers_by_itself() {
    if !is_postgres() {
        eprintln!("skipped: the outage test needs PostgreSQL (set TEST_DATABASE_URL)");
        return;
    }
    // Arrange: the app reaches its database only through the proxy.
    let (database_url, _dir) = fresh_database().await;
    let (upstream, _) = split_host(&database_url, "");
    let proxy = CuttableProxy::start(upstream).await;
    let (_, proxied_url) = split_host(&database_url, &format!("127.0.0.1:{}", proxy.port));
    let app = spawn_app_with(Options { database_url: Some(proxied_url), ..Default::default() }).await;
    assert_eq!(get_public(&app, "/readyz").await.status(), StatusCode::OK);

    // Act: the database goes away.
    proxy.cut();
    let down = get_public(&app, "/readyz").await;
    let api_while_down = app.get(PROVIDERS, &caseworker()).await;

    // Assert
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.headers().contains_key("retry-after"), "503 without Retry-After");
    assert!(api_while_down.headers().contains_key("retry-after"), "API 503 without Retry-After");
    assert_problem(api_while_down, 503, "service-unavailable").await;

    // Act: it comes back. Waiting for recovery is what is tested, not ordering.
    proxy.restore();
    let status = wait_for_status(&app, "/readyz", StatusCode::OK, Duration::from_secs(10)).await;

    // Assert
    assert_eq!(status, StatusCode::OK, "readyz did not recover");
    assert_eq!(app.get(PROVIDERS, &caseworker()).await.status(), StatusCode::OK);
}

#[test]
fn split_host_replaces_only_host_and_port() {
    let (host, url) = split_host("postgres://u:p@127.0.0.1:5432/db_1?sslmode=disable", "127.0.0.1:9");
    assert_eq!(host, "127.0.0.1:5432");
    assert_eq!(url, "postgres://u:p@127.0.0.1:9/db_1?sslmode=disable");
    let (host, url) = split_host("postgres://localhost/db", "h:1");
    assert_eq!(host, "localhost:5432");
    assert_eq!(url, "postgres://h:1/db");
}

// ---- the real binary: signals and development mode -----------------------------

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `ostwerk serve` on `addr` with a SQLite file in `dir`, nothing inherited
/// from the test's environment.
fn serve_command(dir: &tempfile::TempDir, addr: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ostwerk"));
    for var in ["OSTWERK_JWT_SECRET", "OSTWERK_JWT_JWKS_URL", "OSTWERK_JWT_ISSUER", "OSTWERK_JWT_AUDIENCE"] {
        cmd.env_remove(var);
    }
    cmd.arg("serve")
        .current_dir(dir.path())
        .env("OSTWERK_ADDR", addr)
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display()))
        .env("OSTWERK_LOG", "warn")
        .env("OSTWERK_WORKERS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Polls `/livez` until the binary answers (it migrates first).
async fn wait_until_live(base: &str, child: &mut Running) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = client.get(format!("{base}/livez")).send().await
            && res.status() == StatusCode::OK
        {
            return;
        }
        assert!(child.0.try_wait().unwrap().is_none(), "ostwerk exited before it was live");
        assert!(Instant::now() < deadline, "ostwerk did not become live within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigterm_stops_the_server_with_exit_status_0() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = serve_command(&dir, &addr.to_string());
    cmd.env("OSTWERK_JWT_SECRET", SECRET).stderr(Stdio::null());
    let mut child = Running(cmd.spawn().unwrap());
    wait_until_live(&format!("http://{addr}"), &mut child).await;

    // Act
    let kill = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status().unwrap();

    // Assert
    assert!(kill.success());
    let status = child.wait_timeout(Duration::from_secs(35)).expect("still running 35 s after SIGTERM");
    assert_eq!(status.code(), Some(0), "{status}");
}

#[tokio::test]
async fn development_mode_refuses_a_non_loopback_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve_command(&dir, &format!("0.0.0.0:{}", free_port()));
    let mut child = Running(cmd.stderr(Stdio::piped()).spawn().unwrap());

    let status = child.wait_timeout(Duration::from_secs(30)).expect("development mode started on 0.0.0.0");

    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("loopback"), "stderr: {stderr}");
}

#[tokio::test]
async fn development_mode_prints_a_working_token_per_role() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Running(serve_command(&dir, &addr).stderr(Stdio::piped()).spawn().unwrap());
    let (lines_tx, lines) = mpsc::channel();
    let stderr = child.0.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The banner: a line naming the role, then the indented token.
    let mut banner = Vec::new();
    let mut token = None;
    while token.is_none() {
        let line = lines.recv_timeout(Duration::from_secs(30)).expect("no caseworker token on stderr");
        if banner.last().is_some_and(|l: &String| l.starts_with("caseworker")) {
            token = Some(line.trim().to_owned());
        }
        banner.push(line);
    }
    let token = token.unwrap();
    for role in ["admin", "jobcenter", "provider", "employer", "analyst"] {
        while !banner.iter().any(|l| l.starts_with(role)) {
            banner.push(lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("no {role} token")));
        }
    }
    let base = format!("http://{addr}");
    wait_until_live(&base, &mut child).await;

    // Act
    let res = reqwest::Client::new().get(format!("{base}{PROVIDERS}")).bearer_auth(&token).send().await.unwrap();

    // Assert
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn json_logs_carry_the_request_id_and_never_the_token_or_query() {
    // Arrange
    ostwerk::startup::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut cmd = serve_command(&dir, &addr.to_string());
    cmd.env("OSTWERK_JWT_SECRET", SECRET)
        .env("OSTWERK_LOG", "info")
        .env("OSTWERK_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Running(cmd.spawn().unwrap());
    let base = format!("http://{addr}");
    wait_until_live(&base, &mut child).await;
    let token = token_for(&caseworker());
    // Act
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/clients?q=Schmidt"))
        .bearer_auth(&token)
        .header("X-Request-Id", "trace-json-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    std::process::Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status().unwrap();
    let output = child.0.wait_with_output_ref();
    // Assert
    let lines: Vec<Value> = output.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let access = lines
        .iter()
        .find(|l| l["fields"]["route"] == "/api/v1/clients")
        .unwrap_or_else(|| panic!("an access log line in {output}"));
    assert_eq!(access["span"]["request_id"], "trace-json-42", "{access}");
    assert!(!output.contains(&token), "the token must never be logged");
    assert!(!output.contains("Schmidt"), "query strings (names) must never be logged");
}

trait WaitWithOutput {
    fn wait_with_output_ref(&mut self) -> String;
}

impl WaitWithOutput for Child {
    /// Waits for the exit and returns what the child wrote to stdout.
    fn wait_with_output_ref(&mut self) -> String {
        use std::io::Read;
        let mut out = String::new();
        if let Some(mut stdout) = self.stdout.take() {
            stdout.read_to_string(&mut out).unwrap();
        }
        let _ = self.wait();
        out
    }
}
