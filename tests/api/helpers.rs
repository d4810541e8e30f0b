#![allow(dead_code)] // shared by every test file; not each uses every helper
//! `spawn_app()`: a fresh database, the real application on a random port,
//! and typed helpers to call it with real tokens.
use std::sync::Arc;

use ostwerk::{
    auth::{DevToken, mint_hs256},
    config::Settings,
    startup::Application,
};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long!";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database_url: String,
    pub settings: Settings,
    _dir: Option<Arc<tempfile::TempDir>>,
}

/// A last change to the settings of a test app.
pub type Configure = Box<dyn FnOnce(&mut Settings) + Send>;

/// Options for unusual apps (JWKS, rate limits, CORS).
#[derive(Default)]
pub struct Options {
    pub jwks_url: Option<String>,
    pub jwt_secret: Option<Option<String>>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub rate_limit: u32,
    pub cors_origins: String,
    pub database_url: Option<String>,
    pub webhook_allow_private: bool,
    /// Any further change to the settings, applied last.
    pub configure: Option<Configure>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

/// A fresh database: a new PostgreSQL database per test when
/// `TEST_DATABASE_URL` is set, else a SQLite file in a temp dir.
pub async fn fresh_database() -> (String, Option<Arc<tempfile::TempDir>>) {
    match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(admin_url) => {
            use sea_orm::{ConnectionTrait, Database};
            let name = format!("ostwerk_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url).await.expect("connect to TEST_DATABASE_URL");
            admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
            admin.close().await.ok();
            (replace_database(&admin_url, &name), None)
        }
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("ostwerk.db").display());
            (url, Some(Arc::new(dir)))
        }
    }
}

/// `postgres://u@h:5432/db?x` with another database name.
pub fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

pub fn is_postgres() -> bool {
    std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    let (database_url, dir) = match options.database_url {
        Some(url) => (url, None),
        None => fresh_database().await,
    };
    let mut settings = Settings::defaults().expect("default settings");
    settings.database_url = database_url.clone();
    settings.addr = "127.0.0.1:0".parse().unwrap();
    settings.jwt_secret = options.jwt_secret.unwrap_or(Some(SECRET.to_owned()));
    settings.jwt_jwks_url = options.jwks_url;
    settings.jwt_issuer = options.issuer;
    settings.jwt_audience = options.audience;
    settings.jwks_min_refresh_secs = 0;
    settings.rate_limit = options.rate_limit;
    settings.cors_origins = options.cors_origins;
    settings.workers = 2;
    settings.shutdown_timeout = 5;
    settings.webhook_allow_private = options.webhook_allow_private;
    settings.webhook_poll_ms = 50;
    if let Some(configure) = options.configure {
        configure(&mut settings);
    }
    let app = Application::build(settings.clone()).await.expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        // Idle connections are dropped before the server's keep-alive (5 s)
        // closes them: reusing one just as the server closes it fails the
        // request (`IncompleteMessage`), as a slow step under CI load showed.
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap(),
        database_url,
        settings,
        _dir: dir,
    }
}

/// A caller: a role (or several), an org, a subject.
#[derive(Clone, Debug)]
pub struct Caller {
    pub roles: Vec<&'static str>,
    pub org: Option<String>,
    pub sub: String,
}

impl Caller {
    pub fn new(role: &'static str) -> Self {
        let org = match role {
            "provider" | "employer" => Some(uuid::Uuid::now_v7().to_string()),
            "jobcenter" => Some("jc-leipzig".to_owned()),
            _ => None,
        };
        Self { roles: vec![role], org, sub: format!("{role}-{}", uuid::Uuid::new_v4().simple()) }
    }
    pub fn with_org(mut self, org: impl Into<String>) -> Self {
        self.org = Some(org.into());
        self
    }
}

pub fn admin() -> Caller {
    Caller::new("admin")
}
pub fn caseworker() -> Caller {
    Caller::new("caseworker")
}

/// Mints an HS256 token for `caller` with the test secret.
pub fn token_for(caller: &Caller) -> String {
    token_with(caller, 3600)
}

pub fn token_with(caller: &Caller, ttl: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    mint_hs256(
        SECRET.as_bytes(),
        &DevToken {
            sub: &caller.sub,
            roles: caller.roles.clone(),
            org: caller.org.as_deref(),
            iat: now,
            exp: now + ttl,
            iss: None,
            aud: None,
        },
    )
    .unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn request(&self, method: Method, path: &str, caller: Option<&Caller>) -> RequestBuilder {
        let rb = self.client.request(method, self.url(path));
        match caller {
            Some(c) => rb.bearer_auth(token_for(c)),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str, caller: &Caller) -> Response {
        self.request(Method::GET, path, Some(caller)).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, caller: &Caller, body: &Value) -> Response {
        self.request(Method::POST, path, Some(caller)).json(body).send().await.unwrap()
    }

    pub async fn patch(&self, path: &str, caller: &Caller, body: &Value) -> Response {
        self.request(Method::PATCH, path, Some(caller))
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str, caller: &Caller) -> Response {
        self.request(Method::DELETE, path, Some(caller)).send().await.unwrap()
    }

    /// Creates a provider as a caseworker and returns its JSON.
    pub async fn create_provider(&self, name: &str) -> Value {
        let res = self.post("/api/v1/providers", &caseworker(), &provider_body(name)).await;
        assert_eq!(res.status(), 201, "create provider");
        res.json().await.unwrap()
    }

    /// A direct database connection (to prove what is stored).
    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        sea_orm::Database::connect(&self.database_url).await.unwrap()
    }
}

pub fn provider_body(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "kind": "training_provider",
        "azav_certified": true,
        "address": {"street": "Eisenbahnstraße 66", "postal_code": "04315", "city": "Leipzig"},
        "district": "21",
        "contact": {"name": "Petra Lehmann", "email": "kontakt@example.org", "phone": "+49 341 1234567"},
        "website": "https://example.org"
    })
}

/// Asserts a problem+json answer with `status` and problem `slug`; returns the body.
pub async fn assert_problem(res: Response, status: u16, slug: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(ct.starts_with("application/problem+json"), "content-type was {ct}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["type"], format!("https://ostwerk.dev/problems/{slug}"), "body: {body}");
    assert_eq!(body["status"], status);
    body
}

/// The six roles of SPEC §2, in the column order of the authorization matrices.
pub const ROLES: [&str; 6] = ["admin", "caseworker", "jobcenter", "provider", "employer", "analyst"];

/// A caller with `role`; a provider principal acts for `provider_id` (its own
/// record), employers and job centres for an organisation of their own.
pub fn caller_acting_for(role: &'static str, provider_id: &str) -> Caller {
    let caller = Caller::new(role);
    if role == "provider" { caller.with_org(provider_id) } else { caller }
}

// --- registry fixtures (clients, employers, vacancies, measures) and shared checks ---

/// A client with every field of SPEC §3 set to a valid value.
pub fn client_body() -> Value {
    serde_json::json!({
        "external_id": "JC-4711-0815",
        "first_name": "Mara",
        "last_name": "Beispiel",
        "date_of_birth": "1998-04-12",
        "email": "mara.beispiel@example.org",
        "phone": "+49 341 555 0101",
        "address": {"street": "Hermann-Liebmann-Straße 12", "postal_code": "04315", "city": "Leipzig"},
        "district": "21",
        "target_groups": ["unemployed", "single_parent"],
        "education_level": "vocational",
        "occupation_codes": ["62102"],
        "languages": ["de", "ar"],
        "available_from": "2026-12-01",
        "hours_per_week": 30,
        "consent": {"data_processing": true, "share_with_providers": true, "given_at": "2026-11-02T10:00:00Z"},
        "status": "active"
    })
}

/// `client_body()` with the fields of `changes` replaced (a shallow merge).
pub fn client_body_with(changes: Value) -> Value {
    with(client_body(), changes)
}

/// `base` with the top-level fields of `changes` replaced; a `null` removes the field.
pub fn with(mut base: Value, changes: Value) -> Value {
    if let (Some(base), Some(changes)) = (base.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                base.remove(k);
            } else {
                base.insert(k.clone(), v.clone());
            }
        }
    }
    base
}

pub fn employer_body(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "legal_form": "GmbH",
        "sector": "10.71",
        "address": {"street": "Eisenbahnstraße 120", "postal_code": "04315", "city": "Leipzig"},
        "district": "21",
        "employee_count": 12,
        "settlement_status": "established",
        "is_training_company": true,
        "needs": ["recruiting", "apprenticeship_training"],
        "contact": {"name": "Jana Sommer", "email": "jobs@baeckerei-sommer.example", "phone": "+49 341 555 0202"}
    })
}

pub fn vacancy_body(title: &str, occupation_code: &str) -> Value {
    serde_json::json!({
        "kind": "apprenticeship",
        "title": title,
        "occupation_code": occupation_code,
        "description": "Start im August, Frühschicht.",
        "hours_per_week": 40,
        "start_date": "2027-08-01",
        "positions": 2,
        "min_education_level": "lower_secondary",
        "languages": ["de"],
        "district": "21",
        "status": "open"
    })
}

pub fn measure_body(provider_id: &str) -> Value {
    serde_json::json!({
        "provider_id": provider_id,
        "title": "Bewerbungswerkstatt Leipzig-Ost",
        "description": "Acht Wochen Bewerbungstraining in kleinen Gruppen.",
        "kind": "application_training",
        "funding": "sgb3_45",
        "target_groups": ["unemployed", "long_term_unemployed"],
        "occupation_codes": ["71402"],
        "district": "21",
        "address": {"street": "Eisenbahnstraße 66", "postal_code": "04315", "city": "Leipzig"},
        "start_date": "2027-01-11",
        "end_date": "2027-03-05",
        "hours_per_week": 20,
        "capacity": 12,
        "min_age": 18,
        "status": "open"
    })
}

/// A client counselling entry.
pub fn consultation_body(notes: &str) -> Value {
    serde_json::json!({
        "held_on": "2026-01-20", "topic": "application_support", "duration_minutes": 45,
        "notes": notes, "follow_up_on": "2026-02-04"
    })
}

pub fn id_of(resource: &Value) -> String {
    resource["id"].as_str().expect("resource has an id").to_owned()
}

impl TestApp {
    /// POSTs `body` to `path` as `caller`, asserts `201` and returns the resource.
    pub async fn create(&self, path: &str, caller: &Caller, body: &Value) -> Value {
        let res = self.post(path, caller, body).await;
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_eq!(status, 201, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn create_client(&self, caller: &Caller, body: &Value) -> Value {
        self.create("/api/v1/clients", caller, body).await
    }

    pub async fn create_employer(&self, name: &str) -> Value {
        self.create("/api/v1/employers", &caseworker(), &employer_body(name)).await
    }

    pub async fn create_vacancy(&self, employer_id: &str, body: &Value) -> Value {
        self.create(&format!("/api/v1/employers/{employer_id}/vacancies"), &caseworker(), body).await
    }

    pub async fn create_measure(&self, body: &Value) -> Value {
        self.create("/api/v1/measures", &caseworker(), body).await
    }

    /// Any request, with or without a token and a JSON body (a merge patch for `PATCH`).
    pub async fn send(&self, method: Method, path: &str, caller: Option<&Caller>, body: Option<&Value>) -> Response {
        let patch = method == Method::PATCH;
        let mut rb = self.request(method, path, caller);
        if let Some(body) = body {
            let ct = if patch { "application/merge-patch+json" } else { "application/json" };
            rb = rb.header("content-type", ct).body(body.to_string());
        }
        rb.send().await.unwrap()
    }

    /// Every audit event matching `query` (e.g. `client_id=…&actor=…`), newest first, following cursors.
    pub async fn audit_events(&self, query: &str) -> Vec<Value> {
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/audit-events?limit=200&{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let res = self.get(&path, &admin()).await;
            assert_eq!(res.status(), 200, "GET {path}");
            let page: Value = res.json().await.unwrap();
            events.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return events,
            }
        }
    }

    /// The number of rows in the audit log, counted in the database.
    pub async fn audit_row_count(&self) -> i64 {
        use sea_orm::{ConnectionTrait, Statement};
        let db = self.db().await;
        let sql = "SELECT COUNT(*) AS n FROM audit_events";
        let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

/// One row of an authorization matrix: a request and who gets which status.
pub struct Endpoint {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub cases: Vec<(&'static str, Option<Caller>, u16)>,
}

impl Endpoint {
    /// A row whose first case is always `no token → 401`.
    pub fn new(method: Method, path: impl Into<String>, body: Option<Value>) -> Self {
        Self { method, path: path.into(), body, cases: vec![("no token", None, 401)] }
    }

    pub fn expect(mut self, who: &'static str, caller: Option<Caller>, status: u16) -> Self {
        self.cases.push((who, caller, status));
        self
    }
}

/// Runs every case of every row in order and reports all mismatches at once.
pub async fn assert_matrix(app: &TestApp, rows: &[Endpoint]) {
    let mut failures = Vec::new();
    for row in rows {
        for (who, caller, expected) in &row.cases {
            let res = app.send(row.method.clone(), &row.path, caller.as_ref(), row.body.as_ref()).await;
            let status = res.status().as_u16();
            if status != *expected {
                let body = res.text().await.unwrap_or_default();
                failures
                    .push(format!("{} {} as {who}: expected {expected}, got {status}: {body}", row.method, row.path));
            }
        }
    }
    assert!(failures.is_empty(), "authorization matrix mismatches:\n{}", failures.join("\n"));
}

/// The `field`s of a problem's `errors`, sorted.
pub fn error_fields(problem: &Value) -> Vec<String> {
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    fields.sort();
    fields
}
