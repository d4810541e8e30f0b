//! The referral status machine over HTTP (SPEC §3 "Referrals"): every action
//! from every status by every kind of caller, the fields each action
//! requires, `If-Match`, and the append-only history.
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Org, Target},
};

const STATUSES: [&str; 9] =
    ["requested", "on_hold", "accepted", "in_progress", "rejected", "completed", "failed", "cancelled", "expired"];
const ACTIONS: [&str; 8] = ["accept", "waitlist", "reject", "start", "complete", "fail", "cancel", "expire"];

/// SPEC §3's table, written out again here rather than taken from `src`, so
/// the test holds the code to the specification.
fn spec_after(action: &str, from: &str) -> Option<&'static str> {
    let (froms, to): (&[&str], &str) = match action {
        "accept" => (&["requested", "on_hold"], "accepted"),
        "waitlist" => (&["requested"], "on_hold"),
        "reject" => (&["requested", "on_hold"], "rejected"),
        "start" => (&["accepted"], "in_progress"),
        "complete" => (&["in_progress"], "completed"),
        "fail" => (&["accepted", "in_progress"], "failed"),
        "cancel" => (&["requested", "on_hold", "accepted", "in_progress"], "cancelled"),
        "expire" => (&["requested", "on_hold"], "expired"),
        other => panic!("unknown action {other}"),
    };
    froms.contains(&from).then_some(to)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Target,
    Referring,
    System,
}

fn side_of(action: &str) -> Side {
    match action {
        "cancel" => Side::Referring,
        "expire" => Side::System,
        _ => Side::Target,
    }
}

/// Who calls, relative to the referral under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Caseworker,
    /// The job centre that made the referral.
    ReferringJobcenter,
    /// The provider owning the measure / the employer owning the vacancy.
    OwningTarget,
    OtherJobcenter,
    OtherProvider,
    OtherEmployer,
    Analyst,
}

const WHO: [Who; 8] = [
    Who::Admin,
    Who::Caseworker,
    Who::ReferringJobcenter,
    Who::OwningTarget,
    Who::OtherJobcenter,
    Who::OtherProvider,
    Who::OtherEmployer,
    Who::Analyst,
];

/// Whether `who` stands on `side` (SPEC: office staff stand on both sides, never on the system's).
fn stands_on(who: Who, side: Side) -> bool {
    match who {
        Who::Admin | Who::Caseworker => side != Side::System,
        Who::ReferringJobcenter => side == Side::Referring,
        Who::OwningTarget => side == Side::Target,
        _ => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Moved(&'static str),
    Forbidden,
    NotFound,
    /// `invalid-transition` with these `allowed_actions`.
    Invalid(BTreeSet<&'static str>),
}

fn expected(who: Who, action: &str, from: &str) -> Expected {
    match who {
        Who::Analyst => return Expected::Forbidden,
        Who::OtherJobcenter | Who::OtherProvider | Who::OtherEmployer => return Expected::NotFound,
        _ => {}
    }
    if !stands_on(who, side_of(action)) {
        return Expected::Forbidden;
    }
    match spec_after(action, from) {
        Some(to) => Expected::Moved(to),
        None => Expected::Invalid(
            ACTIONS.into_iter().filter(|a| spec_after(a, from).is_some() && stands_on(who, side_of(a))).collect(),
        ),
    }
}

/// The cast of one table run: a job centre referring to one target.
struct Cast {
    jobcenter: Caller,
    target: Target,
    owner: Caller,
    callers: Vec<(Who, Caller)>,
}

async fn cast(app: &TestApp, to_vacancy: bool) -> Cast {
    let jobcenter = Caller::new("jobcenter").with_org("jc-leipzig-ost");
    let (target, owner) = if to_vacancy {
        let employer = fx::employer(app).await;
        let vacancy = fx::vacancy(app, &employer.id, 1000, json!({})).await;
        (Target::Vacancy(fx::id(&vacancy)), employer.caller)
    } else {
        let provider = fx::provider(app).await;
        let measure = fx::measure(app, &provider.id, 1000, json!({})).await;
        (Target::Measure(fx::id(&measure)), provider.caller)
    };
    // The "other" provider and employer exist, so they are refused for what
    // they are, not for lacking a record.
    let other_provider = fx::provider(app).await.caller;
    let other_employer = fx::employer(app).await.caller;
    let callers = WHO
        .into_iter()
        .map(|who| {
            let caller = match who {
                Who::Admin => admin(),
                Who::Caseworker => caseworker(),
                Who::ReferringJobcenter => Caller::new("jobcenter").with_org("jc-leipzig-ost"),
                Who::OwningTarget => owner.clone(),
                Who::OtherJobcenter => Caller::new("jobcenter").with_org("jc-halle"),
                Who::OtherProvider => other_provider.clone(),
                Who::OtherEmployer => other_employer.clone(),
                Who::Analyst => Caller::new("analyst"),
            };
            (who, caller)
        })
        .collect();
    Cast { jobcenter, target, owner, callers }
}

/// A referral by the cast's job centre, driven to `status` through the API
/// (`expired` through the real `expire-referrals` command).
async fn referral_in(app: &TestApp, cast: &Cast, status: &str) -> String {
    let referral = fx::fresh_referral(app, &cast.jobcenter, &cast.target).await;
    let id = fx::id(&referral);
    if status == "expired" {
        fx::age(app, &[&id], 40).await;
        assert_eq!(fx::expired_count(&fx::expire_now(app)), 1);
    } else {
        fx::drive(app, &id, status).await;
    }
    assert_eq!(fx::referral_of(app, &id).await["status"], status);
    id
}

/// Checks one answer against the table; a description of the mismatch if any.
async fn check(res: reqwest::Response, expected: &Expected, from: &str) -> Option<String> {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let ok = match expected {
        Expected::Moved(to) => status == 200 && body["status"] == *to,
        Expected::Forbidden => status == 403 && body["type"] == "https://ostwerk.dev/problems/forbidden",
        Expected::NotFound => status == 404 && body["type"] == "https://ostwerk.dev/problems/not-found",
        Expected::Invalid(allowed) => {
            let got: Option<BTreeSet<&str>> =
                body["allowed_actions"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect());
            status == 409
                && body["type"] == "https://ostwerk.dev/problems/invalid-transition"
                && body["current_status"] == from
                && got.as_ref() == Some(allowed)
        }
    };
    (!ok).then(|| format!("expected {expected:?}, got {status} {body}"))
}

/// Runs the whole table against referrals to a measure or to a vacancy.
async fn run_table(to_vacancy: bool) {
    // Arrange: one untouched probe per status for the answers that change
    // nothing, and a fresh referral for every answer that moves one.
    let app = spawn_app().await;
    let cast = cast(&app, to_vacancy).await;
    let mut probes = Vec::new();
    for from in STATUSES {
        probes.push((from, referral_in(&app, &cast, from).await));
    }
    let mut failures = Vec::new();

    for (from, probe) in &probes {
        let before = fx::referral_of(&app, probe).await;
        let history = fx::events_of(&app, probe).await.len();
        for action in ACTIONS {
            for (who, caller) in &cast.callers {
                let expected = expected(*who, action, from);
                // Act
                let target = match expected {
                    Expected::Moved(_) => referral_in(&app, &cast, from).await,
                    _ => probe.clone(),
                };
                let res = fx::act(&app, caller, &target, &fx::action_body(action)).await;
                // Assert
                if let Some(mismatch) = check(res, &expected, from).await {
                    failures.push(format!("{action} from {from} by {who:?}: {mismatch}"));
                }
            }
        }
        // Nothing but a 200 changes a referral or its history.
        let after = fx::referral_of(&app, probe).await;
        assert_eq!((&after["status"], &after["version"]), (&before["status"], &before["version"]), "{from}");
        assert_eq!(fx::events_of(&app, probe).await.len(), history, "history of the {from} probe");
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    // The owner really was on the target side (a sanity check of the cast).
    assert!(cast.owner.roles.contains(&if to_vacancy { "employer" } else { "provider" }));
}

#[tokio::test]
async fn every_action_from_every_status_by_every_caller_follows_the_table_for_measures() {
    run_table(false).await;
}

#[tokio::test]
async fn every_action_from_every_status_by_every_caller_follows_the_table_for_vacancies() {
    run_table(true).await;
}

// ---------------------------------------------------------------------------
// Required fields
// ---------------------------------------------------------------------------

/// A referral to a fresh measure, made by a caseworker, in `status`.
async fn office_referral_in(app: &TestApp, status: &str) -> (String, Org) {
    let provider = fx::provider(app).await;
    let measure = fx::measure(app, &provider.id, 10, json!({})).await;
    let referral = fx::fresh_referral(app, &caseworker(), &Target::Measure(fx::id(&measure))).await;
    let id = fx::id(&referral);
    fx::drive(app, &id, status).await;
    (id, provider)
}

/// Asserts a `422` naming exactly `field` among its errors, and no change.
async fn assert_field_required(app: &TestApp, referral_id: &str, res: reqwest::Response, field: &str) {
    let before = fx::referral_of(app, referral_id).await;
    let problem = assert_problem(res, 422, "validation-failed").await;
    let fields: Vec<&str> = problem["errors"].as_array().unwrap().iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, vec![field], "{problem}");
    let after = fx::referral_of(app, referral_id).await;
    assert_eq!(after["version"], before["version"]);
}

#[tokio::test]
async fn reject_cancel_and_fail_without_a_reason_code_are_422() {
    for (from, action, extra) in [
        ("requested", "reject", json!({"rejected_by": "client"})),
        ("requested", "cancel", json!({})),
        ("accepted", "fail", json!({})),
    ] {
        // Arrange
        let app = spawn_app().await;
        let (id, _) = office_referral_in(&app, from).await;
        let mut body = json!({"action": action, "reason_note": "kein Grund angegeben"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        // Act
        let res = fx::act(&app, &caseworker(), &id, &body).await;
        // Assert
        assert_field_required(&app, &id, res, "reason_code").await;
        assert_eq!(fx::referral_of(&app, &id).await["status"], from, "{action}");
    }
}

#[tokio::test]
async fn reject_without_rejected_by_is_422() {
    // Arrange
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "requested").await;
    // Act
    let res = fx::act(&app, &provider.caller, &id, &json!({"action": "reject", "reason_code": "no_capacity"})).await;
    // Assert
    assert_field_required(&app, &id, res, "rejected_by").await;
}

#[tokio::test]
async fn reject_with_an_unknown_rejected_by_is_422() {
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "requested").await;
    let body = json!({"action": "reject", "reason_code": "no_capacity", "rejected_by": "weather"});
    let res = fx::act(&app, &provider.caller, &id, &body).await;
    assert_field_required(&app, &id, res, "rejected_by").await;
}

#[tokio::test]
async fn complete_without_an_outcome_is_422() {
    // Arrange
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "in_progress").await;
    // Act
    let res = fx::act(&app, &provider.caller, &id, &json!({"action": "complete", "outcome_on": "2026-11-30"})).await;
    // Assert
    assert_field_required(&app, &id, res, "outcome").await;
    assert_eq!(fx::referral_of(&app, &id).await["status"], "in_progress");
}

#[tokio::test]
async fn an_unknown_action_is_422() {
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "requested").await;
    let res = fx::act(&app, &provider.caller, &id, &json!({"action": "teleport"})).await;
    assert_field_required(&app, &id, res, "action").await;
}

#[tokio::test]
async fn reject_keeps_its_reason_and_who_rejected() {
    // Arrange
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "requested").await;
    let body = json!({"action": "reject", "reason_code": "client_declined", "reason_note": "Umzug nach Halle.",
                      "rejected_by": "client"});
    // Act
    let res = fx::act(&app, &provider.caller, &id, &body).await;
    // Assert
    assert_eq!(res.status(), 200);
    let rejected: Value = res.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["reason_code"], "client_declined");
    assert_eq!(rejected["reason_note"], "Umzug nach Halle.");
    assert_eq!(rejected["rejected_by"], "client");
    assert_eq!(fx::referral_of(&app, &id).await["rejected_by"], "client");
}

#[tokio::test]
async fn complete_keeps_its_outcome_and_date() {
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "in_progress").await;
    let body = json!({"action": "complete", "outcome": "apprenticeship", "outcome_on": "2026-09-01"});
    let res = fx::act(&app, &provider.caller, &id, &body).await;
    assert_eq!(res.status(), 200);
    let completed = fx::referral_of(&app, &id).await;
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["outcome"], "apprenticeship");
    assert_eq!(completed["outcome_on"], "2026-09-01");
}

// ---------------------------------------------------------------------------
// If-Match
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_transition_with_a_stale_if_match_is_412_and_changes_nothing() {
    // Arrange: version 2 after the waitlist; the caller still holds "1".
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "on_hold").await;
    // Act
    let res = app
        .request(reqwest::Method::POST, &fx::transitions_path(&id), Some(&provider.caller))
        .header("If-Match", "\"1\"")
        .json(&json!({"action": "accept"}))
        .send()
        .await
        .unwrap();
    // Assert
    assert_problem(res, 412, "precondition-failed").await;
    let unchanged = fx::referral_of(&app, &id).await;
    assert_eq!(unchanged["status"], "on_hold");
    assert_eq!(unchanged["version"], 2);
}

#[tokio::test]
async fn a_transition_with_the_current_if_match_succeeds_and_answers_the_new_etag() {
    // Arrange
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "on_hold").await;
    let etag = app.get(&format!("{}/{id}", fx::REFERRALS), &caseworker()).await.headers()["etag"].clone();
    assert_eq!(etag, "\"2\"");
    // Act
    let res = app
        .request(reqwest::Method::POST, &fx::transitions_path(&id), Some(&provider.caller))
        .header("If-Match", etag)
        .json(&json!({"action": "accept"}))
        .send()
        .await
        .unwrap();
    // Assert
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["etag"], "\"3\"");
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["version"], 3);
}

// ---------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------

#[tokio::test]
async fn events_record_every_step_starting_with_the_creation() {
    // Arrange
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let measure = fx::measure(&app, &provider.id, 5, json!({})).await;
    let jobcenter = Caller::new("jobcenter").with_org("jc-leipzig-ost");
    let office = caseworker();
    let referral = fx::fresh_referral(&app, &jobcenter, &Target::Measure(fx::id(&measure))).await;
    let id = fx::id(&referral);
    fx::take(&app, &provider.caller, &id, "waitlist").await;
    fx::take(&app, &office, &id, "accept").await;
    let fail = json!({"action": "fail", "reason_code": "client_unreachable", "reason_note": "Drei Termine verpasst."});
    assert_eq!(fx::act(&app, &provider.caller, &id, &fail).await.status(), 200);
    // Act
    let res = app.get(&format!("{}/{id}/events", fx::REFERRALS), &jobcenter).await;
    // Assert
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    assert!(page["next_cursor"].is_null());
    let events = page["items"].as_array().unwrap();
    let steps: Vec<(&Value, &Value, &Value, &Value, &Value)> = events
        .iter()
        .map(|e| (&e["action"], &e["from_status"], &e["to_status"], &e["actor"], &e["actor_org"]))
        .collect();
    let (jc, pr, cw) = (json!(jobcenter.sub), json!(provider.caller.sub), json!(office.sub));
    let (jc_org, pr_org) = (json!("jc-leipzig-ost"), json!(provider.id));
    assert_eq!(
        steps,
        vec![
            (&json!("create"), &Value::Null, &json!("requested"), &jc, &jc_org),
            (&json!("waitlist"), &json!("requested"), &json!("on_hold"), &pr, &pr_org),
            (&json!("accept"), &json!("on_hold"), &json!("accepted"), &cw, &json!("office")),
            (&json!("fail"), &json!("accepted"), &json!("failed"), &pr, &pr_org),
        ]
    );
    assert_eq!(events[3]["reason_code"], "client_unreachable");
    assert_eq!(events[3]["reason_note"], "Drei Termine verpasst.");
    assert!(events[..3].iter().all(|e| e["reason_code"].is_null()));
    assert!(events.iter().all(|e| e["referral_id"] == id.as_str()));
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by_key(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    assert_eq!(times, sorted, "oldest first");
    assert_eq!(times[0], referral["created_at"].as_str().unwrap());
}

#[tokio::test]
async fn later_transitions_leave_earlier_events_untouched() {
    // Arrange
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "accepted").await;
    let before = fx::events_of(&app, &id).await;
    // Act
    fx::take(&app, &provider.caller, &id, "start").await;
    fx::take(&app, &provider.caller, &id, "complete").await;
    // Assert
    let after = fx::events_of(&app, &id).await;
    assert_eq!(after.len(), before.len() + 2);
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after.last().unwrap()["action"], "complete");
}

#[tokio::test]
async fn a_refused_transition_writes_no_event() {
    let app = spawn_app().await;
    let (id, provider) = office_referral_in(&app, "completed").await;
    let before = fx::events_of(&app, &id).await;
    let res = fx::act(&app, &provider.caller, &id, &fx::action_body("start")).await;
    assert_problem(res, 409, "invalid-transition").await;
    assert_eq!(fx::events_of(&app, &id).await, before);
}
