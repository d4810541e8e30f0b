//! `ETag` and `If-Match` (optimistic concurrency on every change).
use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header};

use crate::error::{ApiError, Problem};

/// The strong entity tag of a resource version: `"<version>"`.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
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
        // Weak tags (`W/"3"`) are compared by their value: versions are exact.
        let tags =
            value.split(',').map(|t| t.trim().trim_start_matches("W/").to_owned()).filter(|t| !t.is_empty()).collect();
        ready(Ok(IfMatch::Tags(tags)))
    }
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
}
