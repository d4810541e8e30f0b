//! Expiry (SPEC §3 "Referrals": `expire` after OSTWERK_REFERRAL_EXPIRY_DAYS,
//! default 30, without an answer), through the real `ostwerk
//! expire-referrals` binary against the test database. Referrals are made
//! old by moving their `updated_at` back directly in the database.
use serde_json::json;

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Org, Target},
};

/// A provider's measure and `n` referrals to it in `status` (made by a caseworker).
async fn referrals_in(app: &TestApp, target: &Target, status: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let id = fx::id(&fx::fresh_referral(app, &caseworker(), target).await);
        fx::drive(app, &id, status).await;
        ids.push(id);
    }
    ids
}

async fn measure(app: &TestApp) -> (Org, String, Target) {
    let provider = fx::provider(app).await;
    let id = fx::id(&fx::measure(app, &provider.id, 10, json!({})).await);
    (provider, id.clone(), Target::Measure(id))
}

async fn status_of(app: &TestApp, id: &str) -> String {
    fx::referral_of(app, id).await["status"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unanswered_referrals_older_than_30_days_expire() {
    // Arrange
    let app = spawn_app().await;
    let (_, _, target) = measure(&app).await;
    let requested = referrals_in(&app, &target, "requested", 2).await;
    let on_hold = referrals_in(&app, &target, "on_hold", 1).await;
    fx::age(&app, &[&requested[0], &requested[1], &on_hold[0]], 40).await;
    // Act
    let out = fx::expire_now(&app);
    // Assert
    assert!(out.contains("3 referrals expired"), "{out}");
    for id in requested.iter().chain(&on_hold) {
        assert_eq!(status_of(&app, id).await, "expired");
    }
}

#[tokio::test]
async fn expiry_leaves_recent_and_answered_referrals_alone() {
    // Arrange: recent unanswered ones, and old ones that were answered.
    let app = spawn_app().await;
    let (_, _, target) = measure(&app).await;
    let recent = referrals_in(&app, &target, "requested", 1).await.remove(0);
    let recent_hold = referrals_in(&app, &target, "on_hold", 1).await.remove(0);
    let almost = referrals_in(&app, &target, "requested", 1).await.remove(0);
    fx::age(&app, &[&almost], 29).await;
    let mut answered = Vec::new();
    for status in ["accepted", "in_progress", "rejected", "cancelled"] {
        answered.push((referrals_in(&app, &target, status, 1).await.remove(0), status));
    }
    let old: Vec<&str> = answered.iter().map(|(id, _)| id.as_str()).collect();
    fx::age(&app, &old, 40).await;
    // Act
    let out = fx::expire_now(&app);
    // Assert
    assert_eq!(fx::expired_count(&out), 0, "{out}");
    assert_eq!(status_of(&app, &recent).await, "requested");
    assert_eq!(status_of(&app, &recent_hold).await, "on_hold");
    assert_eq!(status_of(&app, &almost).await, "requested");
    for (id, status) in &answered {
        assert_eq!(status_of(&app, id).await, *status);
    }
}

#[tokio::test]
async fn expiry_writes_an_expire_event_by_the_service_itself() {
    // Arrange
    let app = spawn_app().await;
    let (_, _, target) = measure(&app).await;
    let id = referrals_in(&app, &target, "on_hold", 1).await.remove(0);
    fx::age(&app, &[&id], 40).await;
    // Act
    fx::expire_now(&app);
    // Assert
    let events = fx::events_of(&app, &id).await;
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "waitlist", "expire"]);
    let expire = &events[2];
    assert_eq!(expire["from_status"], "on_hold");
    assert_eq!(expire["to_status"], "expired");
    assert_eq!(expire["actor"], "ostwerk");
    let referral = fx::referral_of(&app, &id).await;
    assert_eq!(referral["version"], 3);
    assert_eq!(referral["updated_at"], expire["at"]);
}

#[tokio::test]
async fn an_expired_waitlisted_referral_leaves_the_waitlist() {
    // Arrange
    let app = spawn_app().await;
    let (_, measure_id, target) = measure(&app).await;
    let waiting = referrals_in(&app, &target, "on_hold", 2).await;
    fx::age(&app, &[&waiting[0]], 40).await;
    assert_eq!(fx::measure_of(&app, &measure_id).await["waitlisted"], 2);
    // Act
    fx::expire_now(&app);
    // Assert
    assert_eq!(fx::measure_of(&app, &measure_id).await["waitlisted"], 1);
}

#[tokio::test]
async fn an_expired_referral_can_be_acted_on_no_more_but_the_client_can_be_referred_again() {
    // Arrange
    let app = spawn_app().await;
    let (provider, _, target) = measure(&app).await;
    let referral = fx::fresh_referral(&app, &caseworker(), &target).await;
    let id = fx::id(&referral);
    fx::age(&app, &[&id], 40).await;
    fx::expire_now(&app);
    // Act
    let late_accept = fx::act(&app, &provider.caller, &id, &json!({"action": "accept"})).await;
    let again =
        fx::refer(&app, &caseworker(), &fx::referral_body(referral["client_id"].as_str().unwrap(), &target, json!({})))
            .await;
    // Assert
    let problem = assert_problem(late_accept, 409, "invalid-transition").await;
    assert_eq!(problem["current_status"], "expired");
    assert_eq!(problem["allowed_actions"], json!([]));
    assert_eq!(again.status(), 201);
}

#[tokio::test]
async fn running_expiry_again_expires_nothing_more() {
    // Arrange
    let app = spawn_app().await;
    let (_, _, target) = measure(&app).await;
    let ids = referrals_in(&app, &target, "requested", 2).await;
    fx::age(&app, &[&ids[0], &ids[1]], 40).await;
    assert_eq!(fx::expired_count(&fx::expire_now(&app)), 2);
    // Act
    let second = fx::expire_now(&app);
    // Assert
    assert_eq!(fx::expired_count(&second), 0);
    for id in &ids {
        let expires = fx::events_of(&app, id).await.iter().filter(|e| e["action"] == "expire").count();
        assert_eq!(expires, 1);
    }
}

#[tokio::test]
async fn two_expiry_processes_at_once_expire_each_referral_exactly_once() {
    // Arrange
    let app = spawn_app().await;
    let (_, measure_id, target) = measure(&app).await;
    let requested = referrals_in(&app, &target, "requested", 6).await;
    let on_hold = referrals_in(&app, &target, "on_hold", 6).await;
    let all: Vec<&str> = requested.iter().chain(&on_hold).map(String::as_str).collect();
    fx::age(&app, &all, 40).await;
    // Act: both started before either is waited for.
    let children: Vec<std::process::Child> =
        (0..2).map(|_| fx::expire_command(&app).stdout(std::process::Stdio::piped()).spawn().unwrap()).collect();
    let outputs: Vec<std::process::Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    // Assert
    let mut total = 0;
    for out in &outputs {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        total += fx::expired_count(&String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(total, 12, "the two runs together expired each once");
    for id in &all {
        let events = fx::events_of(&app, id).await;
        assert_eq!(events.iter().filter(|e| e["action"] == "expire").count(), 1, "{id}");
        assert_eq!(status_of(&app, id).await, "expired");
    }
    assert_eq!(fx::measure_of(&app, &measure_id).await["waitlisted"], 0);
}
