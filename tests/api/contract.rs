//! The published contract (SPEC §4, STYLE): the committed OpenAPI document
//! is exactly what the service serves, every operation documents itself, and
//! the roles it documents are the roles the server enforces.
use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

const STALE: &str = "openapi/openapi.json is stale: regenerate with `cargo run -- openapi > openapi/openapi.json`";
const COMMITTED: &str = include_str!("../../openapi/openapi.json");
const HTTP_METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Every operation of a document: (path, method, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in HTTP_METHODS {
            if let Some(op) = item.get(method) {
                ops.push((path.clone(), method.to_owned(), op.clone()));
            }
        }
    }
    ops
}

/// The JSON pointer of the first place where `a` and `b` differ, to make a
/// stale-document failure easy to read without dumping both documents.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(v), Some(w)) => {
                    first_difference(v, w, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")))
                }
                _ => Some(format!("{at}/{k} (present on one side only)")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| first_difference(v, w, &format!("{at}/{i}")))
        }
        _ if a == b => None,
        _ => Some(at.to_owned()),
    }
}

/// The document the code builds right now (no server, no database).
fn current_spec() -> Value {
    serde_json::from_str(&ostwerk::openapi::to_pretty_json()).expect("the generated document is JSON")
}

#[tokio::test]
async fn committed_openapi_matches_the_served_one() {
    // Arrange
    let app = spawn_app().await;
    let committed: Value = serde_json::from_str(COMMITTED).expect(STALE);
    // Act
    let res = app.client.get(app.url("/api-docs/openapi.json")).send().await.unwrap();
    // Assert
    assert_eq!(res.status(), 200);
    let served: Value = res.json().await.unwrap();
    if let Some(at) = first_difference(&served, &committed, "") {
        panic!("{STALE} (the served and the committed document first differ at {at})");
    }
    // Byte for byte, so the committed file is exactly what `openapi` prints.
    assert!(ostwerk::openapi::to_pretty_json() == COMMITTED, "{STALE}");
}

#[tokio::test]
async fn every_operation_is_documented() {
    // Arrange
    let spec = current_spec();
    let roles: BTreeSet<&str> = ROLES.into_iter().collect();
    let mut wrong = Vec::new();
    let mut operation_ids = BTreeSet::new();
    let mut public = BTreeSet::new();
    // Act
    for (path, method, op) in operations(&spec) {
        let name = format!("{} {path}", method.to_uppercase());
        let security = op["security"].as_array().cloned().unwrap_or_default();
        if ostwerk::openapi::is_public(&path) {
            // Operator endpoints (and the FHIR `metadata`) are public.
            public.insert(path.clone());
            if security.iter().any(|s| s.get("bearer").is_some()) {
                wrong.push(format!("{name}: public, but requires a bearer token"));
            }
            continue;
        }
        // Assert (collected, so one run lists every gap)
        if op["summary"].as_str().is_none_or(|s| s.trim().is_empty()) {
            wrong.push(format!("{name}: no summary"));
        }
        if op["tags"].as_array().is_none_or(Vec::is_empty) {
            wrong.push(format!("{name}: no tag"));
        }
        match op["operationId"].as_str() {
            Some(id) if !id.is_empty() => {
                if !operation_ids.insert(id.to_owned()) {
                    wrong.push(format!("{name}: operationId {id} is not unique"));
                }
            }
            _ => wrong.push(format!("{name}: no operationId")),
        }
        let scopes: Vec<&str> = security
            .iter()
            .filter_map(|s| s.get("bearer"))
            .flat_map(|s| s.as_array().cloned().unwrap_or_default())
            .map(|r| {
                if let Value::String(r) = r {
                    roles.get(r.as_str()).copied().unwrap_or("<unknown role>")
                } else {
                    "<not a string>"
                }
            })
            .collect();
        if scopes.is_empty() || scopes.iter().any(|s| !roles.contains(s)) {
            wrong.push(format!("{name}: security must be bearer with scopes from {ROLES:?}, is {security:?}"));
        }
        let mut required = vec!["400", "401", "403", "429", "503", "500"];
        if path.contains('{') {
            required.push("404");
        }
        if op.get("requestBody").is_some() {
            required.extend(["422", "415", "413"]);
        }
        if method == "patch" || method == "delete" {
            required.push("412");
        }
        let responses = op["responses"].as_object().cloned().unwrap_or_default();
        if !responses.keys().any(|s| s.starts_with('2')) {
            wrong.push(format!("{name}: no success response"));
        }
        for status in required {
            match responses.get(status) {
                None => wrong.push(format!("{name}: no {status} response")),
                Some(response) => {
                    let response = match response["$ref"].as_str() {
                        Some(r) => spec.pointer(r.trim_start_matches('#')).cloned().unwrap_or(Value::Null),
                        None => response.clone(),
                    };
                    // The FHIR view answers errors as OperationOutcome (`application/fhir+json`).
                    let media =
                        if path.starts_with("/fhir/") { "application/fhir+json" } else { "application/problem+json" };
                    if response["content"].get(media).is_none() {
                        wrong.push(format!("{name}: {status} is not documented as {media}"));
                    }
                }
            }
        }
    }
    // Assert
    assert!(operation_ids.len() >= 6, "the API operations were found: {operation_ids:?}");
    for path in ["/livez", "/healthz", "/readyz", "/metrics"] {
        assert!(public.contains(path), "{path} is not documented: {public:?}");
    }
    let bearer = &spec["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http", "{bearer}");
    assert_eq!(bearer["scheme"], "bearer", "{bearer}");
    assert_eq!(bearer["bearerFormat"], "JWT", "{bearer}");
    let problem = &spec["components"]["schemas"]["ProblemDetails"]["properties"];
    for field in ["type", "title", "status", "detail", "instance"] {
        assert!(problem.get(field).is_some(), "ProblemDetails lacks {field}: {problem}");
    }
    assert!(wrong.is_empty(), "undocumented:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn documented_roles_are_the_enforced_roles() {
    // Arrange: the scopes as the running service publishes them
    let app = spawn_app().await;
    let spec: Value = app.client.get(app.url("/api-docs/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut wrong = Vec::new();
    let mut checked = BTreeSet::new();
    for (path, method, op) in operations(&spec) {
        if !path.starts_with("/api/v1/providers") {
            continue;
        }
        let scopes: Vec<String> = op["security"][0]["bearer"]
            .as_array()
            .map(|s| s.iter().filter_map(|r| r.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let content_type = op["requestBody"]["content"].as_object().and_then(|c| c.keys().next().cloned());
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        checked.insert(id.clone());
        for role in ROLES {
            // A fresh provider per call: deletes must not disturb the next role.
            let target = app.create_provider("Zielträger gGmbH").await["id"].as_str().unwrap().to_owned();
            let caller = caller_acting_for(role, &target);
            let mut request = app.request(
                method.to_uppercase().parse::<Method>().unwrap(),
                &path.replace("{id}", &target),
                Some(&caller),
            );
            if let Some(content_type) = &content_type {
                let body = if method == "post" { provider_body("Neuer Träger") } else { json!({"name": "Umbenannt"}) };
                request = request.header("content-type", content_type.as_str()).body(body.to_string());
            }
            // Act
            let status = request.send().await.unwrap().status();
            // Assert: 403 exactly for the roles the document leaves out, success for the others
            let documented = scopes.iter().any(|s| s == role);
            if documented && !status.is_success() {
                wrong.push(format!("{id} as {role}: documented as allowed, got {status}"));
            }
            if !documented && status != 403 {
                wrong.push(format!("{id} as {role}: not documented, but got {status} instead of 403"));
            }
        }
    }
    let expected: BTreeSet<String> =
        ["list_providers", "get_provider", "create_provider", "update_provider", "delete_provider"]
            .into_iter()
            .map(str::to_owned)
            .collect();
    assert_eq!(checked, expected, "the provider operations of the document");
    assert!(wrong.is_empty(), "documentation and enforcement differ:\n{}", wrong.join("\n"));
}
