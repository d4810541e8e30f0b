//! `ETag`, `If-Match` (optimistic concurrency on every change) and
//! `If-None-Match` (conditional reads: `304 Not Modified`).
use std::future::{Ready, ready};

use actix_web::{
    FromRequest, HttpRequest,
    body::{BoxBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{Method, StatusCode, header},
    middleware::Next,
};

use crate::error::{ApiError, Problem};

/// The strong entity tag of a resource version: `"<version>"`.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

/// The entity tags of an `If-Match` / `If-None-Match` list, as written
/// (`W/` prefixes kept: the two headers compare them differently).
fn entity_tags(value: &str) -> Vec<String> {
    value.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()
}

/// The request's `If-Match` header: absent, `*`, or a list of tags.
#[derive(Debug, Clone, Default)]
pub enum IfMatch {
    #[default]
    Absent,
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    /// `412` when a tag was given and none names `version`.
    ///
    /// The comparison is the strong one of RFC 9110 §13.1.1: a weak tag
    /// (`W/"3"`) never matches, even with the same value. A weak tag only
    /// promises "semantically equivalent", which is not enough to base a
    /// write on; treating it as a match (as Ostwerk once did) let a client
    /// that had only ever seen a weak validator (from a cache or a proxy
    /// that weakened it) overwrite a representation it never saw exactly.
    pub fn check(&self, version: i32) -> Result<(), ApiError> {
        let current = etag(version);
        match self {
            IfMatch::Absent | IfMatch::Any => Ok(()),
            IfMatch::Tags(tags) if tags.contains(&current) => Ok(()),
            IfMatch::Tags(_) => Err(ApiError::new(
                Problem::PreconditionFailed,
                format!("If-Match does not match the current version; the current ETag is {current}."),
            )
            .with_extension("current_etag", current)),
        }
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(value) = req.headers().get(header::IF_MATCH) else {
            return ready(Ok(IfMatch::Absent));
        };
        let Ok(value) = value.to_str() else {
            return ready(Err(ApiError::bad_request("If-Match is not ASCII.")));
        };
        if value.trim() == "*" {
            return ready(Ok(IfMatch::Any));
        }
        let tags = entity_tags(value);
        if tags.is_empty() {
            // An empty header is a malformed request, not a stale version:
            // 400 before any precondition (or body) is weighed.
            return ready(Err(ApiError::bad_request(
                "If-Match is empty: send the ETag you hold (e.g. \"3\") or *, or leave the header out.",
            )));
        }
        // Weak tags stay as written (`W/"3"`), so they never equal a strong one.
        ready(Ok(IfMatch::Tags(tags)))
    }
}

/// Whether an `If-None-Match` value names `current` (the response's ETag):
/// `*`, or any tag of the list under the weak comparison of RFC 9110
/// §13.1.2 (`W/"3"` matches `"3"`), which is what the RFC prescribes for
/// this header — a cache revalidating may hold a weakened copy.
fn none_match(if_none_match: &str, current: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    if if_none_match.trim() == "*" {
        return true;
    }
    let current = opaque(current);
    entity_tags(if_none_match).iter().any(|t| opaque(t) == current)
}

/// Middleware: a `GET` (or `HEAD`) answered `200` with an `ETag` that the
/// request's `If-None-Match` names becomes `304 Not Modified` with that
/// `ETag` and no body (RFC 9110 §13.1.2).
///
/// The handler has run in full by then — deliberately: a read of a
/// client's personal data is audited when it happens, and the caller did
/// learn that its copy is current. Deciding before the handler (from a
/// cheaper version query) would need a second way into the personal data
/// that skips the audit, which the repository rules out. The other
/// headers of the `200` (`Cache-Control`, `X-Request-Id`, the rate-limit
/// fields) stay on the `304`, as §15.4.5 asks.
pub async fn not_modified(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let conditional =
        matches!(*req.method(), Method::GET | Method::HEAD) && req.headers().contains_key(header::IF_NONE_MATCH);
    let res = next.call(req).await?.map_into_boxed_body();
    if !conditional || res.status() != StatusCode::OK {
        return Ok(res);
    }
    let matched = {
        let if_none_match = res.request().headers().get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
        let current = res.headers().get(header::ETAG).and_then(|v| v.to_str().ok());
        matches!((if_none_match, current), (Some(inm), Some(etag)) if none_match(inm, etag))
    };
    if !matched {
        return Ok(res);
    }
    let (req, response) = res.into_parts();
    let mut response = response.set_body(BoxBody::new(()));
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    headers.remove(header::CONTENT_LENGTH);
    Ok(ServiceResponse::new(req, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_tag_passes_and_stale_tag_is_412() {
        let m = IfMatch::Tags(vec!["\"3\"".into()]);
        assert!(m.check(3).is_ok());
        assert_eq!(m.check(4).err().map(|e| e.problem), Some(Problem::PreconditionFailed));
        assert!(IfMatch::Any.check(9).is_ok());
        assert!(IfMatch::Absent.check(9).is_ok());
    }

    #[test]
    fn if_match_compares_strongly_so_a_weak_tag_never_matches() {
        let weak = IfMatch::Tags(entity_tags("W/\"3\""));
        assert_eq!(weak.check(3).err().map(|e| e.problem), Some(Problem::PreconditionFailed));
        let list = IfMatch::Tags(entity_tags("\"1\", W/\"3\", \"3\""));
        assert!(list.check(3).is_ok());
    }

    #[test]
    fn if_none_match_compares_weakly_and_honours_lists_and_star() {
        assert!(none_match("\"3\"", "\"3\""));
        assert!(none_match("W/\"3\"", "\"3\""));
        assert!(none_match("\"1\", \"2\",\"3\"", "\"3\""));
        assert!(none_match(" * ", "\"3\""));
        assert!(!none_match("\"4\"", "\"3\""));
        assert!(!none_match("\"33\"", "\"3\""));
    }
}
