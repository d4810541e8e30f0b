//! One integration-test binary: the real app over HTTP, on SQLite by default
//! and on PostgreSQL when `TEST_DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod audit;
mod auth;
mod cli;
mod clients;
mod code_lists;
mod contract;
mod contract_examples;
mod contract_shape;
mod demo;
mod employers;
mod erasure;
mod errors;
mod funding;
mod fuzz_regressions;
mod http_semantics;
mod invariants;
mod limits;
mod matching;
mod measures;
mod operations;
mod ops;
mod providers;
mod referral_fixtures;
mod referrals;
mod referrals_batch;
mod referrals_capacity;
mod referrals_expiry;
mod referrals_lists;
mod referrals_transitions;
mod referrals_visibility;
mod security_auth;
mod security_edge;
mod security_webhooks;
mod statistics;
mod statistics_privacy;
mod statistics_sql;
mod strict_queries;
mod webhooks;
