//! Reference data (SPEC §3 "Reference data"): every enumeration and the
//! districts at `/api/v1/code-lists/{name}`, with German and English labels.
use serde_json::{Value, json};

use crate::helpers::*;

/// Every list SPEC §3 names, with the codes the SPEC gives for it (the
/// districts are checked separately: they are data, not contract).
#[rustfmt::skip]
const SPEC_LISTS: &[(&str, &[&str])] = &[
    ("target_groups", &["unemployed", "long_term_unemployed", "youth", "school_leaver", "founder", "volunteer",
        "migrant", "single_parent", "returner", "disability"]),
    ("education_levels", &["none", "lower_secondary", "intermediate_secondary", "upper_secondary", "vocational",
        "academic"]),
    ("consultation_topics", &["career_planning", "education_counselling", "application_support",
        "career_orientation", "internship_search", "founding_coaching", "business_plan", "post_founding_support",
        "volunteering", "funding_advice", "other"]),
    ("employer_needs", &["recruiting", "staff_selection", "staff_development", "apprenticeship_training",
        "funding_advice", "settlement_support"]),
    ("settlement_statuses", &["established", "settling", "interested"]),
    ("vacancy_kinds", &["job", "apprenticeship", "internship", "volunteer"]),
    ("measure_kinds", &["vocational_training", "further_training", "activation", "job_creation",
        "career_orientation", "application_training", "apprenticeship_preparation", "founding_coaching",
        "language_course", "volunteer_programme"]),
    ("funding_types", &["sgb2_16", "sgb3_45", "sgb3_81", "esf", "soziale_stadt", "municipal", "other"]),
    ("provider_kinds", &["training_provider", "social_enterprise", "association", "chamber", "public_body", "other"]),
    ("referral_statuses", &["requested", "on_hold", "accepted", "in_progress", "completed", "rejected", "failed",
        "cancelled", "expired"]),
    ("referral_actions", &["accept", "waitlist", "reject", "start", "complete", "fail", "cancel", "expire"]),
    ("reason_codes", &["not_eligible", "no_capacity", "client_declined", "client_unreachable", "no_longer_needed",
        "referred_elsewhere", "missing_documents", "outside_service_area", "duplicate", "other"]),
    ("outcomes", &["employed", "apprenticeship", "further_training", "self_employed", "volunteering", "none",
        "unknown"]),
];

fn items(list: &Value) -> &Vec<Value> {
    list["items"].as_array().expect("items")
}

fn is_text(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.trim().is_empty())
}

#[tokio::test]
async fn districts_are_leipzigs_63_ortsteile_with_their_official_codes() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = app.get("/api/v1/code-lists/districts", &caseworker()).await;
    // Assert
    assert_eq!(res.status(), 200);
    let list: Value = res.json().await.unwrap();
    let districts = items(&list);
    assert_eq!(districts.len(), 63);
    let find = |code: &str| districts.iter().find(|d| d["code"] == code).cloned().unwrap_or(Value::Null);
    assert_eq!(find("21")["label_de"], "Volkmarsdorf");
    assert_eq!(find("20")["label_de"], "Neustadt-Neuschönefeld");
    let mut codes: Vec<&str> = districts.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert!(codes.iter().all(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_digit())), "{codes:?}");
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), 63, "codes are unique");
    assert!(districts.iter().all(|d| is_text(&d["label_de"]) && is_text(&d["label_en"])));
}

#[tokio::test]
async fn every_code_list_named_in_the_spec_has_the_spec_codes_with_both_labels() {
    // Arrange
    let app = spawn_app().await;
    let mut wrong = Vec::new();
    for (name, spec_codes) in SPEC_LISTS {
        // Act
        let res = app.get(&format!("/api/v1/code-lists/{name}"), &caseworker()).await;
        // Assert (collected, so one run names every list that is off)
        if res.status() != 200 {
            wrong.push(format!("{name}: status {}", res.status()));
            continue;
        }
        let list: Value = res.json().await.unwrap();
        let entries = items(&list);
        if let Some(bad) =
            entries.iter().find(|e| !(is_text(&e["code"]) && is_text(&e["label_de"]) && is_text(&e["label_en"])))
        {
            wrong.push(format!("{name}: entry without code, label_de or label_en: {bad}"));
        }
        let mut served: Vec<&str> = entries.iter().filter_map(|e| e["code"].as_str()).collect();
        let mut expected = spec_codes.to_vec();
        served.sort_unstable();
        expected.sort_unstable();
        if served != expected {
            wrong.push(format!("{name}: serves {served:?}, SPEC says {expected:?}"));
        }
    }
    assert!(wrong.is_empty(), "code lists differ from SPEC §3:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn unknown_code_list_is_404() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = app.get("/api/v1/code-lists/castles", &caseworker()).await;
    // Assert
    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn any_authenticated_role_may_read_code_lists() {
    // Arrange
    let app = spawn_app().await;
    for role in ROLES {
        // Act
        let res = app.get("/api/v1/code-lists/target_groups", &Caller::new(role)).await;
        // Assert
        assert_eq!(res.status(), 200, "{role}");
        assert!(!items(&res.json().await.unwrap()).is_empty(), "{role}");
    }
}

#[tokio::test]
async fn code_lists_without_a_token_are_401() {
    // Arrange
    let app = spawn_app().await;
    // Act
    let res = app.client.get(app.url("/api/v1/code-lists/districts")).send().await.unwrap();
    // Assert
    assert!(res.headers().get("www-authenticate").is_some_and(|v| v.to_str().unwrap().starts_with("Bearer")));
    assert_problem(res, 401, "unauthorized").await;
}

#[tokio::test]
async fn only_districts_of_the_code_list_are_accepted() {
    // Arrange
    let app = spawn_app().await;
    let mut outside = provider_body("Träger");
    outside["district"] = json!("19");
    // Act
    let inside = app.post("/api/v1/providers", &caseworker(), &provider_body("Träger")).await;
    let outside = app.post("/api/v1/providers", &caseworker(), &outside).await;
    // Assert
    assert_eq!(inside.status(), 201);
    let problem = assert_problem(outside, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["field"], "district");
}
