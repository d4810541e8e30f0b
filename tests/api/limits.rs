//! Declared limits, enforced: every string, array and integer of a request
//! body declares its bound in the OpenAPI document, and the server refuses
//! (`422`, naming the field) exactly what exceeds it — counted on the value
//! as sent, not after trimming.
use serde_json::{Value, json};

use crate::helpers::{
    assert_problem, caseworker, client_body_with, error_fields, id_of, measure_body, spawn_app, vacancy_body, with,
};

#[tokio::test]
async fn string_over_its_max_length_counting_padding_is_422_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let padded_name = format!("{} ", "A".repeat(100)); // 101 characters as sent, 100 once trimmed

    // Act
    let res = app.post("/api/v1/clients", &caseworker(), &client_body_with(json!({"first_name": padded_name}))).await;

    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["first_name"]);
}

#[tokio::test]
async fn occupation_code_longer_than_five_characters_is_422() {
    // Arrange
    let app = spawn_app().await;
    let employer = app.create_employer("Bäckerei Sommer").await;

    // Act
    let res = app
        .post(
            &format!("/api/v1/employers/{}/vacancies", id_of(&employer)),
            &caseworker(),
            &vacancy_body("Verkäufer:in", " 62102"),
        )
        .await;

    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["occupation_code"]);
}

#[tokio::test]
async fn array_of_codes_longer_than_its_code_list_is_422_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let eleven: Vec<&str> = std::iter::repeat_n("youth", 11).collect(); // target_groups has 10 codes

    // Act
    let res = app.post("/api/v1/clients", &caseworker(), &client_body_with(json!({"target_groups": eleven}))).await;

    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["target_groups"]);
}

#[tokio::test]
async fn webhook_events_longer_than_the_event_list_are_422() {
    // Arrange
    let app = spawn_app().await;
    let body = json!({
        "url": "https://partner.example.org/hook",
        "events": ["referral.created", "referral.created", "referral.created", "referral.created"],
        "org": "partner"
    });

    // Act
    let res = app.post("/api/v1/webhooks", &crate::helpers::admin(), &body).await;

    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["events"]);
}

#[tokio::test]
async fn integer_over_its_maximum_is_422_naming_the_field() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let body = with(measure_body(&id_of(&provider)), json!({"hours_per_week": 61}));

    // Act
    let res = app.post("/api/v1/measures", &caseworker(), &body).await;

    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["hours_per_week"]);
}

#[tokio::test]
async fn uuid_in_a_form_longer_than_36_characters_is_422() {
    // Arrange
    let app = spawn_app().await;
    let provider = app.create_provider("Bildungswerk Ost").await;
    let urn = format!("urn:uuid:{}", id_of(&provider));
    let body = with(measure_body(&id_of(&provider)), json!({"provider_id": urn}));

    // Act
    let res = app.post("/api/v1/measures", &caseworker(), &body).await;

    // Assert
    let problem = assert_problem(res, 422, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["provider_id"]);
}

/// Every property reachable from a request body, with the schema it has.
fn request_body_properties(spec: &Value) -> Vec<(String, Value)> {
    fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> (&'a Value, Option<String>) {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.rsplit('/').next().unwrap().to_owned();
                (&spec["components"]["schemas"][&name], Some(name))
            }
            None => (schema, None),
        }
    }
    fn walk(spec: &Value, schema: &Value, at: String, seen: &mut Vec<String>, out: &mut Vec<(String, Value)>) {
        let (schema, name) = resolve(spec, schema);
        if let Some(name) = name {
            if seen.contains(&name) {
                return;
            }
            seen.push(name);
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for alternative in schema[key].as_array().into_iter().flatten() {
                walk(spec, alternative, at.clone(), seen, out);
            }
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (field, property) in properties {
                let path = format!("{at}.{field}");
                out.push((path.clone(), property.clone()));
                walk(spec, property, path, seen, out);
            }
        }
        if schema.get("items").is_some() {
            let path = format!("{at}[]");
            out.push((path.clone(), schema["items"].clone()));
            walk(spec, &schema["items"], path, seen, out);
        }
    }
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for media in op["requestBody"]["content"].as_object().into_iter().flat_map(|c| c.values()) {
                let mut seen = Vec::new();
                walk(spec, &media["schema"], format!("{method} {path}"), &mut seen, &mut out);
            }
        }
    }
    out
}

/// The types a schema (or each alternative of a nullable one) has, resolved.
fn kinds(spec: &Value, schema: &Value) -> Vec<Value> {
    let schema = match schema["$ref"].as_str() {
        Some(r) => &spec["components"]["schemas"][r.rsplit('/').next().unwrap()],
        None => schema,
    };
    let mut out = vec![schema.clone()];
    for key in ["oneOf", "anyOf"] {
        for alternative in schema[key].as_array().into_iter().flatten() {
            out.extend(kinds(spec, alternative));
        }
    }
    out
}

fn has_type(schema: &Value, t: &str) -> bool {
    schema["type"] == t || schema["type"].as_array().is_some_and(|ts| ts.iter().any(|x| x == t))
}

#[tokio::test]
async fn every_string_array_and_integer_of_a_request_body_declares_its_limit() {
    // Arrange
    let spec: Value = serde_json::to_value(ostwerk::openapi::build()).unwrap();

    // Act
    let mut unbounded = Vec::new();
    let mut checked = 0;
    for (at, property) in request_body_properties(&spec) {
        for schema in kinds(&spec, &property) {
            let bounded_string = schema.get("maxLength").is_some() || schema.get("enum").is_some();
            if has_type(&schema, "string") && !bounded_string {
                unbounded.push(format!("{at}: string without maxLength"));
            }
            if has_type(&schema, "array") {
                match schema["maxItems"].as_u64() {
                    None => unbounded.push(format!("{at}: array without maxItems")),
                    Some(max) => {
                        // A list of codes need not hold more than every code once.
                        let codes =
                            kinds(&spec, &schema["items"]).iter().find_map(|s| s["enum"].as_array().map(Vec::len));
                        if let Some(codes) = codes
                            && max as usize > codes
                        {
                            unbounded.push(format!("{at}: maxItems {max}, but only {codes} codes"));
                        }
                    }
                }
            }
            if (has_type(&schema, "integer") || has_type(&schema, "number"))
                && (schema.get("minimum").is_none() || schema.get("maximum").is_none())
            {
                unbounded.push(format!("{at}: number without minimum and maximum"));
            }
            checked += 1;
        }
    }

    // Assert
    assert!(checked > 100, "the walk reached the request bodies ({checked} schemas)");
    assert!(unbounded.is_empty(), "request-body properties without a declared limit:\n{}", unbounded.join("\n"));
}
