//! Fixtures of the referral tests: the parties of a referral (provider and
//! measure, employer and vacancy, client), referrals driven into a status
//! through the API, and the database and binary tricks expiry needs.
//!
//! Kept in a module of its own (and called as `fx::…`) rather than appended to
//! `helpers.rs`, so its names cannot clash with helpers other files add.
use chrono::{DateTime, Utc};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::*;

pub const REFERRALS: &str = "/api/v1/referrals";

/// The `id` member of a resource, as a string.
pub fn id(resource: &Value) -> String {
    resource["id"].as_str().unwrap_or_else(|| panic!("no id in {resource}")).to_owned()
}

/// `base` with the top-level members of `extra` put over it.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

async fn created(res: Response, what: &str) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 201, "create {what}: {body}");
    body
}

// ---------------------------------------------------------------------------
// The parties
// ---------------------------------------------------------------------------

/// An organisation record and a principal acting for it.
pub struct Org {
    pub id: String,
    pub caller: Caller,
}

/// A provider (created by a caseworker) and a `provider` principal acting for it.
pub async fn provider(app: &TestApp) -> Org {
    let provider = app.create_provider("Bildungswerk Ost").await;
    let id = id(&provider);
    Org { caller: Caller::new("provider").with_org(id.clone()), id }
}

/// An open measure of `provider_id` with `capacity` seats, open to every
/// target group and age unless `extra` says otherwise.
pub async fn measure(app: &TestApp, provider_id: &str, capacity: i64, extra: Value) -> Value {
    let body = merged(
        json!({
            "provider_id": provider_id,
            "title": "Bewerbungswerkstatt Leipzig-Ost",
            "kind": "application_training",
            "funding": "sgb3_45",
            "district": "21",
            "capacity": capacity,
            "status": "open"
        }),
        extra,
    );
    created(app.post("/api/v1/measures", &caseworker(), &body).await, "measure").await
}

/// An employer (created by a caseworker) and an `employer` principal acting for it.
pub async fn employer(app: &TestApp) -> Org {
    let body = json!({"name": "Bäckerei Sommer GmbH", "district": "21", "sector": "10.71"});
    let employer = created(app.post("/api/v1/employers", &caseworker(), &body).await, "employer").await;
    let id = id(&employer);
    Org { caller: Caller::new("employer").with_org(id.clone()), id }
}

/// An open vacancy of `employer_id` with `positions` positions.
pub async fn vacancy(app: &TestApp, employer_id: &str, positions: i64, extra: Value) -> Value {
    let body = merged(
        json!({"kind": "job", "title": "Verkäufer:in", "occupation_code": "62102", "positions": positions}),
        extra,
    );
    let path = format!("/api/v1/employers/{employer_id}/vacancies");
    created(app.post(&path, &caseworker(), &body).await, "vacancy").await
}

/// A client created by `creator`: unemployed, born 1990, consenting to share
/// name and contact with providers unless `extra` says otherwise.
pub async fn client(app: &TestApp, creator: &Caller, extra: Value) -> Value {
    let body = merged(
        json!({
            "first_name": "Mara",
            "last_name": "Beispiel",
            "date_of_birth": "1990-05-17",
            "email": "mara.beispiel@example.org",
            "phone": "+49 341 555 0101",
            "district": "21",
            "target_groups": ["unemployed"],
            "consent": {"data_processing": true, "share_with_providers": true, "given_at": "2026-01-05T10:00:00Z"}
        }),
        extra,
    );
    created(app.post("/api/v1/clients", creator, &body).await, "client").await
}

/// The `measure_id` or `vacancy_id` member of a referral body.
#[derive(Clone, Debug)]
pub enum Target {
    Measure(String),
    Vacancy(String),
}

impl Target {
    pub fn member(&self) -> (&'static str, &str) {
        match self {
            Target::Measure(id) => ("measure_id", id),
            Target::Vacancy(id) => ("vacancy_id", id),
        }
    }
}

/// The body of `POST /referrals` for `client_id` to `target`, plus `extra`.
pub fn referral_body(client_id: &str, target: &Target, extra: Value) -> Value {
    let (member, target_id) = target.member();
    let mut body = json!({"client_id": client_id});
    body[member] = json!(target_id);
    merged(body, extra)
}

pub async fn refer(app: &TestApp, caller: &Caller, body: &Value) -> Response {
    app.post(REFERRALS, caller, body).await
}

/// A referral of `client_id` to `target` by `caller` (must be `201`).
pub async fn referral(app: &TestApp, caller: &Caller, client_id: &str, target: &Target) -> Value {
    created(refer(app, caller, &referral_body(client_id, target, json!({}))).await, "referral").await
}

/// A fresh client (created by `creator`) referred by `creator` to `target`.
pub async fn fresh_referral(app: &TestApp, creator: &Caller, target: &Target) -> Value {
    let client = client(app, creator, json!({})).await;
    referral(app, creator, &id(&client), target).await
}

// ---------------------------------------------------------------------------
// Transitions
// ---------------------------------------------------------------------------

pub fn transitions_path(referral_id: &str) -> String {
    format!("{REFERRALS}/{referral_id}/transitions")
}

/// `POST /referrals/{id}/transitions` with `body`.
pub async fn act(app: &TestApp, caller: &Caller, referral_id: &str, body: &Value) -> Response {
    app.post(&transitions_path(referral_id), caller, body).await
}

/// The body of `action` with every field it requires.
pub fn action_body(action: &str) -> Value {
    match action {
        "reject" => json!({"action": "reject", "reason_code": "no_capacity", "rejected_by": "provider"}),
        "cancel" => json!({"action": "cancel", "reason_code": "no_longer_needed"}),
        "fail" => json!({"action": "fail", "reason_code": "client_unreachable"}),
        "complete" => json!({"action": "complete", "outcome": "employed", "outcome_on": "2026-11-30"}),
        other => json!({"action": other}),
    }
}

/// Takes `action` (with its required fields) as `caller`; must be `200`.
pub async fn take(app: &TestApp, caller: &Caller, referral_id: &str, action: &str) -> Value {
    let res = act(app, caller, referral_id, &action_body(action)).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{action} on {referral_id}: {body}");
    body
}

/// The API actions that lead from `requested` to `status`. `expired` has
/// none: only the service expires (see [`expire_now`]).
pub fn path_to(status: &str) -> &'static [&'static str] {
    match status {
        "requested" => &[],
        "on_hold" => &["waitlist"],
        "accepted" => &["accept"],
        "in_progress" => &["accept", "start"],
        "rejected" => &["reject"],
        "completed" => &["accept", "start", "complete"],
        "failed" => &["accept", "fail"],
        "cancelled" => &["cancel"],
        other => panic!("no API path to {other}"),
    }
}

/// Drives a `requested` referral to `status` as a caseworker.
pub async fn drive(app: &TestApp, referral_id: &str, status: &str) -> Value {
    let mut last = Value::Null;
    for action in path_to(status) {
        last = take(app, &caseworker(), referral_id, action).await;
    }
    last
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// A `GET` that must answer `200`; its JSON.
pub async fn read(app: &TestApp, caller: &Caller, path: &str) -> Value {
    let res = app.get(path, caller).await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

pub async fn referral_of(app: &TestApp, referral_id: &str) -> Value {
    read(app, &caseworker(), &format!("{REFERRALS}/{referral_id}")).await
}

pub async fn measure_of(app: &TestApp, measure_id: &str) -> Value {
    read(app, &caseworker(), &format!("/api/v1/measures/{measure_id}")).await
}

pub async fn vacancy_of(app: &TestApp, vacancy_id: &str) -> Value {
    read(app, &caseworker(), &format!("/api/v1/vacancies/{vacancy_id}")).await
}

/// The history of a referral, as office staff read it.
pub async fn events_of(app: &TestApp, referral_id: &str) -> Vec<Value> {
    let page = read(app, &caseworker(), &format!("{REFERRALS}/{referral_id}/events")).await;
    page["items"].as_array().unwrap().clone()
}

/// `GET` of `path` with URL-encoded `query` as `caller` (must be `200`).
pub async fn list(app: &TestApp, caller: &Caller, path: &str, query: &[(&str, &str)]) -> Value {
    let mut url = reqwest::Url::parse(&app.url(path)).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    let res = app.client.request(Method::GET, url).bearer_auth(token_for(caller)).send().await.unwrap();
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "GET {path} {query:?}: {body}");
    body
}

/// The ids of the items of a list page, in order.
pub fn ids_of(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(id).collect()
}

/// The audit events about `client_id`, as an admin reads them.
pub async fn audit_events_of(app: &TestApp, client_id: &str) -> Vec<Value> {
    let page = list(app, &admin(), "/api/v1/audit-events", &[("client_id", client_id), ("limit", "200")]).await;
    page["items"].as_array().unwrap().clone()
}

// ---------------------------------------------------------------------------
// Expiry: old timestamps and the real binary
// ---------------------------------------------------------------------------

/// Sets `updated_at` of the referrals `ids` to `days` days ago, directly in
/// the database (the API has no way to make a referral old).
pub async fn age(app: &TestApp, ids: &[&str], days: i64) {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let db = app.db().await;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "UPDATE referrals SET updated_at = $1 WHERE id = $2",
        _ => "UPDATE referrals SET updated_at = ? WHERE id = ?",
    };
    let at: DateTime<Utc> = ostwerk::domain::ids::now() - chrono::Duration::days(days);
    for referral_id in ids {
        let uuid = uuid::Uuid::parse_str(referral_id).unwrap();
        let result =
            db.execute_raw(Statement::from_sql_and_values(backend, sql, [at.into(), uuid.into()])).await.unwrap();
        assert_eq!(result.rows_affected(), 1, "aged {referral_id}");
    }
    db.close().await.unwrap();
}

/// The `ostwerk expire-referrals` command against the test database.
pub fn expire_command(app: &TestApp) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ostwerk"));
    cmd.arg("expire-referrals")
        .env("DATABASE_URL", &app.database_url)
        .env("OSTWERK_LOG", "warn")
        .env_remove("OSTWERK_REFERRAL_EXPIRY_DAYS");
    cmd
}

/// Runs `ostwerk expire-referrals` to the end; its standard output.
pub fn expire_now(app: &TestApp) -> String {
    let out = expire_command(app).output().unwrap();
    assert!(out.status.success(), "expire-referrals failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The number in "N referrals expired".
pub fn expired_count(stdout: &str) -> u64 {
    let line = stdout.lines().find(|l| l.ends_with("referrals expired")).unwrap_or_else(|| panic!("{stdout}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}
