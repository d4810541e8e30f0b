//! Every enumeration of the SPEC, each with German and English labels.
//!
//! One macro invocation per list gives the Rust enum, its wire code, its
//! labels and its code-list name, so `/api/v1/code-lists/{name}`, the OpenAPI
//! schemas and validation all read from the same table.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One entry of a code list.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq, Deserialize)]
pub struct Code {
    pub code: String,
    pub label_de: String,
    pub label_en: String,
}

/// A code list known at compile time.
pub trait CodeList: Sized + Copy + 'static {
    const NAME: &'static str;
    const ALL: &'static [Self];
    fn code(self) -> &'static str;
    fn label_de(self) -> &'static str;
    fn label_en(self) -> &'static str;
    fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.code() == code)
    }
    fn entries() -> Vec<Code> {
        Self::ALL
            .iter()
            .map(|v| Code { code: v.code().into(), label_de: v.label_de().into(), label_en: v.label_en().into() })
            .collect()
    }
    /// "one of: a, b, c" for validation messages.
    fn expected() -> String {
        let codes: Vec<_> = Self::ALL.iter().map(|v| v.code()).collect();
        format!("must be one of: {}", codes.join(", "))
    }
}

// `$code` is a `tt`, not a `literal`: a `literal` fragment reaches derive
// macros wrapped in an invisible group, and utoipa then skips the
// `#[serde(rename)]`, so the OpenAPI enums showed the Rust variant names
// (`LongTermUnemployed`) instead of the wire codes. The test
// `openapi_enums_are_the_wire_codes` guards this.
macro_rules! code_list {
    ($(#[$doc:meta])* $name:ident = $list:literal { $($variant:ident = $code:tt, $de:literal, $en:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name { $( #[serde(rename = $code)] $variant, )+ }

        impl CodeList for $name {
            const NAME: &'static str = $list;
            const ALL: &'static [Self] = &[$($name::$variant),+];
            fn code(self) -> &'static str { match self { $($name::$variant => $code,)+ } }
            fn label_de(self) -> &'static str { match self { $($name::$variant => $de,)+ } }
            fn label_en(self) -> &'static str { match self { $($name::$variant => $en,)+ } }
        }

        impl $name {
            pub fn as_str(self) -> &'static str { CodeList::code(self) }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

code_list! {
    /// Kind of a measure provider (Träger).
    ProviderKind = "provider_kinds" {
        TrainingProvider = "training_provider", "Bildungsträger", "Training provider";
        SocialEnterprise = "social_enterprise", "Sozialunternehmen", "Social enterprise";
        Association = "association", "Verein / Verband", "Association";
        Chamber = "chamber", "Kammer", "Chamber";
        PublicBody = "public_body", "Öffentliche Einrichtung", "Public body";
        Other = "other", "Sonstige", "Other";
    }
}

code_list! {
    /// Target groups of clients and measures (Zielgruppen).
    TargetGroup = "target_groups" {
        Unemployed = "unemployed", "Arbeitslose", "Unemployed";
        LongTermUnemployed = "long_term_unemployed", "Langzeitarbeitslose", "Long-term unemployed";
        Youth = "youth", "Jugendliche", "Young people";
        SchoolLeaver = "school_leaver", "Schulabgänger:innen", "School leavers";
        Founder = "founder", "Existenzgründer:innen", "Business founders";
        Volunteer = "volunteer", "Ehrenamtliche", "Volunteers";
        Migrant = "migrant", "Menschen mit Migrationsgeschichte", "Migrants";
        SingleParent = "single_parent", "Alleinerziehende", "Single parents";
        Returner = "returner", "Berufsrückkehrer:innen", "Returners to work";
        Disability = "disability", "Menschen mit Behinderung", "People with disabilities";
    }
}

code_list! {
    /// Highest school or vocational education (Bildungsabschluss).
    EducationLevel = "education_levels" {
        None = "none", "Ohne Abschluss", "No qualification";
        LowerSecondary = "lower_secondary", "Hauptschulabschluss", "Lower secondary";
        IntermediateSecondary = "intermediate_secondary", "Realschulabschluss", "Intermediate secondary";
        UpperSecondary = "upper_secondary", "Abitur / Fachhochschulreife", "Upper secondary";
        Vocational = "vocational", "Berufsausbildung", "Vocational training";
        Academic = "academic", "Hochschulabschluss", "University degree";
    }
}

code_list! {
    /// Topics of client counselling (Beratungsthemen).
    ConsultationTopic = "consultation_topics" {
        CareerPlanning = "career_planning", "Berufswegeplanung", "Career planning";
        EducationCounselling = "education_counselling", "Bildungsberatung", "Education counselling";
        ApplicationSupport = "application_support", "Bewerbungsunterstützung", "Application support";
        CareerOrientation = "career_orientation", "Berufsorientierung", "Career orientation";
        InternshipSearch = "internship_search", "Praktikumssuche", "Internship search";
        FoundingCoaching = "founding_coaching", "Gründungscoaching", "Founding coaching";
        BusinessPlan = "business_plan", "Businessplan", "Business plan";
        PostFoundingSupport = "post_founding_support", "Nachgründungsbetreuung", "Post-founding support";
        Volunteering = "volunteering", "Ehrenamt", "Volunteering";
        FundingAdvice = "funding_advice", "Fördermittelberatung", "Funding advice";
        Other = "other", "Sonstiges", "Other";
    }
}

code_list! {
    /// Topics of employer counselling (Unternehmensberatung).
    EmployerConsultationTopic = "employer_consultation_topics" {
        Recruiting = "recruiting", "Personalgewinnung", "Recruiting";
        StaffSelection = "staff_selection", "Personalauswahl", "Staff selection";
        StaffDevelopment = "staff_development", "Personalentwicklung", "Staff development";
        ApprenticeshipTraining = "apprenticeship_training", "Ausbildung", "Apprenticeship training";
        SettlementSupport = "settlement_support", "Ansiedlungsunterstützung", "Settlement support";
        FundingAdvice = "funding_advice", "Fördermittelberatung", "Funding advice";
        Other = "other", "Sonstiges", "Other";
    }
}

code_list! {
    /// What an employer needs from the office (Unterstützungsbedarf).
    EmployerNeed = "employer_needs" {
        Recruiting = "recruiting", "Personalgewinnung", "Recruiting";
        StaffSelection = "staff_selection", "Personalauswahl", "Staff selection";
        StaffDevelopment = "staff_development", "Personalentwicklung", "Staff development";
        ApprenticeshipTraining = "apprenticeship_training", "Ausbildung", "Apprenticeship training";
        FundingAdvice = "funding_advice", "Fördermittelberatung", "Funding advice";
        SettlementSupport = "settlement_support", "Ansiedlungsunterstützung", "Settlement support";
    }
}

code_list! {
    /// Whether an employer is in the district or thinking of settling there.
    SettlementStatus = "settlement_statuses" {
        Established = "established", "Ansässig", "Established";
        Settling = "settling", "In Ansiedlung", "Settling";
        Interested = "interested", "Ansiedlungsinteressiert", "Interested";
    }
}

code_list! {
    /// Kind of a vacancy (Stellenart).
    VacancyKind = "vacancy_kinds" {
        Job = "job", "Arbeitsstelle", "Job";
        Apprenticeship = "apprenticeship", "Ausbildungsplatz", "Apprenticeship";
        Internship = "internship", "Praktikum", "Internship";
        Volunteer = "volunteer", "Ehrenamt", "Volunteer post";
    }
}

code_list! {
    /// Status of a vacancy.
    VacancyStatus = "vacancy_statuses" {
        Open = "open", "Offen", "Open";
        Filled = "filled", "Besetzt", "Filled";
        Closed = "closed", "Geschlossen", "Closed";
    }
}

code_list! {
    /// Kind of a measure (Maßnahmeart).
    MeasureKind = "measure_kinds" {
        VocationalTraining = "vocational_training", "Berufsausbildung / Umschulung", "Vocational training";
        FurtherTraining = "further_training", "Weiterbildung", "Further training";
        Activation = "activation", "Aktivierung", "Activation";
        JobCreation = "job_creation", "Arbeitsgelegenheit", "Job creation";
        CareerOrientation = "career_orientation", "Berufsorientierung", "Career orientation";
        ApplicationTraining = "application_training", "Bewerbungstraining", "Application training";
        ApprenticeshipPreparation = "apprenticeship_preparation", "Ausbildungsvorbereitung", "Apprenticeship preparation";
        FoundingCoaching = "founding_coaching", "Gründungscoaching", "Founding coaching";
        LanguageCourse = "language_course", "Sprachkurs", "Language course";
        VolunteerProgramme = "volunteer_programme", "Freiwilligenprogramm", "Volunteer programme";
    }
}

code_list! {
    /// Status of a measure.
    MeasureStatus = "measure_statuses" {
        Planned = "planned", "Geplant", "Planned";
        Open = "open", "Offen", "Open";
        Running = "running", "Laufend", "Running";
        Closed = "closed", "Abgeschlossen", "Closed";
    }
}

code_list! {
    /// Legal basis or programme that funds a measure (Förderung).
    FundingType = "funding_types" {
        Sgb2_16 = "sgb2_16", "SGB II § 16", "SGB II s. 16";
        Sgb3_45 = "sgb3_45", "SGB III § 45 (AVGS)", "SGB III s. 45 (voucher)";
        Sgb3_81 = "sgb3_81", "SGB III § 81 (Bildungsgutschein)", "SGB III s. 81 (training voucher)";
        Esf = "esf", "Europäischer Sozialfonds", "European Social Fund";
        SozialeStadt = "soziale_stadt", "Soziale Stadt", "Socially Integrative City";
        Municipal = "municipal", "Kommunal", "Municipal";
        Other = "other", "Sonstige", "Other";
    }
}

code_list! {
    /// Status of a client record.
    ClientStatus = "client_statuses" {
        Active = "active", "Aktiv", "Active";
        Inactive = "inactive", "Inaktiv", "Inactive";
        Erased = "erased", "Gelöscht", "Erased";
    }
}

code_list! {
    /// Status of a referral (FHIR `Task` status codes).
    ReferralStatus = "referral_statuses" {
        Requested = "requested", "Angefragt", "Requested";
        OnHold = "on_hold", "Warteliste", "On hold";
        Accepted = "accepted", "Angenommen", "Accepted";
        InProgress = "in_progress", "Begonnen", "In progress";
        Completed = "completed", "Abgeschlossen", "Completed";
        Rejected = "rejected", "Abgelehnt", "Rejected";
        Failed = "failed", "Abgebrochen", "Failed";
        Cancelled = "cancelled", "Storniert", "Cancelled";
        Expired = "expired", "Abgelaufen", "Expired";
    }
}

code_list! {
    /// Actions on a referral.
    ReferralAction = "referral_actions" {
        Accept = "accept", "Annehmen", "Accept";
        Waitlist = "waitlist", "Auf Warteliste setzen", "Waitlist";
        Reject = "reject", "Ablehnen", "Reject";
        Start = "start", "Beginnen", "Start";
        Complete = "complete", "Abschließen", "Complete";
        Fail = "fail", "Abbrechen", "Fail";
        Cancel = "cancel", "Stornieren", "Cancel";
        Expire = "expire", "Ablaufen lassen", "Expire";
    }
}

code_list! {
    /// Reasons for rejecting, cancelling or failing a referral.
    ReasonCode = "reason_codes" {
        NotEligible = "not_eligible", "Nicht förderfähig", "Not eligible";
        NoCapacity = "no_capacity", "Keine Kapazität", "No capacity";
        ClientDeclined = "client_declined", "Von Klient:in abgelehnt", "Client declined";
        ClientUnreachable = "client_unreachable", "Klient:in nicht erreichbar", "Client unreachable";
        NoLongerNeeded = "no_longer_needed", "Nicht mehr erforderlich", "No longer needed";
        ReferredElsewhere = "referred_elsewhere", "Anderweitig vermittelt", "Referred elsewhere";
        MissingDocuments = "missing_documents", "Unterlagen fehlen", "Missing documents";
        OutsideServiceArea = "outside_service_area", "Außerhalb des Einzugsgebiets", "Outside service area";
        Duplicate = "duplicate", "Doppelt", "Duplicate";
        Other = "other", "Sonstiges", "Other";
    }
}

code_list! {
    /// Result of a completed referral (Verbleib).
    Outcome = "outcomes" {
        Employed = "employed", "Beschäftigung", "Employed";
        Apprenticeship = "apprenticeship", "Ausbildung", "Apprenticeship";
        FurtherTraining = "further_training", "Weiterbildung", "Further training";
        SelfEmployed = "self_employed", "Selbstständigkeit", "Self-employed";
        Volunteering = "volunteering", "Ehrenamt", "Volunteering";
        None = "none", "Kein Verbleib", "None";
        Unknown = "unknown", "Unbekannt", "Unknown";
    }
}

code_list! {
    /// Who may apply to a funding programme.
    ApplicantKind = "applicant_kinds" {
        Client = "client", "Klient:in", "Client";
        Employer = "employer", "Unternehmen", "Employer";
        Provider = "provider", "Träger", "Provider";
        Association = "association", "Verein", "Association";
    }
}

code_list! {
    /// Status of a funding application (Förderantrag).
    FundingApplicationStatus = "funding_application_statuses" {
        Draft = "draft", "Entwurf", "Draft";
        Submitted = "submitted", "Eingereicht", "Submitted";
        Granted = "granted", "Bewilligt", "Granted";
        Rejected = "rejected", "Abgelehnt", "Rejected";
        Withdrawn = "withdrawn", "Zurückgezogen", "Withdrawn";
    }
}

/// Every static code list: name and entries. `districts` lives in the database.
/// A code list's name and the function giving its entries.
pub type StaticList = (&'static str, fn() -> Vec<Code>);

pub fn static_lists() -> Vec<StaticList> {
    vec![
        (ProviderKind::NAME, ProviderKind::entries),
        (TargetGroup::NAME, TargetGroup::entries),
        (EducationLevel::NAME, EducationLevel::entries),
        (ConsultationTopic::NAME, ConsultationTopic::entries),
        (EmployerConsultationTopic::NAME, EmployerConsultationTopic::entries),
        (EmployerNeed::NAME, EmployerNeed::entries),
        (SettlementStatus::NAME, SettlementStatus::entries),
        (VacancyKind::NAME, VacancyKind::entries),
        (VacancyStatus::NAME, VacancyStatus::entries),
        (MeasureKind::NAME, MeasureKind::entries),
        (MeasureStatus::NAME, MeasureStatus::entries),
        (FundingType::NAME, FundingType::entries),
        (ClientStatus::NAME, ClientStatus::entries),
        (ReferralStatus::NAME, ReferralStatus::entries),
        (ReferralAction::NAME, ReferralAction::entries),
        (ReasonCode::NAME, ReasonCode::entries),
        (Outcome::NAME, Outcome::entries),
        (ApplicantKind::NAME, ApplicantKind::entries),
        (FundingApplicationStatus::NAME, FundingApplicationStatus::entries),
    ]
}

/// The name of the database-backed list of Leipzig's Ortsteile.
pub const DISTRICTS: &str = "districts";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_lower_snake_case_and_unique_per_list() {
        for (name, entries) in static_lists() {
            let entries = entries();
            let mut codes: Vec<_> = entries.iter().map(|c| c.code.clone()).collect();
            assert!(
                codes.iter().all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')),
                "{name}"
            );
            codes.sort();
            codes.dedup();
            assert_eq!(codes.len(), entries.len(), "{name}");
        }
    }

    /// The `enum` of `T`'s OpenAPI schema.
    fn schema_enum<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    fn codes<T: CodeList>() -> Vec<String> {
        T::ALL.iter().map(|v| v.code().to_owned()).collect()
    }

    macro_rules! assert_schema_codes {
        ($($t:ty),+ $(,)?) => { $( assert_eq!(schema_enum::<$t>(), codes::<$t>(), stringify!($t)); )+ };
    }

    #[test]
    fn openapi_enums_are_the_wire_codes() {
        assert_schema_codes!(
            ProviderKind,
            TargetGroup,
            EducationLevel,
            ConsultationTopic,
            EmployerConsultationTopic,
            EmployerNeed,
            SettlementStatus,
            VacancyKind,
            VacancyStatus,
            MeasureKind,
            MeasureStatus,
            FundingType,
            ClientStatus,
            ReferralStatus,
            ReferralAction,
            ReasonCode,
            Outcome,
        );
    }

    #[test]
    fn parse_round_trips_and_serde_uses_the_code() {
        assert_eq!(TargetGroup::parse("single_parent"), Some(TargetGroup::SingleParent));
        assert_eq!(TargetGroup::parse("Single_Parent"), None);
        assert_eq!(serde_json::to_value(FundingType::Sgb3_81).unwrap(), "sgb3_81");
    }
}
