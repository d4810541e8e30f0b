//! Authentication (bearer JWT) and authorization (roles as data).
mod claims;
mod extractor;
mod keys;
mod roles;

pub use claims::{Claims, DevToken, mint_hs256};
pub use extractor::{AuthUser, bearer_token};
pub use keys::{Authenticator, KeyConfigError, MIN_SECRET_BYTES, canonical_org};

/// Minimum HS256 secret length in bytes.
pub const fn keys_min_secret() -> usize {
    MIN_SECRET_BYTES
}
pub use roles::{Access, OFFICE_ORG, OrgKind, Owner, Principal, Role};
