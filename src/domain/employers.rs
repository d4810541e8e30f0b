//! Employers (Unternehmen) and their vacancies (Stellen).
use chrono::NaiveDate;

use super::{
    codes::{EducationLevel, EmployerNeed, SettlementStatus, VacancyKind, VacancyStatus},
    values::{Address, Contact},
};

#[derive(Debug, Clone, PartialEq)]
pub struct EmployerFields {
    pub name: String,
    pub legal_form: Option<String>,
    /// WZ 2008 code, e.g. `47.11`.
    pub sector: Option<String>,
    pub address: Option<Address>,
    pub district: Option<String>,
    pub employee_count: Option<i32>,
    pub settlement_status: SettlementStatus,
    pub is_training_company: bool,
    pub needs: Vec<EmployerNeed>,
    pub contact: Option<Contact>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VacancyFields {
    pub kind: VacancyKind,
    pub title: String,
    pub occupation_code: String,
    pub description: Option<String>,
    pub hours_per_week: Option<i32>,
    pub start_date: Option<NaiveDate>,
    pub positions: i32,
    pub min_education_level: Option<EducationLevel>,
    pub languages: Vec<String>,
    pub district: Option<String>,
    pub status: VacancyStatus,
}

/// A WZ 2008 code: section letter or 2–5 digits with a dot after the second
/// (`47`, `47.1`, `47.11`, `47.11.0`).
pub fn is_wz_code(code: &str) -> bool {
    let digits: String = code.chars().filter(|c| *c != '.').collect();
    let shape_ok = code.len() <= 7
        && digits.len() >= 2
        && digits.chars().all(|c| c.is_ascii_digit())
        && code.chars().nth(2).is_none_or(|c| c == '.')
        && !code.ends_with('.');
    shape_ok || (code.len() == 1 && code.chars().all(|c| c.is_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wz_codes() {
        for ok in ["47", "47.1", "47.11", "47.11.0", "C"] {
            assert!(is_wz_code(ok), "{ok}");
        }
        for bad in ["4", "4711", "47.", "ab.cd", "47,11"] {
            assert!(!is_wz_code(bad), "{bad}");
        }
    }
}
