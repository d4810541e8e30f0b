//! Matching (SPEC §3 "Matching", §5): open measures with free seats and open
//! vacancies a client qualifies for, ranked with a score and its reasons;
//! for office staff and a job centre's own clients, audited as `client.matches`.
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// The default client of `client_body()`: district 21, `unemployed` and
/// `single_parent`, vocational education, KldB 62102, speaks de and ar,
/// available from 2026-12-01, born 1998 — without an external id, so any
/// number can be created.
fn a_client() -> Value {
    client_body_with(json!({"external_id": null}))
}

fn matches_path(client: &Value, query: &str) -> String {
    format!("/api/v1/clients/{}/matches?{query}", id_of(client))
}

/// GETs the matches as a caseworker, asserts `200` and returns the items.
async fn matches(app: &TestApp, client: &Value, query: &str) -> Vec<Value> {
    let path = matches_path(client, query);
    let res = app.get(&path, &caseworker()).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "GET {path}: {text}");
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(page["next_cursor"], Value::Null);
    page["items"].as_array().unwrap().clone()
}

fn titles(items: &[Value]) -> Vec<&str> {
    items.iter().map(|m| m["title"].as_str().unwrap()).collect()
}

fn sorted(mut titles: Vec<&str>) -> Vec<&str> {
    titles.sort_unstable();
    titles
}

/// `measure_body()` (for `unemployed`, KldB 71402, district 21, 12 seats,
/// from 18, starting 2027-01-11, open) with `changes`.
fn measure(provider: &str, title: &str, changes: Value) -> Value {
    with(with(measure_body(provider), json!({"title": title})), changes)
}

/// `vacancy_body()` (apprenticeship, lower secondary, German, district 21,
/// starting 2027-08-01, open) with `changes`.
fn vacancy(title: &str, occupation_code: &str, changes: Value) -> Value {
    with(vacancy_body(title, occupation_code), changes)
}

// --- who may ask ---

#[tokio::test]
async fn matches_are_for_office_staff_and_the_job_centre_of_the_client() {
    // Arrange: the client was pushed by job centre jc-leipzig.
    let app = spawn_app().await;
    let own = Caller::new("jobcenter");
    let client = app.create_client(&own, &a_client()).await;

    // Act + Assert
    assert_matrix(
        &app,
        &[Endpoint::new(Method::GET, matches_path(&client, ""), None)
            .expect("caseworker", Some(caseworker()), 200)
            .expect("admin", Some(admin()), 200)
            .expect("its job centre", Some(own), 200)
            .expect("another job centre", Some(Caller::new("jobcenter").with_org("jc-halle")), 404)
            .expect("provider", Some(Caller::new("provider")), 403)
            .expect("employer", Some(Caller::new("employer")), 403)
            .expect("analyst", Some(Caller::new("analyst")), 403)],
    )
    .await;
}

#[tokio::test]
async fn matches_for_an_unknown_client_are_a_404() {
    let app = spawn_app().await;

    let path = format!("/api/v1/clients/{}/matches", uuid::Uuid::now_v7());
    let res = app.get(&path, &caseworker()).await;

    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn matches_for_an_erased_client_are_gone() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &a_client()).await;
    let res = app.delete(&format!("/api/v1/clients/{}", id_of(&client)), &admin()).await;
    assert_eq!(res.status(), 204);

    // Act
    let res = app.get(&matches_path(&client, ""), &caseworker()).await;

    // Assert
    assert_problem(res, 410, "gone").await;
}

// --- what is matched ---

#[tokio::test]
async fn only_open_measures_with_free_seats_the_client_is_eligible_for_are_matched() {
    // Arrange
    let app = spawn_app().await;
    let p = id_of(&app.create_provider("Bildungswerk Ost").await);
    let client = app.create_client(&caseworker(), &a_client()).await;
    app.create_measure(&measure(&p, "Offen", json!({}))).await;
    app.create_measure(&measure(&p, "Für alle", json!({"target_groups": []}))).await;
    app.create_measure(&measure(&p, "Geschlossen", json!({"status": "closed"}))).await;
    app.create_measure(&measure(&p, "Ohne Plätze", json!({"capacity": 0}))).await;
    app.create_measure(&measure(&p, "Nur für Gründer", json!({"target_groups": ["founder"]}))).await;
    app.create_measure(&measure(&p, "Bis 25", json!({"min_age": null, "max_age": 25}))).await;
    let booked = app.create_measure(&measure(&p, "Ausgebucht", json!({"capacity": 1}))).await;
    let other = app.create_client(&caseworker(), &a_client()).await;
    let body = json!({"client_id": id_of(&other), "measure_id": id_of(&booked)});
    let referral = app.create("/api/v1/referrals", &caseworker(), &body).await;
    let path = format!("/api/v1/referrals/{}/transitions", id_of(&referral));
    assert_eq!(app.post(&path, &caseworker(), &json!({"action": "accept"})).await.status(), 200);

    // Act
    let found = matches(&app, &client, "kind=measure").await;

    // Assert
    assert_eq!(sorted(titles(&found)), ["Für alle", "Offen"]);
    assert!(found.iter().all(|m| m["kind"] == "measure" && m["measure"]["id"] == m["id"]), "{found:?}");
}

#[tokio::test]
async fn only_open_vacancies_whose_education_and_language_requirements_the_client_meets_are_matched() {
    // Arrange
    let app = spawn_app().await;
    let employer = id_of(&app.create_employer("Bäckerei Sommer").await);
    let client = app.create_client(&caseworker(), &a_client()).await;
    app.create_vacancy(&employer, &vacancy("Passt", "62102", json!({}))).await;
    app.create_vacancy(
        &employer,
        &vacancy("Ohne Anforderungen", "62102", json!({"min_education_level": null, "languages": []})),
    )
    .await;
    app.create_vacancy(&employer, &vacancy("Nur mit Studium", "62102", json!({"min_education_level": "academic"})))
        .await;
    app.create_vacancy(&employer, &vacancy("Mit Polnisch", "62102", json!({"languages": ["de", "pl"]}))).await;
    app.create_vacancy(&employer, &vacancy("Geschlossen", "62102", json!({"status": "closed"}))).await;
    app.create_vacancy(&employer, &vacancy("Besetzt", "62102", json!({"status": "filled"}))).await;

    // Act
    let found = matches(&app, &client, "kind=vacancy").await;

    // Assert
    assert_eq!(sorted(titles(&found)), ["Ohne Anforderungen", "Passt"]);
    assert!(found.iter().all(|m| m["kind"] == "vacancy" && m["vacancy"]["id"] == m["id"]), "{found:?}");
}

// --- ranking ---

#[tokio::test]
async fn exact_occupation_in_the_clients_district_ranks_above_the_same_occupation_field_elsewhere() {
    // Arrange: created worse first, so creation order cannot explain the ranking.
    let app = spawn_app().await;
    let p = id_of(&app.create_provider("Bildungswerk Ost").await);
    let client = app.create_client(&caseworker(), &a_client()).await;
    app.create_measure(&measure(&p, "Gleiches Feld", json!({"occupation_codes": ["62302"], "district": "22"}))).await;
    app.create_measure(&measure(&p, "Genau passend", json!({"occupation_codes": ["62102"], "district": "21"}))).await;

    // Act
    let found = matches(&app, &client, "kind=measure").await;

    // Assert: both fit the target group and start 41 days after the client is available.
    assert_eq!(titles(&found), ["Genau passend", "Gleiches Feld"]);
    assert_eq!(found[0]["reasons"], json!(["same_occupation", "same_district", "target_group_fit", "earliest_start"]));
    assert_eq!(found[1]["reasons"], json!(["same_occupation_field", "target_group_fit", "earliest_start"]));
    assert!(found[0]["score"].as_u64() > found[1]["score"].as_u64(), "{found:?}");
}

#[tokio::test]
async fn measures_and_vacancies_are_ranked_together_by_descending_score() {
    // Arrange
    let app = spawn_app().await;
    let p = id_of(&app.create_provider("Bildungswerk Ost").await);
    let employer = id_of(&app.create_employer("Bäckerei Sommer").await);
    let client = app.create_client(&caseworker(), &a_client()).await;
    app.create_measure(&measure(&p, "Fremdes Feld", json!({"district": "22"}))).await;
    app.create_measure(&measure(&p, "Gleiche Gruppe", json!({"occupation_codes": ["62112"], "district": "22"}))).await;
    app.create_vacancy(&employer, &vacancy("Stelle im Ortsteil", "62102", json!({}))).await;
    app.create_measure(&measure(&p, "Gleiches Feld", json!({"occupation_codes": ["62302"], "district": "22"}))).await;
    app.create_measure(&measure(&p, "Genau passend", json!({"occupation_codes": ["62102"]}))).await;

    // Act
    let found = matches(&app, &client, "").await;

    // Assert
    let scores: Vec<u64> = found.iter().map(|m| m["score"].as_u64().unwrap()).collect();
    let mut descending = scores.clone();
    descending.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(scores, descending, "{found:?}");
    assert_eq!(
        titles(&found),
        ["Genau passend", "Stelle im Ortsteil", "Gleiche Gruppe", "Gleiches Feld", "Fremdes Feld"]
    );
    assert_eq!(found[1]["reasons"], json!(["same_occupation", "same_district", "language_fit"]));
    assert_eq!(found[2]["reasons"], json!(["same_occupation_group", "target_group_fit", "earliest_start"]));
    assert_eq!(found[4]["reasons"], json!(["target_group_fit", "earliest_start"]));
}

#[tokio::test]
async fn limit_keeps_only_the_best_matches() {
    // Arrange
    let app = spawn_app().await;
    let p = id_of(&app.create_provider("Bildungswerk Ost").await);
    let client = app.create_client(&caseworker(), &a_client()).await;
    app.create_measure(&measure(&p, "Fremdes Feld", json!({"district": "22"}))).await;
    app.create_measure(&measure(&p, "Genau passend", json!({"occupation_codes": ["62102"]}))).await;
    app.create_measure(&measure(&p, "Gleiches Feld", json!({"occupation_codes": ["62302"], "district": "22"}))).await;

    // Act
    let found = matches(&app, &client, "limit=2").await;

    // Assert
    assert_eq!(titles(&found), ["Genau passend", "Gleiches Feld"]);
}

#[tokio::test]
async fn kind_restricts_matches_to_measures_or_vacancies() {
    // Arrange
    let app = spawn_app().await;
    let p = id_of(&app.create_provider("Bildungswerk Ost").await);
    let employer = id_of(&app.create_employer("Bäckerei Sommer").await);
    let client = app.create_client(&caseworker(), &a_client()).await;
    app.create_measure(&measure(&p, "Maßnahme", json!({}))).await;
    app.create_vacancy(&employer, &vacancy("Stelle", "62102", json!({}))).await;

    // Act
    let both = matches(&app, &client, "").await;
    let measures = matches(&app, &client, "kind=measure").await;
    let vacancies = matches(&app, &client, "kind=vacancy").await;

    // Assert
    assert_eq!(sorted(titles(&both)), ["Maßnahme", "Stelle"]);
    assert_eq!(titles(&measures), ["Maßnahme"]);
    assert_eq!(titles(&vacancies), ["Stelle"]);
}

#[tokio::test]
async fn an_unknown_kind_or_a_limit_outside_1_to_50_is_a_400() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &a_client()).await;
    let cases = [("kind=job", "kind"), ("limit=0", "limit"), ("limit=51", "limit"), ("limit=zehn", "limit")];

    for (query, field) in cases {
        // Act
        let res = app.get(&matches_path(&client, query), &caseworker()).await;

        // Assert
        let problem = assert_problem(res, 400, "bad-request").await;
        assert_eq!(error_fields(&problem), [field], "{query}");
    }
}

// --- audit ---

#[tokio::test]
async fn reading_matches_writes_one_client_matches_audit_event() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &a_client()).await;
    let reader = caseworker();
    let query = format!("client_id={}", id_of(&client));
    let before = app.audit_events(&query).await.len();

    // Act
    let res = app.get(&matches_path(&client, "kind=measure"), &reader).await;

    // Assert
    assert_eq!(res.status(), 200);
    let events = app.audit_events(&query).await;
    assert_eq!(events.len(), before + 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["action"], "client.matches");
    assert_eq!(event["actor"], reader.sub.as_str());
    assert_eq!(event["client_id"], client["id"]);
}

#[tokio::test]
async fn a_measure_or_vacancy_the_client_is_already_referred_to_is_not_offered_again() {
    // Arrange
    let app = spawn_app().await;
    let p = id_of(&app.create_provider("Bildungswerk Ost").await);
    let client = app.create_client(&caseworker(), &a_client()).await;
    let referred = app.create_measure(&measure(&p, "Schon zugewiesen", json!({}))).await;
    app.create_measure(&measure(&p, "Noch frei", json!({}))).await;
    let body = json!({"client_id": id_of(&client), "measure_id": id_of(&referred)});
    app.create("/api/v1/referrals", &caseworker(), &body).await;

    // Act
    let found = matches(&app, &client, "kind=measure").await;

    // Assert
    assert_eq!(titles(&found), ["Noch frei"]);
}
