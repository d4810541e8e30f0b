//! Rules that span a request: transactions, idempotency, cursors, and the
//! per-resource services the handlers call.
pub mod change_feed;
pub mod clients;
pub mod cursor;
pub mod employers;
pub mod funding;
pub mod idempotency;
pub mod matching;
pub mod measures;
pub mod paging;
pub mod providers;
pub mod referrals;
pub mod retention;
pub mod statistics;
pub mod webhook_delivery;
pub mod webhooks;
