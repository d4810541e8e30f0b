//! Creating referrals (SPEC §3 "Referrals"): who may refer, exactly one
//! target, the referring organisation, external ids, Idempotency-Key,
//! closed targets, eligibility, duplicate active referrals, whose clients a
//! job centre may refer, erased clients; and what referrals change elsewhere
//! (measure deletion, the client export).
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Target},
};

/// A provider's open measure (any client fits) as a target.
async fn a_measure(app: &TestApp) -> Target {
    let provider = fx::provider(app).await;
    Target::Measure(fx::id(&fx::measure(app, &provider.id, 10, json!({})).await))
}

/// An employer's open vacancy as a target.
async fn a_vacancy(app: &TestApp) -> Target {
    let employer = fx::employer(app).await;
    Target::Vacancy(fx::id(&fx::vacancy(app, &employer.id, 2, json!({})).await))
}

// ---------------------------------------------------------------------------
// Who refers, and as whom
// ---------------------------------------------------------------------------

#[tokio::test]
async fn office_staff_and_job_centres_may_refer_other_roles_are_403() {
    // Arrange
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    for role in ROLES {
        let caller = Caller::new(role);
        // A client the caller could refer if its role allowed it.
        let creator = if role == "jobcenter" { caller.clone() } else { caseworker() };
        let client = fx::client(&app, &creator, json!({})).await;
        // Act
        let res = fx::refer(&app, &caller, &fx::referral_body(&fx::id(&client), &target, json!({}))).await;
        // Assert
        match role {
            "admin" | "caseworker" | "jobcenter" => assert_eq!(res.status(), 201, "{role}"),
            _ => {
                assert_problem(res, 403, "forbidden").await;
            }
        }
    }
}

#[tokio::test]
async fn referring_without_a_token_is_401() {
    let app = spawn_app().await;
    let res = app.request(Method::POST, fx::REFERRALS, None).json(&json!({})).send().await.unwrap();
    assert_problem(res, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_created_referral_is_requested_with_location_etag_and_the_given_fields() {
    // Arrange
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let client = fx::client(&app, &caseworker(), json!({})).await;
    let body = fx::referral_body(&fx::id(&client), &target, json!({"external_id": "REF-1", "note": "Sehr motiviert."}));
    // Act
    let res = fx::refer(&app, &caseworker(), &body).await;
    // Assert
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["etag"], "\"1\"");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    assert_eq!(location, format!("{}/{}", fx::REFERRALS, fx::id(&created)));
    let (member, target_id) = target.member();
    assert_eq!(created[member], target_id);
    assert!(created["vacancy_id"].is_null());
    assert_eq!(created["client_id"], fx::id(&client));
    assert_eq!(created["status"], "requested");
    assert_eq!(created["external_id"], "REF-1");
    assert_eq!(created["note"], "Sehr motiviert.");
    assert_eq!(created["version"], 1);
    assert_eq!(created["created_at"], created["updated_at"]);
    assert_eq!(fx::read(&app, &caseworker(), &location).await, created);
}

#[tokio::test]
async fn a_client_can_be_referred_to_a_vacancy() {
    let app = spawn_app().await;
    let target = a_vacancy(&app).await;
    let client = fx::client(&app, &caseworker(), json!({})).await;
    let created = fx::referral(&app, &caseworker(), &fx::id(&client), &target).await;
    assert_eq!(created["vacancy_id"], target.member().1);
    assert!(created["measure_id"].is_null());
    assert_eq!(created["status"], "requested");
}

#[tokio::test]
async fn the_referring_org_is_office_for_office_staff_and_the_org_for_a_job_centre() {
    // Arrange
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let jobcenter = Caller::new("jobcenter").with_org("jc-leipzig-ost");
    for (caller, expected) in [(caseworker(), "office"), (admin(), "office"), (jobcenter, "jc-leipzig-ost")] {
        let creator = if caller.roles == ["jobcenter"] { caller.clone() } else { caseworker() };
        let client = fx::client(&app, &creator, json!({})).await;
        // Act: a referring_org in the body is not the caller's to choose.
        let body = fx::referral_body(&fx::id(&client), &target, json!({}));
        let created = fx::referral(&app, &caller, &fx::id(&client), &target).await;
        // Assert
        assert_eq!(created["referring_org"], expected, "{:?}", caller.roles);
        let forged = fx::refer(&app, &caller, &fx::merged(body, json!({"referring_org": "elsewhere"}))).await;
        assert_eq!(forged.status(), 400, "unknown member referring_org");
    }
}

#[tokio::test]
async fn office_staff_and_job_centres_get_no_client_member() {
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let jobcenter = Caller::new("jobcenter");
    let referral = fx::fresh_referral(&app, &jobcenter, &target).await;
    assert!(referral.get("client").is_none(), "{referral}");
    for caller in [jobcenter, caseworker(), admin()] {
        let read = fx::read(&app, &caller, &format!("{}/{}", fx::REFERRALS, fx::id(&referral))).await;
        assert!(read.get("client").is_none(), "{:?}: {read}", caller.roles);
    }
}

// ---------------------------------------------------------------------------
// Shape
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_referral_needs_exactly_one_of_measure_and_vacancy() {
    // Arrange
    let app = spawn_app().await;
    let measure = a_measure(&app).await;
    let vacancy = a_vacancy(&app).await;
    let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
    let both = json!({"client_id": client, "measure_id": measure.member().1, "vacancy_id": vacancy.member().1});
    let neither = json!({"client_id": client});
    for body in [both, neither] {
        // Act
        let res = fx::refer(&app, &caseworker(), &body).await;
        // Assert
        let problem = assert_problem(res, 422, "validation-failed").await;
        let fields: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
        assert!(fields.iter().any(|f| *f == "measure_id" || *f == "vacancy_id"), "{problem}");
    }
    let listed = fx::list(&app, &caseworker(), fx::REFERRALS, &[]).await;
    assert!(fx::ids_of(&listed).is_empty());
}

#[tokio::test]
async fn a_client_id_that_is_not_a_uuid_or_missing_is_422() {
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    for body in [fx::referral_body("client-17", &target, json!({})), json!({"measure_id": target.member().1})] {
        let res = fx::refer(&app, &caseworker(), &body).await;
        let problem = assert_problem(res, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "client_id", "{problem}");
    }
}

#[tokio::test]
async fn an_unknown_client_measure_or_vacancy_is_422_naming_the_field() {
    let app = spawn_app().await;
    let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
    let nobody = uuid::Uuid::now_v7().to_string();
    for (body, field) in [
        (fx::referral_body(&nobody, &a_measure(&app).await, json!({})), "client_id"),
        (fx::referral_body(&client, &Target::Measure(nobody.clone()), json!({})), "measure_id"),
        (fx::referral_body(&client, &Target::Vacancy(nobody.clone()), json!({})), "vacancy_id"),
    ] {
        let res = fx::refer(&app, &caseworker(), &body).await;
        let problem = assert_problem(res, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
}

// ---------------------------------------------------------------------------
// External ids and Idempotency-Key
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_external_id_the_org_already_used_is_409_naming_the_existing_referral() {
    // Arrange
    let app = spawn_app().await;
    let jobcenter = Caller::new("jobcenter");
    let (first_target, second_target) = (a_measure(&app).await, a_measure(&app).await);
    let first_client = fx::id(&fx::client(&app, &jobcenter, json!({})).await);
    let second_client = fx::id(&fx::client(&app, &jobcenter, json!({})).await);
    let first =
        fx::refer(&app, &jobcenter, &fx::referral_body(&first_client, &first_target, json!({"external_id": "JC-77"})))
            .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // Act: another client, another measure, the same number.
    let body = fx::referral_body(&second_client, &second_target, json!({"external_id": "JC-77"}));
    let res = fx::refer(&app, &jobcenter, &body).await;
    // Assert
    let problem = assert_problem(res, 409, "duplicate-external-id").await;
    assert_eq!(problem["existing_id"], fx::id(&first));
    let found = fx::list(&app, &jobcenter, fx::REFERRALS, &[("external_id", "JC-77")]).await;
    assert_eq!(fx::ids_of(&found), vec![fx::id(&first)]);
}

#[tokio::test]
async fn another_org_may_use_the_same_external_id() {
    // Arrange
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let leipzig = Caller::new("jobcenter").with_org("jc-leipzig");
    let halle = Caller::new("jobcenter").with_org("jc-halle");
    let office = caseworker();
    let mut created = Vec::new();
    for caller in [&leipzig, &halle, &office] {
        let client = fx::id(&fx::client(&app, caller, json!({})).await);
        // Act
        let res =
            fx::refer(&app, caller, &fx::referral_body(&client, &target, json!({"external_id": "2026-001"}))).await;
        // Assert
        assert_eq!(res.status(), 201, "{:?}", caller.org);
        created.push(res.json::<Value>().await.unwrap());
    }
    let orgs: Vec<&Value> = created.iter().map(|r| &r["referring_org"]).collect();
    assert_eq!(orgs, [&json!("jc-leipzig"), &json!("jc-halle"), &json!("office")]);
}

#[tokio::test]
async fn an_idempotency_key_replays_the_created_referral_and_creates_nothing() {
    // Arrange
    let app = spawn_app().await;
    let jobcenter = Caller::new("jobcenter");
    let target = a_measure(&app).await;
    let client = fx::id(&fx::client(&app, &jobcenter, json!({})).await);
    let body = fx::referral_body(&client, &target, json!({"external_id": "JC-900"}));
    let send = || {
        app.request(Method::POST, fx::REFERRALS, Some(&jobcenter))
            .header("Idempotency-Key", "push-2026-11-02-0001")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    // Act
    let replay = send().await.unwrap();
    // Assert
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.headers()["location"], first_location);
    assert_eq!(replay.json::<Value>().await.unwrap(), first);
    let all = fx::list(&app, &jobcenter, fx::REFERRALS, &[("client_id", &client)]).await;
    assert_eq!(fx::ids_of(&all), vec![fx::id(&first)]);
}

#[tokio::test]
async fn an_idempotency_key_reused_for_another_referral_is_422() {
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let office = caseworker();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let client = fx::id(&fx::client(&app, &office, json!({})).await);
        let res = app
            .request(Method::POST, fx::REFERRALS, Some(&office))
            .header("Idempotency-Key", "same-key")
            .json(&fx::referral_body(&client, &target, json!({})))
            .send()
            .await
            .unwrap();
        answers.push(res);
    }
    let second = answers.pop().unwrap();
    assert_eq!(answers.pop().unwrap().status(), 201);
    assert_problem(second, 422, "idempotency-key-reused").await;
}

// ---------------------------------------------------------------------------
// Closed targets, eligibility, duplicates
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_closed_measure_or_vacancy_is_409_target_closed() {
    // Arrange
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let employer = fx::employer(&app).await;
    let measure = fx::measure(&app, &provider.id, 10, json!({"status": "closed"})).await;
    let vacancy = fx::vacancy(&app, &employer.id, 1, json!({"status": "closed"})).await;
    let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
    for target in [Target::Measure(fx::id(&measure)), Target::Vacancy(fx::id(&vacancy))] {
        // Act
        let res = fx::refer(&app, &caseworker(), &fx::referral_body(&client, &target, json!({}))).await;
        // Assert
        assert_problem(res, 409, "target-closed").await;
    }
}

/// Refers a fresh client (with `client_extra`) to a fresh measure (with
/// `measure_extra`) as a caseworker.
async fn refer_into(app: &TestApp, measure_extra: Value, client_extra: Value) -> reqwest::Response {
    let provider = fx::provider(app).await;
    let measure = fx::measure(app, &provider.id, 10, measure_extra).await;
    let client = fx::id(&fx::client(app, &caseworker(), client_extra).await);
    fx::refer(app, &caseworker(), &fx::referral_body(&client, &Target::Measure(fx::id(&measure)), json!({}))).await
}

/// The `field`s of the reasons in a `not-eligible` problem.
async fn ineligible_because(res: reqwest::Response) -> Vec<String> {
    let problem = assert_problem(res, 422, "not-eligible").await;
    let errors = problem["errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())), "{problem}");
    errors.iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_client_outside_the_measures_target_groups_is_not_eligible() {
    let app = spawn_app().await;
    let res =
        refer_into(&app, json!({"target_groups": ["youth", "school_leaver"]}), json!({"target_groups": ["founder"]}))
            .await;
    assert_eq!(ineligible_because(res).await, ["target_groups"]);
}

#[tokio::test]
async fn a_client_sharing_one_target_group_is_eligible() {
    let app = spawn_app().await;
    let res =
        refer_into(&app, json!({"target_groups": ["youth", "migrant"]}), json!({"target_groups": ["migrant"]})).await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_measure_without_target_groups_takes_a_client_of_any_group() {
    let app = spawn_app().await;
    let res = refer_into(&app, json!({"target_groups": []}), json!({"target_groups": ["volunteer"]})).await;
    assert_eq!(res.status(), 201);
}

#[tokio::test]
async fn a_client_too_old_or_too_young_for_the_measure_is_not_eligible() {
    let app = spawn_app().await;
    // Born 1990: in the thirties for years to come.
    for limits in [json!({"max_age": 25}), json!({"min_age": 60})] {
        let res = refer_into(&app, limits.clone(), json!({"date_of_birth": "1990-05-17"})).await;
        assert_eq!(ineligible_because(res).await, ["age"], "{limits}");
    }
    let fits = refer_into(&app, json!({"min_age": 18, "max_age": 64}), json!({"date_of_birth": "1990-05-17"})).await;
    assert_eq!(fits.status(), 201);
}

#[tokio::test]
async fn every_reason_of_ineligibility_is_listed() {
    let app = spawn_app().await;
    let res = refer_into(
        &app,
        json!({"target_groups": ["youth"], "max_age": 25}),
        json!({"target_groups": ["returner"], "date_of_birth": "1970-01-01"}),
    )
    .await;
    let mut reasons = ineligible_because(res).await;
    reasons.sort();
    assert_eq!(reasons, ["age", "target_groups"]);
}

#[tokio::test]
async fn a_second_active_referral_to_the_same_target_is_409_naming_the_first() {
    for (status, target_is_measure) in
        [("requested", true), ("on_hold", true), ("in_progress", true), ("accepted", false)]
    {
        // Arrange
        let app = spawn_app().await;
        let target = if target_is_measure { a_measure(&app).await } else { a_vacancy(&app).await };
        let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
        let first = fx::referral(&app, &caseworker(), &client, &target).await;
        fx::drive(&app, &fx::id(&first), status).await;
        // Act
        let res = fx::refer(&app, &admin(), &fx::referral_body(&client, &target, json!({}))).await;
        // Assert
        let problem = assert_problem(res, 409, "duplicate-referral").await;
        assert_eq!(problem["existing_id"], fx::id(&first), "{status}");
    }
}

#[tokio::test]
async fn concurrent_creates_of_one_active_slot_make_one_referral_and_name_it_to_the_rest() {
    for target_is_measure in [true, false] {
        // Arrange
        let app = spawn_app().await;
        let target = if target_is_measure { a_measure(&app).await } else { a_vacancy(&app).await };
        let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
        let body = fx::referral_body(&client, &target, json!({}));

        // Act: eight creates of the same client and target at once.
        let answers = futures_util::future::join_all((0..8).map(|_| async {
            let res = fx::refer(&app, &caseworker(), &body).await;
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        }))
        .await;

        // Assert: one created, every other answer a 409 naming it.
        let created: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 201).map(|(_, b)| b).collect();
        assert_eq!(created.len(), 1, "{answers:?}");
        for (status, problem) in answers.iter().filter(|(s, _)| *s != 201) {
            assert_eq!(*status, 409, "{problem}");
            assert_eq!(problem["type"].as_str().unwrap().rsplit('/').next(), Some("duplicate-referral"), "{problem}");
            assert_eq!(problem["existing_id"], created[0]["id"], "{problem}");
        }
        let listed = app.get(&format!("/api/v1/referrals?client_id={client}"), &caseworker()).await;
        assert_eq!(listed.json::<Value>().await.unwrap()["items"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn after_a_rejection_or_cancellation_the_client_may_be_referred_again() {
    for ended in ["rejected", "cancelled", "completed", "failed"] {
        // Arrange
        let app = spawn_app().await;
        let target = a_measure(&app).await;
        let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
        let first = fx::referral(&app, &caseworker(), &client, &target).await;
        fx::drive(&app, &fx::id(&first), ended).await;
        // Act
        let res = fx::refer(&app, &caseworker(), &fx::referral_body(&client, &target, json!({}))).await;
        // Assert
        assert_eq!(res.status(), 201, "after {ended}");
        let second: Value = res.json().await.unwrap();
        assert_ne!(fx::id(&second), fx::id(&first));
    }
}

#[tokio::test]
async fn an_active_referral_does_not_block_one_to_another_target() {
    let app = spawn_app().await;
    let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
    for target in [a_measure(&app).await, a_measure(&app).await, a_vacancy(&app).await] {
        fx::referral(&app, &caseworker(), &client, &target).await;
    }
    let all = fx::list(&app, &caseworker(), fx::REFERRALS, &[("client_id", &client)]).await;
    assert_eq!(fx::ids_of(&all).len(), 3);
}

// ---------------------------------------------------------------------------
// Whose clients may be referred
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_job_centre_cannot_refer_a_client_it_did_not_create() {
    // Arrange: one client of the office, one of another job centre.
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let leipzig = Caller::new("jobcenter").with_org("jc-leipzig");
    let halle = Caller::new("jobcenter").with_org("jc-halle");
    for creator in [caseworker(), halle] {
        let client = fx::id(&fx::client(&app, &creator, json!({})).await);
        // Act
        let res = fx::refer(&app, &leipzig, &fx::referral_body(&client, &target, json!({}))).await;
        // Assert
        let problem = assert_problem(res, 422, "validation-failed").await;
        assert_eq!(problem["errors"][0]["field"], "client_id", "{problem}");
    }
}

#[tokio::test]
async fn a_caseworker_can_refer_a_client_a_job_centre_created() {
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let client = fx::id(&fx::client(&app, &Caller::new("jobcenter"), json!({})).await);
    let created = fx::referral(&app, &caseworker(), &client, &target).await;
    assert_eq!(created["referring_org"], "office");
}

#[tokio::test]
async fn a_client_referred_by_a_caseworker_stays_hidden_from_other_job_centres() {
    // Arrange: job centre Leipzig's client, referred by the office.
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let leipzig = Caller::new("jobcenter").with_org("jc-leipzig");
    let halle = Caller::new("jobcenter").with_org("jc-halle");
    let client = fx::id(&fx::client(&app, &leipzig, json!({})).await);
    fx::referral(&app, &caseworker(), &client, &target).await;
    let path = format!("/api/v1/clients/{client}");
    // Act
    let by_halle = app.get(&path, &halle).await;
    let by_leipzig = app.get(&path, &leipzig).await;
    // Assert
    assert_problem(by_halle, 404, "not-found").await;
    assert_eq!(by_leipzig.status(), 200);
}

#[tokio::test]
async fn a_job_centre_does_not_see_the_office_referral_of_its_own_client() {
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let jobcenter = Caller::new("jobcenter");
    let client = fx::id(&fx::client(&app, &jobcenter, json!({})).await);
    let by_office = fx::referral(&app, &caseworker(), &client, &target).await;
    let res = app.get(&format!("{}/{}", fx::REFERRALS, fx::id(&by_office)), &jobcenter).await;
    assert_problem(res, 404, "not-found").await;
}

#[tokio::test]
async fn an_erased_client_cannot_be_referred() {
    // Arrange
    let app = spawn_app().await;
    let target = a_measure(&app).await;
    let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
    assert_eq!(app.delete(&format!("/api/v1/clients/{client}"), &admin()).await.status(), 204);
    // Act
    let res = fx::refer(&app, &caseworker(), &fx::referral_body(&client, &target, json!({}))).await;
    // Assert
    assert_problem(res, 410, "gone").await;
}

// ---------------------------------------------------------------------------
// What referrals change elsewhere
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_measure_with_referrals_cannot_be_deleted() {
    // Arrange
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let used = fx::measure(&app, &provider.id, 5, json!({})).await;
    let unused = fx::measure(&app, &provider.id, 5, json!({})).await;
    let referral = fx::fresh_referral(&app, &caseworker(), &Target::Measure(fx::id(&used))).await;
    // Even a finished referral keeps its measure: the history points at it.
    fx::drive(&app, &fx::id(&referral), "cancelled").await;
    // Act
    let refused = app.delete(&format!("/api/v1/measures/{}", fx::id(&used)), &provider.caller).await;
    let deleted = app.delete(&format!("/api/v1/measures/{}", fx::id(&unused)), &provider.caller).await;
    // Assert
    assert_problem(refused, 409, "in-use").await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(fx::measure_of(&app, &fx::id(&used)).await["id"], fx::id(&used));
}

#[tokio::test]
async fn the_client_export_includes_the_referrals_with_their_events() {
    // Arrange
    let app = spawn_app().await;
    let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
    let to_measure = fx::referral(&app, &caseworker(), &client, &a_measure(&app).await).await;
    let to_vacancy = fx::referral(&app, &caseworker(), &client, &a_vacancy(&app).await).await;
    fx::drive(&app, &fx::id(&to_measure), "in_progress").await;
    // Act
    let export = fx::read(&app, &caseworker(), &format!("/api/v1/clients/{client}/export")).await;
    // Assert
    let referrals = export["referrals"].as_array().unwrap();
    let mut ids: Vec<String> = referrals.iter().map(fx::id).collect();
    ids.sort();
    let mut expected = vec![fx::id(&to_measure), fx::id(&to_vacancy)];
    expected.sort();
    assert_eq!(ids, expected);
    let exported = referrals.iter().find(|r| r["id"] == to_measure["id"]).unwrap();
    assert_eq!(exported["status"], "in_progress");
    let actions: Vec<&str> =
        exported["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "accept", "start"]);
    assert_eq!(exported["events"], json!(fx::events_of(&app, &fx::id(&to_measure)).await));
}

#[tokio::test]
async fn a_duplicate_referral_does_not_name_another_organisations_referral() {
    // Arrange: a job centre's client is referred by the office; the job centre then tries too.
    let app = spawn_app().await;
    let jobcenter = Caller::new("jobcenter");
    let target = a_measure(&app).await;
    let client = fx::id(&fx::client(&app, &jobcenter, json!({})).await);
    fx::referral(&app, &caseworker(), &client, &target).await;
    // Act
    let res = fx::refer(&app, &jobcenter, &fx::referral_body(&client, &target, json!({}))).await;
    // Assert
    let problem = assert_problem(res, 409, "duplicate-referral").await;
    assert!(problem.get("existing_id").is_none(), "{problem}");
}
