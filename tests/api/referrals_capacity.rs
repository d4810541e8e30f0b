//! Seats, waitlists and positions (SPEC §3 "Referrals", "Measures"): what
//! referrals do to the counters of their measure or vacancy, and that no
//! number of concurrent accepts overbooks a measure.
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Org, Target},
};

/// A provider with one open measure of `capacity` seats.
async fn measure_with(app: &TestApp, capacity: i64) -> (Org, String, Target) {
    let provider = fx::provider(app).await;
    let measure = fx::measure(app, &provider.id, capacity, json!({})).await;
    let id = fx::id(&measure);
    (provider, id.clone(), Target::Measure(id))
}

/// `n` referrals of `n` fresh clients to `target`, made by a caseworker.
async fn referrals_to(app: &TestApp, target: &Target, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(fx::id(&fx::fresh_referral(app, &caseworker(), target).await));
    }
    ids
}

/// The counters of a measure: (seats_taken, capacity_status, waitlisted).
async fn counters(app: &TestApp, measure_id: &str) -> (i64, String, i64) {
    let m = fx::measure_of(app, measure_id).await;
    (
        m["seats_taken"].as_i64().unwrap(),
        m["capacity_status"].as_str().unwrap().to_owned(),
        m["waitlisted"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_new_measure_has_no_seats_taken_and_nobody_waitlisted() {
    let app = spawn_app().await;
    let (_, measure_id, _) = measure_with(&app, 3).await;
    assert_eq!(counters(&app, &measure_id).await, (0, "available".to_owned(), 0));
}

#[tokio::test]
async fn accepting_into_a_full_measure_is_409_capacity_exhausted() {
    // Arrange
    let app = spawn_app().await;
    let (provider, measure_id, target) = measure_with(&app, 1).await;
    let ids = referrals_to(&app, &target, 2).await;
    fx::take(&app, &provider.caller, &ids[0], "accept").await;
    // Act
    let res = fx::act(&app, &provider.caller, &ids[1], &json!({"action": "accept"})).await;
    // Assert
    assert_problem(res, 409, "capacity-exhausted").await;
    assert_eq!(fx::referral_of(&app, &ids[1]).await["status"], "requested");
    assert_eq!(counters(&app, &measure_id).await.0, 1);
    assert_eq!(fx::events_of(&app, &ids[1]).await.len(), 1, "no accept event");
}

#[tokio::test]
async fn a_measure_with_no_seats_accepts_nobody() {
    let app = spawn_app().await;
    let (provider, _, target) = measure_with(&app, 0).await;
    let ids = referrals_to(&app, &target, 1).await;
    let res = fx::act(&app, &provider.caller, &ids[0], &json!({"action": "accept"})).await;
    assert_problem(res, 409, "capacity-exhausted").await;
}

#[tokio::test]
async fn a_full_measure_can_still_waitlist() {
    // Arrange
    let app = spawn_app().await;
    let (provider, measure_id, target) = measure_with(&app, 1).await;
    let ids = referrals_to(&app, &target, 2).await;
    fx::take(&app, &provider.caller, &ids[0], "accept").await;
    // Act
    let waitlisted = fx::take(&app, &provider.caller, &ids[1], "waitlist").await;
    // Assert
    assert_eq!(waitlisted["status"], "on_hold");
    assert_eq!(counters(&app, &measure_id).await, (1, "full".to_owned(), 1));
}

#[tokio::test]
async fn waitlisting_puts_a_referral_on_hold_and_counts_it_as_waitlisted() {
    // Arrange
    let app = spawn_app().await;
    let (provider, measure_id, target) = measure_with(&app, 2).await;
    let ids = referrals_to(&app, &target, 2).await;
    // Act
    fx::take(&app, &provider.caller, &ids[0], "waitlist").await;
    fx::take(&app, &provider.caller, &ids[1], "waitlist").await;
    // Assert
    assert_eq!(fx::referral_of(&app, &ids[0]).await["status"], "on_hold");
    assert_eq!(counters(&app, &measure_id).await, (0, "available".to_owned(), 2));
}

#[tokio::test]
async fn accepting_from_the_waitlist_moves_the_referral_from_waitlisted_to_seats_taken() {
    let app = spawn_app().await;
    let (provider, measure_id, target) = measure_with(&app, 2).await;
    let ids = referrals_to(&app, &target, 1).await;
    fx::take(&app, &provider.caller, &ids[0], "waitlist").await;
    fx::take(&app, &provider.caller, &ids[0], "accept").await;
    assert_eq!(counters(&app, &measure_id).await, (1, "available".to_owned(), 0));
}

#[tokio::test]
async fn leaving_the_waitlist_by_reject_or_cancel_empties_it() {
    for action in ["reject", "cancel"] {
        let app = spawn_app().await;
        let (_, measure_id, target) = measure_with(&app, 2).await;
        let ids = referrals_to(&app, &target, 1).await;
        fx::drive(&app, &ids[0], "on_hold").await;
        fx::take(&app, &caseworker(), &ids[0], action).await;
        assert_eq!(counters(&app, &measure_id).await, (0, "available".to_owned(), 0), "{action}");
    }
}

#[tokio::test]
async fn seats_taken_counts_accepted_and_in_progress_referrals_only() {
    // Arrange: one of each status that could count.
    let app = spawn_app().await;
    let (_, measure_id, target) = measure_with(&app, 10).await;
    let ids = referrals_to(&app, &target, 7).await;
    // Act
    for (id, status) in ids.iter().zip(["requested", "on_hold", "accepted", "in_progress", "rejected", "completed"]) {
        fx::drive(&app, id, status).await;
    }
    fx::drive(&app, &ids[6], "failed").await;
    // Assert
    assert_eq!(counters(&app, &measure_id).await, (2, "available".to_owned(), 1));
}

#[tokio::test]
async fn a_measure_whose_seats_are_all_taken_is_full_and_left_out_of_has_free_seats() {
    // Arrange
    let app = spawn_app().await;
    let (provider, full_id, target) = measure_with(&app, 2).await;
    let free = fx::measure(&app, &provider.id, 2, json!({"title": "Noch Plätze frei"})).await;
    let ids = referrals_to(&app, &target, 2).await;
    // Act
    fx::take(&app, &provider.caller, &ids[0], "accept").await;
    fx::take(&app, &provider.caller, &ids[1], "accept").await;
    // Assert
    assert_eq!(counters(&app, &full_id).await, (2, "full".to_owned(), 0));
    let with_seats = fx::list(&app, &caseworker(), "/api/v1/measures", &[("has_free_seats", "true")]).await;
    assert_eq!(fx::ids_of(&with_seats), vec![fx::id(&free)]);
    let without = fx::list(&app, &caseworker(), "/api/v1/measures", &[("has_free_seats", "false")]).await;
    assert_eq!(fx::ids_of(&without), vec![full_id]);
}

#[tokio::test]
async fn completing_failing_or_cancelling_frees_the_seat() {
    for (from, action) in
        [("in_progress", "complete"), ("accepted", "fail"), ("in_progress", "fail"), ("accepted", "cancel")]
    {
        // Arrange: a one-seat measure, taken.
        let app = spawn_app().await;
        let (provider, measure_id, target) = measure_with(&app, 1).await;
        let ids = referrals_to(&app, &target, 2).await;
        fx::drive(&app, &ids[0], from).await;
        assert_eq!(counters(&app, &measure_id).await, (1, "full".to_owned(), 0));
        // Act
        fx::take(&app, &caseworker(), &ids[0], action).await;
        // Assert
        assert_eq!(counters(&app, &measure_id).await, (0, "available".to_owned(), 0), "{action} from {from}");
        let next = fx::act(&app, &provider.caller, &ids[1], &json!({"action": "accept"})).await;
        assert_eq!(next.status(), 200, "the freed seat is taken again after {action} from {from}");
    }
}

// ---------------------------------------------------------------------------
// Vacancies
// ---------------------------------------------------------------------------

/// An employer with one open vacancy of `positions` positions.
async fn vacancy_with(app: &TestApp, positions: i64) -> (Org, String, Target) {
    let employer = fx::employer(app).await;
    let vacancy = fx::vacancy(app, &employer.id, positions, json!({})).await;
    let id = fx::id(&vacancy);
    (employer, id.clone(), Target::Vacancy(id))
}

#[tokio::test]
async fn starting_beyond_the_positions_of_a_vacancy_is_409() {
    // Arrange: two accepted referrals to one position, one started.
    let app = spawn_app().await;
    let (employer, vacancy_id, target) = vacancy_with(&app, 1).await;
    let ids = referrals_to(&app, &target, 2).await;
    fx::take(&app, &employer.caller, &ids[0], "accept").await;
    fx::take(&app, &employer.caller, &ids[1], "accept").await;
    fx::take(&app, &employer.caller, &ids[0], "start").await;
    // Act
    let res = fx::act(&app, &employer.caller, &ids[1], &json!({"action": "start"})).await;
    // Assert
    assert_problem(res, 409, "capacity-exhausted").await;
    assert_eq!(fx::referral_of(&app, &ids[1]).await["status"], "accepted");
    assert_eq!(fx::vacancy_of(&app, &vacancy_id).await["positions_filled"], 1);
}

#[tokio::test]
async fn a_vacancy_turns_filled_when_its_last_position_is_taken() {
    // Arrange
    let app = spawn_app().await;
    let (employer, vacancy_id, target) = vacancy_with(&app, 2).await;
    let ids = referrals_to(&app, &target, 2).await;
    for id in &ids {
        fx::take(&app, &employer.caller, id, "accept").await;
    }
    fx::take(&app, &employer.caller, &ids[0], "start").await;
    let half = fx::vacancy_of(&app, &vacancy_id).await;
    assert_eq!((&half["status"], &half["positions_filled"]), (&json!("open"), &json!(1)));
    // Act
    fx::take(&app, &employer.caller, &ids[1], "start").await;
    // Assert
    let filled = fx::vacancy_of(&app, &vacancy_id).await;
    assert_eq!((&filled["status"], &filled["positions_filled"]), (&json!("filled"), &json!(2)));
}

#[tokio::test]
async fn accepting_does_not_take_a_vacancy_position() {
    let app = spawn_app().await;
    let (employer, vacancy_id, target) = vacancy_with(&app, 1).await;
    let ids = referrals_to(&app, &target, 3).await;
    for id in &ids {
        fx::take(&app, &employer.caller, id, "accept").await;
    }
    let vacancy = fx::vacancy_of(&app, &vacancy_id).await;
    assert_eq!((&vacancy["status"], &vacancy["positions_filled"]), (&json!("open"), &json!(0)));
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

/// Sends `accept` on each of `ids` as `caller`, all at once (a barrier
/// releases them together); the status and body of each answer.
async fn accept_all_at_once(app: &TestApp, caller: &Caller, ids: &[String]) -> Vec<(u16, Value)> {
    let barrier = Arc::new(Barrier::new(ids.len()));
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (client, barrier) = (app.client.clone(), barrier.clone());
            let (url, token) = (app.url(&fx::transitions_path(id)), token_for(caller));
            tokio::spawn(async move {
                barrier.wait().await;
                let res = client.post(url).bearer_auth(token).json(&json!({"action": "accept"})).send().await.unwrap();
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_accepts_fill_five_seats_and_never_overbook() {
    // Arrange: 50 clients, each with a referral to a five-seat measure.
    let app = spawn_app().await;
    let (provider, measure_id, target) = measure_with(&app, 5).await;
    let ids = referrals_to(&app, &target, 50).await;
    // Act
    let answers = accept_all_at_once(&app, &provider.caller, &ids).await;
    // Assert
    let accepted = answers.iter().filter(|(s, _)| *s == 200).count();
    let exhausted = answers
        .iter()
        .filter(|(s, b)| *s == 409 && b["type"] == "https://ostwerk.dev/problems/capacity-exhausted")
        .count();
    let others: Vec<_> = answers.iter().filter(|(s, _)| *s != 200 && *s != 409).collect();
    assert_eq!((accepted, exhausted), (5, 45), "other answers: {others:?}");
    assert_eq!(counters(&app, &measure_id).await, (5, "full".to_owned(), 0));
    let stored =
        fx::list(&app, &caseworker(), fx::REFERRALS, &[("measure_id", &measure_id), ("status", "accepted")]).await;
    assert_eq!(fx::ids_of(&stored).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_concurrent_accepts_of_one_referral_succeed_exactly_once() {
    // Arrange
    let app = spawn_app().await;
    let (provider, measure_id, target) = measure_with(&app, 10).await;
    let id = referrals_to(&app, &target, 1).await.remove(0);
    // Act
    let answers = accept_all_at_once(&app, &provider.caller, &vec![id.clone(); 10]).await;
    // Assert: one wins; the others find it accepted already.
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 409, "{body}");
        assert_eq!(body["type"], "https://ostwerk.dev/problems/invalid-transition", "{body}");
        assert_eq!(body["current_status"], "accepted", "{body}");
    }
    assert_eq!(counters(&app, &measure_id).await.0, 1);
    let accepts = fx::events_of(&app, &id).await.iter().filter(|e| e["action"] == "accept").count();
    assert_eq!(accepts, 1);
}
