//! Roles and the per-operation access rules.
//!
//! An [`Access`] names an operation (its OpenAPI `operationId`) and the roles
//! allowed to call it. Handlers enforce it with [`Principal::require`]; the
//! OpenAPI document takes its `security` scopes from the very same constants
//! (`openapi::SecurityFromAccess`), so what is enforced and what is documented
//! cannot drift apart.
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Caseworker,
    Jobcenter,
    Provider,
    Employer,
    Analyst,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::Admin, Role::Caseworker, Role::Jobcenter, Role::Provider, Role::Employer, Role::Analyst];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Caseworker => "caseworker",
            Role::Jobcenter => "jobcenter",
            Role::Provider => "provider",
            Role::Employer => "employer",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Roles that act for an organisation and therefore need the `org` claim.
    pub fn needs_org(self) -> bool {
        matches!(self, Role::Provider | Role::Employer | Role::Jobcenter)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call one operation.
#[derive(Debug)]
pub struct Access {
    /// The operation's `operationId` in the OpenAPI document.
    pub operation_id: &'static str,
    pub roles: &'static [Role],
}

impl Access {
    pub const fn new(operation_id: &'static str, roles: &'static [Role]) -> Self {
        Self { operation_id, roles }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub sub: String,
    pub iss: Option<String>,
    pub roles: Vec<Role>,
    pub org: Option<String>,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `403` unless one of the caller's roles is allowed by `access`.
    pub fn require(&self, access: &Access) -> Result<(), ApiError> {
        if access.roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let allowed: Vec<_> = access.roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!("This operation needs one of the roles: {}.", allowed.join(", "))))
        }
    }

    /// Office staff see and change everything within their role's reach.
    pub fn is_office(&self) -> bool {
        self.has(Role::Admin) || self.has(Role::Caseworker)
    }

    /// True when the caller acts for `org` under `role` (e.g. a provider for its own record).
    pub fn acts_for(&self, role: Role, org: &str) -> bool {
        self.has(role) && self.org.as_deref() == Some(org)
    }

    /// The idempotency scope: issuer plus subject.
    pub fn scope(&self) -> String {
        format!("{}|{}", self.iss.as_deref().unwrap_or(""), self.sub)
    }

    /// The organisation that appears as `referring_org` / creator: the office itself for its staff.
    pub fn org_or_office(&self) -> String {
        if self.is_office() { "office".to_owned() } else { self.org.clone().unwrap_or_else(|| "office".to_owned()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[Role]) -> Principal {
        Principal { sub: "s".into(), iss: None, roles: roles.to_vec(), org: Some("o".into()) }
    }

    #[test]
    fn require_admits_any_listed_role_and_refuses_others() {
        const A: Access = Access::new("op", &[Role::Admin, Role::Caseworker]);
        assert!(principal(&[Role::Caseworker]).require(&A).is_ok());
        assert!(principal(&[Role::Analyst, Role::Admin]).require(&A).is_ok());
        let err = principal(&[Role::Provider]).require(&A).err().map(|e| e.problem);
        assert_eq!(err, Some(crate::error::Problem::Forbidden));
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
