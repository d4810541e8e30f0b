//! sea-orm entities: the tables as the database sees them. Never on the wire.
pub mod district;
pub mod idempotency_key;
pub mod provider;
pub mod server_key;
