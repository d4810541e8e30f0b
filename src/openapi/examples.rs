//! Examples for every request and response body of the document.
//!
//! Partners read the examples first and generators copy them into docs and
//! mocks, so every body the document describes carries one. Where a schema
//! has its own `example` (`#[schema(example = ...)]`) that one is used;
//! otherwise the example is composed from the examples of its fields, and
//! only where a field has none from its type, format and bounds. A field
//! with a `pattern` and no example gets none: the test
//! `tests/api/contract_examples.rs` then fails and names it, so a field
//! example is added rather than a value guessed that the server refuses.
use serde_json::{Map, Value, json};
use utoipa::openapi::{Content, OpenApi, RefOr};

/// Nesting deeper than this is not followed (schemas that refer to
/// themselves would not end).
const MAX_DEPTH: usize = 12;

/// Adds an `example` to every media type of every request body and response
/// (components included) that has neither `example` nor `examples`.
pub fn fill(doc: &mut OpenApi) {
    let schemas = serde_json::to_value(doc.components.as_ref().map(|c| &c.schemas)).unwrap_or(Value::Null);
    for item in doc.paths.paths.values_mut() {
        for (_, op) in super::operations_mut(item) {
            if let Some(RefOr::T(body)) = op.request_body.as_mut() {
                fill_content(body.content.values_mut(), &schemas);
            }
            for response in op.responses.responses.values_mut() {
                if let RefOr::T(response) = response {
                    fill_content(response.content.values_mut(), &schemas);
                }
            }
        }
    }
    for response in doc.components.iter_mut().flat_map(|c| c.responses.values_mut()) {
        if let RefOr::T(response) = response {
            fill_content(response.content.values_mut(), &schemas);
        }
    }
}

fn fill_content<'a>(content: impl Iterator<Item = &'a mut RefOr<Content>>, schemas: &Value) {
    for media in content {
        let RefOr::T(media) = media else { continue };
        if media.example.is_some() || !media.examples.is_empty() {
            continue;
        }
        let schema = serde_json::to_value(&media.schema).unwrap_or(Value::Null);
        media.example = compose(&schema, schemas, 0);
    }
}

/// An example for `schema`, or `None` where none can be given honestly.
pub fn compose(schema: &Value, schemas: &Value, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let s = schema.as_object()?;
    if let Some(example) = s.get("example") {
        return Some(example.clone());
    }
    if let Some(first) = s.get("examples").and_then(Value::as_array).and_then(|e| e.first()) {
        return Some(first.clone());
    }
    if let Some(name) = s.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/components/schemas/")) {
        return compose(schemas.get(name)?, schemas, depth + 1);
    }
    if let Some(value) = s.get("const") {
        return Some(value.clone());
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        return values.iter().find(|v| !v.is_null()).or(values.first()).cloned();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(branches) = s.get(key).and_then(Value::as_array) {
            // The first branch that is not `null`: an example shows the value.
            return branches
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .find_map(|b| compose(b, schemas, depth + 1));
        }
    }
    if let Some(parts) = s.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in parts {
            match compose(part, schemas, depth + 1)? {
                Value::Object(fields) => merged.extend(fields),
                other if parts.len() == 1 => return Some(other),
                _ => return None,
            }
        }
        return Some(Value::Object(merged));
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        // `["string", "null"]`: show the value, not the absence.
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null"),
        _ if s.contains_key("properties") => "object",
        _ => return None,
    };
    match ty {
        "object" => {
            let mut fields = Map::new();
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    match named_example(name, prop).or_else(|| compose(prop, schemas, depth + 1)) {
                        Some(value) => {
                            fields.insert(name.clone(), value);
                        }
                        None if required.contains(&name.as_str()) => return None,
                        None => {}
                    }
                }
            }
            Some(Value::Object(fields))
        }
        "array" => {
            let item = s.get("items").and_then(|i| compose(i, schemas, depth + 1));
            let min = s.get("minItems").and_then(Value::as_u64).unwrap_or(0);
            match item {
                Some(item) => Some(Value::Array(vec![item])),
                None if min == 0 => Some(json!([])),
                None => None,
            }
        }
        "string" => string_example(s),
        "integer" => Some(json!(number_example(s).round() as i64)),
        "number" => Some(json!(number_example(s))),
        "boolean" => Some(json!(true)),
        "null" => Some(Value::Null),
        _ => None,
    }
}

/// A plain text field whose name says what it holds gets a value of that
/// kind (`"email": "Beispiel"` would teach a partner nothing).
fn named_example(name: &str, prop: &Value) -> Option<Value> {
    let p = prop.as_object()?;
    let plain_text = match p.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    if !plain_text || ["example", "examples", "format", "pattern", "enum", "$ref"].iter().any(|k| p.contains_key(*k)) {
        return None;
    }
    let text = match name {
        "first_name" => "Mara",
        "last_name" => "Beispiel",
        n if n.contains("email") => "name@example.org",
        n if n.contains("phone") => "+49 341 1234567",
        _ => return None,
    };
    let max = p.get("maxLength").and_then(Value::as_u64).map_or(usize::MAX, |m| m as usize);
    (text.chars().count() <= max).then(|| json!(text))
}

fn string_example(s: &Map<String, Value>) -> Option<Value> {
    let format = s.get("format").and_then(Value::as_str).unwrap_or("");
    let text = match format {
        "uuid" => "0193a000-0000-7000-8000-000000000001",
        "date" => "2026-03-02",
        "date-time" => "2026-03-02T09:30:00Z",
        "uri" | "url" => "https://partner.example/ostwerk",
        "email" => "name@example.org",
        // A pattern no generic value satisfies: the field needs its own example.
        _ if s.contains_key("pattern") => return None,
        _ => "Beispiel",
    };
    let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let max = s.get("maxLength").and_then(Value::as_u64).map_or(usize::MAX, |m| m as usize);
    if !format.is_empty() {
        let len = text.chars().count();
        return (len >= min && len <= max).then(|| json!(text));
    }
    // Free text: fit the word into the declared length.
    let text: String = text.chars().chain(std::iter::repeat('e')).take(text.chars().count().clamp(min, max)).collect();
    (min <= max).then(|| json!(text))
}

fn number_example(s: &Map<String, Value>) -> f64 {
    let min = s.get("minimum").and_then(Value::as_f64);
    let max = s.get("maximum").and_then(Value::as_f64);
    match (min, max) {
        (Some(min), _) if min >= 1.0 => min,
        (_, Some(max)) if max < 1.0 => max,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn free_text_fits_its_declared_length() {
        // Arrange
        let short = json!({"type": "string", "maxLength": 3});
        let long = json!({"type": "string", "minLength": 10});
        // Act
        let (a, b) = (super::compose(&short, &json!({}), 0), super::compose(&long, &json!({}), 0));
        // Assert
        assert_eq!(a, Some(json!("Bei")));
        assert_eq!(b, Some(json!("Beispielee")));
    }

    #[test]
    fn a_field_with_a_pattern_and_no_example_gets_none() {
        // Arrange: a generic text would break the pattern.
        let schema = json!({"type": "object", "required": ["code"],
            "properties": {"code": {"type": "string", "pattern": "^[0-9]{5}$"}}});
        // Act
        let example = super::compose(&schema, &json!({}), 0);
        // Assert
        assert_eq!(example, None);
    }

    #[test]
    fn an_object_is_composed_from_its_field_examples_and_refs() {
        // Arrange
        let schemas = json!({"Kind": {"type": "string", "enum": ["a", "b"]}});
        let schema = json!({"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid"},
            "kind": {"$ref": "#/components/schemas/Kind"},
            "zip": {"type": ["string", "null"], "pattern": "^[0-9]{5}$", "example": "04315"},
            "seats": {"type": "integer", "minimum": 2}}});
        // Act
        let example = super::compose(&schema, &schemas, 0);
        // Assert
        assert_eq!(
            example,
            Some(json!({"id": "0193a000-0000-7000-8000-000000000001", "kind": "a", "zip": "04315", "seats": 2}))
        );
    }
}
