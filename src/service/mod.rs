//! Rules that span a request: transactions, idempotency, cursors, and the
//! per-resource services the handlers call.
pub mod cursor;
pub mod idempotency;
pub mod paging;
pub mod clients;
pub mod employers;
pub mod measures;
pub mod providers;
