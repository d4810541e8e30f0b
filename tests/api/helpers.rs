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
    let app = Application::build(settings.clone()).await.expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
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
