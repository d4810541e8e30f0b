//! Statistics in the database and bulk seeding (issue 8).
//!
//! The statistics are `GROUP BY`s that sum record keys in SQL; here a
//! record-by-record count in the test (the in-memory algorithm the service
//! used before) must give the same published numbers with random record
//! keys, so the key arithmetic is exact on both backends. `seed --clients N
//! --referrals M` writes in batches; its data must keep every invariant the
//! service keeps. The million-referral check runs only with
//! `OSTWERK_BIG_TESTS=1` on PostgreSQL (not in CI).
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use ostwerk::domain::{
    cell_key::{self, Cell},
    codes::{CodeList, ReferralAction, ReferralStatus},
};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult, Statement};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::*;

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap()
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let rows = rows(db, sql).await;
    rows[0].try_get("", "n").unwrap()
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = app.get(path, &Caller::new("analyst")).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

// --- what the database holds, read record by record ---

#[derive(Clone)]
struct ClientRow {
    id: Uuid,
    status: String,
    district: Option<String>,
    target_groups: String,
    occupation_codes: String,
    record_key: i64,
}

#[derive(Clone)]
struct ReferralRow {
    id: Uuid,
    client_id: Uuid,
    measure_id: Option<Uuid>,
    status: String,
    outcome: Option<String>,
    created_at: DateTime<Utc>,
}

struct Data {
    clients: Vec<ClientRow>,
    referrals: Vec<ReferralRow>,
    kind_of: HashMap<Uuid, String>,
    accepted: HashSet<Uuid>,
    started: HashSet<Uuid>,
}

async fn load(db: &DatabaseConnection) -> Data {
    let clients = rows(db, "SELECT id, status, district, target_groups, occupation_codes, record_key FROM clients")
        .await
        .iter()
        .map(|r| ClientRow {
            id: r.try_get("", "id").unwrap(),
            status: r.try_get("", "status").unwrap(),
            district: r.try_get("", "district").unwrap(),
            target_groups: r.try_get("", "target_groups").unwrap(),
            occupation_codes: r.try_get("", "occupation_codes").unwrap(),
            record_key: r.try_get("", "record_key").unwrap(),
        })
        .collect();
    let referrals = rows(db, "SELECT id, client_id, measure_id, status, outcome, created_at FROM referrals")
        .await
        .iter()
        .map(|r| ReferralRow {
            id: r.try_get("", "id").unwrap(),
            client_id: r.try_get("", "client_id").unwrap(),
            measure_id: r.try_get("", "measure_id").unwrap(),
            status: r.try_get("", "status").unwrap(),
            outcome: r.try_get("", "outcome").unwrap(),
            created_at: r.try_get("", "created_at").unwrap(),
        })
        .collect();
    let kind_of = rows(db, "SELECT id, kind FROM measures")
        .await
        .iter()
        .map(|r| (r.try_get("", "id").unwrap(), r.try_get("", "kind").unwrap()))
        .collect();
    let ever = |action: &'static str| async move {
        rows(db, &format!("SELECT referral_id FROM referral_events WHERE action = '{action}'"))
            .await
            .iter()
            .map(|r| r.try_get::<Uuid>("", "referral_id").unwrap())
            .collect::<HashSet<Uuid>>()
    };
    Data { clients, referrals, kind_of, accepted: ever("accept").await, started: ever("start").await }
}

fn key_of(record_key: i64) -> u32 {
    u32::try_from(record_key.rem_euclid(1 << 32)).unwrap()
}

fn split(stored: &str) -> Vec<String> {
    stored.split('|').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn many(values: Vec<String>) -> Vec<Option<String>> {
    if values.is_empty() { vec![None] } else { values.into_iter().map(Some).collect() }
}

fn fields_of(codes: &str) -> Vec<String> {
    let mut fields: Vec<String> = split(codes).iter().filter_map(|c| c.get(..2).map(str::to_owned)).collect();
    fields.sort();
    fields.dedup();
    fields
}

fn cells(per_dim: &[Vec<Option<String>>]) -> Vec<Vec<Option<String>>> {
    let mut out: Vec<Vec<Option<String>>> = vec![Vec::new()];
    for values in per_dim {
        out = out
            .iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut key = prefix.clone();
                    key.push(v.clone());
                    key
                })
            })
            .collect();
    }
    out
}

/// clients, referrals_requested, referrals_active, unserved_clients.
type Counts = [Cell; 4];
const COUNTED: [&str; 4] = ["clients", "referrals_requested", "referrals_active", "unserved_clients"];

/// The demand figures of people, counted record by record.
fn demand_by_records(
    data: &Data,
    dims: &[&str],
    from: Option<DateTime<Utc>>,
) -> (BTreeMap<Vec<Option<String>>, Counts>, Counts) {
    let client_of: HashMap<Uuid, &ClientRow> = data.clients.iter().map(|c| (c.id, c)).collect();
    let mut kinds: HashMap<Uuid, Vec<String>> = HashMap::new();
    for r in &data.referrals {
        if ReferralStatus::parse(&r.status).is_some_and(|s| s.is_active()) {
            let ks = kinds.entry(r.client_id).or_default();
            if let Some(k) = r.measure_id.and_then(|m| data.kind_of.get(&m)).filter(|k| !ks.contains(k)) {
                ks.push(k.clone());
            }
        }
    }
    let values = |c: &ClientRow, kind: Vec<Option<String>>| -> Vec<Vec<Option<String>>> {
        dims.iter()
            .map(|d| match *d {
                "district" => vec![c.district.clone()],
                "target_group" => many(split(&c.target_groups)),
                "occupation_field" => many(fields_of(&c.occupation_codes)),
                _ => kind.clone(),
            })
            .collect()
    };
    let mut table: BTreeMap<Vec<Option<String>>, Counts> = BTreeMap::new();
    let mut totals = Counts::default();
    for c in data.clients.iter().filter(|c| c.status == "active") {
        let served = kinds.contains_key(&c.id);
        let key = key_of(c.record_key);
        let own = many(kinds.get(&c.id).cloned().unwrap_or_default());
        for cell in cells(&values(c, own)) {
            let row = table.entry(cell).or_default();
            row[0].add(key);
            row[3].add_if(!served, key);
        }
        totals[0].add(key);
        totals[3].add_if(!served, key);
    }
    for r in data.referrals.iter().filter(|r| from.is_none_or(|f| r.created_at >= f)) {
        let Some(c) = client_of.get(&r.client_id) else { continue };
        let status = ReferralStatus::parse(&r.status);
        let requested = status == Some(ReferralStatus::Requested);
        if !status.is_some_and(|s| s.is_active()) {
            continue;
        }
        let key = cell_key::derived_key(key_of(c.record_key), r.id.as_u128());
        let kind = vec![r.measure_id.and_then(|m| data.kind_of.get(&m).cloned())];
        for cell in cells(&values(c, kind)) {
            let row = table.entry(cell).or_default();
            row[1].add_if(requested, key);
            row[2].add(key);
        }
        totals[1].add_if(requested, key);
        totals[2].add(key);
    }
    (table, totals)
}

/// Every people count of the answer is the record-by-record cell, published.
fn assert_demand_matches(
    answer: &Value,
    dims: &[&str],
    table: &BTreeMap<Vec<Option<String>>, Counts>,
    totals: &Counts,
) {
    let min_cell = answer["min_cell"].as_u64().unwrap();
    let published = |c: &Cell| cell_key::publish(*c, min_cell);
    let mut seen = HashSet::new();
    for row in answer["rows"].as_array().unwrap() {
        let key: Vec<Option<String>> = dims.iter().map(|d| row[*d].as_str().map(str::to_owned)).collect();
        let expected = table.get(&key).copied().unwrap_or_default();
        for (i, name) in COUNTED.iter().enumerate() {
            assert_eq!(row[*name].as_u64(), published(&expected[i]), "{name} of {key:?} in {dims:?}: {row}");
        }
        seen.insert(key);
    }
    for key in table.keys() {
        assert!(seen.contains(key), "row {key:?} missing in {dims:?}");
    }
    for (i, name) in COUNTED.iter().enumerate() {
        assert_eq!(answer["totals"][*name].as_u64(), published(&totals[i]), "total {name} in {dims:?}");
    }
}

/// Seeds `clients` and `referrals` with the bulk seeder.
async fn seed(app: &TestApp, clients: usize, referrals: usize) -> DatabaseConnection {
    let db = app.db().await;
    let summary = ostwerk::seed::bulk(&db, clients, referrals).await.expect("seeded");
    assert!(summary.contains(&format!("{referrals} referrals")), "{summary}");
    db
}

#[tokio::test]
async fn demand_from_sql_equals_the_record_by_record_count_with_random_keys() {
    // Arrange: a few hundred clients (random record keys over all 32 bits)
    // and referrals in every status.
    let app = spawn_app().await;
    let db = seed(&app, 120, 1_500).await;
    let data = load(&db).await;
    assert!(data.clients.iter().any(|c| c.record_key >= 1 << 31), "keys use the high bit");

    for dims in [
        vec!["district", "target_group"],
        vec!["measure_kind"],
        vec!["occupation_field", "measure_kind"],
        vec!["target_group", "district", "occupation_field", "measure_kind"],
        vec![],
    ] {
        // Act
        let query = if dims.is_empty() { String::new() } else { format!("?group_by={}", dims.join(",")) };
        let answer = get_json(&app, &format!("/api/v1/statistics/demand{query}")).await;
        // Assert
        let (table, totals) = demand_by_records(&data, &dims, None);
        assert_demand_matches(&answer, &dims, &table, &totals);
    }

    // A district filter and a date filter.
    let district = data.clients[0].district.clone().unwrap();
    let answer = get_json(&app, &format!("/api/v1/statistics/demand?group_by=district&district={district}")).await;
    let in_district = Data {
        clients: data.clients.iter().filter(|c| c.district.as_deref() == Some(district.as_str())).cloned().collect(),
        referrals: data.referrals.clone(),
        kind_of: data.kind_of.clone(),
        accepted: HashSet::new(),
        started: HashSet::new(),
    };
    let (table, totals) = demand_by_records(&in_district, &["district"], None);
    assert_demand_matches(&answer, &["district"], &table, &totals);

    let mut dates: Vec<DateTime<Utc>> = data.referrals.iter().map(|r| r.created_at).collect();
    dates.sort();
    let from = dates[dates.len() / 2];
    let day = from.date_naive();
    let from = day.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let answer = get_json(&app, &format!("/api/v1/statistics/demand?group_by=target_group&from={day}")).await;
    let (table, totals) = demand_by_records(&data, &["target_group"], Some(from));
    assert_demand_matches(&answer, &["target_group"], &table, &totals);
}

#[tokio::test]
async fn outcomes_from_sql_equal_the_record_by_record_count_with_random_keys() {
    // Arrange
    let app = spawn_app().await;
    let db = seed(&app, 80, 1_200).await;
    let data = load(&db).await;
    let client_key: HashMap<Uuid, u32> = data.clients.iter().map(|c| (c.id, key_of(c.record_key))).collect();

    // Act
    let answer = get_json(&app, "/api/v1/statistics/outcomes?group_by=measure_kind").await;

    // Assert: referrals, accepted, answered, started, completed, dropped, into work per kind.
    let mut table: BTreeMap<String, [Cell; 7]> = BTreeMap::new();
    for r in &data.referrals {
        let Some(kind) = r.measure_id.and_then(|m| data.kind_of.get(&m)) else { continue };
        let c = table.entry(kind.clone()).or_default();
        let key = cell_key::derived_key(client_key.get(&r.client_id).copied().unwrap_or(0), r.id.as_u128());
        let status = ReferralStatus::parse(&r.status);
        let accepted = data.accepted.contains(&r.id);
        let started = data.started.contains(&r.id);
        c[0].add(key);
        c[1].add_if(accepted, key);
        c[2].add_if(accepted || status == Some(ReferralStatus::Rejected), key);
        c[3].add_if(started, key);
        c[4].add_if(started && status == Some(ReferralStatus::Completed), key);
        c[5].add_if(started && matches!(status, Some(ReferralStatus::Failed | ReferralStatus::Cancelled)), key);
        let into_work = matches!(r.outcome.as_deref(), Some("employed" | "apprenticeship" | "self_employed"));
        c[6].add_if(status == Some(ReferralStatus::Completed) && into_work, key);
    }
    let min_cell = answer["min_cell"].as_u64().unwrap();
    let rows = answer["rows"].as_array().unwrap();
    assert_eq!(rows.len(), table.len(), "{answer}");
    for row in rows {
        let c = table[row["group"].as_str().unwrap()];
        assert_eq!(row["referrals"].as_u64(), cell_key::publish(c[0], min_cell), "{row}");
        assert_eq!(row["acceptance_rate"].as_f64(), cell_key::publish_rate(c[1], c[2], min_cell), "{row}");
        assert_eq!(row["completion_rate"].as_f64(), cell_key::publish_rate(c[4], c[3], min_cell), "{row}");
        assert_eq!(row["dropout_rate"].as_f64(), cell_key::publish_rate(c[5], c[3], min_cell), "{row}");
        assert_eq!(row["employment_share"].as_f64(), cell_key::publish_rate(c[6], c[4], min_cell), "{row}");
    }
}

// --- bulk seeding ---

/// Every invariant the service keeps, checked in SQL so it scales to the
/// big data set: counters, event chains, versions, required fields.
async fn assert_seeded_invariants(db: &DatabaseConnection) {
    // seats_taken = accepted + in_progress, waitlisted = on_hold.
    let wrong_counters = count(
        db,
        "SELECT COUNT(*) AS n FROM measures m WHERE m.seats_taken <> \
         (SELECT COUNT(*) FROM referrals r WHERE r.measure_id = m.id AND r.status IN ('accepted', 'in_progress')) \
         OR m.waitlisted <> (SELECT COUNT(*) FROM referrals r WHERE r.measure_id = m.id AND r.status = 'on_hold')",
    )
    .await;
    assert_eq!(wrong_counters, 0, "measures whose counters miss their referrals");

    // Every transition in the history is one the status machine allows.
    for r in rows(db, "SELECT DISTINCT from_status, action, to_status FROM referral_events").await {
        let from: Option<String> = r.try_get("", "from_status").unwrap();
        let action: String = r.try_get("", "action").unwrap();
        let to: String = r.try_get("", "to_status").unwrap();
        let allowed = match from {
            None => action == "create" && to == "requested",
            Some(from) => ReferralStatus::parse(&from)
                .zip(ReferralAction::parse(&action))
                .and_then(|(s, a)| s.after(a))
                .is_some_and(|s| s.as_str() == to),
        };
        assert!(allowed, "an event {action} to {to} the machine does not allow");
    }
    // The events of a referral form one chain from `create` ...
    let broken = count(
        db,
        "SELECT COUNT(*) AS n FROM (SELECT action, from_status, \
         LAG(to_status) OVER (PARTITION BY referral_id ORDER BY at, id) AS before FROM referral_events) e \
         WHERE (e.action = 'create' AND e.before IS NOT NULL) \
         OR (e.action <> 'create' AND (e.before IS NULL OR e.before <> e.from_status))",
    )
    .await;
    assert_eq!(broken, 0, "events that do not follow the one before");
    // ... to the referral's status, one event per version.
    let wrong_end = count(
        db,
        "SELECT COUNT(*) AS n FROM referrals r JOIN (SELECT referral_id, to_status, \
         ROW_NUMBER() OVER (PARTITION BY referral_id ORDER BY at DESC, id DESC) AS nth FROM referral_events) e \
         ON e.referral_id = r.id AND e.nth = 1 WHERE e.to_status <> r.status",
    )
    .await;
    assert_eq!(wrong_end, 0, "referrals whose last event is not their status");
    let wrong_versions = count(
        db,
        "SELECT COUNT(*) AS n FROM referrals r WHERE r.version <> \
         (SELECT COUNT(*) FROM referral_events e WHERE e.referral_id = r.id)",
    )
    .await;
    assert_eq!(wrong_versions, 0, "referrals whose version is not their number of events");

    // What each status requires, and referrals only for active clients.
    let incomplete = count(
        db,
        "SELECT COUNT(*) AS n FROM referrals WHERE \
         (status = 'completed' AND (outcome IS NULL OR outcome_on IS NULL)) \
         OR (status <> 'completed' AND outcome IS NOT NULL) \
         OR (status = 'rejected' AND (rejected_by IS NULL OR reason_code IS NULL)) \
         OR (status IN ('failed', 'cancelled') AND reason_code IS NULL) \
         OR key_factor = 0 OR updated_at < created_at",
    )
    .await;
    assert_eq!(incomplete, 0, "referrals missing what their status requires");
    let of_inactive = count(
        db,
        "SELECT COUNT(*) AS n FROM referrals r JOIN clients c ON c.id = r.client_id WHERE c.status <> 'active'",
    )
    .await;
    assert_eq!(of_inactive, 0, "referrals of clients who are not active");
}

#[tokio::test]
async fn bulk_seeded_data_keeps_every_invariant() {
    // Arrange / Act: more referrals than 20 per client, so closed ones repeat measures.
    let app = spawn_app().await;
    let db = seed(&app, 100, 2_500).await;

    // Assert
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM clients").await, 100);
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM referrals").await, 2_500);
    for status in ReferralStatus::ALL {
        let n = count(&db, &format!("SELECT COUNT(*) AS n FROM referrals WHERE status = '{}'", status.as_str())).await;
        assert!(n > 0, "no referral is {}", status.as_str());
    }
    assert_seeded_invariants(&db).await;
    // Every stored key factor is the one of the referral's id.
    for r in rows(&db, "SELECT id, key_factor FROM referrals").await {
        let id: Uuid = r.try_get("", "id").unwrap();
        let factor: i64 = r.try_get("", "key_factor").unwrap();
        assert_eq!(factor, i64::from(cell_key::key_factor(id.as_u128())));
    }
    // The service path still works on seeded data: an API read of a seeded referral.
    let id: Uuid = rows(&db, "SELECT id FROM referrals WHERE status = 'requested'").await[0].try_get("", "id").unwrap();
    let res = app.get(&format!("/api/v1/referrals/{id}"), &admin()).await;
    assert_eq!(res.status(), 200);
}

/// `ostwerk seed --clients 300 --referrals 3000` through the binary (the
/// bulk writer: `COPY` on PostgreSQL, prepared multi-row `INSERT`s on
/// SQLite): the counters, the event chains, the clients and their audit
/// events are what the service would have written.
#[tokio::test]
async fn seed_cli_writes_clients_audit_events_referrals_and_counters_that_agree() {
    // Arrange: the server's expiry job would add `expire` events to the
    // seeded open referrals (created up to three years ago); not within ten years.
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut ostwerk::config::Settings| s.referral_expiry_days = 3_650)),
        ..Options::default()
    })
    .await;

    // Act
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ostwerk"))
        .args(["seed", "--clients", "300", "--referrals", "3000"])
        .env("DATABASE_URL", &app.database_url)
        .env("OSTWERK_LOG", "warn")
        .env_remove("OSTWERK_JWT_SECRET")
        .output()
        .expect("ostwerk runs");

    // Assert: the summary line, then the data.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("300 clients in ") && stdout.contains(", 3000 referrals in "), "{stdout}");
    let db = app.db().await;
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM clients").await, 300);
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM referrals").await, 3_000);
    // One `client.create` audit event per client, as `insert_many` writes them.
    assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM audit_events").await, 300);
    let audited = count(
        &db,
        "SELECT COUNT(*) AS n FROM clients c JOIN audit_events a ON a.client_id = c.id AND a.resource_id = c.id \
         WHERE a.action = 'client.create' AND a.resource = 'client' AND a.actor = 'ostwerk-seed' \
         AND a.actor_org = 'office' AND a.client_request_id IS NULL",
    )
    .await;
    assert_eq!(audited, 300, "clients without their create event");
    assert_eq!(count(&db, "SELECT COUNT(DISTINCT request_id) AS n FROM audit_events").await, 1);
    // Counters per measure equal the referrals holding a seat or a waitlist place.
    for r in rows(
        &db,
        "SELECT m.seats_taken, m.waitlisted, \
         (SELECT COUNT(*) FROM referrals r WHERE r.measure_id = m.id AND r.status IN ('accepted', 'in_progress')) AS seats, \
         (SELECT COUNT(*) FROM referrals r WHERE r.measure_id = m.id AND r.status = 'on_hold') AS held \
         FROM measures m",
    )
    .await
    {
        let (taken, seats): (i32, i64) = (r.try_get("", "seats_taken").unwrap(), r.try_get("", "seats").unwrap());
        let (waitlisted, held): (i32, i64) = (r.try_get("", "waitlisted").unwrap(), r.try_get("", "held").unwrap());
        assert_eq!((i64::from(taken), i64::from(waitlisted)), (seats, held));
    }
    assert_seeded_invariants(&db).await;
    // Each referral's events are `create` and then one of the seeder's paths
    // (event count = path length + 1), ending in the referral's status.
    let paths: HashSet<&str> = [
        "",
        "waitlist",
        "accept",
        "accept,start",
        "accept,start,complete",
        "accept,start,fail",
        "accept,fail",
        "reject",
        "cancel",
        "accept,start,cancel",
        "expire",
    ]
    .into();
    let mut histories: HashMap<Uuid, Vec<String>> = HashMap::new();
    for r in rows(&db, "SELECT referral_id, action FROM referral_events ORDER BY referral_id, at, id").await {
        histories.entry(r.try_get("", "referral_id").unwrap()).or_default().push(r.try_get("", "action").unwrap());
    }
    assert_eq!(histories.len(), 3_000);
    for (id, actions) in &histories {
        assert_eq!(actions[0], "create", "{id}");
        assert!(paths.contains(actions[1..].join(",").as_str()), "{id}: {actions:?}");
    }
    // What the bulk writer stored reads back through the API (JSON columns,
    // timestamps, dates).
    let client: Uuid = rows(&db, "SELECT id FROM clients WHERE status = 'active'").await[0].try_get("", "id").unwrap();
    let body: Value = app.get(&format!("/api/v1/clients/{client}"), &admin()).await.json().await.unwrap();
    assert_eq!(body["address"]["city"], "Leipzig", "{body}");
    assert_eq!(body["consent"]["data_processing"], true, "{body}");
    assert!(body["external_id"].as_str().unwrap().starts_with("LOAD-"), "{body}");
    let done: Uuid =
        rows(&db, "SELECT id FROM referrals WHERE status = 'completed'").await[0].try_get("", "id").unwrap();
    let res = app.get(&format!("/api/v1/referrals/{done}/events"), &admin()).await;
    assert_eq!(res.status(), 200);
    let body: Value = app.get(&format!("/api/v1/referrals/{done}"), &admin()).await.json().await.unwrap();
    assert_eq!(body["status"], "completed", "{body}");
    assert!(body["outcome_on"].is_string(), "{body}");
}

#[tokio::test]
async fn the_bulk_seeder_gives_the_sqlite_connection_its_page_cache_back() {
    if is_postgres() {
        return; // nothing changed on PostgreSQL
    }
    // Arrange: one connection, as the server's pool (the pragma is per connection).
    let app = spawn_app().await;
    let mut options = sea_orm::ConnectOptions::new(app.database_url.clone());
    options.max_connections(1).min_connections(1);
    let db = sea_orm::Database::connect(options).await.unwrap();
    let cache = |db: DatabaseConnection| async move {
        let r = &rows(&db, "PRAGMA cache_size").await[0];
        r.try_get_by_index::<i64>(0).unwrap()
    };
    let before = cache(db.clone()).await;
    // Act
    ostwerk::seed::bulk(&db, 30, 200).await.expect("seeded");
    // Assert
    assert_eq!(cache(db).await, before);
}

#[tokio::test]
async fn the_key_factor_backfill_in_sql_equals_the_fold_in_rust() {
    // Arrange: referrals written by the service, then their factors cleared.
    let app = spawn_app().await;
    let db = seed(&app, 30, 200).await;
    let before: HashMap<Uuid, i64> = rows(&db, "SELECT id, key_factor FROM referrals")
        .await
        .iter()
        .map(|r| (r.try_get("", "id").unwrap(), r.try_get("", "key_factor").unwrap()))
        .collect();
    db.execute_unprepared("UPDATE referrals SET key_factor = 0").await.unwrap();

    // Act: the migration's backfill.
    let sql = migration::m20261202_000025_statistics_in_sql::backfill(db.get_database_backend());
    db.execute_unprepared(&sql).await.unwrap();

    // Assert
    for r in rows(&db, "SELECT id, key_factor FROM referrals").await {
        let id: Uuid = r.try_get("", "id").unwrap();
        assert_eq!(r.try_get::<i64>("", "key_factor").unwrap(), before[&id], "{id}");
    }
}

/// `OSTWERK_BIG_TESTS=1` with `TEST_DATABASE_URL` (PostgreSQL): 100 000
/// clients and 1 000 000 referrals; the demand answer (record keys 0, so no
/// noise) must equal plain SQL counts. Not run in CI.
#[tokio::test]
async fn demand_at_a_million_referrals_equals_plain_sql_counts() {
    if std::env::var("OSTWERK_BIG_TESTS").as_deref() != Ok("1") || !is_postgres() {
        eprintln!("skipped: set OSTWERK_BIG_TESTS=1 and TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    // Arrange
    let app = spawn_app().await;
    let started = std::time::Instant::now();
    let db = seed(&app, 100_000, 1_000_000).await;
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    assert_seeded_invariants(&db).await;
    crate::statistics_privacy::set_all_record_keys(&app, 0).await;

    // Act
    let started = std::time::Instant::now();
    let answer = get_json(&app, "/api/v1/statistics/demand?group_by=district,target_group").await;
    eprintln!("demand answered in {} ms", started.elapsed().as_millis());

    // Assert
    let min_cell = answer["min_cell"].as_u64().unwrap();
    let active = "'requested', 'on_hold', 'accepted', 'in_progress'";
    let condition = |row: &Value| {
        let district = match row["district"].as_str() {
            Some(d) => format!("c.district = '{d}'"),
            None => "c.district IS NULL".to_owned(),
        };
        let group = match row["target_group"].as_str() {
            Some(g) => format!("c.target_groups LIKE '%|{g}|%'"),
            None => "c.target_groups = ''".to_owned(),
        };
        format!("{district} AND {group}")
    };
    let mut checked = 0;
    for row in answer["rows"].as_array().unwrap() {
        let only = condition(row);
        let expected = [
            ("clients", format!("SELECT COUNT(*) AS n FROM clients c WHERE c.status = 'active' AND {only}")),
            (
                "unserved_clients",
                format!(
                    "SELECT COUNT(*) AS n FROM clients c WHERE c.status = 'active' AND {only} AND NOT EXISTS \
                     (SELECT 1 FROM referrals r WHERE r.client_id = c.id AND r.status IN ({active}))"
                ),
            ),
            (
                "referrals_active",
                format!(
                    "SELECT COUNT(*) AS n FROM referrals r JOIN clients c ON c.id = r.client_id \
                     WHERE r.status IN ({active}) AND {only}"
                ),
            ),
            (
                "referrals_requested",
                format!(
                    "SELECT COUNT(*) AS n FROM referrals r JOIN clients c ON c.id = r.client_id \
                     WHERE r.status = 'requested' AND {only}"
                ),
            ),
        ];
        for (name, sql) in expected {
            let n = u64::try_from(count(&db, &sql).await).unwrap();
            let published = if n > 0 && n < min_cell { None } else { Some(n) };
            assert_eq!(row[name].as_u64(), published, "{name} of {row}");
            checked += 1;
        }
    }
    assert!(checked >= 4 * 7 * 8, "only {checked} counts checked");
    let total = count(&db, &format!("SELECT COUNT(*) AS n FROM referrals WHERE status IN ({active})")).await;
    assert_eq!(answer["totals"]["referrals_active"].as_i64(), Some(total));
}
