//! Domain types: code lists, value types and their parsing rules.
//! No actix, no sea-orm here: this is what the office's rules are about.
pub mod audit;
pub mod cell_key;
pub mod changes;
pub mod clients;
pub mod codes;
pub mod employers;
pub mod ids;
pub mod matching;
pub mod measures;
pub mod providers;
pub mod referrals;
pub mod statistics;
pub mod timestamps;
pub mod validate;
pub mod values;
pub mod webhooks;
