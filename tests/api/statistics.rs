//! Statistics (SPEC §3 "Statistics", §5): anonymised demand and outcomes for
//! office staff, job centres, providers and analysts; counts from 1 to
//! `min_cell − 1` are suppressed, exact seat totals too where they would
//! reveal one (counts of people are perturbed, see statistics_privacy.rs); no
//! personal data and no audit trail, because nothing personal is read.
use ostwerk::startup::Application;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{helpers::*, statistics_privacy::set_all_record_keys};

const DEMAND: &str = "/api/v1/statistics/demand";
const OUTCOMES: &str = "/api/v1/statistics/outcomes";
const REFERRALS: &str = "/api/v1/referrals";

// --- fixtures ---

/// An active client of `district` in the target group `youth`, without an
/// external id (so any number of them can be created).
fn resident(district: &str) -> Value {
    client_body_with(json!({"external_id": null, "district": district, "target_groups": ["youth"]}))
}

/// Creates `n` clients from `body` as a caseworker and returns their ids.
async fn create_clients(app: &TestApp, n: usize, body: &Value) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(id_of(&app.create_client(&caseworker(), body).await));
    }
    ids
}

/// A measure for `youth` of `kind` in `district`, with `capacity` seats and no age limit.
fn course(provider: &str, kind: &str, district: &str, capacity: i64, occupation: &str) -> Value {
    with(
        measure_body(provider),
        json!({
            "title": format!("{kind} in {district}"),
            "kind": kind,
            "district": district,
            "capacity": capacity,
            "target_groups": ["youth"],
            "occupation_codes": [occupation],
            "min_age": null
        }),
    )
}

/// Refers `client` to `measure` as a caseworker; the referral is `requested`.
async fn refer(app: &TestApp, client: &str, measure: &Value) -> Value {
    app.create(REFERRALS, &caseworker(), &json!({"client_id": client, "measure_id": id_of(measure)})).await
}

/// Applies `steps` (transition bodies) to `referral` in order as a caseworker.
async fn walk(app: &TestApp, referral: &Value, steps: &[Value]) {
    let path = format!("{REFERRALS}/{}/transitions", id_of(referral));
    for step in steps {
        let res = app.post(&path, &caseworker(), step).await;
        let status = res.status();
        assert_eq!(status, 200, "POST {path} {step}: {}", res.text().await.unwrap());
    }
}

fn accept() -> Value {
    json!({"action": "accept"})
}
fn start() -> Value {
    json!({"action": "start"})
}
fn reject() -> Value {
    json!({"action": "reject", "reason_code": "no_capacity", "rejected_by": "provider"})
}
fn fail() -> Value {
    json!({"action": "fail", "reason_code": "client_unreachable"})
}
fn cancel() -> Value {
    json!({"action": "cancel", "reason_code": "no_longer_needed"})
}
fn complete(outcome: &str) -> Value {
    json!({"action": "complete", "outcome": outcome})
}

/// GETs `path` as an analyst, asserts `200` and returns the report. Sets
/// every record key to 0 first, so every cell key is 0 and the cell-key
/// noise is 0: these tests pin the exact counting rules
/// (`statistics_privacy.rs` tests the noise).
async fn report(app: &TestApp, path: &str) -> Value {
    set_all_record_keys(app, 0).await;
    let res = app.get(path, &Caller::new("analyst")).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The one row whose dimensions have exactly the values `dims`.
fn row<'a>(report: &'a Value, dims: &[(&str, Option<&str>)]) -> &'a Value {
    let matching: Vec<&Value> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| dims.iter().all(|(name, value)| r[*name].as_str() == *value))
        .collect();
    assert_eq!(matching.len(), 1, "exactly one row {dims:?} in {report}");
    matching[0]
}

/// The six demand counts of a row (or the totals), in SPEC order.
fn counts(row: &Value) -> [Value; 6] {
    ["clients", "referrals_requested", "referrals_active", "seats_offered", "seats_free", "unserved_clients"]
        .map(|name| row[name].clone())
}

/// The known demand data set:
/// - district 21: 16 active youth clients (KldB 62102); 5 of them referred
///   (`requested`), 5 in progress, 1 rejected, 5 never referred; and 1
///   inactive client who must not count. (Every pair of related columns —
///   requested/active, free/offered, unserved/clients — differs by 0 or by at
///   least 5, so secondary suppression hides nothing here.)
/// - district 22: 2 active youth clients, never referred;
/// - measures: application training in 21 (12 seats, KldB 62), vocational
///   training in 22 (6 seats, KldB 71), and a closed language course in 21
///   (10 seats) whose seats must not count.
async fn known_demand(app: &TestApp) {
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let m21 = app.create_measure(&course(&provider, "application_training", "21", 12, "62102")).await;
    app.create_measure(&course(&provider, "vocational_training", "22", 6, "71402")).await;
    app.create_measure(&with(course(&provider, "language_course", "21", 10, "62102"), json!({"status": "closed"})))
        .await;
    let d21 = create_clients(app, 16, &resident("21")).await;
    create_clients(app, 2, &resident("22")).await;
    create_clients(app, 1, &with(resident("21"), json!({"status": "inactive"}))).await;
    for client in &d21[..5] {
        refer(app, client, &m21).await;
    }
    for client in &d21[5..10] {
        walk(app, &refer(app, client, &m21).await, &[accept(), start()]).await;
    }
    walk(app, &refer(app, &d21[10], &m21).await, &[reject()]).await;
}

/// The known outcome data set. Further training (`sgb3_81`, provider A):
/// 12 referrals — 2 rejected, 1 unanswered, 1 failed before its start, and 8
/// started, of which 6 completed (4 into work, an apprenticeship or
/// self-employment), 1 failed and 1 is still running. Language course (`esf`,
/// provider B): 2 referrals, too few to publish. Returns the providers' ids.
async fn known_outcomes(app: &TestApp) -> (String, String) {
    let a = id_of(&app.create_provider("Bildungswerk Ost").await);
    let b = id_of(&app.create_provider("Sprachschule Reudnitz").await);
    let training = app
        .create_measure(&with(course(&a, "further_training", "21", 20, "62102"), json!({"funding": "sgb3_81"})))
        .await;
    let language =
        app.create_measure(&with(course(&b, "language_course", "21", 20, "62102"), json!({"funding": "esf"}))).await;
    let clients = create_clients(app, 12, &resident("21")).await;
    let plans: [&[Value]; 12] = [
        &[reject()],
        &[reject()],
        &[],
        &[accept(), fail()],
        &[accept(), start(), complete("employed")],
        &[accept(), start(), complete("apprenticeship")],
        &[accept(), start(), complete("self_employed")],
        &[accept(), start(), complete("employed")],
        &[accept(), start(), complete("further_training")],
        &[accept(), start(), complete("none")],
        &[accept(), start(), fail()],
        &[accept(), start()],
    ];
    for (client, steps) in clients.iter().zip(plans) {
        walk(app, &refer(app, client, &training).await, steps).await;
    }
    for client in &clients[..2] {
        refer(app, client, &language).await;
    }
    (a, b)
}

/// A second instance on `app`'s database whose `OSTWERK_STATS_MIN_CELL` is
/// `min_cell`; returns its base address. The shared harness has no option
/// for it, and several instances on one database are a supported set-up.
async fn instance_with_min_cell(app: &TestApp, min_cell: u32) -> String {
    let mut settings = app.settings.clone();
    settings.stats_min_cell = min_cell;
    let instance = Application::build(settings).await.expect("second instance builds");
    let address = format!("http://127.0.0.1:{}", instance.port());
    tokio::spawn(instance.run_until_stopped());
    address
}

fn rate(row: &Value, name: &str) -> Option<f64> {
    row[name].as_f64()
}

// --- who may read ---

#[tokio::test]
async fn statistics_are_for_office_staff_job_centres_providers_and_analysts_but_not_employers() {
    // Arrange
    let app = spawn_app().await;
    let allowed = |path: &str| {
        let mut row = Endpoint::new(Method::GET, path, None);
        for role in ["admin", "caseworker", "jobcenter", "provider", "analyst"] {
            row = row.expect(role, Some(Caller::new(role)), 200);
        }
        row.expect("employer", Some(Caller::new("employer")), 403)
    };

    // Act + Assert
    assert_matrix(
        &app,
        &[
            allowed(&format!("{DEMAND}?group_by=district,target_group,occupation_field,measure_kind")),
            allowed(&format!("{OUTCOMES}?group_by=provider")),
        ],
    )
    .await;
}

// --- demand: counts ---

#[tokio::test]
async fn demand_by_district_counts_active_clients_referrals_seats_and_unserved_clients() {
    // Arrange
    let app = spawn_app().await;
    known_demand(&app).await;

    // Act
    let report = report(&app, &format!("{DEMAND}?group_by=district")).await;

    // Assert
    assert_eq!(report["group_by"], json!(["district"]));
    assert_eq!(report["min_cell"], 5);
    let d21 = row(&report, &[("district", Some("21"))]);
    assert_eq!(counts(d21), [json!(16), json!(5), json!(10), json!(12), json!(7), json!(6)], "row: {d21}");
    assert_eq!(d21["suppressed"], false);
    assert_eq!(report["rows"].as_array().unwrap().len(), 2, "districts 21 and 22 only: {report}");
}

#[tokio::test]
async fn demand_by_measure_kind_files_clients_under_the_kind_of_their_active_referral() {
    // Arrange
    let app = spawn_app().await;
    known_demand(&app).await;

    // Act
    let report = report(&app, &format!("{DEMAND}?group_by=district,measure_kind")).await;

    // Assert: 5 requested + 5 in progress are served by application training;
    // the rejected one and the 5 never referred have no kind and are unserved.
    let served = row(&report, &[("district", Some("21")), ("measure_kind", Some("application_training"))]);
    assert_eq!(counts(served), [json!(10), json!(5), json!(10), json!(12), json!(7), json!(0)], "row: {served}");
    let unserved = row(&report, &[("district", Some("21")), ("measure_kind", None)]);
    assert_eq!(counts(unserved), [json!(6), json!(0), json!(0), json!(0), json!(0), json!(6)], "row: {unserved}");
    let offered = row(&report, &[("district", Some("22")), ("measure_kind", Some("vocational_training"))]);
    assert_eq!(counts(offered), [json!(0), json!(0), json!(0), json!(6), json!(6), json!(0)], "row: {offered}");
    let closed = report["rows"].as_array().unwrap().iter().filter(|r| r["measure_kind"] == "language_course").count();
    assert_eq!(closed, 0, "a closed measure offers no seats: {report}");
}

#[tokio::test]
async fn demand_by_occupation_field_uses_the_first_two_kldb_digits() {
    // Arrange
    let app = spawn_app().await;
    known_demand(&app).await;

    // Act
    let report = report(&app, &format!("{DEMAND}?group_by=occupation_field")).await;

    // Assert: all 18 active clients hold 62102; the seats are the measures' own fields.
    let f62 = row(&report, &[("occupation_field", Some("62"))]);
    assert_eq!(counts(f62), [json!(18), json!(5), json!(10), json!(12), json!(7), json!(8)], "row: {f62}");
    let f71 = row(&report, &[("occupation_field", Some("71"))]);
    assert_eq!(counts(f71), [json!(0), json!(0), json!(0), json!(6), json!(6), json!(0)], "row: {f71}");
    assert_eq!(report["rows"].as_array().unwrap().len(), 2, "{report}");
}

#[tokio::test]
async fn demand_totals_are_published_when_no_cell_is_suppressed() {
    // Arrange
    let app = spawn_app().await;
    known_demand(&app).await;

    // Act
    let report = report(&app, &format!("{DEMAND}?group_by=occupation_field")).await;

    // Assert
    assert_eq!(counts(&report["totals"]), [json!(18), json!(5), json!(10), json!(18), json!(13), json!(8)]);
}

#[tokio::test]
async fn demand_district_filter_keeps_only_that_districts_clients_referrals_and_seats() {
    // Arrange
    let app = spawn_app().await;
    known_demand(&app).await;

    // Act
    let report = report(&app, &format!("{DEMAND}?group_by=target_group&district=21")).await;

    // Assert: district 22's clients and seats are gone.
    assert_eq!(report["rows"].as_array().unwrap().len(), 1, "{report}");
    let youth = row(&report, &[("target_group", Some("youth"))]);
    assert_eq!(counts(youth), [json!(16), json!(5), json!(10), json!(12), json!(7), json!(6)], "row: {youth}");
    assert_eq!(counts(&report["totals"]), [json!(16), json!(5), json!(10), json!(12), json!(7), json!(6)]);
}

#[tokio::test]
async fn demand_from_and_to_count_only_referrals_created_in_that_window() {
    // Arrange: two batches of 5 referrals; the window's edge is the second
    // batch's first creation time (from is inclusive, to exclusive).
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let measure = app.create_measure(&course(&provider, "application_training", "21", 12, "62102")).await;
    let clients = create_clients(&app, 10, &resident("21")).await;
    for client in &clients[..5] {
        refer(&app, client, &measure).await;
    }
    let edge = refer(&app, &clients[5], &measure).await["created_at"].as_str().unwrap().to_owned();
    for client in &clients[6..] {
        refer(&app, client, &measure).await;
    }
    let requested = |report: &Value| report["totals"]["referrals_requested"].clone();

    // Act
    let all = report(&app, DEMAND).await;
    let since = report(&app, &format!("{DEMAND}?from={edge}")).await;
    let before = report(&app, &format!("{DEMAND}?to={edge}")).await;
    let long_ago = report(&app, &format!("{DEMAND}?from=2020-01-01&to=2020-02-01")).await;

    // Assert: referrals follow the window; clients, seats and unserved
    // clients (whoever has no active referral now) do not.
    assert_eq!(requested(&all), 10);
    assert_eq!(requested(&since), 5);
    assert_eq!(requested(&before), 5);
    assert_eq!(requested(&long_ago), 0);
    assert_eq!(counts(&long_ago["totals"]), [json!(10), json!(0), json!(0), json!(12), json!(12), json!(0)]);
}

#[tokio::test]
async fn demand_with_an_unknown_group_by_dimension_is_a_400() {
    let app = spawn_app().await;

    let res = app.get(&format!("{DEMAND}?group_by=district,age"), &Caller::new("analyst")).await;

    let problem = assert_problem(res, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["group_by"]);
}

#[tokio::test]
async fn demand_with_a_malformed_from_is_a_400() {
    let app = spawn_app().await;

    let res = app.get(&format!("{DEMAND}?from=25.11.2026"), &Caller::new("analyst")).await;

    let problem = assert_problem(res, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["from"]);
}

#[tokio::test]
async fn outcomes_with_an_unknown_group_by_or_a_malformed_to_is_a_400() {
    let app = spawn_app().await;
    let analyst = Caller::new("analyst");

    let bad_group = app.get(&format!("{OUTCOMES}?group_by=district"), &analyst).await;
    let bad_to = app.get(&format!("{OUTCOMES}?to=yesterday"), &analyst).await;

    assert_eq!(error_fields(&assert_problem(bad_group, 400, "bad-request").await), ["group_by"]);
    assert_eq!(error_fields(&assert_problem(bad_to, 400, "bad-request").await), ["to"]);
}

// --- demand: suppression ---

#[tokio::test]
async fn demand_counts_from_one_to_four_are_null_and_flag_the_row_but_zero_is_shown() {
    // Arrange
    let app = spawn_app().await;
    known_demand(&app).await;

    // Act
    let report = report(&app, &format!("{DEMAND}?group_by=district")).await;

    // Assert: district 22 has 2 clients (hidden), no referrals (0 is safe) and 6 seats.
    let d22 = row(&report, &[("district", Some("22"))]);
    assert_eq!(counts(d22), [Value::Null, json!(0), json!(0), json!(6), json!(6), Value::Null], "row: {d22}");
    assert_eq!(d22["suppressed"], true);
}

#[tokio::test]
async fn demand_totals_of_people_are_cells_of_their_own_and_not_hidden_by_a_suppressed_row() {
    // Arrange
    let app = spawn_app().await;
    known_demand(&app).await;

    // Act
    let report = report(&app, &format!("{DEMAND}?group_by=district")).await;

    // Assert: issue 12 changed this. Totals of people are perturbed as cells
    // of their own, so 18 minus district 21's 16 no longer equals district
    // 22's hidden count in general (here the record keys are 0, so there is
    // no noise; statistics_privacy.rs shows the attack failing with noise).
    assert_eq!(counts(&report["totals"]), [json!(18), json!(5), json!(10), json!(18), json!(13), json!(8)]);
}

#[tokio::test]
async fn a_lower_minimum_cell_size_publishes_smaller_counts() {
    // Arrange: 3 clients in district 21, 1 in district 22, served by a second
    // instance configured with OSTWERK_STATS_MIN_CELL=2.
    let app = spawn_app().await;
    create_clients(&app, 3, &resident("21")).await;
    create_clients(&app, 1, &resident("22")).await;
    let instance = instance_with_min_cell(&app, 2).await;
    set_all_record_keys(&app, 0).await;

    // Act
    let res = app
        .client
        .get(format!("{instance}{DEMAND}?group_by=district"))
        .bearer_auth(token_for(&Caller::new("analyst")))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["min_cell"], 2);
    let d21 = row(&report, &[("district", Some("21"))]);
    assert_eq!((d21["clients"].clone(), d21["suppressed"].clone()), (json!(3), json!(false)), "row: {d21}");
    let d22 = row(&report, &[("district", Some("22"))]);
    assert_eq!((d22["clients"].clone(), d22["suppressed"].clone()), (Value::Null, json!(true)), "row: {d22}");
    // A perturbed total is a cell of its own (issue 12), shown when ≥ 2.
    assert_eq!(report["totals"]["clients"], 4);
}

// --- no personal data, no audit trail ---

/// Every statistics answer there is: demand by each dimension and all of
/// them, with and without filters, and outcomes by each grouping.
fn every_statistics_path() -> Vec<String> {
    let mut paths: Vec<String> = ["", "district", "target_group", "occupation_field", "measure_kind"]
        .iter()
        // No `group_by` at all for the default (an empty value is a `400`).
        .map(|dims| if dims.is_empty() { DEMAND.to_owned() } else { format!("{DEMAND}?group_by={dims}") })
        .collect();
    paths.push(format!("{DEMAND}?group_by=district,target_group,occupation_field,measure_kind&district=21"));
    paths.push(format!("{DEMAND}?group_by=district,target_group&from=2020-01-01&to=2100-01-01"));
    for group in ["measure_kind", "provider", "funding"] {
        paths.push(format!("{OUTCOMES}?group_by={group}"));
    }
    paths
}

#[tokio::test]
async fn statistics_answers_contain_no_personal_data() {
    // Arrange: 6 clients with recognisable personal data, all referred, some further.
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let measure = app.create_measure(&course(&provider, "application_training", "21", 12, "62102")).await;
    let mut secrets = Vec::new();
    for i in 0..6 {
        let body = with(
            resident("21"),
            json!({
                "external_id": format!("JC-GEHEIM-{i}"),
                "first_name": format!("Xaverine{i}"),
                "last_name": format!("Quastenflosser{i}"),
                "email": format!("xaverine{i}.quastenflosser@example.org"),
                "phone": format!("+49 341 987 650{i}"),
                "date_of_birth": format!("1990-0{}-1{i}", i + 1),
                "address": {"street": format!("Geheimweg {i}"), "postal_code": "04315", "city": "Leipzig"}
            }),
        );
        let client = app.create_client(&caseworker(), &body).await;
        let referral = refer(&app, &id_of(&client), &measure).await;
        if i < 3 {
            walk(&app, &referral, &[accept(), start(), complete("employed")]).await;
        }
        secrets.extend([
            id_of(&client),
            format!("JC-GEHEIM-{i}"),
            format!("Xaverine{i}"),
            format!("Quastenflosser{i}"),
            "Geheimweg".to_owned(),
            format!("987 650{i}"),
            format!("1990-0{}-1{i}", i + 1),
        ]);
    }

    // Act
    let mut answers = Vec::new();
    for path in every_statistics_path() {
        answers.push((path.clone(), report(&app, &path).await.to_string()));
    }

    // Assert
    for (path, answer) in &answers {
        let leaked: Vec<&String> = secrets.iter().filter(|s| answer.contains(s.as_str())).collect();
        assert!(leaked.is_empty(), "GET {path} shows {leaked:?}: {answer}");
    }
}

#[tokio::test]
async fn reading_statistics_writes_no_audit_events() {
    // Arrange
    let app = spawn_app().await;
    known_demand(&app).await;
    let before = app.audit_events("").await;

    // Act
    for path in every_statistics_path() {
        report(&app, &path).await;
    }

    // Assert
    let after = app.audit_events("").await;
    assert_eq!(after.len(), before.len(), "new events: {:?}", &after[..after.len() - before.len()]);
}

// --- outcomes ---

#[tokio::test]
async fn outcomes_by_measure_kind_give_acceptance_completion_dropout_and_employment_rates() {
    // Arrange
    let app = spawn_app().await;
    known_outcomes(&app).await;

    // Act
    let report = report(&app, &format!("{OUTCOMES}?group_by=measure_kind")).await;

    // Assert: accepted 9 of 11 answered; of 8 started, 6 completed and 1
    // dropped out; 4 of the 6 completions led into work or training.
    assert_eq!(report["group_by"], "measure_kind");
    let row = report["rows"].as_array().unwrap().iter().find(|r| r["group"] == "further_training").unwrap();
    assert_eq!(row["referrals"], 12);
    assert_eq!(rate(row, "acceptance_rate"), Some(0.8182));
    assert_eq!(rate(row, "completion_rate"), Some(0.75));
    assert_eq!(rate(row, "dropout_rate"), Some(0.125));
    assert_eq!(rate(row, "employment_share"), Some(0.6667));
    assert_eq!(row["suppressed"], false);
}

#[tokio::test]
async fn outcomes_of_a_group_with_fewer_than_five_referrals_are_suppressed() {
    // Arrange
    let app = spawn_app().await;
    known_outcomes(&app).await;

    // Act
    let report = report(&app, &format!("{OUTCOMES}?group_by=measure_kind")).await;

    // Assert
    let row = report["rows"].as_array().unwrap().iter().find(|r| r["group"] == "language_course").unwrap();
    for name in ["referrals", "acceptance_rate", "completion_rate", "dropout_rate", "employment_share"] {
        assert_eq!(row[name], Value::Null, "{name} in {row}");
    }
    assert_eq!(row["suppressed"], true);
}

#[tokio::test]
async fn outcomes_group_by_provider_and_by_funding() {
    // Arrange
    let app = spawn_app().await;
    let (a, b) = known_outcomes(&app).await;

    // Act
    let by_provider = report(&app, &format!("{OUTCOMES}?group_by=provider")).await;
    let by_funding = report(&app, &format!("{OUTCOMES}?group_by=funding")).await;

    // Assert
    let groups = |report: &Value| -> Vec<(String, Value)> {
        let mut g: Vec<(String, Value)> = report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["group"].as_str().unwrap().to_owned(), r["referrals"].clone()))
            .collect();
        g.sort_by(|x, y| x.0.cmp(&y.0));
        g
    };
    let mut providers = vec![(a, json!(12)), (b, Value::Null)];
    providers.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(groups(&by_provider), providers);
    assert_eq!(groups(&by_funding), [("esf".to_owned(), Value::Null), ("sgb3_81".to_owned(), json!(12))]);
}

#[tokio::test]
async fn rates_over_fewer_than_five_are_suppressed_even_when_the_group_is_large_enough() {
    // Arrange: 6 referrals, only 2 of them answered (accepted) and started.
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let measure = app.create_measure(&course(&provider, "activation", "21", 12, "62102")).await;
    let clients = create_clients(&app, 6, &resident("21")).await;
    for (i, client) in clients.iter().enumerate() {
        let referral = refer(&app, client, &measure).await;
        if i < 2 {
            walk(&app, &referral, &[accept(), start()]).await;
        }
    }

    // Act
    let report = report(&app, &format!("{OUTCOMES}?group_by=measure_kind")).await;

    // Assert
    let row = report["rows"].as_array().unwrap().iter().find(|r| r["group"] == "activation").unwrap();
    assert_eq!(row["referrals"], 6);
    assert_eq!(row["acceptance_rate"], Value::Null);
    assert_eq!(row["completion_rate"], Value::Null);
    assert_eq!(row["dropout_rate"], Value::Null);
    assert_eq!(row["suppressed"], true);
}

#[tokio::test]
async fn cancelling_a_started_referral_counts_as_a_dropout() {
    // Arrange: 5 started — 3 completed, 1 failed, 1 cancelled by the referring side while in progress.
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let measure = app.create_measure(&course(&provider, "activation", "21", 12, "62102")).await;
    let clients = create_clients(&app, 5, &resident("21")).await;
    let ends = [complete("employed"), complete("employed"), complete("none"), fail(), cancel()];
    for (client, end) in clients.iter().zip(ends) {
        walk(&app, &refer(&app, client, &measure).await, &[accept(), start(), end]).await;
    }

    // Act
    let report = report(&app, &format!("{OUTCOMES}?group_by=measure_kind")).await;

    // Assert
    let row = report["rows"].as_array().unwrap().iter().find(|r| r["group"] == "activation").unwrap();
    assert_eq!(rate(row, "completion_rate"), Some(0.6));
    assert_eq!(rate(row, "dropout_rate"), Some(0.4), "row: {row}");
}

#[tokio::test]
async fn a_small_difference_between_exact_seat_columns_is_suppressed_too() {
    // Arrange: 6 requested referrals and 1 in progress; 12 seats, 1 taken.
    // Free from offered seats (both exact) would reveal the one person in
    // the measure. Since issue 12, requested and active referrals are
    // perturbed cells of their own, so their difference is not a count and
    // needs no secondary suppression any more.
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let measure = app.create_measure(&course(&provider, "application_training", "21", 12, "62102")).await;
    let clients = create_clients(&app, 7, &resident("21")).await;
    for client in &clients[..6] {
        refer(&app, client, &measure).await;
    }
    walk(&app, &refer(&app, &clients[6], &measure).await, &[accept(), start()]).await;

    // Act
    let report = report(&app, &format!("{DEMAND}?group_by=district")).await;

    // Assert: free seats (11 of 12) are hidden, in the row and the total.
    let d21 = row(&report, &[("district", Some("21"))]);
    assert_eq!(d21["referrals_active"], 7);
    assert_eq!(d21["referrals_requested"], 6, "{d21}");
    assert!(d21["seats_free"].is_null(), "{d21}");
    assert_eq!(d21["suppressed"], true);
    assert!(report["totals"]["seats_free"].is_null(), "{report}");
}
