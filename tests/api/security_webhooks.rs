//! Webhook targets and delivery under attack (issue 14 items 6 and 8b,
//! issue 16 item 11): SSRF through IPv6 forms and unresolvable names, one
//! organisation's slow targets starving another's, subscription floods, and
//! failures an operator can see.
use std::{
    io::Read,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{App, HttpResponse, HttpServer, web};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};

use crate::helpers::*;

/// An endpoint on 127.0.0.1 answering `status`; counts what it receives.
async fn receiver(status: u16) -> (String, Arc<Mutex<usize>>) {
    let got: Arc<Mutex<usize>> = Arc::default();
    let store = got.clone();
    let server = HttpServer::new(move || {
        let store = store.clone();
        App::new().default_service(web::to(move || {
            let store = store.clone();
            async move {
                *store.lock().unwrap() += 1;
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}/hook", server.addrs()[0]);
    tokio::spawn(server.run());
    (url, got)
}

/// A partner server that accepts connections and never answers; counts them.
async fn hanging_server() -> (String, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted: Arc<Mutex<usize>> = Arc::default();
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            *count.lock().unwrap() += 1;
        }
    });
    (url, accepted)
}

/// Polls `done` every 20 ms until it holds or `limit` passes; returns whether it held.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

fn subscription(url: &str) -> Value {
    json!({"url": url, "events": ["measure.changed"]})
}

/// The value of one Prometheus sample (`name{labels}`), 0 when absent.
async fn metric(app: &TestApp, sample: &str) -> f64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test]
async fn webhook_targets_reaching_internal_addresses_through_ipv6_forms_are_refused() {
    // Arrange: the outside review's reproductions — NAT64 to 127.0.0.1 and to
    // the cloud metadata address, IPv4-compatible loopback, 6to4 of
    // 127.0.0.1, the old site-local range.
    let app = spawn_app().await;
    for url in [
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[::127.0.0.1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[fec0::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.1/hook",
    ] {
        // Act
        let res = app.post("/api/v1/webhooks", &caseworker(), &subscription(url)).await;
        // Assert
        let problem = assert_problem(res, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}");
    }
}

#[tokio::test]
async fn a_webhook_target_whose_name_does_not_resolve_is_refused() {
    // Arrange: `.invalid` never resolves; the check used to fail open and
    // leave the name to be resolved (to anything) at delivery.
    let app = spawn_app().await;
    // Act
    let res = app.post("/api/v1/webhooks", &caseworker(), &subscription("https://ostwerk-partner.invalid/hook")).await;
    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "url");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("does not resolve"), "{problem}");
}

#[tokio::test]
async fn one_orgs_hanging_targets_do_not_delay_another_orgs_delivery() {
    // Arrange: a provider subscribes eight targets that accept and never
    // answer, and two events keep them all busy.
    let app = spawn_app_with(Options { webhook_allow_private: true, ..Default::default() }).await;
    let (hang_url, accepted) = hanging_server().await;
    let owner = app.create_provider("Träger mit langsamen Servern").await;
    let slow = Caller::new("provider").with_org(id_of(&owner));
    for i in 0..8 {
        app.create("/api/v1/webhooks", &slow, &subscription(&format!("{hang_url}/h{i}"))).await;
    }
    for n in 0..2 {
        app.create_measure(&with(measure_body(&id_of(&owner)), json!({"title": format!("Kurs {n}")}))).await;
    }
    assert!(eventually(Duration::from_secs(10), || *accepted.lock().unwrap() >= 1).await, "slow targets reached");
    let (fast_url, got) = receiver(204).await;
    app.create("/api/v1/webhooks", &caseworker(), &subscription(&fast_url)).await;
    // Act: one more event, behind sixteen hanging deliveries.
    let sent = Instant::now();
    app.create_measure(&with(measure_body(&id_of(&owner)), json!({"title": "Kurs 3"}))).await;
    // Assert: the office's target gets it well before a single slow attempt
    // (10 s) times out; sequential delivery took 10 s per slow target.
    let delivered = eventually(Duration::from_secs(6), || *got.lock().unwrap() >= 1).await;
    assert!(delivered, "the office's delivery waited behind the slow organisation ({:?})", sent.elapsed());
    assert!(*accepted.lock().unwrap() <= 4 + 1, "the slow org held more than its share of slots");
}

#[tokio::test]
async fn an_organisation_cannot_hold_more_webhooks_than_the_cap() {
    // Arrange: a job centre at the default cap of 20.
    let app = spawn_app_with(Options { webhook_allow_private: true, ..Default::default() }).await;
    let jobcenter = Caller::new("jobcenter").with_org("jc-flood");
    for i in 0..20 {
        app.create("/api/v1/webhooks", &jobcenter, &subscription(&format!("https://partner.example/h{i}"))).await;
    }
    // Act
    let own = app.post("/api/v1/webhooks", &jobcenter, &subscription("https://partner.example/h20")).await;
    let by_admin = app
        .post(
            "/api/v1/webhooks",
            &admin(),
            &json!({"url": "https://partner.example/h21", "events": ["measure.changed"], "org": "jc-flood"}),
        )
        .await;
    let other = app
        .post("/api/v1/webhooks", &Caller::new("jobcenter").with_org("jc-other"), &subscription("https://p.example/h"))
        .await;
    // Assert
    let problem = assert_problem(own, 409, "webhook-limit-reached").await;
    assert_eq!(problem["limit"], 20);
    assert_problem(by_admin, 409, "webhook-limit-reached").await;
    assert_eq!(other.status(), 201, "another organisation is not affected");
}

#[tokio::test]
async fn failed_deliveries_are_counted_by_reason_and_when_given_up() {
    // Arrange: a target that answers 500.
    let app = spawn_app_with(Options { webhook_allow_private: true, ..Default::default() }).await;
    let (url, got) = receiver(500).await;
    let hook = app.create("/api/v1/webhooks", &caseworker(), &subscription(&url)).await;
    let failures = r#"ostwerk_webhook_delivery_failures_total{reason="http_status"}"#;
    let given_up = "ostwerk_webhook_deliveries_failed_permanently_total";
    let failures_before = metric(&app, failures).await;
    let given_up_before = metric(&app, given_up).await;
    let provider = app.create_provider("Träger").await;
    // Act: one failed attempt …
    app.create_measure(&measure_body(&id_of(&provider))).await;
    assert!(eventually(Duration::from_secs(10), || *got.lock().unwrap() >= 1).await);
    let deliveries = format!("/api/v1/webhooks/{}/deliveries", id_of(&hook));
    let mut attempts = Value::Null;
    for _ in 0..250 {
        attempts =
            app.get(&deliveries, &caseworker()).await.json::<Value>().await.unwrap()["items"][0]["attempts"].clone();
        if attempts == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(attempts, 1);
    let failures_after_one = metric(&app, failures).await;
    // … then the same delivery 24 h old, due again: the last attempt.
    let mut settings = app.settings.clone();
    settings.database_url = app.database_url.clone();
    let db = ostwerk::db::connect(&settings).await.unwrap();
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(25);
    use ostwerk::entities::webhook_delivery as delivery;
    delivery::Entity::update_many()
        .col_expr(delivery::Column::CreatedAt, Expr::value(long_ago))
        .col_expr(delivery::Column::NextAttemptAt, Expr::value(long_ago))
        .filter(delivery::Column::WebhookId.eq(uuid::Uuid::parse_str(&id_of(&hook)).unwrap()))
        .exec(&db)
        .await
        .unwrap();
    let mut status = Value::Null;
    for _ in 0..250 {
        status = app.get(&deliveries, &caseworker()).await.json::<Value>().await.unwrap()["items"][0]["status"].clone();
        if status == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Assert
    assert_eq!(status, "failed");
    assert!(failures_after_one >= failures_before + 1.0, "{failures_before} → {failures_after_one}");
    assert!(metric(&app, given_up).await >= given_up_before + 1.0);
}

/// `ostwerk serve` as a child process; killed if the test ends early.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_failed_delivery_is_logged_with_target_host_and_reason_never_the_query() {
    // Arrange: the real binary with JSON logs on stdout, and a target whose
    // query carries the partner's own token.
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ostwerk"));
    cmd.arg("serve")
        .current_dir(dir.path())
        .env_remove("OSTWERK_JWT_JWKS_URL")
        .env("OSTWERK_JWT_SECRET", SECRET)
        .env("OSTWERK_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display()))
        .env("OSTWERK_LOG", "warn")
        .env("OSTWERK_LOG_FORMAT", "json")
        .env("OSTWERK_WORKERS", "1")
        .env("OSTWERK_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("OSTWERK_WEBHOOK_POLL_MS", "50")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Served(cmd.spawn().unwrap());
    let http = reqwest::Client::new();
    let started = Instant::now();
    while !http.get(format!("{base}/livez")).send().await.is_ok_and(|r| r.status() == 200) {
        assert!(child.0.try_wait().unwrap().is_none(), "ostwerk exited before it was live");
        assert!(started.elapsed() < Duration::from_secs(30), "ostwerk did not become live");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (url, got) = receiver(503).await;
    let office = token_for(&caseworker());
    let post = |path: &str, body: Value| http.post(format!("{base}{path}")).bearer_auth(&office).json(&body).send();
    let hook: Value = post("/api/v1/webhooks", subscription(&format!("{url}?token=partner-geheim")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let provider: Value = post("/api/v1/providers", json!({"name": "Träger", "kind": "association"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Act: a measure event, which the target answers with 503.
    let res = post("/api/v1/measures", measure_body(&id_of(&provider))).await.unwrap();
    assert_eq!(res.status(), 201);
    assert!(eventually(Duration::from_secs(10), || *got.lock().unwrap() >= 1).await, "delivery attempted");
    // The failure is logged before the attempt is recorded: wait for the record.
    let deliveries = format!("{base}/api/v1/webhooks/{}/deliveries", id_of(&hook));
    let started = Instant::now();
    loop {
        let page: Value = http.get(&deliveries).bearer_auth(&office).send().await.unwrap().json().await.unwrap();
        if page["items"][0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "attempt not recorded: {page}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::process::Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status().unwrap();
    let mut output = String::new();
    child.0.stdout.take().unwrap().read_to_string(&mut output).unwrap();
    // Assert
    let host = url.trim_start_matches("http://").split('/').next().unwrap().to_owned();
    let lines: Vec<Value> = output.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let warning = lines
        .iter()
        .find(|l| l["fields"]["message"].as_str().is_some_and(|m| m.starts_with("webhook delivery attempt failed")))
        .unwrap_or_else(|| panic!("a WARN line for the failed attempt in {output}"));
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["fields"]["target_host"], host.as_str(), "{warning}");
    assert_eq!(warning["fields"]["reason"], "http_status", "{warning}");
    assert!(warning["fields"]["error"].as_str().unwrap().contains("503"), "{warning}");
    assert!(!output.contains("partner-geheim"), "the target's query must never be logged");
}
