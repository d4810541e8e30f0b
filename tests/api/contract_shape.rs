//! The shape of the contract for generated clients (issue 15): partial
//! PATCH bodies, the webhook payloads in the spec's `webhooks`, every header
//! and problem member the server sends declared, and shapes a generator can
//! decide (discriminators, `$ref`'d list items, a `servers` entry). Real
//! answers and real deliveries are checked against the committed document
//! with a small JSON Schema checker (the keywords this document uses).
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::helpers::*;

const SPEC: &str = include_str!("../../openapi/openapi.json");

fn spec() -> Value {
    serde_json::from_str(SPEC).unwrap()
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(spec: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(spec, spec.pointer(r.trim_start_matches('#')).unwrap_or(&Value::Null)),
        None => node,
    }
}

/// Whether `value` matches a `pattern` of the simple forms this document
/// uses (`^literal`, `^literal$`, `^(a|b)$`); other patterns are not judged.
fn matches_simple_pattern(pattern: &str, value: &str) -> bool {
    let Some(rest) = pattern.strip_prefix('^') else { return true };
    let (body, anchored) = match rest.strip_suffix('$') {
        Some(b) => (b, true),
        None => (rest, false),
    };
    if let Some(alts) = body.strip_prefix('(').and_then(|b| b.strip_suffix(')')) {
        return !anchored || alts.split('|').any(|a| a == value);
    }
    if body.chars().any(|c| "[](){}*+?.\\|".contains(c)) {
        return true;
    }
    if anchored { value == body } else { value.starts_with(body) }
}

/// Checks `value` against `schema`, pushing one line per violation.
fn check(spec: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        if let (Some(property), Some(mapping)) =
            (schema["discriminator"]["propertyName"].as_str(), schema["discriminator"]["mapping"].as_object())
        {
            match value[property].as_str().and_then(|d| mapping.get(d)) {
                Some(target) => check(spec, &json!({"$ref": target}), value, at, out),
                None => out.push(format!("{at}: discriminator `{property}` = {} is not mapped", value[property])),
            }
        } else {
            let matching = variants
                .iter()
                .filter(|v| {
                    let mut errs = Vec::new();
                    check(spec, v, value, at, &mut errs);
                    errs.is_empty()
                })
                .count();
            if matching != 1 {
                out.push(format!("{at}: {matching} oneOf variants match {value}"));
            }
        }
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        check(spec, part, value, at, out);
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            t => t.as_str().into_iter().collect(),
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            out.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {values:?}"));
    }
    if let Some(s) = value.as_str() {
        match schema["format"].as_str() {
            Some("uuid") if uuid::Uuid::parse_str(s).is_err() => out.push(format!("{at}: {s} is not a UUID")),
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                out.push(format!("{at}: {s} is not an RFC 3339 date-time"))
            }
            _ => {}
        }
        if let Some(p) = schema["pattern"].as_str()
            && !matches_simple_pattern(p, s)
        {
            out.push(format!("{at}: {s} does not match {p}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                out.push(format!("{at}: required member `{name}` is missing"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (name, member) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(s) => check(spec, s, member, &format!("{at}.{name}"), out),
                None if schema["additionalProperties"] == json!(false) => {
                    out.push(format!("{at}: member `{name}` is not declared"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(spec, items, item, &format!("{at}[{i}]"), out);
        }
    }
}

fn violations(spec: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(spec, schema, value, "$", &mut out);
    out
}

/// Every operation: (path, method, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn patch_bodies_are_merge_patch_schemas_with_nothing_required() {
    // Arrange
    let spec = spec();
    // The FHIR view's PATCH takes FHIR's patch formats (tests/api/fhir.rs).
    let patches: Vec<_> =
        operations(&spec).into_iter().filter(|(p, m, _)| m == "patch" && !p.starts_with("/fhir/")).collect();
    assert!(patches.len() >= 8, "{patches:?}");
    for (path, _, op) in patches {
        // Act
        let content = op["requestBody"]["content"].as_object().unwrap();
        let reference = content["application/merge-patch+json"]["schema"]["$ref"].as_str().unwrap_or_default();
        let schema = resolve(&spec, &content["application/merge-patch+json"]["schema"]);
        // Assert
        assert!(reference.ends_with("Patch"), "PATCH {path} body is {reference}");
        assert_eq!(content.len(), 1, "PATCH {path}: one declared media type");
        assert!(schema.get("required").is_none(), "PATCH {path}: {reference} requires members");
        assert!(schema["properties"].as_object().is_some_and(|p| !p.is_empty()), "PATCH {path}");
    }
}

#[tokio::test]
async fn a_one_member_merge_patch_fits_the_schema_and_changes_only_that_member() {
    // Arrange
    let spec = spec();
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let measure = app.create_measure(&measure_body(&id_of(&provider))).await;
    let patch = json!({"capacity": 9});
    let body_schema = &spec["paths"]["/api/v1/measures/{id}"]["patch"]["requestBody"]["content"]["application/merge-patch+json"]
        ["schema"];
    assert_eq!(violations(&spec, body_schema, &patch), Vec::<String>::new());
    // Act
    let res = app.patch(&format!("/api/v1/measures/{}", id_of(&measure)), &caseworker(), &patch).await;
    // Assert
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["capacity"], 9);
    assert_eq!(changed["title"], measure["title"]);
    // `null` on an optional member removes it, also as plain `application/json`.
    let res = app
        .request(reqwest::Method::PATCH, &format!("/api/v1/measures/{}", id_of(&measure)), Some(&caseworker()))
        .json(&json!({"description": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["description"], Value::Null);
    assert_eq!(changed["capacity"], 9);
}

#[test]
fn every_response_declares_the_headers_the_server_sends() {
    // Arrange
    let spec = spec();
    let mut missing = Vec::new();
    // Act
    for (path, method, op) in operations(&spec) {
        let idempotent =
            op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["in"] == "header" && param["schema"]["type"] != "string" {
                missing.push(format!("{method} {path}: header {} is not a plain string", param["name"]));
            }
        }
        for (status, response) in op["responses"].as_object().unwrap() {
            let headers = &resolve(&spec, response)["headers"];
            let mut need = vec!["X-Request-Id"];
            if status == "429" || status == "503" {
                need.push("Retry-After");
            }
            if status == "201" {
                need.extend(["Location", "ETag"]);
            }
            if idempotent && status.starts_with('2') {
                need.push("Idempotent-Replayed");
            }
            for name in need {
                if headers.get(name).is_none() {
                    missing.push(format!("{method} {path} {status}: {name}"));
                }
            }
        }
    }
    // Assert
    assert_eq!(missing, Vec::<String>::new());
}

#[tokio::test]
async fn a_replayed_create_answers_with_exactly_the_declared_headers() {
    // Arrange
    let spec = spec();
    let app = spawn_app().await;
    let staff = caseworker();
    let send = || {
        app.request(reqwest::Method::POST, "/api/v1/providers", Some(&staff))
            .header("Idempotency-Key", "shape-1")
            .json(&provider_body("Träger Nord"))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // Act
    let replay = send().await.unwrap();
    // Assert
    assert_eq!(replay.status(), 201, "{:?}", replay.headers());
    let declared = &spec["paths"]["/api/v1/providers"]["post"]["responses"]["201"]["headers"];
    for name in ["Location", "ETag", "Idempotent-Replayed", "X-Request-Id"] {
        assert!(replay.headers().get(name).is_some(), "{name} not sent");
        assert!(declared.get(name).is_some(), "{name} not declared");
    }
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body, first);
    let schema =
        &spec["paths"]["/api/v1/providers"]["post"]["responses"]["201"]["content"]["application/json"]["schema"];
    assert_eq!(violations(&spec, schema, &body), Vec::<String>::new());
}

/// The extension member names the source passes to `with_extension`.
fn extension_names_in(dir: &std::path::Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            extension_names_in(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("with_extension(\"").skip(1) {
                if let Some(name) = piece.split('"').next() {
                    out.push(name.to_owned());
                }
            }
        }
    }
}

#[test]
fn every_problem_extension_member_the_source_sends_is_declared() {
    // Arrange
    let spec = spec();
    let mut names = Vec::new();
    extension_names_in(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut names);
    assert!(names.len() >= 5, "{names:?}");
    // Act
    let declared = spec["components"]["schemas"]["ProblemDetails"]["properties"].as_object().unwrap();
    let undeclared: Vec<_> = names.iter().filter(|n| !declared.contains_key(n.as_str())).collect();
    // Assert
    assert_eq!(undeclared, Vec::<&String>::new());
}

#[tokio::test]
async fn a_stale_if_match_problem_fits_the_declared_problem_schema() {
    // Arrange
    let spec = spec();
    let app = spawn_app().await;
    let provider = app.create_provider("Träger Süd").await;
    // Act
    let res = app
        .request(reqwest::Method::PATCH, &format!("/api/v1/providers/{}", id_of(&provider)), Some(&caseworker()))
        .header("If-Match", "\"99\"")
        .header("content-type", "application/merge-patch+json")
        .body(json!({"name": "Träger Süd-West"}).to_string())
        .send()
        .await
        .unwrap();
    // Assert
    assert_eq!(res.status(), 412);
    assert!(res.headers().get("x-request-id").is_some());
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["current_etag"], "\"1\"");
    let schema = json!({"$ref": "#/components/schemas/ProblemDetails"});
    assert_eq!(violations(&spec, &schema, &problem), Vec::<String>::new());
    let declared = spec["components"]["schemas"]["ProblemDetails"]["properties"].as_object().unwrap();
    let undeclared: Vec<_> = problem.as_object().unwrap().keys().filter(|k| !declared.contains_key(*k)).collect();
    assert_eq!(undeclared, Vec::<&String>::new());
}

#[tokio::test]
async fn employer_records_tell_full_and_public_views_apart_by_their_discriminator() {
    // Arrange
    let spec = spec();
    let app = spawn_app().await;
    app.create_employer("Bäckerei Ost").await;
    let list_schema =
        &spec["paths"]["/api/v1/employers"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    // Act
    let full: Value = app.get("/api/v1/employers", &caseworker()).await.json().await.unwrap();
    let public: Value = app.get("/api/v1/employers", &Caller::new("jobcenter")).await.json().await.unwrap();
    // Assert
    assert_eq!(full["items"][0]["view"], "full");
    assert_eq!(public["items"][0]["view"], "public");
    assert_eq!(violations(&spec, list_schema, &full), Vec::<String>::new());
    assert_eq!(violations(&spec, list_schema, &public), Vec::<String>::new());
    let record = &spec["components"]["schemas"]["EmployerRecord"];
    assert_eq!(record["discriminator"]["propertyName"], "view");
}

#[test]
fn list_wrappers_reference_their_item_schema_and_the_document_names_a_server() {
    // Arrange
    let spec = spec();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    // Act
    let inlined: Vec<_> = schemas
        .iter()
        .filter(|(name, _)| name.starts_with("ListOf_"))
        .filter(|(_, s)| s["properties"]["items"]["items"].get("$ref").is_none())
        .map(|(name, _)| name.clone())
        .collect();
    // Assert
    assert_eq!(inlined, Vec::<String>::new());
    assert_eq!(spec["servers"][0]["url"], "/");
    assert_eq!(spec["servers"].as_array().map(Vec::len), Some(1));
    // OWASP API9: the intended audience and environment are declared.
    assert_eq!(spec["servers"][0]["x-internal"], false);
    assert!(spec["servers"][0]["description"].as_str().is_some_and(|d| d.contains("production")));
}

/// What a partner's endpoint received: the Standard Webhooks headers and the body.
#[derive(Clone, Debug)]
struct Received {
    headers: Vec<String>,
    body: String,
}

/// A partner's endpoint on 127.0.0.1 that answers `204` and keeps what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let store = got.clone();
    let server = HttpServer::new(move || {
        let store = store.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let store = store.clone();
            async move {
                let headers = req.headers().keys().map(|k| k.as_str().to_owned()).collect();
                store.lock().unwrap().push(Received { headers, body: String::from_utf8(body.to_vec()).unwrap() });
                HttpResponse::NoContent().finish()
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}/hook", server.addrs()[0]);
    tokio::spawn(server.run());
    (url, got)
}

/// Waits (bounded) until the receiver has `n` requests: delivery is asynchronous.
async fn wait_for(got: &Arc<Mutex<Vec<Received>>>, n: usize) -> Vec<Received> {
    for _ in 0..200 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    got.lock().unwrap().clone()
}

#[tokio::test]
async fn every_webhook_delivery_validates_against_its_declared_schema() {
    // Arrange
    let spec = spec();
    let app = spawn_app_with(Options { webhook_allow_private: true, ..Default::default() }).await;
    let (url, got) = receiver().await;
    let events = ["referral.created", "referral.status_changed", "measure.changed"];
    let hook = app.create("/api/v1/webhooks", &caseworker(), &json!({"url": url, "events": events})).await;
    let provider = app.create_provider("Bildungswerk West").await;
    let mut measure = measure_body(&id_of(&provider));
    measure["status"] = json!("open");
    measure["target_groups"] = json!([]);
    measure["min_age"] = Value::Null;
    measure["max_age"] = Value::Null;
    let measure = app.create_measure(&measure).await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    // Act
    let referral = app
        .create(
            "/api/v1/referrals",
            &caseworker(),
            &json!({"client_id": id_of(&client), "measure_id": id_of(&measure)}),
        )
        .await;
    let provider_caller = Caller::new("provider").with_org(id_of(&provider));
    let res = app
        .post(
            &format!("/api/v1/referrals/{}/transitions", id_of(&referral)),
            &provider_caller,
            &json!({"action": "accept"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // The accept also changes the measure's seats: a second `measure.changed`.
    let received = wait_for(&got, 4).await;
    // Assert: each body fits the schema of its event's entry in `webhooks`
    // and carries the declared headers; the delivery log's `payload` fits too.
    let mut seen = Vec::new();
    for delivery in &received {
        let body: Value = serde_json::from_str(&delivery.body).unwrap();
        let event = body["type"].as_str().unwrap().to_owned();
        let entry = &spec["webhooks"][&event]["post"];
        let schema = &entry["requestBody"]["content"]["application/json"]["schema"];
        assert!(schema.get("$ref").is_some(), "no schema declared for {event}");
        assert_eq!(violations(&spec, schema, &body), Vec::<String>::new(), "{event}");
        for param in entry["parameters"].as_array().unwrap() {
            let name = param["name"].as_str().unwrap();
            assert!(delivery.headers.iter().any(|h| h == name), "{event}: {name} not sent");
        }
        seen.push(event);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["measure.changed", "referral.created", "referral.status_changed"]);
    let log: Value =
        app.get(&format!("/api/v1/webhooks/{}/deliveries", id_of(&hook)), &caseworker()).await.json().await.unwrap();
    let log_schema = &spec["paths"]["/api/v1/webhooks/{id}/deliveries"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert_eq!(log["items"].as_array().unwrap().len(), received.len());
    assert_eq!(violations(&spec, log_schema, &log), Vec::<String>::new());
}
