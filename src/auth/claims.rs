//! The JWT claims Ostwerk reads, and minting of development tokens.
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::Role;

#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub iss: Option<String>,
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    #[serde(default)]
    pub realm_access: Option<RealmAccess>,
    #[serde(default)]
    pub org: Option<String>,
    /// NumericDate; may be fractional (RFC 7519 §2).
    #[serde(default)]
    pub iat: Option<f64>,
    #[serde(default)]
    pub exp: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct RealmAccess {
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

impl Claims {
    /// Roles from `roles`, or Keycloak's `realm_access.roles` when `roles` is absent.
    /// Names that are not Ostwerk roles are ignored (an IdP issues many).
    pub fn ostwerk_roles(&self) -> Vec<Role> {
        let names = match (&self.roles, self.realm_roles()) {
            (Some(roles), _) => roles.as_slice(),
            (None, Some(realm)) => realm,
            (None, None) => &[],
        };
        let mut roles: Vec<Role> = names.iter().filter_map(|n| Role::parse(n)).collect();
        roles.sort_unstable();
        roles.dedup();
        roles
    }

    fn realm_roles(&self) -> Option<&[String]> {
        self.realm_access.as_ref().and_then(|r| r.roles.as_deref())
    }

    /// Whether the token states its roles at all (SPEC: `roles` is required;
    /// an empty array is a statement, a missing claim is not).
    pub fn states_roles(&self) -> bool {
        self.roles.is_some() || self.realm_roles().is_some()
    }
}

/// Claims of a token minted by `ostwerk token` or printed in development mode.
#[derive(Debug, Serialize)]
pub struct DevToken<'a> {
    pub sub: &'a str,
    pub roles: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<&'a str>,
    pub iat: i64,
    pub exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<&'a str>,
}

/// Signs `claims` with HS256 and `secret`.
pub fn mint_hs256(secret: &[u8], claims: &DevToken<'_>) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_fall_back_to_keycloak_realm_roles_and_ignore_unknown_names() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "sub": "u", "realm_access": {"roles": ["offline_access", "provider", "caseworker"]}
        }))
        .unwrap();
        assert_eq!(claims.ostwerk_roles(), vec![Role::Caseworker, Role::Provider]);
    }

    #[test]
    fn top_level_roles_win_over_realm_roles() {
        let claims: Claims = serde_json::from_value(serde_json::json!({
            "sub": "u", "roles": ["analyst"], "realm_access": {"roles": ["admin"]}
        }))
        .unwrap();
        assert_eq!(claims.ostwerk_roles(), vec![Role::Analyst]);
    }
}
