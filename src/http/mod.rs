//! HTTP plumbing shared by every route: request context (ids, logs, metrics,
//! problem rendering), preconditions, rate limiting, method fallbacks.
pub mod fallback;
pub mod heavy;
pub mod metrics;
pub mod preconditions;
pub mod rate_limit;
pub mod request_context;

pub use preconditions::{IfMatch, etag};
pub use request_context::RequestId;
