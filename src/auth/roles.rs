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

/// The kind of organisation an `org` claim names. An org id only means
/// something together with its kind: the job centre `"p-1"` and the provider
/// `"p-1"` are different owners, so every ownership check compares both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgKind {
    /// The office itself (its staff: admin, caseworker); the id is always `office`.
    Office,
    Jobcenter,
    Provider,
    Employer,
}

impl OrgKind {
    pub const ALL: [OrgKind; 4] = [OrgKind::Office, OrgKind::Jobcenter, OrgKind::Provider, OrgKind::Employer];

    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Office => "office",
            OrgKind::Jobcenter => "jobcenter",
            OrgKind::Provider => "provider",
            OrgKind::Employer => "employer",
        }
    }

    pub fn parse(s: &str) -> Option<OrgKind> {
        OrgKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind a partner role acts as.
    pub fn of_role(role: Role) -> Option<OrgKind> {
        match role {
            Role::Jobcenter => Some(OrgKind::Jobcenter),
            Role::Provider => Some(OrgKind::Provider),
            Role::Employer => Some(OrgKind::Employer),
            _ => None,
        }
    }
}

/// The office's own org id (`referring_org`, `created_by_org`, webhook `org`).
pub const OFFICE_ORG: &str = "office";

/// An owner: an organisation of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub kind: OrgKind,
    pub org: String,
}

impl Owner {
    pub fn office() -> Self {
        Self { kind: OrgKind::Office, org: OFFICE_ORG.to_owned() }
    }
}

/// The authenticated caller. `org` is canonical (trimmed; a UUID in its
/// lower-case hyphenated form) and never `office` for a partner role: the
/// authenticator refuses such tokens, so comparisons here can be exact.
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

    /// The org this caller claims under `role`, if it has that role.
    pub fn org_as(&self, role: Role) -> Option<&str> {
        if self.has(role) { self.org.as_deref() } else { None }
    }

    /// The job centre this caller acts for (its `org` under the `jobcenter` role).
    pub fn jobcenter_org(&self) -> Option<&str> {
        self.org_as(Role::Jobcenter)
    }

    /// The provider this caller is: its `org` under the `provider` role, when that is an id.
    pub fn provider_id(&self) -> Option<uuid::Uuid> {
        self.org_as(Role::Provider).and_then(|o| uuid::Uuid::parse_str(o).ok())
    }

    /// The employer this caller is: its `org` under the `employer` role, when that is an id.
    pub fn employer_id(&self) -> Option<uuid::Uuid> {
        self.org_as(Role::Employer).and_then(|o| uuid::Uuid::parse_str(o).ok())
    }

    /// True when the caller acts for `org` under `role` (e.g. a provider for its own record).
    pub fn acts_for(&self, role: Role, org: &str) -> bool {
        self.org_as(role) == Some(org)
    }

    /// Every owner this caller speaks for, one per role: the office for its
    /// staff, `(kind, org)` for each partner role. Sorted, without duplicates.
    pub fn owners(&self) -> Vec<Owner> {
        let mut owners = Vec::new();
        if self.is_office() {
            owners.push(Owner::office());
        }
        for role in &self.roles {
            if let (Some(kind), Some(org)) = (OrgKind::of_role(*role), &self.org) {
                owners.push(Owner { kind, org: org.clone() });
            }
        }
        owners.sort();
        owners.dedup();
        owners
    }

    /// The owner this caller acts as when it writes something owned (a
    /// webhook): the office for its staff, else its one partner role. With
    /// several partner roles the one `preferred` names wins when the caller
    /// has it, else the first in the order job centre, provider, employer.
    pub fn acting_owner(&self, preferred: Option<OrgKind>) -> Owner {
        let owners = self.owners();
        if let Some(office) = owners.iter().find(|o| o.kind == OrgKind::Office) {
            return office.clone();
        }
        preferred
            .and_then(|k| owners.iter().find(|o| o.kind == k))
            .or_else(|| owners.first())
            .cloned()
            .unwrap_or_else(Owner::office)
    }

    /// The key under which this caller's idempotent answers are stored and its
    /// rate limit is counted: the typed owner — issuer, subject, the sorted
    /// roles and every `(kind, org)` it speaks for — so a stored answer is only
    /// ever replayed to the very same authority (an admin and a provider that
    /// share `sub: ops` are different callers). Hashed with SHA-256 (hex)
    /// because the canonical string can outgrow the `VARCHAR(600)` column and
    /// the stored key need not be readable; a collision would need a SHA-256
    /// second preimage.
    pub fn scope(&self) -> String {
        use sha2::{Digest, Sha256};
        let roles: Vec<&str> = self.roles.iter().map(|r| r.as_str()).collect();
        let owners: Vec<String> = self.owners().iter().map(|o| format!("{}:{}", o.kind.as_str(), o.org)).collect();
        // Length-prefixed fields: no value can shift into its neighbour.
        let mut canonical = String::from("owner-v2");
        for field in [self.iss.as_deref().unwrap_or(""), &self.sub, &roles.join(","), &owners.join(",")] {
            canonical.push_str(&format!("|{}:{field}", field.len()));
        }
        let digest = Sha256::digest(canonical.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The organisation that appears as `referring_org` / creator: the office
    /// itself for its staff, else the job centre the caller acts for. Only
    /// office staff and job centres create clients and referrals.
    pub fn org_or_office(&self) -> String {
        if self.is_office() {
            return OFFICE_ORG.to_owned();
        }
        self.jobcenter_org().or(self.org.as_deref()).unwrap_or(OFFICE_ORG).to_owned()
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
    fn scope_separates_callers_that_share_a_sub() {
        let with = |roles: &[Role], org: Option<&str>| Principal {
            sub: "ops".into(),
            iss: None,
            roles: roles.to_vec(),
            org: org.map(str::to_owned),
        };
        let admin = with(&[Role::Admin], None);
        let provider = with(&[Role::Provider], Some("p-1"));
        let jobcenter = with(&[Role::Jobcenter], Some("p-1"));
        let other_jobcenter = with(&[Role::Jobcenter], Some("p-2"));
        let scopes = [admin.scope(), provider.scope(), jobcenter.scope(), other_jobcenter.scope()];
        for (i, a) in scopes.iter().enumerate() {
            assert_eq!(a.len(), 64, "SHA-256 hex fits the VARCHAR(600) column");
            for b in &scopes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(jobcenter.scope(), with(&[Role::Jobcenter], Some("p-1")).scope());
    }

    #[test]
    fn owners_pair_the_org_with_each_partner_role() {
        let p = Principal {
            sub: "s".into(),
            iss: None,
            roles: vec![Role::Jobcenter, Role::Employer],
            org: Some("e-1".into()),
        };
        let kinds: Vec<OrgKind> = p.owners().iter().map(|o| o.kind).collect();
        assert_eq!(kinds, vec![OrgKind::Jobcenter, OrgKind::Employer]);
        assert_eq!(p.jobcenter_org(), Some("e-1"));
        assert!(!p.acts_for(Role::Provider, "e-1"));
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
