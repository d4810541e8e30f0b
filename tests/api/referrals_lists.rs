//! Listing referrals (SPEC §1 lists, §3 filters): every filter, cursors, and
//! polling for changes with `sort=updated_at&updated_after=`.
use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

use crate::{
    helpers::*,
    referral_fixtures::{self as fx, Target},
};

/// Query parameters of a list request.
type Query<'a> = Vec<(&'a str, &'a str)>;

/// Every item the list gives for `query` as a caseworker, following cursors.
async fn all_pages(app: &TestApp, query: &[(&str, &str)], limit: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.push(("limit", limit));
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let page = fx::list(app, &caseworker(), fx::REFERRALS, &q).await;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
}

fn id_set<'a>(ids: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    ids.into_iter().cloned().collect()
}

#[tokio::test]
async fn each_filter_lists_exactly_the_matching_referrals() {
    // Arrange: two providers (one with two measures), two employers, one
    // client per referral, a few statuses and external ids.
    let app = spawn_app().await;
    let (p1, p2) = (fx::provider(&app).await, fx::provider(&app).await);
    let m1 = fx::id(&fx::measure(&app, &p1.id, 10, json!({})).await);
    let m2 = fx::id(&fx::measure(&app, &p1.id, 10, json!({})).await);
    let m3 = fx::id(&fx::measure(&app, &p2.id, 10, json!({})).await);
    let (e1, e2) = (fx::employer(&app).await, fx::employer(&app).await);
    let v1 = fx::id(&fx::vacancy(&app, &e1.id, 5, json!({})).await);
    let v2 = fx::id(&fx::vacancy(&app, &e2.id, 5, json!({})).await);
    let plan = [
        (Target::Measure(m1.clone()), "requested", Some("EXT-A")),
        (Target::Measure(m1.clone()), "accepted", None),
        (Target::Measure(m2.clone()), "requested", Some("EXT-B")),
        (Target::Measure(m3.clone()), "on_hold", None),
        (Target::Vacancy(v1.clone()), "accepted", None),
        (Target::Vacancy(v2.clone()), "requested", None),
    ];
    let mut r = Vec::new();
    let mut clients = Vec::new();
    for (target, status, external) in &plan {
        let client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
        let extra = external.map(|e| json!({"external_id": e})).unwrap_or(json!({}));
        let res = fx::refer(&app, &caseworker(), &fx::referral_body(&client, target, extra)).await;
        assert_eq!(res.status(), 201);
        let created: Value = res.json().await.unwrap();
        fx::drive(&app, &fx::id(&created), status).await;
        r.push(fx::id(&created));
        clients.push(client);
    }
    // The last referral is created after a mark, the first one changed after it.
    let created_mark = fx::referral_of(&app, &r[4]).await["created_at"].as_str().unwrap().to_owned();
    let last_client = fx::id(&fx::client(&app, &caseworker(), json!({})).await);
    let late = fx::id(&fx::referral(&app, &caseworker(), &last_client, &Target::Measure(m2.clone())).await);
    let updated_mark = fx::referral_of(&app, &late).await["updated_at"].as_str().unwrap().to_owned();
    fx::take(&app, &caseworker(), &r[0], "waitlist").await;

    let cases: Vec<(Query, Vec<&String>)> = vec![
        (vec![("status", "requested")], vec![&r[2], &r[5], &late]),
        (vec![("status", "accepted")], vec![&r[1], &r[4]]),
        (vec![("status", "on_hold")], vec![&r[0], &r[3]]),
        (vec![("client_id", &clients[3])], vec![&r[3]]),
        (vec![("measure_id", &m1)], vec![&r[0], &r[1]]),
        (vec![("vacancy_id", &v2)], vec![&r[5]]),
        (vec![("provider_id", &p1.id)], vec![&r[0], &r[1], &r[2], &late]),
        (vec![("employer_id", &e1.id)], vec![&r[4]]),
        (vec![("external_id", "EXT-B")], vec![&r[2]]),
        (vec![("created_after", &created_mark)], vec![&r[5], &late]),
        (vec![("updated_after", &updated_mark)], vec![&r[0]]),
        (vec![("provider_id", &p1.id), ("status", "requested")], vec![&r[2], &late]),
    ];
    for (query, expected) in cases {
        // Act
        let items = all_pages(&app, &query, "50").await;
        // Assert
        let got = id_set(&items.iter().map(fx::id).collect::<Vec<_>>());
        assert_eq!(got, id_set(expected), "{query:?}");
    }
}

#[tokio::test]
async fn the_list_is_newest_first_and_cursors_page_through_every_referral_once() {
    // Arrange
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let target = Target::Measure(fx::id(&fx::measure(&app, &provider.id, 10, json!({})).await));
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(fx::id(&fx::fresh_referral(&app, &caseworker(), &target).await));
    }
    // Act
    let items = all_pages(&app, &[], "2").await;
    // Assert
    let listed: Vec<String> = items.iter().map(fx::id).collect();
    created.reverse();
    assert_eq!(listed, created);
}

#[tokio::test]
async fn a_tampered_cursor_is_400() {
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let target = Target::Measure(fx::id(&fx::measure(&app, &provider.id, 10, json!({})).await));
    for _ in 0..2 {
        fx::fresh_referral(&app, &caseworker(), &target).await;
    }
    let page = fx::list(&app, &caseworker(), fx::REFERRALS, &[("limit", "1")]).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    // One character in the middle changed (to something it is not).
    let mid = cursor.len() / 2;
    let swapped = if &cursor[mid..=mid] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swapped}{}", &cursor[..mid], &cursor[mid + 1..]);
    let res = app.get(&format!("{}?limit=1&cursor={tampered}", fx::REFERRALS), &caseworker()).await;
    assert_eq!(res.status(), 400);
    // A cursor of one order is no good for another.
    let res = app.get(&format!("{}?limit=1&sort=updated_at&cursor={cursor}", fx::REFERRALS), &caseworker()).await;
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn an_updated_after_that_is_no_timestamp_is_400() {
    let app = spawn_app().await;
    let res = app.get(&format!("{}?updated_after=yesterday", fx::REFERRALS), &caseworker()).await;
    assert_problem(res, 400, "bad-request").await;
}

#[tokio::test]
async fn polling_by_updated_at_pages_every_change_exactly_once_in_order() {
    // Arrange: seven referrals; the mark is the last creation.
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let target = Target::Measure(fx::id(&fx::measure(&app, &provider.id, 10, json!({})).await));
    let mut ids = Vec::new();
    let mut mark = String::new();
    for _ in 0..7 {
        let r = fx::fresh_referral(&app, &caseworker(), &target).await;
        mark = r["updated_at"].as_str().unwrap().to_owned();
        ids.push(fx::id(&r));
    }
    // Changes after the mark, one referral twice.
    let mut changed = BTreeSet::new();
    for (i, action) in [(1, "accept"), (4, "waitlist"), (6, "reject"), (1, "start"), (2, "cancel")] {
        fx::take(&app, &provider_or_office(action, &provider.caller), &ids[i], action).await;
        changed.insert(ids[i].clone());
    }
    // Act: page two at a time; between the first and second page, one more
    // referral changes (it belongs at the end, after everything seen).
    let query = [("sort", "updated_at"), ("updated_after", mark.as_str()), ("limit", "2")];
    let first = fx::list(&app, &caseworker(), fx::REFERRALS, &query).await;
    fx::take(&app, &provider.caller, &ids[5], "accept").await;
    changed.insert(ids[5].clone());
    let mut items: Vec<Value> = first["items"].as_array().unwrap().clone();
    let mut cursor = first["next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let mut q = query.to_vec();
        q.push(("cursor", &c));
        let page = fx::list(&app, &caseworker(), fx::REFERRALS, &q).await;
        assert!(page["items"].as_array().unwrap().len() <= 2);
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    // Assert: each changed referral exactly once, nothing unchanged, in order.
    let listed: Vec<String> = items.iter().map(fx::id).collect();
    let mut counts: HashMap<&String, usize> = HashMap::new();
    for id in &listed {
        *counts.entry(id).or_default() += 1;
    }
    assert!(counts.values().all(|n| *n == 1), "{listed:?}");
    assert_eq!(id_set(&listed), changed);
    let keys: Vec<(chrono::DateTime<chrono::FixedOffset>, String)> = items
        .iter()
        .map(|i| (chrono::DateTime::parse_from_rfc3339(i["updated_at"].as_str().unwrap()).unwrap(), fx::id(i)))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by updated_at, then id");
    assert_eq!(listed.last(), Some(&ids[5]), "the change made while paging comes last");
    // Each shows its latest state.
    let by_id: HashMap<String, &Value> = items.iter().map(|i| (fx::id(i), i)).collect();
    assert_eq!(by_id[&ids[1]]["status"], "in_progress");
}

/// `cancel` is the referring side's (here the office); the rest the provider's.
fn provider_or_office(action: &str, provider: &Caller) -> Caller {
    if action == "cancel" { caseworker() } else { provider.clone() }
}

#[tokio::test]
async fn polling_with_equal_timestamps_neither_repeats_nor_skips() {
    // Arrange: five referrals made to share one updated_at, directly in the
    // database (the API cannot make two changes at the same microsecond).
    let app = spawn_app().await;
    let provider = fx::provider(&app).await;
    let target = Target::Measure(fx::id(&fx::measure(&app, &provider.id, 10, json!({})).await));
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(fx::id(&fx::fresh_referral(&app, &caseworker(), &target).await));
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    fx::age(&app, &refs, 1).await;
    let day_ago = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    // Act
    let items = all_pages(&app, &[("sort", "updated_at"), ("updated_after", &day_ago)], "2").await;
    // Assert: all five, by id within the one timestamp.
    let listed: Vec<String> = items.iter().map(fx::id).collect();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
}
