//! What the fault tests (`faults.rs`) need besides the usual helpers: the
//! real binary on a given database, a webhook receiver that records every
//! delivery (and can be slow), requests whose every answer is timed, and
//! reads straight from the database.
use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, QueryResult, Statement};
use serde_json::Value;

use crate::{helpers::*, operations::Running};

// ---------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------

/// `ostwerk serve` as a child process (killed when dropped) and its base URL.
pub struct Served {
    pub child: Running,
    pub base: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `ostwerk serve` on `database_url` (nothing inherited from the
/// test's environment; loopback webhook targets allowed, a fast outbox poll,
/// no per-principal rate limit) with `env` on top, and waits until it is live.
pub async fn serve_binary(database_url: &str, env: &[(&str, &str)]) -> Served {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ostwerk"));
    cmd.env_clear()
        .arg("serve")
        .current_dir(std::env::temp_dir())
        .env("OSTWERK_ADDR", &addr)
        .env("OSTWERK_JWT_SECRET", SECRET)
        .env("DATABASE_URL", database_url)
        .env("OSTWERK_LOG", "warn")
        .env("OSTWERK_WORKERS", "2")
        .env("OSTWERK_RATE_LIMIT", "0")
        .env("OSTWERK_WEBHOOK_ALLOW_PRIVATE", "true")
        .env("OSTWERK_WEBHOOK_POLL_MS", "50")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, value) in env {
        cmd.env(name, value);
    }
    let mut child = Running(cmd.spawn().unwrap());
    let base = format!("http://{addr}");
    ostwerk::startup::install_crypto_provider();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = client.get(format!("{base}/livez")).send().await
            && res.status() == StatusCode::OK
        {
            break;
        }
        assert!(child.0.try_wait().unwrap().is_none(), "ostwerk exited before it was live");
        assert!(Instant::now() < deadline, "ostwerk did not become live within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Served { child, base }
}

impl Served {
    /// `SIGKILL`: no drain, no clean-up, as when the machine dies.
    pub fn kill(&mut self) {
        self.child.0.kill().unwrap();
        self.child.0.wait().unwrap();
    }
}

// ---------------------------------------------------------------------------
// Timed requests
// ---------------------------------------------------------------------------

/// One answer: status, whether it carried `Retry-After`, the body, how long it took.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: bool,
    pub replayed: bool,
    pub body: Value,
    pub took: Duration,
}

impl Answer {
    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_else(|| panic!("no id in {}", self.body)).to_owned()
    }
}

/// A client whose requests give up after 20 s: a request that takes that
/// long has hung, which is itself the failure a test reports.
pub fn patient_client() -> reqwest::Client {
    ostwerk::startup::install_crypto_provider();
    // Idle connections are dropped well before the server's keep-alive
    // closes them, so no request races a closing connection.
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .unwrap()
}

/// `method base+path` as `caller`, with an `Idempotency-Key` when given.
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    caller: &Caller,
    key: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let started = Instant::now();
    let mut req = client.request(method.clone(), format!("{base}{path}")).bearer_auth(token_for(caller));
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        req = req.json(body);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{method} {path} got no answer: {e}"));
    let status = res.status().as_u16();
    let retry_after = res.headers().contains_key("retry-after");
    let replayed = res.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    let text = res.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, retry_after, replayed, body, took: started.elapsed() }
}

// ---------------------------------------------------------------------------
// A webhook receiver
// ---------------------------------------------------------------------------

/// A partner's endpoint on 127.0.0.1 that answers `204` after `delay`,
/// recording each delivery's `webhook-id` as it *arrives* (so a delivery
/// whose sender dies before the answer still counts as received).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    arrived: Arc<Mutex<Vec<String>>>,
}

pub async fn receiver(delay: Duration) -> Receiver {
    let arrived: Arc<Mutex<Vec<String>>> = Arc::default();
    let store = arrived.clone();
    let server = HttpServer::new(move || {
        let store = store.clone();
        App::new().default_service(web::to(move |req: HttpRequest, _body: web::Bytes| {
            let store = store.clone();
            async move {
                let id = req.headers().get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                store.lock().unwrap().push(id);
                tokio::time::sleep(delay).await;
                HttpResponse::NoContent().finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}/hook", server.addrs()[0]);
    tokio::spawn(server.run());
    Receiver { url, arrived }
}

impl Receiver {
    pub fn arrived(&self) -> Vec<String> {
        self.arrived.lock().unwrap().clone()
    }

    /// How often each `webhook-id` arrived.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for id in self.arrived() {
            *counts.entry(id).or_default() += 1;
        }
        counts
    }

    /// Waits (bounded) until at least `n` deliveries arrived; their number.
    pub async fn wait_for(&self, n: usize, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        while self.arrived.lock().unwrap().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.arrived.lock().unwrap().len()
    }
}

// ---------------------------------------------------------------------------
// The database, read directly
// ---------------------------------------------------------------------------

pub async fn connect(database_url: &str) -> DatabaseConnection {
    Database::connect(database_url).await.expect("the test reaches the database directly")
}

pub async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap()
}

/// The single number `sql` selects as `n`.
pub async fn number(db: &DatabaseConnection, sql: &str) -> i64 {
    rows(db, sql).await[0].try_get::<i64>("", "n").unwrap()
}

/// The ids (column `id`, a UUID) `sql` selects, as strings.
pub async fn ids(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    rows(db, sql).await.iter().map(|r| r.try_get::<uuid::Uuid>("", "id").unwrap().to_string()).collect()
}

/// Polls `check` every 50 ms until it holds or `within` has passed; whether it held.
pub async fn eventually<F: AsyncFnMut() -> bool>(within: Duration, mut check: F) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The database name of a PostgreSQL URL.
pub fn database_name(url: &str) -> String {
    let path = url.split('?').next().unwrap();
    path.rsplit('/').next().unwrap().to_owned()
}

/// Ends every server process serving database `name` (PostgreSQL), as a
/// database restart or a failover does to its clients' connections.
pub async fn terminate_backends(name: &str) -> u64 {
    let admin_url = std::env::var("TEST_DATABASE_URL").unwrap();
    let admin = connect(&admin_url).await;
    let killed = rows(
        &admin,
        &format!(
            "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ),
    )
    .await[0]
        .try_get::<i64>("", "n")
        .unwrap();
    admin.close().await.ok();
    u64::try_from(killed).unwrap()
}

// ---------------------------------------------------------------------------
// Parties, made through the API of any instance
// ---------------------------------------------------------------------------

/// The `201` answer of a create, or a panic naming what failed.
pub async fn create(client: &reqwest::Client, base: &str, path: &str, caller: &Caller, body: &Value) -> String {
    let answer = call(client, base, Method::POST, path, caller, None, Some(body)).await;
    assert_eq!(answer.status, 201, "POST {path}: {}", answer.body);
    answer.id()
}

/// A provider and its open measure with `capacity` seats, open to everybody.
pub async fn open_measure(client: &reqwest::Client, base: &str, capacity: i64) -> String {
    let provider = create(client, base, "/api/v1/providers", &caseworker(), &provider_body("Bildungswerk Ost")).await;
    let measure = serde_json::json!({
        "provider_id": provider,
        "title": "Bewerbungswerkstatt Leipzig-Ost",
        "kind": "application_training",
        "funding": "sgb3_45",
        "district": "21",
        "capacity": capacity,
        "status": "open"
    });
    create(client, base, "/api/v1/measures", &caseworker(), &measure).await
}

/// `n` clients created by `creator`, eight at a time.
pub async fn clients(client: &reqwest::Client, base: &str, creator: &Caller, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        let made = futures_util::future::join_all(chunk.iter().map(|i| {
            let body = client_body_with(serde_json::json!({"external_id": format!("C-{i}")}));
            async move { create(client, base, "/api/v1/clients", creator, &body).await }
        }))
        .await;
        ids.extend(made);
    }
    ids
}

/// Lets every lease (webhook deliveries and idempotency claims) run out
/// now, as the passing of their minutes would — portable across both
/// databases, since the values are bound, not spelt in SQL.
pub async fn expire_leases(db: &DatabaseConnection) {
    use ostwerk::entities::{idempotency_key as key, webhook_delivery as delivery};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let past = chrono::Utc::now() - chrono::Duration::minutes(5);
    delivery::Entity::update_many()
        .col_expr(delivery::Column::LockedUntil, Expr::value(Some(past)))
        .filter(delivery::Column::Status.eq("pending"))
        .exec(db)
        .await
        .unwrap();
    key::Entity::update_many()
        .col_expr(key::Column::LeaseUntil, Expr::value(Some(past)))
        .filter(key::Column::State.eq("in_progress"))
        .exec(db)
        .await
        .unwrap();
}
