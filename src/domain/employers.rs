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
    // Exactly the declared pattern `^([A-Z]|[0-9]{2}(\.[0-9]{1,2}(\.[0-9])?)?)$`
    // (`47..1` and a trailing space used to pass the looser check).
    if code.len() == 1 {
        return code.chars().all(|c| c.is_ascii_uppercase());
    }
    let digits = |part: &str, lens: &[usize]| lens.contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = code.split('.').collect();
    match parts.as_slice() {
        [class] => digits(class, &[2]),
        [class, group] => digits(class, &[2]) && digits(group, &[1, 2]),
        [class, group, sub] => digits(class, &[2]) && digits(group, &[1, 2]) && digits(sub, &[1]),
        _ => false,
    }
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
