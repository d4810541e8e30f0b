use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn caseworker_creates_and_reads_a_provider() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = app.post("/api/v1/providers", &caseworker(), &provider_body("Bildungswerk Ost")).await;
    // Assert
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let created: Value = res.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/providers/{}", created["id"].as_str().unwrap()));
    assert_eq!(created["version"], 1);
    let read = app.get(&location, &caseworker()).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["etag"], "\"1\"");
    let read: Value = read.json().await.unwrap();
    assert_eq!(read, created);
}

#[tokio::test]
async fn invalid_provider_fields_are_listed_in_a_422() {
    let app = spawn_app().await;
    let body =
        json!({"name": "  ", "kind": "castle", "district": "99", "contact": {"email": "nope"}, "website": "ftp://x"});
    let res = app.post("/api/v1/providers", &caseworker(), &body).await;
    let problem = assert_problem(res, 422, "validation-failed").await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["name", "kind", "district", "contact.email", "website"] {
        assert!(fields.contains(&f), "{f} missing in {fields:?}");
    }
}
