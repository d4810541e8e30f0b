//! Ostwerk: the back office API of a district employment-development office.
//!
//! The crate is a library with a thin binary (`src/main.rs`) so that the
//! integration tests start exactly the application the binary serves.

// `ApiError` carries field errors and extension members (~150 bytes). It is
// the rare path of every handler; boxing it everywhere would cost more
// clarity than the copy costs time.
#![allow(clippy::result_large_err)]
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod entities;
pub mod error;
pub mod extract;
pub mod fhir;
pub mod http;
pub mod openapi;
pub mod repository;
pub mod routes;
pub mod seed;
pub mod service;
pub mod startup;
pub mod strict_query;
pub mod telemetry;
