//! Examples in the published contract (issue 9): every request and response
//! body of every operation carries an example, and every example in the
//! document — on media types and on component schemas — validates against
//! its schema. Partners copy these examples; one the server would refuse or
//! a generated model would fail to parse is a bug in the contract.
//!
//! The validator below covers the JSON Schema subset the document uses
//! (`$ref`, `type`, `enum`, `const`, `properties`, `required`,
//! `additionalProperties`, `items`, `oneOf`/`anyOf`/`allOf`, lengths, bounds,
//! `pattern`, and the formats `uuid`, `date`, `date-time`, `uri`, `email`).
//! A keyword it does not know fails the test, so it cannot silently pass
//! something it did not check.
use serde_json::{Value, json};

use crate::helpers::*;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Keywords that only annotate (nothing to check).
const ANNOTATIONS: [&str; 9] =
    ["description", "title", "example", "examples", "default", "deprecated", "readOnly", "writeOnly", "discriminator"];

async fn served_spec() -> Value {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/api-docs/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => root.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref #{pointer}")),
        None => node,
    }
}

/// Every media type of the document's bodies: (where, media type object).
fn media_types(spec: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut add = |place: String, holder: &Value| {
        let holder = resolve(spec, holder);
        for (ct, media) in holder["content"].as_object().into_iter().flatten() {
            out.push((format!("{place} {ct}"), media.clone()));
        }
    };
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            if let Some(body) = op.get("requestBody") {
                add(format!("{} {path} request", method.to_uppercase()), body);
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                add(format!("{} {path} {status}", method.to_uppercase()), response);
            }
        }
    }
    out
}

fn type_matches(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.as_i64().is_some() || value.as_u64().is_some(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("unknown type {other}"),
    }
}

fn format_ok(text: &str, format: &str) -> bool {
    match format {
        "uuid" => uuid::Uuid::parse_str(text).is_ok() && text.len() == 36,
        "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
        "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        "uri" | "url" => url::Url::parse(text).is_ok(),
        "email" => text.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.')),
        // Formats that only annotate (e.g. `int64`, `double`, `binary`).
        _ => true,
    }
}

/// Checks `value` against `schema`; each violation goes to `errors` with its
/// JSON pointer in the example.
fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        if schema == &json!(false) {
            errors.push(format!("{at}: no value is allowed here"));
        }
        return;
    };
    let mut fail = |msg: String| errors.push(format!("{at}: {msg}"));
    let mut sub_errors = Vec::new();
    for (key, rule) in s {
        match key.as_str() {
            "$ref" => check(root, resolve(root, schema), value, at, &mut sub_errors),
            "type" => {
                let ok = match rule {
                    Value::String(t) => type_matches(value, t),
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_matches(value, t)),
                    _ => false,
                };
                if !ok {
                    fail(format!("{value} is not of type {rule}"));
                }
            }
            "enum" if !rule.as_array().unwrap().contains(value) => fail(format!("{value} is not one of {rule}")),
            "const" if rule != value => fail(format!("{value} is not {rule}")),
            "required" => {
                if let Some(obj) = value.as_object() {
                    for name in rule.as_array().unwrap().iter().filter_map(Value::as_str) {
                        if !obj.contains_key(name) {
                            fail(format!("required `{name}` is missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(obj) = value.as_object() {
                    for (name, v) in obj {
                        if let Some(prop) = rule.get(name) {
                            check(root, prop, v, &format!("{at}/{name}"), &mut sub_errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(obj) = value.as_object() {
                    let known = s.get("properties").and_then(Value::as_object);
                    for (name, v) in obj.iter().filter(|(n, _)| known.is_none_or(|k| !k.contains_key(*n))) {
                        if rule == &json!(false) {
                            sub_errors.push(format!("{at}: unknown member `{name}`"));
                        } else {
                            check(root, rule, v, &format!("{at}/{name}"), &mut sub_errors);
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, v) in items.iter().enumerate() {
                        check(root, rule, v, &format!("{at}/{i}"), &mut sub_errors);
                    }
                }
            }
            "allOf" => {
                for part in rule.as_array().unwrap() {
                    check(root, part, value, at, &mut sub_errors);
                }
            }
            "oneOf" | "anyOf" => {
                let matching = rule
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|branch| {
                        let mut e = Vec::new();
                        check(root, branch, value, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                if matching == 0 || (key == "oneOf" && matching > 1) {
                    fail(format!("{value} matches {matching} branches of {key}"));
                }
            }
            "minLength" | "maxLength" => {
                if let Some(text) = value.as_str() {
                    let (len, bound) = (text.chars().count() as u64, rule.as_u64().unwrap());
                    if (key == "minLength" && len < bound) || (key == "maxLength" && len > bound) {
                        fail(format!("length {len} breaks {key} {bound}"));
                    }
                }
            }
            "pattern" => {
                if let Some(text) = value.as_str() {
                    let re = regex::Regex::new(rule.as_str().unwrap()).expect("a pattern Rust's regex reads");
                    if !re.is_match(text) {
                        fail(format!("{text:?} does not match {rule}"));
                    }
                }
            }
            "format" => {
                if let Some(text) = value.as_str()
                    && !format_ok(text, rule.as_str().unwrap())
                {
                    fail(format!("{text:?} is not a {rule}"));
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                if let (Some(n), Some(bound)) = (value.as_f64(), rule.as_f64()) {
                    let ok = match key.as_str() {
                        "minimum" => n >= bound,
                        "maximum" => n <= bound,
                        "exclusiveMinimum" => n > bound,
                        _ => n < bound,
                    };
                    if !ok {
                        fail(format!("{n} breaks {key} {bound}"));
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let Some(items) = value.as_array() {
                    let (len, bound) = (items.len() as u64, rule.as_u64().unwrap());
                    if (key == "minItems" && len < bound) || (key == "maxItems" && len > bound) {
                        fail(format!("{len} items break {key} {bound}"));
                    }
                }
            }
            "enum" | "const" => {}
            k if ANNOTATIONS.contains(&k) => {}
            // Schemathesis-style vendor extensions annotate too.
            k if k.starts_with("x-") => {}
            other => panic!("{at}: the example validator does not know the keyword `{other}`: teach it"),
        }
    }
    errors.extend(sub_errors);
}

fn check_example(root: &Value, schema: &Value, example: &Value, place: &str) -> Vec<String> {
    let mut errors = Vec::new();
    check(root, schema, example, "", &mut errors);
    errors.into_iter().map(|e| format!("{place}: example{e}")).collect()
}

#[tokio::test]
async fn every_operation_documents_example_bodies() {
    // Arrange
    let spec = served_spec().await;
    // Act
    let missing: Vec<String> = media_types(&spec)
        .into_iter()
        .filter(|(_, media)| media.get("example").is_none() && media.get("examples").is_none())
        .map(|(place, _)| place)
        .collect();
    // Assert
    assert!(missing.is_empty(), "bodies without an example:\n{}", missing.join("\n"));
}

#[tokio::test]
async fn every_example_validates_against_its_schema() {
    // Arrange
    let spec = served_spec().await;
    let mut errors = Vec::new();
    let mut checked = 0;
    // Act
    for (place, media) in media_types(&spec) {
        let schema = media.get("schema").cloned().unwrap_or(json!({}));
        let examples: Vec<Value> = match (media.get("example"), media.get("examples")) {
            (Some(example), _) => vec![example.clone()],
            (None, Some(named)) => {
                named.as_object().unwrap().values().map(|e| resolve(&spec, e)["value"].clone()).collect()
            }
            (None, None) => vec![],
        };
        for example in examples {
            checked += 1;
            errors.extend(check_example(&spec, &schema, &example, &place));
        }
    }
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            checked += 1;
            errors.extend(check_example(&spec, schema, example, &format!("components.schemas.{name}")));
        }
        for (field, prop) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
            if let Some(example) = prop.get("example") {
                checked += 1;
                errors.extend(check_example(&spec, prop, example, &format!("components.schemas.{name}.{field}")));
            }
        }
    }
    // Assert
    assert!(checked > 100, "only {checked} examples found");
    assert!(errors.is_empty(), "examples that break their schema:\n{}", errors.join("\n"));
}

#[tokio::test]
async fn an_example_breaking_its_schema_is_reported() {
    // Arrange: the served `ReferralInput`, and an example a partner could
    // have been shown before (a measure id that is no UUID, an unknown field).
    let spec = served_spec().await;
    let schema = json!({"$ref": "#/components/schemas/ReferralInput"});
    let bad = json!({
        "client_id": "0193a000-0000-7000-8000-00000000c001",
        "measure_id": "0193a000-0000-7000-8000-00000000m001",
        "comment": "unknown"
    });
    // Act
    let errors = check_example(&spec, &schema, &bad, "test");
    // Assert
    assert!(errors.iter().any(|e| e.contains("/measure_id") && e.contains("uuid")), "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("unknown member `comment`")), "{errors:?}");
}
