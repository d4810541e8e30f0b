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
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `-created_at` (newest first, the default) or `created_at` (oldest first).
    #[param(pattern = "^-?created_at$")]
    pub sort: Option<String>,
}

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
}

impl PageParams {
    pub fn validate(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        let mut errors = Vec::new();
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new("limit", format!("must be between 1 and {MAX_LIMIT}")));
        }
        let order = match self.sort.as_deref() {
            None | Some("-created_at") => Order::NewestFirst,
            Some("created_at") => Order::OldestFirst,
            Some(_) => {
                errors.push(FieldError::new("sort", "must be -created_at or created_at"));
                Order::NewestFirst
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::bad_request("Invalid query parameters.").with_errors(errors));
        }
        Ok(PageRequest { limit, cursor: self.cursor.clone().filter(|c| !c.is_empty()), order })
    }
}

/// Applies an RFC 7396 merge patch to `current` and reads the result back as `T`.
pub fn merge_patch<T: Serialize + DeserializeOwned>(current: &T, patch: &Value) -> Result<T, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request("A merge patch must be a JSON object."));
    }
    let mut doc = serde_json::to_value(current).map_err(ApiError::internal)?;
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
