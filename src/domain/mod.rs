//! Domain types: code lists, value types and their parsing rules.
//! No actix, no sea-orm here: this is what the office's rules are about.
pub mod codes;
pub mod ids;
pub mod validate;
pub mod values;
pub mod providers;
pub mod clients;
pub mod employers;
pub mod measures;
pub mod audit;
