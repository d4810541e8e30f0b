//! `ostwerk seed`: a realistic demo of Leipzig's eastern district, and large
//! synthetic data sets for benchmarks. Every name is invented; nothing here
//! is, or could be, a real person's data.
use anyhow::Context;
use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::{
    auth::{Principal, Role},
    domain::{
        audit::AuditContext,
        clients::{ClientFields, Consent, ConsultationFields, Topic},
        codes::{
            ClientStatus, CodeList, ConsultationTopic, EducationLevel, EmployerConsultationTopic, EmployerNeed,
            FundingType, MeasureKind, MeasureStatus, Outcome, ProviderKind, ReasonCode, ReferralAction, ReferralStatus,
            SettlementStatus, TargetGroup, VacancyKind, VacancyStatus,
        },
        employers::{EmployerFields, VacancyFields},
        ids::{new_id, now},
        measures::MeasureFields,
        providers::ProviderFields,
        values::{Address, Contact},
    },
    http::IfMatch,
    repository::{self, bulk::BulkTxn, consultations::Subject},
    service::referrals::{self, ReferralRequest, TransitionRequest},
};

const FIRST: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Finn", "Greta", "Hannes", "Ida", "Jonas", "Karla", "Leon", "Mia", "Noah",
    "Olga", "Paul", "Rana", "Samir", "Tessa", "Ugur", "Vera", "Wanda", "Yusuf", "Zoe", "Ahmad", "Bettina", "Chiara",
    "Dmytro", "Elif", "Fatima", "Gregor", "Heike", "Ilja", "Jana", "Kevin", "Lina", "Mehmet", "Nadine", "Oksana",
    "Pascal", "Ronja", "Sven", "Tamara", "Uwe", "Viktoria", "Waltraud", "Xenia", "Yasmin",
];
const LAST: &[&str] = &[
    "Albrecht",
    "Brandt",
    "Czerny",
    "Dietrich",
    "Engel",
    "Fiedler",
    "Görlitz",
    "Hänsel",
    "Illgen",
    "Jähnig",
    "Kaltofen",
    "Lindner",
    "Mros",
    "Naumann",
    "Oelschlägel",
    "Pönitz",
    "Quaas",
    "Rühle",
    "Schubert",
    "Tietze",
    "Uhlig",
    "Vogel",
    "Wünsche",
    "Zschoche",
    "Yilmaz",
    "Kowalczyk",
    "Haddad",
    "Petrenko",
    "Nguyen",
    "Osei",
];
const STREETS: &[(&str, &str, &str)] = &[
    ("Eisenbahnstraße", "04315", "21"),
    ("Hermann-Liebmann-Straße", "04315", "20"),
    ("Ludwigstraße", "04315", "20"),
    ("Konradstraße", "04315", "21"),
    ("Wurzner Straße", "04315", "21"),
    ("Dresdner Straße", "04317", "30"),
    ("Stötteritzer Straße", "04317", "30"),
    ("Zweinaundorfer Straße", "04318", "22"),
    ("Theodor-Neubauer-Straße", "04318", "22"),
    ("Torgauer Straße", "04347", "11"),
    ("Löbauer Straße", "04347", "11"),
    ("Riesaer Straße", "04328", "24"),
    ("Permoserstraße", "04318", "23"),
    ("Portitzer Straße", "04318", "23"),
];
/// The office's area: the seven districts of the programme.
const EAST: &[&str] = &["20", "21", "22", "23", "24", "30", "11"];
const KLDB: &[&str] = &[
    "29302", "29202", "51312", "51322", "62102", "63302", "71402", "81302", "82102", "83112", "25212", "34212",
    "52122", "54101", "93102",
];

fn address(rng: &mut StdRng) -> (Address, String) {
    let (street, postal, district) = *STREETS.choose(rng).unwrap_or(&STREETS[0]);
    let address = Address {
        street: Some(format!("{street} {}", rng.random_range(1..140))),
        postal_code: Some(postal.to_owned()),
        city: Some("Leipzig".to_owned()),
    };
    (address, district.to_owned())
}

fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn some_of<T: Copy + PartialEq>(rng: &mut StdRng, items: &[T], max: usize) -> Vec<T> {
    let n = rng.random_range(1..=max.min(items.len()));
    let mut out = Vec::new();
    while out.len() < n {
        let v = pick(rng, items);
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn client(rng: &mut StdRng, n: usize, today: NaiveDate) -> ClientFields {
    let first = pick(rng, FIRST);
    let last = pick(rng, LAST);
    let groups = some_of(rng, TargetGroup::ALL, 3);
    let age = if groups.contains(&TargetGroup::Youth) || groups.contains(&TargetGroup::SchoolLeaver) {
        rng.random_range(15..25)
    } else {
        rng.random_range(18..64)
    };
    let born = today - Duration::days(age * 365 + rng.random_range(0..365));
    let (addr, district) = address(rng);
    let share = rng.random_bool(0.7);
    ClientFields {
        external_id: Some(format!("DEMO-{n:06}")),
        first_name: first.to_owned(),
        last_name: last.to_owned(),
        date_of_birth: Some(born),
        email: rng.random_bool(0.6).then(|| format!("{}.{}{n}@example.org", first.to_lowercase(), ascii(last))),
        phone: rng.random_bool(0.5).then(|| format!("+49 341 555 {:04}", rng.random_range(0..10_000))),
        address: Some(addr),
        district: Some(district),
        target_groups: groups,
        education_level: Some(pick(rng, EducationLevel::ALL)),
        occupation_codes: vec![pick(rng, KLDB).to_owned()],
        languages: if rng.random_bool(0.3) {
            vec!["de".into(), pick(rng, &["ar", "uk", "ru", "tr", "vi", "fa"]).into()]
        } else {
            vec!["de".into()]
        },
        available_from: Some(today + Duration::days(rng.random_range(0..60))),
        hours_per_week: Some(pick(rng, &[20, 25, 30, 35, 40])),
        consent: Consent {
            data_processing: true,
            share_with_providers: share,
            given_at: Some(now() - Duration::days(rng.random_range(1..300))),
        },
        status: if rng.random_bool(0.9) { ClientStatus::Active } else { ClientStatus::Inactive },
    }
}

fn ascii(s: &str) -> String {
    s.to_lowercase().replace('ä', "ae").replace('ö', "oe").replace('ü', "ue").replace('ß', "ss")
}

/// The demo provider ("Bildungswerk Leipzig-Ost gGmbH"): the `org` of the
/// development provider token and of the Keycloak demo user `provider1`.
pub const DEMO_PROVIDER_ID: Uuid = Uuid::from_u128(0x0193a000_0000_7000_8000_000000000001);
/// The demo employer ("Bäckerei Sommer GmbH"): the `org` of the development
/// employer token and of `employer1`.
pub const DEMO_EMPLOYER_ID: Uuid = Uuid::from_u128(0x0193a000_0000_7000_8000_000000000002);
/// The demo job centre's own identifier: `created_by_org` of the first demo
/// clients and `referring_org` of their referrals; the `org` of the
/// development job-centre token and of `jobcenter1`.
pub const DEMO_JOBCENTER_ORG: &str = "jc-leipzig";
/// How many of the demo clients the job centre pushed (the rest are the office's).
const DEMO_JOBCENTER_CLIENTS: usize = 40;

fn seed_principal() -> (Principal, AuditContext) {
    let principal = Principal { sub: "ostwerk-seed".into(), iss: None, roles: vec![Role::Admin], org: None };
    let audit = AuditContext {
        actor: "ostwerk-seed".into(),
        actor_org: Some("office".into()),
        request_id: format!("seed-{}", new_id()),
        client_request_id: None,
    };
    (principal, audit)
}

/// The demo data set; a second run adds nothing.
pub async fn demo(db: &DatabaseConnection) -> anyhow::Result<String> {
    let marker = new_id().to_string();
    let stored = repository::server_keys::get_or_create(db, "seed_demo", || marker.clone()).await?;
    if stored != marker {
        return Ok("demo data already present; nothing added".to_owned());
    }
    let mut rng = StdRng::seed_from_u64(2003);
    let (principal, audit) = seed_principal();
    let today = now().date_naive();
    let txn = db.begin().await?;

    let providers = [
        ("Bildungswerk Leipzig-Ost gGmbH", ProviderKind::TrainingProvider, true),
        ("Werkstatt Neustadt e.V.", ProviderKind::Association, false),
        ("Quartiersbetrieb Volkmarsdorf gGmbH", ProviderKind::SocialEnterprise, true),
        ("Sprachschule am Rabet", ProviderKind::TrainingProvider, true),
        ("Gründerhaus Ost", ProviderKind::Other, false),
        ("Jugendwerkstatt Anger-Crottendorf e.V.", ProviderKind::Association, true),
        ("Freiwilligenagentur Leipzig-Ost e.V.", ProviderKind::Association, false),
    ];
    let mut provider_ids = Vec::new();
    for (i, (name, kind, azav)) in providers.into_iter().enumerate() {
        let (addr, district) = address(&mut rng);
        let fields = ProviderFields {
            name: name.into(),
            kind,
            azav_certified: azav,
            address: Some(addr),
            district: Some(district),
            contact: Some(Contact {
                name: Some(format!("{} {}", pick(&mut rng, FIRST), pick(&mut rng, LAST))),
                email: Some(format!(
                    "kontakt@{}.example",
                    ascii(&name.split(' ').next().unwrap_or("traeger").to_lowercase())
                )),
                phone: Some("+49 341 555 0100".into()),
            }),
            website: Some("https://example.org".into()),
        };
        let id = if i == 0 { DEMO_PROVIDER_ID } else { new_id() };
        provider_ids.push(repository::providers::insert(&txn, id, &fields).await?.id);
    }

    let measure_specs: &[(&str, MeasureKind, FundingType, &[TargetGroup], i32)] = &[
        (
            "Umschulung Fachkraft Lagerlogistik",
            MeasureKind::VocationalTraining,
            FundingType::Sgb3_81,
            &[TargetGroup::Unemployed, TargetGroup::LongTermUnemployed],
            12,
        ),
        ("Weiterbildung Pflegehilfe", MeasureKind::FurtherTraining, FundingType::Sgb3_81, &[], 15),
        ("Aktiv im Quartier", MeasureKind::Activation, FundingType::Sgb2_16, &[TargetGroup::LongTermUnemployed], 20),
        (
            "Stadtteilservice Volkmarsdorf",
            MeasureKind::JobCreation,
            FundingType::Sgb2_16,
            &[TargetGroup::LongTermUnemployed],
            10,
        ),
        (
            "Berufe entdecken",
            MeasureKind::CareerOrientation,
            FundingType::SozialeStadt,
            &[TargetGroup::Youth, TargetGroup::SchoolLeaver],
            16,
        ),
        ("Bewerbungswerkstatt Eisenbahnstraße", MeasureKind::ApplicationTraining, FundingType::Sgb3_45, &[], 8),
        (
            "Fit für die Ausbildung",
            MeasureKind::ApprenticeshipPreparation,
            FundingType::Esf,
            &[TargetGroup::Youth, TargetGroup::SchoolLeaver, TargetGroup::Migrant],
            14,
        ),
        ("Gründungscoaching Ost", MeasureKind::FoundingCoaching, FundingType::Esf, &[TargetGroup::Founder], 6),
        ("Deutsch für den Beruf B1/B2", MeasureKind::LanguageCourse, FundingType::Other, &[TargetGroup::Migrant], 18),
        ("Engagiert im Kiez", MeasureKind::VolunteerProgramme, FundingType::Municipal, &[TargetGroup::Volunteer], 25),
        (
            "Teilzeitqualifizierung für Alleinerziehende",
            MeasureKind::FurtherTraining,
            FundingType::Esf,
            &[TargetGroup::SingleParent],
            10,
        ),
        (
            "Wiedereinstieg nach der Familienzeit",
            MeasureKind::ApplicationTraining,
            FundingType::Sgb3_45,
            &[TargetGroup::Returner],
            3,
        ),
    ];
    let mut measure_ids = Vec::new();
    for (i, (title, kind, funding, groups, capacity)) in measure_specs.iter().enumerate() {
        let (addr, district) = address(&mut rng);
        let start = today + Duration::days(rng.random_range(7..90));
        let fields = MeasureFields {
            provider_id: provider_ids[i % provider_ids.len()],
            title: (*title).into(),
            description: Some(format!("{title} – in kleinen Gruppen, wohnortnah im Leipziger Osten.")),
            kind: *kind,
            measure_number: Some(format!("962/{:03}/26", 100 + i)),
            funding: *funding,
            target_groups: groups.to_vec(),
            occupation_codes: if matches!(kind, MeasureKind::VocationalTraining | MeasureKind::FurtherTraining) {
                vec![pick(&mut rng, KLDB).into()]
            } else {
                Vec::new()
            },
            district: Some(district),
            address: Some(addr),
            start_date: Some(start),
            end_date: Some(start + Duration::days(rng.random_range(30..300))),
            hours_per_week: Some(pick(&mut rng, &[15, 20, 25, 30, 39])),
            capacity: *capacity,
            min_age: if groups.contains(&TargetGroup::Youth) { Some(15) } else { Some(18) },
            max_age: if groups.contains(&TargetGroup::Youth) { Some(27) } else { None },
            status: if i % 5 == 4 { MeasureStatus::Running } else { MeasureStatus::Open },
        };
        measure_ids.push(repository::measures::insert(&txn, new_id(), &fields).await?.id);
    }

    let employers: &[(&str, &str, &str, SettlementStatus, bool)] = &[
        ("Bäckerei Sommer GmbH", "GmbH", "10.71", SettlementStatus::Established, true),
        ("Fahrradwerkstatt Rabet UG", "UG (haftungsbeschränkt)", "95.29", SettlementStatus::Established, true),
        ("Pflegedienst Ostwind GmbH", "GmbH", "88.10", SettlementStatus::Established, true),
        ("Lager & Logistik Paunsdorf GmbH", "GmbH", "52.10", SettlementStatus::Established, false),
        ("Café Konrad", "Einzelunternehmen", "56.10", SettlementStatus::Established, false),
        ("Druckerei Anger KG", "KG", "18.12", SettlementStatus::Established, true),
        ("Malerbetrieb Schönefeld GmbH", "GmbH", "43.34", SettlementStatus::Established, true),
        ("Kita Sonnenblume gGmbH", "gGmbH", "88.91", SettlementStatus::Established, true),
        ("Softwarehaus Neustadt GmbH", "GmbH", "62.01", SettlementStatus::Settling, false),
        ("Manufaktur Ost eG", "eG", "32.99", SettlementStatus::Interested, false),
        ("Biomarkt Reudnitz GmbH", "GmbH", "47.11", SettlementStatus::Interested, true),
        ("Stadtteilladen Volkmarsdorf e.V.", "e.V.", "94.99", SettlementStatus::Established, false),
    ];
    let mut vacancy_count = 0;
    let mut vacancy_ids = Vec::new();
    let mut demo_vacancy_ids = Vec::new();
    let mut employer_ids = Vec::new();
    for (i, (name, legal, sector, settlement, training)) in employers.iter().enumerate() {
        let (addr, district) = address(&mut rng);
        let fields = EmployerFields {
            name: (*name).into(),
            legal_form: Some((*legal).into()),
            sector: Some((*sector).into()),
            address: Some(addr),
            district: Some(district.clone()),
            employee_count: Some(rng.random_range(2..120)),
            settlement_status: *settlement,
            is_training_company: *training,
            needs: some_of(&mut rng, EmployerNeed::ALL, 3),
            contact: Some(Contact {
                name: Some(format!("{} {}", pick(&mut rng, FIRST), pick(&mut rng, LAST))),
                email: Some(format!("personal{i}@example.com")),
                phone: Some(format!("+49 341 555 {:04}", 2000 + i)),
            }),
        };
        let id = if i == 0 { DEMO_EMPLOYER_ID } else { new_id() };
        let employer_id = repository::employers::insert(&txn, id, &fields).await?.id;
        employer_ids.push(employer_id);
        let mut kinds: Vec<VacancyKind> = VacancyKind::ALL.iter().copied().filter(|_| rng.random_bool(0.5)).collect();
        if i == 0 && kinds.is_empty() {
            kinds.push(VacancyKind::Job); // the demo employer always has something to show
        }
        for kind in &kinds {
            let title = match kind {
                VacancyKind::Job => "Mitarbeiter:in (m/w/d)",
                VacancyKind::Apprenticeship => "Ausbildungsplatz (m/w/d)",
                VacancyKind::Internship => "Praktikum (4–8 Wochen)",
                VacancyKind::Volunteer => "Ehrenamtliche Mitarbeit",
            };
            let fields = VacancyFields {
                kind: *kind,
                title: format!("{title} – {name}"),
                occupation_code: pick(&mut rng, KLDB).into(),
                description: Some("Wir freuen uns auf Bewerbungen aus dem Stadtteil.".into()),
                hours_per_week: Some(pick(&mut rng, &[10, 20, 30, 40])),
                start_date: Some(today + Duration::days(rng.random_range(14..200))),
                positions: rng.random_range(1..4),
                min_education_level: rng
                    .random_bool(0.5)
                    .then(|| pick(&mut rng, &[EducationLevel::LowerSecondary, EducationLevel::IntermediateSecondary])),
                languages: vec!["de".into()],
                district: Some(district.clone()),
                status: VacancyStatus::Open,
            };
            let vacancy_id = repository::vacancies::insert(&txn, new_id(), employer_id, &fields).await?.id;
            if i == 0 {
                demo_vacancy_ids.push(vacancy_id);
            }
            vacancy_ids.push(vacancy_id);
            vacancy_count += 1;
        }
    }

    let mut clients = Vec::new();
    for n in 0..200 {
        let mut c = client(&mut rng, n, today);
        c.district = Some(pick(&mut rng, EAST).to_owned());
        clients.push(c);
    }
    let (pushed, own) = clients.split_at(DEMO_JOBCENTER_CLIENTS);
    let jobcenter_audit = AuditContext { actor_org: Some(DEMO_JOBCENTER_ORG.into()), ..audit.clone() };
    let mut client_ids = repository::clients::insert_many(&txn, &jobcenter_audit, DEMO_JOBCENTER_ORG, pushed).await?;
    client_ids.extend(repository::clients::insert_many(&txn, &audit, "office", own).await?);

    let mut consultations = 0;
    for (i, id) in client_ids.iter().enumerate() {
        for _ in 0..rng.random_range(0..3) {
            let fields = ConsultationFields {
                held_on: today - Duration::days(rng.random_range(1..200)),
                topic: Topic::Client(pick(&mut rng, ConsultationTopic::ALL)),
                duration_minutes: Some(pick(&mut rng, &[30, 45, 60, 90])),
                notes: Some(
                    pick(
                        &mut rng,
                        &[
                            "Bewerbungsunterlagen besprochen.",
                            "Interesse an Umschulung geklärt.",
                            "Termin beim Träger vereinbart.",
                            "Kinderbetreuung als Hürde besprochen.",
                        ],
                    )
                    .into(),
                ),
                follow_up_on: (i % 3 == 0).then(|| today + Duration::days(14)),
            };
            repository::consultations::insert(&txn, &audit, Subject::Client(*id), "demo-caseworker", &fields).await?;
            consultations += 1;
        }
    }
    for id in &employer_ids {
        let fields = ConsultationFields {
            held_on: today - Duration::days(rng.random_range(1..120)),
            topic: Topic::Employer(pick(&mut rng, EmployerConsultationTopic::ALL)),
            duration_minutes: Some(60),
            notes: Some("Bedarf an Fachkräften und Fördermöglichkeiten besprochen.".into()),
            follow_up_on: None,
        };
        repository::consultations::insert(&txn, &audit, Subject::Employer(*id), "demo-caseworker", &fields).await?;
        consultations += 1;
    }
    txn.commit().await?;

    let funding = demo_funding(db, &mut rng, &client_ids, &employer_ids, &provider_ids).await?;
    let demo_measure_ids: Vec<Uuid> = measure_ids
        .iter()
        .enumerate()
        .filter(|(i, _)| provider_ids[i % provider_ids.len()] == DEMO_PROVIDER_ID)
        .map(|(_, id)| *id)
        .collect();
    let targets = Targets {
        measures: &measure_ids,
        vacancies: &vacancy_ids,
        demo_measures: &demo_measure_ids,
        demo_vacancies: &demo_vacancy_ids,
    };
    let referrals = demo_referrals(db, &principal, &audit, &mut rng, &client_ids, &targets).await?;
    Ok(format!(
        "demo data added: {} providers, {} measures, {} employers with {vacancy_count} vacancies, {} clients, {consultations} consultations, {funding} funding applications, {referrals} referrals",
        provider_ids.len(),
        measure_ids.len(),
        employer_ids.len(),
        client_ids.len()
    ))
}

/// Funding programmes of the kind the office researches, and applications.
async fn demo_funding(
    db: &DatabaseConnection,
    rng: &mut StdRng,
    clients: &[Uuid],
    employers: &[Uuid],
    providers: &[Uuid],
) -> anyhow::Result<usize> {
    use crate::repository::funding::{ApplicationFields, ProgrammeFields};
    /// name, funder, legal basis, target groups, applicant kinds, maximum (cents)
    type Programme<'a> = (&'a str, &'a str, &'a str, &'a [&'a str], &'a [&'a str], i64);
    let programmes: &[Programme] = &[
        (
            "Gründungszuschuss",
            "Bundesagentur für Arbeit",
            "§ 93 SGB III",
            &["founder", "unemployed"],
            &["client"],
            3_000_000,
        ),
        ("Einstiegsgeld", "Jobcenter Leipzig", "§ 16b SGB II", &["long_term_unemployed"], &["client"], 600_000),
        ("Eingliederungszuschuss", "Bundesagentur für Arbeit", "§ 88 SGB III", &[], &["employer"], 2_500_000),
        (
            "Verfügungsfonds Leipziger Osten",
            "Stadt Leipzig, Soziale Stadt",
            "Städtebauförderung",
            &[],
            &["association", "provider"],
            500_000,
        ),
        (
            "ESF Plus Qualifizierung",
            "Freistaat Sachsen",
            "ESF Plus",
            &["migrant", "single_parent"],
            &["provider"],
            20_000_000,
        ),
    ];
    let mut ids = Vec::new();
    let txn = db.begin().await?;
    for (name, funder, basis, groups, applicants, max) in programmes {
        let fields = ProgrammeFields {
            name: (*name).into(),
            funder: (*funder).into(),
            legal_basis: Some((*basis).into()),
            target_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            eligible_applicants: applicants.iter().map(|a| (*a).to_owned()).collect(),
            max_amount_cents: Some(*max),
            deadline: None,
            url: Some("https://example.org/foerderung".into()),
        };
        ids.push((repository::funding::insert_programme(&txn, &fields).await?.id, applicants[0]));
    }
    let mut made = 0;
    for n in 0..24 {
        let (programme_id, kind) = ids[n % ids.len()];
        let applicant_id = match kind {
            "client" => pick(rng, clients),
            "employer" => pick(rng, employers),
            _ => pick(rng, providers),
        };
        let status = pick(rng, &["submitted", "granted", "granted", "rejected", "draft"]);
        let requested = rng.random_range(10..300) * 10_000;
        let fields = ApplicationFields {
            programme_id,
            applicant_kind: if kind == "association" { "provider".into() } else { kind.into() },
            applicant_id,
            amount_requested_cents: requested,
            amount_granted_cents: (status == "granted").then_some(requested / 10 * 9),
            status: status.into(),
            submitted_on: (status != "draft").then(|| now().date_naive() - Duration::days(rng.random_range(30..200))),
            decided_on: matches!(status, "granted" | "rejected")
                .then(|| now().date_naive() - Duration::days(rng.random_range(1..29))),
            note: None,
        };
        repository::funding::insert_application(&txn, &fields).await?;
        made += 1;
    }
    txn.commit().await?;
    Ok(made)
}

/// Where demo referrals go: anywhere, and a share to the demo provider and
/// employer so that their tokens have referrals to answer.
struct Targets<'a> {
    measures: &'a [Uuid],
    vacancies: &'a [Uuid],
    demo_measures: &'a [Uuid],
    demo_vacancies: &'a [Uuid],
}

/// Referrals in every status, made through the service so counters and
/// histories are right. Ineligible picks are skipped. The job centre's
/// clients are referred by the job centre itself.
async fn demo_referrals(
    db: &DatabaseConnection,
    principal: &Principal,
    audit: &AuditContext,
    rng: &mut StdRng,
    clients: &[Uuid],
    targets: &Targets<'_>,
) -> anyhow::Result<usize> {
    let jobcenter = Principal {
        sub: "ostwerk-seed-jobcenter".into(),
        iss: None,
        roles: vec![Role::Jobcenter],
        org: Some(DEMO_JOBCENTER_ORG.into()),
    };
    let jobcenter_audit = AuditContext { actor_org: Some(DEMO_JOBCENTER_ORG.into()), ..audit.clone() };
    let mut made = 0;
    for (n, client_id) in clients.iter().enumerate().take(120) {
        let (measures, vacancies) = match n % 6 {
            1 if !targets.demo_measures.is_empty() => (targets.demo_measures, &[][..]),
            3 if !targets.demo_vacancies.is_empty() => (&[][..], targets.demo_vacancies),
            _ => (targets.measures, targets.vacancies),
        };
        let to_measure = vacancies.is_empty() || (n % 3 != 0 && !measures.is_empty());
        let request = ReferralRequest {
            client_id: *client_id,
            measure_id: to_measure.then(|| pick(rng, measures)),
            vacancy_id: (!to_measure).then(|| pick(rng, vacancies)),
            external_id: Some(format!("DEMO-REF-{n:05}")),
            note: None,
        };
        let (referrer, referrer_audit) =
            if n < DEMO_JOBCENTER_CLIENTS { (&jobcenter, &jobcenter_audit) } else { (principal, audit) };
        let txn = db.begin().await?;
        let Ok(referral) = referrals::create(&txn, referrer_audit, referrer, &request).await else {
            continue;
        };
        txn.commit().await?;
        made += 1;
        let path: &[ReferralAction] = match n % 7 {
            0 => &[],
            1 => &[ReferralAction::Waitlist],
            2 => &[ReferralAction::Accept],
            3 => &[ReferralAction::Accept, ReferralAction::Start],
            4 => &[ReferralAction::Accept, ReferralAction::Start, ReferralAction::Complete],
            5 => &[ReferralAction::Reject],
            _ => &[ReferralAction::Cancel],
        };
        for action in path {
            let request = TransitionRequest {
                action: *action,
                reason_code: action.needs_reason().then(|| {
                    pick(rng, &[ReasonCode::ClientDeclined, ReasonCode::NoCapacity, ReasonCode::NoLongerNeeded])
                }),
                reason_note: None,
                rejected_by: (*action == ReferralAction::Reject).then(|| "provider".to_owned()),
                outcome: (*action == ReferralAction::Complete).then(|| {
                    pick(rng, &[Outcome::Employed, Outcome::Apprenticeship, Outcome::FurtherTraining, Outcome::None])
                }),
                outcome_on: None,
            };
            let txn = db.begin().await?;
            if referrals::transition(&txn, principal, referral.id, &IfMatch::Absent, &request).await.is_err() {
                break; // e.g. the measure filled up: the referral stays where it is
            }
            txn.commit().await?;
        }
    }
    Ok(made)
}

/// `--clients N --referrals M`: bulk data for benchmarks. Clients go in
/// batches of [`CLIENTS_PER_TXN`], each with its `client.create` audit
/// events (the rows `repository::clients::insert_many` writes, through
/// [`BulkTxn`]); referrals, their events and the measure counters are
/// written directly ([`bulk_referrals`]), not through the per-request
/// service path. Batches are made on a blocking thread one ahead of the
/// writer, so building rows overlaps with the database's work.
pub async fn bulk(db: &DatabaseConnection, clients: usize, referrals_wanted: usize) -> anyhow::Result<String> {
    let before = repository::bulk::begin_load(db).await?;
    let result = bulk_load(db, clients, referrals_wanted).await;
    repository::bulk::end_load(db, before).await?;
    result
}

async fn bulk_load(db: &DatabaseConnection, clients: usize, referrals_wanted: usize) -> anyhow::Result<String> {
    let rng = StdRng::seed_from_u64(clients as u64 ^ 0x05_7e_4b);
    let (_, audit) = seed_principal();
    let today = now().date_naive();
    let started = std::time::Instant::now();
    let mut ids = Vec::with_capacity(clients);
    let mut active = Vec::with_capacity(clients);
    let mut batches = Ahead::new(rng, clients, CLIENTS_PER_TXN, move |rng, range| client_batch(rng, range, today));
    let mut writing = Writers::new(db);
    while let Some(batch) = batches.next().await? {
        // Ids in batch order, whatever order the transactions commit in.
        active.extend(batch.ids.iter().zip(&batch.active).filter(|(_, a)| **a).map(|(id, _)| *id));
        ids.extend(batch.ids.iter().copied());
        let audit = audit.clone();
        writing
            .spawn(move |db| async move {
                let mut txn = BulkTxn::begin(&db).await?;
                repository::clients::insert_bulk(&mut txn, &audit, &batch.ids, &batch.rows).await?;
                txn.commit().await?;
                Ok(batch.ids.len())
            })
            .await?;
    }
    writing.finish().await?;
    let mut rng = batches.into_rng().await?;
    let clients_took = started.elapsed();

    let mut made = 0;
    if referrals_wanted > 0 {
        if active.is_empty() {
            anyhow::bail!("--referrals needs active clients: pass --clients too");
        }
        made = bulk_referrals(db, &mut rng, &active, referrals_wanted).await?;
    }
    // Bulk rows bypass the per-client upkeep of the demand aggregate: the
    // next `serve` rebuilds it before it listens (`demand::ensure_fresh`).
    repository::demand::mark_stale(db).await?;
    Ok(format!(
        "{} clients in {:.1} s, {made} referrals in {:.1} s total",
        ids.len(),
        clients_took.as_secs_f64(),
        started.elapsed().as_secs_f64()
    ))
}

/// Transactions of the bulk seeder written at once. PostgreSQL checks the
/// foreign keys and maintains the indexes of each row in the backend that
/// writes it (most of the seeding time), so two connections use both cores;
/// SQLite has one writer (and this pool one connection).
const PG_WRITERS: usize = 2;

/// The seeder's transactions, up to [`PG_WRITERS`] at a time, each on its
/// own task (so a transaction progresses while the next batch is made).
/// Each returns how many rows it wrote; the first failure ends the seeding
/// (the transactions still running are aborted and roll back).
struct Writers {
    db: DatabaseConnection,
    limit: usize,
    running: tokio::task::JoinSet<anyhow::Result<usize>>,
    written: usize,
}

impl Writers {
    fn new(db: &DatabaseConnection) -> Self {
        let limit = if db.get_database_backend() == sea_orm::DbBackend::Postgres { PG_WRITERS } else { 1 };
        Self { db: db.clone(), limit, running: tokio::task::JoinSet::new(), written: 0 }
    }

    /// Starts `write` once fewer than the limit are running.
    async fn spawn<F, Fut>(&mut self, write: F) -> anyhow::Result<()>
    where
        F: FnOnce(DatabaseConnection) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<usize>> + Send + 'static,
    {
        while self.running.len() >= self.limit {
            self.join_one().await?;
        }
        self.running.spawn(write(self.db.clone()));
        Ok(())
    }

    async fn join_one(&mut self) -> anyhow::Result<()> {
        if let Some(done) = self.running.join_next().await {
            self.written += done.context("seed writer")??;
        }
        Ok(())
    }

    /// Waits for every transaction; the rows written in all.
    async fn finish(mut self) -> anyhow::Result<usize> {
        while !self.running.is_empty() {
            self.join_one().await?;
        }
        Ok(self.written)
    }
}

/// Clients per transaction of [`bulk`].
const CLIENTS_PER_TXN: usize = 1_000;

/// One transaction's clients: ids, rows, and which are active (only those
/// get referrals).
struct ClientBatch {
    ids: Vec<Uuid>,
    rows: Vec<crate::entities::client::ActiveModel>,
    active: Vec<bool>,
}

fn client_batch(rng: &mut StdRng, range: std::ops::Range<usize>, today: NaiveDate) -> ClientBatch {
    let fields: Vec<ClientFields> = range
        .map(|i| {
            let mut c = client(rng, i, today);
            c.external_id = Some(format!("LOAD-{}-{i:07}", &new_id().simple().to_string()[..8]));
            c
        })
        .collect();
    let (ids, rows) = repository::clients::new_rows("office", &fields);
    ClientBatch { ids, rows, active: fields.iter().map(|c| c.status == ClientStatus::Active).collect() }
}

/// Batches of `total` items made by `make` on a blocking thread, one batch
/// ahead of the caller: while the caller writes batch `k`, batch `k + 1` is
/// being made. The random generator passes from batch to batch in order,
/// so the data is the same as made in one loop.
struct Ahead<T, F> {
    make: std::sync::Arc<F>,
    total: usize,
    size: usize,
    pending: Option<tokio::task::JoinHandle<(StdRng, usize, T)>>,
    rng: Option<StdRng>,
}

impl<T, F> Ahead<T, F>
where
    T: Send + 'static,
    F: Fn(&mut StdRng, std::ops::Range<usize>) -> T + Send + Sync + 'static,
{
    fn new(rng: StdRng, total: usize, size: usize, make: F) -> Self {
        let mut ahead = Self { make: std::sync::Arc::new(make), total, size: size.max(1), pending: None, rng: None };
        ahead.start(rng, 0);
        ahead
    }

    fn start(&mut self, mut rng: StdRng, from: usize) {
        if from >= self.total {
            self.rng = Some(rng);
            return;
        }
        let to = (from + self.size).min(self.total);
        let make = self.make.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let batch = make(&mut rng, from..to);
            (rng, to, batch)
        }));
    }

    /// The next batch; the one after it is started before this returns.
    async fn next(&mut self) -> anyhow::Result<Option<T>> {
        let Some(pending) = self.pending.take() else { return Ok(None) };
        let (rng, to, batch) = pending.await.context("making a seed batch")?;
        self.start(rng, to);
        Ok(Some(batch))
    }

    /// The generator after the last batch.
    async fn into_rng(mut self) -> anyhow::Result<StdRng> {
        while self.next().await?.is_some() {}
        self.rng.context("seed batches not finished")
    }
}

/// Where seeded referrals end up, as the actions that lead there from
/// `requested`, with their weights (most referrals of a city's history are
/// closed; about 40 % are still active).
const PATHS: &[(u32, &[ReferralAction])] = {
    use ReferralAction::*;
    &[
        (10, &[]),
        (5, &[Waitlist]),
        (10, &[Accept]),
        (15, &[Accept, Start]),
        (30, &[Accept, Start, Complete]),
        (4, &[Accept, Start, Fail]),
        (3, &[Accept, Fail]),
        (10, &[Reject]),
        (4, &[Cancel]),
        (4, &[Accept, Start, Cancel]),
        (5, &[Expire]),
    ]
};

/// A random path; only final ones when `closed` (a client may have one
/// active referral per measure).
fn path(rng: &mut StdRng, closed: bool) -> &'static [ReferralAction] {
    let allowed: Vec<&(u32, &[ReferralAction])> =
        PATHS.iter().filter(|(_, p)| !closed || end_status(p).is_some_and(ReferralStatus::is_final)).collect();
    let total: u32 = allowed.iter().map(|(w, _)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (w, p) in allowed {
        if roll < *w {
            return p;
        }
        roll -= w;
    }
    &[]
}

/// The status a path leads to (the status machine decides, as in the service).
fn end_status(actions: &[ReferralAction]) -> Option<ReferralStatus> {
    actions.iter().try_fold(ReferralStatus::Requested, |s, a| s.after(*a))
}

/// Referrals per transaction; each transaction also moves the measure
/// counters of its referrals, so the data is consistent after every commit.
const REFERRALS_PER_TXN: usize = 5_000;

/// One transaction's referrals, their events, and how much each measure's
/// `seats_taken` and `waitlisted` move.
struct ReferralBatch {
    rows: Vec<crate::entities::referral::ActiveModel>,
    events: Vec<crate::entities::referral_event::ActiveModel>,
    counters: Vec<(i32, i32)>,
}

/// What every seeded referral shares: where it goes, who made it, when.
struct ReferralContext {
    clients: Vec<Uuid>,
    measures: Vec<Uuid>,
    actor: String,
    org: String,
    at_now: chrono::DateTime<chrono::Utc>,
}

/// `wanted` referrals of `clients` (active ones) into 20 load-test measures,
/// each with the events of its path and the seats and waitlist counters
/// its status holds (`seats_taken` = accepted + in progress, `waitlisted` =
/// on hold). Client `i mod n` gets measure `⌊i / n⌋ mod 20`, so a client's
/// referrals go to different measures; from the 21st referral of a client
/// on, they are closed ones (one active referral per client and measure).
pub async fn bulk_referrals(
    db: &DatabaseConnection,
    rng: &mut StdRng,
    clients: &[Uuid],
    wanted: usize,
) -> anyhow::Result<usize> {
    use sea_orm::{ColumnTrait, EntityTrait, ExprTrait, QueryFilter, QueryTrait, sea_query::Expr};

    use crate::entities::measure;

    let today = now().date_naive();
    let provider = ProviderFields {
        name: "Lasttest-Träger".into(),
        kind: ProviderKind::Other,
        azav_certified: false,
        address: None,
        district: None,
        contact: None,
        website: None,
    };
    let txn = db.begin().await?;
    let provider_id = repository::providers::insert(&txn, new_id(), &provider).await?.id;
    let mut measures = Vec::new();
    for i in 0..20 {
        let fields = MeasureFields {
            provider_id,
            title: format!("Lasttest-Maßnahme {i}"),
            description: None,
            kind: pick(rng, MeasureKind::ALL),
            measure_number: None,
            funding: FundingType::Other,
            target_groups: Vec::new(),
            occupation_codes: vec![pick(rng, KLDB).into()],
            district: Some(pick(rng, EAST).into()),
            address: None,
            start_date: Some(today + Duration::days(30)),
            end_date: None,
            hours_per_week: Some(20),
            capacity: 1_000_000,
            min_age: None,
            max_age: None,
            status: MeasureStatus::Open,
        };
        measures.push(repository::measures::insert(&txn, new_id(), &fields).await?.id);
    }
    txn.commit().await?;

    let (principal, audit) = seed_principal();
    let context = std::sync::Arc::new(ReferralContext {
        clients: clients.to_vec(),
        measures: measures.clone(),
        actor: principal.sub,
        org: audit.actor_org.unwrap_or_else(|| "office".to_owned()),
        at_now: now(),
    });
    let make = {
        let context = context.clone();
        move |rng: &mut StdRng, range: std::ops::Range<usize>| referral_batch(rng, &context, range)
    };
    let mut batches = Ahead::new(rng.clone(), wanted, REFERRALS_PER_TXN, make);
    let mut writing = Writers::new(db);
    while let Some(batch) = batches.next().await? {
        let batch = batch?;
        let measures = measures.clone();
        writing
            .spawn(move |db| async move {
                let mut txn = BulkTxn::begin(&db).await?;
                txn.insert(&batch.rows).await?;
                txn.insert(&batch.events).await?;
                // Always in the same measure order: concurrent batches wait
                // for each other's counter rows, never deadlock on them.
                for (measure_id, (seats, waitlist)) in measures.iter().zip(&batch.counters) {
                    if *seats == 0 && *waitlist == 0 {
                        continue;
                    }
                    let update = measure::Entity::update_many()
                        .col_expr(measure::Column::SeatsTaken, Expr::col(measure::Column::SeatsTaken).add(*seats))
                        .col_expr(measure::Column::Waitlisted, Expr::col(measure::Column::Waitlisted).add(*waitlist))
                        .col_expr(measure::Column::Version, Expr::col(measure::Column::Version).add(1))
                        .col_expr(measure::Column::UpdatedAt, Expr::value(now()))
                        .filter(measure::Column::Id.eq(*measure_id))
                        .into_query();
                    txn.execute(&update).await?;
                }
                txn.commit().await.context("commit")?;
                Ok(batch.rows.len())
            })
            .await?;
    }
    let made = writing.finish().await?;
    *rng = batches.into_rng().await?;
    Ok(made)
}

/// The referrals `range` of [`bulk_referrals`] (numbered from 0 over the
/// whole run: the number picks client, measure and whether it is closed).
fn referral_batch(
    rng: &mut StdRng,
    context: &ReferralContext,
    range: std::ops::Range<usize>,
) -> anyhow::Result<ReferralBatch> {
    use sea_orm::ActiveValue::Set;

    use crate::{
        domain::{cell_key, referrals::counter_change},
        entities::{referral, referral_event},
    };

    let ReferralContext { clients, measures, actor, org, at_now } = context;
    let size = range.len();
    let mut rows = Vec::with_capacity(size);
    let mut events = Vec::with_capacity(size * 3);
    let mut counters = vec![(0i32, 0i32); measures.len()];
    for i in range {
        let round = i / clients.len();
        let m = round % measures.len();
        let actions = path(rng, round >= measures.len());
        let id = new_id();
        let created =
            *at_now - Duration::days(rng.random_range(60..1_095)) - Duration::seconds(rng.random_range(0..86_400));
        let mut at = created;
        let mut status = ReferralStatus::Requested;
        let (mut reason, mut rejected_by, mut outcome, mut outcome_on) = (None, None, None, None);
        events.push(referral_event::ActiveModel {
            id: Set(new_id()),
            referral_id: Set(id),
            from_status: Set(None),
            to_status: Set(status.as_str().to_owned()),
            action: Set("create".to_owned()),
            reason_code: Set(None),
            reason_note: Set(None),
            actor: Set(actor.clone()),
            actor_org: Set(Some(org.clone())),
            at: Set(created),
        });
        for action in actions {
            let Some(to) = status.after(*action) else {
                anyhow::bail!("seed path {actions:?} leaves the status machine");
            };
            at += Duration::days(rng.random_range(1..14));
            let event_reason = action.needs_reason().then(|| pick(rng, ReasonCode::ALL).as_str().to_owned());
            if event_reason.is_some() {
                reason = event_reason.clone();
            }
            if *action == ReferralAction::Reject {
                rejected_by = Some(pick(rng, &["provider", "client"]).to_owned());
            }
            if *action == ReferralAction::Complete {
                outcome = Some(pick(rng, Outcome::ALL).as_str().to_owned());
                outcome_on = Some(at.date_naive());
            }
            events.push(referral_event::ActiveModel {
                id: Set(new_id()),
                referral_id: Set(id),
                from_status: Set(Some(status.as_str().to_owned())),
                to_status: Set(to.as_str().to_owned()),
                action: Set(action.as_str().to_owned()),
                reason_code: Set(event_reason),
                reason_note: Set(None),
                actor: Set(actor.clone()),
                actor_org: Set(Some(org.clone())),
                at: Set(at),
            });
            status = to;
        }
        let change = counter_change(ReferralStatus::Requested, status, true);
        counters[m].0 += change.seats_taken;
        counters[m].1 += change.waitlisted;
        rows.push(referral::ActiveModel {
            id: Set(id),
            client_id: Set(clients[i % clients.len()]),
            measure_id: Set(Some(measures[m])),
            vacancy_id: Set(None),
            external_id: Set(None),
            referring_org: Set(org.clone()),
            referred_by: Set(actor.clone()),
            note: Set(None),
            status: Set(status.as_str().to_owned()),
            reason_code: Set(reason),
            reason_note: Set(None),
            rejected_by: Set(rejected_by),
            outcome: Set(outcome),
            outcome_on: Set(outcome_on),
            created_at: Set(created),
            updated_at: Set(at),
            version: Set(1 + i32::try_from(actions.len()).unwrap_or(0)),
            key_factor: Set(i64::from(cell_key::key_factor(id.as_u128()))),
        });
    }
    Ok(ReferralBatch { rows, events, counters })
}
