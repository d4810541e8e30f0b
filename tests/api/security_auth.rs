//! Regression tests of the security review (issue 14.1–14.3, 14.7, 14.9 and
//! issue 16.5, 16.12): typed org ownership, per-role reads, idempotency
//! scoped to the typed owner, withdrawn JWKS keys, token hygiene, secrets.
use std::{
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ostwerk::{config::Settings, startup::Application};
use p256::{SecretKey, elliptic_curve::sec1::ToEncodedPoint, pkcs8::EncodePrivateKey};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::{helpers::*, referral_fixtures as fx};

const CLIENTS: &str = "/api/v1/clients";
const WEBHOOKS: &str = "/api/v1/webhooks";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn hs256_with(secret: &str, claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

fn hs256(claims: &Value) -> String {
    hs256_with(SECRET, claims)
}

async fn get_with(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap()
}

fn caller(roles: Vec<&'static str>, org: &str, sub: &str) -> Caller {
    Caller { roles, org: Some(org.to_owned()), sub: sub.to_owned() }
}

/// An app that allows webhook targets on 127.0.0.1 (nothing listens there:
/// these tests look at subscriptions and the outbox, not at sending).
async fn app_with_private_targets() -> TestApp {
    spawn_app_with(Options { webhook_allow_private: true, ..Default::default() }).await
}

fn webhook_body() -> Value {
    json!({"url": "http://127.0.0.1:9/hook", "events": ["referral.created", "referral.status_changed"]})
}

// ---- 14.1 typed ownership ---------------------------------------------------

#[tokio::test]
async fn jobcenter_claiming_org_office_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let tokens = ["office", " Office ", "OFFICE"]
        .map(|org| hs256(&json!({"sub": "jc", "roles": ["jobcenter"], "org": org, "iat": now(), "exp": now() + 600})));
    // Act
    let mut answers = Vec::new();
    for token in &tokens {
        answers.push(get_with(&app, CLIENTS, token).await);
    }
    // Assert
    for res in answers {
        let body = assert_problem(res, 401, "unauthorized").await;
        assert!(body["detail"].as_str().unwrap_or_default().contains("office"), "detail: {body}");
    }
}

#[tokio::test]
async fn jobcenter_with_org_office_cannot_read_office_clients_cancel_office_referrals_or_run_matching() {
    // Arrange
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let measure = fx::measure(&app, &provider.id, 5, json!({})).await;
    let referral = fx::fresh_referral(&app, &caseworker(), &fx::Target::Measure(fx::id(&measure))).await;
    let client_id = referral["client_id"].as_str().unwrap().to_owned();
    let impostor = Caller::new("jobcenter").with_org("office");
    // Act
    let list = app.get(CLIENTS, &impostor).await;
    let read = app.get(&format!("{CLIENTS}/{client_id}"), &impostor).await;
    let cancel = fx::act(&app, &impostor, &fx::id(&referral), &fx::action_body("cancel")).await;
    let matches = app.get(&format!("{CLIENTS}/{client_id}/matches?kind=measure"), &impostor).await;
    // Assert
    for res in [list, read, cancel, matches] {
        assert_problem(res, 401, "unauthorized").await;
    }
    assert_eq!(fx::referral_of(&app, &fx::id(&referral)).await["status"], "requested");
}

#[tokio::test]
async fn jobcenter_named_like_a_provider_cannot_see_or_change_the_providers_webhook() {
    // Arrange
    let app = app_with_private_targets().await;
    let provider = fx::provider(&app).await;
    let hook = app.create(WEBHOOKS, &provider.caller, &webhook_body()).await;
    let path = format!("{WEBHOOKS}/{}", fx::id(&hook));
    let impostor = Caller::new("jobcenter").with_org(provider.id.clone());
    // Act
    let read = app.get(&path, &impostor).await;
    let patch = app.patch(&path, &impostor, &json!({"url": "http://127.0.0.1:9/stolen"})).await;
    let deliveries = app.get(&format!("{path}/deliveries"), &impostor).await;
    let delete = app.delete(&path, &impostor).await;
    let list: Value = app.get(WEBHOOKS, &impostor).await.json().await.unwrap();
    // Assert
    for res in [read, patch, deliveries, delete] {
        assert_problem(res, 404, "not-found").await;
    }
    assert_eq!(list["items"], json!([]));
    let still: Value = app.get(&path, &provider.caller).await.json().await.unwrap();
    assert_eq!(still["url"], "http://127.0.0.1:9/hook");
}

#[tokio::test]
async fn events_of_a_provider_do_not_reach_a_jobcenter_named_like_it() {
    // Arrange
    let app = app_with_private_targets().await;
    let provider = fx::provider(&app).await;
    let measure = fx::measure(&app, &provider.id, 5, json!({})).await;
    let impostor = Caller::new("jobcenter").with_org(provider.id.clone());
    let own_hook = app.create(WEBHOOKS, &provider.caller, &webhook_body()).await;
    let impostor_hook = app.create(WEBHOOKS, &impostor, &webhook_body()).await;
    // Act
    fx::fresh_referral(&app, &caseworker(), &fx::Target::Measure(fx::id(&measure))).await;
    // Assert: the outbox is written in the referral's transaction.
    let deliveries = |hook: &Value, who: &Caller| {
        let path = format!("{WEBHOOKS}/{}/deliveries", fx::id(hook));
        let who = who.clone();
        let app = &app;
        async move { app.get(&path, &who).await.json::<Value>().await.unwrap()["items"].as_array().unwrap().len() }
    };
    assert_eq!(deliveries(&own_hook, &provider.caller).await, 1, "the provider's own subscription");
    assert_eq!(deliveries(&impostor_hook, &impostor).await, 0, "the job centre named like the provider");
}

#[tokio::test]
async fn existing_webhooks_are_classified_by_the_owner_kind_migration() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{
        ConnectionTrait, Statement,
        sea_query::{Alias, Query},
    };
    // Arrange: a provider and an employer, then the schema taken back to the
    // step before the owner kind, with one subscription of each kind of org.
    let app = spawn_app().await;
    let provider = fx::provider(&app).await.id;
    let employer = fx::employer(&app).await.id;
    let db = app.db().await;
    let after_owner_kind = Migrator::migrations().len() - 5;
    Migrator::down(&db, Some(u32::try_from(after_owner_kind).unwrap())).await.unwrap();
    let hooks = [
        ("office".to_owned(), "office"),
        (provider.to_uppercase(), "provider"),
        (employer.clone(), "employer"),
        ("jc-leipzig".to_owned(), "jobcenter"),
    ];
    let at = chrono::Utc::now();
    for (i, (org, _)) in hooks.iter().enumerate() {
        let columns =
            ["id", "org", "url", "events", "secret", "active", "created_by", "created_at", "updated_at", "version"];
        let insert = Query::insert()
            .into_table(Alias::new("webhooks"))
            .columns(columns.map(Alias::new))
            .values_panic([
                uuid::Uuid::now_v7().into(),
                org.clone().into(),
                format!("http://127.0.0.1:9/{i}").into(),
                "referral.created".into(),
                "whsec_x".into(),
                true.into(),
                "ops".into(),
                at.into(),
                at.into(),
                1.into(),
            ])
            .to_owned();
        db.execute(&insert).await.unwrap();
    }
    // Act
    Migrator::up(&db, None).await.unwrap();
    // Assert
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, "SELECT org, owner_kind FROM webhooks ORDER BY url"))
        .await
        .unwrap();
    let got: Vec<(String, String)> =
        rows.iter().map(|r| (r.try_get("", "org").unwrap(), r.try_get("", "owner_kind").unwrap())).collect();
    let expected: Vec<(String, String)> =
        hooks.iter().map(|(org, kind)| (ostwerk::auth::canonical_org(org).unwrap(), (*kind).to_owned())).collect();
    assert_eq!(got, expected);
}

// ---- 14.2 combined roles never widen reads ----------------------------------

#[tokio::test]
async fn jobcenter_employer_sees_other_employers_public_part_only() {
    // Arrange
    let app = spawn_app().await;
    let own = app.create_employer("Bäckerei Sommer").await;
    let other = app.create_employer("Spedition Winter").await;
    let both = Caller { roles: vec!["jobcenter", "employer"], org: Some(fx::id(&own)), sub: "je".into() };
    // Act
    let own_read: Value = app.get(&format!("/api/v1/employers/{}", fx::id(&own)), &both).await.json().await.unwrap();
    let other_read: Value =
        app.get(&format!("/api/v1/employers/{}", fx::id(&other)), &both).await.json().await.unwrap();
    let listed: Value = app.get("/api/v1/employers", &both).await.json().await.unwrap();
    let by_need: Value = app.get("/api/v1/employers?need=recruiting", &both).await.json().await.unwrap();
    // Assert
    assert!(own_read["contact"].is_object() && own_read["needs"].is_array(), "own record in full: {own_read}");
    assert_eq!(other_read["id"], other["id"]);
    assert!(other_read.get("contact").is_none() && other_read.get("needs").is_none(), "public part: {other_read}");
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        let full = item.get("contact").is_some() || item.get("needs").is_some();
        assert_eq!(full, item["id"] == own["id"], "per-record view: {item}");
    }
    assert_eq!(fx::ids_of(&by_need), vec![fx::id(&own)], "a filter on needs only reaches the own record");
}

#[tokio::test]
async fn jobcenter_employer_sees_its_own_closed_vacancy_but_not_other_employers_closed_ones() {
    // Arrange
    let app = spawn_app().await;
    let own = app.create_employer("Bäckerei Sommer").await;
    let other = app.create_employer("Spedition Winter").await;
    let closed = json!({"status": "closed"});
    let own_closed = fx::vacancy(&app, &fx::id(&own), 1, closed.clone()).await;
    let other_closed = fx::vacancy(&app, &fx::id(&other), 1, closed).await;
    let other_open = fx::vacancy(&app, &fx::id(&other), 1, json!({})).await;
    let both = Caller { roles: vec!["jobcenter", "employer"], org: Some(fx::id(&own)), sub: "je".into() };
    // Act
    let own_read = app.get(&format!("/api/v1/vacancies/{}", fx::id(&own_closed)), &both).await;
    let other_read = app.get(&format!("/api/v1/vacancies/{}", fx::id(&other_closed)), &both).await;
    let listed: Value = app.get("/api/v1/vacancies", &both).await.json().await.unwrap();
    // Assert
    assert_eq!(own_read.status(), 200);
    assert_problem(other_read, 404, "not-found").await;
    let mut ids = fx::ids_of(&listed);
    ids.sort();
    let mut expected = vec![fx::id(&own_closed), fx::id(&other_open)];
    expected.sort();
    assert_eq!(ids, expected);
}

// ---- 14.3 idempotency replays never cross principals ------------------------

#[tokio::test]
async fn provider_sharing_an_admins_sub_does_not_get_the_admins_webhook_replayed() {
    // Arrange
    let app = app_with_private_targets().await;
    let provider = fx::provider(&app).await;
    let admin_ops = Caller { roles: vec!["admin"], org: None, sub: "ops".into() };
    let provider_ops = caller(vec!["provider"], &provider.id, "ops");
    let post = |who: &Caller| {
        app.request(Method::POST, WEBHOOKS, Some(who)).header("Idempotency-Key", "hook-1").json(&webhook_body()).send()
    };
    let admins: Value = post(&admin_ops).await.unwrap().json().await.unwrap();
    // Act
    let res = post(&provider_ops).await.unwrap();
    // Assert
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none(), "the admin's answer was replayed");
    let got: Value = res.json().await.unwrap();
    assert_ne!(got["id"], admins["id"]);
    assert_ne!(got["secret"], admins["secret"]);
    assert_eq!(got["org"], json!(provider.id));
}

#[tokio::test]
async fn two_jobcenters_with_the_same_sub_do_not_get_each_others_client() {
    // Arrange
    let app = spawn_app().await;
    let a = caller(vec!["jobcenter"], "jc-a", "dev");
    let b = caller(vec!["jobcenter"], "jc-b", "dev");
    let body = client_body();
    let post = |who: &Caller| {
        app.request(Method::POST, CLIENTS, Some(who)).header("Idempotency-Key", "client-1").json(&body).send()
    };
    let first: Value = post(&a).await.unwrap().json().await.unwrap();
    // Act
    let res = post(&b).await.unwrap();
    // Assert
    assert_eq!(res.status(), 201);
    assert!(res.headers().get("idempotent-replayed").is_none(), "job centre A's answer was replayed");
    let second: Value = res.json().await.unwrap();
    assert_ne!(second["id"], first["id"]);
    assert_problem(app.get(&format!("{CLIENTS}/{}", fx::id(&first)), &b).await, 404, "not-found").await;
}

// ---- 14.7 withdrawn JWKS keys -------------------------------------------------

/// A JWKS endpoint the test controls: serves `doc` with `cache_control`,
/// or `500` while `failing` is set.
#[derive(Clone)]
struct JwksServer {
    url: String,
    state: Arc<Mutex<(Value, Option<String>, bool)>>,
}

impl JwksServer {
    async fn start(keys: Vec<Value>, cache_control: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new((json!({ "keys": keys }), cache_control.map(str::to_owned), false)));
        let served = state.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (doc, cache, failing) = served.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = if failing { "oops".to_owned() } else { doc.to_string() };
                    let status = if failing { "500 Internal Server Error" } else { "200 OK" };
                    let cache = cache.map(|c| format!("Cache-Control: {c}\r\n")).unwrap_or_default();
                    let response = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{cache}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, state }
    }

    fn publish(&self, keys: Vec<Value>) {
        self.state.lock().unwrap().0 = json!({ "keys": keys });
    }

    fn fail(&self) {
        self.state.lock().unwrap().2 = true;
    }
}

fn ec_key(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).unwrap()
}

fn jwk(key: &SecretKey, kid: &str) -> Value {
    let point = key.public_key().to_encoded_point(false);
    json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
        "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
    })
}

fn es256(key: &SecretKey, kid: &str) -> String {
    let der = key.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let claims = json!({"sub": "cw", "roles": ["caseworker"], "iat": now(), "exp": now() + 600});
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(der.as_bytes())).unwrap()
}

/// Spawns the app with settings changed by `change` (what `Options` does not cover).
async fn spawn_app_configured(change: impl FnOnce(&mut Settings) + Send + 'static) -> TestApp {
    spawn_app_with(Options { configure: Some(Box::new(change)), ..Default::default() }).await
}

/// Asks with `token` until the answer is `status` (bounded: 15 s).
async fn poll_until(app: &TestApp, token: &str, status: u16) -> bool {
    for _ in 0..150 {
        if get_with(app, "/api/v1/providers", token).await.status().as_u16() == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn withdrawn_jwks_key_is_refused_after_the_refresh_interval() {
    // Arrange
    let key = ec_key(21);
    let jwks = JwksServer::start(vec![jwk(&key, "k1")], None).await;
    let url = jwks.url.clone();
    let app = spawn_app_configured(|s| {
        s.jwt_jwks_url = Some(url);
        s.jwks_refresh_secs = 1;
    })
    .await;
    let token = es256(&key, "k1");
    assert_eq!(get_with(&app, "/api/v1/providers", &token).await.status(), 200);
    // Act
    jwks.publish(vec![jwk(&ec_key(22), "k2")]);
    // Assert
    assert!(poll_until(&app, &token, 401).await, "the withdrawn key is still accepted");
}

#[tokio::test]
async fn a_shorter_cache_control_max_age_of_the_jwks_wins() {
    // Arrange: refresh every 300 s, but the provider says max-age=1.
    let key = ec_key(23);
    let jwks = JwksServer::start(vec![jwk(&key, "k1")], Some("public, max-age=1")).await;
    let url = jwks.url.clone();
    let app = spawn_app_configured(|s| {
        s.jwt_jwks_url = Some(url);
        s.jwks_refresh_secs = 300;
    })
    .await;
    let token = es256(&key, "k1");
    assert_eq!(get_with(&app, "/api/v1/providers", &token).await.status(), 200);
    // Act
    jwks.publish(vec![]);
    // Assert
    assert!(poll_until(&app, &token, 401).await, "the withdrawn key is still accepted");
}

#[tokio::test]
async fn a_failing_jwks_fetch_keeps_the_last_good_keys_and_is_counted() {
    // Arrange
    let key = ec_key(24);
    let jwks = JwksServer::start(vec![jwk(&key, "k1")], None).await;
    let url = jwks.url.clone();
    let app = spawn_app_configured(|s| {
        s.jwt_jwks_url = Some(url);
        s.jwks_refresh_secs = 1;
    })
    .await;
    let token = es256(&key, "k1");
    let errors = || async {
        let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find(|l| l.starts_with("ostwerk_jwks_fetch_errors_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = errors().await;
    // Act
    jwks.fail();
    // Assert: every answer stays 200 while the failed refresh gets counted.
    let mut counted = false;
    for _ in 0..150 {
        assert_eq!(get_with(&app, "/api/v1/providers", &token).await.status(), 200);
        if errors().await > before {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(counted, "no JWKS fetch error was counted");
}

// ---- 14.9 / 16.5 token hygiene -------------------------------------------------

#[tokio::test]
async fn control_characters_in_sub_or_org_are_refused() {
    // Arrange
    let app = spawn_app().await;
    let tokens = [
        json!({"sub": "cw\u{0}x", "roles": ["caseworker"], "iat": now(), "exp": now() + 600}),
        json!({"sub": "cw\nforged log line", "roles": ["caseworker"], "iat": now(), "exp": now() + 600}),
        json!({"sub": "jc", "roles": ["jobcenter"], "org": "jc\u{0}", "iat": now(), "exp": now() + 600}),
    ]
    .map(|c| hs256(&c));
    // Act + Assert
    for token in tokens {
        let body = assert_problem(get_with(&app, CLIENTS, &token).await, 401, "unauthorized").await;
        assert!(body["detail"].as_str().unwrap_or_default().contains("control"), "detail: {body}");
    }
}

#[tokio::test]
async fn token_living_longer_than_the_maximum_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let long = hs256(&json!({"sub": "cw", "roles": ["caseworker"], "iat": now(), "exp": now() + 86_401}));
    let long_without_iat = hs256(&json!({"sub": "cw", "roles": ["caseworker"], "exp": now() + 90_000}));
    let day = hs256(&json!({"sub": "cw", "roles": ["caseworker"], "iat": now(), "exp": now() + 86_400}));
    // Act + Assert
    assert_problem(get_with(&app, CLIENTS, &long).await, 401, "unauthorized").await;
    assert_problem(get_with(&app, CLIENTS, &long_without_iat).await, 401, "unauthorized").await;
    assert_eq!(get_with(&app, CLIENTS, &day).await.status(), 200);
}

#[tokio::test]
async fn token_issued_in_the_future_beyond_the_leeway_is_refused() {
    // Arrange
    let app = spawn_app().await;
    let future = hs256(&json!({"sub": "cw", "roles": ["caseworker"], "iat": now() + 120, "exp": now() + 600}));
    let within_leeway = hs256(&json!({"sub": "cw", "roles": ["caseworker"], "iat": now() + 10, "exp": now() + 600}));
    // Act + Assert
    assert_problem(get_with(&app, CLIENTS, &future).await, 401, "unauthorized").await;
    assert_eq!(get_with(&app, CLIENTS, &within_leeway).await.status(), 200);
}

#[tokio::test]
async fn token_without_any_roles_claim_is_401_but_an_empty_array_stays_403() {
    // Arrange
    let app = spawn_app().await;
    let without = hs256(&json!({"sub": "x", "iat": now(), "exp": now() + 600}));
    let realm_without = hs256(&json!({"sub": "x", "realm_access": {}, "iat": now(), "exp": now() + 600}));
    let empty = hs256(&json!({"sub": "x", "roles": [], "iat": now(), "exp": now() + 600}));
    // Act + Assert
    assert_problem(get_with(&app, CLIENTS, &without).await, 401, "unauthorized").await;
    assert_problem(get_with(&app, CLIENTS, &realm_without).await, 401, "unauthorized").await;
    assert_problem(get_with(&app, CLIENTS, &empty).await, 403, "forbidden").await;
}

#[tokio::test]
async fn provider_whose_org_is_its_uuid_in_upper_case_accepts_referrals_and_changes_its_measure() {
    // Arrange
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let measure = fx::measure(&app, &provider.id, 5, json!({})).await;
    let referral = fx::fresh_referral(&app, &caseworker(), &fx::Target::Measure(fx::id(&measure))).await;
    let shouting = Caller::new("provider").with_org(format!("  {}  ", provider.id.to_uppercase()));
    // Act
    let accept = fx::act(&app, &shouting, &fx::id(&referral), &fx::action_body("accept")).await;
    let change = app.patch(&format!("/api/v1/measures/{}", fx::id(&measure)), &shouting, &json!({"capacity": 6})).await;
    // Assert
    assert_eq!(accept.status(), 200, "accept: {}", accept.text().await.unwrap());
    assert_eq!(change.status(), 200, "change: {}", change.text().await.unwrap());
}

/// The binary with no inherited Ostwerk configuration.
fn ostwerk() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ostwerk"));
    for var in [
        "OSTWERK_JWT_SECRET",
        "OSTWERK_JWT_SECRET_FILE",
        "OSTWERK_JWT_PREVIOUS_SECRETS",
        "OSTWERK_JWT_MAX_LIFETIME_SECS",
        "OSTWERK_JWT_JWKS_URL",
        "OSTWERK_JWT_ISSUER",
        "OSTWERK_JWT_AUDIENCE",
        "DATABASE_URL",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("OSTWERK_LOG", "error");
    cmd
}

#[test]
fn token_command_refuses_a_ttl_above_the_maximum_lifetime() {
    // Arrange
    let mut cmd = ostwerk();
    cmd.args(["token", "--role", "admin", "--ttl", "86401"]).env("OSTWERK_JWT_SECRET", SECRET);
    // Act
    let out = cmd.output().unwrap();
    // Assert
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("OSTWERK_JWT_MAX_LIFETIME_SECS"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("eyJ"), "a token was printed");
}

#[test]
fn token_command_refuses_org_office_for_a_partner_role() {
    // Act
    let out = ostwerk()
        .args(["token", "--role", "jobcenter", "--org", "office"])
        .env("OSTWERK_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    // Assert
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("office"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("eyJ"), "a token was printed");
}

// ---- 14.9 / 16.12 secrets --------------------------------------------------------

#[test]
fn jwt_secret_is_not_accepted_as_a_command_line_flag() {
    // Act
    let out = ostwerk().args(["--jwt-secret", SECRET, "token", "--role", "admin"]).output().unwrap();
    // Assert
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("eyJ"), "a token was printed");
}

#[tokio::test]
async fn secret_file_signs_with_its_newest_secret_and_the_service_accepts_it() {
    // Arrange
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwt-secret");
    std::fs::write(&file, format!("{SECRET}\nan-older-secret-that-is-also-32-bytes-long\n")).unwrap();
    // Act
    let out = ostwerk()
        .args(["token", "--role", "caseworker", "--ttl", "60"])
        .env("OSTWERK_JWT_SECRET_FILE", &file)
        .output()
        .unwrap();
    // Assert
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(get_with(&app, "/api/v1/providers", &token).await.status(), 200);
}

const OLD_SECRET: &str = "the-previous-secret-still-32-bytes-or-more";

#[tokio::test]
async fn token_signed_with_a_previous_secret_is_accepted_during_rotation() {
    // Arrange
    let app = spawn_app_configured(|s| s.jwt_previous_secrets = vec![OLD_SECRET.to_owned()]).await;
    let claims = json!({"sub": "cw", "roles": ["caseworker"], "iat": now(), "exp": now() + 600});
    // Act
    let old = get_with(&app, "/api/v1/providers", &hs256_with(OLD_SECRET, &claims)).await;
    let new = get_with(&app, "/api/v1/providers", &hs256(&claims)).await;
    let unknown =
        get_with(&app, "/api/v1/providers", &hs256_with("a-secret-nobody-configured-32-bytes-long", &claims)).await;
    // Assert
    assert_eq!(old.status(), 200);
    assert_eq!(new.status(), 200);
    assert_problem(unknown, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_previous_secret_shorter_than_32_bytes_refuses_to_start() {
    // Arrange
    let mut settings = Settings::defaults().unwrap();
    settings.database_url = "sqlite::memory:".into();
    settings.addr = "127.0.0.1:0".parse().unwrap();
    settings.jwt_secret = Some(SECRET.to_owned());
    settings.jwt_previous_secrets = vec!["short".into()];
    // Act
    let built = Application::build(settings).await;
    // Assert
    let err = built.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("at least 32 bytes"), "error: {err}");
}
