//! Funding programmes and applications (SPEC §3 "Funding"), and the funding statistics.
use serde_json::{Value, json};

use crate::helpers::*;

fn programme_body() -> Value {
    json!({"name": "Gründungszuschuss", "funder": "Bundesagentur für Arbeit", "legal_basis": "§ 93 SGB III",
           "target_groups": ["founder"], "eligible_applicants": ["client"], "max_amount_eur": 30000.5,
           "deadline": "2027-06-30", "url": "https://example.org/foerderung"})
}

async fn programme(app: &TestApp) -> Value {
    app.create("/api/v1/funding-programmes", &caseworker(), &programme_body()).await
}

#[tokio::test]
async fn a_programme_is_recorded_and_readable_by_every_role() {
    let app = spawn_app().await;
    let p = programme(&app).await;
    assert_eq!(p["max_amount_eur"], 30000.5);
    assert_eq!(p["eligible_applicants"], json!(["client"]));
    for role in ["analyst", "provider", "employer", "jobcenter"] {
        let res = app.get(&format!("/api/v1/funding-programmes/{}", id_of(&p)), &Caller::new(role)).await;
        assert_eq!(res.status(), 200, "{role}");
    }
    let res = app.post("/api/v1/funding-programmes", &Caller::new("provider"), &programme_body()).await;
    assert_problem(res, 403, "forbidden").await;
}

#[tokio::test]
async fn invalid_programme_values_are_422() {
    let app = spawn_app().await;
    let body =
        json!({"name": "", "funder": "x", "eligible_applicants": ["king"], "max_amount_eur": -1, "deadline": "soon"});
    let problem =
        assert_problem(app.post("/api/v1/funding-programmes", &caseworker(), &body).await, 422, "validation-failed")
            .await;
    let fields = error_fields(&problem);
    for f in ["name", "eligible_applicants[0]", "max_amount_eur", "deadline"] {
        assert!(fields.contains(&f.to_owned()), "{f} in {fields:?}");
    }
}

#[tokio::test]
async fn an_application_must_fit_the_programme_and_name_an_existing_applicant() {
    let app = spawn_app().await;
    let p = programme(&app).await;
    let employer = app.create_employer("Bäckerei").await;
    let wrong_kind = json!({"programme_id": id_of(&p), "applicant_kind": "employer", "applicant_id": id_of(&employer), "amount_requested_eur": 100});
    let problem = assert_problem(
        app.post("/api/v1/funding-applications", &caseworker(), &wrong_kind).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "applicant_kind");
    let nobody = json!({"programme_id": id_of(&p), "applicant_kind": "client", "applicant_id": uuid::Uuid::now_v7(), "amount_requested_eur": 100});
    let problem = assert_problem(
        app.post("/api/v1/funding-applications", &caseworker(), &nobody).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "applicant_id");
}

#[tokio::test]
async fn an_application_moves_to_granted_only_with_an_amount_and_is_audited_for_clients() {
    let app = spawn_app().await;
    let p = programme(&app).await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let body = json!({"programme_id": id_of(&p), "applicant_kind": "client", "applicant_id": id_of(&client), "amount_requested_eur": 5000});
    let application = app.create("/api/v1/funding-applications", &caseworker(), &body).await;
    assert_eq!(application["status"], "draft");
    let path = format!("/api/v1/funding-applications/{}", id_of(&application));
    let res = app.patch(&path, &caseworker(), &json!({"status": "granted"})).await;
    assert_problem(res, 422, "validation-failed").await;
    let res = app
        .patch(&path, &caseworker(), &json!({"status": "granted", "amount_granted_eur": 4500, "submitted_on": "2026-10-01", "decided_on": "2026-11-01"}))
        .await;
    assert_eq!(res.status(), 200);
    let actions: Vec<String> = app
        .audit_events(&format!("client_id={}", id_of(&client)))
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.contains(&"funding_application.write".to_owned()), "{actions:?}");
    let export: Value =
        app.get(&format!("/api/v1/clients/{}/export", id_of(&client)), &caseworker()).await.json().await.unwrap();
    assert_eq!(export["funding_applications"][0]["amount_granted_eur"], 4500.0);
}

#[tokio::test]
async fn a_programme_with_applications_cannot_be_deleted() {
    let app = spawn_app().await;
    let p = programme(&app).await;
    let client = app.create_client(&caseworker(), &client_body()).await;
    let body = json!({"programme_id": id_of(&p), "applicant_kind": "client", "applicant_id": id_of(&client), "amount_requested_eur": 1});
    app.create("/api/v1/funding-applications", &caseworker(), &body).await;
    let res = app.delete(&format!("/api/v1/funding-programmes/{}", id_of(&p)), &caseworker()).await;
    assert_problem(res, 409, "in-use").await;
}

#[tokio::test]
async fn funding_statistics_count_raised_money_and_suppress_small_groups() {
    let app = spawn_app().await;
    let p = programme(&app).await;
    let mut granted = 0;
    for i in 0..6 {
        let client =
            app.create_client(&caseworker(), &client_body_with(json!({"external_id": format!("F-{i}")}))).await;
        let status = if i < 5 { "granted" } else { "submitted" };
        let mut body = json!({"programme_id": id_of(&p), "applicant_kind": "client", "applicant_id": id_of(&client),
                              "amount_requested_eur": 1000, "status": status});
        if status == "granted" {
            body["amount_granted_eur"] = json!(800);
            granted += 800;
        }
        app.create("/api/v1/funding-applications", &caseworker(), &body).await;
    }
    // Record keys 0: no cell-key noise, so the counts below are exact.
    crate::statistics_privacy::set_all_record_keys(&app, 0).await;
    let report: Value =
        app.get("/api/v1/statistics/funding?group_by=funder", &Caller::new("analyst")).await.json().await.unwrap();
    let row = &report["rows"][0];
    assert_eq!(row["group"], "Bundesagentur für Arbeit");
    assert_eq!(row["applications"], 6);
    assert_eq!(row["granted"], 5);
    assert_eq!(row["amount_granted_eur"], f64::from(granted));
    let report: Value = app
        .get("/api/v1/statistics/funding?group_by=applicant_kind", &Caller::new("analyst"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["rows"][0]["suppressed"], false);
    // Group by a funder with a single grant: suppressed.
    let other =
        app.create("/api/v1/funding-programmes", &caseworker(), &json!({"name": "Klein", "funder": "Stiftung"})).await;
    let client = app.create_client(&caseworker(), &client_body_with(json!({"external_id": "F-small"}))).await;
    let body = json!({"programme_id": id_of(&other), "applicant_kind": "client", "applicant_id": id_of(&client),
                      "amount_requested_eur": 300, "status": "granted", "amount_granted_eur": 300});
    app.create("/api/v1/funding-applications", &caseworker(), &body).await;
    crate::statistics_privacy::set_all_record_keys(&app, 0).await;
    let report: Value =
        app.get("/api/v1/statistics/funding?group_by=funder", &Caller::new("analyst")).await.json().await.unwrap();
    let small = report["rows"].as_array().unwrap().iter().find(|r| r["group"] == "Stiftung").unwrap().clone();
    assert_eq!(small["suppressed"], true);
    assert!(small["amount_granted_eur"].is_null());
}
