//! Pieces every resource's routes share: list parameters, merge patch, the
//! response shapes of reads.
use actix_web::{HttpResponse, http::header};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::{
    error::{ApiError, FieldError},
    extract::shape,
    http::etag,
};

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 200;

/// Paging parameters of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, with the same path, filters and
    /// sort it was issued for (else `400 invalid-cursor`); `limit` may change.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// `-created_at` (newest first, the default) or `created_at` (oldest first).
    #[param(pattern = "^-?created_at$")]
    pub sort: Option<String>,
    /// The list this request reads (see [`list_scope`]); not a parameter.
    #[serde(skip)]
    #[param(ignore)]
    pub scope: String,
}

/// Extracted like `PageParams`, plus the list scope a cursor is
/// bound to (a handler cannot forget to pass it).
impl actix_web::FromRequest for PageParams {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let parsed = actix_web::web::Query::<PageParams>::from_request(req, payload).into_inner().map(|q| {
            let mut params = q.into_inner();
            params.scope = list_scope(req);
            params
        });
        std::future::ready(parsed)
    }
}

impl actix_web::FromRequest for PollingPageParams {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let parsed = actix_web::web::Query::<PollingPageParams>::from_request(req, payload).into_inner().map(|q| {
            let mut params = q.into_inner();
            params.scope = list_scope(req);
            params
        });
        std::future::ready(parsed)
    }
}

/// What a cursor is bound to: the concrete path and every query parameter
/// except `cursor` and `limit`, digested. A cursor carries the keyset
/// position of one list; replayed on another list (a `/clients` cursor on
/// `/providers`) or under other filters it would silently skip or repeat
/// rows, so it is refused there (`400 invalid-cursor`).
pub fn list_scope(req: &actix_web::HttpRequest) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256};
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(name, _)| name != "cursor" && name != "limit")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    pairs.sort();
    let mut digest = Sha256::new();
    digest.update(req.path().as_bytes());
    for (name, value) in pairs {
        // NUL separators: no name or value contains one (refused at the edge).
        digest.update([0]);
        digest.update(name.as_bytes());
        digest.update([0]);
        digest.update(value.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(&digest.finalize()[..12])
}

/// Paging parameters of a list partners poll (referrals): `PageParams` plus
/// `sort=updated_at`. A type of its own so that only this list documents the
/// extra order (the shared pattern used to offer it on every list, which
/// then refused it with `400`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollingPageParams {
    /// Page size, 1–200 (default 50).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, with the same path, filters and
    /// sort it was issued for (else `400 invalid-cursor`); `limit` may change.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// `-created_at` (newest first, the default), `created_at` (oldest first)
    /// or `updated_at` (oldest change first, for polling).
    #[param(pattern = "^(-?created_at|updated_at)$")]
    pub sort: Option<String>,
    /// The list this request reads (see [`list_scope`]); not a parameter.
    #[serde(skip)]
    #[param(ignore)]
    pub scope: String,
}

impl PollingPageParams {
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        let page = PageParams {
            limit: self.limit.clone(),
            cursor: self.cursor.clone(),
            sort: self.sort.clone(),
            scope: self.scope.clone(),
        };
        page.validate_allowing(&["updated_at"])
    }
}

/// Documentation-only schema of a KldB 2010 occupation code (the DTOs keep
/// strings so that a bad code is a `422` naming the field, not a `400`).
pub struct KldbCode;

impl utoipa::PartialSchema for KldbCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(5))
            .max_length(Some(5))
            .pattern(Some("^[0-9]{5}$"))
            .description(Some("KldB 2010 occupation code, five digits."))
            .into()
    }
}
impl ToSchema for KldbCode {}

/// Documentation-only schema of an ISO 639-1 language code: the list
/// validation accepts (`domain::validate::ISO_639_1`).
pub struct LanguageCode;

impl utoipa::PartialSchema for LanguageCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(crate::domain::validate::ISO_639_1.split(' ')))
            .description(Some("ISO 639-1 language code."))
            .into()
    }
}
impl ToSchema for LanguageCode {}

/// Documentation-only schema of a date `YYYY-MM-DD` or an RFC 3339 timestamp
/// (the statistics filters take either).
pub struct DateOrTimestamp;

impl utoipa::PartialSchema for DateOrTimestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
        let of =
            |format| ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(format)));
        AnyOfBuilder::new()
            .item(of(KnownFormat::Date))
            .item(of(KnownFormat::DateTime))
            .description(Some(
                "A date `YYYY-MM-DD` (midnight UTC) or a timestamp with an offset: RFC 3339 or ISO 8601 \
                 (`Z`, `+00:00` or `+0000`; fractions of a second allowed; without an offset `400`).",
            ))
            .into()
    }
}
impl ToSchema for DateOrTimestamp {}

/// Direction of a list ordered by creation (ids are UUID v7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

impl Order {
    pub fn name(self) -> &'static str {
        match self {
            Order::NewestFirst => "-created_at",
            Order::OldestFirst => "created_at",
        }
    }
}

/// Validated paging parameters.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u64,
    pub cursor: Option<String>,
    pub order: Order,
    /// The list the cursor must have been issued for (see [`list_scope`]).
    pub scope: String,
}

impl PageParams {
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        self.validate_allowing(&[])
    }

    /// Like `validate`, also accepting the extra sort orders a list offers.
    pub fn validate_allowing(&self, extra_sorts: &[&str]) -> Result<PageRequest, ApiError> {
        let mut errors = Vec::new();
        let limit = match self.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_LIMIT,
            Some(v) => v.parse::<u64>().unwrap_or(0),
        };
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let order = match self.sort.as_deref() {
            None | Some("-created_at") => Order::NewestFirst,
            Some("created_at") => Order::OldestFirst,
            Some(other) if extra_sorts.contains(&other) => Order::OldestFirst,
            Some(_) => {
                errors.push(FieldError::new("sort", "must be -created_at or created_at"));
                Order::NewestFirst
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::bad_request("Invalid query parameters.").with_errors(errors));
        }
        Ok(PageRequest {
            limit,
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
            order,
            scope: self.scope.clone(),
        })
    }
}

/// Applies an RFC 7396 merge patch to `current` and reads the result back as `T`.
pub fn merge_patch<T: Serialize + DeserializeOwned>(current: &T, patch: &Value) -> Result<T, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request("A merge patch must be a JSON object."));
    }
    let mut doc = serde_json::to_value(current).map_err(ApiError::internal)?;
    // A member the resource does not have is refused like in a create (SPEC
    // §1), also with a `null` value, which the merge would silently drop.
    if let (Some(members), Some(known)) = (patch.as_object(), doc.as_object()) {
        let unknown: Vec<FieldError> = members
            .keys()
            .filter(|k| !known.contains_key(k.as_str()))
            .map(|k| FieldError::new(k.clone(), "unknown field"))
            .collect();
        if !unknown.is_empty() {
            return Err(
                ApiError::bad_request("The merge patch names members the resource does not have.").with_errors(unknown)
            );
        }
    }
    json_patch::merge(&mut doc, patch);
    shape(&doc)
}

/// `200` with the resource and its `ETag`.
pub fn ok_with_etag<T: Serialize>(version: i32, body: &T) -> HttpResponse {
    HttpResponse::Ok().insert_header((header::ETAG, etag(version))).json(body)
}

/// A list answer: `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOf<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `200` with one page: `{"items": [...], "next_cursor": ...}`.
pub fn list_response<M, D: Serialize>(page: crate::repository::Page<M>, to_dto: impl FnMut(M) -> D) -> HttpResponse {
    let page = page.map(to_dto);
    HttpResponse::Ok().json(ListOf { items: page.items, next_cursor: page.next_cursor })
}

/// The `201` answer of a create: `Location` plus the resource.
pub fn created<D: Serialize>(location: String, dto: &D) -> Result<crate::service::idempotency::Created, ApiError> {
    let body = serde_json::to_value(dto).map_err(ApiError::internal)?;
    Ok(crate::service::idempotency::Created::new(location, body))
}

/// Who is acting in this request, for the audit log.
pub fn audit_context(
    user: &crate::auth::Principal,
    req: &actix_web::HttpRequest,
) -> crate::domain::audit::AuditContext {
    use actix_web::HttpMessage;
    let ids = req.extensions().get::<crate::http::request_context::RequestIds>().cloned();
    let (request_id, client_request_id) = ids.map(|ids| (ids.own, ids.client)).unwrap_or_default();
    crate::domain::audit::AuditContext {
        actor: user.sub.clone(),
        actor_org: user.org.clone(),
        request_id,
        client_request_id,
    }
}

/// A code-list filter parameter: absent, or a valid code (else `400`).
pub fn code_filter<T: crate::domain::codes::CodeList>(
    field: &str,
    value: Option<String>,
) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if T::parse(&v).is_none() => {
            Err(ApiError::bad_request("Invalid query parameters.")
                .with_errors(vec![FieldError::new(field, T::expected())]))
        }
        other => Ok(other),
    }
}

/// A free-text filter: trimmed, blank means absent.
pub fn text_filter(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A date filter `YYYY-MM-DD` (else `400`).
pub fn date_filter(field: &str, value: Option<&str>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    let mut c = crate::domain::validate::Checker::new();
    let date = c.date(field, value);
    c.finish().map_err(|e| ApiError::bad_request("Invalid query parameters.").with_errors(e.errors))?;
    Ok(date)
}

/// A KldB prefix filter: 1–5 digits (else `400`).
pub fn kldb_prefix_filter(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match text_filter(value) {
        Some(v) if v.len() > 5 || !v.chars().all(|c| c.is_ascii_digit()) => {
            Err(ApiError::bad_request("Invalid query parameters.")
                .with_errors(vec![FieldError::new(field, "must be 1–5 digits of a KldB 2010 code")]))
        }
        other => Ok(other),
    }
}

/// A request body whose values include district codes, validated against
/// the `districts` code list (which lives in the database).
pub trait DistrictChecked: Sized {
    type Fields;
    fn validate(self, district_known: impl Fn(&str) -> bool) -> Result<Self::Fields, ApiError>;
}

/// Loads the district list once and validates `input` against it.
pub async fn validated<I: DistrictChecked>(
    db: &impl sea_orm::ConnectionTrait,
    input: I,
) -> Result<I::Fields, ApiError> {
    let districts = crate::repository::districts::codes(db).await?;
    input.validate(|d| districts.contains(d))
}
