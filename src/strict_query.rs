//! Query parameters checked against the OpenAPI document, once, at the edge.
//!
//! Each operation's declared query parameters are read from the same
//! document `/api-docs/openapi.json` serves, so the server enforces exactly
//! what the contract declares and cannot drift from it:
//!
//! - a parameter the operation does not declare is a `400` naming it (a
//!   misspelt filter such as `updated_since` used to be ignored silently,
//!   returning the unfiltered list);
//! - an empty value (`?to=`) is a `400`: every parameter is declared with a
//!   non-empty value, and "absent" is said by leaving the parameter out;
//! - a value must fit its declared schema: `enum`, `pattern`, `format`
//!   (`uuid`, `date`, `date-time`), integer bounds, booleans, lengths.
//!
//! Only the business API under `/api/` is checked. The docs UI, `/metrics`
//! and the health checks pass through, as do CORS preflights: probes and
//! scrapers are configured by operators, some add a cache-busting
//! parameter, and a failing probe would take an instance out of service.
use std::collections::HashMap;

use actix_web::{
    ResponseError,
    body::{BoxBody, MessageBody},
    dev::{ResourceDef, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};
use regex::Regex;
use serde_json::Value;

use crate::{
    domain::validate::{TIMESTAMP_EXPECTED, parse_date, parse_timestamp},
    error::{ApiError, FieldError},
};

/// The declared query parameters of every operation.
pub struct QueryRules {
    operations: Vec<Operation>,
}

struct Operation {
    method: &'static str,
    path: ResourceDef,
    /// Parameter name → its (resolved) schema.
    params: HashMap<String, Rule>,
}

/// A parameter schema, reduced to what a query value can violate.
#[derive(Default)]
struct Rule {
    kind: Kind,
    format: Option<String>,
    pattern: Option<Regex>,
    enum_values: Option<Vec<String>>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    /// `anyOf` / `oneOf`: the value must fit one of these.
    any_of: Vec<Rule>,
}

#[derive(Default, PartialEq)]
enum Kind {
    #[default]
    String,
    Integer,
    Number,
    Boolean,
}

impl QueryRules {
    /// Reads the rules from the document. A declared pattern that does not
    /// compile is a startup error: the server cannot enforce it otherwise.
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> anyhow::Result<Self> {
        let doc = serde_json::to_value(doc)?;
        let empty = serde_json::Map::new();
        let schemas = doc.pointer("/components/schemas").and_then(Value::as_object).unwrap_or(&empty);
        let mut operations = Vec::new();
        let Some(paths) = doc.get("paths").and_then(Value::as_object) else { return Ok(Self { operations }) };
        for (path, item) in paths.iter().filter(|(path, _)| path.starts_with("/api/")) {
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(op) = item.get(method) else { continue };
                let mut params = HashMap::new();
                for param in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
                    if param.get("in").and_then(Value::as_str) != Some("query") {
                        continue;
                    }
                    let Some(name) = param.get("name").and_then(Value::as_str) else { continue };
                    let schema = param.get("schema").cloned().unwrap_or(Value::Null);
                    params.insert(name.to_owned(), Rule::from_schema(&schema, schemas, 0)?);
                }
                operations.push(Operation {
                    method: match method {
                        "get" => "GET",
                        "post" => "POST",
                        "put" => "PUT",
                        "patch" => "PATCH",
                        _ => "DELETE",
                    },
                    path: ResourceDef::new(path.as_str()),
                    params,
                });
            }
        }
        // Fixed paths first: `/referrals/batch` must not be taken for `/referrals/{id}`.
        operations.sort_by_key(|op| op.path.pattern().map(|p| p.matches('{').count()).unwrap_or(0));
        Ok(Self { operations })
    }

    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let method = if method == "HEAD" { "GET" } else { method };
        self.operations.iter().find(|op| op.method == method && op.path.is_match(path))
    }

    /// `Err` with the `400` for the first parameter that breaks its declaration.
    pub fn check(&self, method: &str, path: &str, query: &str) -> Result<(), ApiError> {
        // No parameter, nothing to break (and no path to match: the most
        // frequent requests, reads by id, skip the route patterns).
        if query.is_empty() {
            return Ok(());
        }
        let Some(op) = self.operation(method, path) else { return Ok(()) };
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let Some(rule) = op.params.get(name.as_ref()) else {
                let mut known: Vec<&str> = op.params.keys().map(String::as_str).collect();
                known.sort_unstable();
                let takes = if known.is_empty() { "no query parameters".to_owned() } else { known.join(", ") };
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {name}; this operation takes {takes}."
                ))
                .with_errors(vec![FieldError::new(name.as_ref(), "unknown query parameter")]));
            };
            let problem = if value.is_empty() {
                Some("must not be empty (leave the parameter out instead)".to_owned())
            } else {
                rule.violation(&value)
            };
            if let Some(message) = problem {
                return Err(ApiError::bad_request(format!("Invalid query parameter {name}: {message}."))
                    .with_errors(vec![FieldError::new(name.as_ref(), message)]));
            }
        }
        Ok(())
    }
}

impl Rule {
    fn from_schema(schema: &Value, schemas: &serde_json::Map<String, Value>, depth: u8) -> anyhow::Result<Rule> {
        if depth > 8 {
            anyhow::bail!("query parameter schema nests too deeply");
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/components/schemas/");
            let target = schemas.get(name).ok_or_else(|| anyhow::anyhow!("unknown schema {reference}"))?;
            return Rule::from_schema(target, schemas, depth + 1);
        }
        let mut rule = Rule::default();
        for key in ["anyOf", "oneOf"] {
            for branch in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
                rule.any_of.push(Rule::from_schema(branch, schemas, depth + 1)?);
            }
        }
        let kind = match schema.get("type") {
            Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).find(|t| *t != "null"),
            Some(t) => t.as_str(),
            None => None,
        };
        rule.kind = match kind {
            Some("integer") => Kind::Integer,
            Some("number") => Kind::Number,
            Some("boolean") => Kind::Boolean,
            _ => Kind::String,
        };
        rule.format = schema.get("format").and_then(Value::as_str).map(str::to_owned);
        rule.pattern = schema.get("pattern").and_then(Value::as_str).map(Regex::new).transpose()?;
        rule.enum_values = schema
            .get("enum")
            .and_then(Value::as_array)
            .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect());
        rule.min_length = schema.get("minLength").and_then(Value::as_u64);
        rule.max_length = schema.get("maxLength").and_then(Value::as_u64);
        rule.minimum = schema.get("minimum").and_then(Value::as_f64);
        rule.maximum = schema.get("maximum").and_then(Value::as_f64);
        Ok(rule)
    }

    /// What is wrong with `value`, if anything.
    fn violation(&self, value: &str) -> Option<String> {
        if !self.any_of.is_empty() {
            let messages: Vec<String> = self.any_of.iter().map(|r| r.violation(value)).collect::<Option<_>>()?;
            return Some(messages.join(", or "));
        }
        match self.kind {
            Kind::Boolean if value != "true" && value != "false" => return Some("must be true or false".into()),
            Kind::Integer | Kind::Number => return self.number_violation(value),
            _ => {}
        }
        if let Some(values) = &self.enum_values
            && !values.iter().any(|v| v == value)
        {
            return Some(format!("must be one of {}", values.join(", ")));
        }
        let chars = value.chars().count() as u64;
        if self.min_length.is_some_and(|min| chars < min) {
            return Some(format!("must be at least {} characters", self.min_length.unwrap_or_default()));
        }
        if self.max_length.is_some_and(|max| chars > max) {
            return Some(format!("must be at most {} characters", self.max_length.unwrap_or_default()));
        }
        if let Some(pattern) = &self.pattern
            && !pattern.is_match(value)
        {
            return Some(format!("must match {}", pattern.as_str()));
        }
        match self.format.as_deref() {
            Some("uuid") if value.len() != 36 || uuid::Uuid::try_parse(value).is_err() => {
                Some("must be a UUID such as 0193a5b0-7c1e-7d2a-9f3b-2c4d5e6f7a8b".into())
            }
            Some("date") if parse_date(value).is_none() => Some("must be a date YYYY-MM-DD".into()),
            Some("date-time") => parse_timestamp(value).err().map(|m| {
                if m == TIMESTAMP_EXPECTED { m.to_owned() } else { format!("must be a timestamp with an offset: {m}") }
            }),
            _ => None,
        }
    }

    fn number_violation(&self, value: &str) -> Option<String> {
        let number = if self.kind == Kind::Integer {
            value.parse::<i64>().ok().map(|n| n as f64)
        } else {
            value.parse::<f64>().ok().filter(|n| n.is_finite())
        };
        let Some(number) = number else {
            return Some(if self.kind == Kind::Integer { "must be an integer" } else { "must be a number" }.into());
        };
        let below = self.minimum.is_some_and(|min| number < min);
        let above = self.maximum.is_some_and(|max| number > max);
        if below || above {
            let bound = |b: Option<f64>| b.map(|b| b.to_string()).unwrap_or_else(|| "…".into());
            return Some(format!("must be between {} and {}", bound(self.minimum), bound(self.maximum)));
        }
        None
    }
}

/// Middleware: the `400` of [`QueryRules::check`] before any handler runs.
pub async fn check_query(
    rules: web::Data<QueryRules>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if let Err(err) = rules.check(req.method().as_str(), req.path(), req.query_string()) {
        return Ok(req.into_response(err.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> QueryRules {
        QueryRules::from_openapi(&crate::openapi::build()).unwrap()
    }

    #[test]
    fn unknown_parameter_is_named() {
        let err = rules().check("GET", "/api/v1/referrals", "updated_since=2026-01-01T00:00:00Z").unwrap_err();
        assert!(err.detail.contains("unknown query parameter updated_since"), "{}", err.detail);
        assert_eq!(err.errors[0].field, "updated_since");
    }

    #[test]
    fn declared_values_pass_and_others_are_named() {
        let rules = rules();
        assert!(rules.check("GET", "/api/v1/referrals", "limit=5&updated_after=2026-01-01T00:00:00%2B0000").is_ok());
        for (query, field) in [("limit=", "limit"), ("limit=0", "limit"), ("limit=x", "limit"), ("sort=name", "sort")] {
            let err = rules.check("GET", "/api/v1/referrals", query).unwrap_err();
            assert_eq!(err.errors[0].field, field, "{query}");
        }
    }

    #[test]
    fn paths_outside_the_api_are_not_checked() {
        assert!(rules().check("GET", "/docs/index.html", "url=x").is_ok());
        assert!(rules().check("GET", "/livez", "x=1").is_ok());
    }
}
