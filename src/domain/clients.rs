//! Clients (Klient:innen) and their counselling log — social data (SPEC §5).
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    codes::{ClientStatus, ConsultationTopic, EducationLevel, EmployerConsultationTopic, TargetGroup},
    values::Address,
};

/// The client's consent (Einwilligung).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Consent {
    /// Consent to processing at all (Art. 6/9 GDPR).
    pub data_processing: bool,
    /// Whether providers and employers may see name and contact in referrals.
    pub share_with_providers: bool,
    #[serde(serialize_with = "super::timestamps::option_datetime")]
    pub given_at: Option<DateTime<Utc>>,
}

/// The writable fields of a client after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFields {
    pub external_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub date_of_birth: Option<NaiveDate>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub district: Option<String>,
    pub target_groups: Vec<TargetGroup>,
    pub education_level: Option<EducationLevel>,
    pub occupation_codes: Vec<String>,
    pub languages: Vec<String>,
    pub available_from: Option<NaiveDate>,
    pub hours_per_week: Option<i32>,
    pub consent: Consent,
    pub status: ClientStatus,
}

/// Youngest and oldest plausible age of a client of the office.
pub const MIN_AGE: i32 = 14;
pub const MAX_AGE: i32 = 100;

/// Age in whole years on `on`.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// What a consultation is about: a client's or an employer's topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Client(ConsultationTopic),
    Employer(EmployerConsultationTopic),
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Client(t) => t.as_str(),
            Topic::Employer(t) => t.as_str(),
        }
    }
}

/// A counselling entry after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsultationFields {
    pub held_on: NaiveDate,
    pub topic: Topic,
    pub duration_minutes: Option<i32>,
    pub notes: Option<String>,
    pub follow_up_on: Option<NaiveDate>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_whole_years_up_to_the_birthday() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(age_on(d("2000-06-15"), d("2026-06-14")), 25);
        assert_eq!(age_on(d("2000-06-15"), d("2026-06-15")), 26);
    }
}
