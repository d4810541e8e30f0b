//! Invariants that hold under every writer (issue 16): capacity is decided
//! under one guard, every change the service makes bumps `version` and
//! `updated_at`, every status change (expiry too) reaches subscribers, and
//! matching offers only what the SPEC promises.
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Target},
};

/// A measure of a fresh provider with `capacity` seats, `taken` of them
/// accepted, and one more referral waiting (`requested`); (measure id, waiting referral id).
async fn measure_with_seats_taken(app: &TestApp, capacity: i64, taken: usize) -> (String, String) {
    let provider = fx::provider(app).await;
    let measure = fx::id(&fx::measure(app, &provider.id, capacity, json!({})).await);
    let target = Target::Measure(measure.clone());
    for _ in 0..taken {
        let referral = fx::id(&fx::fresh_referral(app, &caseworker(), &target).await);
        fx::drive(app, &referral, "accepted").await;
    }
    let waiting = fx::id(&fx::fresh_referral(app, &caseworker(), &target).await);
    (measure, waiting)
}

fn int(value: &Value, field: &str) -> i64 {
    value[field].as_i64().unwrap_or_else(|| panic!("no {field} in {value}"))
}

fn etag(res: &reqwest::Response) -> String {
    res.headers().get("etag").expect("ETag").to_str().unwrap().to_owned()
}

// --- capacity: one guard for the capacity change and the accept ---

#[tokio::test]
async fn capacity_shrink_racing_an_accept_never_overbooks() {
    // Arrange: 30 measures with capacity 2 and one seat taken, each with a waiting referral.
    let app = spawn_app().await;
    let mut rounds = Vec::new();
    for _ in 0..30 {
        rounds.push(measure_with_seats_taken(&app, 2, 1).await);
    }
    let (office, shrink, accept) = (caseworker(), json!({"capacity": 1}), json!({"action": "accept"}));
    for (measure, waiting) in &rounds {
        let patch_path = format!("/api/v1/measures/{measure}");
        // Act: the shrink and the accept are sent together.
        let (patched, accepted) =
            tokio::join!(app.patch(&patch_path, &office, &shrink), fx::act(&app, &office, waiting, &accept));
        // Assert: one of them loses with a named conflict, never both win.
        let (patched, accepted) = (patched.status().as_u16(), accepted.status().as_u16());
        assert!([200, 409, 412].contains(&patched), "PATCH answered {patched}");
        assert!([200, 409].contains(&accepted), "accept answered {accepted}");
        assert!(!(patched == 200 && accepted == 200), "both the shrink and the accept succeeded on {measure}");
        let after = fx::measure_of(&app, measure).await;
        assert!(int(&after, "seats_taken") <= int(&after, "capacity"), "overbooked: {after}");
    }
}

#[tokio::test]
async fn capacity_below_the_seats_taken_is_a_409_naming_them() {
    // Arrange
    let app = spawn_app().await;
    let (measure, _) = measure_with_seats_taken(&app, 2, 1).await;
    // Act
    let res = app.patch(&format!("/api/v1/measures/{measure}"), &caseworker(), &json!({"capacity": 0})).await;
    // Assert
    let problem = assert_problem(res, 409, "capacity-below-seats-taken").await;
    assert_eq!(problem["seats_taken"], 1);
    assert_eq!(int(&fx::measure_of(&app, &measure).await, "capacity"), 2);
}

#[tokio::test]
async fn the_database_refuses_more_seats_taken_than_capacity_and_that_maps_to_409() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    // Arrange: a full measure (capacity 1, one seat taken).
    let app = spawn_app().await;
    let (measure, _) = measure_with_seats_taken(&app, 1, 1).await;
    let db = app.db().await;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "UPDATE measures SET seats_taken = seats_taken + 1 WHERE id = $1",
        _ => "UPDATE measures SET seats_taken = seats_taken + 1 WHERE id = ?",
    };
    let id = uuid::Uuid::parse_str(&measure).unwrap();
    // Act: a writer that bypasses every service guard.
    let result = db.execute_raw(Statement::from_sql_and_values(backend, sql, [id.into()])).await;
    db.close().await.unwrap();
    // Assert
    let err = result.expect_err("the database accepted an overbooking");
    assert_eq!(ostwerk::error::ApiError::from(err).problem.status().as_u16(), 409);
    assert_eq!(int(&fx::measure_of(&app, &measure).await, "seats_taken"), 1);
}

// --- every change bumps version and updated_at, whoever makes it ---

#[tokio::test]
async fn an_accept_changes_the_measure_etag_so_a_stale_if_match_is_412() {
    // Arrange
    let app = spawn_app().await;
    let (measure, waiting) = measure_with_seats_taken(&app, 2, 0).await;
    let path = format!("/api/v1/measures/{measure}");
    let before = app.get(&path, &caseworker()).await;
    let stale = etag(&before);
    let before: Value = before.json().await.unwrap();
    // Act
    fx::take(&app, &caseworker(), &waiting, "accept").await;
    // Assert
    let after = app.get(&path, &caseworker()).await;
    assert_ne!(etag(&after), stale, "accept left the measure's ETag alone");
    let after: Value = after.json().await.unwrap();
    assert_eq!(int(&after, "version"), int(&before, "version") + 1);
    assert!(after["updated_at"].as_str() > before["updated_at"].as_str(), "{before} -> {after}");
    let res = app
        .request(Method::PATCH, &path, Some(&caseworker()))
        .header("content-type", "application/merge-patch+json")
        .header("if-match", stale)
        .body(json!({"capacity": 5}).to_string())
        .send()
        .await
        .unwrap();
    assert_problem(res, 412, "precondition-failed").await;
}

#[tokio::test]
async fn a_waitlist_bumps_the_measure_version() {
    // Arrange
    let app = spawn_app().await;
    let (measure, waiting) = measure_with_seats_taken(&app, 2, 0).await;
    let before = fx::measure_of(&app, &measure).await;
    // Act
    fx::take(&app, &caseworker(), &waiting, "waitlist").await;
    // Assert
    let after = fx::measure_of(&app, &measure).await;
    assert_eq!(int(&after, "version"), int(&before, "version") + 1, "{after}");
}

#[tokio::test]
async fn a_vacancy_turning_filled_has_a_new_version_and_updated_at() {
    // Arrange: one position, one referral accepted.
    let app = spawn_app().await;
    let employer = fx::employer(&app).await;
    let vacancy = fx::id(&fx::vacancy(&app, &employer.id, 1, json!({})).await);
    let referral = fx::id(&fx::fresh_referral(&app, &caseworker(), &Target::Vacancy(vacancy.clone())).await);
    fx::take(&app, &caseworker(), &referral, "accept").await;
    let before = fx::vacancy_of(&app, &vacancy).await;
    // Act
    fx::take(&app, &caseworker(), &referral, "start").await;
    // Assert
    let after = fx::vacancy_of(&app, &vacancy).await;
    assert_eq!(after["status"], "filled");
    assert!(int(&after, "version") > int(&before, "version"), "{before} -> {after}");
    assert!(after["updated_at"].as_str() > after["created_at"].as_str(), "{after}");
}

// --- expiry goes through the one status-change function ---

#[tokio::test]
async fn an_expired_referral_is_delivered_to_subscribers_as_status_changed() {
    // Arrange: the measure's provider subscribes; one referral is 40 days old.
    let app = spawn_app_with(Options { webhook_allow_private: true, ..Default::default() }).await;
    let provider = fx::provider(&app).await;
    let measure = fx::id(&fx::measure(&app, &provider.id, 5, json!({})).await);
    let hook = app
        .create(
            "/api/v1/webhooks",
            &provider.caller,
            &json!({"url": "http://127.0.0.1:9/hook", "events": ["referral.status_changed"]}),
        )
        .await;
    let referral = fx::id(&fx::fresh_referral(&app, &caseworker(), &Target::Measure(measure)).await);
    fx::age(&app, &[&referral], 40).await;
    // Act
    let out = fx::expire_now(&app);
    // Assert
    assert_eq!(fx::expired_count(&out), 1, "{out}");
    let deliveries = fx::read(&app, &provider.caller, &format!("/api/v1/webhooks/{}/deliveries", id_of(&hook))).await;
    let items = deliveries["items"].as_array().unwrap();
    let expired: Vec<&Value> = items
        .iter()
        .filter(|d| d["event_type"] == "referral.status_changed" && d["payload"]["data"]["id"] == referral.as_str())
        .collect();
    assert_eq!(expired.len(), 1, "{deliveries}");
    assert_eq!(expired[0]["payload"]["data"]["status"], "expired");
    assert_eq!(expired[0]["payload"]["data"]["previous_status"], "requested");
}

#[tokio::test]
async fn an_accept_enqueues_measure_changed_for_its_new_free_seats() {
    // Arrange
    let app = spawn_app_with(Options { webhook_allow_private: true, ..Default::default() }).await;
    let (measure, waiting) = measure_with_seats_taken(&app, 2, 0).await;
    let hook = app
        .create("/api/v1/webhooks", &admin(), &json!({"url": "http://127.0.0.1:9/hook", "events": ["measure.changed"]}))
        .await;
    // Act
    fx::take(&app, &caseworker(), &waiting, "accept").await;
    // Assert
    let deliveries = fx::read(&app, &admin(), &format!("/api/v1/webhooks/{}/deliveries", id_of(&hook))).await;
    let about: Vec<&Value> = deliveries["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event_type"] == "measure.changed" && d["payload"]["data"]["id"] == measure.as_str())
        .collect();
    assert_eq!(about.len(), 1, "{deliveries}");
}

// --- matching follows the SPEC ---

#[tokio::test]
async fn matching_lists_open_measures_with_free_seats_only_never_planned_ones() {
    // Arrange: an open and a planned measure, both with free seats and fitting the client.
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let open = fx::id(&fx::measure(&app, &provider.id, 5, json!({"title": "Offen"})).await);
    let planned = fx::id(&fx::measure(&app, &provider.id, 5, json!({"title": "Geplant", "status": "planned"})).await);
    let client = fx::client(&app, &caseworker(), json!({})).await;
    // Act
    let page =
        fx::read(&app, &caseworker(), &format!("/api/v1/clients/{}/matches?kind=measure", fx::id(&client))).await;
    // Assert
    let ids = fx::ids_of(&page);
    assert!(ids.contains(&open), "the open measure is missing: {page}");
    assert!(!ids.contains(&planned), "a planned measure was offered: {page}");
}

// --- no free text without consent; every read of it audited ---

/// A provider's measure, a client (`consent` as given), and a referral of it
/// by a caseworker with a `note`; (provider, referral id, client id).
async fn referral_with_note(app: &TestApp, share_with_providers: bool) -> (fx::Org, String, String) {
    let provider = fx::provider(app).await;
    let measure = fx::id(&fx::measure(app, &provider.id, 5, json!({})).await);
    let consent = json!({"data_processing": true, "share_with_providers": share_with_providers,
                         "given_at": "2026-01-05T10:00:00Z"});
    let client = fx::id(&fx::client(app, &caseworker(), json!({"consent": consent})).await);
    let body = fx::referral_body(&client, &Target::Measure(measure), json!({"note": "Bandscheibenvorfall 2025"}));
    let referral = fx::id(&app.create(fx::REFERRALS, &caseworker(), &body).await);
    (provider, referral, client)
}

async fn note_reads(app: &TestApp, client: &str, actor: &Caller) -> usize {
    fx::audit_events_of(app, client)
        .await
        .iter()
        .filter(|e| e["action"] == "referral.note_read" && e["actor"] == actor.sub.as_str())
        .count()
}

#[tokio::test]
async fn a_provider_reads_no_free_text_about_a_client_who_did_not_consent() {
    // Arrange: the office rejects with a reason note.
    let app = spawn_app().await;
    let (provider, referral, client) = referral_with_note(&app, false).await;
    let reject = json!({"action": "reject", "reason_code": "not_eligible", "rejected_by": "provider",
                        "reason_note": "Attest zur Belastbarkeit fehlt"});
    assert_eq!(fx::act(&app, &caseworker(), &referral, &reject).await.status(), 200);
    // Act
    let one = fx::read(&app, &provider.caller, &format!("{}/{referral}", fx::REFERRALS)).await;
    let page = fx::list(&app, &provider.caller, fx::REFERRALS, &[]).await;
    let events = fx::read(&app, &provider.caller, &format!("{}/{referral}/events", fx::REFERRALS)).await;
    // Assert
    assert_eq!(one["note"], Value::Null, "{one}");
    assert_eq!(one["reason_note"], Value::Null, "{one}");
    assert_eq!(page["items"][0]["note"], Value::Null, "{page}");
    assert_eq!(page["items"][0]["reason_note"], Value::Null, "{page}");
    for event in events["items"].as_array().unwrap() {
        assert_eq!(event["reason_note"], Value::Null, "{events}");
    }
    assert_eq!(note_reads(&app, &client, &provider.caller).await, 0);
}

#[tokio::test]
async fn a_transition_answer_to_a_provider_carries_no_free_text_without_consent() {
    // Arrange
    let app = spawn_app().await;
    let (provider, referral, _) = referral_with_note(&app, false).await;
    // Act
    let accepted = fx::take(&app, &provider.caller, &referral, "accept").await;
    // Assert
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["note"], Value::Null, "{accepted}");
}

#[tokio::test]
async fn a_provider_reads_the_note_of_a_consenting_client_and_the_read_is_audited() {
    // Arrange
    let app = spawn_app().await;
    let (provider, referral, client) = referral_with_note(&app, true).await;
    // Act
    let one = fx::read(&app, &provider.caller, &format!("{}/{referral}", fx::REFERRALS)).await;
    // Assert
    assert_eq!(one["note"], "Bandscheibenvorfall 2025");
    assert_eq!(note_reads(&app, &client, &provider.caller).await, 1);
    let event =
        fx::audit_events_of(&app, &client).await.into_iter().find(|e| e["action"] == "referral.note_read").unwrap();
    assert_eq!(event["resource_id"], referral.as_str());
}

#[tokio::test]
async fn office_reads_of_referral_notes_and_event_notes_are_audited_too() {
    // Arrange
    let app = spawn_app().await;
    let (_, referral, client) = referral_with_note(&app, false).await;
    let cancel = json!({"action": "cancel", "reason_code": "client_declined", "reason_note": "Pflege der Mutter"});
    let office = caseworker();
    assert_eq!(fx::act(&app, &office, &referral, &cancel).await.status(), 200);
    let before = note_reads(&app, &client, &office).await;
    // Act
    let one = fx::read(&app, &office, &format!("{}/{referral}", fx::REFERRALS)).await;
    let events = fx::read(&app, &office, &format!("{}/{referral}/events", fx::REFERRALS)).await;
    // Assert
    assert_eq!(one["note"], "Bandscheibenvorfall 2025");
    assert!(events["items"].as_array().unwrap().iter().any(|e| e["reason_note"] == "Pflege der Mutter"), "{events}");
    assert_eq!(note_reads(&app, &client, &office).await, before + 2);
}

#[tokio::test]
async fn a_replayed_referral_create_showing_its_note_is_audited() {
    // Arrange: a job centre pushes a referral with a note and a key.
    let app = spawn_app().await;
    let jc = Caller::new("jobcenter");
    let provider = fx::provider(&app).await;
    let measure = fx::id(&fx::measure(&app, &provider.id, 5, json!({})).await);
    let client = fx::id(&fx::client(&app, &jc, json!({})).await);
    let body = fx::referral_body(&client, &Target::Measure(measure), json!({"note": "Bandscheibenvorfall 2025"}));
    let push =
        || app.request(Method::POST, fx::REFERRALS, Some(&jc)).header("idempotency-key", "ref-1").json(&body).send();
    let created: Value = push().await.unwrap().json().await.unwrap();
    assert_eq!(note_reads(&app, &client, &jc).await, 0, "the creator's own answer is no read");
    // Act
    let replay = push().await.unwrap();
    // Assert
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(note_reads(&app, &client, &jc).await, 1);
    let event =
        fx::audit_events_of(&app, &client).await.into_iter().find(|e| e["action"] == "referral.note_read").unwrap();
    assert_eq!(event["resource_id"], created["id"]);
}
