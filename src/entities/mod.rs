//! sea-orm entities: the tables as the database sees them. Never on the wire.
pub mod audit_event;
pub mod change_event;
pub mod client;
pub mod consultation;
pub mod district;
pub mod employer;
pub mod funding_application;
pub mod funding_programme;
pub mod idempotency_key;
pub mod measure;
pub mod provider;
pub mod referral;
pub mod referral_event;
pub mod server_key;
pub mod vacancy;
pub mod webhook;
pub mod webhook_delivery;
