//! HTTP semantics caches and generated clients rely on: conditional reads
//! (`If-None-Match` → `304`), the strong `If-Match` comparison, and the
//! `RateLimit-Policy` / `RateLimit` fields on every answer that spent a budget.
use ostwerk::config::Settings;
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::{
    Options, admin, assert_problem, caseworker, client_body, id_of, measure_body, spawn_app, spawn_app_with,
};

/// A `GET` with `If-None-Match: <value>` as a caseworker.
async fn get_if_none_match(app: &crate::helpers::TestApp, path: &str, value: &str) -> Response {
    app.request(Method::GET, path, Some(&caseworker())).header("If-None-Match", value).send().await.unwrap()
}

async fn patch_if_match(app: &crate::helpers::TestApp, path: &str, value: &str, body: &Value) -> Response {
    app.request(Method::PATCH, path, Some(&caseworker()))
        .header("content-type", "application/merge-patch+json")
        .header("If-Match", value)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

async fn assert_not_modified(res: Response, etag: &str) {
    assert_eq!(res.status(), 304);
    assert_eq!(res.headers()["etag"], etag);
    assert!(res.headers().get("content-type").is_none());
    assert!(res.bytes().await.unwrap().is_empty(), "a 304 has no body");
}

#[tokio::test]
async fn if_none_match_answers_304_for_the_current_etag_and_200_once_it_is_stale() {
    // Arrange
    let app = spawn_app().await;
    let measure = app.create_measure(&measure_body(&id_of(&app.create_provider("Bildungswerk Ost").await))).await;
    let path = format!("/api/v1/measures/{}", id_of(&measure));

    // Act
    let current = get_if_none_match(&app, &path, "\"1\"").await;
    assert_eq!(app.patch(&path, &caseworker(), &json!({"capacity": 20})).await.status(), 200);
    let stale = get_if_none_match(&app, &path, "\"1\"").await;

    // Assert
    assert_not_modified(current, "\"1\"").await;
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.headers()["etag"], "\"2\"");
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["capacity"], 20);
}

#[tokio::test]
async fn if_none_match_star_list_and_weak_tag_all_match_the_current_version() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let path = format!("/api/v1/providers/{}", id_of(&provider));

    // Act
    let star = get_if_none_match(&app, &path, "*").await;
    let list = get_if_none_match(&app, &path, "\"7\", \"1\"").await;
    let weak = get_if_none_match(&app, &path, "W/\"1\"").await;
    let list_without_etag = get_if_none_match(&app, "/api/v1/providers", "*").await;

    // Assert
    assert_not_modified(star, "\"1\"").await;
    assert_not_modified(list, "\"1\"").await;
    assert_not_modified(weak, "\"1\"").await;
    assert_eq!(list_without_etag.status(), 200, "a read without an ETag has nothing to compare");
}

#[tokio::test]
async fn not_modified_read_of_a_client_is_still_audited() {
    // Arrange
    let app = spawn_app().await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let client_id = id_of(&client);
    let reads_before = client_reads(&app, &client_id).await;

    // Act
    let res = get_if_none_match(&app, &format!("/api/v1/clients/{client_id}"), "\"1\"").await;

    // Assert
    assert_not_modified(res, "\"1\"").await;
    assert_eq!(client_reads(&app, &client_id).await, reads_before + 1, "the read happened, so it is audited");
}

async fn client_reads(app: &crate::helpers::TestApp, client_id: &str) -> usize {
    app.audit_events(&format!("client_id={client_id}")).await.iter().filter(|e| e["action"] == "client.read").count()
}

#[tokio::test]
async fn if_match_with_a_weak_tag_of_the_current_version_is_412() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let path = format!("/api/v1/providers/{}", id_of(&provider));

    // Act
    let res = patch_if_match(&app, &path, "W/\"1\"", &json!({"name": "Bildungswerk Nordost"})).await;

    // Assert
    let problem = assert_problem(res, 412, "precondition-failed").await;
    assert_eq!(problem["current_etag"], "\"1\"");
    let unchanged: Value = app.get(&path, &caseworker()).await.json().await.unwrap();
    assert_eq!(unchanged["name"], "Bildungswerk Ost");
}

#[tokio::test]
async fn if_match_list_matches_only_through_a_strong_tag_and_star_matches_any() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let path = format!("/api/v1/providers/{}", id_of(&provider));

    // Act
    let weak_only = patch_if_match(&app, &path, "\"9\", W/\"1\"", &json!({"name": "Null"})).await;
    let listed = patch_if_match(&app, &path, "\"9\", W/\"1\", \"1\"", &json!({"name": "Eins"})).await;
    let star = patch_if_match(&app, &path, "*", &json!({"name": "Zwei"})).await;

    // Assert
    assert_problem(weak_only, 412, "precondition-failed").await;
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["etag"], "\"2\"");
    assert_eq!(star.status(), 200);
    assert_eq!(star.headers()["etag"], "\"3\"");
}

fn header<'a>(res: &'a Response, name: &str) -> &'a str {
    res.headers().get(name).unwrap_or_else(|| panic!("{name} missing")).to_str().unwrap()
}

#[tokio::test]
async fn authenticated_answers_carry_ratelimit_fields_counting_down_to_429() {
    // Arrange
    let app = spawn_app_with(Options { rate_limit: 3, ..Default::default() }).await;
    let caller = admin();

    // Act
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(app.get("/api/v1/providers", &caller).await);
    }

    // Assert
    for res in &answers {
        assert_eq!(header(res, "ratelimit-policy"), "\"default\";q=3;w=60");
    }
    let states: Vec<_> = answers.iter().map(|r| header(r, "ratelimit").to_owned()).collect();
    assert!(states[0].starts_with("\"default\";r=2;t="), "{states:?}");
    assert!(states[1].starts_with("\"default\";r=1;t="), "{states:?}");
    assert!(states[2].starts_with("\"default\";r=0;t="), "{states:?}");
    assert!(states[3].starts_with("\"default\";r=0;t="), "{states:?}");
    let reset: u64 = states[3].rsplit("t=").next().unwrap().parse().unwrap();
    assert!((1..=60).contains(&reset), "{reset}");
    assert_eq!(answers[3].status(), 429);
    assert!(answers[3].headers().contains_key("retry-after"));
}

#[tokio::test]
async fn error_answers_to_an_authenticated_caller_carry_ratelimit_fields() {
    // Arrange
    let app = spawn_app_with(Options { rate_limit: 100, ..Default::default() }).await;

    // Act
    let res = app.get(&format!("/api/v1/providers/{}", uuid::Uuid::now_v7()), &admin()).await;

    // Assert
    assert_eq!(res.status(), 404);
    assert_eq!(header(&res, "ratelimit-policy"), "\"default\";q=100;w=60");
    assert!(header(&res, "ratelimit").starts_with("\"default\";r=99;t="));
}

#[tokio::test]
async fn anonymous_answers_carry_the_address_budget_including_429() {
    // Arrange
    let app = spawn_app_with(Options {
        configure: Some(Box::new(|s: &mut Settings| s.rate_limit_anon = 2)),
        ..Default::default()
    })
    .await;

    // Act
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(app.request(Method::GET, "/api/v1/providers", None).send().await.unwrap());
    }

    // Assert
    assert_eq!(answers[0].status(), 401);
    assert_eq!(header(&answers[0], "ratelimit-policy"), "\"anonymous\";q=2;w=60");
    assert!(header(&answers[0], "ratelimit").starts_with("\"anonymous\";r=1;t="));
    assert_eq!(answers[2].status(), 429);
    assert_eq!(header(&answers[2], "ratelimit-policy"), "\"anonymous\";q=2;w=60");
    assert!(header(&answers[2], "ratelimit").starts_with("\"anonymous\";r=0;t="));
}

#[tokio::test]
async fn spec_declares_304_and_if_none_match_on_every_read_with_an_etag() {
    // Arrange
    let spec = ostwerk::openapi::build();
    let spec: Value = serde_json::to_value(&spec).unwrap();

    // Act
    let mut reads = Vec::new();
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let Some(get) = item.get("get") else { continue };
        if get["responses"]["200"]["headers"].get("ETag").is_none() {
            continue;
        }
        reads.push(path.clone());
        let has_param = get["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == "If-None-Match"));
        if !has_param || get["responses"].get("304").is_none() {
            missing.push(path.clone());
        }
    }

    // Assert
    assert!(reads.iter().any(|p| p == "/api/v1/clients/{id}"), "{reads:?}");
    assert!(missing.is_empty(), "reads with an ETag but no 304: {missing:?}");
}

#[tokio::test]
async fn spec_declares_ratelimit_headers_on_every_response_of_every_limited_operation() {
    // Arrange
    let spec: Value = serde_json::to_value(ostwerk::openapi::build()).unwrap();
    let components = &spec["components"];

    // Act
    let mut missing = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if matches!(path.as_str(), "/livez" | "/healthz" | "/readyz") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let response = match response["$ref"].as_str() {
                    Some(r) => &components["responses"][r.rsplit('/').next().unwrap()],
                    None => response,
                };
                for name in ["RateLimit", "RateLimit-Policy"] {
                    if response["headers"][name]["$ref"] != format!("#/components/headers/{name}") {
                        missing.push(format!("{method} {path} {status} {name}"));
                    }
                }
            }
        }
    }

    // Assert
    assert!(components["headers"]["RateLimit"].is_object());
    assert!(missing.is_empty(), "undeclared: {missing:?}");
}
