//! Measures (SPEC §3): providers publish and change only their own, every
//! role may browse; seats, filters, measure numbers and dates.
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const MEASURES: &str = "/api/v1/measures";

/// A principal acting for the provider record `provider`.
fn provider_principal(provider: &Value) -> Caller {
    Caller::new("provider").with_org(id_of(provider))
}

async fn items(app: &TestApp, path: &str, caller: &Caller) -> Vec<Value> {
    let res = app.get(path, caller).await;
    assert_eq!(res.status(), 200, "GET {path}");
    let page: Value = res.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

fn titles(items: &[Value]) -> Vec<String> {
    let mut titles: Vec<String> = items.iter().map(|v| v["title"].as_str().unwrap().to_owned()).collect();
    titles.sort();
    titles
}

// --- create ---

#[tokio::test]
async fn provider_publishes_a_measure_of_its_own_with_free_seats() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let body = measure_body(&id_of(&provider));

    // Act
    let res = app.post(MEASURES, &provider_principal(&provider), &body).await;

    // Assert
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    assert_eq!(location, format!("{MEASURES}/{}", id_of(&created)));
    assert_eq!(created["provider_id"], provider["id"]);
    assert_eq!(created["capacity"], 12);
    assert_eq!(created["seats_taken"], 0);
    assert_eq!(created["capacity_status"], "available");
    assert_eq!(created["waitlisted"], 0);
    assert_eq!(created["version"], 1);
    let read: Value = app.get(&location, &Caller::new("analyst")).await.json().await.unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn provider_publishing_for_another_provider_gets_403() {
    let app = spawn_app().await;
    let mine = app.create_provider("Bildungswerk Ost").await;
    let other = app.create_provider("Sprachschule Reudnitz").await;

    let res = app.post(MEASURES, &provider_principal(&mine), &measure_body(&id_of(&other))).await;

    assert_problem(res, 403, "forbidden").await;
    assert!(items(&app, MEASURES, &caseworker()).await.is_empty());
}

#[tokio::test]
async fn measure_without_capacity_is_full_and_not_listed_with_free_seats() {
    // Arrange
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let full = app.create_measure(&with(measure_body(&provider), json!({"title": "Ohne Plätze", "capacity": 0}))).await;
    app.create_measure(&with(measure_body(&provider), json!({"title": "Mit Plätzen"}))).await;

    // Act
    let free = items(&app, &format!("{MEASURES}?has_free_seats=true"), &caseworker()).await;

    // Assert
    assert_eq!(full["capacity_status"], "full");
    assert_eq!(full["seats_taken"], 0);
    assert_eq!(titles(&free), ["Mit Plätzen"]);
}

#[tokio::test]
async fn duplicate_measure_number_is_a_409_naming_the_existing_measure() {
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let body = with(measure_body(&provider), json!({"measure_number": "962/123/26"}));
    let first = app.create_measure(&body).await;

    let res = app.post(MEASURES, &caseworker(), &with(body, json!({"title": "Zweiter Durchgang"}))).await;

    let problem = assert_problem(res, 409, "conflict").await;
    assert_eq!(problem["existing_id"], first["id"]);
}

#[tokio::test]
async fn unknown_provider_id_is_a_422() {
    let app = spawn_app().await;

    let res = app.post(MEASURES, &caseworker(), &measure_body(&uuid::Uuid::now_v7().to_string())).await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["provider_id"]);
}

#[tokio::test]
async fn end_date_before_start_date_is_a_422() {
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let body = with(measure_body(&provider), json!({"start_date": "2027-03-01", "end_date": "2027-02-28"}));

    let res = app.post(MEASURES, &caseworker(), &body).await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["end_date"]);
}

#[tokio::test]
async fn invalid_measure_fields_are_listed_in_a_422() {
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let body = with(
        measure_body(&provider),
        json!({"kind": "magic", "funding": "lottery", "target_groups": ["elves"], "occupation_codes": ["714"],
            "district": "99", "capacity": -1, "min_age": 30, "max_age": 20, "status": "dreaming"}),
    );

    let res = app.post(MEASURES, &caseworker(), &body).await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(
        error_fields(&problem),
        ["capacity", "district", "funding", "kind", "max_age", "occupation_codes[0]", "status", "target_groups[0]"]
    );
}

#[tokio::test]
async fn replayed_idempotent_measure_create_returns_the_same_measure_and_creates_nothing() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let me = provider_principal(&provider);
    let body = measure_body(&id_of(&provider));
    let send =
        || app.request(Method::POST, MEASURES, Some(&me)).header("idempotency-key", "measure-1").json(&body).send();
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();

    // Act
    let replay = send().await.unwrap();

    // Assert
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(items(&app, MEASURES, &caseworker()).await.len(), 1);
}

// --- change ---

#[tokio::test]
async fn provider_changes_its_own_measure() {
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let measure = app.create_measure(&measure_body(&id_of(&provider))).await;

    let res = app
        .patch(&format!("{MEASURES}/{}", id_of(&measure)), &provider_principal(&provider), &json!({"capacity": 15}))
        .await;

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["capacity"], 15);
    assert_eq!(changed["title"], measure["title"]);
}

#[tokio::test]
async fn provider_patching_another_providers_measure_gets_404() {
    let app = spawn_app().await;
    let mine = app.create_provider("Bildungswerk Ost").await;
    let other = app.create_provider("Sprachschule Reudnitz").await;
    let theirs = app.create_measure(&measure_body(&id_of(&other))).await;
    let path = format!("{MEASURES}/{}", id_of(&theirs));

    let res = app.patch(&path, &provider_principal(&mine), &json!({"capacity": 0})).await;

    assert_problem(res, 404, "not-found").await;
    let unchanged: Value = app.get(&path, &caseworker()).await.json().await.unwrap();
    assert_eq!(unchanged["capacity"], 12);
}

#[tokio::test]
async fn provider_cannot_hand_its_measure_to_another_provider() {
    let app = spawn_app().await;
    let mine = app.create_provider("Bildungswerk Ost").await;
    let other = app.create_provider("Sprachschule Reudnitz").await;
    let measure = app.create_measure(&measure_body(&id_of(&mine))).await;

    let res = app
        .patch(
            &format!("{MEASURES}/{}", id_of(&measure)),
            &provider_principal(&mine),
            &json!({"provider_id": other["id"]}),
        )
        .await;

    assert_problem(res, 403, "forbidden").await;
}

#[tokio::test]
async fn measure_patch_with_a_stale_if_match_is_412() {
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    let measure = app.create_measure(&measure_body(&provider)).await;
    let path = format!("{MEASURES}/{}", id_of(&measure));
    let patch = |etag: &'static str, body: Value| {
        app.request(Method::PATCH, &path, Some(&caseworker()))
            .header("content-type", "application/merge-patch+json")
            .header("if-match", etag)
            .body(body.to_string())
            .send()
    };
    assert_eq!(patch("\"1\"", json!({"capacity": 10})).await.unwrap().status(), 200);

    let res = patch("\"1\"", json!({"capacity": 11})).await.unwrap();

    assert_problem(res, 412, "precondition-failed").await;
}

#[tokio::test]
async fn a_provider_with_measures_cannot_be_deleted() {
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    app.create_measure(&measure_body(&provider)).await;

    let res = app.delete(&format!("/api/v1/providers/{provider}"), &caseworker()).await;

    assert_problem(res, 409, "in-use").await;
    assert_eq!(app.get(&format!("/api/v1/providers/{provider}"), &caseworker()).await.status(), 200);
}

// --- browse ---

#[tokio::test]
async fn measure_filters_select_the_matching_measures() {
    // Arrange: three measures that differ in every filtered field.
    let app = spawn_app().await;
    let ost = id_of(&app.create_provider("Bildungswerk Ost").await);
    let sprache = id_of(&app.create_provider("Sprachschule Reudnitz").await);
    app.create_measure(&with(measure_body(&ost), json!({"title": "Bewerbungswerkstatt"}))).await;
    app.create_measure(&with(
        measure_body(&sprache),
        json!({"title": "Sprachkurs Deutsch B1", "kind": "language_course", "funding": "esf",
            "target_groups": ["migrant"], "occupation_codes": [], "district": "20", "status": "planned",
            "start_date": "2027-06-01", "end_date": "2027-09-30", "capacity": 0}),
    ))
    .await;
    app.create_measure(&with(
        measure_body(&ost),
        json!({"title": "Kochausbildung", "kind": "vocational_training", "funding": "sgb3_81",
            "target_groups": ["youth"], "occupation_codes": ["29302", "29301"], "district": "24", "status": "running",
            "start_date": "2026-09-01", "end_date": "2028-08-31", "capacity": 8}),
    ))
    .await;
    let cases = [
        ("kind=language_course".to_owned(), vec!["Sprachkurs Deutsch B1"]),
        ("target_group=youth".to_owned(), vec!["Kochausbildung"]),
        ("target_group=long_term_unemployed".to_owned(), vec!["Bewerbungswerkstatt"]),
        ("district=20".to_owned(), vec!["Sprachkurs Deutsch B1"]),
        (format!("provider_id={ost}"), vec!["Bewerbungswerkstatt", "Kochausbildung"]),
        ("status=running".to_owned(), vec!["Kochausbildung"]),
        ("funding=esf".to_owned(), vec!["Sprachkurs Deutsch B1"]),
        ("has_free_seats=true".to_owned(), vec!["Bewerbungswerkstatt", "Kochausbildung"]),
        ("has_free_seats=false".to_owned(), vec!["Sprachkurs Deutsch B1"]),
        ("starts_after=2027-01-01".to_owned(), vec!["Bewerbungswerkstatt", "Sprachkurs Deutsch B1"]),
        ("occupation_code=293".to_owned(), vec!["Kochausbildung"]),
        ("occupation_code=29301".to_owned(), vec!["Kochausbildung"]),
        ("occupation_code=714".to_owned(), vec!["Bewerbungswerkstatt"]),
        ("occupation_code=292".to_owned(), vec![]),
        ("q=sprachkurs".to_owned(), vec!["Sprachkurs Deutsch B1"]),
        (format!("provider_id={ost}&status=open"), vec!["Bewerbungswerkstatt"]),
    ];

    // Act + Assert
    let mut failures = Vec::new();
    for (query, expected) in cases {
        let found = titles(&items(&app, &format!("{MEASURES}?{query}"), &Caller::new("analyst")).await);
        if found != expected {
            failures.push(format!("?{query}: expected {expected:?}, got {found:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn bad_measure_filters_are_a_400() {
    let app = spawn_app().await;

    for query in ["kind=magic", "starts_after=next-week", "occupation_code=29x", "has_free_seats=perhaps"] {
        let res = app.get(&format!("{MEASURES}?{query}"), &caseworker()).await;
        assert_eq!(res.status(), 400, "?{query}");
    }
}

#[tokio::test]
async fn analyst_browses_measures() {
    let app = spawn_app().await;
    let provider = id_of(&app.create_provider("Bildungswerk Ost").await);
    app.create_measure(&measure_body(&provider)).await;

    let listed = items(&app, MEASURES, &Caller::new("analyst")).await;

    assert_eq!(titles(&listed), ["Bewerbungswerkstatt Leipzig-Ost"]);
}

// --- authorization matrix ---

#[tokio::test]
async fn measure_endpoints_answer_each_role_as_the_spec_says() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let own = provider_principal(&provider);
    let other = provider_principal(&app.create_provider("Sprachschule Reudnitz").await);
    let measure = app.create_measure(&measure_body(&id_of(&provider))).await;
    let doomed = app.create_measure(&with(measure_body(&id_of(&provider)), json!({"title": "Abgesagt"}))).await;
    let one = format!("{MEASURES}/{}", id_of(&measure));
    let doomed_path = format!("{MEASURES}/{}", id_of(&doomed));
    let who = |role| Some(Caller::new(role));
    let mut browse = Endpoint::new(Method::GET, MEASURES, None);
    let mut read = Endpoint::new(Method::GET, &one, None);
    for role in ["admin", "caseworker", "jobcenter", "provider", "employer", "analyst"] {
        browse = browse.expect(role, who(role), 200);
        read = read.expect(role, who(role), 200);
    }
    let rows = [
        browse,
        read,
        Endpoint::new(Method::POST, MEASURES, Some(measure_body(&id_of(&provider))))
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("employer", who("employer"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other provider", Some(other.clone()), 403)
            .expect("own provider", Some(own.clone()), 201)
            .expect("caseworker", who("caseworker"), 201)
            .expect("admin", who("admin"), 201),
        Endpoint::new(Method::PATCH, &one, Some(json!({"hours_per_week": 25})))
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("employer", who("employer"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other provider", Some(other.clone()), 404)
            .expect("own provider", Some(own.clone()), 200)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::DELETE, &doomed_path, None)
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other provider", Some(other.clone()), 404)
            .expect("own provider", Some(own.clone()), 204),
    ];

    // Act + Assert
    assert_matrix(&app, &rows).await;
}
