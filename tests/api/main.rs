//! One integration-test binary: the real app over HTTP, on SQLite by default
//! and on PostgreSQL when `TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod auth;
mod code_lists;
mod contract;
mod errors;
mod fuzz_regressions;
mod ops;
mod providers;
