//! Matching a client against open measures and vacancies.
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::{
    auth::Principal,
    domain::{
        audit::{AuditContext, action},
        clients::age_on,
        codes::{CodeList, EducationLevel, MeasureStatus, TargetGroup},
        ids::now,
        matching::{Offer, Profile, Reason, meets_vacancy, score},
        referrals::ineligibility,
    },
    entities::{measure, vacancy},
    error::ApiError,
    repository::{self, tags},
};

/// A ranked candidate.
pub enum Candidate {
    Measure(measure::Model),
    Vacancy(vacancy::Model),
}

pub struct Match {
    pub candidate: Candidate,
    pub score: u32,
    pub reasons: Vec<Reason>,
}

fn groups(stored: &str) -> Vec<TargetGroup> {
    tags::split(stored).iter().filter_map(|g| TargetGroup::parse(g)).collect()
}

/// Open measures with a free seat the client is eligible for and/or open
/// vacancies whose requirements the client meets, best first.
pub async fn for_client(
    db: &impl ConnectionTrait,
    audit: &AuditContext,
    principal: &Principal,
    client_id: Uuid,
    measures: bool,
    vacancies: bool,
    limit: usize,
) -> Result<Vec<Match>, ApiError> {
    let client = super::clients::get(db, audit, principal, client_id, action::CLIENT_MATCHES).await?;
    let today = now().date_naive();
    let profile = Profile {
        district: client.district.clone(),
        target_groups: groups(&client.target_groups),
        occupation_codes: tags::split(&client.occupation_codes),
        languages: tags::split(&client.languages),
        education: client.education_level.as_deref().and_then(EducationLevel::parse),
        available_from: client.available_from.filter(|d| *d > today).unwrap_or(today),
    };
    // Targets the client is already referred to are not offered again.
    let (referred_measures, referred_vacancies) = repository::referrals::active_targets(db, client_id).await?;
    let mut out = Vec::new();
    if measures {
        for m in repository::measures::all(db).await? {
            // SPEC §3 Matching: open measures with free seats. A `planned`
            // measure cannot take anyone yet, so it is not offered.
            let open = m.status == MeasureStatus::Open.as_str();
            let measure_groups = groups(&m.target_groups);
            let on = m.start_date.filter(|d| *d > today).unwrap_or(today);
            let age = client.date_of_birth.map(|b| age_on(b, on));
            if !open
                || referred_measures.contains(&m.id)
                || m.seats_taken >= m.capacity
                || !ineligibility(&measure_groups, &profile.target_groups, m.min_age, m.max_age, age).is_empty()
            {
                continue;
            }
            let offer = Offer {
                district: m.district.clone(),
                target_groups: measure_groups,
                occupation_codes: tags::split(&m.occupation_codes),
                languages: Vec::new(),
                start_date: m.start_date,
            };
            let (score, reasons) = score(&profile, &offer);
            out.push(Match { candidate: Candidate::Measure(m), score, reasons });
        }
    }
    if vacancies {
        for v in repository::vacancies::open(db).await? {
            let languages = tags::split(&v.languages);
            let min_education = v.min_education_level.as_deref().and_then(EducationLevel::parse);
            if referred_vacancies.contains(&v.id)
                || v.positions_filled >= v.positions
                || !meets_vacancy(&profile, min_education, &languages)
            {
                continue;
            }
            let offer = Offer {
                district: v.district.clone(),
                target_groups: Vec::new(),
                occupation_codes: vec![v.occupation_code.clone()],
                languages,
                start_date: v.start_date,
            };
            let (score, reasons) = score(&profile, &offer);
            out.push(Match { candidate: Candidate::Vacancy(v), score, reasons });
        }
    }
    let start = |m: &Match| match &m.candidate {
        Candidate::Measure(x) => x.start_date,
        Candidate::Vacancy(x) => x.start_date,
    };
    out.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| start(a).cmp(&start(b))));
    out.truncate(limit);
    Ok(out)
}
