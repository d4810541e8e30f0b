//! Identifiers and time.
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// A new id: UUID v7, so ids sort by creation time.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Now, truncated to microseconds: PostgreSQL keeps microseconds, and a
/// timestamp must read back exactly as written for cursors and ETags.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
