//! What the change feed (`GET /api/v1/events`) reports: kinds of change,
//! never their content — ids, types, statuses and timestamps only.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The type of a change-feed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ChangeType {
    #[serde(rename = "referral.created")]
    ReferralCreated,
    /// Every status change, the expiry job's included.
    #[serde(rename = "referral.status_changed")]
    ReferralStatusChanged,
    #[serde(rename = "client.created")]
    ClientCreated,
    #[serde(rename = "client.updated")]
    ClientUpdated,
    /// Personal data destroyed (GDPR Art. 17); the id stays.
    #[serde(rename = "client.erased")]
    ClientErased,
    /// A measure was created, changed (capacity, seats taken, status) or deleted.
    #[serde(rename = "measure.changed")]
    MeasureChanged,
    /// A vacancy's last position was taken.
    #[serde(rename = "vacancy.filled")]
    VacancyFilled,
}

impl ChangeType {
    pub const ALL: [ChangeType; 7] = [
        Self::ReferralCreated,
        Self::ReferralStatusChanged,
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientErased,
        Self::MeasureChanged,
        Self::VacancyFilled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReferralCreated => "referral.created",
            Self::ReferralStatusChanged => "referral.status_changed",
            Self::ClientCreated => "client.created",
            Self::ClientUpdated => "client.updated",
            Self::ClientErased => "client.erased",
            Self::MeasureChanged => "measure.changed",
            Self::VacancyFilled => "vacancy.filled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The resource it is about (`referral`, `client`, `measure`, `vacancy`).
    pub fn resource(self) -> &'static str {
        match self {
            Self::ReferralCreated | Self::ReferralStatusChanged => "referral",
            Self::ClientCreated | Self::ClientUpdated | Self::ClientErased => "client",
            Self::MeasureChanged => "measure",
            Self::VacancyFilled => "vacancy",
        }
    }

    /// The resource's collection path under `/api/v1`.
    pub fn collection(self) -> &'static str {
        match self.resource() {
            "referral" => "referrals",
            "client" => "clients",
            "measure" => "measures",
            _ => "vacancies",
        }
    }
}

/// The `types` filter: a comma list of event types; a bad entry names itself.
pub fn parse_types(value: &str) -> Result<Vec<ChangeType>, String> {
    let mut types = Vec::new();
    for part in value.split(',') {
        let t = ChangeType::parse(part.trim()).ok_or_else(|| format!("unknown event type '{}'", part.trim()))?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(types)
}

/// The `types` pattern the OpenAPI document declares (and the edge enforces).
pub const TYPES_PATTERN: &str = "^(referral\\.created|referral\\.status_changed|client\\.created|client\\.updated|client\\.erased|measure\\.changed|vacancy\\.filled)(,(referral\\.created|referral\\.status_changed|client\\.created|client\\.updated|client\\.erased|measure\\.changed|vacancy\\.filled))*$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_and_match_the_declared_pattern() {
        let pattern = regex::Regex::new(TYPES_PATTERN).unwrap();
        for t in ChangeType::ALL {
            assert_eq!(ChangeType::parse(t.as_str()), Some(t));
            assert!(pattern.is_match(t.as_str()));
        }
        assert!(pattern.is_match("client.created,measure.changed"));
        assert!(!pattern.is_match("client.created,"));
    }

    #[test]
    fn a_types_list_is_parsed_without_repeats() {
        assert_eq!(
            parse_types("measure.changed,client.erased,measure.changed").unwrap(),
            vec![ChangeType::MeasureChanged, ChangeType::ClientErased]
        );
        assert!(parse_types("client.deleted").is_err());
    }
}
