//! Statistics privacy (issue 12): the cell-key method stops differencing
//! attacks, the same cell has the same value everywhere and after a restart,
//! and planners get labels in the answer and CSV on request.
//!
//! The record keys are set directly in the database where a test needs
//! known noise: the perturbation table is public (docs), so a test can
//! choose keys whose noise it knows.
use ostwerk::startup::Application;
use reqwest::header;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::*;

const DEMAND: &str = "/api/v1/statistics/demand";

/// A cell key whose noise is +1 for a count of 2 or more (slice 12 of the
/// 20 slices of the public perturbation table).
const PLUS_ONE: i64 = 12 * (1 << 32) / 20 + 1000;

/// Sets the record key of every client to `key`. With 0 every cell key is
/// 0 and every count is published exactly, which lets the older statistics
/// tests keep pinning exact numbers.
pub async fn set_all_record_keys(app: &TestApp, key: i64) {
    let db = app.db().await;
    let sql = format!("UPDATE clients SET record_key = {key}");
    db.execute_unprepared(&sql).await.expect("record keys set");
}

/// Sets the record key of one client.
async fn set_record_key(app: &TestApp, client: &str, key: i64) {
    let db = app.db().await;
    let backend = db.get_database_backend();
    let placeholder = if backend == sea_orm::DbBackend::Postgres { ("$1", "$2") } else { ("?", "?") };
    let sql = format!("UPDATE clients SET record_key = {} WHERE id = {}", placeholder.0, placeholder.1);
    let id = uuid::Uuid::parse_str(client).unwrap();
    let res = db.execute_raw(Statement::from_sql_and_values(backend, sql, [key.into(), id.into()])).await.unwrap();
    assert_eq!(res.rows_affected(), 1, "client {client}");
}

/// `n` active youth clients of `district`; their ids.
async fn residents(app: &TestApp, n: usize, district: &str) -> Vec<String> {
    let body = client_body_with(json!({"external_id": null, "district": district, "target_groups": ["youth"]}));
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(id_of(&app.create_client(&caseworker(), &body).await));
    }
    ids
}

async fn get_json(base: &str, app: &TestApp, path: &str) -> Value {
    let res =
        app.client.get(format!("{base}{path}")).bearer_auth(token_for(&Caller::new("analyst"))).send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn clients_in(report: &Value, district: &str) -> Value {
    let rows = report["rows"].as_array().unwrap();
    let found: Vec<&Value> = rows.iter().filter(|r| r["district"] == district).collect();
    assert_eq!(found.len(), 1, "one row for district {district} in {report}");
    found[0]["clients"].clone()
}

/// GETs `path` with extra headers; the status, content type and body bytes.
async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (u16, String, Vec<u8>) {
    let mut req = app.request(reqwest::Method::GET, path, Some(&Caller::new("analyst")));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type =
        res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, content_type, res.bytes().await.unwrap().to_vec())
}

const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// Parses a CSV answer: asserts the BOM, then header and records.
fn parse_csv(body: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    assert!(body.starts_with(BOM), "no UTF-8 byte-order mark: {:?}", &body[..body.len().min(8)]);
    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(&body[BOM.len()..]);
    let headers = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let records = reader.records().map(|r| r.unwrap().iter().map(str::to_owned).collect()).collect();
    (headers, records)
}

#[tokio::test]
async fn subtracting_the_visible_districts_from_the_whole_no_longer_reveals_a_hidden_district() {
    // Arrange: 16 clients in district 21, 2 in district 22 (a hidden cell).
    // Before the cell-key method, the ungrouped answer (18) minus district
    // 21 (16) gave the suppressed 2 exactly. Keys: all 0 except one client
    // of district 22, so the whole and district 22 get +1, district 21 none.
    let app = spawn_app().await;
    residents(&app, 16, "21").await;
    let hidden = residents(&app, 2, "22").await;
    set_all_record_keys(&app, 0).await;
    set_record_key(&app, &hidden[0], PLUS_ONE).await;

    // Act
    let by_district = get_json(&app.address, &app, &format!("{DEMAND}?group_by=district")).await;
    let whole = get_json(&app.address, &app, DEMAND).await;

    // Assert
    assert_eq!(clients_in(&by_district, "22"), Value::Null, "district 22 stays suppressed: {by_district}");
    let visible = clients_in(&by_district, "21").as_u64().unwrap();
    let everyone = whole["rows"][0]["clients"].as_u64().unwrap();
    assert_eq!(whole["totals"]["clients"].as_u64(), Some(everyone), "the whole is one cell: {whole}");
    assert_eq!(by_district["totals"]["clients"].as_u64(), Some(everyone), "totals are the same cell: {by_district}");
    assert_ne!(everyone - visible, 2, "the difference reveals the hidden count: {everyone} − {visible}");
}

#[tokio::test]
async fn the_same_cell_has_the_same_value_in_every_grouping_and_after_a_restart() {
    // Arrange: random keys as the service gives them.
    let app = spawn_app().await;
    residents(&app, 13, "21").await;
    residents(&app, 7, "22").await;
    let by_district_path = format!("{DEMAND}?group_by=district");

    // Act
    let by_district = get_json(&app.address, &app, &by_district_path).await;
    let filtered = get_json(&app.address, &app, &format!("{DEMAND}?district=21")).await;
    let both = get_json(&app.address, &app, &format!("{DEMAND}?group_by=district,target_group&district=21")).await;
    let restarted = Application::build(app.settings.clone()).await.expect("second instance builds");
    let address = format!("http://127.0.0.1:{}", restarted.port());
    tokio::spawn(restarted.run_until_stopped());
    let after_restart = get_json(&address, &app, &by_district_path).await;

    // Assert
    assert_eq!(by_district["perturbed"], true, "{by_district}");
    assert_eq!(by_district["method"], "cell-key", "{by_district}");
    let d21 = clients_in(&by_district, "21");
    let n = d21.as_u64().unwrap();
    assert!((11..=15).contains(&n), "13 clients perturbed by at most 2: {n}");
    assert_eq!(filtered["rows"][0]["clients"], d21, "{filtered}");
    assert_eq!(filtered["totals"]["clients"], d21, "{filtered}");
    assert_eq!(both["rows"][0]["clients"], d21, "all of district 21 are youth: {both}");
    assert_eq!(both["totals"]["clients"], d21, "{both}");
    assert_eq!(clients_in(&after_restart, "21"), d21, "{after_restart}");
    assert_eq!(clients_in(&after_restart, "22"), clients_in(&by_district, "22"));
}

#[tokio::test]
async fn every_statistics_answer_says_it_is_perturbed_and_names_the_method_and_its_parameters() {
    // Arrange
    let app = spawn_app().await;

    for path in [DEMAND, "/api/v1/statistics/outcomes", "/api/v1/statistics/funding"] {
        // Act
        let report = get_json(&app.address, &app, path).await;

        // Assert
        assert_eq!(report["perturbed"], true, "{path}: {report}");
        assert_eq!(report["method"], "cell-key", "{path}: {report}");
        assert_eq!(report["perturbation"]["max_deviation"], 2, "{path}: {report}");
        assert_eq!(report["perturbation"]["variance"], 1.3, "{path}: {report}");
        assert_eq!(report["min_cell"], 5, "{path}: {report}");
    }
}

#[tokio::test]
async fn record_keys_are_never_served() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;

    // Act
    let read: Value =
        app.get(&format!("/api/v1/clients/{}", id_of(&client)), &caseworker()).await.json().await.unwrap();
    let report = get_json(&app.address, &app, &format!("{DEMAND}?group_by=district")).await;

    // Assert
    for answer in [&client, &read, &report] {
        assert!(!answer.to_string().contains("record_key"), "{answer}");
    }
}

#[tokio::test]
async fn demand_rows_carry_the_labels_of_their_codes_in_the_callers_language() {
    // Arrange
    let app = spawn_app().await;
    residents(&app, 6, "21").await;
    let path = format!("{DEMAND}?group_by=district,target_group");

    // Act
    let (_, _, english) = get_with(&app, &path, &[]).await;
    let (_, _, german) = get_with(&app, &path, &[("Accept-Language", "de-DE,de;q=0.9,en;q=0.5")]).await;

    // Assert
    let english: Value = serde_json::from_slice(&english).unwrap();
    let german: Value = serde_json::from_slice(&german).unwrap();
    assert_eq!(english["rows"][0]["district_label"], "Volkmarsdorf", "{english}");
    assert_eq!(english["rows"][0]["target_group_label"], "Young people", "{english}");
    assert_eq!(german["rows"][0]["target_group_label"], "Jugendliche", "{german}");
}

#[tokio::test]
async fn demand_as_csv_is_semicolon_separated_utf8_with_a_bom_and_english_headers() {
    // Arrange
    let app = spawn_app().await;
    // 7 clients: even with −2 the count stays ≥ 5 and is shown.
    residents(&app, 7, "21").await;

    // Act
    let (status, content_type, body) =
        get_with(&app, &format!("{DEMAND}?group_by=district,target_group"), &[("Accept", "text/csv")]).await;

    // Assert
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/csv"), "{content_type}");
    let (headers, records) = parse_csv(&body);
    assert_eq!(
        headers,
        [
            "district",
            "district_label",
            "target_group",
            "target_group_label",
            "clients",
            "referrals_requested",
            "referrals_active",
            "seats_offered",
            "seats_free",
            "unserved_clients",
            "suppressed"
        ]
    );
    assert_eq!(records.len(), 2, "one row and the totals: {records:?}");
    assert_eq!(records[0][..4], ["21", "Volkmarsdorf", "youth", "Young people"]);
    assert!((5..=9).contains(&records[0][4].parse::<u64>().unwrap()), "7 clients ± 2: {records:?}");
    assert_eq!(records[1][0], "total");
}

#[tokio::test]
async fn demand_as_csv_has_german_headers_and_labels_with_accept_language_de() {
    // Arrange
    let app = spawn_app().await;
    residents(&app, 6, "21").await;

    // Act
    let (status, _, body) = get_with(
        &app,
        &format!("{DEMAND}?group_by=target_group"),
        &[("Accept", "text/csv"), ("Accept-Language", "de")],
    )
    .await;

    // Assert
    assert_eq!(status, 200);
    let (headers, records) = parse_csv(&body);
    assert_eq!(
        headers,
        [
            "Zielgruppe",
            "Zielgruppe (Bezeichnung)",
            "Klient:innen",
            "Zuweisungen angefragt",
            "Zuweisungen aktiv",
            "Plätze angeboten",
            "Plätze frei",
            "Klient:innen ohne Zuweisung",
            "Geheimgehalten"
        ]
    );
    assert_eq!(records[0][..2], ["youth", "Jugendliche"]);
    assert_eq!(records.last().unwrap()[0], "Insgesamt");
}

#[tokio::test]
async fn outcomes_and_funding_answer_csv_with_their_columns() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (outcome_status, _, outcomes) =
        get_with(&app, "/api/v1/statistics/outcomes", &[("Accept", "text/csv;q=0.9, application/json;q=0.5")]).await;
    let (funding_status, _, funding) =
        get_with(&app, "/api/v1/statistics/funding?group_by=funder", &[("Accept", "text/csv")]).await;

    // Assert
    assert_eq!((outcome_status, funding_status), (200, 200));
    assert_eq!(
        parse_csv(&outcomes).0,
        [
            "group",
            "group_label",
            "referrals",
            "acceptance_rate",
            "completion_rate",
            "dropout_rate",
            "employment_share",
            "suppressed"
        ]
    );
    assert_eq!(
        parse_csv(&funding).0,
        ["group", "group_label", "applications", "granted", "amount_requested_eur", "amount_granted_eur", "suppressed"]
    );
}

#[tokio::test]
async fn the_record_key_migration_gives_existing_clients_distinct_random_keys() {
    use migration::{Migrator, MigratorTrait};
    // Arrange: three clients, then the schema taken back to the step
    // before the record keys (and every later step).
    let app = spawn_app().await;
    residents(&app, 3, "21").await;
    let db = app.db().await;
    let steps = Migrator::migrations();
    let position = steps.iter().position(|m| m.name().contains("000011_record_keys")).expect("the migration exists");
    Migrator::down(&db, Some(u32::try_from(steps.len() - position).unwrap())).await.unwrap();

    // Act
    Migrator::up(&db, None).await.unwrap();

    // Assert
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(Statement::from_string(backend, "SELECT record_key FROM clients")).await.unwrap();
    let mut keys: Vec<i64> = rows.iter().map(|r| r.try_get("", "record_key").unwrap()).collect();
    assert_eq!(keys.len(), 3);
    assert!(keys.iter().all(|k| (1..1 << 32).contains(k)), "keys in (0, 2³²): {keys:?}");
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 3, "distinct keys: {keys:?}");
}

#[tokio::test]
async fn the_same_referrals_have_the_same_count_in_the_demand_and_the_outcome_statistics() {
    // Arrange: 8 requested referrals into one further-training measure; the
    // cell "referrals into further training" is the same set of records in
    // both endpoints.
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let body = with(
        measure_body(&provider),
        json!({"kind": "further_training", "district": "21", "capacity": 20, "target_groups": ["youth"],
               "occupation_codes": ["62102"], "min_age": null}),
    );
    let measure = app.create_measure(&body).await;
    for client in residents(&app, 8, "21").await {
        app.create("/api/v1/referrals", &caseworker(), &json!({"client_id": client, "measure_id": id_of(&measure)}))
            .await;
    }

    // Act
    let demand = get_json(&app.address, &app, &format!("{DEMAND}?group_by=measure_kind")).await;
    let outcomes = get_json(&app.address, &app, "/api/v1/statistics/outcomes?group_by=measure_kind").await;

    // Assert
    let in_demand = demand["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["measure_kind"] == "further_training")
        .map(|r| r["referrals_requested"].clone())
        .unwrap();
    let in_outcomes = outcomes["rows"][0]["referrals"].clone();
    assert_eq!(outcomes["rows"][0]["group"], "further_training");
    assert_eq!(outcomes["rows"][0]["group_label"], "Further training", "{outcomes}");
    assert!((6..=10).contains(&in_demand.as_u64().unwrap()), "8 ± 2: {demand}");
    assert_eq!(in_outcomes, in_demand, "demand: {demand}\noutcomes: {outcomes}");
}
