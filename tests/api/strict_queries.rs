//! Strict query parameters (issue 15.5–15.7): unknown parameters are refused
//! by name, timestamps take the ISO 8601 offsets generators send, and a
//! cursor only works on the list and filters it was issued for.
use serde_json::{Value, json};

use crate::helpers::*;

async fn served_spec(app: &TestApp) -> Value {
    app.client.get(app.url("/api-docs/openapi.json")).send().await.unwrap().json().await.unwrap()
}

async fn json_of(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn misspelt_filter_is_400_naming_the_unknown_parameter() {
    // Arrange: `updated_since` used to be ignored, answering the unfiltered list.
    let app = spawn_app().await;
    // Act
    let res = app.get("/api/v1/referrals?updated_since=2026-01-01T00:00:00Z", &admin()).await;
    // Assert
    let problem = assert_problem(res, 400, "bad-request").await;
    assert!(problem["detail"].as_str().unwrap().contains("unknown query parameter updated_since"), "{problem}");
    assert_eq!(error_fields(&problem), ["updated_since"]);
}

#[tokio::test]
async fn every_api_operation_refuses_an_unknown_query_parameter() {
    // Arrange: every documented operation under /api/v1, with its path
    // parameters filled in (the check runs before routing to a resource).
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let some_id = "0193a5b0-7c1e-7d2a-9f3b-2c4d5e6f7a8b";
    let mut checked = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        if !template.starts_with("/api/v1") {
            continue;
        }
        let path =
            template.split('/').map(|s| if s.starts_with('{') { some_id } else { s }).collect::<Vec<_>>().join("/");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            // Act
            let res = app
                .request(method.to_uppercase().parse().unwrap(), &format!("{path}?misspelt_filter=1"), Some(&admin()))
                .send()
                .await
                .unwrap();
            // Assert
            let problem = assert_problem(res, 400, "bad-request").await;
            assert_eq!(error_fields(&problem), ["misspelt_filter"], "{method} {template}");
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} operations checked");
}

#[tokio::test]
async fn docs_metrics_and_health_checks_ignore_query_parameters() {
    // Arrange: probes and scrapers are configured by operators, some add a
    // cache-busting parameter; they must keep working.
    let app = spawn_app().await;
    for path in ["/livez?ts=1", "/healthz?ts=1", "/readyz?ts=1", "/api-docs/openapi.json?v=2", "/docs/?url=x"] {
        // Act
        let res = app.client.get(app.url(path)).send().await.unwrap();
        // Assert
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }
}

#[tokio::test]
async fn timestamps_take_iso_8601_offsets_with_and_without_colon() {
    // Arrange: openapi-generator sends `+0000`, which answered 400.
    let app = spawn_app().await;
    let values = [
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00%2B00:00",
        "2026-01-01T00:00:00%2B0000",
        "2026-01-01T01:00:00.123456%2B0100",
        "2026-01-01T00:00:00.5-0130",
    ];
    for value in values {
        // Act
        let referrals = app.get(&format!("/api/v1/referrals?updated_after={value}"), &admin()).await;
        let stats = app.get(&format!("/api/v1/statistics/outcomes?from={value}"), &admin()).await;
        let audit = app.get(&format!("/api/v1/audit-events?from={value}"), &admin()).await;
        // Assert
        assert_eq!(referrals.status(), 200, "updated_after={value}");
        assert_eq!(stats.status(), 200, "from={value}");
        assert_eq!(audit.status(), 200, "audit from={value}");
    }
}

#[tokio::test]
async fn body_timestamps_take_offsets_without_colon_and_are_stored_in_utc() {
    // Arrange
    let app = spawn_app().await;
    let consent =
        json!({"data_processing": true, "share_with_providers": false, "given_at": "2026-11-02T11:00:00.250+0100"});
    // Act
    let client = app.create_client(&caseworker(), &client_body_with(json!({"consent": consent}))).await;
    // Assert
    assert_eq!(client["consent"]["given_at"], "2026-11-02T10:00:00.250Z");
}

#[tokio::test]
async fn timestamp_without_an_offset_is_400_saying_so() {
    // Arrange: a local time names no instant; guessing UTC would shift it.
    let app = spawn_app().await;
    // Act
    let query = app.get("/api/v1/referrals?updated_after=2026-01-01T00:00:00", &admin()).await;
    let body = app
        .post(
            "/api/v1/clients",
            &caseworker(),
            &client_body_with(json!({"consent": {"data_processing": true, "given_at": "2026-11-02T10:00:00"}})),
        )
        .await;
    // Assert
    let problem = assert_problem(query, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["updated_after"]);
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("no UTC offset"), "{problem}");
    let problem = assert_problem(body, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["consent.given_at"]);
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("no UTC offset"), "{problem}");
}

/// Three clients in district 21; the first page (`limit=1`) of `query`.
async fn first_page(app: &TestApp, query: &str) -> Value {
    for n in 0..3 {
        app.create_client(&caseworker(), &client_body_with(json!({"external_id": format!("JC-{n}")}))).await;
    }
    json_of(app.get(&format!("/api/v1/clients?{query}"), &admin()).await).await
}

#[tokio::test]
async fn clients_cursor_on_providers_is_invalid_cursor() {
    // Arrange
    let app = spawn_app().await;
    let page = first_page(&app, "limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    app.create_provider("Bildungswerk Ost").await;
    // Act
    let res = app.get(&format!("/api/v1/providers?cursor={cursor}"), &admin()).await;
    // Assert
    assert_problem(res, 400, "invalid-cursor").await;
}

#[tokio::test]
async fn cursor_with_a_changed_filter_is_invalid_cursor() {
    // Arrange
    let app = spawn_app().await;
    let page = first_page(&app, "limit=1&district=21").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    for changed in ["district=22", "status=active", "district=21&status=active", "district=21&sort=-created_at", ""] {
        // Act
        let res = app.get(&format!("/api/v1/clients?limit=1&{changed}&cursor={cursor}"), &admin()).await;
        // Assert
        assert_problem(res, 400, "invalid-cursor").await;
    }
}

#[tokio::test]
async fn cursor_on_the_same_list_and_filters_pages_on() {
    // Arrange
    let app = spawn_app().await;
    let first = first_page(&app, "district=21&limit=1").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    // Act: same filters in another order, another page size.
    let rest = json_of(app.get(&format!("/api/v1/clients?limit=5&cursor={cursor}&district=21"), &admin()).await).await;
    // Assert
    let ids: Vec<&Value> = first["items"].as_array().unwrap().iter().chain(rest["items"].as_array().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert_ne!(ids[0]["id"], ids[1]["id"]);
    assert!(rest["next_cursor"].is_null());
}

#[tokio::test]
async fn every_query_string_declares_a_bound_and_a_longer_value_is_400() {
    // Arrange: OWASP API4 string-limit on input — every string query
    // parameter declares maxLength, enum or const (resolving `$ref`s).
    let app = spawn_app().await;
    let spec = served_spec(&app).await;
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => spec["components"]["schemas"][r.rsplit('/').next().unwrap()].clone(),
            None => schema.clone(),
        }
    };
    let mut strings = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for param in op["parameters"].as_array().into_iter().flatten() {
                if param["in"] != "query" {
                    continue;
                }
                let schema = resolve(&param["schema"]);
                let branches = schema["anyOf"].as_array().cloned().unwrap_or_else(|| vec![schema.clone()]);
                for branch in branches {
                    if branch["type"] != "string" {
                        continue;
                    }
                    strings += 1;
                    let bounded = ["maxLength", "enum", "const"].iter().any(|k| branch.get(*k).is_some());
                    assert!(bounded, "{method} {template} ?{} declares no bound: {branch}", param["name"]);
                }
            }
        }
    }
    assert!(strings > 50, "only {strings} string query parameters found");

    // Act: one past the declared bounds (cursor 512, district 8).
    let long_cursor = app.get(&format!("/api/v1/clients?cursor={}", "a".repeat(513)), &admin()).await;
    let long_district = app.get("/api/v1/clients?district=123456789", &admin()).await;

    // Assert: refused at the edge, naming the parameter.
    let problem = assert_problem(long_cursor, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["cursor"]);
    let problem = assert_problem(long_district, 400, "bad-request").await;
    assert_eq!(error_fields(&problem), ["district"]);
}
