//! Error answers (SPEC §1): RFC 9457 problem details for every failure the
//! HTTP layer can name, request ids, and German titles.
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::helpers::*;

const PROVIDERS: &str = "/api/v1/providers";

/// POSTs a raw body to `/api/v1/providers` as a caseworker.
async fn post_raw(app: &TestApp, content_type: &str, body: impl Into<reqwest::Body>) -> Response {
    app.request(Method::POST, PROVIDERS, Some(&caseworker()))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn allow_header(res: &Response) -> Vec<String> {
    let allow = res.headers().get("allow").expect("Allow header").to_str().unwrap();
    allow.split(',').map(|m| m.trim().to_owned()).collect()
}

fn field_errors(problem: &Value) -> Vec<&str> {
    problem["errors"].as_array().map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn unknown_route_is_a_404_problem() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = app.get("/api/v1/no-such-thing", &caseworker()).await;
    // Assert
    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn wrong_method_on_a_code_list_is_405_with_allow() {
    let app = spawn_app().await;

    let res = app.delete("/api/v1/code-lists/districts", &caseworker()).await;

    let allow = allow_header(&res);
    assert!(allow.contains(&"GET".to_owned()), "Allow: {allow:?}");
    assert!(!allow.contains(&"DELETE".to_owned()), "Allow: {allow:?}");
    assert_problem(res, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn put_on_the_provider_collection_is_405_with_allow_listing_get_and_post() {
    let app = spawn_app().await;

    let res = app.request(Method::PUT, PROVIDERS, Some(&caseworker())).json(&json!({})).send().await.unwrap();

    let allow = allow_header(&res);
    assert!(allow.contains(&"GET".to_owned()) && allow.contains(&"POST".to_owned()), "Allow: {allow:?}");
    assert!(!allow.contains(&"PUT".to_owned()), "Allow: {allow:?}");
    assert_problem(res, 405, "method-not-allowed").await;
}

#[tokio::test]
async fn body_larger_than_1_mib_is_413() {
    let app = spawn_app().await;
    let mut body = provider_body("Groß");
    body["name"] = json!("x".repeat(1024 * 1024 + 1));

    let res = post_raw(&app, "application/json", body.to_string()).await;

    assert_problem(res, 413, "payload-too-large").await;
}

#[tokio::test]
async fn text_plain_body_is_415() {
    let app = spawn_app().await;

    let res = post_raw(&app, "text/plain", provider_body("Text").to_string()).await;

    assert_problem(res, 415, "unsupported-media-type").await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = spawn_app().await;

    let res = post_raw(&app, "application/json", r#"{"name": "Bildungswerk", "#).await;

    assert_problem(res, 400, "bad-request").await;
}

#[tokio::test]
async fn wrong_json_type_is_400_naming_the_field() {
    let app = spawn_app().await;
    let mut body = provider_body("Typfehler");
    body["azav_certified"] = json!("yes");

    let res = app.post(PROVIDERS, &caseworker(), &body).await;

    let problem = assert_problem(res, 400, "bad-request").await;
    assert_eq!(problem["errors"][0]["field"], "azav_certified", "{problem}");
}

#[tokio::test]
async fn unknown_json_field_is_400_naming_it() {
    let app = spawn_app().await;
    let mut body = provider_body("Tippfehler");
    body["azav_certifed"] = json!(true);

    let res = app.post(PROVIDERS, &caseworker(), &body).await;

    let problem = assert_problem(res, 400, "bad-request").await;
    assert!(problem.to_string().contains("azav_certifed"), "{problem}");
}

#[tokio::test]
async fn nul_character_in_a_body_string_is_400() {
    let app = spawn_app().await;
    let body = provider_body("Bildungs\u{0}werk");

    let res = app.post(PROVIDERS, &caseworker(), &body).await;

    let problem = assert_problem(res, 400, "bad-request").await;
    assert_eq!(field_errors(&problem), ["name"]);
}

#[tokio::test]
async fn nul_character_in_a_merge_patch_is_400() {
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let path = format!("{PROVIDERS}/{}", provider["id"].as_str().unwrap());

    let res = app.patch(&path, &caseworker(), &json!({"contact": {"name": "Petra\u{0}"}})).await;

    assert_problem(res, 400, "bad-request").await;
}

#[tokio::test]
async fn nul_character_in_a_query_parameter_is_400() {
    let app = spawn_app().await;

    let res = app.get(&format!("{PROVIDERS}?q=Bildung%00swerk"), &caseworker()).await;

    assert_problem(res, 400, "bad-request").await;
}

#[tokio::test]
async fn malformed_uuid_in_the_path_is_400() {
    let app = spawn_app().await;

    let res = app.get(&format!("{PROVIDERS}/not-a-uuid"), &caseworker()).await;

    assert_problem(res, 400, "bad-request").await;
}

#[tokio::test]
async fn non_numeric_limit_is_400() {
    let app = spawn_app().await;

    let res = app.get(&format!("{PROVIDERS}?limit=abc"), &caseworker()).await;

    assert_problem(res, 400, "bad-request").await;
}

#[tokio::test]
async fn incoming_request_id_is_echoed_and_named_in_the_problem() {
    let app = spawn_app().await;

    let res = app
        .request(Method::GET, "/api/v1/no-such-thing", Some(&caseworker()))
        .header("x-request-id", "my-trace-123")
        .send()
        .await
        .unwrap();

    assert_eq!(res.headers()["x-request-id"], "my-trace-123");
    let problem = assert_problem(res, 404, "not-found").await;
    assert_eq!(problem["request_id"], "my-trace-123");
    assert!(problem["instance"].as_str().unwrap().ends_with("my-trace-123"), "{problem}");
}

#[tokio::test]
async fn request_id_is_generated_and_echoed_when_none_is_sent() {
    let app = spawn_app().await;

    let res = app.get("/api/v1/no-such-thing", &caseworker()).await;

    let echoed = res.headers().get("x-request-id").expect("X-Request-Id").to_str().unwrap().to_owned();
    assert!(!echoed.is_empty());
    let problem = assert_problem(res, 404, "not-found").await;
    assert_eq!(problem["request_id"], echoed.as_str());
    assert!(problem["instance"].as_str().unwrap().ends_with(&echoed), "{problem}");
}

#[tokio::test]
async fn request_id_is_echoed_on_success_too() {
    let app = spawn_app().await;

    let res = app
        .request(Method::GET, PROVIDERS, Some(&caseworker()))
        .header("x-request-id", "my-trace-123")
        .send()
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "my-trace-123");
}

async fn not_found_title(app: &TestApp, language: &str) -> String {
    let res = app
        .request(Method::GET, "/api/v1/no-such-thing", Some(&caseworker()))
        .header("accept-language", language)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(res, 404, "not-found").await;
    problem["title"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn problem_title_is_german_when_german_is_preferred() {
    let app = spawn_app().await;

    let title = not_found_title(&app, "de-DE,de;q=0.9,en;q=0.5").await;

    assert_eq!(title, "Nicht gefunden");
}

#[tokio::test]
async fn problem_title_is_english_when_english_is_preferred() {
    let app = spawn_app().await;

    let title = not_found_title(&app, "en").await;

    assert_eq!(title, "Not found");
}

/// One request per kind of failure the HTTP layer produces.
async fn assorted_error_responses(app: &TestApp) -> Vec<Response> {
    let cw = caseworker();
    let mut wrong_type = provider_body("Typ");
    wrong_type["azav_certified"] = json!("yes");
    let mut invalid = provider_body("Ungültig");
    invalid["kind"] = json!("castle");
    let nobody = Caller::new("analyst");
    vec![
        app.get("/api/v1/no-such-thing", &cw).await,
        app.delete("/api/v1/code-lists/districts", &cw).await,
        app.client.get(app.url(PROVIDERS)).send().await.unwrap(),
        app.get(PROVIDERS, &nobody).await,
        app.get(&format!("{PROVIDERS}/{}", uuid::Uuid::now_v7()), &cw).await,
        app.get(&format!("{PROVIDERS}/not-a-uuid"), &cw).await,
        app.get(&format!("{PROVIDERS}?limit=abc"), &cw).await,
        app.get(&format!("{PROVIDERS}?limit=1000"), &cw).await,
        app.get(&format!("{PROVIDERS}?cursor=tampered"), &cw).await,
        app.get(&format!("{PROVIDERS}?q=%00"), &cw).await,
        post_raw(app, "text/plain", "hello").await,
        post_raw(app, "application/json", "{nope").await,
        post_raw(app, "application/json", "").await,
        app.post(PROVIDERS, &cw, &wrong_type).await,
        app.post(PROVIDERS, &cw, &invalid).await,
        app.post(PROVIDERS, &cw, &provider_body("NUL\u{0}")).await,
    ]
}

#[tokio::test]
async fn every_problem_body_has_the_rfc_9457_members() {
    let app = spawn_app().await;

    let responses = assorted_error_responses(&app).await;

    for res in responses {
        let status = res.status().as_u16();
        assert!(status >= 400, "expected an error, got {status} for {}", res.url());
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("application/problem+json"), "{status}: content-type {ct}");
        let body: Value = res.json().await.unwrap();
        for member in ["type", "title", "detail", "instance"] {
            assert!(body[member].as_str().is_some_and(|v| !v.is_empty()), "{member} missing in {body}");
        }
        assert_eq!(body["status"], status, "{body}");
    }
}

#[tokio::test]
async fn no_problem_body_leaks_sql_panics_or_source_paths() {
    let app = spawn_app().await;

    let responses = assorted_error_responses(&app).await;

    for res in responses {
        let status = res.status().as_u16();
        assert_ne!(status, 500, "a nameable condition answered 500: {}", res.url());
        let body = res.text().await.unwrap();
        for leak in ["SELECT", "sqlx", "panicked", "src/", ".rs:", "/home/", "/root/", "/work/"] {
            assert!(!body.contains(leak), "{status} body contains {leak:?}: {body}");
        }
    }
}

#[tokio::test]
async fn head_is_answered_like_get_without_a_body() {
    let app = spawn_app().await;
    let res = app.request(reqwest::Method::HEAD, "/api/v1/providers", Some(&caseworker())).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.unwrap().is_empty());
    let res = app.client.head(app.url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
