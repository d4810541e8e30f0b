//! Ranking open measures and vacancies for a client (SPEC §3 "Matching").
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use super::codes::{EducationLevel, TargetGroup};

/// Why a match scored: each reason adds to the score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The same five-digit KldB code (+40).
    SameOccupation,
    /// The same KldB group, first three digits (+25).
    SameOccupationGroup,
    /// The same KldB field, first two digits (+10).
    SameOccupationField,
    /// In the client's district (+20).
    SameDistrict,
    /// The measure is for one of the client's target groups (+15).
    TargetGroupFit,
    /// The client speaks every language the vacancy asks for (+10).
    LanguageFit,
    /// Starts within 30 days of the client's availability (+10; within 90: +5).
    EarliestStart,
}

/// What matching knows of the client.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub district: Option<String>,
    pub target_groups: Vec<TargetGroup>,
    pub occupation_codes: Vec<String>,
    pub languages: Vec<String>,
    pub education: Option<EducationLevel>,
    pub available_from: NaiveDate,
}

/// What matching knows of a measure or vacancy.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    pub district: Option<String>,
    /// Measures only; empty means open to all.
    pub target_groups: Vec<TargetGroup>,
    pub occupation_codes: Vec<String>,
    /// Vacancies only: languages required.
    pub languages: Vec<String>,
    pub start_date: Option<NaiveDate>,
}

/// Education levels in order (vocational training counts above the Abitur
/// here only in the sense that it is a completed qualification).
pub fn education_rank(level: EducationLevel) -> u8 {
    match level {
        EducationLevel::None => 0,
        EducationLevel::LowerSecondary => 1,
        EducationLevel::IntermediateSecondary => 2,
        EducationLevel::UpperSecondary => 3,
        EducationLevel::Vocational => 4,
        EducationLevel::Academic => 5,
    }
}

/// The client meets a vacancy's hard requirements (education, languages), as
/// far as both sides are known.
pub fn meets_vacancy(profile: &Profile, min_education: Option<EducationLevel>, languages: &[String]) -> bool {
    let education_ok = match (min_education, profile.education) {
        (Some(min), Some(has)) => education_rank(has) >= education_rank(min),
        _ => true,
    };
    let languages_ok =
        languages.is_empty() || profile.languages.is_empty() || languages.iter().all(|l| profile.languages.contains(l));
    education_ok && languages_ok
}

pub fn score(profile: &Profile, offer: &Offer) -> (u32, Vec<Reason>) {
    let mut reasons = Vec::new();
    let mut points = 0;
    let best_occupation = offer
        .occupation_codes
        .iter()
        .flat_map(|o| profile.occupation_codes.iter().map(move |c| common_prefix(o, c)))
        .max()
        .unwrap_or(0);
    match best_occupation {
        5 => {
            points += 40;
            reasons.push(Reason::SameOccupation);
        }
        3 | 4 => {
            points += 25;
            reasons.push(Reason::SameOccupationGroup);
        }
        2 => {
            points += 10;
            reasons.push(Reason::SameOccupationField);
        }
        _ => {}
    }
    if offer.district.is_some() && offer.district == profile.district {
        points += 20;
        reasons.push(Reason::SameDistrict);
    }
    if offer.target_groups.iter().any(|g| profile.target_groups.contains(g)) {
        points += 15;
        reasons.push(Reason::TargetGroupFit);
    }
    if !offer.languages.is_empty() && offer.languages.iter().all(|l| profile.languages.contains(l)) {
        points += 10;
        reasons.push(Reason::LanguageFit);
    }
    if let Some(start) = offer.start_date {
        let days = (start - profile.available_from).num_days().abs();
        if days <= 30 {
            points += 10;
            reasons.push(Reason::EarliestStart);
        } else if days <= 90 {
            points += 5;
            reasons.push(Reason::EarliestStart);
        }
    }
    (points, reasons)
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn exact_occupation_and_district_score_highest() {
        let p = Profile {
            district: Some("21".into()),
            occupation_codes: vec!["29302".into()],
            available_from: d("2026-12-01"),
            ..Default::default()
        };
        let exact = Offer { district: Some("21".into()), occupation_codes: vec!["29302".into()], ..Default::default() };
        let group = Offer { occupation_codes: vec!["29312".into()], ..Default::default() };
        let field = Offer { occupation_codes: vec!["29102".into()], ..Default::default() };
        assert_eq!(score(&p, &exact), (60, vec![Reason::SameOccupation, Reason::SameDistrict]));
        assert_eq!(score(&p, &group), (25, vec![Reason::SameOccupationGroup]));
        assert_eq!(score(&p, &field), (10, vec![Reason::SameOccupationField]));
    }

    #[test]
    fn start_near_availability_and_target_group_count() {
        let p =
            Profile { target_groups: vec![TargetGroup::Youth], available_from: d("2026-12-01"), ..Default::default() };
        let o =
            Offer { target_groups: vec![TargetGroup::Youth], start_date: Some(d("2026-12-15")), ..Default::default() };
        assert_eq!(score(&p, &o), (25, vec![Reason::TargetGroupFit, Reason::EarliestStart]));
    }

    #[test]
    fn vacancy_requirements() {
        let p = Profile {
            education: Some(EducationLevel::LowerSecondary),
            languages: vec!["de".into()],
            ..Default::default()
        };
        assert!(meets_vacancy(&p, Some(EducationLevel::LowerSecondary), &["de".into()]));
        assert!(!meets_vacancy(&p, Some(EducationLevel::UpperSecondary), &[]));
        assert!(!meets_vacancy(&p, None, &["de".into(), "en".into()]));
    }
}
