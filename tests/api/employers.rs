//! Employers, their counselling log and vacancies (SPEC §3): office staff
//! see everything, an employer only itself, a job centre the public part of
//! employers and open vacancies.
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const EMPLOYERS: &str = "/api/v1/employers";
const VACANCIES: &str = "/api/v1/vacancies";

/// A principal acting for the employer record `employer`.
fn employer_principal(employer: &Value) -> Caller {
    Caller::new("employer").with_org(id_of(employer))
}

fn employer_consultation(topic: &str) -> Value {
    json!({"held_on": "2026-01-15", "topic": topic, "duration_minutes": 60, "notes": "Zwei Azubis gesucht."})
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

async fn patch_if_match(app: &TestApp, path: &str, caller: &Caller, etag: &str, body: &Value) -> reqwest::Response {
    app.request(Method::PATCH, path, Some(caller))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", etag)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

// --- employers ---

#[tokio::test]
async fn caseworker_creates_an_employer_and_reads_it_in_full() {
    // Arrange
    let app = spawn_app().await;
    let body = employer_body("Bäckerei Sommer GmbH");

    // Act
    let res = app.post(EMPLOYERS, &caseworker(), &body).await;

    // Assert
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    assert_eq!(location, format!("{EMPLOYERS}/{}", id_of(&created)));
    for field in [
        "name",
        "legal_form",
        "sector",
        "address",
        "district",
        "employee_count",
        "settlement_status",
        "is_training_company",
        "needs",
        "contact",
    ] {
        assert_eq!(created[field], body[field], "{field}");
    }
    let read: Value = app.get(&location, &caseworker()).await.json().await.unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn invalid_employer_fields_are_listed_in_a_422() {
    let app = spawn_app().await;
    let body = with(
        employer_body(" "),
        json!({"sector": "bakery", "district": "99", "settlement_status": "moving", "needs": ["cake"],
            "employee_count": -1, "contact": {"email": "nope"}}),
    );

    let res = app.post(EMPLOYERS, &caseworker(), &body).await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(
        error_fields(&problem),
        ["contact.email", "district", "employee_count", "name", "needs[0]", "sector", "settlement_status"]
    );
}

#[tokio::test]
async fn employer_reads_and_changes_its_own_record_in_full() {
    // Arrange
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let me = employer_principal(&employer);
    let path = format!("{EMPLOYERS}/{}", id_of(&employer));

    // Act
    let read: Value = app.get(&path, &me).await.json().await.unwrap();
    let res = app.patch(&path, &me, &json!({"employee_count": 14, "needs": ["recruiting"]})).await;

    // Assert
    assert_eq!(read["contact"], employer["contact"]);
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["employee_count"], 14);
    assert_eq!(changed["needs"], json!(["recruiting"]));
    assert_eq!(changed["version"], 2);
}

#[tokio::test]
async fn employer_neither_reads_nor_changes_another_employer() {
    let app = spawn_app().await;
    let mine = app.create_employer("Bäckerei Sommer GmbH").await;
    let other = app.create_employer("Autohaus Ost KG").await;
    let me = employer_principal(&mine);
    let path = format!("{EMPLOYERS}/{}", id_of(&other));

    let read = app.get(&path, &me).await;
    let change = app.patch(&path, &me, &json!({"name": "Übernommen"})).await;

    assert_problem(read, 404, "not-found").await;
    assert_problem(change, 404, "not-found").await;
    let unchanged: Value = app.get(&path, &caseworker()).await.json().await.unwrap();
    assert_eq!(unchanged["name"], "Autohaus Ost KG");
}

#[tokio::test]
async fn employer_lists_only_itself() {
    let app = spawn_app().await;
    let mine = app.create_employer("Bäckerei Sommer GmbH").await;
    app.create_employer("Autohaus Ost KG").await;

    let listed = items(&app, EMPLOYERS, &employer_principal(&mine)).await;

    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], mine["id"]);
}

#[tokio::test]
async fn job_centre_sees_only_the_public_part_of_employers() {
    // Arrange
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let jc = Caller::new("jobcenter");

    // Act
    let one: Value = app.get(&format!("{EMPLOYERS}/{}", id_of(&employer)), &jc).await.json().await.unwrap();
    let listed = items(&app, EMPLOYERS, &jc).await;

    // Assert
    for view in [&one, &listed[0]] {
        assert_eq!(view["name"], "Bäckerei Sommer GmbH");
        for private in ["contact", "needs", "employee_count"] {
            assert!(view.get(private).is_none(), "{private} shown to a job centre: {view}");
        }
    }
}

#[tokio::test]
async fn job_centre_cannot_learn_non_public_fields_through_filters() {
    let app = spawn_app().await;
    app.create_employer("Bäckerei Sommer GmbH").await;
    let jc = Caller::new("jobcenter");

    for query in ["need=recruiting", "settlement_status=established"] {
        let res = app.get(&format!("{EMPLOYERS}?{query}"), &jc).await;
        assert_problem(res, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn employer_filters_select_the_matching_employers() {
    let app = spawn_app().await;
    app.create_employer("Bäckerei Sommer GmbH").await;
    let body = with(
        employer_body("Solarwerk Ost"),
        json!({"district": "24", "settlement_status": "interested", "is_training_company": false,
            "needs": ["settlement_support"]}),
    );
    app.create("/api/v1/employers", &caseworker(), &body).await;
    let cases = [
        ("district=24", vec!["Solarwerk Ost"]),
        ("settlement_status=interested", vec!["Solarwerk Ost"]),
        ("need=recruiting", vec!["Bäckerei Sommer GmbH"]),
        ("is_training_company=true", vec!["Bäckerei Sommer GmbH"]),
        ("q=solar", vec!["Solarwerk Ost"]),
        ("q=ost", vec!["Solarwerk Ost"]),
    ];

    for (query, expected) in cases {
        let found = items(&app, &format!("{EMPLOYERS}?{query}"), &caseworker()).await;
        let mut names: Vec<&str> = found.iter().map(|e| e["name"].as_str().unwrap()).collect();
        names.sort();
        assert_eq!(names, expected, "?{query}");
    }
}

#[tokio::test]
async fn employer_patch_with_a_stale_if_match_is_412() {
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let path = format!("{EMPLOYERS}/{}", id_of(&employer));
    assert_eq!(patch_if_match(&app, &path, &caseworker(), "\"1\"", &json!({"employee_count": 13})).await.status(), 200);

    let res = patch_if_match(&app, &path, &caseworker(), "\"1\"", &json!({"employee_count": 20})).await;

    assert_problem(res, 412, "precondition-failed").await;
}

// --- employer counselling ---

#[tokio::test]
async fn caseworker_logs_employer_counselling_with_an_employer_topic() {
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let cw = caseworker();
    let path = format!("{EMPLOYERS}/{}/consultations", id_of(&employer));

    let logged = app.create(&path, &cw, &employer_consultation("apprenticeship_training")).await;

    assert_eq!(logged["employer_id"], employer["id"]);
    assert_eq!(logged["client_id"], Value::Null);
    assert_eq!(logged["counsellor"], cw.sub.as_str());
    let listed = items(&app, &path, &admin()).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["topic"], "apprenticeship_training");
}

#[tokio::test]
async fn client_topic_on_an_employer_consultation_is_a_422() {
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;

    let res = app
        .post(
            &format!("{EMPLOYERS}/{}/consultations", id_of(&employer)),
            &caseworker(),
            &employer_consultation("career_planning"),
        )
        .await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["topic"]);
}

#[tokio::test]
async fn employer_counselling_writes_no_audit_event() {
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let path = format!("{EMPLOYERS}/{}/consultations", id_of(&employer));
    let before = app.audit_row_count().await;

    app.create(&path, &caseworker(), &employer_consultation("recruiting")).await;
    items(&app, &path, &caseworker()).await;

    assert_eq!(app.audit_row_count().await, before);
}

// --- vacancies ---

#[tokio::test]
async fn employer_publishes_a_vacancy_of_its_own() {
    // Arrange
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let body = vacancy_body("Ausbildung Bäcker:in", "29202");

    // Act
    let res =
        app.post(&format!("{EMPLOYERS}/{}/vacancies", id_of(&employer)), &employer_principal(&employer), &body).await;

    // Assert
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    assert_eq!(location, format!("{VACANCIES}/{}", id_of(&created)));
    assert_eq!(created["employer_id"], employer["id"]);
    assert_eq!(created["positions"], 2);
    assert_eq!(created["positions_filled"], 0);
    assert_eq!(created["status"], "open");
    let read: Value = app.get(&location, &caseworker()).await.json().await.unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn employer_cannot_publish_a_vacancy_for_another_employer() {
    let app = spawn_app().await;
    let mine = app.create_employer("Bäckerei Sommer GmbH").await;
    let other = app.create_employer("Autohaus Ost KG").await;

    let res = app
        .post(
            &format!("{EMPLOYERS}/{}/vacancies", id_of(&other)),
            &employer_principal(&mine),
            &vacancy_body("Kfz-Mechatroniker:in", "25212"),
        )
        .await;

    assert_problem(res, 404, "not-found").await;
    assert!(items(&app, VACANCIES, &caseworker()).await.is_empty());
}

#[tokio::test]
async fn invalid_vacancy_fields_are_listed_in_a_422() {
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let body =
        with(vacancy_body("", "2920"), json!({"kind": "gig", "positions": 0, "languages": ["xx"], "status": "maybe"}));

    let res = app.post(&format!("{EMPLOYERS}/{}/vacancies", id_of(&employer)), &caseworker(), &body).await;

    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["kind", "languages[0]", "occupation_code", "positions", "status", "title"]);
}

#[tokio::test]
async fn occupation_code_prefix_finds_the_whole_kldb_group_and_nothing_else() {
    // Arrange
    let app = spawn_app().await;
    let employer = id_of(&app.create_employer("Gastro Ost").await);
    app.create_vacancy(&employer, &vacancy_body("Koch/Köchin", "29302")).await;
    app.create_vacancy(&employer, &vacancy_body("Küchenhilfe", "29301")).await;
    app.create_vacancy(&employer, &vacancy_body("Bäcker:in", "29202")).await;

    // Act
    let group = items(&app, &format!("{VACANCIES}?occupation_code=293"), &caseworker()).await;
    let exact = items(&app, &format!("{VACANCIES}?occupation_code=29302"), &caseworker()).await;

    // Assert
    assert_eq!(titles(&group), ["Koch/Köchin", "Küchenhilfe"]);
    assert_eq!(titles(&exact), ["Koch/Köchin"]);
}

#[tokio::test]
async fn vacancy_filters_select_the_matching_vacancies() {
    let app = spawn_app().await;
    let sommer = id_of(&app.create_employer("Bäckerei Sommer GmbH").await);
    let autohaus = id_of(&app.create_employer("Autohaus Ost KG").await);
    app.create_vacancy(&sommer, &vacancy_body("Bäcker:in", "29202")).await;
    let internship =
        with(vacancy_body("Praktikum Werkstatt", "25212"), json!({"kind": "internship", "district": "24"}));
    app.create_vacancy(&autohaus, &internship).await;
    app.create_vacancy(&autohaus, &with(vacancy_body("Verkauf", "62102"), json!({"status": "filled"}))).await;
    let cases = [
        ("kind=internship".to_owned(), vec!["Praktikum Werkstatt"]),
        ("district=24".to_owned(), vec!["Praktikum Werkstatt"]),
        ("status=filled".to_owned(), vec!["Verkauf"]),
        (format!("employer_id={sommer}"), vec!["Bäcker:in"]),
        (format!("employer_id={autohaus}&status=open"), vec!["Praktikum Werkstatt"]),
    ];

    for (query, expected) in cases {
        let found = items(&app, &format!("{VACANCIES}?{query}"), &caseworker()).await;
        assert_eq!(titles(&found), expected, "?{query}");
    }
}

#[tokio::test]
async fn job_centre_sees_only_open_vacancies() {
    // Arrange
    let app = spawn_app().await;
    let employer = id_of(&app.create_employer("Bäckerei Sommer GmbH").await);
    app.create_vacancy(&employer, &vacancy_body("Offen", "29202")).await;
    let closed =
        app.create_vacancy(&employer, &with(vacancy_body("Geschlossen", "29202"), json!({"status": "closed"}))).await;
    let jc = Caller::new("jobcenter");

    // Act
    let searched = items(&app, VACANCIES, &jc).await;
    let asked_for_closed = items(&app, &format!("{VACANCIES}?status=closed"), &jc).await;
    let of_employer = items(&app, &format!("{EMPLOYERS}/{employer}/vacancies"), &jc).await;
    let closed_one = app.get(&format!("{VACANCIES}/{}", id_of(&closed)), &jc).await;

    // Assert
    assert_eq!(titles(&searched), ["Offen"]);
    assert!(asked_for_closed.is_empty(), "{asked_for_closed:?}");
    assert_eq!(titles(&of_employer), ["Offen"]);
    assert_problem(closed_one, 404, "not-found").await;
}

#[tokio::test]
async fn employer_sees_only_its_own_vacancies() {
    // Arrange
    let app = spawn_app().await;
    let mine = app.create_employer("Bäckerei Sommer GmbH").await;
    let other = id_of(&app.create_employer("Autohaus Ost KG").await);
    app.create_vacancy(&id_of(&mine), &with(vacancy_body("Meine", "29202"), json!({"status": "closed"}))).await;
    let foreign = app.create_vacancy(&other, &vacancy_body("Fremde", "25212")).await;
    let me = employer_principal(&mine);

    // Act
    let searched = items(&app, VACANCIES, &me).await;
    let asked_for_other = items(&app, &format!("{VACANCIES}?employer_id={other}"), &me).await;
    let foreign_one = app.get(&format!("{VACANCIES}/{}", id_of(&foreign)), &me).await;

    // Assert
    assert_eq!(titles(&searched), ["Meine"]);
    assert!(asked_for_other.is_empty(), "{asked_for_other:?}");
    assert_problem(foreign_one, 404, "not-found").await;
}

#[tokio::test]
async fn vacancy_patch_with_a_stale_if_match_is_412() {
    let app = spawn_app().await;
    let employer = id_of(&app.create_employer("Bäckerei Sommer GmbH").await);
    let vacancy = app.create_vacancy(&employer, &vacancy_body("Bäcker:in", "29202")).await;
    let path = format!("{VACANCIES}/{}", id_of(&vacancy));
    let res = patch_if_match(&app, &path, &caseworker(), "\"1\"", &json!({"positions": 3})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"2\"");

    let res = patch_if_match(&app, &path, &caseworker(), "\"1\"", &json!({"status": "closed"})).await;

    assert_problem(res, 412, "precondition-failed").await;
}

// --- authorization matrix ---

#[tokio::test]
async fn employer_and_vacancy_endpoints_answer_each_role_as_the_spec_says() {
    // Arrange
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer GmbH").await;
    let spare = app.create_employer("Leerstand GbR").await;
    let own = employer_principal(&employer);
    let other = Caller::new("employer"); // acts for an employer id that is not this one
    let one = format!("{EMPLOYERS}/{}", id_of(&employer));
    let vacancy = app.create_vacancy(&id_of(&employer), &vacancy_body("Bäcker:in", "29202")).await;
    let doomed = app.create_vacancy(&id_of(&employer), &vacancy_body("Aushilfe", "29202")).await;
    let vacancy_path = format!("{VACANCIES}/{}", id_of(&vacancy));
    let doomed_path = format!("{VACANCIES}/{}", id_of(&doomed));
    let who = |role| Some(Caller::new(role));
    let rows = [
        Endpoint::new(Method::GET, EMPLOYERS, None)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("jobcenter", who("jobcenter"), 200)
            .expect("employer", Some(own.clone()), 200)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::POST, EMPLOYERS, Some(employer_body("Neu GmbH")))
            .expect("employer", Some(own.clone()), 403)
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("caseworker", who("caseworker"), 201)
            .expect("admin", who("admin"), 201),
        Endpoint::new(Method::GET, &one, None)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other employer", Some(other.clone()), 404)
            .expect("own employer", Some(own.clone()), 200)
            .expect("jobcenter", who("jobcenter"), 200)
            .expect("caseworker", who("caseworker"), 200),
        Endpoint::new(Method::PATCH, &one, Some(json!({"employee_count": 15})))
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other employer", Some(other.clone()), 404)
            .expect("own employer", Some(own.clone()), 200)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::GET, format!("{one}/consultations"), None)
            .expect("own employer", Some(own.clone()), 403)
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("provider", who("provider"), 403)
            .expect("caseworker", who("caseworker"), 200)
            .expect("admin", who("admin"), 200),
        Endpoint::new(Method::POST, format!("{one}/consultations"), Some(employer_consultation("recruiting")))
            .expect("own employer", Some(own.clone()), 403)
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("caseworker", who("caseworker"), 201)
            .expect("admin", who("admin"), 201),
        Endpoint::new(Method::GET, format!("{one}/vacancies"), None)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other employer", Some(other.clone()), 404)
            .expect("own employer", Some(own.clone()), 200)
            .expect("jobcenter", who("jobcenter"), 200)
            .expect("caseworker", who("caseworker"), 200),
        Endpoint::new(Method::POST, format!("{one}/vacancies"), Some(vacancy_body("Verkauf", "62102")))
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other employer", Some(other.clone()), 404)
            .expect("own employer", Some(own.clone()), 201)
            .expect("caseworker", who("caseworker"), 201),
        Endpoint::new(Method::GET, VACANCIES, None)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("jobcenter", who("jobcenter"), 200)
            .expect("employer", Some(own.clone()), 200)
            .expect("caseworker", who("caseworker"), 200),
        Endpoint::new(Method::GET, &vacancy_path, None)
            .expect("provider", who("provider"), 403)
            .expect("analyst", who("analyst"), 403)
            .expect("other employer", Some(other.clone()), 404)
            .expect("own employer", Some(own.clone()), 200)
            .expect("jobcenter", who("jobcenter"), 200)
            .expect("caseworker", who("caseworker"), 200),
        Endpoint::new(Method::PATCH, &vacancy_path, Some(json!({"positions": 3})))
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("provider", who("provider"), 403)
            .expect("other employer", Some(other.clone()), 404)
            .expect("own employer", Some(own.clone()), 200)
            .expect("caseworker", who("caseworker"), 200),
        Endpoint::new(Method::DELETE, &doomed_path, None)
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("provider", who("provider"), 403)
            .expect("other employer", Some(other.clone()), 404)
            .expect("own employer", Some(own.clone()), 204),
        Endpoint::new(Method::DELETE, format!("{EMPLOYERS}/{}", id_of(&spare)), None)
            .expect("the employer itself", Some(employer_principal(&spare)), 403)
            .expect("jobcenter", who("jobcenter"), 403)
            .expect("caseworker", who("caseworker"), 204),
    ];

    // Act + Assert
    assert_matrix(&app, &rows).await;
}

#[tokio::test]
async fn employer_with_vacancies_cannot_be_deleted() {
    let app = spawn_app().await;
    let employer = id_of(&app.create_employer("Bäckerei Sommer GmbH").await);
    app.create_vacancy(&employer, &vacancy_body("Bäcker:in", "29202")).await;

    let res = app.delete(&format!("{EMPLOYERS}/{employer}"), &caseworker()).await;

    assert_problem(res, 409, "in-use").await;
}
