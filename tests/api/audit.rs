//! The audit log (SPEC §5): every read or write of a client's personal data
//! leaves one event, durable before the response; nothing else leaves any.
//! `GET /api/v1/audit-events` is for admins only.
use std::collections::BTreeSet;

use chrono::{SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const CLIENTS: &str = "/api/v1/clients";

/// Sends a request carrying `request_id` as `X-Request-Id`.
async fn send_with_request_id(
    app: &TestApp,
    method: Method,
    path: &str,
    caller: &Caller,
    body: Option<&Value>,
    request_id: &str,
) -> reqwest::Response {
    let patch = method == Method::PATCH;
    let mut rb = app.request(method, path, Some(caller)).header("x-request-id", request_id);
    if let Some(body) = body {
        let ct = if patch { "application/merge-patch+json" } else { "application/json" };
        rb = rb.header("content-type", ct).body(body.to_string());
    }
    rb.send().await.unwrap()
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn field<'a>(events: &'a [Value], name: &str) -> Vec<&'a str> {
    events.iter().map(|e| e[name].as_str().unwrap_or("")).collect()
}

#[tokio::test]
async fn reading_a_client_writes_exactly_one_client_read_event_naming_caller_and_request() {
    // Arrange
    let app = spawn_app().await;
    let reader = caseworker();
    let client = app.create_client(&caseworker(), &client_body()).await;
    let id = id_of(&client);
    let before = app.audit_events(&format!("client_id={id}")).await;

    // Act
    let res = send_with_request_id(&app, Method::GET, &format!("{CLIENTS}/{id}"), &reader, None, "req-read-0815").await;

    // Assert
    assert_eq!(res.status(), 200);
    let after = app.audit_events(&format!("client_id={id}")).await;
    assert_eq!(after.len(), before.len() + 1, "{after:#?}");
    let event = &after[0]; // newest first
    assert_eq!(event["action"], "client.read");
    assert_eq!(event["actor"], reader.sub.as_str());
    assert_eq!(event["actor_org"], Value::Null);
    // The caller's X-Request-Id is kept beside our own id, never in its place.
    assert_eq!(event["client_request_id"], "req-read-0815");
    assert_ne!(event["request_id"], "req-read-0815");
    assert_eq!(event["resource"], "client");
    assert_eq!(event["resource_id"], client["id"]);
    assert_eq!(event["client_id"], client["id"]);
    assert!(event["at"].as_str().is_some_and(|at| chrono::DateTime::parse_from_rfc3339(at).is_ok()), "{event}");
}

#[tokio::test]
async fn a_job_centres_events_carry_its_org() {
    let app = spawn_app().await;
    let jc = Caller::new("jobcenter").with_org("jc-leipzig");

    let client = app.create_client(&jc, &client_body()).await;

    let events = app.audit_events(&format!("client_id={}", id_of(&client))).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["action"], "client.create");
    assert_eq!(events[0]["actor"], jc.sub.as_str());
    assert_eq!(events[0]["actor_org"], "jc-leipzig");
}

#[tokio::test]
async fn listing_n_clients_writes_n_client_list_events() {
    // Arrange
    let app = spawn_app().await;
    let lister = caseworker();
    let mut created = BTreeSet::new();
    for _ in 0..3 {
        created.insert(id_of(&app.create_client(&caseworker(), &client_body_with(json!({"external_id": null}))).await));
    }

    // Act
    let res = send_with_request_id(&app, Method::GET, CLIENTS, &lister, None, "req-list-1").await;

    // Assert
    assert_eq!(res.status(), 200);
    let events = app.audit_events(&format!("actor={}", lister.sub)).await;
    assert_eq!(field(&events, "action"), ["client.list"; 3]);
    assert_eq!(field(&events, "client_request_id"), ["req-list-1"; 3]);
    let listed: BTreeSet<String> = field(&events, "client_id").into_iter().map(str::to_owned).collect();
    assert_eq!(listed, created);
}

#[tokio::test]
async fn a_list_page_audits_only_the_clients_on_that_page() {
    let app = spawn_app().await;
    let lister = caseworker();
    for _ in 0..3 {
        app.create_client(&caseworker(), &client_body_with(json!({"external_id": null}))).await;
    }

    let res = app.get(&format!("{CLIENTS}?limit=2"), &lister).await;

    let page: Value = res.json().await.unwrap();
    let shown: BTreeSet<String> = page["items"].as_array().unwrap().iter().map(id_of).collect();
    let events = app.audit_events(&format!("actor={}", lister.sub)).await;
    let audited: BTreeSet<String> = field(&events, "client_id").into_iter().map(str::to_owned).collect();
    assert_eq!(events.len(), 2);
    assert_eq!(audited, shown);
}

#[tokio::test]
async fn each_client_operation_writes_exactly_one_event_with_its_action() {
    // Arrange
    let app = spawn_app().await;
    let cw = caseworker();
    let client = app.create_client(&cw, &client_body()).await;
    let one = format!("{CLIENTS}/{}", id_of(&client));
    let consultations = format!("{one}/consultations");
    let patch = json!({"phone": "+49 341 555 0102"});
    let consultation = consultation_body("Lebenslauf überarbeitet.");
    let new_client = client_body_with(json!({"external_id": "JC-NEW"}));
    let operations: [(Method, String, Option<&Value>, &Caller, &str); 8] = [
        (Method::POST, CLIENTS.to_owned(), Some(&new_client), &cw, "client.create"),
        (Method::GET, one.clone(), None, &cw, "client.read"),
        (Method::GET, format!("{CLIENTS}?external_id=JC-4711-0815"), None, &cw, "client.list"),
        (Method::PATCH, one.clone(), Some(&patch), &cw, "client.update"),
        (Method::POST, consultations.clone(), Some(&consultation), &cw, "consultation.create"),
        (Method::GET, consultations.clone(), None, &cw, "consultation.list"),
        (Method::GET, format!("{one}/export"), None, &cw, "client.export"),
        (Method::DELETE, one.clone(), None, &admin(), "client.erase"),
    ];

    // Act + Assert
    let mut failures = Vec::new();
    for (i, (method, path, body, caller, action)) in operations.into_iter().enumerate() {
        let request_id = format!("req-op-{i}");
        let res = send_with_request_id(&app, method.clone(), &path, caller, body, &request_id).await;
        assert!(res.status().is_success(), "{method} {path}: {}", res.status());
        let events: Vec<Value> = app
            .audit_events(&format!("actor={}", caller.sub))
            .await
            .into_iter()
            .filter(|e| e["client_request_id"] == request_id.as_str())
            .collect();
        if field(&events, "action") != [action] {
            failures.push(format!("{method} {path}: expected one {action}, got {:?}", field(&events, "action")));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn reading_providers_and_measures_writes_no_audit_events() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let measure = app.create_measure(&measure_body(&id_of(&provider))).await;
    let before = app.audit_row_count().await;

    // Act
    for caller in [caseworker(), admin(), Caller::new("jobcenter"), Caller::new("provider")] {
        for path in [
            "/api/v1/providers".to_owned(),
            format!("/api/v1/providers/{}", id_of(&provider)),
            "/api/v1/measures".to_owned(),
            format!("/api/v1/measures/{}", id_of(&measure)),
        ] {
            assert_eq!(app.get(&path, &caller).await.status(), 200, "GET {path}");
        }
    }

    // Assert
    assert_eq!(app.audit_row_count().await, before);
}

#[tokio::test]
async fn a_404_read_of_an_invisible_client_writes_no_audit_event() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&Caller::new("jobcenter").with_org("jc-halle"), &client_body()).await;
    let before = app.audit_row_count().await;

    // Act
    let res = app.get(&format!("{CLIENTS}/{}", id_of(&client)), &Caller::new("jobcenter").with_org("jc-leipzig")).await;

    // Assert
    assert_eq!(res.status(), 404);
    assert_eq!(app.audit_row_count().await, before);
}

#[tokio::test]
async fn refused_requests_write_no_audit_event() {
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let one = format!("{CLIENTS}/{}", id_of(&client));
    let before = app.audit_row_count().await;

    let refused = [
        app.get(&one, &Caller::new("provider")).await.status(),
        app.get(&format!("{one}/export"), &Caller::new("jobcenter")).await.status(),
        app.delete(&one, &caseworker()).await.status(),
        app.get(CLIENTS, &Caller::new("analyst")).await.status(),
    ];

    assert!(refused.iter().all(|s| *s == 403), "{refused:?}");
    assert_eq!(app.audit_row_count().await, before);
}

// --- reading the log ---

#[tokio::test]
async fn audit_events_filter_by_client_and_by_actor() {
    // Arrange
    let app = spawn_app().await;
    let (anna, ben) = (caseworker(), caseworker());
    let a = app.create_client(&anna, &client_body_with(json!({"external_id": "A"}))).await;
    let b = app.create_client(&ben, &client_body_with(json!({"external_id": "B"}))).await;
    assert_eq!(app.get(&format!("{CLIENTS}/{}", id_of(&a)), &ben).await.status(), 200);

    // Act
    let of_a = app.audit_events(&format!("client_id={}", id_of(&a))).await;
    let by_ben = app.audit_events(&format!("actor={}", ben.sub)).await;
    let of_a_by_ben = app.audit_events(&format!("client_id={}&actor={}", id_of(&a), ben.sub)).await;

    // Assert
    assert_eq!(field(&of_a, "action"), ["client.read", "client.create"]);
    assert!(of_a.iter().all(|e| e["client_id"] == a["id"]));
    assert_eq!(field(&by_ben, "action"), ["client.read", "client.create"]);
    assert!(by_ben.iter().all(|e| e["actor"] == ben.sub.as_str()));
    assert_eq!(field(&by_ben, "client_id"), [id_of(&a), id_of(&b)]);
    assert_eq!(field(&of_a_by_ben, "action"), ["client.read"]);
}

#[tokio::test]
async fn audit_events_filter_by_time_window() {
    // Arrange: two creates with an instant between them.
    let app = spawn_app().await;
    let cw = caseworker();
    let start = now_rfc3339();
    let first = app.create_client(&cw, &client_body_with(json!({"external_id": "first"}))).await;
    let between = now_rfc3339();
    let second = app.create_client(&cw, &client_body_with(json!({"external_id": "second"}))).await;
    let end = now_rfc3339();
    let actor = format!("actor={}", cw.sub);

    // Act
    let from_start = app.audit_events(&format!("{actor}&from={start}")).await;
    let before_between = app.audit_events(&format!("{actor}&to={between}")).await;
    let from_between = app.audit_events(&format!("{actor}&from={between}&to={end}")).await;
    let after_end = app.audit_events(&format!("{actor}&from={end}")).await;

    // Assert
    assert_eq!(field(&from_start, "client_id"), [id_of(&second), id_of(&first)]);
    assert_eq!(field(&before_between, "client_id"), [id_of(&first)]);
    assert_eq!(field(&from_between, "client_id"), [id_of(&second)]);
    assert!(after_end.is_empty(), "{after_end:#?}");
}

#[tokio::test]
async fn a_malformed_time_filter_is_a_400() {
    let app = spawn_app().await;

    let res = app.get("/api/v1/audit-events?from=yesterday", &admin()).await;

    let problem = assert_problem(res, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["from"]);
}

#[tokio::test]
async fn audit_events_page_newest_first_through_cursors_without_gaps_or_repeats() {
    // Arrange: five events.
    let app = spawn_app().await;
    let cw = caseworker();
    for i in 0..5 {
        app.create_client(&cw, &client_body_with(json!({"external_id": format!("P-{i}")}))).await;
    }
    let all = app.audit_events(&format!("actor={}", cw.sub)).await;

    // Act
    let mut paged = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/audit-events?limit=2&actor={}", cw.sub);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.get(&path, &admin()).await.json().await.unwrap();
        pages += 1;
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }

    // Assert
    assert_eq!(pages, 3);
    assert_eq!(field(&paged, "id"), field(&all, "id"));
    let mut ats = field(&all, "id");
    ats.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(field(&all, "id"), ats, "not newest first");
}

#[tokio::test]
async fn a_tampered_audit_cursor_is_a_400() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_client(&caseworker(), &client_body_with(json!({"external_id": format!("T-{i}")}))).await;
    }
    let page: Value = app.get("/api/v1/audit-events?limit=1", &admin()).await.json().await.unwrap();
    let issued = page["next_cursor"].as_str().unwrap();
    // Another first character changes the position the cursor claims.
    let first = if issued.starts_with('e') { "f" } else { "e" };
    let cursor = format!("{first}{}", &issued[1..]);

    let res = app.get(&format!("/api/v1/audit-events?limit=1&cursor={cursor}"), &admin()).await;

    assert_problem(res, 400, "invalid-cursor").await;
}

#[tokio::test]
async fn only_admins_read_the_audit_log() {
    let app = spawn_app().await;
    let who = |role| Some(Caller::new(role));
    let mut row = Endpoint::new(Method::GET, "/api/v1/audit-events", None);
    for role in ["caseworker", "jobcenter", "provider", "employer", "analyst"] {
        row = row.expect(role, who(role), 403);
    }
    let row = row.expect("admin", who("admin"), 200);

    assert_matrix(&app, &[row]).await;
}
