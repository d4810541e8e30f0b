//! The maintained demand aggregate (`repository::demand`, issue 8, stored
//! pre-spread per variant) answers exactly what the raw `GROUP BY`s over
//! clients and referrals answer, once the service has spread both into the
//! cells of a request: after random sequences of API writes, after
//! compaction, after a rebuild, and after concurrent referral POSTs for one
//! client.
use chrono::{DateTime, Duration, NaiveTime, Utc};
use ostwerk::{
    repository::{
        demand,
        statistics::{self, DemandSplit},
    },
    service::statistics::{DemandQuery, DemandSource, Dim, demand_table},
};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};

use crate::{helpers::*, referral_fixtures as fx};

const REFERRALS: &str = "/api/v1/referrals";
const DISTRICTS: [&str; 3] = ["20", "21", "22"];
const GROUPS: [&str; 4] = ["youth", "unemployed", "long_term_unemployed", "single_parent"];
const CODES: [&str; 4] = ["62102", "71402", "25212", "62302"];
const KINDS: [&str; 3] = ["application_training", "further_training", "language_course"];

/// A small deterministic generator (the sequence is the same on every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    /// A non-empty subset of `from`.
    fn some<'a>(&mut self, from: &[&'a str]) -> Vec<&'a str> {
        let mut out: Vec<&str> = from.iter().copied().filter(|_| self.below(2) == 0).collect();
        if out.is_empty() {
            out.push(self.pick(from));
        }
        out
    }
}

/// Every subset of the dimensions (16), in their canonical order.
fn group_bys() -> Vec<Vec<Dim>> {
    let dims = [Dim::District, Dim::TargetGroup, Dim::OccupationField, Dim::MeasureKind];
    (0..16u32)
        .map(|bits| dims.iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, d)| *d).collect())
        .collect()
}

fn midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(NaiveTime::MIN).and_utc()
}

/// Every `group_by` subset × district filter × midnight bounds: the
/// service's exact counts per row and in total (count and key sum of every
/// cell) from the aggregate equal those from the raw `GROUP BY`s.
async fn assert_aggregate_is_exact(db: &DatabaseConnection, when: &str) {
    let today = midnight(Utc::now());
    let bounds = [
        (None, None),
        (Some(today), None),
        (None, Some(today + Duration::days(1))),
        (Some(today - Duration::days(1)), Some(today + Duration::days(1))),
        (Some(today + Duration::days(1)), None),
    ];
    for group_by in group_bys() {
        for district in [None, Some("21")] {
            for (from, to) in bounds {
                let q = DemandQuery { group_by: group_by.clone(), district: district.map(str::to_owned), from, to };
                let aggregate = demand_table(db, &q, DemandSource::Aggregate).await.unwrap();
                let exact = demand_table(db, &q, DemandSource::Exact).await.unwrap();
                assert_eq!(aggregate, exact, "{when}: {group_by:?}, district {district:?}, {from:?}..{to:?}");
            }
        }
    }
}

/// Every row of the log (id, n, keys), in id order.
async fn log_rows(db: &DatabaseConnection) -> Vec<(i64, i64, i64)> {
    let sql = "SELECT id, n, keys FROM demand_cells ORDER BY id";
    use sea_orm::ConnectionTrait;
    let rows = db.query_all_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap();
    rows.iter()
        .map(|r| (r.try_get("", "id").unwrap(), r.try_get("", "n").unwrap(), r.try_get("", "keys").unwrap()))
        .collect()
}

async fn status_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_aggregate_equals_the_raw_group_by_after_random_writes_compaction_and_rebuild() {
    // Arrange: the test folds the log itself; the server's own fold (first
    // at start, then hourly here) must not rewrite rows between the test's
    // look at the log and its idle fold.
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut ostwerk::config::Settings| s.statistics_compact_secs = 3600)),
        ..Default::default()
    })
    .await;
    let db = app.db().await;
    let provider = fx::provider(&app).await;
    let mut measures = Vec::new();
    for (i, kind) in KINDS.iter().enumerate() {
        let extra = json!({"kind": kind, "district": DISTRICTS[i], "occupation_codes": [CODES[i]]});
        measures.push(fx::id(&fx::measure(&app, &provider.id, 50, extra).await));
    }
    let mut rng = Lcg(20_261_209);
    let mut clients: Vec<String> = Vec::new();
    let mut referrals: Vec<String> = Vec::new();
    let mut folded = None;
    let actions = [
        json!({"action": "accept"}),
        json!({"action": "start"}),
        json!({"action": "waitlist"}),
        json!({"action": "reject", "reason_code": "no_capacity", "rejected_by": "provider"}),
        json!({"action": "cancel", "reason_code": "no_longer_needed"}),
        json!({"action": "complete", "outcome": "employed"}),
    ];

    // Act: random writes through the API, checking the aggregate along the way.
    for step in 0..120 {
        let op = if clients.len() < 6 { 0 } else { rng.below(10) };
        match op {
            0 | 1 => {
                let body = client_body_with(json!({
                    "external_id": null,
                    "district": rng.pick(&DISTRICTS),
                    "target_groups": rng.some(&GROUPS),
                    "occupation_codes": rng.some(&CODES),
                }));
                clients.push(id_of(&app.create_client(&caseworker(), &body).await));
            }
            2..=4 => {
                let client = clients[rng.below(clients.len())].clone();
                let measure = measures[rng.below(measures.len())].clone();
                let body = json!({"client_id": client, "measure_id": measure});
                let (status, body) = status_of(app.post(REFERRALS, &caseworker(), &body).await).await;
                if status == 201 {
                    referrals.push(id_of(&body));
                }
            }
            5..=7 if !referrals.is_empty() => {
                let referral = &referrals[rng.below(referrals.len())];
                let action = &actions[rng.below(actions.len())];
                app.post(&format!("{REFERRALS}/{referral}/transitions"), &caseworker(), action).await;
            }
            8 => {
                let client = &clients[rng.below(clients.len())];
                let change = match rng.below(3) {
                    0 => json!({"district": rng.pick(&DISTRICTS)}),
                    1 => json!({"target_groups": rng.some(&GROUPS), "occupation_codes": rng.some(&CODES)}),
                    _ => json!({"status": if rng.below(2) == 0 { "inactive" } else { "active" }}),
                };
                app.patch(&format!("/api/v1/clients/{client}"), &caseworker(), &change).await;
            }
            9 if rng.below(3) == 0 => {
                let client = &clients[rng.below(clients.len())];
                app.delete(&format!("/api/v1/clients/{client}"), &admin()).await;
            }
            _ => {
                let measure = &measures[rng.below(measures.len())];
                let (status, _) = status_of(
                    app.patch(
                        &format!("/api/v1/measures/{measure}"),
                        &caseworker(),
                        &json!({"kind": rng.pick(&KINDS)}),
                    )
                    .await,
                )
                .await;
                assert_eq!(status, 200, "kind change");
            }
        }
        if step % 30 == 29 {
            assert_aggregate_is_exact(&db, &format!("after step {step}")).await;
            // The background fold: only the cells written since the last one.
            folded = demand::compact(&db, folded).await.unwrap();
            assert_aggregate_is_exact(&db, &format!("after the fold at step {step}")).await;
        }
    }

    // Assert
    assert!(referrals.len() > 10, "the sequence made referrals: {}", referrals.len());
    assert_aggregate_is_exact(&db, "at the end").await;
    demand::compact(&db, None).await.unwrap();
    assert_aggregate_is_exact(&db, "after compaction").await;
    // Nothing written since: a fold from the log's end rewrites nothing.
    let before = log_rows(&db).await;
    let last = demand::last_cell_id(&db).await.unwrap();
    assert_eq!(demand::compact(&db, last).await.unwrap(), last);
    assert_eq!(log_rows(&db).await, before, "an idle fold leaves every row in place");
    demand::compact(&db, None).await.unwrap();
    assert_aggregate_is_exact(&db, "after a second compaction").await;
    demand::rebuild(&db).await.unwrap();
    assert_aggregate_is_exact(&db, "after a rebuild").await;
    // Two reads finding it stale at once: one rebuilds, the other finds
    // nothing left to do (never both adding to the log).
    demand::mark_stale(&db).await.unwrap();
    let (first, second) = tokio::join!(demand::ensure_fresh(&db), demand::ensure_fresh(&db));
    first.unwrap();
    second.unwrap();
    assert_aggregate_is_exact(&db, "after two concurrent rebuilds").await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn concurrent_referral_posts_for_one_client_keep_the_aggregate_exact() {
    // Arrange: one client, and as many measures as concurrent POSTs (one
    // active referral per client and measure).
    let app = spawn_app().await;
    let db = app.db().await;
    let provider = fx::provider(&app).await;
    let mut measures = Vec::new();
    for i in 0..8 {
        let extra = json!({"kind": KINDS[i % KINDS.len()], "title": format!("Kurs {i}")});
        measures.push(fx::id(&fx::measure(&app, &provider.id, 50, extra).await));
    }
    let client = id_of(&app.create_client(&caseworker(), &client_body_with(json!({"external_id": null}))).await);
    let other = id_of(&app.create_client(&caseworker(), &client_body_with(json!({"external_id": null}))).await);

    // Act: all at once, plus the other client (same cells) in between.
    let posts = measures.iter().flat_map(|m| {
        [&client, &other].map(|c| {
            let body = json!({"client_id": c, "measure_id": m});
            let app = &app;
            async move { app.post(REFERRALS, &caseworker(), &body).await.status().as_u16() }
        })
    });
    let statuses = futures_util::future::join_all(posts).await;

    // Assert
    assert!(statuses.iter().all(|s| *s == 201), "every POST created: {statuses:?}");
    assert_aggregate_is_exact(&db, "after concurrent POSTs").await;
    let groups = statistics::demand_referrals(&db, None, None, None, DemandSplit::default()).await.unwrap();
    assert_eq!(groups.iter().map(|g| g.cell.count).sum::<u64>(), 16);
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_record_key_changed_by_hand_makes_the_next_read_rebuild_the_aggregate() {
    // Arrange
    let app = spawn_app().await;
    let db = app.db().await;
    let provider = fx::provider(&app).await;
    let measure = fx::measure(&app, &provider.id, 10, json!({})).await;
    let client = id_of(&app.create_client(&caseworker(), &client_body_with(json!({"external_id": null}))).await);
    app.create(REFERRALS, &caseworker(), &json!({"client_id": client, "measure_id": fx::id(&measure)})).await;

    // Act: the key changes outside the service (a repair script, a test).
    crate::statistics_privacy::set_all_record_keys(&app, 7).await;
    let res = app.get("/api/v1/statistics/demand?group_by=district", &Caller::new("analyst")).await;

    // Assert
    assert_eq!(res.status(), 200);
    assert_aggregate_is_exact(&db, "after the read rebuilt it").await;
    db.close().await.unwrap();
}
