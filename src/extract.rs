//! Request-body, path and query extraction that fails as problem+json.
//!
//! `JsonBody<T>` replaces `web::Json<T>`: it enforces the content type
//! (`415`), the 1 MiB limit (`413`), well-formed JSON (`400`), no NUL
//! characters anywhere (PostgreSQL cannot store them), and `T`'s shape with
//! unknown fields refused (`400` naming the field). It also keeps the parsed
//! document, which idempotency fingerprints and merge patches need.
use std::{future::Future, pin::Pin};

use actix_web::{
    FromRequest, HttpRequest, ResponseError,
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::{PathError, QueryPayloadError},
    http::header,
    middleware::Next,
    web::{self, BytesMut},
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, FieldError, Problem};

/// Body deadline when no settings are at hand (`OSTWERK_BODY_TIMEOUT_SECS`).
const DEFAULT_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub struct JsonBody<T> {
    pub value: T,
    pub raw: Value,
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type_ok = is_json_content_type(req);
        // Every PATCH here is a JSON merge patch, which must be an object.
        // Refused while extracting, so a malformed patch is the `400` it is
        // before any precondition (`If-Match`) is weighed (a `412` before).
        let merge_patch = req.method() == actix_web::http::Method::PATCH;
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body_timeout = req
            .app_data::<web::Data<crate::startup::AppState>>()
            .map_or(DEFAULT_BODY_TIMEOUT, |s| std::time::Duration::from_secs(s.settings.body_timeout_secs));
        let mut payload = payload.take();
        Box::pin(async move {
            if !content_type_ok {
                return Err(ApiError::new(
                    Problem::UnsupportedMediaType,
                    "The request body must be JSON (Content-Type: application/json).",
                ));
            }
            if declared_len.is_some_and(|n| n > MAX_BODY_BYTES) {
                return Err(too_large());
            }
            let read = async {
                let mut body = BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|_| ApiError::bad_request("The request body could not be read."))?;
                    if body.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            };
            // A client stalling mid-body (slow POST) is cut off: the head has
            // its own deadline in the server, the body this one.
            let body = tokio::time::timeout(body_timeout, read).await.map_err(|_| {
                ApiError::new(
                    Problem::RequestTimeout,
                    format!("The request body did not arrive within {} seconds.", body_timeout.as_secs()),
                )
            })??;
            if merge_patch {
                let raw: Value = serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))?;
                if !raw.is_object() {
                    return Err(ApiError::bad_request("A merge patch must be a JSON object.")
                        .with_errors(vec![FieldError::new("", "must be a JSON object")]));
                }
            }
            parse_json(&body)
        })
    }
}

fn too_large() -> ApiError {
    ApiError::new(Problem::PayloadTooLarge, format!("The request body exceeds {MAX_BODY_BYTES} bytes."))
}

fn is_json_content_type(req: &HttpRequest) -> bool {
    let Some(ct) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses and shapes a body; public for the batch endpoint, which shapes each item.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<JsonBody<T>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("A JSON request body is required."));
    }
    let raw: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}.")))?;
    let value = shape(&raw)?;
    Ok(JsonBody { value, raw })
}

/// Deserialises an already parsed document into `T`, naming the bad field.
pub fn shape<T: DeserializeOwned>(raw: &Value) -> Result<T, ApiError> {
    let mut nul_fields = Vec::new();
    find_nul(raw, "", &mut nul_fields);
    if !nul_fields.is_empty() {
        let errors = nul_fields.into_iter().map(|f| FieldError::new(f, "must not contain NUL characters")).collect();
        return Err(ApiError::bad_request("The request body contains NUL characters.").with_errors(errors));
    }
    serde_path_to_error::deserialize(raw).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let message = e.inner().to_string();
        ApiError::bad_request(format!("The request body does not have the expected shape: {message}."))
            .with_errors(vec![FieldError::new(field, message)])
    })
}

fn find_nul(value: &Value, path: &str, out: &mut Vec<String>) {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::String(s) if s.contains('\0') => out.push(path.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_nul(item, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                if k.contains('\0') {
                    out.push(join("<key>"));
                }
                find_nul(v, &join(k), out);
            }
        }
        _ => {}
    }
}

/// Longest free-text search (`q`) accepted, in characters. The DTOs declare
/// the same number as `maxLength` (utoipa needs a literal there).
pub const MAX_SEARCH_CHARS: usize = 200;

/// A `q` search parameter: trimmed, empty means none, longer than
/// [`MAX_SEARCH_CHARS`] is a `400`. Unbounded, a long needle became a SQLite
/// GLOB / PostgreSQL LIKE pattern "too complex" to run — a `500` and a
/// cheap way to burn database time. (Wildcards in it are escaped by
/// `repository::name_contains`, so they match literally.)
pub fn search_text(value: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(text) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else { return Ok(None) };
    if text.chars().count() > MAX_SEARCH_CHARS {
        return Err(ApiError::bad_request("Invalid query parameters.")
            .with_errors(vec![FieldError::new("q", format!("must be at most {MAX_SEARCH_CHARS} characters"))]));
    }
    Ok(Some(text))
}

/// Error handler for `web::Query`: a `400` naming the parameter.
pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let message = match &err {
        QueryPayloadError::Deserialize(e) => e.to_string(),
        _ => err.to_string(),
    };
    let field = message.split('`').nth(1).map(str::to_owned).unwrap_or_default();
    ApiError::bad_request(format!("Invalid query parameters: {message}."))
        .with_errors(vec![FieldError::new(field, message)])
        .into()
}

/// Error handler for `web::Path`: a malformed id is a `400` — unless the
/// "id" is a fixed path segment and only the method is wrong (`405`).
pub fn path_error(err: PathError, req: &HttpRequest) -> actix_web::Error {
    if let Some(err) = req
        .app_data::<web::Data<crate::http::fallback::RouteTable>>()
        .and_then(|table| table.wrong_method_on_fixed_path(req))
    {
        return err.into();
    }
    let message = match &err {
        PathError::Deserialize(e) => e.to_string(),
        _ => err.to_string(),
    };
    ApiError::bad_request(format!("Invalid path parameter: {message}."))
        .with_errors(vec![FieldError::new("id", message)])
        .into()
}

/// Middleware: a `400` for a URL whose path or query encodes a NUL (`%00`).
///
/// The body check above cannot see query parameters, and PostgreSQL refuses
/// NUL in text (a `500` otherwise, e.g. `?q=%00`). Checked once at the edge
/// rather than in every handler, so a new filter cannot forget it.
pub async fn reject_nul_in_url(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let uri = req.uri();
    if uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00")) {
        let err = ApiError::bad_request("The request URL contains a NUL character (%00).");
        return Ok(req.into_response(err.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The configs installed on the app so every extractor answers problem+json.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Thing {
        name: String,
        inner: Option<Inner>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn wrong_type_names_the_nested_field() {
        let err = parse_json::<Thing>(br#"{"name":"a","inner":{"count":"x"}}"#).err().unwrap();
        assert_eq!(err.problem, Problem::BadRequest);
        assert_eq!(err.errors[0].field, "inner.count");
    }

    #[test]
    fn unknown_field_is_refused() {
        let err = parse_json::<Thing>(br#"{"name":"a","nmae":"b"}"#).err().unwrap();
        assert!(err.errors[0].message.contains("nmae"));
    }

    #[test]
    fn nul_characters_are_refused_with_their_path() {
        let err = parse_json::<Thing>(br#"{"name":"a\u0000b"}"#).err().unwrap();
        assert_eq!(err.errors[0].field, "name");
    }

    #[test]
    fn malformed_json_is_a_bad_request() {
        let err = parse_json::<Thing>(b"{nope").err().unwrap();
        assert_eq!(err.problem, Problem::BadRequest);
    }
}
