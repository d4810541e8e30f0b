//! Clients (SPEC §3, §5): validation, external ids, visibility, merge patch,
//! counselling, the Art. 15 export and Art. 17 erasure.
use chrono::{Months, Utc};
use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::helpers::*;

const CLIENTS: &str = "/api/v1/clients";

fn jobcenter(org: &str) -> Caller {
    Caller::new("jobcenter").with_org(org)
}

/// `YYYY-MM-DD` of the day `years` ago, moved by `days` (negative: earlier).
fn born_years_ago(years: u32, days: i64) -> String {
    let today = Utc::now().date_naive();
    let date = today.checked_sub_months(Months::new(12 * years)).unwrap() + chrono::Duration::days(days);
    date.to_string()
}

async fn items(app: &TestApp, path: &str, caller: &Caller) -> Vec<Value> {
    let res = app.get(path, caller).await;
    assert_eq!(res.status(), 200, "GET {path}");
    let page: Value = res.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = items.iter().map(id_of).collect();
    ids.sort();
    ids
}

// --- create and validation ---

#[tokio::test]
async fn caseworker_creates_a_client_with_every_field_and_reads_it_back() {
    // Arrange
    let app = spawn_app().await;
    let body = client_body();

    // Act
    let res = app.post(CLIENTS, &caseworker(), &body).await;

    // Assert
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    assert_eq!(location, format!("{CLIENTS}/{}", id_of(&created)));
    for field in [
        "external_id",
        "first_name",
        "last_name",
        "date_of_birth",
        "email",
        "phone",
        "address",
        "district",
        "target_groups",
        "education_level",
        "occupation_codes",
        "languages",
        "available_from",
        "hours_per_week",
        "status",
    ] {
        assert_eq!(created[field], body[field], "{field}");
    }
    assert_eq!(created["consent"]["data_processing"], true);
    assert_eq!(created["consent"]["share_with_providers"], true);
    assert_eq!(created["created_by_org"], "office");
    assert_eq!(created["version"], 1);
    let read = app.get(&location, &caseworker()).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "\"1\"");
    assert_eq!(read.json::<Value>().await.unwrap(), created);
}

#[tokio::test]
async fn client_names_are_stored_trimmed() {
    let app = spawn_app().await;

    let created = app
        .create_client(&caseworker(), &client_body_with(json!({"first_name": "  Mara ", "last_name": " Beispiel\t"})))
        .await;

    assert_eq!(created["first_name"], "Mara");
    assert_eq!(created["last_name"], "Beispiel");
}

#[tokio::test]
async fn every_invalid_client_field_is_listed_once_in_a_422() {
    // Arrange
    let app = spawn_app().await;
    let body = client_body_with(json!({
        "first_name": "   ",
        "date_of_birth": "2999-01-01",
        "email": "mara-at-example",
        "address": {"street": "Hermann-Liebmann-Straße 12", "postal_code": "0431", "city": "Leipzig"},
        "district": "99",
        "target_groups": ["unemployed", "elves"],
        "education_level": "wizardry",
        "occupation_codes": ["2930"],
        "languages": ["deu"],
        "status": "sleeping"
    }));

    // Act
    let res = app.post(CLIENTS, &caseworker(), &body).await;

    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    let mut expected = vec![
        "first_name",
        "date_of_birth",
        "email",
        "address.postal_code",
        "district",
        "target_groups[1]",
        "education_level",
        "occupation_codes[0]",
        "languages[0]",
        "status",
    ];
    expected.sort();
    assert_eq!(error_fields(&problem), expected, "{problem}");
}

#[tokio::test]
async fn missing_first_and_last_name_is_a_422_naming_both() {
    let app = spawn_app().await;

    let res = app.post(CLIENTS, &caseworker(), &client_body_with(json!({"first_name": null, "last_name": null}))).await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["first_name", "last_name"]);
}

#[tokio::test]
async fn date_of_birth_must_be_in_the_past_and_give_an_age_from_14_to_100() {
    let app = spawn_app().await;
    let tomorrow = (Utc::now().date_naive() + chrono::Days::new(1)).to_string();
    let cases = [
        ("tomorrow", tomorrow, 422),
        ("a day short of 14", born_years_ago(14, 1), 422),
        ("14 today", born_years_ago(14, 0), 201),
        ("100 years old", born_years_ago(100, -1), 201),
        ("101 years old", born_years_ago(101, -1), 422),
        ("not a date", "12.04.1998".to_owned(), 422),
    ];

    let mut failures = Vec::new();
    for (label, dob, expected) in cases {
        let res = app
            .post(CLIENTS, &caseworker(), &client_body_with(json!({"external_id": null, "date_of_birth": dob})))
            .await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        if status != expected || (expected == 422 && error_fields(&body) != ["date_of_birth"]) {
            failures.push(format!("{label} ({dob}): {status} {body}"));
        }
    }

    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn erased_is_not_a_status_a_client_can_be_given() {
    let app = spawn_app().await;

    let res = app.post(CLIENTS, &caseworker(), &client_body_with(json!({"status": "erased"}))).await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["status"]);
}

// --- external ids ---

#[tokio::test]
async fn duplicate_external_id_in_one_org_is_a_409_naming_the_existing_client() {
    // Arrange
    let app = spawn_app().await;
    let jc = jobcenter("jc-leipzig");
    let first = app.create_client(&jc, &client_body()).await;

    // Act
    let res = app.post(CLIENTS, &jc, &client_body_with(json!({"first_name": "Anna"}))).await;

    // Assert
    let problem = assert_problem(res, 409, "duplicate-external-id").await;
    assert_eq!(problem["existing_id"], first["id"]);
}

#[tokio::test]
async fn another_org_may_use_the_same_external_id() {
    let app = spawn_app().await;
    let leipzig = app.create_client(&jobcenter("jc-leipzig"), &client_body()).await;

    let halle = app.create_client(&jobcenter("jc-halle"), &client_body()).await;

    assert_ne!(halle["id"], leipzig["id"]);
    assert_eq!(halle["created_by_org"], "jc-halle");
    assert_eq!(halle["external_id"], leipzig["external_id"]);
}

#[tokio::test]
async fn external_id_lookup_finds_only_the_client_with_that_number() {
    let app = spawn_app().await;
    let jc = jobcenter("jc-leipzig");
    let wanted = app.create_client(&jc, &client_body()).await;
    app.create_client(&jc, &client_body_with(json!({"external_id": "JC-4711-0816"}))).await;

    let found = items(&app, &format!("{CLIENTS}?external_id=JC-4711-0815"), &jc).await;

    assert_eq!(ids(&found), [id_of(&wanted)]);
}

#[tokio::test]
async fn patching_a_client_to_an_external_id_its_org_already_uses_is_409() {
    let app = spawn_app().await;
    let jc = jobcenter("jc-leipzig");
    let first = app.create_client(&jc, &client_body()).await;
    let second = app.create_client(&jc, &client_body_with(json!({"external_id": "JC-2"}))).await;

    let res = app
        .patch(&format!("{CLIENTS}/{}", id_of(&second)), &caseworker(), &json!({"external_id": "JC-4711-0815"}))
        .await;

    let problem = assert_problem(res, 409, "duplicate-external-id").await;
    assert_eq!(problem["existing_id"], first["id"]);
}

// --- filters and visibility ---

#[tokio::test]
async fn client_filters_select_the_matching_clients() {
    // Arrange
    let app = spawn_app().await;
    let cw = caseworker();
    let mara = app.create_client(&cw, &client_body_with(json!({"external_id": null}))).await;
    let jonas = app
        .create_client(
            &cw,
            &client_body_with(json!({"external_id": null, "first_name": "Jonas", "last_name": "Krüger",
                "district": "20", "target_groups": ["youth", "school_leaver"], "status": "inactive"})),
        )
        .await;
    let cases = [
        ("district=21", vec![&mara]),
        ("district=20", vec![&jonas]),
        ("target_group=youth", vec![&jonas]),
        ("target_group=single_parent", vec![&mara]),
        ("target_group=founder", vec![]),
        ("status=inactive", vec![&jonas]),
        ("status=active", vec![&mara]),
        ("q=krü", vec![&jonas]),
        ("q=BEISP", vec![&mara]),
        ("q=mara", vec![&mara]),
        ("district=20&status=active", vec![]),
    ];

    // Act + Assert
    for (query, expected) in cases {
        let found = items(&app, &format!("{CLIENTS}?{query}"), &cw).await;
        let expected: Vec<Value> = expected.into_iter().cloned().collect();
        assert_eq!(ids(&found), ids(&expected), "?{query}");
    }
}

#[tokio::test]
async fn name_search_ignores_case_beyond_ascii() {
    // Arrange
    let app = spawn_app().await;
    let cw = caseworker();
    let omer = app.create_client(&cw, &client_body_with(json!({"first_name": "Ömer", "last_name": "Öztürk"}))).await;
    app.create_client(&cw, &client_body_with(json!({"external_id": null, "first_name": "Olena", "last_name": "Oz"})))
        .await;

    // Act + Assert
    for q in ["öztürk", "ÖZTÜRK", "Öz", "ömer", "ÖMER", "ztür"] {
        let found = items(&app, &format!("{CLIENTS}?q={q}"), &cw).await;
        assert_eq!(ids(&found), [id_of(&omer)], "?q={q}");
    }
}

#[tokio::test]
async fn unknown_filter_codes_are_a_400() {
    let app = spawn_app().await;

    for query in ["target_group=elves", "status=sleeping"] {
        let res = app.get(&format!("{CLIENTS}?{query}"), &caseworker()).await;
        assert_problem(res, 400, "bad-request").await;
    }
}

#[tokio::test]
async fn job_centre_lists_only_the_clients_it_created() {
    let app = spawn_app().await;
    let leipzig = jobcenter("jc-leipzig");
    let own = app.create_client(&leipzig, &client_body()).await;
    app.create_client(&jobcenter("jc-halle"), &client_body()).await;
    app.create_client(&caseworker(), &client_body()).await;

    let listed = items(&app, CLIENTS, &leipzig).await;

    assert_eq!(ids(&listed), [id_of(&own)]);
}

#[tokio::test]
async fn job_centre_reading_another_job_centres_client_gets_404() {
    let app = spawn_app().await;
    let other = app.create_client(&jobcenter("jc-halle"), &client_body()).await;

    let res = app.get(&format!("{CLIENTS}/{}", id_of(&other)), &jobcenter("jc-leipzig")).await;

    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn providers_employers_and_analysts_may_neither_list_nor_read_clients() {
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let one = format!("{CLIENTS}/{}", id_of(&client));

    for role in ["provider", "employer", "analyst"] {
        for path in [CLIENTS, one.as_str()] {
            let res = app.get(path, &Caller::new(role)).await;
            assert_eq!(res.status(), 403, "{role} GET {path}");
        }
    }
}

// --- change ---

#[tokio::test]
async fn merge_patch_changes_only_the_given_fields_and_bumps_the_version() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let path = format!("{CLIENTS}/{}", id_of(&client));

    // Act
    let res = app
        .request(Method::PATCH, &path, Some(&caseworker()))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"1\"")
        .body(json!({"email": "mara@example.net", "phone": null, "address": {"city": "Leipzig-Ost"}}).to_string())
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"2\"");
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["email"], "mara@example.net");
    assert_eq!(changed["phone"], Value::Null);
    assert_eq!(changed["address"]["city"], "Leipzig-Ost");
    assert_eq!(changed["address"]["postal_code"], "04315");
    assert_eq!(changed["first_name"], "Mara");
    assert_eq!(changed["version"], 2);
}

#[tokio::test]
async fn patch_with_a_stale_if_match_is_412() {
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let path = format!("{CLIENTS}/{}", id_of(&client));
    assert_eq!(app.patch(&path, &caseworker(), &json!({"hours_per_week": 20})).await.status(), 200);

    let res = app
        .request(Method::PATCH, &path, Some(&caseworker()))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", "\"1\"")
        .body(json!({"hours_per_week": 25}).to_string())
        .send()
        .await
        .unwrap();

    assert_problem(res, 412, "precondition-failed").await;
    let current: Value = app.get(&path, &caseworker()).await.json().await.unwrap();
    assert_eq!(current["hours_per_week"], 20);
}

#[tokio::test]
async fn patch_with_invalid_values_is_a_422() {
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;

    let res = app
        .patch(&format!("{CLIENTS}/{}", id_of(&client)), &caseworker(), &json!({"languages": ["xx"], "last_name": ""}))
        .await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["languages[0]", "last_name"]);
}

// --- idempotency ---

#[tokio::test]
async fn replayed_idempotent_create_returns_the_same_client_and_creates_nothing() {
    // Arrange
    let app = spawn_app().await;
    let jc = jobcenter("jc-leipzig");
    let send = || {
        app.request(Method::POST, CLIENTS, Some(&jc)).header("idempotency-key", "push-4711").json(&client_body()).send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();

    // Act
    let replay = send().await.unwrap();

    // Assert
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    assert_eq!(items(&app, CLIENTS, &jc).await.len(), 1);
}

// --- counselling ---

#[tokio::test]
async fn caseworker_logs_a_consultation_and_is_recorded_as_counsellor() {
    // Arrange
    let app = spawn_app().await;
    let cw = caseworker();
    let client = app.create_client(&cw, &client_body()).await;
    let path = format!("{CLIENTS}/{}/consultations", id_of(&client));

    // Act
    let logged = app.create(&path, &cw, &consultation_body("Lebenslauf überarbeitet.")).await;

    // Assert
    assert_eq!(logged["counsellor"], cw.sub.as_str());
    assert_eq!(logged["client_id"], client["id"]);
    assert_eq!(logged["topic"], "application_support");
    let listed = items(&app, &path, &admin()).await;
    assert_eq!(ids(&listed), [id_of(&logged)]);
    assert_eq!(listed[0]["notes"], "Lebenslauf überarbeitet.");
}

#[tokio::test]
async fn employer_topic_on_a_client_consultation_is_a_422() {
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let body = with(consultation_body("x"), json!({"topic": "recruiting"}));

    let res = app.post(&format!("{CLIENTS}/{}/consultations", id_of(&client)), &caseworker(), &body).await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["topic"]);
}

#[tokio::test]
async fn only_office_staff_see_and_log_counselling() {
    let app = spawn_app().await;
    let jc = jobcenter("jc-leipzig");
    let client = app.create_client(&jc, &client_body()).await;
    let path = format!("{CLIENTS}/{}/consultations", id_of(&client));

    for role in ["jobcenter", "provider", "employer", "analyst"] {
        let caller = if role == "jobcenter" { jc.clone() } else { Caller::new(role) };
        assert_eq!(app.get(&path, &caller).await.status(), 403, "{role} lists");
        assert_eq!(app.post(&path, &caller, &consultation_body("x")).await.status(), 403, "{role} logs");
    }
}

// --- export (Art. 15) ---

#[tokio::test]
async fn export_holds_the_client_its_consultations_and_the_earlier_audit_events() {
    // Arrange
    let app = spawn_app().await;
    let cw = caseworker();
    let client = app.create_client(&cw, &client_body()).await;
    let id = id_of(&client);
    app.create(&format!("{CLIENTS}/{id}/consultations"), &cw, &consultation_body("Bewerbung bei Bäckerei Sommer"))
        .await;
    assert_eq!(app.get(&format!("{CLIENTS}/{id}"), &cw).await.status(), 200);

    // Act
    let res = app.get(&format!("{CLIENTS}/{id}/export"), &admin()).await;

    // Assert
    assert_eq!(res.status(), 200);
    let export: Value = res.json().await.unwrap();
    assert_eq!(export["client"]["id"], client["id"]);
    assert_eq!(export["client"]["last_name"], "Beispiel");
    assert_eq!(export["consultations"][0]["notes"], "Bewerbung bei Bäckerei Sommer");
    assert!(export["referrals"].is_array());
    let actions: Vec<&str> =
        export["audit_events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["client.create", "consultation.create", "client.read"] {
        assert!(actions.contains(&action), "{action} missing in {actions:?}");
    }
    assert!(export["audit_events"].as_array().unwrap().iter().all(|e| e["client_id"] == client["id"]));
}

// --- erasure (Art. 17) ---

#[tokio::test]
async fn after_erasure_every_path_of_the_client_answers_410() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let one = format!("{CLIENTS}/{}", id_of(&client));

    // Act
    let res = app.delete(&one, &admin()).await;

    // Assert
    assert_eq!(res.status(), 204);
    let consultations = format!("{one}/consultations");
    let export = format!("{one}/export");
    let patch = json!({"first_name": "Wieder"});
    let consultation = consultation_body("x");
    let after: [(Method, &str, Option<&Value>); 6] = [
        (Method::GET, &one, None),
        (Method::PATCH, &one, Some(&patch)),
        (Method::GET, &export, None),
        (Method::GET, &consultations, None),
        (Method::POST, &consultations, Some(&consultation)),
        (Method::DELETE, &one, None),
    ];
    for (method, path, body) in after {
        let res = app.send(method.clone(), path, Some(&admin()), body).await;
        assert_eq!(res.status(), 410, "{method} {path}");
        assert_problem(res, 410, "gone").await;
    }
}

#[tokio::test]
async fn erased_client_is_listed_only_as_an_anonymous_stub_when_asked_for() {
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    assert_eq!(app.delete(&format!("{CLIENTS}/{}", id_of(&client)), &admin()).await.status(), 204);

    let default_list = items(&app, CLIENTS, &caseworker()).await;
    let erased = items(&app, &format!("{CLIENTS}?status=erased"), &caseworker()).await;

    assert!(default_list.is_empty(), "{default_list:?}");
    assert_eq!(ids(&erased), [id_of(&client)]);
    assert_eq!(erased[0]["first_name"], Value::Null);
    assert_eq!(erased[0]["district"], "21");
}

/// One number from the database: `sql` with the client id bound to its one placeholder.
async fn count(app: &TestApp, sql: &str, client_id: &str) -> i64 {
    let db = app.db().await;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => sql.replace('?', "$1"),
        _ => sql.to_owned(),
    };
    let id = uuid::Uuid::parse_str(client_id).unwrap();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql.as_str(), [id.into()]))
        .await
        .unwrap()
        .expect("one row");
    row.try_get::<i64>("", "n").unwrap()
}

#[tokio::test]
async fn erasure_destroys_personal_fields_and_notes_in_the_database_but_keeps_the_stub() {
    // Arrange
    let app = spawn_app().await;
    let cw = caseworker();
    let client = app.create_client(&cw, &client_body()).await;
    let id = id_of(&client);
    for notes in ["Erstgespräch: Wunsch Einzelhandel", "Bewerbung bei Bäckerei Sommer"] {
        app.create(&format!("{CLIENTS}/{id}/consultations"), &cw, &consultation_body(notes)).await;
    }

    // Act
    assert_eq!(app.delete(&format!("{CLIENTS}/{id}"), &admin()).await.status(), 204);

    // Assert: every personal column is NULL ...
    for column in ["first_name", "last_name", "date_of_birth", "email", "phone", "address", "external_id"] {
        let sql = format!("SELECT COUNT(*) AS n FROM clients WHERE id = ? AND {column} IS NULL");
        assert_eq!(count(&app, &sql, &id).await, 1, "{column} is not NULL after erasure");
    }
    // ... every note is gone, the entries themselves stay ...
    let sql = "SELECT COUNT(*) AS n FROM consultations WHERE client_id = ? AND notes IS NOT NULL";
    assert_eq!(count(&app, sql, &id).await, 0, "consultation notes survive erasure");
    let sql = "SELECT COUNT(*) AS n FROM consultations WHERE client_id = ?";
    assert_eq!(count(&app, sql, &id).await, 2);
    // ... and the anonymous stub remains.
    let db = app.db().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT status, district, target_groups FROM clients",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].try_get::<String>("", "status").unwrap(), "erased");
    assert_eq!(rows[0].try_get::<String>("", "district").unwrap(), "21");
    assert_eq!(rows[0].try_get::<String>("", "target_groups").unwrap(), "|unemployed|single_parent|");
}

#[tokio::test]
async fn replaying_the_create_of_an_erased_client_answers_410_without_personal_data() {
    // Arrange: a job centre pushes a client with a key; the client is then erased.
    let app = spawn_app().await;
    let jc = jobcenter("jc-leipzig");
    let push = || {
        app.request(Method::POST, CLIENTS, Some(&jc)).header("idempotency-key", "push-4711").json(&client_body()).send()
    };
    let created: Value = push().await.unwrap().json().await.unwrap();
    assert_eq!(app.delete(&format!("{CLIENTS}/{}", id_of(&created)), &admin()).await.status(), 204);

    // Act
    let replay = push().await.unwrap();

    // Assert
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let problem = assert_problem(replay, 410, "gone").await;
    assert!(!problem.to_string().contains("Beispiel"), "{problem}");
}

#[tokio::test]
async fn erasure_leaves_no_personal_data_in_stored_idempotent_responses() {
    // Arrange: the client and a consultation are created with Idempotency-Keys.
    let app = spawn_app().await;
    let cw = caseworker();
    let created: Value = app
        .request(Method::POST, CLIENTS, Some(&cw))
        .header("idempotency-key", "client-1")
        .json(&client_body())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = id_of(&created);
    let logged = app
        .request(Method::POST, &format!("{CLIENTS}/{id}/consultations"), Some(&cw))
        .header("idempotency-key", "consultation-1")
        .json(&consultation_body("Lebenslauf überarbeitet."))
        .send()
        .await
        .unwrap();
    assert_eq!(logged.status(), 201);

    // Act
    assert_eq!(app.delete(&format!("{CLIENTS}/{id}"), &admin()).await.status(), 204);

    // Assert
    let db = app.db().await;
    let sql = "SELECT COUNT(*) AS n FROM idempotency_keys \
               WHERE response_body LIKE '%Beispiel%' OR response_body LIKE '%Lebenslauf%'";
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0, "stored responses still hold the erased client's data");
}

// --- authorization matrix ---

#[tokio::test]
async fn client_endpoints_answer_each_role_as_the_spec_says() {
    // Arrange: a client of the Leipzig job centre.
    let app = spawn_app().await;
    let own_jc = jobcenter("jc-leipzig");
    let other_jc = jobcenter("jc-halle");
    let client = app.create_client(&own_jc, &client_body()).await;
    let one = format!("{CLIENTS}/{}", id_of(&client));
    let new_client = client_body_with(json!({"external_id": null}));
    let patch = json!({"hours_per_week": 25});
    let who = |role| Some(Caller::new(role));
    let rows = [
        Endpoint::new(Method::GET, CLIENTS, None)
            .expect("provider", who("provider"), 403)
            .expect("employer", who("employer"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("jobcenter", Some(own_jc.clone()), 200)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::POST, CLIENTS, Some(new_client))
            .expect("provider", who("provider"), 403)
            .expect("employer", who("employer"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("jobcenter", Some(own_jc.clone()), 201)
            .expect("caseworker", who("caseworker"), 201)
            .expect("admin", who("admin"), 201),
        Endpoint::new(Method::GET, &one, None)
            .expect("provider", who("provider"), 403)
            .expect("employer", who("employer"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other job centre", Some(other_jc.clone()), 404)
            .expect("own job centre", Some(own_jc.clone()), 200)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::PATCH, &one, Some(patch))
            .expect("own job centre", Some(own_jc.clone()), 403)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::GET, format!("{one}/export"), None)
            .expect("own job centre", Some(own_jc.clone()), 403)
            .expect("provider", who("provider"), 403)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::GET, format!("{one}/consultations"), None)
            .expect("own job centre", Some(own_jc.clone()), 403)
            .expect("provider", who("provider"), 403)
            .expect("employer", who("employer"), 403)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::POST, format!("{one}/consultations"), Some(consultation_body("x")))
            .expect("own job centre", Some(own_jc.clone()), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("caseworker", who("caseworker"), 201)
            .expect("admin", who("admin"), 201),
        // Last: erasure ends the client's life.
        Endpoint::new(Method::DELETE, &one, None)
            .expect("own job centre", Some(own_jc.clone()), 403)
            .expect("caseworker", who("caseworker"), 403)
            .expect("provider", who("provider"), 403)
            .expect("admin", who("admin"), 204),
    ];

    // Act + Assert
    assert_matrix(&app, &rows).await;
}

#[tokio::test]
async fn unknown_client_id_is_a_404() {
    let app = spawn_app().await;

    let res = app.get(&format!("{CLIENTS}/{}", uuid::Uuid::now_v7()), &caseworker()).await;

    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn a_logged_consultation_is_readable_at_its_location_and_the_read_is_audited() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let path = format!("/api/v1/clients/{}/consultations", id_of(&client));
    let res = app.post(&path, &caseworker(), &consultation_body("Lebenslauf besprochen.")).await;
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let reader = caseworker();
    // Act
    let res = app.get(&location, &reader).await;
    // Assert
    assert_eq!(res.status(), 200);
    let entry: Value = res.json().await.unwrap();
    assert_eq!(entry["notes"], "Lebenslauf besprochen.");
    let events = app.audit_events(&format!("client_id={}&actor={}", id_of(&client), reader.sub)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "consultation.read");
}

#[tokio::test]
async fn replaying_an_idempotent_client_create_is_audited_as_a_read() {
    // Arrange
    let app = spawn_app().await;
    let caller = caseworker();
    let send = || {
        app.request(reqwest::Method::POST, "/api/v1/clients", Some(&caller))
            .header("Idempotency-Key", "push-1")
            .json(&client_body())
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    // Act
    let replay = send().await.unwrap();
    // Assert
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let actions: Vec<String> = app
        .audit_events(&format!("client_id={}", id_of(&first)))
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, vec!["replay", "client.create"]);
}
